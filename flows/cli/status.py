"""``impactgate status``: each agent's level, active and last good version, latest decision."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from evals.store import Incident, ResultsStore, ledger_for
from flows.cli._output import console, print_json

__all__ = ["status"]


def _latest_decisions(results: str) -> dict[str, dict[str, Any]]:
    table = ResultsStore(results).decisions()
    latest: dict[str, dict[str, Any]] = {}
    for row in table.to_pylist():
        latest[row["agent"]] = row
    return latest


@click.command("status")
@click.option("--results", default="results", show_default=True, help="Results root.")
@click.option("--json", "as_json", is_flag=True, help="Print the ledger as JSON only.")
def status(results: str, as_json: bool) -> None:
    """Show the release ledger: level, active version and last good version of each agent."""
    ledger = ledger_for(results)
    entries = ledger.entries()
    incidents: dict[str, list[Incident]] = {}
    for incident in ledger.incidents(open_only=True):
        incidents.setdefault(incident.agent, []).append(incident)
    decisions = _latest_decisions(results)
    rows: list[dict[str, Any]] = [
        {
            "agent": e.agent,
            "level": e.level,
            "active_version": e.active_version,
            "last_good_version": e.last_good_version,
            "last_good_source": e.last_good_source,
            "declared_version": e.declared_version,
            "updated_at": e.updated_at.isoformat(),
            "open_incidents": [
                {
                    "id": i.id,
                    "severity": i.severity,
                    "metrics": i.metrics,
                    "opened_at": i.opened_at.isoformat(),
                    "runs": i.runs,
                }
                for i in incidents.get(e.agent, [])
            ],
            "latest_decision": (
                {k: decisions[e.agent][k] for k in ("kind", "reason", "run_id", "at")}
                if e.agent in decisions
                else None
            ),
        }
        for e in entries
    ]
    if as_json:
        print_json({"results": results, "agents": rows})
        return
    if not rows:
        console.print(f"No agents in the ledger under {results} yet; run `impactgate run` first.")
        return
    table = Table(title=f"impactgate status ({results})")
    for column in ("agent", "level", "active", "last good", "open incidents", "latest decision"):
        table.add_column(column)
    for row in rows:
        decision = row["latest_decision"]
        table.add_row(
            row["agent"],
            row["level"],
            row["active_version"],
            f"{row['last_good_version'] or '—'}\n[dim]{row['last_good_source'] or 'no version has passed yet'}[/dim]",
            "\n".join(
                f"#{i['id']} {i['severity']}: {', '.join(i['metrics'])} ({i['runs']} run(s))"
                for i in row["open_incidents"]
            )
            or "—",
            f"{decision['kind']} ({decision['at']:%Y-%m-%d %H:%M} UTC)\n[dim]{decision['reason']}[/dim]"
            if decision
            else "—",
        )
    console.print(table)
