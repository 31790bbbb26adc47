"""Red flags: the patterns an Agent Impact Contract warns about, read off the measurements.

- ``adoption_without_outcome``: adoption is above its baseline (with the interval's
  confidence) while no measured outcome is better than its baseline: the agent is used, and
  nothing it is accountable for has moved;
- ``outcome_without_adoption``: an outcome is better than its baseline while adoption is not
  above its own: the agent is not why;
- ``workflow_better_customer_worse``: a workflow metric is better than its baseline while the
  customer outcome is worse than its baseline (the whole interval): faster or cheaper at the
  customer's expense.

Each is recorded as a medium incident in the ledger by the run that sees it (one open
incident per flag, updated by later runs, closed when the flag clears).
"""

from __future__ import annotations

from collections.abc import Sequence

from evals.scorecard._measure import Measurement, RedFlag

__all__ = ["RED_FLAGS", "red_flags"]

RED_FLAGS: tuple[str, ...] = (
    "adoption_without_outcome",
    "outcome_without_adoption",
    "workflow_better_customer_worse",
)

_WORKFLOW_IMPROVES = ("cycle_time_p50_h", "automation_rate", "escalation_rate", "rework_rate")


def red_flags(rows: Sequence[Measurement]) -> list[RedFlag]:
    """The red flags the measurements raise (none when adoption or outcomes are unmeasured)."""
    by_key = {m.key: m for m in rows}
    adoption = by_key.get("adoption_rate")
    outcomes = [m for m in rows if m.block.startswith("outcome") and m.value.value is not None]
    flags: list[RedFlag] = []
    if adoption is None or adoption.value.value is None or not outcomes:
        return flags
    adopted = adoption.improved()
    moved = [m for m in outcomes if m.improved()]
    shown = f"{adoption.shown(adoption.value.value)} {adoption.interval}".rstrip()
    if adopted and not moved:
        names = ", ".join(
            f"{m.name} {m.shown(m.value.value)} {m.interval} vs baseline {m.shown(m.baseline)}"
            for m in outcomes
        )
        flags.append(
            RedFlag(
                "adoption_without_outcome",
                f"adoption {shown} is above its baseline "
                f"{adoption.shown(adoption.baseline)} but no outcome has moved: {names}",
                ("adoption_rate", *(m.key for m in outcomes)),
            )
        )
    if moved and not adopted:
        names = ", ".join(f"{m.name} {m.shown(m.value.value)}" for m in moved)
        flags.append(
            RedFlag(
                "outcome_without_adoption",
                f"{names} moved, but adoption {shown} is not above its baseline "
                f"{adoption.shown(adoption.baseline)}: the agent is not why",
                ("adoption_rate", *(m.key for m in moved)),
            )
        )
    customer = by_key.get("outcome.customer")
    better = [by_key[k] for k in _WORKFLOW_IMPROVES if k in by_key and by_key[k].improved()]
    if customer is not None and customer.status == "worse_than_baseline" and better:
        names = ", ".join(m.name.lower() for m in better)
        flags.append(
            RedFlag(
                "workflow_better_customer_worse",
                f"{names} improved while {customer.name} {customer.shown(customer.value.value)} "
                f"{customer.interval} is worse than its baseline {customer.shown(customer.baseline)}",
                (*(m.key for m in better), customer.key),
            )
        )
    return flags
