"""A run's check of its policy rule packs against the owner's labels of their findings.

``impactgate labels export AGENT --kind policy`` asks the owner, for outputs on both sides of
the rule packs' verdict, "was this a real violation?". The rule packs' verdicts on those
outputs (``judge_flag``, recorded when the run scored the unmasked output) against the labels
give ``policy_agreement``: balanced accuracy with a bootstrap interval and Cohen's κ, as
``judge_agreement`` does for the grounding judge. The outputs cannot be checked again: what
the labeller saw is masked, and a masked e-mail address is no longer one. So after a change
to the rule packs, a fresh export and label round measures them again. It is gateable; a
level that gates it on an agent with no policy labels gets an inconclusive gate saying how to
label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from evals.metrics import MetricValue, judge_agreement
from evals.store import LabelRecord, labels_hash

__all__ = ["POLICY_AGREEMENT", "check_policy", "unlabelled_policy_note"]

POLICY_AGREEMENT = "policy_agreement"


def unlabelled_policy_note(agent: str) -> str:
    """Why a gate on ``policy_agreement`` cannot be decided yet, and what to do."""
    return (
        "nobody has checked the policy rule packs against your own labels yet: export "
        f"outputs to label (impactgate labels export {agent} --kind policy --n 60 --out "
        "policy-labels.csv), mark each real violation 1 and each false alarm 0, and import "
        "them (impactgate labels import policy-labels.csv --by YOU)"
    )


def check_policy(labels: Sequence[LabelRecord], *, confidence: float) -> MetricValue:
    """``policy_agreement``: the rule packs' verdicts on the labelled outputs vs the labels.

    Args:
        labels: the owner's policy labels of this agent.
        confidence: the contract's confidence, for the interval.
    """
    kept = [(r.label, 1.0 if r.judge_flag else 0.0) for r in labels if r.judge_flag is not None]
    agreement = judge_agreement(
        [label for label, _ in kept], [flag for _, flag in kept], confidence=confidence
    )
    source = f"labels {labels_hash(list(labels))}"
    if not agreement.defined:
        agreement = replace(agreement, reason=f"{agreement.reason} ({source})")
    return agreement.metric(
        POLICY_AGREEMENT,
        f"the rule packs as this run applies them; Cohen's κ {agreement.kappa}; "
        f"{agreement.positives} labelled real violations, {agreement.negatives} false alarms "
        f"or clean ({source})",
        n_errors=len(labels) - len(kept),
    )
