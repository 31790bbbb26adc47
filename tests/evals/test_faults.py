"""Faults and kills: a run that is killed mid-way and resumed loses and repeats nothing.

The agent is a real HTTP server on 127.0.0.1 that fails one request in five (429, 500, or a
stall past the client's timeout). A run in a separate process is killed with SIGKILL once a
third of its cases are journaled, then resumed from its journal: every case must end up
answered exactly once in the committed run, and no case whose answer was journaled before the
kill may be asked again (only those in flight at the kill may repeat).
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from evals.store import ResultsStore, RunJournal, journal_dir
from evals.testing import FakeOpenAIServer
from tests.helpers import CONTRACT, litellm_project, make_project, settled_calls, write_jsonl

pytestmark = pytest.mark.model  # the worker imports litellm

ROOT = Path(__file__).resolve().parents[2]
N_CASES = 60
RETRY = {"attempts": 8, "base_delay_s": 0.01, "max_delay_s": 0.1, "timeout_s": 0.6}
WORKER = """
import sys
from evals.runs import RunSession
path, results, resume = sys.argv[1], sys.argv[2], (sys.argv[3] if len(sys.argv) > 3 else None)
with RunSession.open(path, results, trigger="nightly", resume=resume, use_cache=False) as s:
    print(s.header.run_id, flush=True)
    s.run()
print("committed", flush=True)
"""


def _contract() -> dict[str, Any]:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    return data


def _cases(tmp: Path) -> list[str]:
    inputs = [f"question {i}: how do refunds work for order {1000 + i}?" for i in range(N_CASES)]
    write_jsonl(
        tmp / "datasets" / "tiny-agent" / "cases.jsonl",
        [{"id": f"c{i}", "input": text} for i, text in enumerate(inputs)],
    )
    return inputs


def _litellm(tmp: Path, server: FakeOpenAIServer) -> Path:
    path = litellm_project(
        tmp, server.url, _contract(), prompt="Q: {{ input }}\n", concurrency=6, retry=RETRY
    )
    _cases(tmp)
    return path


def _http(tmp: Path, server: FakeOpenAIServer) -> Path:
    data = _contract()
    data["evals"]["target"] = {
        "kind": "http",
        "url": server.agent_url,
        "version": "build-7",
        "response": {"output": "answer", "usage": "usage", "model": "model"},
        "concurrency": 6,
        "retry": RETRY,
    }
    path = make_project(tmp, data)
    _cases(tmp)
    return path


def _case_of(request: dict[str, Any]) -> str:
    text = request.get("input") or " ".join(str(m.get("content")) for m in request["messages"])
    return "c" + text.split("question ", 1)[1].split(":", 1)[0]


def _worker(path: Path, results: Path, *resume: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FAKE_LLM_KEY": "sk-fake-key-for-faults"}
    return subprocess.Popen(
        [sys.executable, "-c", WORKER, str(path), str(results), *resume],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("target", ["litellm", "http"])
def test_a_killed_run_resumes_with_no_case_lost_or_repeated(tmp_path: Path, target: str) -> None:
    with FakeOpenAIServer(latency_s=0.05, faults=0.2, stall_s=1.2, seed=7) as server:
        path = (_litellm if target == "litellm" else _http)(tmp_path, server)
        results = tmp_path / "results"
        first = _worker(path, results)
        assert first.stdout is not None
        run_id = first.stdout.readline().strip()
        journal_file = journal_dir(results) / f"{run_id}.jsonl"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            lines = journal_file.read_text().count("\n") if journal_file.exists() else 0
            if lines > N_CASES // 3:
                break
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
        before_resume = settled_calls(server, 1.0)
        journal = RunJournal.open(journal_dir(results), run_id)
        kept = {k for k, (_, o) in journal.outputs().items() if not o.retryable}
        journal.close()
        assert N_CASES // 3 <= len(kept) < N_CASES, "killed part-way"

        second = _worker(path, results, run_id)
        out, err = second.communicate(timeout=180)
        assert second.returncode == 0, err[-3000:]
        assert out.splitlines()[-1] == "committed"
        asked_again = {_case_of(r) for r in server.requests[before_resume:]}
        assert asked_again.isdisjoint(kept), "a case journaled before the kill was called again"
        assert server.faulted > 0, "faults were injected"

    store = ResultsStore(results)
    [run] = store.runs()
    assert run.run_id == run_id, "one run, under its own id"
    assert run.n_resumed == len(kept)
    samples = store.samples(run)
    keys = [(s.case_id, s.metric) for s in samples]
    assert len(keys) == len(set(keys)), "no case scored twice"
    assert {s.case_id for s in samples} == {f"c{i}" for i in range(N_CASES)}, "no case lost"
    assert run.metrics["error_rate"].value == 0.0, [s.error for s in samples if s.error][:3]
    assert not journal_file.exists(), "the journal goes once the run commits"
