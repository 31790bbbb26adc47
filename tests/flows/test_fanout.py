"""Scoring batches fan out through a Prefect task runner: threads, Dask or Ray workers.

A real Dask cluster of two worker processes, and a real local Ray instance of two CPUs, score
the same run as the thread runner does, score for score, and each worker builds the
contract's scorers (and loads their models) once however many batches it gets.
"""

from __future__ import annotations

import asyncio
import copy
import os
import subprocess
import sys
import threading
import time
import warnings
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from evals.errors import UserError
from evals.runs import loaded_scorer_sets
from evals.store import ResultsStore
from flows import nightly
from flows._runners import local_cluster, parallel_slots, runner_spec, task_runners
from flows.evaluate import Batch, batch_bounds
from tests.helpers import CONTRACT, make_project
from tests.servers import free_port

pytestmark = pytest.mark.usefixtures("prefect_harness")


def _policy_project(tmp_path: Path) -> str:
    """A project whose suites need no model (policy, cost, latency), 8 cases in 4 batches."""
    data = copy.deepcopy(CONTRACT)
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    make_project(tmp_path, data)
    return str(tmp_path / "policies")


def _samples(results: Path) -> dict[tuple[str, str], tuple[float | None, bool | None]]:
    store = ResultsStore(results)
    [run] = store.runs()
    return {(s.case_id, s.metric): (s.value, s.passed) for s in store.samples(run)}


def test_dask_workers_score_like_threads_and_build_scorers_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from distributed import Client
    from prefect_dask import DaskTaskRunner

    policies = _policy_project(tmp_path)
    monkeypatch.setattr("flows.evaluate.SCORING_BATCH", 2)  # 8 cases: 4 batches
    asyncio.run(nightly(policies=policies, results=str(tmp_path / "threads"), task_runner="thread"))
    with (
        local_cluster(2) as cluster,  # report to this session's Prefect API
        Client(cluster) as client,
    ):
        [summary] = asyncio.run(
            nightly(
                policies=policies,
                results=str(tmp_path / "dask"),
                task_runner=cluster.scheduler_address,
            )
        )
        built = client.run(loaded_scorer_sets)
        with DaskTaskRunner(address=cluster.scheduler_address) as runner:
            assert parallel_slots(runner) == 2, "two workers of one thread"
    assert summary["verdict"] in ("pass", "fail")
    threads, dask = _samples(tmp_path / "threads"), _samples(tmp_path / "dask")
    assert len(dask) == 8 * 3
    assert dask == threads, "the same scores wherever the batches ran"
    # Four batches went to the workers; each worker built the scorers at most once.
    assert sorted(built.values()) in ([0, 1], [1, 1])


def _worker_settings() -> tuple[str | None, bool]:
    """What a Dask worker runs with: the heap trim threshold, and whether it profiles."""
    import dask

    return os.environ.get("MALLOC_TRIM_THRESHOLD_"), dask.config.get(
        "distributed.worker.profile.enabled"
    )


def test_the_local_clusters_workers_keep_the_c_librarys_heap_and_do_not_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from distributed import Client

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)
    monkeypatch.setenv("IMPACTGATE_DASK_WORKERS", "1")
    with task_runners("dask") as factory, Client(factory().address) as client:
        seen = list(client.run(_worker_settings).values())
    # Dask's nannies would set MALLOC_TRIM_THRESHOLD_=65536: scoring paid ~5% more CPU a case
    assert seen == [(None, False)]


def test_two_runs_local_clusters_at_once_serve_http_on_free_loopback_ports_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import psutil

    monkeypatch.setenv("IMPACTGATE_DASK_WORKERS", "1")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with task_runners("dask") as first, task_runners("dask") as second:
            ports = [_http_port(factory().address) for factory in (first, second)]
            # The schedulers run in this process: where their HTTP servers listen.
            listening = {
                c.laddr.port: c.laddr.ip
                for c in psutil.Process().net_connections(kind="tcp")
                if c.status == psutil.CONN_LISTEN
            }
    assert [str(w.message) for w in caught if "already in use" in str(w.message)] == []
    assert ports[0] != ports[1]
    assert [listening.get(port) for port in ports] == ["127.0.0.1", "127.0.0.1"]


def _http_port(scheduler: str) -> int:
    """The port on which the scheduler at ``scheduler`` serves its HTTP routes."""
    from distributed import Client

    with Client(scheduler) as client:
        return int(client.scheduler_info()["services"]["dashboard"])


def _scorer_sets_built() -> tuple[int, int]:
    """(process id, scorer sets built) of the Ray worker that runs this."""
    time.sleep(0.2)  # held long enough that the other worker takes the next one
    return os.getpid(), loaded_scorer_sets()


