"""Which Prefect task runner a run's shards go to: threads here, a Dask or a Ray cluster.

``--task-runner`` (``impactgate run``), the ``task_runner`` parameter of the ``nightly`` and
``evaluate-agent`` flows, or ``$IMPACTGATE_TASK_RUNNER`` (a ``prefect.yaml`` job variable)
name one of:

- ``thread`` (the default): Prefect's thread pool in the run's own process;
- ``dask``: a local Dask cluster of worker processes, started once for the whole run
  (``$IMPACTGATE_DASK_WORKERS`` processes, default 2) and stopped after;
- ``dask://HOST:PORT`` or ``tcp://HOST:PORT``: the scheduler of an existing Dask cluster,
  whose workers must have impactgate installed and see the contracts and datasets at the
  same paths;
- ``ray``: a local Ray instance (``$IMPACTGATE_RAY_CPUS`` CPUs, default 2: as many worker
  processes), started once for the whole run and stopped after;
- ``ray://HOST:PORT``: the Ray Client server of an existing Ray cluster (port 10001 by
  default), whose workers must likewise have impactgate and the files.

Prefect's own ``prefect-dask`` and ``prefect-ray`` runners do the work; impactgate schedules
nothing itself.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from evals.errors import UserError

__all__ = [
    "AGENTS_AT_ONCE_ENV",
    "LOCAL_HTTP_ADDRESS",
    "RUNNER_ENV",
    "WORKER_CONFIG",
    "RunnerFactory",
    "agents_at_once_limit",
    "local_cluster",
    "parallel_slots",
    "runner_spec",
    "shard_runner",
    "sharing",
    "task_runners",
]

RUNNER_ENV = "IMPACTGATE_TASK_RUNNER"
AGENTS_AT_ONCE_ENV = "IMPACTGATE_AGENTS_AT_ONCE"
WORKERS_ENV = "IMPACTGATE_DASK_WORKERS"
RAY_CPUS_ENV = "IMPACTGATE_RAY_CPUS"

WORKER_CONFIG = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.disk": False,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
}
"""Dask settings of the local cluster's workers: no sampling profiler, no disk counters, and
the C library's own heap policy.

