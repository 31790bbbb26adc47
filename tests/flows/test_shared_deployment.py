"""Two workers and a CI gate at once on S3 results and a PostgreSQL ledger stay consistent.

A real S3-compatible server (moto in server mode) and a real PostgreSQL cluster are started by
the tests on 127.0.0.1. Two ``impactgate run`` processes (one per agent, as two workers would)
and one ``impactgate ci`` run at the same time against ``s3://…`` and the shared ledger; then
every run and decision must appear exactly once, the report must build from the bucket, and a
half-finished upload (data without its commit record) must stay invisible.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from evals.store import Ledger, ResultsStore
from tests.helpers import CONTRACT, make_project

pytestmark = pytest.mark.server

ROOT = Path(__file__).resolve().parents[2]


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=ci", "-c", "user.email=ci@example.test", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _bucket(env: dict[str, str], name: str) -> str:
    import boto3

    boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    ).create_bucket(Bucket=name)
    return f"s3://{name}/team/results"


def _project(repo: Path) -> Path:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    make_project(repo, data)
    other = copy.deepcopy(data)
    other["agent"] = "other-agent"
    other["evals"]["target"]["version"] = "v1"
    (repo / "policies" / "other-agent.yaml").write_text(json.dumps(other), encoding="utf-8")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "baseline")
    return repo / "policies"


@pytest.fixture
def shared_env(
    s3_endpoint: dict[str, str], postgres_db: str, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    for name, value in s3_endpoint.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("IMPACTGATE_LEDGER_URL", postgres_db)
    return {**s3_endpoint, "IMPACTGATE_LEDGER_URL": postgres_db}


def test_two_workers_and_a_ci_gate_share_s3_and_postgres(
    tmp_path: Path, shared_env: dict[str, str]
) -> None:
    results = _bucket(shared_env, "impactgate-shared")
    policies = _project(tmp_path / "repo")
    cli = [sys.executable, "-m", "flows.cli.main"]
    workers = []
    for number, command in enumerate(
        [
            [*cli, "run", "tiny-agent", "--json", "--policies", str(policies), "--results", results],
            [*cli, "run", "other-agent", "--json", "--policies", str(policies), "--results", results],
            [*cli, "ci", "--baseline", "HEAD", "--agent", "other-agent", "--json",
             "--policies", str(policies), "--results", results],
        ]
    ):  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
        env["PREFECT_HOME"] = str(tmp_path / f"prefect-home-{number}")  # one per machine
        workers.append(
            subprocess.Popen(
                command,
                cwd=tmp_path / "repo" if command[3] == "ci" else ROOT,
                env={**env, **shared_env, "PYTHONPATH": str(ROOT)},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    outcomes = [worker.communicate(timeout=400) for worker in workers]
    for worker, (_, err) in zip(workers, outcomes, strict=True):
        assert worker.returncode == 0, err[-3000:]
    [gate] = json.loads(outcomes[2][0])["agents"]
    assert gate["agent"] == "other-agent"

    store = ResultsStore(results)
    assert store.local_root is None
    records = store.runs()
    ids = [r.run_id for r in records]
    assert len(ids) == len(set(ids)), "every run committed once"
    assert {r.agent for r in records} == {"tiny-agent", "other-agent"}
    assert sum(r.trigger == "manual" for r in records) == 2, "one run per worker"
    for record in records:
        keys = [(s.case_id, s.metric) for s in store.samples(record)]
        assert len(keys) == len(set(keys)) == record.n_cases * 3
    decisions = store.decisions()
    assert len({d.decision_id for d in decisions}) == len(decisions), "no decision twice"
    assert [d.kind for d in decisions if d.agent == "tiny-agent"] == ["rollback"]
    assert [d.kind for d in decisions if d.agent == "other-agent"] == []

    ledger = Ledger(shared_env["IMPACTGATE_LEDGER_URL"])
    entries = {e.agent: e for e in ledger.entries()}
    assert set(entries) == {"tiny-agent", "other-agent"}
    assert (entries["tiny-agent"].active_version, entries["tiny-agent"].level) == (
        "v1",
        "approval",
    )
    for agent in entries:
        kinds = [e.kind for e in ledger.events(agent)]
        assert kinds.count("register") == 1, agent
    [incident] = ledger.incidents("tiny-agent")
    assert incident.runs == 1
    rollback_runs = [
        e.detail["run_id"] for e in ledger.events("tiny-agent") if e.kind == "rollback"
    ]
    assert rollback_runs == [d.run_id for d in decisions if d.agent == "tiny-agent"]

    # Nothing of the store is on the local disk: no results folder was created anywhere.
    assert not (tmp_path / "repo" / "results").exists()
    assert not (ROOT / "team").exists()

    report = subprocess.run(
        [*cli, "report", "--results", results, "--policies", str(policies),
         "--out", str(tmp_path / "site")],
        cwd=ROOT, env={**os.environ, **shared_env}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert report.returncode == 0, report.stderr[-3000:]
    index = (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
    assert "tiny-agent" in index
    assert "other-agent" in index


def test_uncommitted_objects_stay_invisible_on_s3(shared_env: dict[str, str]) -> None:
    import pyarrow as pa
    import pyarrow.fs as pafs

    results = _bucket(shared_env, "impactgate-commit")
    store = ResultsStore(results)
    assert isinstance(store.fs, pafs.S3FileSystem)
    from evals.store import SAMPLES_SCHEMA

    # A writer that died after uploading its samples but before its ``runs`` commit record.
    row = {f.name: None for f in SAMPLES_SCHEMA} | {
        "run_id": "r-dead", "case_id": "c1", "metric": "policy", "value": 1.0, "tags": [],
    }  # fmt: skip
    store._write_table(
        "samples", "a", "2026-01-01", "r-dead", pa.Table.from_pylist([row], SAMPLES_SCHEMA)
    )
    assert store.table("samples").num_rows == 0
    assert store.runs() == []
    # No temporary objects: every object under the root is a whole Parquet file.
    listed = store.fs.get_file_info(pafs.FileSelector(store.base, recursive=True))
    names = [i.base_name for i in listed if i.type == pafs.FileType.File]
    assert names == ["r-dead.parquet"]