@pytest.mark.usefixtures("ray_token")
def test_ray_workers_score_like_threads_and_build_scorers_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    policies = _policy_project(tmp_path)
    monkeypatch.setattr("flows.evaluate.SCORING_BATCH", 2)  # 8 cases: 4 batches
    monkeypatch.setenv("IMPACTGATE_RAY_CPUS", "2")
    asyncio.run(nightly(policies=policies, results=str(tmp_path / "threads"), task_runner="thread"))
    with ExitStack() as stack:
        # Opened from a thread that is gone before the run, as nightly may: Ray outlives it.
        factories: list[Any] = []

        def open_ray() -> None:
            try:
                factories.append(stack.enter_context(task_runners("ray")))
            except Exception as error:  # raised again below, in the test's thread
                factories.append(error)

        opener = threading.Thread(target=open_ray)
        opener.start()
        opener.join()
        if isinstance(factories[0], Exception):
            raise factories[0]
        import ray

        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:"), "loopback only"
        # The run finds Ray up in this process and uses it, as a notebook's ray.init() would.
        [summary] = asyncio.run(
            nightly(policies=policies, results=str(tmp_path / "ray"), task_runner="ray")
        )
        built = dict(ray.get([ray.remote(_scorer_sets_built).remote() for _ in range(6)]))
        with factories[0]() as runner:
            assert parallel_slots(runner) == 2, "two CPUs"
    assert not ray.is_initialized(), "the instance stops with the run"
    assert summary["verdict"] in ("pass", "fail")
    threads, on_ray = _samples(tmp_path / "threads"), _samples(tmp_path / "ray")
    assert len(on_ray) == 8 * 3
    assert on_ray == threads, "the same scores wherever the batches ran"
    # Two worker processes, reused for every batch: each built the scorers at most once.
    assert len(built) <= 2
    assert sorted(built.values()) in ([1], [0, 1], [1, 1])


@pytest.mark.server
@pytest.mark.usefixtures("ray_token")  # the head starts with it; the client sends it
def test_a_ray_clusters_workers_score_like_threads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``ray://HOST:PORT``: a cluster started apart (``ray start --head``), joined as a client."""
    policies = _policy_project(tmp_path)
    monkeypatch.setattr("flows.evaluate.SCORING_BATCH", 2)  # 8 cases: 4 batches
    root = Path(__file__).resolve().parents[2]
    client_port = free_port()
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block",
         f"--port={free_port()}", f"--ray-client-server-port={client_port}", "--num-cpus=2",
         "--include-dashboard=false", "--disable-usage-stats"],
        cwd=root,
        # On 127.0.0.1 only; the workers import this checkout, as they would where deployed.
        env={**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(root)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        asyncio.run(
            nightly(policies=policies, results=str(tmp_path / "threads"), task_runner="thread")
        )
        # The head needs a few seconds; Ray's client retries its connection for 30.
        [summary] = asyncio.run(
            nightly(
                policies=policies,
                results=str(tmp_path / "cluster"),
                task_runner=f"ray://127.0.0.1:{client_port}",
            )
        )
    finally:
        head.terminate()  # --block: the head stops its own processes
        head.wait(timeout=60)
    import ray

    assert not ray.is_initialized(), "the client disconnected after the run"
    assert summary["verdict"] in ("pass", "fail")
    assert _samples(tmp_path / "cluster") == _samples(tmp_path / "threads")


@pytest.mark.parametrize(
    ("cases", "slots", "sizes"),
    [
        (0, 2, []),
        (3, 2, [1, 2]),
        (500, 1, [500]),
        (501, 1, [250, 251]),
        (1200, 2, [300, 300, 300, 300]),  # not 500, 500, 200: no worker idles at the end
        (2000, 2, [500, 500, 500, 500]),
        (2000, 3, [333, 333, 334, 333, 333, 334]),
        (1, 4, [1]),
    ],
)
def test_batches_are_few_equal_and_a_multiple_of_the_workers(
    cases: int, slots: int, sizes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("flows.evaluate.SCORING_BATCH", 500)
    bounds = batch_bounds(cases, slots)
    assert [end - start for start, end in bounds] == sizes
    assert [start for start, _ in bounds[1:]] == [end for _, end in bounds[:-1]], "contiguous"
    assert all(size <= 500 for size in sizes)


def test_a_thread_pool_counts_as_one_slot() -> None:
    from prefect.task_runners import ThreadPoolTaskRunner

    with ThreadPoolTaskRunner(max_workers=8) as runner:
        assert parallel_slots(runner) == 1


def test_a_batch_pickles_whole_decodes_where_used_and_prefect_does_not_walk_it(
    tmp_path: Path,
) -> None:
    import pickle

    from prefect.utilities.collections import visit_collection

    from evals.contract import load_contract
    from evals.runs import prepare

    plan = prepare(load_contract(make_project(tmp_path)))
    cases = list(plan.dataset.cases)
    batch = Batch(cases, plan.target.generate(cases, None, None))
    copy_ = pickle.loads(pickle.dumps(batch))
    # A Dask scheduler unpickles the task and pickles it again for its worker: neither step
    # decodes a case (for a local cluster that scheduler is the flow's own process).
    relayed = pickle.loads(pickle.dumps(copy_))
    assert relayed._cases is None
    assert relayed._payload is not None
    assert relayed.cases == batch.cases
    assert relayed._payload is None
    assert copy_.cases == batch.cases
    assert copy_.outputs == batch.outputs
    assert copy_.__dask_tokenize__() == batch.__dask_tokenize__()
    assert Batch(cases, batch.outputs).__dask_tokenize__() != batch.__dask_tokenize__()
    seen: list[object] = []
    visit_collection({"batch": batch}, visit_fn=seen.append)
    assert not any(isinstance(item, type(cases[0])) for item in seen), "no case visited"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("thread", "thread"),
        ("dask", "dask"),
        ("tcp://10.0.0.5:8786", "tcp://10.0.0.5:8786"),
        ("dask://scheduler:8786", "dask://scheduler:8786"),
        ("ray", "ray"),
        ("ray://head:10001", "ray://head:10001"),
    ],
)
def test_runner_specs(value: str, expected: str) -> None:
    assert runner_spec(value) == expected


