"""Options several commands share, declared once so they read and behave the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

__all__ = ["file_option", "force_option", "policies_option", "refuse_existing", "results_option"]

F = TypeVar("F", bound=Callable[..., Any])


def results_option(help: str = "Results root (path or URI).") -> Callable[[F], F]:
    """``--results``: the results root, ``results`` by default."""
    return click.option("--results", default="results", show_default=True, help=help)


def policies_option(help: str = "Folder of contracts.") -> Callable[[F], F]:
    """``--policies``: the folder of contracts, ``policies`` by default."""
    return click.option("--policies", default="policies", show_default=True, help=help)


def file_option(flag: str, dest: str, help: str, *, required: bool = False) -> Callable[[F], F]:
    """A file the command writes (never a folder): ``flag`` into the parameter ``dest``."""
    return click.option(
        flag,
        dest,
        type=click.Path(dir_okay=False, path_type=Path),
        required=required,
        default=None,
        help=help,
    )


force_option = click.option(
    "--force", is_flag=True, help="Replace the --out file if it exists (else it is refused)."
)


def refuse_existing(path: Path, force: bool, flag: str = "--out") -> None:
    """Refuse to write over anything already named ``path`` unless ``--force`` was given.

    Raises:
        UserError: something (a file, a symbolic link, also a dangling one) has the name.
    """
    import os

    from evals.errors import UserError, display_path

    if not force and os.path.lexists(path):
        raise UserError.single(
            display_path(path),
            flag,
            "already exists; choose another name, or add --force to replace it",
        )
