"""A run's summary as Markdown (and table rows), for a Prefect artifact after each run.

It is the report's summary of the run — the same readiness answer, gates, next level, open
incidents and failing cases — read back from the store, so what the Prefect UI shows and
what the static report shows cannot disagree. Pure engine code; the flow publishes it::

    from prefect.artifacts import create_markdown_artifact
    from evals.report import run_summary_markdown

    create_markdown_artifact(
        markdown=run_summary_markdown(results, run_id, contract=contract),
        key=f"summary-{contract.agent}",
    )
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.contract import Contract, load_contract
from evals.errors import UserError
from evals.metrics import fmt_time
from evals.readiness import AgentState, incident_line, readiness
from evals.report._data import (
    CaseFailure,
    ledger_state,
    mask_spans,
    masked_words,
    stored_failing_cases,
)
from evals.store import ResultsStore, RunRecord

__all__ = ["run_summary_markdown", "run_summary_table"]

# Every line starts with our own text, so only inline syntax needs escaping: emphasis, code,
# links and images (their brackets), table cells and strikethrough.
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")


def md(text: object) -> str:
    """Untrusted text as inert Markdown: HTML entities, escaped punctuation, one line."""
    value = " ".join(str(text).split())
    value = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _SPECIAL.sub(r"\\\1", value)


@dataclass(frozen=True)
class _Loaded:
    agent: AgentState
    run: RunRecord
    failing: int
    """How many cases fail."""
    failures: list[CaseFailure]
    """The first of them (most failures first)."""


def _load(
    results: str | Path,
    run_id: str,
    contract: Contract | None,
    policies: str | Path,
    max_cases: int = 0,
) -> _Loaded:
    store = ResultsStore(str(results))
    run = store.run(run_id, contract.agent if contract is not None else None)
    if run is None:
        raise UserError.single(str(results), "run_id", f"no committed run '{run_id}' here")
    if contract is None:
        path = Path(policies) / f"{run.agent}.yaml"
        contract = load_contract(path) if path.is_file() else None
    entries, incidents, _ = ledger_state(str(results))
    agent = AgentState(
        run.agent,
        contract,
        entries.get(run.agent),
        store.runs(run.agent),
        incidents.get(run.agent, []),
    )
    failing, failures = stored_failing_cases(store, run, max_cases)
    return _Loaded(agent, run, failing, failures)


def run_summary_table(
    results: str | Path,
    run_id: str,
    *,
    contract: Contract | None = None,
    policies: str | Path = "policies",
) -> list[dict[str, Any]]:
    """The run's metrics as plain rows (``create_table_artifact``): gated ones first."""
    loaded = _load(results, run_id, contract, policies)
    return [
        {
            "metric": m.metric,
            "value": m.value,
            "low": m.low,
            "high": m.high,
            "n": m.n,
            "threshold": m.threshold_text or None,
            "verdict": m.verdict if m.gated else "not gated",
            "reason": m.reason or m.note or None,
        }
        for m in sorted(loaded.run.metrics.values(), key=lambda m: not m.gated)
    ]


def evidence_line(run: RunRecord) -> str:
    """What a run's verdict rests on: the golden dataset, or a sample of production traces."""
    production = run.production
    if run.source != "production" or production is None:
        return f"golden dataset {run.dataset} ({run.n_cases} cases)"
    line = (
        f"production traces {production['since'][:16]} → {production['until'][:16]} UTC: "
        f"{production['judged']} judged ({production['sampled']} sampled in proportion to the "
        f"traffic, {production['forced']} errors and escalations) of {production['traces']}; "
        "error rate, cost and latency over every trace"
    )
    if production.get("monitoring"):
        line += "; sampled metrics monitored across nights (anytime-valid)"
    return line


def run_summary_markdown(
    results: str | Path,
    run_id: str,
    *,
    contract: Contract | None = None,
    policies: str | Path = "policies",
    report_url: str | None = None,
    max_cases: int = 10,
) -> str:
    """The run's summary as Markdown: verdict, readiness, gates, next level, incidents, cases.

    Args:
        results: results root the run was written to.
        run_id: the committed run.
        contract: the agent's contract; read from ``policies/<agent>.yaml`` when not given.
        policies: where to look for the contract when ``contract`` is not given.
        report_url: link to the static report, added at the end when given.
        max_cases: failing cases listed by id (the report has them all).

    Raises:
        UserError: the run is not in the store.
    """
    loaded = _load(results, run_id, contract, policies, max_cases)
    agent, run, failures = loaded.agent, loaded.run, loaded.failures
    lines = [
        f"## {md(agent.agent)} · run `{md(run.run_id)}`",
        "",
        f"**{md(run.verdict)}** — {md(run.version)} gated at {md(run.level)} · {md(run.trigger)} · "
        f"{md(fmt_time(run.started_at))} · {run.n_cases} cases",
        "",
        f"**Evidence:** {md(evidence_line(run))}",
        "",
    ]
    if agent.latest is not None and run.run_id == agent.latest.run_id:
        answer = readiness(agent)
        lines.append(f"**Can it be trusted with more?** {md(answer.headline)}")
        lines.extend(f"- {md(reason)}" for reason in answer.reasons)
        lines.append("")
    lines += ["| metric | value | interval | threshold | verdict |", "|---|---|---|---|---|"]
    for m in sorted(run.metrics.values(), key=lambda m: not m.gated):
        lines.append(
            f"| {md(m.metric)} | {md(m.value_text)} | {md(m.interval_text)} | "
            f"{md(m.threshold_text)} | {md(m.verdict if m.gated else 'not gated')} |"
        )
    lines.append("")
    nxt = agent.next_level
    upper = agent.gates_at(nxt, run)
    if nxt and upper:
        missing = [g for g in upper if g.verdict != "pass"]
        verdicts = "; ".join(f"{md(g.metric)} {md(g.threshold)}: {md(g.verdict)}" for g in missing)
        lines.append(
            f"**Next level ({md(nxt)}):** "
            + (f"not ready — {verdicts}" if missing else "every gate passes")
        )
        lines.append("")
    open_incidents = agent.open_incidents
    if open_incidents:
        lines.append(f"**Open incidents ({len(open_incidents)}):**")
        for incident in open_incidents:
            lines.append(f"- {md(incident_line(incident))}")
        lines.append("")
    if loaded.failing:
        lines.append(f"**Failing cases ({loaded.failing}):**")
        for failure in failures:
            why = masked_words(failure.failures[0].why, mask_spans(failure.samples))
            if len(why) > 160:
                why = why[:157] + "…"
            lines.append(f"- {md(failure.case_id)} ({md(', '.join(failure.metrics))}): {md(why)}")
        if loaded.failing > len(failures):
            lines.append(f"- … and {loaded.failing - len(failures)} more in the report")
        lines.append("")
    if report_url:
        # Percent-encode what could end or break the link; the URL is ours, not the agent's.
        url = "".join(f"%{ord(c):02X}" if c in "()<> " else c for c in report_url)
        lines.append(f"[Open the report]({url})")
    return "\n".join(lines).rstrip() + "\n"
