"""Agreement drift: does a fresh round of labels still agree with the calibrated judge?

When an import brings new grounding labels for an agent whose latest calibrated run recorded
its fit, the answers just labelled are flagged at that run's threshold (from the support
score each had when exported) and compared with the calibration's cross-validated interval
(``evals.metrics.agreement_drift``). A drop beyond what the fresh labels' own noise explains
opens a medium incident, "the judge no longer agrees with you", through the ledger's breach
rules (an open incident is updated, not duplicated).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from evals.metrics import AgreementDrift, Calibration, agreement_drift
from evals.store import Incident, LabelRecord, Ledger, ResultsStore

__all__ = ["DriftFinding", "check_drift"]

DRIFT_METRIC = "judge_agreement"
DRIFT_SEVERITY = "medium"


@dataclass(frozen=True)
class DriftFinding:
    """One agent's drift check after an import."""

    agent: str
    drift: AgreementDrift
    incident: Incident | None
    """The incident opened or updated when the judge drifted."""


def check_drift(
    store: ResultsStore, ledger: Ledger | None, fresh: Sequence[LabelRecord]
) -> list[DriftFinding]:
    """Check freshly imported grounding labels against each agent's latest calibration.

    Labels without the judge's score at export (a hand-made file) are left out. Agents with no
    calibrated run, or fewer than two fresh labels, are not checked.
    """
    findings = []
    for agent in sorted({r.agent for r in fresh}):
        rows = [
            r
            for r in fresh
            if r.agent == agent and r.kind == "grounding" and r.judge_score is not None
        ]
        calibrated = [
            run
            for run in store.runs(agent)
            if run.calibration and run.calibration.get("calibrated") and run.calibration.get("fit")
        ]
        if len(rows) < 2 or not calibrated:
            continue
        calibration = Calibration.from_dict(calibrated[-1].calibration["fit"])  # type: ignore[index]
        drift = agreement_drift(
            calibration, [float(r.judge_score or 0.0) for r in rows], [r.label for r in rows]
        )
        incident = None
        if drift.drifted and ledger is not None:
            entry = ledger.get(agent)
            if entry is not None:
                incident = ledger.record_breach(
                    agent, [DRIFT_METRIC], DRIFT_SEVERITY, calibrated[-1].run_id, entry.level
                ).incident
        findings.append(DriftFinding(agent, drift, incident))
    return findings
