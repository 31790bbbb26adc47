"""Two `impactgate run` on one results root at the same time leave a consistent store.

Both evaluate the same leaking agent: each commits its own run (nothing duplicated, every
file readable), one rollback re-pins v1, and the ledger holds one agent with one open
incident that counts every breaching run.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evals.store import ResultsStore, ledger_for
from tests.helpers import CONTRACT, make_project

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]


def test_two_runs_at_once_on_one_results_root(tmp_path: Path) -> None:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    make_project(tmp_path, data)
    results = tmp_path / "results"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")  # one machine: one Prefect home
    command = [
        sys.executable, "-m", "flows.cli.main", "run", "--json",
        "--policies", str(tmp_path / "policies"), "--results", str(results),
    ]  # fmt: skip
    runs = [
        subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outcomes = [run.communicate(timeout=240) for run in runs]
    for run, (_, err) in zip(runs, outcomes, strict=True):
        assert run.returncode == 0, err[-3000:]

    store = ResultsStore(results)
    records = store.runs("tiny-agent")
    assert len(records) == 2
    assert len({r.run_id for r in records}) == 2, "each run committed once, under its own id"
    for record in records:
        samples = store.samples(record)
        keys = [(s.case_id, s.metric) for s in samples]
        assert len(keys) == len(set(keys)) == record.n_cases * 3
    ledger = ledger_for(str(results))
    [entry] = ledger.entries()
    assert (entry.active_version, entry.level) == ("v1", "approval")
    [incident] = ledger.incidents("tiny-agent")
    decisions = store.decisions("tiny-agent")
    # Whichever way the two interleave, each breach of v2 is one rollback decision and one
    # run counted on the one incident; a run of the re-pinned v1 at approval passes quietly.
    breached = [r for r in records if r.version == "v2"]
    assert [d.kind for d in decisions] == ["rollback"] * len(breached)
    assert (incident.status, incident.severity, incident.runs) == (
        "open",
        "critical",
        len(breached),
    )
    assert {d.version_after for d in decisions} == {"v1"}
