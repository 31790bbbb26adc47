"""Paths written in contracts and rule packs stay inside the project (symlinks included).

A contract, a rule pack or a dataset may come from a pull request, so a path in one must not
reach files elsewhere on the machine that runs the gate (``prompt: ../../../../etc/passwd``
would become the prompt sent to a model). Every such path is resolved, symlinks followed, and
must land inside the project root. Folders outside it are allowed only by the person running
the command, never by the file itself: ``IMPACTGATE_ALLOW_PATHS_OUTSIDE`` lists them
(separated like ``PATH``). See ``docs/design/hardening.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ALLOW_OUTSIDE_ENV", "allowed_folders", "outside_problem"]

ALLOW_OUTSIDE_ENV = "IMPACTGATE_ALLOW_PATHS_OUTSIDE"
"""Environment variable listing folders outside the project that paths may reach."""


def allowed_folders(root: Path) -> list[Path]:
    """The project root and the folders ``IMPACTGATE_ALLOW_PATHS_OUTSIDE`` names, resolved."""
    folders = [root]
    for entry in os.environ.get(ALLOW_OUTSIDE_ENV, "").split(os.pathsep):
        if entry.strip():
            folders.append(Path(entry.strip()))
    resolved = []
    for folder in folders:
        try:
            resolved.append(folder.resolve())
        except (OSError, RuntimeError):
            continue
    return resolved


def outside_problem(written: str, path: Path, root: Path) -> str | None:
    """Why ``path`` (``written`` in a file, resolved against its base) may not be used, or ``None``.

    Args:
        written: the path as the file wrote it, for the message.
        path: the path joined to the folder it is relative to.
        root: the project root it must stay inside.
    """
    if "\x00" in written:
        return f"{written!r} is not a path: it holds a NUL character"
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop (RuntimeError up to Python 3.12)
        return f"'{written}' is a symlink loop; point it at a real file"
    folders = allowed_folders(root)
    if any(real == folder or real.is_relative_to(folder) for folder in folders):
        return None
    written_inside = Path(os.path.abspath(path)).is_relative_to(os.path.abspath(root))
    via = " through a symlink" if written_inside else ""
    return (
        f"'{written}' leads outside the project{via} (to {real}); paths must stay inside "
        f"{folders[0]}, or the person running impactgate may allow a folder with "
        f"{ALLOW_OUTSIDE_ENV}"
    )
