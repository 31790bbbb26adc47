"""Gates: thresholds held against measured metrics, with three-valued verdicts."""

from evals.gates._gate import GateResult, Verdict, evaluate_gates, judge_gate, overall_verdict

__all__ = ["GateResult", "Verdict", "evaluate_gates", "judge_gate", "overall_verdict"]
