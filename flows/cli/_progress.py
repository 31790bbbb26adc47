"""Progress for long work: a bar on a terminal, a plain line every so often in CI logs."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

from flows.cli._output import err_console

__all__ = ["progress", "progress_factory"]

Advance = Callable[[int], None]


@contextmanager
def progress(total: int, label: str, every_s: float = 10.0) -> Iterator[Advance]:
    """Yield ``advance(n)``; draws a bar when stderr is a terminal, else logs every ``every_s``.

    The plain lines say how far, how fast and how long is left, e.g.
    ``billing-assistant 3f2a…: 640/2000 (151.2/s, ~9 s left)``, and always end with the total.
    """
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

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
            left = f", ~{(total - done) / rate:.0f} s left" if done < total and rate > 0 else ""
            err_console.print(f"{label}: {done}/{total} ({rate:.1f}/s{left})", soft_wrap=True)
            last = now

    yield advance


def progress_factory(
    every_s: float = 10.0,
) -> Callable[[str, int], AbstractContextManager[Advance]]:
    """``factory(label, total)`` for flows that report progress through the CLI."""

    def factory(label: str, total: int) -> AbstractContextManager[Advance]:
        return progress(total, label, every_s)

    return factory
