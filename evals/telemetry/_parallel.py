"""Reading a large OTLP JSON file on every core: blocks of lines, each decoded in a worker.

Decoding, mapping and masking are Python and hold the interpreter lock, so one process reads
about 30,000 spans a second on a 2-core machine (benchmarks/RESULTS.md). For a large file the
reading process splits the lines into blocks of about ``block_bytes`` and worker processes turn
each block into a masked Arrow table, with the same code as the single process (``SpanTable``,
the agent's ``TelemetryMasker``); the reading process writes the tables in file order, so the
last batch is the one marked complete. Workers start when the pool is made, forked from a
fork server that has imported the decoder and the masking (no inherited threads or locks).
"""

from __future__ import annotations

import gc
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.context import BaseContext
from pathlib import Path

import pyarrow as pa

from evals.errors import Problem
from evals.telemetry._mask import TelemetryMasker
from evals.telemetry._otlp import OtlpError, json_line, open_maybe_gzip, read_json_request
from evals.telemetry._problems import ProblemLog
from evals.telemetry._spans import SpanTable

__all__ = ["Block", "BlockResult", "WorkerPool", "json_blocks", "no_cyclic_gc", "read_block"]

_MASKING: TelemetryMasker | None = None


@dataclass
class Block:
    """Lines of a Collector file, to decode in a worker."""

    data: bytes
    first_line: int
    source: str
    work_item_attribute: str


@dataclass
class BlockResult:
    """A block decoded: its spans masked as Arrow, and what was wrong."""

    table: pa.Table
    rejected: int
    duplicates: int
    problems: list[Problem]
    problem_count: int
    warnings: list[Problem] = field(default_factory=list)


_PAUSE = threading.Lock()
_pauses = 0
_was_enabled = False


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector while a chunk of decoded telemetry is alive.

    A chunk is hundreds of thousands of small dicts and lists; each allocation batch makes the
    collector walk all of them again (five times the cost of parsing, measured). They hold no
    reference cycles, so reference counting frees them; the collector resumes when the last
    pause ends (pauses from several threads nest).
    """
    global _pauses, _was_enabled
    with _PAUSE:
        if _pauses == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _pauses += 1
    try:
        yield
    finally:
        with _PAUSE:
            _pauses -= 1
            if _pauses == 0 and _was_enabled:
                gc.enable()


def _start_worker(policies: str | None, default_packs: list[str], cache_size: int) -> None:
    global _MASKING
    _MASKING = TelemetryMasker(policies, default_packs, cache_size)


def _ready() -> None:
    """Nothing: submitted once per worker so that each starts before the first block."""


def read_block(block: Block, masking: TelemetryMasker | None = None) -> BlockResult:
    """Decode, map and mask one block of lines (in a worker, or here with ``masking``)."""
    masking = masking or _MASKING
    if masking is None:
        raise RuntimeError("read_block runs in a worker started by WorkerPool")
    table = SpanTable(block.work_item_attribute)
    log = ProblemLog(block.source)
    rejected = 0
    with no_cyclic_gc():
        for offset, raw in enumerate(block.data.splitlines(keepends=True)):
            if not raw.strip():
                continue
            where = f"line {block.first_line + offset}"
            request, error = json_line(raw)
            if error is not None:
                log.add(where, error)
                continue
            try:
                _, bad = read_json_request(request, table, log, where)
            except OtlpError as exc:
                log.add(where, str(exc))
                continue
            rejected += bad
        arrow = table.to_arrow(masking)
    warnings = list(masking.warnings)
    masking.warnings.clear()
    return BlockResult(arrow, rejected, table.duplicates, log.problems, log.count, warnings)


def json_blocks(
    path: Path, source: str, work_item_attribute: str, block_bytes: int
) -> Iterator[Block]:
    """The file's lines in blocks of about ``block_bytes`` (whole lines)."""
    with open_maybe_gzip(path) as handle:
        lines: list[bytes] = []
        size = 0
        first = 1
        for line_no, raw in enumerate(handle, start=1):
            lines.append(raw)
            size += len(raw)
            if size >= block_bytes:
                yield Block(b"".join(lines), first, source, work_item_attribute)
                lines, size, first = [], 0, line_no + 1
        if lines:
            yield Block(b"".join(lines), first, source, work_item_attribute)


def _context() -> BaseContext:
    """How workers start: forked from a server process that has imported what they run.

    The server is a fresh single-threaded process (nothing inherited from this one's threads
    or locks, as with ``spawn``); it imports the decoder, the masking and pandas (which
    pyarrow loads on its first array conversion) once, so each worker starts without
    importing them again, here and in every later pool. Where there is no fork server
    (Windows), workers are spawned.
    """
    if "forkserver" not in get_all_start_methods():
        return get_context("spawn")
    context = get_context("forkserver")
    context.set_forkserver_preload(["__main__", __name__, "pandas"])
    return context


class WorkerPool:
    """Worker processes that decode blocks, each with its own masker built like ``masking``.

    Args:
        masking: the masking to reproduce in each worker (its policies folder, default packs
            and cache size).
        workers: how many processes.
    """

    def __init__(self, masking: TelemetryMasker, workers: int) -> None:
        self.workers = workers
        self._pool = ProcessPoolExecutor(
            workers,
            mp_context=_context(),
            initializer=_start_worker,
            initargs=(  # absolute: the packs are resolved already, and a worker must not
                # resolve a relative one against the policies folder a second time
                str(masking.policies.resolve()) if masking.policies is not None else None,
                [str(p.resolve()) for p in masking.default_packs],
                masking.cache_size,
            ),
        )
        for _ in range(workers):  # start (import) every worker now, while the file is hashed
            self._pool.submit(_ready)

    def map(self, blocks: Iterator[Block]) -> Iterator[BlockResult]:
        """Each block's result, in order; at most two blocks per worker in flight."""
        pending: deque[Future[BlockResult]] = deque()
        for block in blocks:
            pending.append(self._pool.submit(read_block, block))
            while len(pending) > 2 * self.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()

    def close(self) -> None:
        """Stop the workers."""
        self._pool.shutdown(cancel_futures=True)
