"""The ``nightly`` flow: every contract's agent, each as an ``evaluate-agent`` subflow.

Agents are evaluated concurrently (``concurrency`` at a time, through Prefect's thread-pool
task runner: their generation waits on the network, their scoring on the shard runner), and
every agent's scoring batches go to one shared task runner for the whole run (threads, or a
Dask cluster started once, see ``flows/_runners.py``).
"""

from __future__ import annotations

from typing import Any

from prefect import State, flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NONE
from prefect.task_runners import ThreadPoolTaskRunner

from evals.contract import select_contracts
from evals.errors import UserError
from evals.runs import Trigger
from flows._runners import runner_spec, sharing, task_runners
from flows._states import failed
from flows.evaluate import evaluate_agent

__all__ = ["nightly"]


@task(name="agent", cache_policy=NONE)
def _agent(
    contract: str, results: str, trigger: Trigger, resume: str | None, use_cache: bool
) -> dict[str, Any]:
    """One agent's ``evaluate-agent`` subflow: its summary, or why it could not run."""
    state = evaluate_agent(
        contract, results, trigger, resume=resume, use_cache=use_cache, return_state=True
    )
    if state.is_completed():
        return {"summary": state.result()}
    return {"error": state.message}


@flow(name="nightly", log_prints=True)
def nightly(
    policies: str = "policies",
    results: str = "results",
    agents: list[str] | None = None,
    trigger: Trigger = "nightly",
    resume: str | None = None,
    use_cache: bool = True,
    task_runner: str | None = None,
    concurrency: int = 4,
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
        concurrency: agents evaluated at the same time.

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
    if concurrency < 1:
        raise UserError.single("nightly", "concurrency", f"must be 1 or more, not {concurrency}")
    spec = runner_spec(task_runner, "task_runner")
    with (
        task_runners(spec) as factory,
        sharing(factory),
        ThreadPoolTaskRunner[Any](max_workers=min(concurrency, max(len(paths), 1))) as agents_pool,
    ):
        futures = [
            agents_pool.submit(
                _agent,
                parameters={
                    "contract": str(path),
                    "results": results,
                    "trigger": trigger,
                    "resume": resume,
                    "use_cache": use_cache,
                },
            )
            for path in paths
        ]
        outcomes = [future.result() for future in futures]
    for path, outcome in zip(paths, outcomes, strict=True):  # in contract order, as before
        if "summary" in outcome:
            summaries.append(outcome["summary"])
        else:
            failures.append(f"{path.stem}: {outcome['error']}")
            summaries.append({"agent": path.stem, "error": outcome["error"]})
            logger.error("%s could not be evaluated: %s", path.stem, outcome["error"])
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
