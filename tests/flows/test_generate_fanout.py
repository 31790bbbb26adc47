"""A live target's generation fans out in flows: the run's own processes, Dask or Ray workers.

Both against a real local server, through ``nightly`` as ``impactgate run`` calls it: the
stored outputs are those of an unsharded run, in case order, and the server never sees more
than the contract's concurrency.
"""

from __future__ import annotations

import asyncio
import copy
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evals.runs import loaded_targets
from evals.store import ResultsStore
from evals.testing import FakeOpenAIServer
from flows import nightly
from flows._runners import local_cluster, task_runners
from tests.helpers import CONTEXT, CONTRACT, litellm_project, write_jsonl

pytestmark = [pytest.mark.usefixtures("prefect_harness"), pytest.mark.model]

KEY = "sk-fanout-test-0123456789abcdef"
N_CASES = 24


@pytest.fixture
def server() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(latency_s=0.05) as running:
        yield running


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FAKE_LLM_KEY", KEY)
    monkeypatch.setenv("IMPACTGATE_CACHE_DIR", str(tmp_path / "cache"))


def _project(tmp: Path, server: FakeOpenAIServer, processes: int) -> str:
    data = copy.deepcopy(CONTRACT)
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    path = litellm_project(tmp, server.url, data, concurrency=4, processes=processes, cache=False)
    rows = [
        {
            "id": f"c{i:02d}",
            "input": f"question {i}: when is refund {i} paid?",
            "contexts": [CONTEXT],
        }
        for i in range(N_CASES)
    ]
    write_jsonl(tmp / "datasets" / "tiny-agent" / "cases.jsonl", rows)
    return str(path.parent)


def _outputs(results: Path) -> list[tuple[str, str | None]]:
    store = ResultsStore(results)
    [run] = store.runs()
    seen = {s.case_id: s.output for s in store.samples(run)}
    return sorted(seen.items())


def test_the_runs_own_processes_generate_like_one(tmp_path: Path, server: FakeOpenAIServer) -> None:
    one = _project(tmp_path / "one", server, processes=1)
    two = _project(tmp_path / "two", server, processes=2)
    [alone] = asyncio.run(nightly(policies=one, results=str(tmp_path / "r1"), task_runner="thread"))
    [sharded] = asyncio.run(
        nightly(policies=two, results=str(tmp_path / "r2"), task_runner="thread")
    )
    assert server.calls == 2 * N_CASES
    assert server.max_in_flight <= 4
    assert sharded["outputs"]["called"] == N_CASES
    assert sharded["outputs"]["errors"] == 0
    assert _outputs(tmp_path / "r2") == _outputs(tmp_path / "r1")
    assert sharded["verdict"] == alone["verdict"]


def _unsharded_then(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[str, int]:
    """The unsharded run (into ``r1``); the sharded project's policies and targets built here."""
    one = _project(tmp_path / "one", server, processes=1)
    two = _project(tmp_path / "two", server, processes=2)
    monkeypatch.setattr("flows.evaluate.GENERATION_BATCH", 5)  # 24 cases: 5 batches
    asyncio.run(nightly(policies=one, results=str(tmp_path / "r1"), task_runner="thread"))
    return two, loaded_targets()


def _check_sharded(
    tmp_path: Path, server: FakeOpenAIServer, sharded: dict[str, Any], built: list[int], here: int
) -> None:
    """The sharded run (``r2``) answered like the unsharded one, within the contract's limit."""
    assert server.calls == 2 * N_CASES
    assert server.max_in_flight <= 4, "two batches in flight, two calls each"
    assert sharded["outputs"]["errors"] == 0
    assert _outputs(tmp_path / "r2") == _outputs(tmp_path / "r1")
    assert sorted(built) in ([1], [0, 1], [1, 1]), "each worker built the target once"
    assert loaded_targets() == here, "the run's own process built no shard target"


def test_dask_workers_generate_batches_and_build_the_target_once(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client

    two, here = _unsharded_then(tmp_path, server, monkeypatch)
    with (
        local_cluster(2) as cluster,  # the key comes from the inherited environment
        Client(cluster) as client,
    ):
        [sharded] = asyncio.run(
            nightly(
                policies=two, results=str(tmp_path / "r2"), task_runner=cluster.scheduler_address
            )
        )
        built = client.run(loaded_targets)
    assert len(built) == 2
    _check_sharded(tmp_path, server, sharded, list(built.values()), here)


def _targets_built() -> tuple[int, int]:
    """(process id, targets built) of the Ray worker that runs this."""
    time.sleep(0.2)  # held long enough that the other worker takes the next one
    return os.getpid(), loaded_targets()


@pytest.mark.usefixtures("ray_token")
def test_ray_workers_generate_batches_and_build_the_target_once(
    tmp_path: Path, server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IMPACTGATE_RAY_CPUS", "2")
    two, here = _unsharded_then(tmp_path, server, monkeypatch)
    # Opened here, so the workers can be asked afterwards; the run finds it up and uses it.
    with task_runners("ray"):  # the key comes from the inherited environment
        import ray

        [sharded] = asyncio.run(
            nightly(policies=two, results=str(tmp_path / "r2"), task_runner="ray")
        )
        built = dict(ray.get([ray.remote(_targets_built).remote() for _ in range(6)]))
    assert len(built) <= 2, "two worker processes, reused"
    _check_sharded(tmp_path, server, sharded, list(built.values()), here)
