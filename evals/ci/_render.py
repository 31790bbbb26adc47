"""CI output for people and machines: Markdown (pull requests, step summaries) and JUnit XML."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from evals.ci._compare import AgentGate
from evals.gates import GateResult, Verdict
from evals.metrics import Change, PairedDelta, fmt_delta, fmt_interval, fmt_value

__all__ = ["delta_text", "junit_xml", "markdown", "observed_text"]


def observed_text(gate: GateResult) -> str:
    """``0.420 [0.294, 0.558]``: the candidate's value and interval, as every surface shows it."""
    observed = gate.observed
    if observed is None:
        return "—"
    interval = fmt_interval(gate.metric, observed.low, observed.high)
    return f"{fmt_value(gate.metric, observed.value)} {interval}".rstrip()


def delta_text(metric: str, d: PairedDelta | None) -> str:
    """``+0.120 [-0.020, +0.250]``: a paired delta and its interval, or a dash."""
    if d is None:
        return "—"
    return (
        f"{fmt_delta(metric, d.delta)} {fmt_interval(metric, d.low, d.high, signed=True)}".rstrip()
    )


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
            lines.append(
                f"| {g.metric} | {fmt_value(g.metric, d.baseline) if d else '—'} | "
                f"{observed_text(g)} | {g.threshold} | {g.verdict} | {delta_text(g.metric, d)} | "
                f"{d.change if d else '—'} |"
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
            shown = []
            if gate is not None:
                shown.append(
                    f"{metric} {observed_text(gate)} (needs {gate.threshold}): {gate.verdict}"
                )
            if delta is not None:
                shown.append(f"Δ {delta_text(metric, delta)} vs baseline: {delta.change}")
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
            if shown:
                ET.SubElement(case, "system-out").text = "\n".join(shown)
            cases.append(case)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
    total = sum(int(s.get("tests", "0")) for s in suites)
    suites.set("tests", str(total))
    suites.set("failures", str(sum(int(s.get("failures", "0")) for s in suites)))
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
