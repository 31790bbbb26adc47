"""``impactgate rollback``: a person rolls an agent back (to its last good version by default)."""

from __future__ import annotations

import getpass

import click

from evals.vocab import LEVELS
from flows.cli._output import console, print_json

__all__ = ["rollback"]


@click.command("rollback")
@click.argument("agent")
@click.option(
    "--to", "version", default=None, help="Version to serve (default: the last good one)."
)
@click.option(
    "--demote-to", type=click.Choice(LEVELS), default=None, help="Also drop to this level."
)
@click.option("--reason", default="manual rollback", show_default=True)
@click.option("--policies", default="policies", show_default=True)
@click.option("--results", default="results", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def rollback(
    agent: str,
    version: str | None,
    demote_to: str | None,
    reason: str,
    policies: str,
    results: str,
    as_json: bool,
) -> None:
    """Re-pin AGENT's last good version (or --to VERSION), run its rollback hook, record it.

    Idempotent: rolling back to the version already served changes nothing and calls no hook.
    """
    from evals.actions import rollback_to
    from evals.contract import load_contract, select_contracts
    from evals.errors import UserError, display_path
    from evals.store import NoGoodVersion, ResultsStore, ledger_for

    [path] = select_contracts(policies, [agent])
    contract = load_contract(path)
    ledger = ledger_for(results)
    if ledger.get(agent) is None:
        raise UserError.single(
            str(results),
            "",
            f"{agent} is not in the ledger yet; run `impactgate run {agent}` first",
        )
    try:
        decision = rollback_to(
            contract, ledger, version=version, demote_to=demote_to,  # type: ignore[arg-type]
            reason=reason, actor=f"impactgate rollback ({getpass.getuser()})",
        )  # fmt: skip
    except NoGoodVersion as exc:
        raise UserError.single(display_path(path), "autonomy.rollback", f"{exc}") from None
    ResultsStore(results).write_decisions([decision])
    if as_json:
        print_json(
            {
                "kind": decision.kind,
                "reason": decision.reason,
                "notifications": decision.notifications,
            }
        )
        return
    console.print(f"[yellow]rolled back[/yellow] {agent}: {decision.reason}", soft_wrap=True)
    for note in decision.notifications:
        console.print(f"  {note}", soft_wrap=True)