The profiler and the disk counters feed the dashboard, which a local cluster here does not
serve. The profiler samples the task thread's stack every 10 ms and walks it: spaCy's deep
stacks made that cost a worker about 6% of a core (``docs/deploy.md``). Dask's nannies also
start workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which makes glibc hand the top of the
heap back to the system after almost every free, and turns off its adaptive threshold for
mapping large blocks: scoring (spaCy's arrays) then spent 6–13% more CPU a case in system
calls and page faults (``benchmarks/scoring_processes.py``) than with glibc's defaults, which
the run's own process keeps (with :func:`evals._heap.bound_native_heap` once models load). A
value the user exports still wins.
"""

LOCAL_HTTP_ADDRESS = "127.0.0.1:0"
"""Where a local cluster's scheduler serves its HTTP routes: any free port on loopback."""

RunnerFactory = Callable[[], Any]
"""Makes a fresh Prefect task runner for one flow run (a runner serves one flow at a time)."""


def runner_spec(value: str | None, where: str = "--task-runner") -> str:
    """The task runner asked for (``value``, else ``$IMPACTGATE_TASK_RUNNER``, else thread).

    Raises:
        UserError: not ``thread``, ``dask``, ``ray``, a Dask scheduler's or a Ray Client
            server's address.
    """
    if not value:
        value, where = os.environ.get(RUNNER_ENV, "").strip() or "thread", f"${RUNNER_ENV}"
    if value in ("thread", "dask", "ray") or value.startswith(("dask://", "tcp://", "tls://")):
        return value
    if value.startswith("ray://") and value.removeprefix("ray://").strip("/"):
        return value
    raise UserError.single(
        where,
        "",
        f"unknown task runner {value!r}; use 'thread' (default), 'dask' or 'ray' (a local "
        "cluster for the run), the address of a Dask scheduler (tcp://HOST:8786) or of a Ray "
        "cluster's client server (ray://HOST:10001)",
    )


def _count(env: str, what: str) -> int:
    """A positive whole number from ``$env`` (default 2), or a UserError naming the variable."""
    text = os.environ.get(env, "2").strip()
    if not text.isdigit() or int(text) < 1:
        raise UserError.single(f"${env}", "", f"{text!r} is not a number of {what} (1 or more)")
    return int(text)


def _worker_env() -> dict[str, str]:
    """The Prefect API the local workers report task runs to: the one this process uses.

    Without it each worker process would start a temporary Prefect server of its own (slow,
    and its task runs would not show under the run's flow).
    """
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        from prefect.server.api.server import SubprocessASGIServer
        from prefect.settings import PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS

        server = SubprocessASGIServer()  # the temporary server flows here use (a no-op start)
        server.start(timeout=PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS.value())
        url = server.api_url
    return {"PREFECT_API_URL": str(url)}


@contextmanager
def task_runners(spec: str) -> Iterator[RunnerFactory]:
    """Open what ``spec`` needs for a whole run and yield a factory of task runners.

    A local Dask cluster or Ray instance starts here once (workers keep their loaded models
    across every agent of the run) and stops when the context closes.
    """
    if spec == "thread":
        from prefect.task_runners import ThreadPoolTaskRunner

        yield ThreadPoolTaskRunner
        return
    if spec == "ray" or spec.startswith("ray://"):
        from prefect_ray import RayTaskRunner

        with _ray(spec):
            # The runner finds this process's Ray initialized: it uses it and leaves it up.
            yield RayTaskRunner
        return
    from prefect_dask.task_runners import DaskTaskRunner

    if spec != "dask":
        address = "tcp://" + spec.removeprefix("dask://") if spec.startswith("dask://") else spec
        yield lambda: DaskTaskRunner(address=address)
        return
    with local_cluster(_count(WORKERS_ENV, "worker processes")) as cluster:
        yield lambda: DaskTaskRunner(address=cluster.scheduler_address)


@contextmanager
def local_cluster(workers: int) -> Iterator[Any]:
    """A local Dask cluster of ``workers`` single-thread worker processes, for one run.

    Everything listens on loopback. The workers take :data:`WORKER_CONFIG` and report task
    runs to this process's Prefect API (:func:`_worker_env`). The scheduler's HTTP routes
    (health, metrics) go on a free port (:data:`LOCAL_HTTP_ADDRESS`): Dask's default, 8787,
    is taken by a second run or the user's own cluster, and Dask warns when it is.
    """
    import dask
    from distributed import LocalCluster

    with (
        dask.config.set(WORKER_CONFIG),  # the workers (spawned by nannies) take this config
        LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=LOCAL_HTTP_ADDRESS,
            host="127.0.0.1",
            env=_worker_env(),
        ) as cluster,
    ):
        yield cluster


LOCAL_RAY_LOOPBACK = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Read by Ray when imported: ``0`` makes a local instance listen on 127.0.0.1 only.

