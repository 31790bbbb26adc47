"""Live generation sharded over worker processes, against a real local server.

Each test talks to :class:`FakeOpenAIServer` on 127.0.0.1 from forked worker processes through
the real client stack (litellm + the OpenAI SDK, or httpx) and counts what reached the server.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from evals.contract import load_contract
from evals.dataset import Case
from evals.errors import UserError
from evals.runs import (
    RunSession,
    generate_in_processes,
    generate_shard,
    generation_shards,
    loaded_targets,
    open_unfinished_run,
)
from evals.store import OutputCache
from evals.targets import Output
from evals.testing import FakeOpenAIServer
from tests.evals.test_live_targets import KEY, http_project, litellm_project
from tests.helpers import CONTEXT, settled_calls, write_jsonl
from tests.helpers import litellm_project as make_litellm_project

N_CASES = 30


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    monkeypatch.setenv("AGENT_TOKEN", "Bearer agent-token-0123456789")
    monkeypatch.setenv("IMPACTGATE_CACHE_DIR", str(tmp_path / "cache"))


def _more_cases(contract: Path, n: int = N_CASES) -> Path:
    """The project's dataset grown to ``n`` cases (sharding wants more than a handful)."""
    rows = [
        {
            "id": f"c{i:02d}",
            "input": f"question {i}: when is refund {i} paid?",
            "contexts": [CONTEXT],
        }
        for i in range(n)
    ]
    write_jsonl(contract.parent.parent / "datasets" / "tiny-agent" / "cases.jsonl", rows)
    return contract


def _comparable(outputs: list[Output]) -> list[Output]:
    """Outputs without what differs from call to call (timing)."""
    return [replace(o, latency_s=None) for o in outputs]


def _generate(path: Path, **open_args: Any) -> tuple[RunSession, list[Output]]:
    with RunSession.open(path, None, **open_args) as session:
        return session, session.generate()


# --- splitting (no server) -----------------------------------------------------------------


def _cases(n: int) -> list[Case]:
    return [Case(id=f"c{i}", input=f"q{i}") for i in range(n)]


def test_shards_deal_the_cases_out_and_split_the_limits_exactly() -> None:
    shards = generation_shards(_cases(10), 3, 64, 100)
    assert [s.concurrency for s in shards] == [22, 21, 21]
    assert [s.requests_per_minute for s in shards] == [34, 33, 33]
    assert [c.id for c in shards[0].cases] == ["c0", "c3", "c6", "c9"]
    assert sorted(c.id for s in shards for c in s.cases) == sorted(c.id for c in _cases(10))
    # Fewer cases than processes: one shard per case, never more than the contract's total.
    few = generation_shards(_cases(2), 4, 8)
    assert [len(s.cases) for s in few] == [1, 1]
    assert sum(s.concurrency for s in few) <= 8
    assert generation_shards([], 2, 8) == []


def test_batched_shards_keep_dataset_order_and_the_smallest_share() -> None:
    shards = generation_shards(_cases(7), 3, 64, 100, batch=3)
    assert [[c.id for c in s.cases] for s in shards] == [
        ["c0", "c1", "c2"], ["c3", "c4", "c5"], ["c6"],
    ]  # fmt: skip
    # Any 3 of them in flight at once stay within the contract's limits.
    assert {(s.concurrency, s.requests_per_minute) for s in shards} == {(21, 33)}


def test_shards_refuse_shares_below_one() -> None:
    with pytest.raises(ValueError, match="cannot share concurrency 2"):
        generation_shards(_cases(4), 3, 2)
    with pytest.raises(ValueError, match="requests_per_minute 1"):
        generation_shards(_cases(4), 2, 8, 1)


def test_processes_must_fit_the_contracts_limits(tmp_path: Path) -> None:
    path = make_litellm_project(
        tmp_path, "http://127.0.0.1:9/v1", concurrency=2, processes=3, requests_per_minute=2
    )
    with pytest.raises(UserError) as raised:
        load_contract(path)
    text = str(raised.value)
    assert "evals.target.processes: 3 processes cannot share a concurrency of 2" in text
    assert "lower 'processes' to at most 2" in text
    assert "cannot share requests_per_minute 2" in text


