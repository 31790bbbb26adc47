"""``impactgate validate``: every contract, dataset, recording and rule pack, all problems at once."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.markup import escape

from flows.cli._output import console, err_console, print_json

if TYPE_CHECKING:
    from evals.contract import Contract
    from evals.errors import Problem
    from evals.runs import EvalPlan


__all__ = ["validate"]

# Fields whose problems stop the checks that read them: a missing dataset is reported once,
# not again by the loader that would have read it.
_DATA_FIELDS = ("evals.dataset", "evals.target")
_SCORING_FIELDS = ("evals.policy", "evals.grounding")


class _Found:
    """Problems in the order found, each once (the same rule pack can be named twice)."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self._seen: set[str] = set()

    def add(self, problems: list[Problem]) -> None:
        for problem in problems:
            if str(problem) not in self._seen:
                self._seen.add(str(problem))
                self.problems.append(problem)


def _check_contract(contract: Contract, found: _Found) -> EvalPlan | None:
    """Every problem of one loaded contract; its plan when it can run."""
    from evals.contract import reference_problems
    from evals.dataset import load_dataset
    from evals.errors import UserError
    from evals.labelling import contract_labels
    from evals.runs import prepare
    from evals.scorers import build_scorers
    from evals.targets import build_target

    referenced = reference_problems(contract)
    found.add(referenced)
    fields = [p.field for p in referenced]
    data_ok = not any(f.startswith(_DATA_FIELDS) for f in fields)
    scoring_ok = not any(f.startswith(_SCORING_FIELDS) for f in fields)
    if scoring_ok:
        try:
            contract_labels(contract)  # the label file it names: read at every run otherwise
        except UserError as exc:
            found.add(exc.problems)
    if data_ok and scoring_ok:
        try:
            return prepare(contract)
        except UserError as exc:
            found.add(exc.problems)
    # prepare stops at the first broken piece; what it did not reach is checked on its own, so
    # a broken dataset does not hide a broken rule pack, nor a broken judge a broken target.
    if scoring_ok:
        try:
            build_scorers(contract)
        except UserError as exc:
            found.add(exc.problems)
    if data_ok and not scoring_ok:
        try:
            dataset = load_dataset(contract.resolve(contract.evals.dataset))
            build_target(contract, dataset).check(dataset.cases)
        except UserError as exc:
            found.add(exc.problems)
    return None


@click.command("validate")
@click.option("--policies", default="policies", show_default=True, help="Folder of contracts.")
@click.option("--json", "as_json", is_flag=True, help="Print the findings as JSON only.")
def validate(policies: str, as_json: bool) -> None:
    """Check every contract in POLICIES and every rule pack in POLICIES/rules.

    Each contract is checked with its dataset, recordings, target, rule packs, judge and
    rollback hook, and prefect.yaml's nightly schedules against the contracts'; one broken
    contract never stops the others. Problems print as `file:line: field: message`; the exit
    code is 2 if there are any.
    """
    from evals.contract import discover_contracts, load_contract, outside_problem
    from evals.errors import Problem, UserError, display_path
    from evals.policy import load_rule_pack
    from flows.deployments import schedule_problems

    found = _Found()
    checked: list[dict[str, object]] = []
    loaded = []
    for path in discover_contracts(policies):
        try:
            contract = load_contract(path)
        except UserError as exc:
            found.add(exc.problems)
            continue
        loaded.append(contract)
        plan = _check_contract(contract, found)
        if plan is not None:
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
    root = Path(policies).resolve().parent
    for pack in sorted((Path(policies) / "rules").glob("*.yaml")):
        outside = outside_problem(pack.name, pack, root)
        if outside is not None:
            found.add([Problem(display_path(pack), "", outside)])
            continue
        try:
            load_rule_pack(pack)
        except UserError as exc:
            found.add(exc.problems)
    # prefect.yaml's nightly schedules must be the contracts' evals.schedule.
    found.add(schedule_problems(policies, contracts=loaded))
    problems = found.problems
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
            # A problem quotes what the file holds, which may look like rich markup ("[/x]").
            err_console.print(f"[red]error[/red] {escape(str(problem))}", soft_wrap=True)
    if problems:
        raise click.exceptions.Exit(2)
