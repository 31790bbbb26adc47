"""`impactgate run` on a litellm target: the output cache, --resume, progress, exit codes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

import flows
from evals.store import ResultsStore, RunJournal, journal_dir
from evals.testing import FakeOpenAIServer
from flows.cli.main import cli
from tests.helpers import ANSWER_PROMPT as PROMPT
from tests.helpers import CASES, CONTRACT, litellm_project

KEY = "sk-flow-test-0123456789"


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer() as running:
        yield running


@pytest.fixture
def project(tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    monkeypatch.setenv("IMPACTGATE_CACHE_DIR", str(tmp_path / "cache"))
    data = copy.deepcopy(CONTRACT)
    # Only the replayed-output gates of the helper contract would fail here; keep faithfulness.
    data["autonomy"]["levels"] = {"approval": {"gates": {"policy_violation_rate": {"max": 0.4}}}}
    data["autonomy"]["level"] = "approval"
    data["autonomy"]["rollback"] = {"metrics": [], "demote_to": "draft"}
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    return litellm_project(
        tmp_path / "project",
        server.url,
        data,
        concurrency=2,
        retry={"attempts": 2, "base_delay_s": 0.01, "timeout_s": 5},
    )


def run_args(project: Path, *extra: str) -> list[str]:
    results = project.parents[1] / "results"
    return ["run", "--policies", str(project.parent), "--results", str(results), *extra]


@pytest.mark.parametrize(
    ("resume", "message"),
    [
        ("20261128T000000Z-00000000", "no unfinished run 20261128T000000Z-00000000"),
        ("../../escape", "is not a run id"),
    ],
)
def test_resume_of_an_unknown_run_exits_2_before_prefect(
    project: Path, resume: str, message: str
) -> None:
    code, _, err = invoke(*run_args(project, "--resume", resume))
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_a_missing_api_key_exits_2_before_prefect(
    project: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FAKE_LLM_KEY")
    code, _, err = invoke(*run_args(project))
    assert code == 2
    assert "FAKE_LLM_KEY (the API key) is not set" in err
    assert server.calls == 0


@pytest.mark.usefixtures("prefect_harness")
def test_a_rerun_calls_nothing_and_says_the_outputs_were_cached(
    project: Path, server: FakeOpenAIServer
) -> None:
    code, out, err = invoke(*run_args(project, "--json"))
    assert code == 0, err
    [first] = json.loads(out)["runs"]
    assert first["outputs"] == {"called": len(CASES), "cached": 0, "resumed": 0, "errors": 0}
    assert server.calls == len(CASES)
    assert f"{len(CASES)}/{len(CASES)}" in err, "progress was reported on stderr"

    code, out, _ = invoke(*run_args(project, "--json"))
    assert code == 0
    [second] = json.loads(out)["runs"]
    assert server.calls == len(CASES), "the rerun called nothing"
    assert second["outputs"]["cached"] == len(CASES)
    assert any("output cache" in note for note in second["notes"])
    latency = {m["metric"]: m["value"] for m in second["metrics"]}
    assert (
        latency["latency_p50_s"]
        == {m["metric"]: m["value"] for m in first["metrics"]}["latency_p50_s"]
    ), "cached outputs keep the latency measured when they were produced"

    store = ResultsStore(project.parents[1] / "results")
    runs = store.runs()
    assert {(r.run_id, r.n_cached) for r in runs} == {
        (first["run_id"], 0),
        (second["run_id"], len(CASES)),
    }
    samples = store.samples([r for r in runs if r.run_id == second["run_id"]])
    assert samples
    assert all(s.cached for s in samples)
    assert {s.model for s in samples} == {"openai/gpt-4o-mini"}

    code, out, _ = invoke(*run_args(project, "--json", "--no-cache"))
    assert code == 0
    assert server.calls == 2 * len(CASES), "--no-cache calls every case again"


class Killed(Exception):
    """Stands in for the process being killed mid-run."""


@contextmanager
def dies_after(cases: int) -> Iterator[None]:
    from flows.evaluate import reporting_progress  # Prefect: only where a harness test runs

    @contextmanager
    def factory(label: str, total: int) -> Iterator[Callable[[int], None]]:
        done = 0

        def advance(n: int) -> None:
            nonlocal done
            done += n
            if done >= cases:
                raise Killed(f"killed after {done} of {total}")

        yield advance

    with reporting_progress(factory):
        yield


@pytest.mark.usefixtures("prefect_harness")
@pytest.mark.filterwarnings("ignore:coroutine .* was never awaited:RuntimeWarning")
def test_a_killed_run_resumes_under_its_own_id_calling_only_the_missing_cases(
    project: Path, server: FakeOpenAIServer
) -> None:
    results = project.parents[1] / "results"
    with dies_after(3), pytest.raises(Killed):
        flows.evaluate_agent(str(project), str(results), "nightly", use_cache=False)
    [header] = RunJournal.in_progress(journal_dir(results))
    journal = RunJournal.open(journal_dir(results), header.run_id)
    journaled = len(journal.outputs())
    assert journaled >= 3
    assert ResultsStore(results).runs() == [], "nothing committed"
    calls = server.calls

    # A prompt edited since the run started makes it a different version: refused, exit 2.
    prompt = project.parent.parent / "prompts" / "answer.j2"
    prompt.write_text(PROMPT + "Be brief.\n", encoding="utf-8")
    code, _, err = invoke(*run_args(project, "--resume", header.run_id))
    assert code == 2
    assert "the contract now produces" in err
    prompt.write_text(PROMPT, encoding="utf-8")

    code, out, err = invoke(*run_args(project, "--resume", header.run_id, "--json"))
    assert code == 0, err
    [summary] = json.loads(out)["runs"]
    assert summary["run_id"] == header.run_id
    assert summary["trigger"] == "nightly", "the resumed run keeps its trigger"
    assert summary["outputs"]["resumed"] == journaled
    assert server.calls - calls == len(CASES) - journaled, "only the missing cases were called"
    assert not journal.path.exists(), "the journal goes once the run commits"
    runs = ResultsStore(results).runs()
    assert {r.run_id for r in runs} == {header.run_id}
    assert {r.n_resumed for r in runs} == {journaled}
    samples = ResultsStore(results).samples(runs)
    assert sorted({s.case_id for s in samples}) == sorted(c["id"] for c in CASES)

    code, _, err = invoke(*run_args(project, "--resume", header.run_id))
    assert code == 2
    assert "already committed" in err


@pytest.mark.usefixtures("prefect_harness")
def test_an_unfinished_run_is_pointed_out(project: Path, server: FakeOpenAIServer) -> None:
    results = project.parents[1] / "results"
    with dies_after(1), pytest.raises(Killed):
        flows.evaluate_agent(str(project), str(results))
    [header] = RunJournal.in_progress(journal_dir(results))
    code, _, err = invoke(*run_args(project))
    assert code == 0
    assert f"impactgate run --resume {header.run_id}" in err


@pytest.mark.slow
def test_a_process_killed_mid_run_resumes_from_its_journal(
    project: Path, server: FakeOpenAIServer, tmp_path: Path
) -> None:
    """The real thing: SIGKILL the `impactgate run` process group, then `--resume` it."""
    import os
    import signal
    import subprocess
    import sys
    import time

    server.latency_s = 0.3
    results = project.parents[1] / "results"
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home")}
    env.pop("PREFECT_API_URL", None)
    impactgate = str(Path(sys.executable).parent / "impactgate")
    command = [impactgate, *run_args(project, "--json")]
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        command, cwd=root, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    folder = journal_dir(results)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            journals = list(folder.glob("*.jsonl")) if folder.exists() else []
            if journals and len(journals[0].read_text().splitlines()) >= 4:  # header + 3
                break
            time.sleep(0.05)
        else:
            pytest.fail("the run never journaled three outputs")
    finally:
        # The whole group: the CLI and the temporary Prefect server it started.
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    [header] = RunJournal.in_progress(folder)
    journaled = len(RunJournal.open(folder, header.run_id).outputs())
    assert 3 <= journaled < len(CASES)
    calls = server.calls

    resumed = subprocess.run(
        [impactgate, *run_args(project, "--resume", header.run_id, "--json")],
        cwd=root, env=env, capture_output=True, text=True, timeout=600, start_new_session=True,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    [summary] = json.loads(resumed.stdout)["runs"]
    assert summary["run_id"] == header.run_id
    assert server.calls - calls == len(CASES) - journaled
    assert not list(folder.glob("*.jsonl"))
