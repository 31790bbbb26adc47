"""``impactgate validate``: every contract, dataset, recording and rule pack, all problems at once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from flows.cli._output import console, err_console, print_json

if TYPE_CHECKING:
    from evals.errors import Problem


__all__ = ["validate"]


@click.command("validate")
@click.option("--policies", default="policies", show_default=True, help="Folder of contracts.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON only.")
def validate(policies: str, as_json: bool) -> None:
    """Check every contract in POLICIES and every rule pack in POLICIES/rules.

    Each contract is checked with its dataset, recordings, target and rule packs. Problems
    print as `file: field: message`; the exit code is 2 if there are any.
    """
    from evals.contract import discover_contracts, load_contract
    from evals.errors import UserError, display_path
    from evals.policy import load_rule_pack
    from evals.runs import prepare

    problems: list[Problem] = []
    checked: list[dict[str, object]] = []
    for path in discover_contracts(policies):
        try:
            plan = prepare(load_contract(path))
        except UserError as exc:
            problems.extend(exc.problems)
            continue
        checked.append(
            {
                "contract": display_path(path),
                "agent": plan.contract.agent,
                "cases": len(plan.dataset),
                "dataset": display_path(plan.dataset.path),
                "target": plan.target.kind,
                "version": plan.target.version().label,
            }
        )
    for pack in sorted((Path(policies) / "rules").glob("*.yaml")):
        try:
            load_rule_pack(pack)
        except UserError as exc:
            problems.extend(exc.problems)
    if as_json:
        print_json({"ok": not problems, "checked": checked, "problems": [str(p) for p in problems]})
    else:
        for item in checked:
            console.print(
                f"[green]ok[/green] {item['contract']}: {item['cases']} cases in {item['dataset']}, "
                f"{item['target']} target at {item['version']}",
                soft_wrap=True,
            )
        for problem in problems:
            err_console.print(f"[red]error[/red] {problem}", soft_wrap=True)
    if problems:
        raise click.exceptions.Exit(2)
