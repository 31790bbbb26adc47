"""``impactgate golden``: how well a golden set covers production, and cases it lacks."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from flows.cli._options import (
    file_option,
    force_option,
    policies_option,
    refuse_existing,
    results_option,
)
from flows.cli._output import console, err_console, print_json

__all__ = ["golden"]

_WHEN = click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"])


@click.group("golden")
def golden() -> None:
    """Golden sets against production: coverage and suggested cases."""


def _coverage(
    agent: str, policies: str, results: str, window: str | None, until: datetime | None
) -> tuple[Any, Any, datetime, datetime]:
    from evals.contract import load_contract as load
    from evals.contract import select_contracts
    from evals.errors import UserError
    from evals.online import measure_coverage, parse_window
    from evals.store import ResultsStore

    [path] = select_contracts(policies, [agent])
    contract = load(path)
    configured = contract.evals.production.window if contract.evals.production else "7d"
    try:
        span = parse_window(window or configured)
    except ValueError as exc:
        raise UserError.single("--window", "window", str(exc)) from None
    end = (until.replace(tzinfo=UTC) if until is not None else datetime.now(UTC)).astimezone(UTC)
    start = end - span
    coverage = measure_coverage(contract, ResultsStore(results), start, end)
    if coverage.metric.n == 0:
        raise UserError.single(
            results,
            agent,
            f"no production input of '{agent}' between {start:%Y-%m-%d %H:%M} and "
            f"{end:%Y-%m-%d %H:%M} UTC; ingest telemetry first (impactgate ingest FILE)",
        )
    return contract, coverage, start, end


def _print(agent: str, coverage: Any, start: datetime, end: datetime, shown: int) -> None:
    from evals.metrics import fmt_interval, fmt_value

    m = coverage.metric
    console.print(
        f"{agent}: golden_coverage {fmt_value('golden_coverage', m.value)} "
        f"{fmt_interval('golden_coverage', m.low, m.high)} of {m.n:,} production inputs "
        f"({start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC), {coverage.n_golden} golden "
        f"cases, similarity ≥ {coverage.threshold:g}",
        soft_wrap=True,
    )
    for number, cluster in enumerate(coverage.clusters[:shown], start=1):
        console.print(
            f"  uncovered cluster {number}: {cluster.size:,} inputs ({cluster.share:.1%}), "
            f"closest golden similarity {cluster.nearest_golden:.2f}; e.g. "
            f"{cluster.examples[0]!r} (trace {cluster.trace_ids[0]})",
            soft_wrap=True,
        )


@golden.command("coverage")
@click.argument("agent")
@click.option("--policies", default="policies", show_default=True, help="Folder of contracts.")
@click.option("--results", default="results", show_default=True, help="Results root.")
@click.option("--window", help="How far back (12h, 7d, 2w); default: evals.production.window.")
@click.option("--until", type=_WHEN, help="The window's end (UTC; default: now).")
@click.option("--json", "as_json", is_flag=True, help="Print the coverage as JSON only.")
def coverage_command(
    agent: str,
    policies: str,
    results: str,
    window: str | None,
    until: datetime | None,
    as_json: bool,
) -> None:
    """The share of AGENT's production inputs a golden case covers, and the uncovered clusters."""
    _, coverage, start, end = _coverage(agent, policies, results, window, until)
    if as_json:
        print_json({"agent": agent, "since": start, "until": end, **coverage.to_dict()})
    else:
        _print(agent, coverage, start, end, 10)


@golden.command("suggest")
@click.argument("agent")
@file_option(
    "--out",
    "out",
    "JSON-lines file for the candidate cases (never the agent's dataset).",
    required=True,
)
@force_option
@policies_option()
@results_option()
@click.option("--window", help="How far back (12h, 7d, 2w); default: evals.production.window.")
@click.option("--until", type=_WHEN, help="The window's end (UTC; default: now).")
@click.option("--clusters", default=10, show_default=True, type=click.IntRange(1, 200))
@click.option(
    "--per-cluster", default=1, show_default=True, type=click.IntRange(1, 10), help="Cases each."
)
def suggest(
    agent: str,
    out: Path,
    force: bool,
    policies: str,
    results: str,
    window: str | None,
    until: datetime | None,
    clusters: int,
    per_cluster: int,
) -> None:
    """Write candidate golden cases from AGENT's largest uncovered production clusters.

    Each candidate is a production question (masked as stored) with the trace ids it came
    from. Nothing is added to a dataset: review them, add contexts and references, and copy
    the good ones into the dataset yourself.
    """
    import json

    from evals._io import atomic_open
    from evals.contract import load_contract as load
    from evals.contract import select_contracts
    from evals.errors import UserError, display_path
    from evals.online import suggest_cases

    datasets = {}
    for path in select_contracts(policies, None):
        try:
            loaded = load(path)
        except UserError:
            continue
        datasets[loaded.resolve(loaded.evals.dataset).resolve()] = loaded.agent
    if out.resolve() in datasets:
        raise UserError.single(
            display_path(out),
            "--out",
            f"this is {datasets[out.resolve()]}'s golden dataset; suggestions are never written "
            "into a dataset: write them elsewhere, review them, then copy the good ones in",
        )
    refuse_existing(out, force)
    _, coverage, start, end = _coverage(agent, policies, results, window, until)
    rows = suggest_cases(coverage, per_cluster=per_cluster, clusters=clusters)
    try:
        with atomic_open(out, replace=force) as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    except FileExistsError:  # written by someone else while the clusters were measured
        refuse_existing(out, force=False)
        raise
    _print(agent, coverage, start, end, clusters)
    err_console.print(
        f"wrote {len(rows)} candidate case(s) to {display_path(out)}: review them, add "
        "contexts and a reference, then add the good ones to the dataset",
        soft_wrap=True,
    )
    if not rows:
        err_console.print("every production input has a close golden case: nothing to suggest")
