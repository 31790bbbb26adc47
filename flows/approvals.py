"""Promotions waiting for an approver: the answer's form, what is waiting, and answering it.

A promotion to a human-owned level waits for an :class:`Approval` through Prefect's
interactive input. The form's schema is what Prefect's server validates an answer against, so
an empty or half-filled answer (the UI, ``impactgate approve``, or a raw
``POST /api/flow_runs/{id}/resume``) is refused with the reason and the run keeps waiting.
Before it waits, the flow stores the evidence it asks about (:data:`EVIDENCE_KEY`) on its
run: the resumed run reads it instead of evaluating again, and :func:`waiting_approvals`
shows it. See docs/deploy.md for answering from the UI, the CLI and the API.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from prefect.input import RunInput
from pydantic import ConfigDict, Field

from evals.errors import Problem, UserError

__all__ = [
    "APPROVAL_KEY",
    "EVIDENCE_KEY",
    "Answer",
    "Approval",
    "WaitingApproval",
    "answer_approval",
    "api_url",
    "waiting_approvals",
]

APPROVAL_KEY = "approval"
"""The pause key of a promotion's question: a resumed run does not ask twice."""
EVIDENCE_KEY = "impactgate-evidence"
"""The flow run input that holds what the approver is asked about."""

Answer = Literal["approve", "reject"]


class Approval(RunInput):
    """The approver's answer to "may this agent move up a level?"."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)

    decision: Answer
    """approve: promote the agent to the level asked for; reject: it stays where it is."""
    approver: str = Field(min_length=1, max_length=200, pattern=r"\S")
    """Who decides: your name or address. Recorded with the decision."""
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    """Why, in a sentence. Recorded with the decision and sent to the contract's channels."""


def form_description(evidence: dict[str, Any]) -> str:
    """The Markdown Prefect's UI shows above the approval form: what is being decided."""
    gates = "\n".join(
        f"- {g['metric']} {g['threshold']}: **{g['verdict']}**: {g['reason']}"
        for g in evidence["gates"]
    )
    return (
        f"### May {evidence['agent']} move from {evidence['level_before']} to "
        f"{evidence['to_level']}?\n\n"
        f"Version {evidence['version']} passes every gate of '{evidence['to_level']}' "
        f"(run `{evidence['run_id']}`), and the contract makes this level human-owned.\n\n"
        f"{gates}\n\n"
        "Choose approve or reject, and say who you are and why: all three are required. "
        "From a terminal: `impactgate approve|reject "
        f"{evidence['agent']} --approver WHO --reason WHY`."
    )


@dataclass(frozen=True)
class WaitingApproval:
    """A promotion run waiting for its approver, and what it asks about."""

    run_id: str
    """The Prefect flow run."""
    run_name: str
    agent: str | None
    """``None`` when the run holds no evidence (it paused before impactgate recorded any)."""
    level_before: str | None
    to_level: str | None
    version: str | None
    evaluated_run: str | None
    """The impactgate run whose gates the approver is asked to trust."""
    asked_at: datetime | None
    """When the run started waiting."""
    deadline: datetime | None
    """When the server fails the run if nobody answered."""
    suspended: bool
    """True when the run released its process and a worker resumes it once answered."""

    def describe(self) -> str:
        """One line: which agent, which move, since when, and the run."""
        from evals.metrics import fmt_time

        what = (
            f"{self.agent}: {self.level_before} → {self.to_level} on {self.version}"
            if self.agent
            else "a promotion"
        )
        since = f", waiting since {fmt_time(self.asked_at)}" if self.asked_at else ""
        return f"{what}{since} (flow run {self.run_id})"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return {
            "run_id": self.run_id,
            "run_name": self.run_name,
            "agent": self.agent,
            "level_before": self.level_before,
            "to_level": self.to_level,
            "version": self.version,
            "evaluated_run": self.evaluated_run,
            "asked_at": self.asked_at.isoformat() if self.asked_at else None,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "suspended": self.suspended,
        }


