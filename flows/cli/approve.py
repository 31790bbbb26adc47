"""``impactgate approve`` / ``impactgate reject``: answer a promotion waiting for its approver."""

from __future__ import annotations

from typing import Literal

import click

from flows.cli._output import console, print_json

__all__ = ["approve", "reject"]

_DONE = {"approve": "[green]approved[/green]", "reject": "[red]rejected[/red]"}


def _answer(
    decision: Literal["approve", "reject"],
    target: str,
    approver: str,
    reason: str,
    as_json: bool,
) -> None:
    from flows.approvals import answer_approval

    chosen = answer_approval(target, decision, approver, reason)
    if as_json:
        print_json(
            {**chosen.to_dict(), "decision": decision, "approver": approver, "reason": reason}
        )
        return
    console.print(f"{_DONE[decision]} {chosen.describe()}", soft_wrap=True)
    console.print(
        "  the run had released its worker: a worker of its pool resumes it and records the "
        "decision; `impactgate status` shows it"
        if chosen.suspended
        else "  the process that waits for this answer records the decision",
        soft_wrap=True,
    )


def _command(decision: Literal["approve", "reject"], summary: str) -> click.Command:
    @click.command(decision, help=summary)
    @click.argument("target", metavar="RUN_ID|AGENT")
    @click.option("--approver", required=True, help="Who decides (recorded with the decision).")
    @click.option("--reason", required=True, help="Why (recorded and sent to the channels).")
    @click.option("--json", "as_json", is_flag=True, help="Print what was answered as JSON only.")
    def command(target: str, approver: str, reason: str, as_json: bool) -> None:
        _answer(decision, target, approver, reason, as_json)

    return command


_HOW = (
    "\n\nRUN_ID|AGENT names a promotion waiting on the Prefect server (PREFECT_API_URL): its "
    "flow run id or name, or an agent with one promotion waiting; `impactgate status` lists "
    "them. A blank answer, or one the server refuses, exits 2 with the reason and the run "
    "keeps waiting."
)

approve = _command(
    "approve",
    "Approve a waiting promotion: the agent moves up once the run resumes." + _HOW,
)
reject = _command(
    "reject",
    "Reject a waiting promotion: the agent stays at its level; the run ends Rejected." + _HOW,
)
