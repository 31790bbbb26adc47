"""``impactgate schema``: write (or check) the JSON Schemas and the generated reference docs.

What is generated, and how the regions of a page are marked, is in ``evals.reference``.
"""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli._output import console, err_console

__all__ = ["schema"]


@click.command("schema")
@click.option("--policies", default="policies", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--docs",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of Markdown pages with generated regions  [default: docs beside --policies]",
)
@click.option("--check", is_flag=True, help="Exit 1 if a committed schema or page is out of date.")
def schema(policies: Path, docs: Path | None, check: bool) -> None:
    """Write the contract and rule-pack JSON Schemas and the generated reference docs."""
    from evals.reference import generated

    stale = []
    for path, text in generated(
        policies, docs if docs is not None else policies.parent / "docs"
    ).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            console.print(f"wrote {path}")
    if check and stale:
        for path in stale:
            err_console.print(
                f"{path} is out of date with the models; run `impactgate schema` and commit it"
            )
        raise click.exceptions.Exit(1)
    if not stale:
        console.print("schemas and reference docs are up to date")
