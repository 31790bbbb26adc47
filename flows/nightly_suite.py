"""The ``nightly`` flow: every contract's agent, each as an ``evaluate-agent`` subflow.

Every agent's scoring batches go to one task runner shared by the whole run (threads, or a
Dask cluster started once, see ``flows/_runners.py``). Agents themselves are evaluated one
after another: Prefect 3.9 runs sync subflows called from concurrent tasks or threads one at a
time (measured), so two agents run at once as two flow runs, e.g. two deployment runs on two
workers (docs/deploy.md).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from prefect import State, flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from evals.contract import load_contract, select_contracts
from evals.errors import UserError
from evals.runs import Trigger
from evals.store import Source
from flows._runners import runner_spec, sharing, task_runners
from flows._states import failed
from flows.evaluate import evaluate_agent

__all__ = ["nightly"]


@flow(name="nightly", log_prints=True)
def nightly(
    policies: str = "policies",
    results: str = "results",
    agents: list[str] | None = None,
    trigger: Trigger = "nightly",
    resume: str | None = None,
    use_cache: bool = True,
    task_runner: str | None = None,
    source: Literal["auto", "golden", "production"] = "auto",
    until: datetime | None = None,
) -> list[dict[str, Any]] | State:
    """Evaluate every agent (or those named); one broken agent does not stop the others.

    Args:
        policies: folder of contracts.
        results: results root (path or URI).
        agents: evaluate only these agents.
        trigger: why this run happens.
        resume: finish this unfinished run; ``agents`` must then name its one agent.
        use_cache: reuse outputs of unchanged versions on unchanged cases.
        task_runner: where every agent's scoring batches run: ``thread`` (default), ``dask``
            (a local cluster of ``$IMPACTGATE_DASK_WORKERS`` processes, started once) or a
            Dask scheduler address; default ``$IMPACTGATE_TASK_RUNNER``.
        source: ``auto``: the golden run, then a production run for each contract with an
            ``evals.production`` block; ``golden`` or ``production``: only that one.
        until: production runs judge the window ending here (default: now).

    Returns:
        One run summary per agent. When an agent could not be evaluated, its entry holds
        ``error`` and the flow ends ``Failed`` with the errors as its message and the
        summaries in its result (``flows.run_outcome``), so the schedule shows red while the
        other agents' results stand. Either way the ``nightly`` artifact lists every agent.
    """
    logger = get_run_logger()
    summaries: list[dict[str, Any]] = []
    failures: list[str] = []
    paths = select_contracts(policies, agents)
    if resume is not None and len(paths) != 1:
        raise UserError.single(
            policies, "", f"resuming run {resume} needs exactly one agent, got {len(paths)}"
        )
    spec = runner_spec(task_runner, "task_runner")
    with task_runners(spec) as factory, sharing(factory):
        for path in paths:
            wanted: list[Source] = [] if source == "production" else ["golden"]
            if source == "production" or (source == "auto" and _has_production(path)):
                wanted.append("production")
            for kind in wanted:
                state = evaluate_agent(
                    str(path),
                    results,
                    trigger,
                    resume=resume if kind == "golden" else None,
                    use_cache=use_cache,
                    source=kind,
                    until=until,
                    return_state=True,
                )
                if state.is_completed():
                    summaries.append(state.result())
                else:
                    # A golden run is the agent's run; a production one is named as such.
                    name = path.stem if kind == "golden" else f"{path.stem} ({kind})"
                    failures.append(f"{name}: {state.message}")
                    summaries.append({"agent": path.stem, "source": kind, "error": state.message})
                    logger.error("%s could not be evaluated: %s", name, state.message)
    create_markdown_artifact(
        markdown=_markdown(summaries),
        key="nightly",
        description=f"{len(summaries) - len(failures)} of {len(summaries)} agent(s) evaluated",
    )
    if failures:
        return failed("; ".join(failures), summaries)
    return summaries


def _has_production(path: Path) -> bool:
    """Whether the contract asks for production runs (a broken one fails in its golden run)."""
    try:
        return load_contract(path).evals.production is not None
    except UserError:
        return False


def _markdown(summaries: list[dict[str, Any]]) -> str:
    """One line per agent: its verdict and what the run did, or why it could not run."""
    lines = [
        "# nightly",
        "",
        "| agent | evidence | version | level | verdict | action |",
        "|---|---|---|---|---|---|",
    ]
    for s in summaries:
        if "error" in s:
            error = " ".join(str(s["error"]).split()).replace("|", "\\|")
            lines.append(f"| {s['agent']} | {s.get('source', '')} | | | **error** | {error} |")
        else:
            lines.append(
                f"| {s['agent']} | {s.get('source', 'golden')} | {s['version']} | {s['level']} "
                f"| {s['verdict']} | {s['action']} |"
            )
    return "\n".join(lines) + "\n"
