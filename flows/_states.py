"""Failed states that carry what the run found, in a form Prefect can report.

A flow that ends ``Failed`` must give Prefect something it can turn into an exception: a
worker's engine raises the final state's exception when the run ends, and a plain dict there
becomes ``TypeError: Unexpected result for failed state`` with an engine traceback instead of
the run's own reason. So a failed run's data travels inside :class:`FlowFailed`, and callers
that want it (the CLI runs flows in its own process) read it back with :func:`run_outcome`.

Prefect 3.9's worker entry point then logs every ``Failed`` run once more, as "Engine
execution exited with unexpected exception" with a traceback through its own frames. For a
run that failed on purpose that record says nothing the state's message and "Finished in
state Failed(...)" have not said, so it is dropped for :class:`FlowFailed` only; any other
exception keeps it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prefect import State

__all__ = ["FlowFailed", "failed", "run_outcome"]

_ENGINE_EXIT = "Engine execution exited with unexpected exception"


class FlowFailed(Exception):
    """A run that ended ``Failed`` on purpose, with what it found (summaries, a decision)."""

    def __init__(self, message: str, data: Any) -> None:
        super().__init__(message)
        self.data = data
        """What the run found, as plain data (the value it returns when it does not fail)."""

    def __reduce__(self) -> tuple[type[FlowFailed], tuple[str, Any]]:
        return type(self), (str(self), self.data)


def failed(message: str, data: Any, name: str = "Failed") -> State:
    """A ``Failed`` state named ``name`` whose result is a :class:`FlowFailed` holding ``data``.

    Args:
        message: why the run failed, shown as the state's message in the UI and the logs.
        data: what the run found; :func:`run_outcome` returns it.
        name: the state's name; a named failure (``Rejected``) reads as what happened.
    """
    from prefect.states import Failed

    return Failed(name=name, message=message, data=FlowFailed(message, data))


def run_outcome(state: State) -> Any:
    """What a finished run found: its return value, or the data of a :class:`FlowFailed`.

    Raises:
        BaseException: the run failed for any other reason (its own exception, unchanged).
    """
    value = state.result(raise_on_failure=False)
    if isinstance(value, FlowFailed):
        return value.data
    if isinstance(value, BaseException):
        raise value
    return value


class _DeliberateFailureFilter(logging.Filter):
    """Drops the engine's exit traceback for a run that failed on purpose (module docstring)."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, FlowFailed) and record.msg == _ENGINE_EXIT)


logging.getLogger("prefect.flow_runs").addFilter(_DeliberateFailureFilter())
