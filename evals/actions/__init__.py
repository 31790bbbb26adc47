"""Actions: what a breach causes (escalation, rollback) and how people are told."""

from evals.actions._actions import escalate, incident_markdown, rollback
from evals.actions._breach import Breach, breaches_from, describe_breaches
from evals.actions._notify import deliver, post_webhook

__all__ = [
    "Breach",
    "breaches_from",
    "deliver",
    "describe_breaches",
    "escalate",
    "incident_markdown",
    "post_webhook",
    "rollback",
]
