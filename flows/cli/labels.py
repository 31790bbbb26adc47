"""``impactgate labels``: export answers for the owner to label, and import the labels."""

from __future__ import annotations

from pathlib import Path

import click

from flows.cli._options import (
    file_option,
    force_option,
    policies_option,
    refuse_existing,
    results_option,
)
from flows.cli._output import console, err_console, print_json

__all__ = ["labels"]


@click.group("labels")
def labels() -> None:
    """The labelling loop: check the judges against your own labels (docs/calibration.md)."""


@labels.command("export")
@click.argument("agent")
@click.option("--n", "count", type=click.IntRange(min=2), default=60, show_default=True)
@file_option("--out", "out_path", "Label file to write: .csv or .jsonl.", required=True)
@force_option
@click.option(
    "--kind",
    type=click.Choice(["grounding", "policy"]),
    default="grounding",
    show_default=True,
    help="grounding: is this answer supported by its passages? policy: is this a real violation?",
)
@results_option()
@policies_option()
def export(
    agent: str, count: int, out_path: Path, force: bool, kind: str, results: str, policies: str
) -> None:
    """Write N answers of AGENT's latest run for a person to label.

    Chosen across the judge's score range, both sides of its threshold; each row has the
    question, passages, answer (masked like stored outputs), the judge's claims and reasons
    or the policy findings, and an empty `label` column: 1 = unsupported / a real violation,
    0 = fine.
    """
    from evals.contract import load_contract, select_contracts
    from evals.errors import display_path
    from evals.labelling import export_rows, write_label_file
    from evals.store import ResultsStore

    if out_path.suffix.lower() not in (".csv", ".jsonl"):
        from evals.errors import UserError

        raise UserError.single("command line", "--out", f"'{out_path}' must end in .csv or .jsonl")
    refuse_existing(out_path, force)
    [path] = select_contracts(policies, [agent])
    contract = load_contract(path)
    run, rows = export_rows(contract, ResultsStore(results), kind, count)  # type: ignore[arg-type]
    try:
        write_label_file(rows, out_path, replace=force)
    except FileExistsError:  # written by someone else while the rows were chosen
        refuse_existing(out_path, force=False)
        raise
    flagged = sum(1 for r in rows if r["judge_flag"])
    console.print(
        f"{display_path(out_path)}: {len(rows)} {kind} items of {agent} run {run.run_id} "
        f"({flagged} the judge flags, {len(rows) - flagged} it passes); fill in `label` "
        f"(1 = {'unsupported' if kind == 'grounding' else 'a real violation'}, 0 = fine), "
        f"then: impactgate labels import {display_path(out_path)} --by YOU",
        soft_wrap=True,
        markup=False,
    )


@labels.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--by", "by", required=True, help="Who labelled the rows (stored with each label).")
@results_option()
@policies_option()
@click.option("--json", "as_json", is_flag=True, help="Print what was stored as JSON only.")
def import_(file: Path, by: str, results: str, policies: str, as_json: bool) -> None:
    """Validate FILE's labels and store them per agent, with who labelled them and when.

    Every bad row is reported (unknown id, missing or invalid label, a duplicate that says
    otherwise) and nothing is stored until all are fixed. Importing the same file again
    changes nothing. New labels are checked against the agent's latest calibration: a judge
    that no longer agrees with you opens an incident.
    """
    from evals.labelling import check_drift, import_labels
    from evals.store import ResultsStore, ledger_for

    store = ResultsStore(results)
    result = import_labels(file, by, store, Path(policies))
    findings = check_drift(store, ledger_for(results), result.stored) if result.stored else []
    if as_json:
        print_json(
            {
                "new": result.new,
                "changed": result.changed,
                "unchanged": result.unchanged,
                "agents": result.agents,
                "drift": [
                    {
                        "agent": f.agent,
                        "status": f.drift.status,
                        "reason": f.drift.reason,
                        "incident": f.incident.id if f.incident else None,
                    }
                    for f in findings
                ],
            }
        )
        return
    console.print(
        f"{', '.join(result.agents)}: {result.new} new, {result.changed} changed, "
        f"{result.unchanged} unchanged label(s)"
        + (" — nothing to store" if not (result.new or result.changed) else ""),
        soft_wrap=True,
        markup=False,
    )
    for finding in findings:
        stream = err_console if finding.drift.drifted else console
        suffix = f" (incident #{finding.incident.id})" if finding.incident else ""
        stream.print(
            f"{finding.agent}: {finding.drift.reason}{suffix}", soft_wrap=True, markup=False
        )
