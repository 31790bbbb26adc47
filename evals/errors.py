"""The one user-facing exception type, and the helpers that make its messages useful.

A user mistake (bad YAML, an unknown metric, a missing dataset column, an unreachable target)
raises :class:`UserError`. Its message names the file, the field and the fix, one problem per
line, so the CLI can print it without a traceback and exit 2. Anything else is a bug and keeps
its traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["FieldError", "Problem", "UserError", "did_you_mean", "display_path"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with something the user gave us."""

    file: str
    """The file the problem is in (as the user would type it)."""
    field: str
    """Where in the file: a dotted field path, or ``row 12: column 'input'``."""
    message: str
    """What is wrong and how to fix it."""

    def __str__(self) -> str:
        file, field, message = (_one_line(t) for t in (self.file, self.field, self.message))
        return f"{file}: {field}: {message}" if field else f"{file}: {message}"


def _one_line(text: str) -> str:
    r"""``text`` with line breaks and other control characters escaped as ``\n``.

    A key or value quoted from a file can then never break a problem across lines, nor forge
    a line that looks like another problem.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in text)


class UserError(Exception):
    """A mistake in user input; printed as ``file: field: message`` lines, exit code 2."""

    def __init__(self, problems: Problem | Iterable[Problem]) -> None:
        self.problems: list[Problem] = (
            [problems] if isinstance(problems, Problem) else list(problems)
        )
        if not self.problems:
            raise ValueError("UserError needs at least one problem")
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self) -> tuple[type[UserError], tuple[list[Problem]]]:
        """Pickled with its problems, so it crosses to and from worker processes intact."""
        return type(self), (self.problems,)

    @classmethod
    def single(cls, file: str, field: str, message: str) -> UserError:
        """Build an error with exactly one problem."""
        return cls(Problem(file, field, message))


class FieldError(ValueError):
    """A model validator's findings about fields beneath the model, each at its own location.

    Pydantic places an error raised by a model validator at the model itself; the YAML loader
    reads these locations (relative to the model) so that each problem is reported at the line
    of the field it is about, not at the top of the block.
    """

    def __init__(self, *found: tuple[tuple[str | int, ...], str]) -> None:
        if not found:
            raise ValueError("FieldError needs at least one finding")
        self.found: list[tuple[tuple[str | int, ...], str]] = list(found)
        super().__init__(
            "; ".join(
                f"{'.'.join(str(p) for p in loc)}: {message}" if loc else message
                for loc, message in self.found
            )
        )


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or a list of valid names."""
    options = sorted(set(choices))
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{close[0]}'?)"
    if len(options) <= 12:
        return f" (expected one of: {', '.join(options)})"
    return ""


def display_path(path: Path) -> str:
    """The path as the user would type it: relative to the working directory when possible."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError, RuntimeError):
        # Outside the working directory, or a symlink loop that cannot be resolved at all.
        return str(path)
