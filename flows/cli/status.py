"""``impactgate status``: each agent's level, versions, readiness, incidents, latest decision."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from flows.cli._output import console, err_console, print_json

if TYPE_CHECKING:
    from flows.approvals import WaitingApproval

__all__ = ["status"]


def _states(results: str, policies: str) -> list[dict[str, Any]]:
    from evals.contract import load_contract
    from evals.errors import UserError
    from evals.metrics import fmt_time
    from evals.readiness import incident_line, load_state, readiness
    from evals.store import ResultsStore, ledger_for

    ledger = ledger_for(results)
    store = ResultsStore(results)
    latest_decision = {d.agent: d for d in store.decisions()}
    runs_by_agent: dict[str, list[Any]] = {}
    for run in store.runs():
        runs_by_agent.setdefault(run.agent, []).append(run)
    rows = []
    for entry in ledger.entries():
        path = Path(policies) / f"{entry.agent}.yaml"
        try:
            contract = load_contract(path) if path.is_file() else None
        except UserError:
            contract = None  # `impactgate validate` says what is wrong with it
        state = load_state(entry.agent, contract, store, ledger, runs_by_agent.get(entry.agent, []))
        answer = readiness(state)
        decision = latest_decision.get(entry.agent)
        card = _scorecard(contract, results)
        rows.append(
            {
                "agent": entry.agent,
                "level": entry.level,
                "active_version": entry.active_version,
                "last_good_version": entry.last_good_version,
                "last_good_source": entry.last_good_source,
                "declared_version": entry.declared_version,
                "updated_at": entry.updated_at.isoformat(),
                "readiness": answer.to_dict(),
                "open_incidents": [
                    {
                        "id": i.id,
                        "severity": i.severity,
                        "metrics": i.metrics,
                        "level": i.level,
                        "opened_at": i.opened_at.isoformat(),
                        "runs": i.runs,
                        "summary": incident_line(i),
                    }
                    for i in state.open_incidents
                ],
                "scorecard": card,
                "latest_decision": (
                    {
                        "kind": decision.kind,
                        "reason": decision.reason,
                        "run_id": decision.run_id,
                        "at": decision.at.isoformat(),
                        "at_text": fmt_time(decision.at),
                    }
                    if decision
                    else None
                ),
            }
        )
    return rows


def _scorecard(contract: Any, results: str) -> dict[str, Any] | None:
    """The headline of the agent's measured contract (what is stored; nothing is ingested)."""
    if contract is None or contract.telemetry is None:
        return None
    from evals.errors import UserError
    from evals.scorecard import measure

    try:
        card = measure(contract, results)
    except UserError as exc:
        return {"headline": f"not measured: {exc}", "red_flags": []}
    return {
        "headline": card.headline() if card.measured else f"not measured: {card.notes[0]}",
        "window": card.window,
        "red_flags": [f.name for f in card.red_flags],
    }


def _waiting() -> tuple[list[dict[str, Any]] | None, str | None]:
    """Promotions waiting for an approver on the server PREFECT_API_URL names, and any problem.

    ``None`` without a server: runs wait for an answer only on one (the environment variable
    is read directly, so a plain `status` does not load Prefect).
    """
    if not os.environ.get("PREFECT_API_URL"):
        return None, None
    from flows.approvals import waiting_approvals

    try:
        waiting = waiting_approvals()
    except Exception as exc:  # the ledger still shows; the server's trouble is reported
        return None, f"approvals: the Prefect server could not be asked: {exc}"
    return [
        {**w.to_dict(), "summary": w.describe(), "answer": _how_to_answer(w, waiting)}
        for w in waiting
    ], None


def _how_to_answer(chosen: WaitingApproval, waiting: list[WaitingApproval]) -> str:
    same_agent = [w for w in waiting if w.agent is not None and w.agent == chosen.agent]
    target = chosen.agent if len(same_agent) == 1 else chosen.run_id
    return f"impactgate approve|reject {target} --approver WHO --reason WHY"


@click.command("status")
@click.option("--results", default="results", show_default=True, help="Results root.")
@click.option("--policies", default="policies", show_default=True, help="Folder of contracts.")
@click.option("--json", "as_json", is_flag=True, help="Print the ledger as JSON only.")
def status(results: str, policies: str, as_json: bool) -> None:
    """Show each agent's level, active and last good version, readiness and open incidents.

    With PREFECT_API_URL set, also the promotions waiting on that server for an approver
    (answer them with `impactgate approve` or `impactgate reject`).
    """
    from rich.table import Table

    rows = _states(results, policies)
    waiting, problem = _waiting()
    if problem:
        err_console.print(problem, soft_wrap=True)
    if as_json:
        for row in rows:
            if row["latest_decision"]:
                row["latest_decision"].pop("at_text")
        print_json({"results": results, "agents": rows, "waiting_approvals": waiting})
        return
    if waiting:
        console.print("[bold]Waiting for an approver[/bold]")
        for item in waiting:
            console.print(f"  {item['summary']}\n    {item['answer']}", soft_wrap=True)
    if not rows:
        console.print(f"No agents in the ledger under {results} yet; run `impactgate run` first.")
        return
    table = Table(title=f"impactgate status ({results})")
    columns = ("agent", "level", "active", "last good", "ready for more?", "open incidents")
    for column in columns:
        table.add_column(column)
    for row in rows:
        decision = row["latest_decision"]
        table.add_row(
            row["agent"],
            row["level"],
            row["active_version"],
            f"{row['last_good_version'] or '—'}\n[dim]{row['last_good_source'] or 'no version has passed yet'}[/dim]",
            row["readiness"]["headline"]
            + (
                f"\n[dim]latest decision: {decision['kind']} ({decision['at_text']})[/dim]"
                if decision
                else ""
            )
            + (f"\nmeasured: {row['scorecard']['headline']}" if row["scorecard"] else ""),
            "\n".join(i["summary"] for i in row["open_incidents"]) or "—",
        )
    console.print(table, soft_wrap=True)
