"""``impactgate schema``: write (or check) the JSON Schemas editors use for contracts and rule packs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from evals.contract import Contract
from evals.policy import RulePack
from flows.cli._output import console, err_console

__all__ = ["schema", "schemas"]


def schemas(policies: Path) -> dict[Path, str]:
    """Schema file path → its JSON text, generated from the pydantic models."""

    def render(model: Any, title: str) -> str:
        data = model.model_json_schema()
        data["title"] = title
        data["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        return json.dumps(data, indent=2, sort_keys=False) + "\n"

    return {
        policies / "contract.schema.json": render(Contract, "impactgate Agent Impact Contract"),
        policies / "rules" / "rulepack.schema.json": render(
            RulePack, "impactgate policy rule pack"
        ),
    }


@click.command("schema")
@click.option("--policies", default="policies", show_default=True, type=click.Path(path_type=Path))
@click.option("--check", is_flag=True, help="Exit 1 if the committed schemas are out of date.")
def schema(policies: Path, check: bool) -> None:
    """Write the contract and rule-pack JSON Schemas beside the policies."""
    stale = []
    for path, text in schemas(policies).items():
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
            err_console.print(f"{path} is out of date; run `impactgate schema`")
        raise click.exceptions.Exit(1)
    if not stale:
        console.print("schemas are up to date")
