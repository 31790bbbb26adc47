"""Actions: what a breach causes (escalation, rollback) and how people are told."""

from evals.actions._actions import escalate, incident_markdown, recover, rollback, rollback_to
from evals.actions._breach import Breach, breaches_from, describe_breaches, worst_severity
from evals.actions._notify import (
    PENDING_EVENT,
    deliver,
    post_json,
    post_webhook,
    send_email,
    wants,
)
from evals.actions._plan import Action, ActionKind, choose_action, perform
from evals.actions._promotion import WORKFLOW_METRICS, Observation, workflow_gates

__all__ = [
    "PENDING_EVENT",
    "WORKFLOW_METRICS",
    "Action",
    "ActionKind",
    "Breach",
    "Observation",
    "breaches_from",
    "choose_action",
    "deliver",
    "describe_breaches",
    "escalate",
    "incident_markdown",
    "perform",
    "post_json",
    "post_webhook",
    "recover",
    "rollback",
    "rollback_to",
    "send_email",
    "wants",
    "workflow_gates",
    "worst_severity",
]
