"""CI output for people and machines: Markdown (pull requests, step summaries) and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from evals.ci._compare import AgentGate
from evals.gates import Verdict
from evals.metrics import METRICS, Change

__all__ = ["junit_xml", "markdown"]


def _num(metric: str, value: float | None, signed: bool = False) -> str:
    if value is None:
        return "—"
    unit = METRICS[metric].unit if metric in METRICS else ""
    text = f"{value:+.4g}" if signed else f"{value:.4g}"
    return f"{text}{'s' if unit == 's' else ''}" if unit != "USD" else f"${text}"


def markdown(results: Sequence[AgentGate], baseline_ref: str) -> str:
    """A summary for a pull request: one table per agent, the cases that got worse."""
    passed = sum(r.passed for r in results)
    lines = [
        f"## impactgate: {passed}/{len(results)} agent gate(s) passed (baseline `{baseline_ref}`)",
        "",
    ]
    if not results:
        lines.append("No agent's contract, prompt, model, code or golden data changed.")
    for r in results:
        mark = "✅" if r.passed else "❌"
        base = f"{r.baseline_version} (`{r.baseline_run}`)" if r.baseline_run else "none"
        lines += [
            f"### {mark} {r.agent} at `{r.level}`",
            "",
            f"candidate {r.candidate_version} (`{r.candidate_run}`) vs baseline {base}",
            "",
            "| metric | baseline | candidate [interval] | threshold | gate | Δ [interval] | change |",
            "|---|---|---|---|---|---|---|",
        ]
        deltas = {d.metric: d for d in r.deltas}
        for g in r.gates:
            d = deltas.get(g.metric)
            observed = g.observed
            value = _num(g.metric, observed.value if observed else None)
            interval = (
                f" [{_num(g.metric, observed.low)}, {_num(g.metric, observed.high)}]"
                if observed
                else ""
            )
            delta = (
                f"{_num(g.metric, d.delta, True)} [{_num(g.metric, d.low, True)}, {_num(g.metric, d.high, True)}]"
                if d
                else "—"
            )
            lines.append(
                f"| {g.metric} | {_num(g.metric, d.baseline) if d else '—'} | {value}{interval} | "
                f"{g.threshold} | {g.verdict} | {delta} | {d.change if d else '—'} |"
            )
        for failure in r.failures:
            lines.append(f"- {failure}")
        for d in r.deltas:
            if d.change == Change.REGRESSION and d.worse:
                shown = ", ".join(f"`{c}`" for c in d.worse[:10])
                more = f" and {len(d.worse) - 10} more" if len(d.worse) > 10 else ""
                lines.append(f"- cases worse on {d.metric}: {shown}{more}")
            if d.judge_sd is not None:
                lines.append(
                    f"- judge noise on {d.metric}: per-case SD {d.judge_sd:.3g} across repeats"
                )
        for note in r.notes:
            lines.append(f"- note: {note}")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def junit_xml(results: Sequence[AgentGate]) -> str:
    """JUnit XML: one test case per agent × metric (gate and regression together)."""
    suites = ET.Element("testsuites", name="impactgate")
    for r in results:
        cases = []
        deltas = {d.metric: d for d in r.deltas}
        metrics = list(dict.fromkeys([g.metric for g in r.gates] + list(deltas)))
        failures = 0
        suite = ET.SubElement(suites, "testsuite", name=f"impactgate.{r.agent}")
        for metric in metrics:
            case = ET.SubElement(suite, "testcase", classname=f"impactgate.{r.agent}", name=metric)
            gate = next((g for g in r.gates if g.metric == metric), None)
            delta = deltas.get(metric)
            problems = []
            if gate is not None and gate.verdict != Verdict.PASS:
                problems.append(f"gate {gate.threshold} {gate.verdict}: {gate.reason}")
            if delta is not None and delta.change == Change.REGRESSION:
                problems.append(
                    f"regression: {delta.reason}; worse cases: {', '.join(delta.worse[:20])}"
                )
            if problems:
                failures += 1
                failure = ET.SubElement(case, "failure", message=problems[0][:500])
                failure.text = "\n".join(problems)
            cases.append(case)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
    total = sum(int(s.get("tests", "0")) for s in suites)
    suites.set("tests", str(total))
    suites.set("failures", str(sum(int(s.get("failures", "0")) for s in suites)))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
