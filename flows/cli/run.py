"""``impactgate run``: the suites over the example agents (or those named), gated and acted on."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from evals.vocab import TRIGGERS
from flows.cli._output import console, err_console, print_json

if TYPE_CHECKING:
    from prefect import State
    from rich.table import Table


__all__ = ["run"]

_ACTION = {
    "none": "—",
    "escalate": "[yellow]escalated[/yellow]",
    "rollback": "[red]rolled back[/red]",
    "rollback_refused": "[red]ROLLBACK REFUSED[/red]",
}
_VERDICT = {
    "pass": "[green]pass[/green]",
    "fail": "[red]fail[/red]",
    "inconclusive": "[yellow]inconclusive[/yellow]",
}


def _table(summaries: list[dict[str, Any]]) -> Table:
    from rich import box
    from rich.table import Table

    from evals.metrics import METRICS, fmt_interval, fmt_value

    table = Table(title="impactgate run", box=box.SIMPLE_HEAD, pad_edge=False)
    for column in ("agent", "metric", "value", "interval", "threshold", "verdict", "action"):
        table.add_column(column, no_wrap=column in {"agent", "metric"})
    for summary in summaries:
        evidence = " (production)" if summary.get("source") == "production" else ""
        if "error" in summary:
            table.add_row(
                summary["agent"] + evidence, "", "", "", "", "[red]error[/red]", summary["error"]
            )
            continue
        action = _ACTION.get(summary["action"], summary["action"])
        first = True
        for m in summary["metrics"]:
            spec = METRICS.get(m["metric"])
            if spec is not None and spec.source == "telemetry" and m["verdict"] is None:
                continue  # measured, not gated: the scorecard below shows it
            table.add_row(
                f"{summary['agent']}{evidence}\n{summary['version']} @ {summary['level']}"
                if first
                else "",
                m["metric"],
                fmt_value(m["metric"], m["value"]),
                fmt_interval(m["metric"], m["low"], m["high"]) or "—",
                m["threshold"] or "",
                _VERDICT.get(m["verdict"] or "", "[dim]not gated[/dim]"),
                action if first else "",
            )
            first = False
        table.add_section()
    return table


def _footer(summaries: list[dict[str, Any]], results: str) -> list[str]:
    lines = []
    for s in summaries:
        if "error" in s:
            continue
        decision = s.get("decision")
        if decision and decision["kind"] == "rollback":
            lines.append(
                f"{s['agent']}: rolled back {decision['version_before']} → {decision['version_after']}, "
                f"level {decision['level_before']} → {decision['level_after']}"
            )
        elif decision:
            lines.append(
                f"{s['agent']}: {decision['kind'].replace('_', ' ')}: {decision['reason']}"
            )
        for note in decision["notifications"] if decision else []:
            lines.append(f"  {note}")
        for note in s.get("notes", []):
            if note.startswith("red flag"):
                lines.append(f"{s['agent']}: {note}")
        production = s.get("production")
        if production:
            lines.append(
                f"{s['agent']} (production): {production['judged']} traces judged "
                f"({production['sampled']} sampled, {production['forced']} errors and "
                f"escalations) of {production['traces']} from {production['since'][:16]} to "
                f"{production['until'][:16]}; {production['reused']} from earlier runs; error "
                "rate, cost and latency over every trace of the window"
            )
            for reason, count in production["skipped"].items():
                lines.append(f"  {count} skipped: {reason}")
            for suite, count in production["not_judged"].items():
                if count:
                    lines.append(f"  {count} not judged by {suite}: no retrieved passages")
            continue
        outputs = s.get("outputs")
        if outputs and (outputs["cached"] or outputs["resumed"] or outputs["errors"]):
            lines.append(
                f"{s['agent']}: {outputs['called']} cases called, {outputs['cached']} from the "
                f"output cache, {outputs['resumed']} from the interrupted run, "
                f"{outputs['errors']} without an output"
            )
    lines.append(f"results: {results}  ·  ledger: impactgate status --results {results}")
    return lines


def _hint_unfinished(results: str, agents: list[str], resuming: str | None) -> None:
    from evals.store import RunJournal, journal_dir

    for header in RunJournal.in_progress(journal_dir(results)):
        if header.agent in agents and header.run_id != resuming:
            err_console.print(
                f"{header.agent}: run {header.run_id} (started "
                f"{header.started_at:%Y-%m-%d %H:%M} UTC) never finished; resume it with "
                f"`impactgate run --resume {header.run_id}`",
                soft_wrap=True,
            )


@click.command("run")
@click.argument("agents", nargs=-1)
@click.option("--policies", default="policies", show_default=True, help="Folder of contracts.")
@click.option("--results", default="results", show_default=True, help="Results root (path or URI).")
@click.option("--trigger", type=click.Choice(TRIGGERS), default="manual", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the run summaries as JSON only.")
@click.option("--fail-on-breach", is_flag=True, help="Exit 1 when any agent breached its contract.")
@click.option(
    "--resume",
    "resume",
    metavar="RUN_ID",
    help="Finish a run that was interrupted: same run id, calling only the cases it lacks.",
)
@click.option("--no-cache", is_flag=True, help="Call every case, even those the output cache has.")
@click.option(
    "--task-runner",
    "task_runner",
    metavar="RUNNER",
    default=None,
    help="Where scoring batches run: thread (default), dask (a local cluster of "
    "$IMPACTGATE_DASK_WORKERS processes, default 2), ray (a local Ray instance of "
    "$IMPACTGATE_RAY_CPUS CPUs, default 2), a Dask scheduler address (tcp://HOST:8786) or a "
    "Ray cluster's client address (ray://HOST:10001). Default $IMPACTGATE_TASK_RUNNER.",
)
@click.option(
    "--source",
    type=click.Choice(["auto", "golden", "production"]),
    default="auto",
    show_default=True,
    help="golden: the golden datasets; production: a sample of the window's production traces "
    "(evals.production); auto: golden, then production where the contract asks for it.",
)
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"]),
    help="Production runs judge the window ending here (UTC; default: now).",
)
@click.option(
    "--agents-at-once",
    "agents_at_once",
    type=int,
    default=None,
    metavar="N",
    help="Evaluate N agents concurrently (default $IMPACTGATE_AGENTS_AT_ONCE, else 1: one "
    "after another). Worth it for live targets, whose calls mostly wait.",
)
@click.option("-v", "--verbose", is_flag=True, help="Show Prefect's task-level log lines too.")
def run(
    agents: tuple[str, ...],
    policies: str,
    results: str,
    trigger: str,
    as_json: bool,
    fail_on_breach: bool,
    resume: str | None,
    no_cache: bool,
    task_runner: str | None,
    source: str,
    until: datetime | None,
    agents_at_once: int | None,
    verbose: bool,
) -> None:
    """Run the eval suites for every agent in POLICIES (or the AGENTS named).

    Writes the results, applies the gates of each agent's current level, and escalates or
    rolls back on a breach. Outputs of an unchanged version on unchanged cases come from the
    output cache; an interrupted run resumes with --resume RUN_ID. With an evals.production
    block, a production run judges a sample of the agent's production traces the same way
    (--source production for that alone).
    """
    from evals.contract import load_contract, select_contracts
    from evals.errors import UserError, display_path
    from evals.runs import check_resumable, open_unfinished_run, prepare

    if not verbose:
        # One line per task run drowns the flow-level progress; keep warnings and errors.
        logging.getLogger("prefect.task_runs").setLevel(logging.WARNING)

    from flows._runners import agents_at_once_limit, runner_spec

    runner = runner_spec(task_runner)  # a typo fails before anything starts
    at_once = agents_at_once_limit(agents_at_once, "--agents-at-once")
    journal = open_unfinished_run(results, resume) if resume else None
    if journal is not None:
        journal.close()
        agent = journal.header.agent
        if agents and list(agents) != [agent]:
            raise UserError.single(
                results, "--resume", f"run {resume} evaluated '{agent}', not {', '.join(agents)}"
            )
        agents = (agent,)
    if resume and source == "production":
        raise UserError.single(
            results, "--resume", "production runs are not resumed: run them again"
        )
    paths = select_contracts(policies, list(agents))
    for path in paths:  # fail fast, before Prefect starts, on anything misconfigured
        loaded = load_contract(path)
        plan = prepare(loaded)
        if source == "production" and loaded.evals.production is None:
            raise UserError.single(
                display_path(path),
                "evals.production",
                "no production block: add 'evals.production: {n: 200, window: 1d}' to judge "
                "production traces, or run with --source golden",
            )
        if source != "production":
            plan.target.preflight()
        if journal is not None:
            target = plan.target
            if journal.header.version in target.available_versions():
                target = target.at_version(journal.header.version)
            check_resumable(
                journal, display_path(path), target.version(), plan.dataset.content_hash
            )
    if not as_json:
        _hint_unfinished(results, [p.stem for p in paths], resume)
        err_console.print(
            f"impactgate: {'resuming run ' + resume if resume else 'evaluating'} "
            f"{len(paths)} agent(s); Prefect's local API starts first (slower on the first run "
            "of a machine)"
        )
    # Prefect is imported only once everything checks out: a typo fails fast.
    from flows._prefect import local_prefect
    from flows.cli._progress import progress_factory
    from flows.evaluate import reporting_progress
    from flows.nightly_suite import nightly

    async def run_nightly() -> State:
        return await nightly(
            policies=policies,
            results=results,
            agents=[p.stem for p in paths],
            trigger=trigger,
            resume=resume,
            use_cache=not no_cache,
            task_runner=runner,
            source=source,
            until=until.replace(tzinfo=UTC) if until is not None else None,
            agents_at_once=at_once,
            return_state=True,
        )

    with local_prefect(), reporting_progress(progress_factory()):
        state = asyncio.run(run_nightly())
    from flows._states import run_outcome

    outcome = run_outcome(state)  # the summaries, also when an agent errored and the run failed
    if not isinstance(outcome, list):
        raise RuntimeError(f"the nightly flow returned {type(outcome).__name__}, not run summaries")
    summaries: list[dict[str, Any]] = outcome
    if as_json:
        print_json({"results": results, "runs": summaries})
    else:
        console.print(_table(summaries))
        for line in _footer(summaries, results):
            console.print(line, soft_wrap=True)
        cards = [s["scorecard"] for s in summaries if s.get("scorecard")]
        if cards:
            from flows.cli.scorecard import scorecard_lines, scorecard_table

            console.print(scorecard_table(cards))
            for line in scorecard_lines(cards):
                console.print(line, soft_wrap=True)
    failed_actions = [
        (s["agent"], s["decision"]["details"]["action_failed"])
        for s in summaries
        if (s.get("decision") or {}).get("details", {}).get("action_failed")
    ]
    for agent, why in failed_actions:
        err_console.print(f"[red]{agent}: {why}[/red]", soft_wrap=True)
    if any("error" in s for s in summaries) or failed_actions:
        raise click.exceptions.Exit(1)
    if fail_on_breach and any(s["action"] != "none" or s["verdict"] == "fail" for s in summaries):
        raise click.exceptions.Exit(1)
