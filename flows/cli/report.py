"""``impactgate report``: the static HTML report, computed from stored results without Prefect."""

from __future__ import annotations

import click

from evals.vocab import DEFAULT_RUN_PAGES
from flows.cli._output import console, err_console, print_json

__all__ = ["report"]


@click.command("report")
@click.argument("agents", nargs=-1)
@click.option("--results", default="results", show_default=True, help="Results root (path or URI).")
@click.option("--policies", default="policies", show_default=True, help="Folder of contracts.")
@click.option(
    "--out",
    default="report",
    show_default=True,
    help="Folder to write the site into; an earlier report there is replaced whole.",
)
@click.option(
    "--runs",
    "run_pages",
    type=click.IntRange(min=0),
    default=DEFAULT_RUN_PAGES,
    show_default=True,
    help="Drill-down pages per agent: its latest runs, latest CI runs and latest incidents' runs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON only.")
def report(
    agents: tuple[str, ...],
    results: str,
    policies: str,
    out: str,
    run_pages: int,
    as_json: bool,
) -> None:
    """Write the report for every agent (or the AGENTS named) as a static site in OUT.

    Per agent: the one-page Agent Impact Contract (outcomes, autonomy level and the next
    level's gate, every gated metric with its interval and verdict, open incidents, the
    escalation and rollback paths), trends against the thresholds, and the failing cases of
    recent runs with the judges' evidence. Open OUT/index.html; it needs no network.
    """
    from evals.errors import display_path
    from evals.report import build_report

    written = build_report(
        results, out, policies=policies, agents=list(agents), run_pages=run_pages
    )
    if as_json:
        print_json(
            {
                "out": str(written.out),
                "index": str(written.index),
                "agents": written.agents,
                "pages": [str(p) for p in written.pages],
                "notes": written.notes,
            }
        )
        return
    for note in written.notes:
        err_console.print(f"note: {note}", soft_wrap=True, markup=False)
    console.print(
        f"report: {display_path(written.index)} ({len(written.agents)} agent(s), "
        f"{len(written.pages)} pages)",
        soft_wrap=True,
        markup=False,
    )
