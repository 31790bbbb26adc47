"""Progress for long work: a bar on a terminal, a plain line every so often in CI logs."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from flows.cli._output import err_console

__all__ = ["progress", "progress_factory"]

Advance = Callable[[int], None]


_live: Any = None
"""The one rich display every open bar of this process shares (agents run at once)."""
_open_bars = 0
_lock = threading.Lock()


@contextmanager
def _bar(label: str, total: int) -> Iterator[Advance]:
    """A bar in the shared display, started with the first bar and stopped after the last."""
    global _live, _open_bars
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    with _lock:
        if _live is None:
            _live = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            _live.start()
        _open_bars += 1
        live = _live
        task = live.add_task(label, total=total)
    try:
        yield lambda n: live.advance(task, n)
    finally:
        with _lock:
            live.remove_task(task)
            _open_bars -= 1
            if _open_bars == 0:
                live.stop()
                _live = None


@contextmanager
def progress(total: int, label: str, every_s: float = 10.0) -> Iterator[Advance]:
    """Yield ``advance(n)``; draws a bar when stderr is a terminal, else logs every ``every_s``.

    The plain lines say how far, how fast and how long is left, e.g.
    ``billing-assistant 3f2a…: 640/2000 (151.2/s, ~9 s left)``, and always end with the total.
    Bars opened at the same time (agents evaluated at once) share one display.
    """
    if sys.stderr.isatty():
        with _bar(label, total) as bar:
            yield bar
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
