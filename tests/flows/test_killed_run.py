"""A killed `impactgate run` leaves no temporary Prefect server behind."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from tests.helpers import CONTRACT, make_project

pytestmark = pytest.mark.server

SLOW_AGENT = """
import time

def answer(case):
    time.sleep(60)
    return "too late"
"""


def _prefect_server(run: psutil.Process) -> psutil.Process | None:
    for child in run.children(recursive=True):
        try:
            if "prefect.server.api.server:create_app" in " ".join(child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def test_kill_9_of_a_run_stops_its_temporary_prefect_server(tmp_path: Path) -> None:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["target"] = {"kind": "python", "function": "slow_agent:answer"}
    data["evals"]["suites"] = ["policy", "latency"]
    data["autonomy"]["levels"] = {"constrained": {"gates": {"policy_violation_rate": {"max": 0.1}}}}
    data["autonomy"]["rollback"] = {"metrics": [], "demote_to": "approval"}
    make_project(tmp_path, data)
    (tmp_path / "slow_agent.py").write_text(SLOW_AGENT)
    assert yaml.safe_load((tmp_path / "policies" / "tiny-agent.yaml").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_API")}
    env["PREFECT_HOME"] = str(tmp_path / "prefect-home")
    run = subprocess.Popen(
        [sys.executable, "-m", "flows.cli.main", "run", "--policies", str(tmp_path / "policies"),
         "--results", str(tmp_path / "results")],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        process = psutil.Process(run.pid)
        deadline = time.monotonic() + 180
        server = None
        while server is None and time.monotonic() < deadline and run.poll() is None:
            time.sleep(0.5)
            server = _prefect_server(process)
        assert server is not None, "the run started a temporary Prefect server"
        journal = tmp_path / "results" / "journal"
        while not any(journal.glob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.5)  # the run is now waiting on the slow agent
        assert any(journal.glob("*.jsonl")), "the run got as far as calling the agent"
        os.kill(run.pid, signal.SIGKILL)
        run.wait(timeout=10)
        _, alive = psutil.wait_procs([server], timeout=15)
        assert alive == [], "the temporary server outlived the run it served"
    finally:
        if run.poll() is None:
            run.kill()
