"""Readiness: an agent's state now, and whether it can be trusted with more."""

from evals.readiness._readiness import (
    MONITORING_TRIGGERS,
    AgentState,
    Readiness,
    incident_line,
    incident_title,
    load_state,
    rank,
    readiness,
)

__all__ = [
    "MONITORING_TRIGGERS",
    "AgentState",
    "Readiness",
    "incident_line",
    "incident_title",
    "load_state",
    "rank",
    "readiness",
]
