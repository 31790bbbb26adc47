"""``impactgate serve``: the nightly, promotion and ci-gate deployments, served by this process."""

from __future__ import annotations

import click

from flows.cli._output import err_console

__all__ = ["serve"]


def build_deployments(policies: str, results: str) -> list[object]:
    """One nightly deployment per distinct schedule in the contracts, plus the on-demand ones."""
    from prefect.schedules import Cron

    from evals.contract import discover_contracts, load_contract
    from flows.ci_gate import ci_gate
    from flows.nightly_suite import nightly
    from flows.promotion import promotion

    schedules: dict[tuple[str, str], list[str]] = {}
    for path in discover_contracts(policies):
        contract = load_contract(path)
        key = (contract.evals.schedule.cron, contract.evals.schedule.timezone)
        schedules.setdefault(key, []).append(contract.agent)
    deployments: list[object] = []
    for i, ((cron, timezone), agents) in enumerate(sorted(schedules.items())):
        deployments.append(
            nightly.to_deployment(
                name="nightly" if len(schedules) == 1 else f"nightly-{i + 1}",
                schedules=[Cron(cron, timezone=timezone)],
                parameters={
                    "policies": policies,
                    "results": results,
                    "agents": agents,
                    "trigger": "nightly",
                },
                description=f"{', '.join(agents)} at '{cron}' ({timezone})",
            )
        )
    deployments.append(promotion.to_deployment(name="promotion", parameters={"results": results}))
    deployments.append(
        ci_gate.to_deployment(name="ci-gate", parameters={"policies": policies, "results": results})
    )
    return deployments


@click.command("serve")
@click.option("--policies", default="policies", show_default=True)
@click.option("--results", default="results", show_default=True)
def serve(policies: str, results: str) -> None:
    """Serve the nightly (cron from the contracts), promotion and ci-gate deployments.

    For a small team: one long-running process schedules and runs everything. Point
    PREFECT_API_URL at a Prefect server (`prefect server start`) to see and trigger runs in
    its UI; stop with Ctrl-C (which pauses the schedules).
    """
    from prefect import serve as prefect_serve

    deployments = build_deployments(policies, results)
    err_console.print(f"impactgate: serving {len(deployments)} deployment(s); Ctrl-C to stop")
    prefect_serve(*deployments)  # type: ignore[arg-type]
