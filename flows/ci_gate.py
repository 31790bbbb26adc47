"""The ``ci-gate`` flow: ``impactgate ci`` as a Prefect deployment (on demand)."""

from __future__ import annotations

from typing import Any

from prefect import State, flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from evals.ci import gate_changes, markdown
from flows._states import failed

__all__ = ["ci_gate"]


@flow(name="ci-gate", log_prints=True)
def ci_gate(
    policies: str = "policies",
    results: str = "results",
    baseline: str | None = None,
    agents: list[str] | None = None,
) -> dict[str, Any] | State:
    """Gate the checkout's changes against ``baseline``; the run fails when a gate fails.

    Returns:
        ``baseline``, ``passed`` and one verdict per gated agent. When a gate fails, the run
        ends ``Failed`` with the failures as its message and this data in its result
        (``flows.run_outcome``); the ``ci-gate`` artifact holds the Markdown summary either way.
    """
    logger = get_run_logger()
    ref, verdicts = gate_changes(policies, results, baseline, agents or [], log=logger.info)
    summary = markdown(verdicts, ref)
    create_markdown_artifact(
        markdown=summary, key="ci-gate", description=f"impactgate ci against {ref}"
    )
    data = {
        "baseline": ref,
        "passed": all(v.passed for v in verdicts),
        "agents": [v.to_dict() for v in verdicts],
    }
    if not data["passed"]:
        return failed("; ".join(f"{v.agent}: {f}" for v in verdicts for f in v.failures), data)
    return data
