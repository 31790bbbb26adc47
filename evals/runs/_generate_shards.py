"""Pure generation shards: cases in, outputs out, runnable in any worker process.

A live target's client does real work for every call (litellm: milliseconds of CPU to build
the request, parse the reply and price it), and one event loop does all of it for all the
calls in flight. Past a point the loop, not the provider, sets the pace. Sharding spreads the
calls over worker processes, each with its own event loop and an equal share of the
contract's ``concurrency`` and ``requests_per_minute``, so the provider never sees more than
the contract allows.

:func:`generate_shard` is the pure part: a contract path, the version the run evaluates and a
batch of cases in, one output per case out. A worker builds the contract's target once and
keeps it for every later shard. Only the contract's path, the version and the cases travel:
secrets (API keys, header values) are read from each worker's environment, never sent.

Two orchestrators map it: :func:`generate_in_processes`, the standard library's processes
(one per shard, started by the run and stopped with it), which ``impactgate run`` and the
engine use; and the ``evaluate-agent`` flow, which submits shards as tasks to a Dask task
runner's workers. Either way the run's session journals and caches each output in its own
process as it comes back (:func:`evals.runs.generate`), so a killed run resumes.
Nothing here imports Prefect or Dask.
"""

from __future__ import annotations

import multiprocessing
import pickle
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.contract import load_contract
from evals.dataset import Case, Dataset
from evals.errors import UserError, display_path
from evals.targets import (
    AgentVersion,
    LiveTarget,
    OnOutput,
    Output,
    Progress,
    Target,
    build_target,
)

__all__ = [
    "GenerationShard",
    "generate_in_processes",
    "generate_shard",
    "generation_shards",
    "loaded_targets",
]

_TARGETS: dict[tuple[str, str], Target] = {}
_LOCK = threading.Lock()

_STOP_S = 5.0
"""How long a stopped worker may take to exit before it is killed."""

_POLL_S = 0.5
"""How often the run checks that its worker processes are still alive while it waits."""


@dataclass(frozen=True)
class GenerationShard:
    """One batch of a run's cases and its share of the run's limits."""

    cases: tuple[Case, ...]
    concurrency: int
    """Calls in flight at once in this shard."""
    requests_per_minute: int | None
    """Request starts a minute in this shard (``None``: no limit)."""