def test_runner_spec_default_and_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMPACTGATE_TASK_RUNNER", raising=False)
    assert runner_spec(None) == "thread"
    monkeypatch.setenv("IMPACTGATE_TASK_RUNNER", "dask")
    assert runner_spec(None) == "dask"
    monkeypatch.setenv("IMPACTGATE_TASK_RUNNER", "ray://head:10001")
    assert runner_spec(None) == "ray://head:10001"
    monkeypatch.setenv("IMPACTGATE_TASK_RUNNER", "spark")
    with pytest.raises(UserError, match=r"\$IMPACTGATE_TASK_RUNNER.*unknown task runner 'spark'"):
        runner_spec(None)
    with pytest.raises(UserError, match=r"--task-runner.*'threads'.*ray://HOST:10001"):
        runner_spec("threads")
    with pytest.raises(UserError, match="unknown task runner 'ray://'"):
        runner_spec("ray://")


def test_a_local_ray_instance_needs_a_number_of_cpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMPACTGATE_RAY_CPUS", "all")
    with (
        pytest.raises(UserError, match=r"\$IMPACTGATE_RAY_CPUS.*'all' is not a number of CPUs"),
        task_runners("ray"),
    ):
        pass


_SERVER_DIED = ConnectionAbortedError(
    "Initialization failure from server:\nRuntimeError: Starting Ray client server failed. "
    "See ray_client_server_23000.err for detailed logs."
)


def _scripted_ray(monkeypatch: pytest.MonkeyPatch, failures: list[Exception]) -> list[str]:
    """``ray.init`` failing with ``failures`` in turn, then joining; the calls, in order."""
    import ray

    calls: list[str] = []

    def init(*args: Any, **options: Any) -> None:
        calls.append("init")
        if failures:
            raise failures.pop(0)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("shutdown"))
    return calls


def test_a_ray_join_is_retried_once_when_the_heads_client_server_dies_starting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from flows._runners import _ray

    calls = _scripted_ray(monkeypatch, [_SERVER_DIED])
    with _ray("ray://127.0.0.1:10001"):
        assert calls == ["init", "shutdown", "init"]
    assert calls[-1] == "shutdown"

    calls = _scripted_ray(monkeypatch, [_SERVER_DIED, _SERVER_DIED])
    with pytest.raises(UserError, match="no Ray cluster answered"), _ray("ray://127.0.0.1:1"):
        pass
    assert calls == ["init", "shutdown", "init"]

    unreachable = ConnectionError("ray client connection timeout")
    calls = _scripted_ray(monkeypatch, [unreachable])
    with pytest.raises(UserError, match="no Ray cluster answered"), _ray("ray://127.0.0.1:1"):
        pass
    assert calls == ["init"], "an unreachable cluster is not asked twice"


def _run_refused(tmp_path: Path, *options: str) -> Any:
    """``impactgate run`` on a fresh project with ``options``; it must refuse before starting."""
    from click.testing import CliRunner

    from flows.cli.main import cli

    make_project(tmp_path)
    result = CliRunner().invoke(
        cli,
        ["run", "--policies", str(tmp_path / "policies"), "--results", str(tmp_path / "r"),
         *options],
    )  # fmt: skip
    assert result.exit_code == 2
    return result


def test_run_refuses_an_unknown_task_runner_before_starting(tmp_path: Path) -> None:

    result = _run_refused(tmp_path, "--task-runner", "spark")
    assert "--task-runner: unknown task runner 'spark'" in result.output
    assert not (tmp_path / "r").exists()


def test_agents_at_once_default_and_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:

    from flows._runners import agents_at_once_limit

    monkeypatch.delenv("IMPACTGATE_AGENTS_AT_ONCE", raising=False)
    assert agents_at_once_limit(None) == 1
    monkeypatch.setenv("IMPACTGATE_AGENTS_AT_ONCE", "3")
    assert agents_at_once_limit(None) == 3
    assert agents_at_once_limit(2) == 2
    monkeypatch.setenv("IMPACTGATE_AGENTS_AT_ONCE", "many")
    with pytest.raises(UserError, match=r"\$IMPACTGATE_AGENTS_AT_ONCE.*'many' is not a number"):
        agents_at_once_limit(None)
    result = _run_refused(tmp_path, "--agents-at-once", "0")
    assert "--agents-at-once: 0 agents at once: give 1 or more" in result.output
    assert not (tmp_path / "r").exists()
