"""``impactgate scorecard``: each agent's contract measured from its production telemetry."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

import click

from flows.cli._output import console, print_json

if TYPE_CHECKING:
    from rich.table import Table

__all__ = ["scorecard", "scorecard_table"]

_STATUS = {
    "target_met": "[green]target met[/green]",
    "on_track": "[green]on track[/green]",
    "within_budget": "[green]within budget[/green]",
    "behind": "[yellow]behind[/yellow]",
    "measured": "measured",
    "worse_than_baseline": "[red]worse than baseline[/red]",
    "over_budget": "[red]over budget[/red]",
    "not_measured": "[dim]not measured[/dim]",
}


def _number(value: float | None) -> str:
    """A number as every surface writes it (the unit has its own column)."""
    from evals.metrics import fmt_unit

    return fmt_unit(value, "")


def _plan(m: dict[str, Any]) -> str:
    if m["metric"] == "production_error_rate":
        return f"budget ≤ {_number(m['target'])}"
    if m["baseline"] is None or m["target"] is None:
        return "—"
    return f"{_number(m['baseline'])} → {_number(m['target'])}"


def _measured(m: dict[str, Any]) -> str:
    if m["value"] is None:
        return "—"
    low, high = m["low"], m["high"]
    interval = (
        f" [{_number(low) if low is not None else '?'}, "
        f"{_number(high) if high is not None else '∞'}]"
        if low is not None or high is not None
        else ""
    )
    return f"{_number(m['value'])}{interval}"


def scorecard_table(cards: list[dict[str, Any]]) -> Table:
    """The measured contract of each agent: one row per metric (``Scorecard.to_dict()``s)."""
    from rich import box
    from rich.table import Table

    table = Table(title="impactgate scorecard", box=box.SIMPLE_HEAD, pad_edge=False)
    columns = ("agent", "block", "metric", "unit", "baseline → target", "measured", "n", "status")
    for column in columns:
        table.add_column(column, no_wrap=column not in {"metric", "unit"})
    for card in cards:
        first = True
        for m in card["metrics"]:
            status = _STATUS.get(m["status"], m["status"])
            if m["red_flags"]:
                status += " [red]⚑[/red]"
            table.add_row(
                f"{card['agent']}\n[dim]{card['window']}[/dim]" if first else "",
                m["block"],
                m["name"],
                "" if m["unit"] == "share" else m["unit"],
                _plan(m),
                _measured(m),
                f"{m['n']:,}" if m["value"] is not None else "—",
                status,
            )
            first = False
        table.add_section()
    return table


def scorecard_lines(cards: list[dict[str, Any]]) -> list[str]:
    """Red flags and why something is not measured, one line each."""
    lines = []
    for card in cards:
        for flag in card["red_flags"]:
            lines.append(f"{card['agent']}: [red]red flag[/red] {flag['name']}: {flag['message']}")
        for note in card["notes"]:
            lines.append(f"{card['agent']}: {note}")
    return lines


@click.command("scorecard")
@click.argument("agents", nargs=-1)
@click.option("--policies", default="policies", show_default=True, help="Folder of contracts.")
@click.option("--results", default="results", show_default=True, help="Results root (path or URI).")
@click.option("--json", "as_json", is_flag=True, help="Print the scorecards as JSON only.")
@click.option(
    "--as-of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    help="Last day of the window (default: today, UTC).",
)
@click.option(
    "--no-ingest", is_flag=True, help="Measure what is stored; do not ingest the sources first."
)
def scorecard(
    agents: tuple[str, ...],
    policies: str,
    results: str,
    as_json: bool,
    as_of: Any,
    no_ingest: bool,
) -> None:
    """Measure each agent's contract from its production telemetry.

    For every agent in POLICIES (or the AGENTS named) with a `telemetry` block: its sources
    are ingested (idempotent), then the workflow metrics, adoption and each outcome are
    measured over the telemetry window, each with its interval, n, status on the path from
    baseline to target, weekly series and red flags.
    """
    from evals.contract import load_contract, select_contracts
    from evals.scorecard import measure, refresh

    day: date | None = as_of.date() if as_of is not None else None
    cards = []
    for path in select_contracts(policies, list(agents)):
        contract = load_contract(path)
        if contract.telemetry is None and not agents:
            continue
        if not no_ingest:
            refresh(contract, results, today=day)
        cards.append(measure(contract, results, as_of=day).to_dict())
    if as_json:
        print_json({"results": results, "scorecards": cards})
        return
    if not cards:
        console.print(f"No contract under {policies} has a telemetry block.")
        return
    console.print(scorecard_table(cards))
    for line in scorecard_lines(cards):
        console.print(line, soft_wrap=True)
