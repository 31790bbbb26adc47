"""A decision: what a gate caused, who or what made it, and on what evidence."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

__all__ = ["Decision", "DecisionKind"]

DecisionKind = Literal[
    "escalate",
    "recover",
    "rollback",
    "rollback_refused",
    "promote",
    "promotion_failed",
    "promotion_rejected",
    "demote",
    "deploy",
]


@dataclass(frozen=True)
class Decision:
    """One entry of the audit trail in the ``decisions`` table."""

    agent: str
    kind: DecisionKind
    reason: str
    """Why, with the numbers."""
    actor: str
    """Who or what decided: ``nightly flow``, ``impactgate rollback``, an approver."""
    run_id: str | None = None
    """The run whose evidence caused it."""
    metrics: list[str] = field(default_factory=list)
    """Gated metrics involved."""
    level_before: str | None = None
    level_after: str | None = None
    version_before: str | None = None
    version_after: str | None = None
    approved_by: str | None = None
    notifications: list[str] = field(default_factory=list)
    """Delivery result per channel (never the secret part of a URL)."""
    details: dict[str, Any] = field(default_factory=dict)
    at: datetime = field(default_factory=lambda: datetime.now(UTC))
    decision_id: str = field(default_factory=lambda: secrets.token_hex(8))