# --- against the server --------------------------------------------------------------------


@pytest.mark.model
def test_sharded_litellm_outputs_match_unsharded_in_case_order(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    one = _more_cases(litellm_project(tmp_path / "one", server, cache=False, concurrency=6))
    three = _more_cases(
        litellm_project(tmp_path / "three", server, cache=False, concurrency=6, processes=3)
    )
    session, alone = _generate(one)
    sharded_session, sharded = _generate(three)
    assert session.processes == 1
    assert sharded_session.processes == 3
    assert server.calls == 2 * N_CASES
    assert [o.case_id for o in sharded] == [f"c{i:02d}" for i in range(N_CASES)]
    assert all(o.error is None and o.text for o in sharded)
    assert _comparable(sharded) == _comparable(alone), "same text, usage, model and attempts"
    assert sharded_session.target.version() == session.target.version()


@pytest.mark.model
def test_sharded_http_outputs_match_unsharded(tmp_path: Path, server: FakeOpenAIServer) -> None:
    one = _more_cases(http_project(tmp_path / "one", server, cache=False))
    two = _more_cases(http_project(tmp_path / "two", server, cache=False, processes=2))
    _, alone = _generate(one)
    _, sharded = _generate(two)
    assert server.calls == 2 * N_CASES
    assert _comparable(sharded) == _comparable(alone)
    # The header's secret reached the server from every worker, and no output carries it.
    assert {h["authorization"] for h in server.headers} == {"Bearer agent-token-0123456789"}
    assert not any("agent-token" in repr(o) for o in sharded)


@pytest.mark.model
def test_the_server_never_sees_more_than_the_contracts_concurrency(tmp_path: Path) -> None:
    with FakeOpenAIServer(latency_s=0.15) as slow:
        path = _more_cases(
            litellm_project(tmp_path, slow, cache=False, concurrency=4, processes=2), n=24
        )
        started = time.perf_counter()
        _, outputs = _generate(path)
        took = time.perf_counter() - started
    assert all(o.error is None for o in outputs)
    assert slow.max_in_flight == 4, "two workers with two calls in flight each"
    # 24 calls at 4 in flight take at least 6 rounds of 0.15 s.
    assert took >= 6 * 0.15


@pytest.mark.model
def test_the_pace_is_split_across_workers(tmp_path: Path, server: FakeOpenAIServer) -> None:
    # 600 a minute is one every 0.1 s overall; each of two workers starts one every 0.2 s.
    path = _more_cases(
        litellm_project(
            tmp_path, server, cache=False, concurrency=4, processes=2, requests_per_minute=600
        ),
        n=6,
    )
    started = time.perf_counter()
    _, outputs = _generate(path)
    assert all(o.error is None for o in outputs)
    # Each worker starts its three requests over at least 0.4 s (0.2 s apart).
    assert time.perf_counter() - started >= 0.4


class Killed(Exception):
    """Stands in for a process killed mid-run."""


@pytest.mark.model
def test_outputs_are_journaled_as_they_arrive_and_a_killed_run_resumes(
    tmp_path: Path,
) -> None:
    with FakeOpenAIServer(latency_s=0.05) as server:
        path = _more_cases(
            litellm_project(tmp_path, server, cache=False, concurrency=2, processes=2)
        )
        results = str(tmp_path / "results")
        session = RunSession.open(path, results, sync_ledger=False)

        def kill_after_five(done: int) -> None:
            if done >= 5:
                raise Killed

        with pytest.raises(Killed):
            session.generate(progress=kill_after_five)
        session.close()
        calls = settled_calls(server, 0.4)
        assert calls < N_CASES, "the workers were stopped with the run"
        run_id = session.header.run_id
        resumed = open_unfinished_run(results, run_id)
        journaled = resumed.resumed
        assert journaled >= 5, "each output was journaled in the run's process as it came"
        resumed.close()

        again = RunSession.open(path, results, resume=run_id, sync_ledger=False)
        with again:
            outputs = again.generate()
        assert server.calls - calls == N_CASES - journaled, "only the missing cases"
        assert [o.case_id for o in outputs] == [f"c{i:02d}" for i in range(N_CASES)]
        assert all(o.error is None for o in outputs)
        assert len(again.resumed_ids) == journaled


@pytest.mark.model
def test_cache_hits_are_resolved_before_sharding(tmp_path: Path, server: FakeOpenAIServer) -> None:
    path = _more_cases(litellm_project(tmp_path, server, concurrency=4, processes=2))
    cache = OutputCache(tmp_path / "outputs.sqlite")
    _, first = _generate(path, cache=cache)
    assert server.calls == N_CASES
    assert len(cache) == N_CASES, "cached in the run's process as the outputs came back"
    _, second = _generate(path, cache=cache)
    assert server.calls == N_CASES, "a rerun of the same version calls nothing"
    assert all(o.cached for o in second)
    assert [o.text for o in second] == [o.text for o in first]


@pytest.mark.model
def test_a_worker_missing_the_secret_says_which(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _more_cases(litellm_project(tmp_path, server, cache=False, concurrency=4, processes=2))
    with RunSession.open(path, None) as session:
        version = session.target.version()
        cases = session.cases
    monkeypatch.delenv("FAKE_LLM_KEY")  # the workers' environment lacks it
    with pytest.raises(UserError, match=r"evals\.target\.api_key_env: environment variable"):
        generate_in_processes(
            str(path), version, cases, processes=2, concurrency=4, requests_per_minute=None
        )
    assert server.calls == 0


@pytest.mark.model
def test_a_contract_changed_under_a_running_run_is_refused(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    path = _more_cases(litellm_project(tmp_path, server, cache=False, concurrency=4, processes=2))
    with RunSession.open(path, None) as session:
        version = session.target.version()
        (tmp_path / "prompts" / "answer.j2").write_text("Now: {{ input }}\n", encoding="utf-8")
        with pytest.raises(UserError, match="Start the run again"):
            session.generate()
    assert server.calls == 0
    assert version == session.target.version(), "the session still evaluates what it opened"


@pytest.mark.model
def test_a_shard_builds_its_target_once_per_process(
    tmp_path: Path, server: FakeOpenAIServer
) -> None:
    path = _more_cases(litellm_project(tmp_path, server, cache=False, concurrency=4), n=6)
    with RunSession.open(path, None) as session:
        version = session.target.version()
        cases = session.cases
    before = loaded_targets()
    first = generate_shard(str(path), version, cases[:3], concurrency=2)
    second = generate_shard(str(path), version, cases[3:], concurrency=2)
    assert loaded_targets() == before + 1
    assert [o.case_id for o in first + second] == [c.id for c in cases]
    assert server.calls == 6


@pytest.mark.model
def test_a_worker_that_dies_stops_the_run_naming_it(tmp_path: Path) -> None:
    import multiprocessing
    import os
    import signal

    with FakeOpenAIServer(latency_s=0.2) as slow:
        path = _more_cases(litellm_project(tmp_path, slow, cache=False, concurrency=2, processes=2))
        with RunSession.open(path, None) as session:

            def kill_a_worker(done: int) -> None:
                if done == 1:
                    [first, *_] = sorted(
                        (p for p in multiprocessing.active_children() if "generate" in p.name),
                        key=lambda p: p.name,
                    )
                    os.kill(first.pid or 0, signal.SIGKILL)

            with pytest.raises(RuntimeError, match=r"generation worker 0 .* exited with code -9"):
                session.generate(progress=kill_a_worker)
        assert not [p for p in multiprocessing.active_children() if "generate" in p.name]
