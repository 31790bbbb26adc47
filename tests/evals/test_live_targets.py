"""litellm and HTTP targets against a real local server: retries, timeouts, cache, resume, secrets.

Every test talks to :class:`FakeOpenAIServer` on 127.0.0.1 through the real client stack
(litellm + the OpenAI SDK, or httpx) and counts what reached the server.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from evals.contract import load_contract
from evals.dataset import load_dataset
from evals.errors import UserError
from evals.runs import evaluate, generate, open_unfinished_run, prepare
from evals.store import OutputCache, ResultsStore, RunHeader, RunJournal, journal_dir
from evals.targets import HttpTarget, LiteLLMTarget, Redactor, build_target
from evals.testing import FakeOpenAIServer, Reply
from tests.helpers import ANSWER_PROMPT as PROMPT
from tests.helpers import CASES, CONTRACT, make_project, settled_calls, write_jsonl
from tests.helpers import litellm_project as make_litellm_project

pytestmark = pytest.mark.model

KEY = "sk-live-test-0123456789abcdef"
FAST_RETRY = {"attempts": 3, "base_delay_s": 0.01, "max_delay_s": 2, "timeout_s": 2}


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    monkeypatch.setenv("IMPACTGATE_CACHE_DIR", str(tmp_path / "cache"))


def litellm_project(
    tmp: Path, server: FakeOpenAIServer, prompt: str = PROMPT, **target: Any
) -> Path:
    return make_litellm_project(
        tmp, server.url, prompt=prompt, **{"concurrency": 4, "retry": FAST_RETRY, **target}
    )


def http_project(tmp: Path, server: FakeOpenAIServer, **target: Any) -> Path:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["target"] = {
        "kind": "http",
        "url": server.agent_url,
        "version": "build-7",
        "headers": {"Authorization": "AGENT_TOKEN"},
        "response": {
            "output": "answer",
            "contexts": "contexts",
            "usage": "usage",
            "model": "model",
        },
        "concurrency": 4,
        "retry": FAST_RETRY,
        **target,
    }
    return make_project(tmp, data)


def plan_for(path: Path) -> tuple[Any, Any]:
    contract = load_contract(path)
    dataset = load_dataset(contract.resolve(contract.evals.dataset))
    return build_target(contract, dataset), dataset


# --- the litellm target ----------------------------------------------------------------


def test_litellm_target_answers_every_case_with_usage_and_latency(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    target, dataset = plan_for(litellm_project(tmp_path, server))
    assert isinstance(target, LiteLLMTarget)
    outputs = target.generate(dataset.cases)
    assert server.calls == len(dataset.cases)
    assert [o.case_id for o in outputs] == dataset.ids
    first = outputs[0]
    assert first.error is None
    assert first.text is not None
    assert "Q: question 1: when is my refund paid?" in first.text, "the template was rendered"
    assert "- Refunds go back" in first.text, "contexts reached the prompt"
    assert first.usage is not None
    assert first.usage.prompt_tokens > 0
    assert not first.usage_counted
    assert first.model == "openai/gpt-4o-mini"
    assert first.latency_s is not None
    assert first.latency_s > 0
    assert first.attempts == 1
    assert server.requests[0]["model"] == "gpt-4o-mini"
    assert server.headers[0]["authorization"] == f"Bearer {KEY}"


def test_retry_then_success_honours_retry_after(tmp_path: Path, server: FakeOpenAIServer) -> None:
    target, dataset = plan_for(litellm_project(tmp_path, server, concurrency=1))
    server.enqueue(Reply(status=429, retry_after=0.4), Reply(status=503))
    started = time.perf_counter()
    [output] = target.generate(dataset.cases[:1])
    elapsed = time.perf_counter() - started
    assert output.error is None
    assert output.attempts == 3
    assert server.calls == 3
    assert elapsed >= 0.4, "the 429's Retry-After (0.4 s) was waited out"
    assert output.latency_s is not None
    assert output.latency_s < 0.4, "latency is the successful attempt's, not the retries'"


def test_retry_exhaustion_is_a_recorded_error_that_spends_the_error_budget(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    path = litellm_project(tmp_path, server, concurrency=1)
    server.enqueue(*[Reply(status=500)] * 3)
    result = evaluate(load_contract(path))
    first = result.cases[0].output
    assert first.text is None
    assert first.error is not None
    assert "HTTP 500" in first.error
    assert "after 3 attempts" in first.error
    assert first.attempts == 3
    assert all(c.output.error is None for c in result.cases[1:]), "the run carried on"
    assert server.calls == 3 + len(CASES) - 1
    error_rate = result.metrics["error_rate"]
    assert error_rate.value == pytest.approx(1 / len(CASES))
    assert result.cases[0].scores["faithfulness"].error is not None


def test_a_permanent_error_is_not_retried(tmp_path: Path, server: FakeOpenAIServer) -> None:
    target, dataset = plan_for(litellm_project(tmp_path, server))
    server.enqueue(Reply(status=400))
    [output] = target.generate(dataset.cases[:1])
    assert output.error is not None
    assert "after 1 attempt" in output.error
    assert server.calls == 1


def test_a_call_past_its_timeout_is_abandoned_and_retried(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    retry = {**FAST_RETRY, "timeout_s": 0.3, "attempts": 2}
    target, dataset = plan_for(litellm_project(tmp_path, server, retry=retry))
    server.enqueue(Reply(content="late", delay_s=1.0), Reply(content="in time"))
    started = time.perf_counter()
    [output] = target.generate(dataset.cases[:1])
    assert output.text == "in time"
    assert output.attempts == 2
    assert time.perf_counter() - started < 1.0, "the stalled attempt was not waited for"

    server.enqueue(Reply(content="late", delay_s=1.0), Reply(content="late", delay_s=1.0))
    [output] = target.generate(dataset.cases[:1])
    assert output.error is not None
    assert "after 2 attempts" in output.error
    assert "timed out" in output.error.lower() or "timeout" in output.error.lower()


def test_a_malformed_reply_is_retried(tmp_path: Path, server: FakeOpenAIServer) -> None:
    target, dataset = plan_for(litellm_project(tmp_path, server))
    server.enqueue(Reply(raw="{not json"), "fine")
    [output] = target.generate(dataset.cases[:1])
    assert output.text == "fine"
    assert output.attempts == 2


def test_missing_usage_is_counted_locally_and_said_so(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    path = litellm_project(tmp_path, server)
    server.enqueue(*[Reply(content="Refunds take 5 business days.", usage=False)] * len(CASES))
    result = evaluate(load_contract(path))
    output = result.cases[0].output
    assert output.usage_counted
    assert output.usage is not None
    assert output.usage.prompt_tokens > 10
    assert output.usage.completion_tokens > 0
    cost = result.cases[0].scores["cost"]
    assert cost.value is not None
    assert cost.value > 0, "counted tokens are priced with litellm's table"
    assert result.metrics["cost_per_case_usd"].n == len(CASES)


def test_concurrency_and_rate_limits_hold(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency_s=0.1) as slow:
        target, dataset = plan_for(litellm_project(tmp_path, slow, concurrency=3))
        target.generate(dataset.cases)
        assert slow.max_in_flight == 3

    with FakeOpenAIServer() as fast:
        target, dataset = plan_for(
            litellm_project(tmp_path / "rpm", fast, concurrency=8, requests_per_minute=600)
        )
        started = time.perf_counter()
        target.generate(dataset.cases[:5])
        # 600 a minute is one every 0.1 s: five requests start over at least 0.4 s.
        assert time.perf_counter() - started >= 0.4


def test_the_version_covers_template_model_and_params_not_the_endpoint(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    base = plan_for(litellm_project(tmp_path / "a", server))[0].version()
    same = plan_for(litellm_project(tmp_path / "b", server, api_base="http://127.0.0.1:9/v1"))
    assert same[0].version().hash == base.hash
    prompt = plan_for(litellm_project(tmp_path / "c", server, prompt=PROMPT + "Be brief.\n"))
    assert prompt[0].version().hash != base.hash
    params = plan_for(litellm_project(tmp_path / "d", server, params={"temperature": 0.2}))
    assert params[0].version().hash != base.hash
    model = plan_for(litellm_project(tmp_path / "e", server, model="openai/gpt-4o"))
    assert model[0].version().hash != base.hash


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (
            "Q: {{ inptu }}",
            r"prompts/answer\.j2: line 1: 'inptu' is undefined \(did you mean 'input'\?\)",
        ),
        (
            "Hi\n{{ case.refrence }}",
            r"answer\.j2: line 2: case has no attribute 'refrence' \(did you mean 'reference'\?\)",
        ),
        ("{% for c in %}", r"answer\.j2: line 1: Expected an expression"),
    ],
)
def test_template_mistakes_are_user_errors_before_any_call(
    tmp_path: Path,
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    prompt: str,
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = litellm_project(tmp_path, server, prompt=prompt)
    with pytest.raises(UserError, match=message):
        prepare(load_contract(path))
    assert server.calls == 0


@pytest.mark.parametrize(
    ("prompt", "line", "name"),
    [
        ("Hi\n{{ cycler.__init__.__globals__.os.popen('touch PWNED').read() }}", 2, "__\\w+__"),
        ("{{ ''.__class__.__mro__[1].__subclasses__() }}", 1, "__\\w+__"),
        ("{{ case['__class__'] }}", 1, "__class__"),
        ("{% set f = lipsum %}{{ f.__globals__ }}", 1, "__globals__"),
        ("{{ params.mro() }}", 1, "mro"),
    ],
)
def test_a_template_reaching_for_internals_is_refused_before_it_runs(
    tmp_path: Path,
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    prompt: str,
    line: int,
    name: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = litellm_project(tmp_path, server, prompt=prompt)
    with pytest.raises(
        UserError, match=rf"answer\.j2: line {line}: reads '{name}', which templates"
    ):
        prepare(load_contract(path))
    assert not (tmp_path / "PWNED").exists(), "nothing in the template ran"
    assert server.calls == 0


def test_the_sandbox_stops_what_the_static_check_cannot_see(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # The attribute name is built at render time, so only the sandbox can refuse it.
    prompt = "{{ input|attr('_' ~ '_class' ~ '__') }}"
    path = litellm_project(tmp_path, server, prompt=prompt)
    with pytest.raises(UserError, match=r"answer\.j2: line 1: .*(sandbox|unsafe|undefined)"):
        prepare(load_contract(path))
    assert server.calls == 0


def test_a_template_that_is_not_utf8_or_includes_a_file_outside_is_refused(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = litellm_project(tmp_path, server)
    (tmp_path / "prompts" / "answer.j2").write_bytes(b"Caf\xe9 {{ input }}\n")
    with pytest.raises(UserError, match=r"answer\.j2: byte 4: is not UTF-8 text"):
        prepare(load_contract(path))
    secret = tmp_path.parent / f"{tmp_path.name}-outside.txt"
    secret.write_text("not for the model\n")
    (tmp_path / "prompts" / "notes.j2").symlink_to(secret)
    (tmp_path / "prompts" / "answer.j2").write_text("{% include 'notes.j2' %}{{ input }}\n")
    with pytest.raises(UserError, match=r"answer\.j2: includes 'notes\.j2' leads outside"):
        prepare(load_contract(path))
    assert server.calls == 0


def test_preflight_warms_litellm_up_without_a_request_or_a_leftover_task(
    tmp_path: Path,
    server: FakeOpenAIServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import evals.targets._litellm as module

    monkeypatch.setattr(module, "_WARM", set())  # this process may have warmed the model up
    target, dataset = plan_for(litellm_project(tmp_path, server))
    target.preflight()
    assert server.calls == 0, "the warm-up is answered by litellm itself"
    assert "openai/gpt-4o-mini" in module._WARM
    with caplog.at_level(logging.DEBUG):
        outputs = target.generate(dataset.cases)
    assert all(o.error is None for o in outputs)
    assert server.calls == len(dataset.cases)
    # litellm warns when a new event loop inherits a call's unfinished bookkeeping
    assert not [r for r in caplog.records if "carried" in r.getMessage()]


def test_a_missing_key_variable_stops_the_run_before_any_call(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_LLM_KEY")
    with pytest.raises(
        UserError, match=r"evals\.target\.api_key_env: environment variable FAKE_LLM_KEY"
    ):
        evaluate(load_contract(litellm_project(tmp_path, server)))
    assert server.calls == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"api_key": "x"}, "api_key_env"),
        ({"stream": True}, "streaming"),
        ({"num_retries": 3}, "retry.attempts"),
    ],
)
def test_reserved_litellm_params_are_refused(
    tmp_path: Path, server: FakeOpenAIServer, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserError, match=message):
        load_contract(litellm_project(tmp_path, server, params=params))


# --- the output cache and resuming ------------------------------------------------------


def test_a_rerun_of_the_same_version_calls_nothing(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    contract = load_contract(litellm_project(tmp_path, server))
    cache = OutputCache.default()
    first = evaluate(contract, cache=cache)
    assert server.calls == len(CASES)
    assert first.record.n_cached == 0

    again = evaluate(contract, cache=cache)
    assert server.calls == len(CASES), "zero calls reached the server on the rerun"
    assert again.record.n_cached == len(CASES)
    assert all(c.output.cached for c in again.cases)
    assert [c.output.latency_s for c in again.cases] == [c.output.latency_s for c in first.cases]
    assert [c.output.usage for c in again.cases] == [c.output.usage for c in first.cases]
    assert again.metrics["latency_p50_s"].value == first.metrics["latency_p50_s"].value


def test_the_cache_is_keyed_on_case_content_and_skips_errors(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    path = litellm_project(tmp_path, server, concurrency=1)
    cache = OutputCache.default()
    server.enqueue(*[Reply(status=500)] * 3)
    evaluate(load_contract(path), cache=cache)
    calls = server.calls

    changed = copy.deepcopy(CASES)
    changed[1]["input"] = "question 2, reworded: when will the refund arrive?"
    write_jsonl(tmp_path / "datasets" / "tiny-agent" / "cases.jsonl", changed)
    result = evaluate(load_contract(path), cache=cache)
    # c1 failed last time (errors are not cached) and c2's content changed: two calls.
    assert server.calls - calls == 2
    assert [c.case.id for c in result.cases if not c.output.cached] == ["c1", "c2"]


class Killed(Exception):
    """Stands in for a process killed mid-run."""


def _header(contract: Any, plan: Any, run_id: str) -> RunHeader:
    """The header of a run of ``contract`` as it stands, started now."""
    version = plan.target.version()
    return RunHeader(
        run_id=run_id,
        agent=contract.agent,
        contract=str(contract.source),
        version=version.label,
        version_hash=version.hash,
        dataset=contract.evals.dataset,
        dataset_hash=plan.dataset.content_hash,
        trigger="manual",
        level=contract.autonomy.level,
        started_at=datetime.now(UTC),
    )


# litellm runs the sync half of a call in a thread and awaits the coroutine it returns; the
# simulated kill cancels the run while such a thread is busy, so one coroutine is never awaited.
@pytest.mark.filterwarnings(
    "ignore:coroutine 'OpenAIChatCompletion.acompletion' was never awaited:RuntimeWarning"
)
def test_a_killed_run_resumes_calling_only_the_missing_cases(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    contract = load_contract(litellm_project(tmp_path, server, cache=False))
    plan = prepare(contract)
    results = tmp_path / "results"
    header = _header(contract, plan, "20261128T000000Z-0badc0de")
    journal = RunJournal.start(journal_dir(results), header)

    def kill_after_three(done: int) -> None:
        if done >= 3:
            raise Killed

    with pytest.raises(Killed):
        generate(plan.target, list(plan.dataset.cases), kill_after_three, journal=journal)
    journal.close()
    calls_before = settled_calls(server, 0.3)  # calls in flight at the kill may still land
    journaled = len(journal.path.read_text().splitlines()) - 1
    assert journaled >= 3

    resumed = open_unfinished_run(str(results), header.run_id)
    assert resumed.resumed == journaled
    result = evaluate(contract, journal=resumed)
    assert server.calls - calls_before == len(CASES) - journaled, "only the missing cases"
    assert result.record.n_resumed == journaled
    assert [c.case.id for c in result.cases] == [c["id"] for c in CASES]
    assert all(c.output.error is None for c in result.cases)


def test_a_resumed_run_calls_again_the_cases_whose_calls_failed_transiently(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    contract = load_contract(litellm_project(tmp_path, server, cache=False, concurrency=1))
    plan = prepare(contract)
    results = tmp_path / "results"
    header = _header(contract, plan, "20261128T000000Z-00e7700e")
    journal = RunJournal.start(journal_dir(results), header)
    # Every attempt of the first three cases fails (HTTP 503); the last answer is a 401.
    attempts = FAST_RETRY["attempts"]
    server.enqueue(*[Reply(status=503)] * (3 * attempts), Reply(status=401))
    outputs = generate(plan.target, list(plan.dataset.cases)[:4], journal=journal)
    journal.close()
    assert [o.retryable for o in outputs] == [True, True, True, False]
    calls = server.calls

    resumed = open_unfinished_run(str(results), header.run_id)
    result = evaluate(contract, journal=resumed)
    assert server.calls - calls == len(CASES) - 1, "the 503s were called again, the 401 was not"
    errors = [c.output.error for c in result.cases if c.output.error]
    assert len(errors) == 1
    assert "401" in errors[0]
    assert result.record.n_resumed == 1


def test_resume_refuses_unknown_and_committed_runs(tmp_path: Path) -> None:
    contract = load_contract(make_project(tmp_path / "p"))
    results = tmp_path / "results"
    with pytest.raises(UserError, match="no unfinished run 20261128T000000Z-00000000"):
        open_unfinished_run(str(results), "20261128T000000Z-00000000")
    with pytest.raises(UserError, match="is not a run id"):
        open_unfinished_run(str(results), "../../etc/passwd")
    result = evaluate(contract)
    ResultsStore(results).write_run(result.record, result.samples())
    with pytest.raises(UserError, match=f"run {result.record.run_id} .* already committed"):
        open_unfinished_run(str(results), result.record.run_id)


# --- secrets ------------------------------------------------------------------------------


def test_a_key_that_appears_in_a_prompt_is_redacted_everywhere_recorded(
    tmp_path: Path, server: FakeOpenAIServer, caplog: pytest.LogCaptureFixture
) -> None:
    path = litellm_project(tmp_path, server)
    leaky = copy.deepcopy(CASES)
    leaky[0]["input"] = f"my key is {KEY}, why was I charged twice?"
    write_jsonl(tmp_path / "datasets" / "tiny-agent" / "cases.jsonl", leaky)
    contract = load_contract(path)
    plan = prepare(contract)
    results = tmp_path / "results"
    header = _header(contract, plan, "20261128T000000Z-5ec2e7aa")
    journal = RunJournal.start(journal_dir(results), header)
    result = evaluate(contract, cache=OutputCache.default(), journal=journal)
    prompts = [r["messages"][-1]["content"] for r in server.requests]
    assert any(KEY in prompt for prompt in prompts), "the prompt did carry the key"

    echoed = result.cases[0].output.text or ""
    assert KEY not in echoed
    assert "[REDACTED:FAKE_LLM_KEY]" in echoed
    ResultsStore(results).write_run(result.record, result.samples())
    for file in [*results.rglob("*.parquet"), journal.path, *(tmp_path / "cache").rglob("*")]:
        if file.is_file():
            assert KEY.encode() not in file.read_bytes(), file
    store = ResultsStore(results)
    samples = store.samples(store.runs())
    assert any("[REDACTED:FAKE_LLM_KEY]" in (s.output or "") for s in samples)

    with caplog.at_level(logging.INFO), plan.target.redactor().filtering_logs():
        logging.getLogger("impactgate.test").info("request for %s failed", KEY)
    assert KEY not in caplog.text
    assert "[REDACTED:FAKE_LLM_KEY]" in caplog.text


def test_redactor_covers_bearer_tokens_and_ignores_short_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGENT_TOKEN", "Bearer tok-abcdef123456")
    monkeypatch.setenv("SHORT", "1")
    redactor = Redactor.from_env(["AGENT_TOKEN", "SHORT", "UNSET_VARIABLE"])
    assert redactor.text("auth: Bearer tok-abcdef123456") == "auth: [REDACTED:AGENT_TOKEN]"
    assert redactor.text("token tok-abcdef123456 leaked") == "token [REDACTED:AGENT_TOKEN] leaked"
    assert redactor.text("retry 1 of 3") == "retry 1 of 3"
    assert redactor.value({"a": ["tok-abcdef123456"]}) == {"a": ["[REDACTED:AGENT_TOKEN]"]}


# --- the HTTP target ----------------------------------------------------------------------


def test_http_target_posts_cases_and_reads_the_reply_by_path(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_TOKEN", "Bearer agent-secret-42")
    target, dataset = plan_for(http_project(tmp_path, server, params={"mode": "strict"}))
    assert isinstance(target, HttpTarget)
    assert target.version().label == "build-7"
    outputs = target.generate(dataset.cases)
    assert server.calls == len(dataset.cases)
    [body] = [r for r in server.requests if r["id"] == "c1"]
    assert body == {
        "id": "c1",
        "input": CASES[0]["input"],
        "contexts": CASES[0]["contexts"],
        "tags": ["refunds"],
        "metadata": {},
        "params": {"mode": "strict"},
    }
    assert server.headers[0]["authorization"] == "Bearer agent-secret-42"
    first = outputs[0]
    assert first.text == f"echo: {CASES[0]['input']}"
    assert first.contexts == tuple(CASES[0]["contexts"])
    assert first.usage is not None
    assert first.model == "gpt-4o-mini"
    assert first.latency_s is not None


def test_http_calls_past_one_pool_spread_over_several_and_all_run_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 40 in flight: three clients of 14 connections (httpcore's cost grows with a pool's
    # size squared); every call still starts at once, and nothing queues.
    monkeypatch.setenv("AGENT_TOKEN", "Bearer agent-secret-42")
    with FakeOpenAIServer(latency_s=0.3) as slow:
        path = http_project(tmp_path, slow, concurrency=40, cache=False)
        rows = [{"id": f"p{i}", "input": f"question {i}"} for i in range(40)]
        write_jsonl(tmp_path / "datasets" / "tiny-agent" / "cases.jsonl", rows)
        target, dataset = plan_for(path)
        outputs = target.generate(dataset.cases)
    assert all(o.error is None for o in outputs)
    assert slow.max_in_flight == 40, "every call in flight at once: no pool made one wait"


def test_http_target_retries_and_records_what_it_cannot_read(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AGENT_TOKEN", "Bearer agent-secret-42")
    target, dataset = plan_for(http_project(tmp_path, server, concurrency=1))
    cases = dataset.cases[:4]
    server.enqueue(
        Reply(status=429, retry_after=0.2),
        Reply(raw="<html>bad gateway</html>"),
        Reply(json={"answer": "ok", "usage": {"input_tokens": 3, "output_tokens": 1}}),
        Reply(json={"reply": "wrong field"}),
        *[Reply(status=503)] * 3,
        Reply(status=404),
    )
    ok, wrong, exhausted, missing = target.generate(cases)
    assert ok.text == "ok"
    assert ok.attempts == 3
    assert ok.usage is not None
    assert ok.usage.prompt_tokens == 3
    assert wrong.error is not None
    assert "the reply has no 'answer'" in wrong.error
    assert "reply" in wrong.error
    assert exhausted.error is not None
    assert "HTTP 503" in exhausted.error
    assert "after 3 attempts" in exhausted.error
    assert missing.error is not None
    assert "HTTP 404" in missing.error
    assert "after 1 attempt" in missing.error


def test_http_headers_come_from_the_environment_and_never_reach_records(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = http_project(tmp_path, server)
    with pytest.raises(
        UserError, match=r"evals\.target\.headers: .*Authorization \(\$AGENT_TOKEN\)"
    ):
        evaluate(load_contract(path))
    assert server.calls == 0

    secret = "Bearer agent-secret-42"
    monkeypatch.setenv("AGENT_TOKEN", secret)
    server.enqueue(Reply(json={"answer": "your token agent-secret-42 expired"}))
    result = evaluate(load_contract(path))
    texts = [c.output.text or "" for c in result.cases]
    assert "your token [REDACTED:AGENT_TOKEN] expired" in texts
    text = json.dumps([c.output.to_record() for c in result.cases])
    assert "agent-secret-42" not in text


def test_the_example_prompt_templates_render_every_billing_case(root: Path) -> None:
    from evals.targets import PromptTemplate

    dataset = load_dataset(root / "datasets" / "billing-assistant" / "cases.jsonl")
    user = PromptTemplate(root / "examples" / "prompts" / "billing-assistant.j2")
    system = PromptTemplate(root / "examples" / "prompts" / "billing-assistant.system.j2")
    for case in dataset.cases:
        text = user.render(case, {"max_tokens": 300})
        assert text.endswith(f"Question: {case.input}")
        assert "[1] " in text
        assert "300 tokens" in text
        assert "billing assistant" in system.render(case, {})
