"""Decisions: the audit trail of escalations, rollbacks, promotions and approvals."""

from evals.decisions._decision import Decision, DecisionKind

__all__ = ["Decision", "DecisionKind"]
