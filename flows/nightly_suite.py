"""The ``nightly`` flow: every contract's agent, each as an ``evaluate-agent`` subflow.

Every agent's scoring batches go to one task runner shared by the whole run (threads, or a
Dask cluster started once, see ``flows/_runners.py``). Agents themselves are evaluated one
after another: Prefect 3.9 runs sync subflows called from concurrent tasks or threads one at a
time (measured), so two agents run at once as two flow runs, e.g. two deployment runs on two
workers (docs/deploy.md).
"""

from __future__ import annotations

from typing import Any

from prefect import State, flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from evals.contract import select_contracts
from evals.errors import UserError
from evals.runs import Trigger
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
            state = evaluate_agent(
                str(path), results, trigger, resume=resume, use_cache=use_cache, return_state=True
            )
            if state.is_completed():
                summaries.append(state.result())
            else:
                failures.append(f"{path.stem}: {state.message}")
                summaries.append({"agent": path.stem, "error": state.message})
                logger.error("%s could not be evaluated: %s", path.stem, state.message)
    create_markdown_artifact(
        markdown=_markdown(summaries),
        key="nightly",
        description=f"{len(summaries) - len(failures)} of {len(summaries)} agent(s) evaluated",
    )
    if failures:
        return failed("; ".join(failures), summaries)
    return summaries


def _markdown(summaries: list[dict[str, Any]]) -> str:
    """One line per agent: its verdict and what the run did, or why it could not run."""
    lines = [
        "# nightly",
        "",
        "| agent | version | level | verdict | action |",
        "|---|---|---|---|---|",
    ]
    for s in summaries:
        if "error" in s:
            error = " ".join(str(s["error"]).split()).replace("|", "\\|")
            lines.append(f"| {s['agent']} | | | **error** | {error} |")
        else:
            lines.append(
                f"| {s['agent']} | {s['version']} | {s['level']} | {s['verdict']} | {s['action']} |"
            )
    return "\n".join(lines) + "\n"
