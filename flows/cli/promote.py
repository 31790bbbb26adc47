"""``impactgate promote``: move an agent up the autonomy ladder, on evidence and approval."""

from __future__ import annotations

import contextvars
import sys
import threading
import time
import uuid
from typing import Any

import click

from evals.vocab import LEVELS
from flows.cli._output import console, err_console, print_json

__all__ = ["promote"]


def _wait_for_pause(name: str, thread: threading.Thread, timeout_s: float) -> Any | None:
    """The flow run once it is paused for approval, or None if it finished first."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    deadline = time.monotonic() + timeout_s
    with get_client(sync_client=True) as client:
        while thread.is_alive() and time.monotonic() < deadline:
            runs = client.read_flow_runs(
                flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[name]))
            )
            if runs and runs[0].state is not None and runs[0].state.is_paused():
                return runs[0]
            time.sleep(0.5)
    return None


def _filled(text: str | None) -> bool:
    return bool(text and text.strip())


def _non_blank(text: str) -> str:
    if not _filled(text):
        raise click.BadParameter("must not be blank")
    return text


@click.command("promote")
@click.argument("agent")
@click.option(
    "--to", "to_level", type=click.Choice(LEVELS), required=True, help="The level to promote to."
)
@click.option(
    "--approve/--reject",
    "approve",
    default=None,
    help="The approver's answer, for a human-owned level.",
)
@click.option("--approver", default=None, help="Who approves (recorded with the decision).")
@click.option("--reason", default=None, help="Why (recorded with the decision).")
@click.option("--policies", default="policies", show_default=True)
@click.option("--results", default="results", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON only.")
def promote(
    agent: str,
    to_level: str,
    approve: bool | None,
    approver: str | None,
    reason: str | None,
    policies: str,
    results: str,
    as_json: bool,
) -> None:
    """Evaluate AGENT for a higher level and promote it when every gate passes.

    The served version is evaluated against the target level's gates; the workflow metrics
    must be measured and no worse than before the agent. Where the contract makes the level
    human-owned, the promotion flow pauses for an approver (answer here with --approve or
    --reject, --approver and --reason, or interactively on a terminal). A promotion run by the
    `promotion` deployment is answered with `impactgate approve` or `impactgate reject`, or in
    the Prefect UI. Exit 0 when promoted, 1 when the promotion failed or was rejected.
    """
    from evals.contract import load_contract, select_contracts
    from evals.errors import UserError, display_path
    from evals.runs import prepare

    [path] = select_contracts(policies, [agent])
    contract = load_contract(path)
    prepare(contract)
    policy = contract.autonomy.levels.get(to_level)  # type: ignore[call-overload]
    human = bool(policy and policy.human_approval)
    if human and approve is not None and not (_filled(approver) and _filled(reason)):
        raise UserError.single(
            display_path(path),
            f"autonomy.levels.{to_level}.human_approval",
            "an answer needs --approver and --reason too",
        )
    if human and approve is None and not sys.stdin.isatty():
        raise UserError.single(
            display_path(path),
            f"autonomy.levels.{to_level}.human_approval",
            f"'{to_level}' needs an approver: pass --approve or --reject with --approver and --reason",
        )
    from flows._prefect import local_prefect
    from flows.promotion import promotion

    name = f"promote-{agent}-{uuid.uuid4().hex[:8]}"
    holder: dict[str, Any] = {}
    with local_prefect():
        context = contextvars.copy_context()  # the thread sees the same Prefect settings

        def run() -> None:
            holder["state"] = context.run(
                promotion.with_options(flow_run_name=name),
                str(path),
                to_level,
                results,
                return_state=True,
            )

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        if human:
            paused = _wait_for_pause(name, thread, timeout_s=3600)
            if paused is not None:
                from prefect.flow_runs import resume_flow_run

                if approve is None:
                    err_console.print(
                        f"{agent}: every gate of '{to_level}' passes; an approver must decide."
                    )
                    approve = click.confirm(f"Promote {agent} to {to_level}?", default=False)
                    approver = click.prompt("Approver", value_proc=_non_blank)
                    reason = click.prompt("Reason", value_proc=_non_blank)
                resume_flow_run(
                    paused.id,
                    run_input={
                        "decision": "approve" if approve else "reject",
                        "approver": approver,
                        "reason": reason,
                    },
                )
        thread.join()
    from flows._states import run_outcome

    outcome = run_outcome(holder["state"])  # the decision, promoted or not
    if as_json:
        print_json(outcome)
    else:
        colour = "green" if outcome["kind"] == "promote" else "red"
        console.print(
            f"[{colour}]{outcome['kind'].replace('_', ' ')}[/{colour}] {agent}: {outcome['reason']}",
            soft_wrap=True,
        )
        for gate in outcome["gates"]:
            console.print(
                f"  {gate['metric']} {gate['threshold']}: {gate['verdict']} — {gate['reason']}",
                soft_wrap=True,
            )
    if outcome["kind"] != "promote":
        raise click.exceptions.Exit(1)