def _shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` whole shares as even as possible (largest first)."""
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def generation_shards(
    cases: Sequence[Case],
    processes: int,
    concurrency: int,
    requests_per_minute: int | None = None,
    batch: int | None = None,
) -> list[GenerationShard]:
    """Split a run's cases and limits into shards for ``processes`` workers.

    Args:
        cases: the cases to call, in dataset order.
        processes: workers running shards at the same time.
        concurrency: the run's calls in flight, across every worker.
        requests_per_minute: the run's request starts a minute, across every worker.
        batch: ``None``: one shard per worker, the cases dealt out in turn (so each worker
            gets a like share of early and late, short and long cases), with the limits
            split exactly; a number: shards of at most that many consecutive cases, each
            with the smallest share, for an orchestrator that keeps ``processes`` shards in
            flight and journals each one as it finishes.

    Raises:
        ValueError: fewer calls in flight or requests a minute than workers.
    """
    if processes < 1:
        raise ValueError(f"processes must be at least 1, got {processes}")
    if concurrency < processes or (
        requests_per_minute is not None and requests_per_minute < processes
    ):
        raise ValueError(
            f"{processes} workers cannot share concurrency {concurrency} and "
            f"requests_per_minute {requests_per_minute}: each needs at least one of each"
        )
    if not cases:
        return []
    if batch is not None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, got {batch}")
        rpm = requests_per_minute // processes if requests_per_minute is not None else None
        return [
            GenerationShard(tuple(cases[i : i + batch]), concurrency // processes, rpm)
            for i in range(0, len(cases), batch)
        ]
    parts = min(processes, len(cases))
    concurrencies = _shares(concurrency, processes)[:parts]
    rates: list[int | None] = (
        list(_shares(requests_per_minute, processes)[:parts])
        if requests_per_minute is not None
        else [None] * parts
    )
    return [
        GenerationShard(tuple(cases[i::parts]), concurrencies[i], rates[i]) for i in range(parts)
    ]


def _target(contract_file: str, version: AgentVersion) -> Target:
    """The contract's target at ``version``, built (and preflighted) once per process.

    Raises:
        UserError: the contract cannot be loaded, a secret is missing from this worker's
            environment, or the contract no longer produces ``version``.
    """
    path = Path(contract_file).resolve()
    key = (str(path), version.hash)
    with _LOCK:
        built = _TARGETS.get(key)
        if built is not None:
            return built
        contract = load_contract(path)
        spec = contract.evals.target
        if spec.kind not in ("litellm", "http"):
            raise UserError.single(
                display_path(path),
                "evals.target.kind",
                f"a '{spec.kind}' target is not sharded over processes; only live targets "
                "(litellm, http) are",
            )
        # A live target never reads the dataset (only a replay target does): the shard's
        # cases are all it needs, so a worker does not load the whole golden set.
        target = build_target(contract, Dataset(contract.source, (), ""))
        if target.version().hash != version.hash and version.label in target.available_versions():
            target = target.at_version(version.label)
        if target.version().hash != version.hash:
            raise UserError.single(
                display_path(path),
                "evals.target",
                f"the contract now produces version {target.version()}, but the run evaluates "
                f"{version}: its prompt, model or params changed while the run was going. "
                "Start the run again",
            )
        target.preflight()  # this worker's environment has the secrets, or it says which not
        _TARGETS[key] = target
        return target


def generate_shard(
    contract_file: str,
    version: AgentVersion,
    cases: Sequence[Case],
    *,
    concurrency: int,
    requests_per_minute: int | None = None,
    progress: Progress | None = None,
    on_output: OnOutput | None = None,
) -> list[Output]:
    """Call the contract's target for one shard of a run; one output per case, in order.

    Gives what :meth:`evals.targets.Target.generate` gives for the same cases: failures are
    outputs with an error, never exceptions, and every output is redacted with this worker's
    secrets.

    Args:
        contract_file: the contract's path, as this worker sees it.
        version: the version the run evaluates; the worker's target must produce it.
        cases: the shard's cases.
        concurrency: this shard's calls in flight (its share of the contract's).
        requests_per_minute: this shard's share of the contract's pacing.
        progress: called with the number of this shard's cases done.
        on_output: sees each output as soon as it exists.

    Raises:
        UserError: the contract cannot be loaded, a secret is missing here, or the contract
            no longer produces ``version``.
    """
    target = _target(contract_file, version)
    assert isinstance(target, LiveTarget)
    shard = target.sharing(concurrency, requests_per_minute)
    return shard.generate(cases, progress, on_output)


def loaded_targets() -> int:
    """How many targets this process has built for shards (one per contract and version)."""
    with _LOCK:
        return len(_TARGETS)


# -- the standard library's processes --------------------------------------------------------


def _context() -> Any:
    """How worker processes start: forked where the platform allows it, else spawned.

    A forked worker starts in milliseconds with everything the run's process has imported
    (litellm alone takes seconds of CPU to import); it only builds its target and calls. On
    macOS and Windows, where fork is unsafe or absent, workers are spawned and import first.
    """
    if sys.platform == "linux":
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _sendable(exc: BaseException) -> BaseException:
    """``exc`` if it survives pickling, else a RuntimeError carrying its text and traceback."""
    try:
        pickle.loads(pickle.dumps(exc))
        return exc
    except Exception:
        text = "".join(traceback.format_exception(exc))
        return RuntimeError(f"a generation worker failed: {type(exc).__name__}: {exc}\n{text}")


def _shard_main(
    channel: Any,
    index: int,
    contract_file: str,
    version: AgentVersion,
    shard: GenerationShard,
) -> None:
    """A worker process: generate one shard, sending each output home as it exists."""
    # The run stops its workers itself (on an interrupt, an error or its end): an inherited
    # handler (an orchestrator's) must not turn that into cleanup that waits on the run.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        generate_shard(
            contract_file,
            version,
            shard.cases,
            concurrency=shard.concurrency,
            requests_per_minute=shard.requests_per_minute,
            on_output=lambda output: channel.put(("output", index, output)),
        )
        channel.put(("done", index, None))
    except BaseException as exc:  # reported to the run, which raises it there
        channel.put(("failed", index, _sendable(exc)))
    finally:
        channel.close()
        channel.join_thread()  # everything put is in the pipe before the process ends


def _check_alive(workers: Sequence[Any], running: set[int], shards: Sequence[Any]) -> None:
    """Raise if a worker that has not finished its shard is gone.

    A worker sends everything before it exits (``_shard_main`` waits for its queue), so one
    found dead here, after a quiet poll, died without finishing: killed, or crashed hard.

    Raises:
        RuntimeError: naming the worker, its exit code and its shard.
    """
    for index in sorted(running):
        code = workers[index].exitcode
        if code is not None:
            raise RuntimeError(
                f"generation worker {index} (pid {workers[index].pid}) exited with code {code} "
                f"before finishing its {len(shards[index].cases)} cases"
            )


def generate_in_processes(
    contract_file: str,
    version: AgentVersion,
    cases: Sequence[Case],
    progress: Progress | None = None,
    on_output: OnOutput | None = None,
    *,
    processes: int,
    concurrency: int,
    requests_per_minute: int | None = None,
) -> list[Output]:
    """Call every case from ``processes`` worker processes; one output per case, in order.

    Each worker takes one shard (:func:`generation_shards`: the cases dealt out in turn, the
    limits split exactly) and sends every output back the moment it exists; ``on_output``
    and ``progress`` see them here, in this process, in the order they arrive. The workers
    start with the call and are stopped when it returns or raises (a progress hook that
    raises, an interrupt), so nothing keeps calling for a run that is gone.

    Raises:
        UserError: a worker could not build the target (see :func:`generate_shard`).
        RuntimeError: a worker died without finishing its shard.
    """
    shards = generation_shards(cases, processes, concurrency, requests_per_minute)
    if not shards:
        return []
    context = _context()
    channel = context.Queue()
    workers = [
        context.Process(
            target=_shard_main,
            args=(channel, index, contract_file, version, shard),
            name=f"impactgate-generate-{index}",
            daemon=True,
        )
        for index, shard in enumerate(shards)
    ]
    produced: dict[str, Output] = {}
    running = set(range(len(workers)))
    try:
        for worker in workers:
            worker.start()
        while running:
            try:
                kind, index, payload = channel.get(timeout=_POLL_S)
            except queue.Empty:
                _check_alive(workers, running, shards)
                continue
            if kind == "output":
                output: Output = payload
                produced[output.case_id] = output
                if on_output is not None:
                    on_output(output)
                if progress is not None:
                    progress(len(produced))
            elif kind == "done":
                running.discard(index)
            else:
                raise payload
        for worker in workers:
            worker.join()
    finally:
        for worker in workers:
            if worker.is_alive():
                worker.terminate()
        for worker in workers:
            if worker.pid is not None:
                worker.join(timeout=_STOP_S)
                if worker.is_alive():
                    worker.kill()
                    worker.join()
        channel.close()
        channel.join_thread()
    missing = [case.id for case in cases if case.id not in produced]
    if missing:
        raise RuntimeError(f"{len(missing)} cases got no output (first: {missing[0]})")
    return [produced[case.id] for case in cases]