Ray otherwise binds its local instance to the machine's network address (as a cluster's
head node would), where a run's instance has no business being reachable.
"""


def _ray_options(spec: str) -> tuple[tuple[str, ...], dict[str, Any]]:
    """``ray.init``'s arguments for ``spec``: a local instance, or a cluster's client server.

    Workers report task runs to this process's Prefect API (``runtime_env``): a local
    instance's to the one this process uses, started if it is the temporary one; a cluster's
    to ``PREFECT_API_URL`` when it is set (a temporary server here is out of its reach).
    """
    if spec == "ray":
        # "local": a new instance, never a cluster that `ray start` or $RAY_ADDRESS announces.
        options: dict[str, Any] = {
            "address": "local",
            "num_cpus": _count(RAY_CPUS_ENV, "CPUs"),
            "include_dashboard": False,
            "runtime_env": {"env_vars": _worker_env()},
        }
        return (), options
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    return (spec,), {"runtime_env": {"env_vars": {"PREFECT_API_URL": str(url)}}} if url else {}


@contextmanager
def _ray(spec: str) -> Iterator[None]:
    """Ray started (or joined) for the run, and stopped after, unless it was up already.

    ``ray.init`` and ``ray.shutdown`` run in a thread of their own that lives as long as the
    context: Ray's processes die with the thread that started them (Linux's parent-death
    signal), and a run may open this context from a short-lived thread.

    Raises:
        UserError: the cluster at a ``ray://`` address cannot be reached.
    """
    if spec == "ray":
        os.environ.setdefault(LOCAL_RAY_LOOPBACK, "0")
    import ray

    if ray.is_initialized():  # a notebook's own ray.init(): used as it is, left up
        yield
        return
    args, options = _ray_options(spec)
    started, done = threading.Event(), threading.Event()
    failure: list[Exception] = []

    def hold() -> None:
        try:
            try:
                ray.init(*args, **options)
            except ConnectionError as error:
                if not (args and _server_start_failed(error)):
                    raise
                ray.shutdown()  # joined once more: the head starts a new client server
                ray.init(*args, **options)
        except Exception as error:  # handed to the caller's thread
            failure.append(error)
            return
        finally:
            started.set()
        done.wait()
        ray.shutdown()

    holder = threading.Thread(target=hold, name="ray-instance", daemon=True)
    holder.start()
    started.wait()
    if failure:
        if isinstance(failure[0], ConnectionError) and args:
            raise UserError.single(
                spec,
                "",
                f"no Ray cluster answered ({failure[0]}); start one whose head runs the client "
                "server (ray start --head --ray-client-server-port 10001), give a cluster with "
                "token authentication its token here (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN=...), "
                "or use 'ray' for a local instance",
            ) from failure[0]
        raise failure[0]
    try:
        yield
    finally:
        done.set()
        holder.join()


def _server_start_failed(error: Exception) -> bool:
    """The head answered but the server it started for this client died (a retry gets another).

    Ray's client server runs one process per client; on a busy head that process can crash
    before it answers (a segfault inside grpc, seen on 2 cores), which the client reports as
    an initialization failure rather than as an unreachable cluster.
    """
    return "Starting Ray client server failed" in str(error)


def parallel_slots(runner: Any) -> int:
    """How many tasks ``runner`` runs truly side by side: the cluster's worker threads or CPUs.

    A thread pool in the run's own process counts as one: CPU-bound Python scoring holds
    the GIL whichever thread runs it.
    """
    from prefect.task_runners import ThreadPoolTaskRunner

    if isinstance(runner, ThreadPoolTaskRunner):
        return 1
    from prefect_dask.task_runners import DaskTaskRunner

    if isinstance(runner, DaskTaskRunner):
        return max(1, sum(runner.client.nthreads().values()))  # type: ignore[no-untyped-call]
    from prefect_ray import RayTaskRunner

    if isinstance(runner, RayTaskRunner):
        import ray

        return max(1, int(ray.cluster_resources().get("CPU", 1)))  # type: ignore[no-untyped-call]
    return 1


_shared: RunnerFactory | None = None


@contextmanager
def sharing(factory: RunnerFactory) -> Iterator[None]:
    """Let every ``evaluate-agent`` flow of this process use ``factory`` (one cluster a run)."""
    global _shared
    previous, _shared = _shared, factory
    try:
        yield
    finally:
        _shared = previous


@contextmanager
def shard_runner(spec: str | None) -> Iterator[Any]:
    """A started task runner for one flow's shards.

    The one the caller shares (``nightly`` opens it once for every agent) when there is one,
    else the one ``spec`` (or ``$IMPACTGATE_TASK_RUNNER``) names, opened for this flow only.
    """
    if _shared is not None:
        with _shared() as runner:
            yield runner
        return
    with task_runners(runner_spec(spec)) as factory, factory() as runner:
        yield runner


def agents_at_once_limit(value: int | None, where: str = "agents_at_once") -> int:
    """How many agents a nightly run evaluates at once (``value``, else the environment, else 1).

    Raises:
        UserError: not a whole number of at least 1.
    """
    if value is None:
        text = os.environ.get(AGENTS_AT_ONCE_ENV, "").strip() or "1"
        if not text.isdigit():
            raise UserError.single(
                f"${AGENTS_AT_ONCE_ENV}", "", f"{text!r} is not a number of agents (1 or more)"
            )
        value, where = int(text), f"${AGENTS_AT_ONCE_ENV}"
    if value < 1:
        raise UserError.single(where, "", f"{value} agents at once: give 1 or more")
    return value
