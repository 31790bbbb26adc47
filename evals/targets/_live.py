"""Live targets: call something for every case, concurrently, paced, retried, redacted.

The shared part of the ``litellm`` and ``http`` targets: a fixed pool of ``concurrency``
workers on one event loop pulls cases in order, an optional rate limiter spaces request starts,
every call goes through the one retry policy (``evals.llm.call_with_retries``), and each
output is redacted before anyone sees it (``on_output``, the journal, the cache, the run).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import copy
import gc
from abc import abstractmethod
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, contextmanager
from typing import Any, Generic, Self, TypeVar

from evals.contract import HttpTargetSpec, LiteLLMTargetSpec
from evals.dataset import Case
from evals.llm import RateLimiter, RetryPolicy
from evals.targets._base import OnOutput, Output, Progress, Target
from evals.targets._secrets import Redactor

__all__ = ["LiveTarget", "run_coroutine"]

S = TypeVar("S")
T = TypeVar("T")


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from synchronous code, even inside a running loop.

    A notebook or an async orchestrator already runs a loop in this thread, where
    ``asyncio.run`` refuses; there the coroutine gets its own loop in a worker thread.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@contextmanager
def _collector_tuned_for_calls() -> Iterator[None]:
    """Garbage collection sized for a burst of client calls, restored afterwards.

    Everything alive when a run starts (imported modules, the dataset, litellm's price and
    provider tables) outlives it: frozen, it is not rescanned by every full collection. A
    client call allocates thousands of short-lived objects, so young collections run every
    few calls; a higher first threshold makes them rarer. Both only change when memory is
    scanned, not what is freed. In A/B runs on this project's 2-core machines (litellm target,
    concurrency 32, local server) they were worth roughly 3% of throughput, less than the
    run-to-run noise but never a loss.
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], _YOUNG_THRESHOLD), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()


_YOUNG_THRESHOLD = 20_000


def retry_policy(spec: LiteLLMTargetSpec | HttpTargetSpec) -> RetryPolicy:
    """The contract's retry settings as the policy the call loop uses."""
    retry = spec.retry
    return RetryPolicy(
        attempts=retry.attempts,
        base_delay_s=retry.base_delay_s,
        max_delay_s=retry.max_delay_s,
        timeout_s=retry.timeout_s,
    )


class LiveTarget(Target, Generic[S]):
    """A target that makes one (retried) request per case.

    Subclasses open a per-run session (a client bound to the run's event loop) and turn one
    case into one :class:`Output`; failures are outputs with ``error``, never exceptions.
    """

    def __init__(self, spec: LiteLLMTargetSpec | HttpTargetSpec) -> None:
        self.concurrency = spec.concurrency
        self.requests_per_minute = spec.requests_per_minute
        self.processes = spec.processes
        self.retry = retry_policy(spec)
        self.cacheable = spec.cache

    def sharing(self, concurrency: int, requests_per_minute: int | None) -> Self:
        """The same target calling with a share of the run's limits (one shard of a run).

        Raises:
            ValueError: a share below one call in flight or one request a minute.
        """
        if concurrency < 1 or (requests_per_minute is not None and requests_per_minute < 1):
            raise ValueError(
                f"a shard needs at least one call in flight and one request a minute, got "
                f"concurrency {concurrency}, requests_per_minute {requests_per_minute}"
            )
        shard = copy.copy(self)
        shard.concurrency = concurrency
        shard.requests_per_minute = requests_per_minute
        shard.processes = 1
        return shard

    @abstractmethod
    def secret_env_names(self) -> list[str]:
        """Environment variables whose values are secrets of this target."""

    def redactor(self) -> Redactor:
        """Redacts the current values of this target's secret variables."""
        return Redactor.from_env(self.secret_env_names())

    @abstractmethod
    def session(
        self, cases: Sequence[Case], limiter: RateLimiter | None
    ) -> AbstractAsyncContextManager[S]:
        """Open what the calls of one run share (a client), inside the run's event loop.

        Anything that can be checked before the first request (rendering every prompt) is
        checked here, so a configuration mistake raises before anything is called.
        """

    @abstractmethod
    async def call(self, session: S, case: Case) -> Output:
        """Produce the output of one case (retries included); never raises for a failed call."""

    def generate(
        self,
        cases: Sequence[Case],
        progress: Progress | None = None,
        on_output: OnOutput | None = None,
    ) -> list[Output]:
        """Call every case with at most ``concurrency`` in flight; outputs in case order."""
        if not cases:
            return []
        with _collector_tuned_for_calls():
            return run_coroutine(self._generate(cases, progress, on_output))

    async def _generate(
        self, cases: Sequence[Case], progress: Progress | None, on_output: OnOutput | None
    ) -> list[Output]:
        redactor = self.redactor()
        limiter = RateLimiter(self.requests_per_minute) if self.requests_per_minute else None
        outputs: list[Output | None] = [None] * len(cases)
        pending = iter(enumerate(cases))
        finished = 0
        loop = asyncio.get_running_loop()
        # Each call runs as its own task, in a copy of the context the run started with:
        # client libraries keep per-call state in context variables (litellm does), and a
        # worker that has made hundreds of calls would otherwise drag it from call to call.
        # In A/B runs here (litellm, concurrency 32) this closed a 5-10% gap to litellm's own
        # throughput; benchmarks/RESULTS.md has the two side by side.
        pristine = contextvars.copy_context()

        async with self.session(cases, limiter) as session:

            async def worker() -> None:
                nonlocal finished
                # Workers share one iterator: cases start in dataset order, and a slow case
                # holds one worker, not a slot in a batch everyone waits for.
                for index, case in pending:
                    try:
                        output = await loop.create_task(
                            self.call(session, case), context=pristine.copy()
                        )
                    except Exception as exc:  # a bug in one call must not take the run down
                        output = Output(case.id, None, error=f"{type(exc).__name__}: {exc}")
                    output = redactor.output(output)
                    outputs[index] = output
                    if on_output is not None:
                        on_output(output)
                    finished += 1
                    if progress is not None:
                        progress(finished)

            try:
                async with asyncio.TaskGroup() as group:
                    for _ in range(min(self.concurrency, len(cases))):
                        group.create_task(worker())
            except BaseExceptionGroup as failed:
                # Only the journal, the cache or a progress hook can raise here; surface the
                # first failure as itself rather than wrapped in a group.
                raise failed.exceptions[0] from None
        done = [o for o in outputs if o is not None]
        if len(done) != len(cases):
            raise RuntimeError(f"{len(cases) - len(done)} cases got no output")  # pragma: no cover
        return done
