"""The ``nightly`` flow: every contract's agent, each as an ``evaluate-agent`` subflow.

Every agent's scoring batches go to one task runner shared by the whole run (threads, or a
Dask cluster or Ray instance started once, see ``flows/_runners.py``). Agents are evaluated ``agents_at_once``
at a time (an agent's golden run, then its production run, in order). The flow is async for
that reason: Prefect 3.9 runs sync subflows of a *sync* parent one at a time, even from
threads, while an async parent's subflows started in threads (``asyncio.to_thread``) run
concurrently and still show under it (measured).
"""

from __future__ import annotations

import asyncio
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from prefect import State, flow, get_run_logger
from prefect.artifacts import acreate_markdown_artifact

from evals.contract import load_contract, select_contracts
from evals.errors import UserError
from evals.runs import Trigger
from evals.store import Source
from flows._runners import agents_at_once_limit, runner_spec, sharing, task_runners
from flows._states import failed
from flows.evaluate import evaluate_agent

__all__ = ["nightly"]


@flow(name="nightly", log_prints=True)
async def nightly(
    policies: str = "policies",
    results: str = "results",
    agents: list[str] | None = None,
    trigger: Trigger = "nightly",
    resume: str | None = None,
    use_cache: bool = True,
    task_runner: str | None = None,
    source: Literal["auto", "golden", "production"] = "auto",
    until: datetime | None = None,
    agents_at_once: int | None = None,
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
            (a local cluster of ``$IMPACTGATE_DASK_WORKERS`` processes, started once), ``ray``
            (a local Ray instance of ``$IMPACTGATE_RAY_CPUS`` CPUs, started once), a Dask
            scheduler address or a Ray cluster's ``ray://HOST:10001``; default
            ``$IMPACTGATE_TASK_RUNNER``.
        source: ``auto``: the golden run, then a production run for each contract with an
            ``evals.production`` block; ``golden`` or ``production``: only that one.
        until: production runs judge the window ending here (default: now).
        agents_at_once: agents evaluated concurrently (default ``$IMPACTGATE_AGENTS_AT_ONCE``,
            else 1: one after another, so incidents are numbered in contract order). Worth
            raising for live targets, whose calls mostly wait; CPU-bound offline judging
            shares the same cores either way.

    Returns:
        One run summary per agent, in contract order. When an agent could not be evaluated,
        its entry holds ``error`` and the flow ends ``Failed`` with the errors as its message
        and the summaries in its result (``flows.run_outcome``), so the schedule shows red
        while the other agents' results stand. Either way the ``nightly`` artifact lists every
        agent.
    """
    logger = get_run_logger()
    paths = select_contracts(policies, agents)
    if resume is not None and len(paths) != 1:
        raise UserError.single(
            policies, "", f"resuming run {resume} needs exactly one agent, got {len(paths)}"
        )
    limit = agents_at_once_limit(agents_at_once)
    at_once = asyncio.Semaphore(limit)
    spec = runner_spec(task_runner, "task_runner")

    async def evaluate(path: Path) -> list[tuple[dict[str, Any], str | None]]:
        """The agent's runs, golden first: each summary, with the failure line when it failed."""
        wanted: list[Source] = [] if source == "production" else ["golden"]
        if source == "production" or (source == "auto" and _has_production(path)):
            wanted.append("production")
        done: list[tuple[dict[str, Any], str | None]] = []
        async with at_once:
            for kind in wanted:
                state = await asyncio.to_thread(
                    evaluate_agent,
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
                    done.append((await state.aresult(), None))
                    continue
                # A golden run is the agent's run; a production one is named as such.
                name = path.stem if kind == "golden" else f"{path.stem} ({kind})"
                logger.error("%s could not be evaluated: %s", name, state.message)
                done.append(
                    (
                        {"agent": path.stem, "source": kind, "error": state.message},
                        f"{name}: {state.message}",
                    )
                )
        return done

    with ExitStack() as stack:
        # A local Dask cluster or Ray instance starts outside the flow's event loop.
        factory = await asyncio.to_thread(stack.enter_context, task_runners(spec))
        stack.enter_context(sharing(factory))
        if limit > 1:
            logger.info("evaluating %d agent(s), %d at once", len(paths), limit)
        per_agent = await asyncio.gather(*(evaluate(path) for path in paths))
    summaries = [summary for runs in per_agent for summary, _ in runs]
    failures = [failure for runs in per_agent for _, failure in runs if failure is not None]
    await acreate_markdown_artifact(
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
