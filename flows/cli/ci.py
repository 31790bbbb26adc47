"""``impactgate ci``: gate a change on its agents' contracts and on regressions vs a baseline."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import click

from flows.cli._options import file_option, policies_option, results_option
from flows.cli._output import console, err_console, print_json

if TYPE_CHECKING:
    from rich.table import Table

    from evals.ci import AgentGate


__all__ = ["ci"]


def _table(results: list[AgentGate]) -> Table:
    from rich.table import Table

    from evals.ci import delta_text, observed_text

    table = Table(title="impactgate ci")
    for column in ("agent", "metric", "candidate", "threshold", "gate", "Δ vs baseline", "change"):
        table.add_column(column)
    for r in results:
        deltas = {d.metric: d for d in r.deltas}
        for i, g in enumerate(r.gates):
            d = deltas.get(g.metric)
            table.add_row(
                (f"{r.agent}\n{'[green]pass[/green]' if r.passed else '[red]FAIL[/red]'}")
                if i == 0
                else "",
                g.metric,
                observed_text(g),
                str(g.threshold),
                str(g.verdict),
                delta_text(g.metric, d),
                str(d.change) if d else "—",
            )
        table.add_section()
    return table


@click.command("ci")
@click.option(
    "--baseline",
    default=None,
    help="Git ref to compare with (default: origin/main, main, or HEAD).",
)
@click.option(
    "--agent",
    "agents",
    multiple=True,
    help="Gate this agent whether or not it changed (repeatable).",
)
@policies_option()
@results_option("Results root (stored runs are reused).")
@file_option("--markdown", "markdown_path", "Also write the Markdown summary here.")
@file_option("--junit", "junit_path", "Write JUnit XML here (one test case per agent × metric).")
@click.option("--json", "as_json", is_flag=True, help="Print the verdicts as JSON only.")
def ci(
    baseline: str | None,
    agents: tuple[str, ...],
    policies: str,
    results: str,
    markdown_path: Path | None,
    junit_path: Path | None,
    as_json: bool,
) -> None:
    """Gate the working tree's changes against a baseline git ref.

    Every agent whose contract, prompt, model config, code or golden data changed must pass
    its level's gates and show no regression against the baseline on the same cases. Markdown
    goes to $GITHUB_STEP_SUMMARY when it is set. Exit 0 when every gate passes, 1 when one
    fails, 2 on a usage or config error.
    """
    from evals._io import atomic_write_text
    from evals.ci import gate_changes, junit_xml, markdown

    ref, verdicts = gate_changes(
        policies,
        results,
        baseline,
        agents,
        log=lambda line: err_console.print(f"impactgate ci: {line}"),
    )
    summary = markdown(verdicts, ref)
    summary_file = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary_file:
        with open(summary_file, "a", encoding="utf-8") as handle:
            handle.write(summary)
    if markdown_path is not None:
        atomic_write_text(markdown_path, summary)
    if junit_path is not None:
        atomic_write_text(junit_path, junit_xml(verdicts))
    passed = all(v.passed for v in verdicts)
    if as_json:
        print_json({"baseline": ref, "passed": passed, "agents": [v.to_dict() for v in verdicts]})
    elif not verdicts:
        console.print(f"impactgate ci: no agent changed against {ref}; nothing to gate.")
    else:
        console.print(_table(verdicts))
        for v in verdicts:
            for line in v.failures:
                console.print(f"[red]{v.agent}[/red]: {line}", soft_wrap=True)
    if not passed:
        raise click.exceptions.Exit(1)
