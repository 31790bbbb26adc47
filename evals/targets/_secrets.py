"""Secrets of a run, and their redaction from everything recorded.

A target reads its secrets (API keys, header values) from environment variables named in
the contract. Those values can come back in places we record: a model echoing a prompt that
contained a key, an error message quoting a header, a log line. Every such text passes
through a :class:`Redactor` first, which replaces each value with ``[REDACTED:ENV_NAME]``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evals.targets._base import Output

__all__ = ["MIN_SECRET_LENGTH", "Redactor"]

MIN_SECRET_LENGTH = 6
"""Shorter values are not treated as secrets: replacing ``1`` or ``yes`` everywhere would
mangle every record and protect nothing."""

_SCHEMES = ("bearer ", "basic ", "token ", "apikey ")


@dataclass(frozen=True)
class Redactor:
    """Replaces secret values with ``[REDACTED:ENV_NAME]``."""

    secrets: tuple[tuple[str, str], ...] = ()
    """``(env name, value)`` pairs, longest value first so no secret is half-replaced."""

    @classmethod
    def from_env(cls, names: Iterable[str]) -> Redactor:
        """The values of the named environment variables that are set.

        A header value like ``Bearer abc123...`` also redacts its token alone, which is how
        it may be echoed back.
        """
        pairs: dict[str, str] = {}
        for name in names:
            value = os.environ.get(name, "").strip()
            if len(value) < MIN_SECRET_LENGTH:
                continue
            pairs[value] = name
            for scheme in _SCHEMES:
                if value.lower().startswith(scheme):
                    token = value[len(scheme) :].strip()
                    if len(token) >= MIN_SECRET_LENGTH:
                        pairs[token] = name
        ordered = sorted(pairs.items(), key=lambda item: -len(item[0]))
        return cls(tuple((name, value) for value, name in ordered))

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, value: str) -> str:
        """``value`` with every secret replaced."""
        for name, secret in self.secrets:
            if secret in value:
                value = value.replace(secret, f"[REDACTED:{name}]")
        return value

    def optional(self, value: str | None) -> str | None:
        """Like :meth:`text`, passing ``None`` through."""
        return None if value is None or not self.secrets else self.text(value)

    def value(self, data: Any) -> Any:
        """Any JSON-like value with every string in it redacted (keys included)."""
        if not self.secrets:
            return data
        if isinstance(data, str):
            return self.text(data)
        if isinstance(data, dict):
            return {self.value(k): self.value(v) for k, v in data.items()}
        if isinstance(data, list):
            return [self.value(v) for v in data]
        if isinstance(data, tuple):
            return tuple(self.value(v) for v in data)
        return data

    def output(self, output: Output) -> Output:
        """An output with its text, contexts, tool calls and error redacted."""
        if not self.secrets:
            return output
        return replace(
            output,
            text=self.optional(output.text),
            contexts=self.value(output.contexts),
            tool_calls=self.value(output.tool_calls),
            error=self.optional(output.error),
        )

    @contextmanager
    def filtering_logs(self) -> Iterator[None]:
        """Redact every log record handled while the context is open.

        The filter goes on every handler that exists (a logger-level filter would miss
        records propagated from child loggers), and comes off again afterwards.
        """
        if not self.secrets:
            yield
            return
        log_filter = _RedactingFilter(self)
        loggers = [logging.getLogger()] + [
            lg
            for lg in logging.Logger.manager.loggerDict.values()
            if isinstance(lg, logging.Logger)
        ]
        handlers = {id(h): h for lg in loggers for h in lg.handlers}
        for handler in handlers.values():
            handler.addFilter(log_filter)
        try:
            yield
        finally:
            for handler in handlers.values():
                handler.removeFilter(log_filter)


class _RedactingFilter(logging.Filter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        # Handlers share the record; redacting it once redacts it for all of them.
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is the logging module's problem, not ours
            return True
        record.msg, record.args = self.redactor.text(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redactor.text(record.exc_text)
        return True
