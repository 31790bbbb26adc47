"""The deployments on a real Prefect server: deploy prefect.yaml, run the nightly from a worker.

About a minute: a `prefect server` and a process worker are started on 127.0.0.1,
`prefect deploy --all` registers the project's prefect.yaml, and the nightly deployment runs;
its escalation and rollback subflows must complete and the webhook must be received.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from evals.store import ResultsStore, ledger_for
from tests.helpers import http_receiver

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.server


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(url: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"prefect server at {url} not healthy after {timeout_s}s")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[dict[str, str]]:
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
    }
    process = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        wait_healthy(env["PREFECT_API_URL"], 120)
        yield env
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def test_the_nightly_deployment_escalates_and_rolls_back_on_a_real_server(
    tmp_path: Path, server: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results"
    prefect = str(BIN / "prefect")
    subprocess.run(
        [prefect, "work-pool", "create", "impactgate", "--type", "process"],
        env=server,
        check=True,
        capture_output=True,
    )
    deployed = subprocess.run(
        [prefect, "--no-prompt", "deploy", "--all"],
        cwd=ROOT,
        env={**server, "PWD": str(ROOT)},
        capture_output=True,
        text=True,
    )
    assert deployed.returncode == 0, deployed.stderr + deployed.stdout
    with http_receiver() as receiver:
        worker_env = {
            **server,
            "ACCOUNT_ALERTS_WEBHOOK": receiver.url,
            "RETURNS_ALERTS_WEBHOOK": receiver.url,
            "IMPACTGATE_SERVING_FILE": str(tmp_path / "serving.json"),
            "IMPACTGATE_CACHE_DIR": str(tmp_path / "cache"),
        }
        worker = subprocess.Popen(
            [prefect, "worker", "start", "--pool", "impactgate"],
            env=worker_env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            run = subprocess.run(
                [
                    prefect, "deployment", "run", "nightly/nightly", "--param", f"results={results}",
                    "--watch", "--watch-timeout", "600",
                ],
                env=server, capture_output=True, text=True, timeout=700,
            )  # fmt: skip
        finally:
            os.killpg(worker.pid, signal.SIGTERM)
            worker.wait(timeout=30)
        assert "Completed" in run.stdout + run.stderr, run.stdout + run.stderr
        assert sorted(b["kind"] for b in receiver.bodies) == ["escalate", "rollback"]

    decisions = ResultsStore(results).decisions()
    assert sorted(d.kind for d in decisions) == ["escalate", "rollback"]
    entry = ledger_for(str(results)).get("account-support")
    assert entry is not None
    assert (entry.active_version, entry.level) == ("v1", "approval")
    assert (tmp_path / "serving.json").is_file(), "the rollback hook ran in the worker"

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_API_URL", server["PREFECT_API_URL"])
    with (
        temporary_settings(updates={PREFECT_API_URL: server["PREFECT_API_URL"]}),
        get_client(sync_client=True) as client,
    ):
        for name in ("escalate", "rollback"):
            runs = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[name])))
            assert runs, f"no {name} subflow run"
            assert all(r.state is not None and r.state.is_completed() for r in runs), name