def api_url() -> str:
    """The Prefect API approvals are answered on (from the environment or Prefect's profile).

    Raises:
        UserError: no API is configured; only a server holds runs that wait for an answer.
    """
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise UserError.single(
            "PREFECT_API_URL",
            "",
            "not set: approvals are answered on the Prefect server the promotion runs on "
            "(export PREFECT_API_URL=http://127.0.0.1:4200/api); a promotion started by "
            "`impactgate promote` without a server is answered in that command",
        )
    return str(url)


def _time(text: Any) -> datetime | None:
    return datetime.fromisoformat(text) if isinstance(text, str) else None


def waiting_approvals() -> list[WaitingApproval]:
    """Every promotion run on the configured Prefect server that waits for an approver."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort
    from prefect.input import read_flow_run_input

    api_url()
    waiting = []
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["promotion"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.PAUSED]))
            ),
            sort=FlowRunSort.START_TIME_ASC,
        )
    for run in runs:
        evidence = read_flow_run_input(EVIDENCE_KEY, flow_run_id=run.id)
        evidence = evidence if isinstance(evidence, dict) else {}
        details = run.state.state_details if run.state is not None else None
        waiting.append(
            WaitingApproval(
                run_id=str(run.id),
                run_name=run.name,
                agent=evidence.get("agent"),
                level_before=evidence.get("level_before"),
                to_level=evidence.get("to_level"),
                version=evidence.get("version"),
                evaluated_run=evidence.get("run_id"),
                asked_at=_time(evidence.get("asked_at")),
                deadline=details.pause_timeout if details is not None else None,
                suspended=bool(details is not None and details.pause_reschedule),
            )
        )
    return waiting


def _listing(waiting: Sequence[WaitingApproval]) -> str:
    if not waiting:
        return "nothing is waiting for an approver"
    return "waiting: " + "; ".join(w.describe() for w in waiting)


def _select(target: str, waiting: Sequence[WaitingApproval], where: str) -> WaitingApproval:
    """The one waiting promotion ``target`` names: a flow run id, a run name or an agent."""
    by_run = [w for w in waiting if target in (w.run_id, w.run_name)]
    if by_run:
        return by_run[0]
    by_agent = [w for w in waiting if w.agent == target]
    if len(by_agent) == 1:
        return by_agent[0]
    if by_agent:
        raise UserError.single(
            where,
            target,
            f"{len(by_agent)} promotions of {target} are waiting; answer one by its flow run "
            f"id: {_listing(by_agent)}",
        )
    try:
        uuid.UUID(target)
    except ValueError:
        what = f"no promotion of '{target}' is waiting"
    else:
        what = f"flow run {target} is not a promotion waiting for an approver"
    raise UserError.single(where, target, f"{what}; {_listing(waiting)}")


def answer_approval(target: str, decision: Answer, approver: str, reason: str) -> WaitingApproval:
    """Answer the waiting promotion ``target`` names through the Prefect API.

    Args:
        target: a flow run id, a flow run name or an agent with exactly one promotion waiting.
        decision: ``approve`` or ``reject``.
        approver: who decides (recorded).
        reason: why (recorded).

    Returns:
        The promotion answered. A suspended run is resumed by a worker of its pool; the
        decision is recorded when it runs.

    Raises:
        UserError: no server, an incomplete answer, nothing (or several) waiting for
            ``target``, or the server refused the answer (with its reason).
    """
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from pydantic import ValidationError

    try:
        answer = Approval(decision=decision, approver=approver, reason=reason)
    except ValidationError as exc:
        raise UserError(
            Problem(
                target,
                f"--{error['loc'][0]}",
                "must not be blank"
                if error["type"] in {"string_too_short", "string_pattern_mismatch"}
                else error["msg"],
            )
            for error in exc.errors()
        ) from None
    where = api_url()
    chosen = _select(target, waiting_approvals(), where)
    with get_client(sync_client=True) as client:
        result = client.resume_flow_run(
            uuid.UUID(chosen.run_id), run_input=answer.model_dump(mode="json")
        )
    if result.status != SetStateStatus.ACCEPT:
        why = getattr(result.details, "reason", None) or result.status.value
        raise UserError.single(where, chosen.run_id, f"the server refused the answer: {why}")
    return chosen
