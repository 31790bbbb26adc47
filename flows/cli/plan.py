"""``impactgate plan``: how many golden cases each gate needs before it can pass."""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING, Any

import click

from evals.vocab import LEVELS
from flows.cli._output import console, print_json

if TYPE_CHECKING:
    from evals.contract import Level
    from evals.store import SampleRecord


__all__ = ["plan"]


def _latest_samples(results: str, agent: str) -> list[SampleRecord]:
    """The samples of the agent's latest stored golden run (none when it has no run)."""
    from evals.store import ResultsStore

    store = ResultsStore(results)
    runs = [r for r in store.runs(agent) if r.source == "golden"]
    return store.samples(runs[-1]) if runs else []


def _observed_sd(samples: list[SampleRecord], scorer: str) -> float | None:
    """Per-case standard deviation of a scorer in those samples, if it has two values."""
    values = [
        s.value for s in samples if s.metric == scorer and s.value is not None and s.error is None
    ]
    return statistics.pstdev(values) if len(values) >= 2 else None


def _default_margin(unit: str, bound: float, direction: str) -> float:
    """Halfway to the best possible share, or 10% of the threshold for unbounded metrics."""
    if unit == "share":
        return (bound if direction == "max" else 1.0 - bound) / 2 or 0.01
    return abs(bound) * 0.1 or 0.01


@click.command("plan")
@click.argument("agent")
@click.option(
    "--margin",
    type=float,
    default=None,
    help=(
        "How far inside each threshold the agent truly is (default: halfway to the best "
        "possible value for shares, 10% of the threshold otherwise)."
    ),
)
@click.option(
    "--sd",
    type=float,
    default=None,
    help="Per-case standard deviation for mean metrics without stored runs.",
)
@click.option(
    "--level",
    type=click.Choice(LEVELS),
    default=None,
    help="Level to plan for (default: the agent's current level and the next).",
)
@click.option("--policies", default="policies", show_default=True)
@click.option(
    "--results",
    default="results",
    show_default=True,
    help="Where stored runs give per-case spread.",
)
@click.option("--json", "as_json", is_flag=True)
def plan(
    agent: str,
    margin: float | None,
    sd: float | None,
    level: str | None,
    policies: str,
    results: str,
    as_json: bool,
) -> None:
    """Say how many cases AGENT's golden set needs for each gate to be able to pass.

    A gate passes only when its whole interval clears the threshold; with too few cases that
    cannot happen however good the agent is, and the gate stays inconclusive.
    """
    from rich.table import Table

    from evals.contract import level_rank, select_contracts
    from evals.dataset import load_dataset
    from evals.metrics import METRICS, required_samples
    from evals.store import existing_ledger

    [path] = select_contracts(policies, [agent])
    from evals.contract import load_contract

    contract = load_contract(path)
    ledger, _ = existing_ledger(results)
    entry = ledger.get(agent) if ledger is not None else None
    current: Level = entry.level if entry else contract.autonomy.level
    levels: list[Level] = (
        [level]  # type: ignore[list-item]
        if level
        else [current]
        + ([LEVELS[level_rank(current) + 1]] if level_rank(current) + 1 < len(LEVELS) else [])
    )
    cases = len(load_dataset(contract.resolve(contract.evals.dataset)))
    confidence = contract.autonomy.confidence
    rows: list[dict[str, Any]] = []
    latest = _latest_samples(results, agent)
    for lvl in levels:
        for name, threshold in contract.gates(lvl).items():
            spec = METRICS[name]
            if spec.kind == "count_rate":
                continue  # the error budget is counted, not estimated: no sample size to plan
            if spec.kind == "gap":
                rows.append(
                    {
                        "level": lvl,
                        "metric": name,
                        "threshold": str(threshold),
                        "margin": None,
                        "needed": None,
                        "have": cases,
                        "enough": False,
                        "assumption": "production against the golden run: plan the golden set "
                        "and evals.production.n on the base metric's gate",
                    }
                )
                continue
            gap = (
                margin
                if margin is not None
                else _default_margin(spec.unit, threshold.bound, threshold.direction)
            )
            spread = (
                _observed_sd(latest, spec.scorer) if spec.kind == "mean" and spec.scorer else None
            )
            needed = required_samples(
                spec, threshold.bound, threshold.direction, gap, confidence, spread or sd
            )
            rows.append(
                {
                    "level": lvl,
                    "metric": name,
                    "threshold": str(threshold),
                    "margin": gap,
                    "needed": needed.n,
                    "have": cases,
                    "enough": needed.n is not None
                    and cases >= needed.n
                    and cases >= contract.autonomy.min_samples,
                    "assumption": needed.assumption,
                }
            )
    if as_json:
        print_json(
            {
                "agent": agent,
                "cases": cases,
                "min_samples": contract.autonomy.min_samples,
                "gates": rows,
            }
        )
        return
    table = Table(
        title=(
            f"impactgate plan {agent}: {cases} cases, "
            f"min_samples {contract.autonomy.min_samples}, confidence {confidence:.0%}"
        )
    )
    for column in (
        "level",
        "metric",
        "threshold",
        "if truly inside by",
        "cases needed",
        "enough",
        "assuming",
    ):
        table.add_column(column)
    for row in rows:
        table.add_row(
            row["level"],
            row["metric"],
            row["threshold"],
            f"{row['margin']:g}" if row["margin"] is not None else "—",
            str(row["needed"]) if row["needed"] is not None else "—",
            "—"
            if row["margin"] is None
            else "[green]yes[/green]"
            if row["enough"]
            else "[red]no[/red]",
            row["assumption"],
        )
    console.print(table)
