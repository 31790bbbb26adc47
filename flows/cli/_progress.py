"""Progress for long work: a bar on a terminal, a plain line every so often in CI logs."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from flows.cli._output import err_console

__all__ = ["progress"]


@contextmanager
def progress(total: int, label: str, every_s: float = 10.0) -> Iterator[callable]:  # type: ignore[valid-type]
    """Yield ``advance(n)``; draws a bar when stderr is a terminal, else logs every ``every_s``."""
    if sys.stderr.isatty():
        with Progress(
            TextColumn(label),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
        ) as bar:
            task = bar.add_task(label, total=total)
            yield lambda n: bar.advance(task, n)
        return
    done, last = 0, time.monotonic()
    started = last

    def advance(n: int) -> None:
        nonlocal done, last
        done += n
        now = time.monotonic()
        if now - last >= every_s or done >= total:
            rate = done / max(now - started, 1e-9)
            err_console.print(f"{label}: {done}/{total} ({rate:.1f}/s)")
            last = now

    yield advance
