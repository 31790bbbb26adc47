"""The pages: the overview, one Agent Impact Contract scorecard per agent, and run drill-downs.

Every page is built with :func:`evals.report._html.el`, which escapes all text; nothing from
an agent, a dataset, a judge or a contract reaches a page any other way.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from evals.contract import LEVELS, Contract, Threshold
from evals.dataset import Case
from evals.gates import GateResult
from evals.metrics import fmt_delta, fmt_interval, fmt_time, fmt_value
from evals.readiness import incident_line, incident_title, readiness
from evals.report._assets import CSP, CSS, SCRIPT
from evals.report._data import (
    AgentReport,
    CaseChange,
    CaseFailure,
    MetricComparison,
    mask_spans,
    masked,
    masked_words,
    violation_spans,
)
from evals.report._html import Html, el, join
from evals.report._svg import EventMark, ThresholdLine, TrendPoint, VersionMark, trend_chart
from evals.store import Decision, Incident, RunRecord, SampleRecord

__all__ = ["KIND_WORDS", "agent_page", "index_page", "run_page"]

RECENT = 30
"""Rows of runs and decisions listed on an agent's page (newest first)."""

KIND_WORDS = {
    "escalate": "escalation",
    "rollback": "rollback",
    "rollback_refused": "rollback refused",
    "promote": "promotion",
    "demote": "demotion",
    "approve": "approval",
    "deploy": "deployment",
}


def _page(title: str, body: Html, depth: int, generated: datetime, script: bool = False) -> str:
    up = "../" * depth
    document = el(
        "html",
        el(
            "head",
            el("meta", charset="utf-8"),
            el("meta", name="viewport", content="width=device-width, initial-scale=1"),
            el("meta", http_equiv="Content-Security-Policy", content=CSP),
            el("meta", name="referrer", content="no-referrer"),
            el("title", title),
            el("link", rel="icon", href="data:,"),
            el("style", Html(CSS)),
        ),
        el(
            "body",
            el(
                "header",
                el("a", "impactgate report", href=f"{up}index.html"),
                el("span", f"generated {fmt_time(generated)}", cls="meta"),
                cls="top",
            ),
            el("main", body),
            el("script", Html(SCRIPT)) if script else None,
        ),
        lang="en",
    )
    return "<!doctype html>\n" + document + "\n"


def _badge(verdict: str | None, text: str | None = None) -> Html:
    verdict = verdict or "ungated"
    return el(
        "span", text or ("not gated" if verdict == "ungated" else verdict), cls=f"badge {verdict}"
    )


def _dl(rows: Sequence[tuple[str, object]]) -> Html:
    return el(
        "dl", [(el("dt", k), el("dd", v)) for k, v in rows if v not in (None, "")], cls="facts"
    )


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]], **attrs: object) -> Html:
    return el(
        "table",
        el("thead", el("tr", [el("th", h) for h in headers])),
        el("tbody", list(rows)),
        **attrs,
    )


def _td(value: object, cls: str | None = None, **attrs: object) -> Html:
    return el("td", value, cls=cls, **attrs)


# --- links ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Links:
    """Relative links between pages; a run has a page only when it is in ``run_pages``."""

    run_pages: dict[str, set[str]]
    """Agent → run ids with a page."""

    def agent(self, agent: str, depth: int) -> str:
        """The agent's page from a page ``depth`` folders deep."""
        return f"{'../' * depth}agents/{agent}.html"

    def run(self, agent: str, run_id: str | None, depth: int) -> str | None:
        """A run's page, or ``None`` when it has none."""
        if run_id is None or run_id not in self.run_pages.get(agent, set()):
            return None
        return f"{'../' * depth}runs/{agent}/{run_id}.html"


# --- the overview -------------------------------------------------------------------------------


def _agent_card(agent: AgentReport, links: Links) -> Html:
    answer = readiness(agent)
    latest = agent.latest
    open_incidents = agent.open_incidents
    return el(
        "section",
        el("h2", el("a", agent.agent, href=links.agent(agent.agent, 0))),
        el("p", agent.contract.description if agent.contract else "", cls="lede"),
        _dl(
            [
                ("level", el("strong", agent.level or "—")),
                ("version", agent.active_version or "—"),
                (
                    "latest run",
                    join([_badge(latest.verdict), " ", fmt_time(latest.started_at)])
                    if latest
                    else "no runs",
                ),
                ("open incidents", str(len(open_incidents)) if open_incidents else "none"),
            ]
        ),
        el("div", el("p", answer.headline), cls=f"verdict {answer.tone}"),
        cls="card",
        data_agent=agent.agent,
    )


def index_page(
    agents: Sequence[AgentReport],
    links: Links,
    results: str,
    notes: Sequence[str],
    generated: datetime,
) -> str:
    """The overview: one card per agent."""
    body = join(
        [
            el("h1", "Agent Impact Contracts"),
            el(
                "p",
                f"{len(agents)} agent(s) from {results}. Each card answers: can this agent be "
                "trusted with more, and if not, why.",
                cls="lede",
            ),
            el("div", [_agent_card(a, links) for a in agents], cls="cards"),
            el("ul", [el("li", n) for n in notes], cls="small") if notes else None,
        ]
    )
    return _page("impactgate report", body, 0, generated)


# --- the scorecard ------------------------------------------------------------------------------


def _contract_section(contract: Contract) -> Html:
    rows = []
    for label, metric in [
        *(("business outcome", m) for m in contract.outcome.business),
        ("customer outcome", contract.outcome.customer),
    ]:
        rows.append(
            el(
                "tr",
                _td(label, "small"),
                _td(
                    join(
                        [
                            metric.name,
                            el("div", metric.source, cls="small") if metric.source else None,
                        ]
                    )
                ),
                _td(f"{metric.baseline:g} → {metric.target:g} {metric.unit}", "num"),
                _td(metric.window),
                _td(metric.owner),
            )
        )
    adoption = contract.adoption
    rows.append(
        el(
            "tr",
            _td("adoption", "small"),
            _td(adoption.measure),
            _td(f"{adoption.baseline:.0%} → {adoption.target:.0%}", "num"),
            _td(adoption.window),
            _td(adoption.owner),
        )
    )
    workflow = contract.workflow
    for name in ("cycle_time", "automation_rate", "escalation_rate", "rework_rate"):
        metric = getattr(workflow, name)
        shown = (
            f"{metric.baseline:.0%} → {metric.target:.0%}"
            if metric.unit == "share"
            else f"{metric.baseline:g} → {metric.target:g} {metric.unit}"
        )
        rows.append(
            el(
                "tr",
                _td("workflow", "small"),
                _td(name.replace("_", " ")),
                _td(shown, "num"),
                _td(""),
                _td(""),
            )
        )
    rows.append(
        el(
            "tr",
            _td("workflow", "small"),
            _td("error budget (gated at every level as error_rate)"),
            _td(f"≤ {workflow.error_budget:.0%} of cases", "num"),
            _td("per run"),
            _td(""),
        )
    )
    return join(
        [
            el("h2", "Outcome, adoption and workflow", id="contract"),
            _table(["", "metric", "before → target", "window", "owner"], rows),
        ]
    )


def _ladder(agent: AgentReport) -> Html:
    steps = []
    contract = agent.contract
    for level in LEVELS:
        policy = contract.autonomy.levels.get(level) if contract else None
        cls = "held" if level == agent.level else ("next" if level == agent.next_level else None)
        label = level + (
            " · person approves" if policy is not None and policy.human_approval else ""
        )
        steps.append(el("span", label, cls=cls))
    return el("div", steps, cls="ladder", aria_label="autonomy ladder")


def _gate_cell(gate: GateResult | None) -> list[Html]:
    if gate is None:
        return [_td("", "small"), _td("")]
    return [_td(str(gate.threshold), "num"), _td(_badge(str(gate.verdict)), title=gate.reason)]


def _level_change(agent: AgentReport) -> str | None:
    for decision in reversed(agent.decisions):
        if (
            decision.level_before
            and decision.level_after
            and decision.level_before != decision.level_after
        ):
            return (
                f"{KIND_WORDS.get(decision.kind, decision.kind)} on {fmt_time(decision.at)}: "
                f"{decision.level_before} → {decision.level_after}, version "
                f"{decision.version_before} → {decision.version_after}"
            )
    return None


def _autonomy_section(agent: AgentReport, links: Links) -> Html:
    latest, level, nxt = agent.latest, agent.level, agent.next_level
    current = {g.metric: g for g in agent.gates_at(level)}
    upper = {g.metric: g for g in agent.gates_at(nxt)}
    rows = []
    if agent.contract is not None and latest is not None:
        rollback_on = set(agent.contract.autonomy.rollback.metrics)
        for name in dict.fromkeys([*current, *upper]):
            row = latest.metrics.get(name)
            rows.append(
                el(
                    "tr",
                    _td(
                        join(
                            [
                                name,
                                el("div", "rolls back on failure", cls="small")
                                if name in rollback_on
                                else None,
                            ]
                        )
                    ),
                    _td(fmt_value(name, row.value if row else None), "num"),
                    _td(fmt_interval(name, row.low, row.high) if row else "", "num"),
                    _td(
                        f"{row.n}" + (f" ({row.n_errors} errors)" if row.n_errors else "")
                        if row
                        else "0",
                        "num",
                    ),
                    *_gate_cell(current.get(name)),
                    *_gate_cell(upper.get(name)),
                    _td((current.get(name) or upper[name]).reason, "reason"),
                    data_metric=name,
                )
            )
    elif latest is not None:
        for row in latest.gated:
            rows.append(
                el(
                    "tr",
                    _td(row.metric),
                    _td(fmt_value(row.metric, row.value), "num"),
                    _td(fmt_interval(row.metric, row.low, row.high), "num"),
                    _td(str(row.n), "num"),
                    _td(row.threshold_text, "num"),
                    _td(_badge(row.verdict)),
                    _td(""),
                    _td(""),
                    _td(row.reason or "", "reason"),
                    data_metric=row.metric,
                )
            )
    facts = [
        ("holds", el("strong", level or "—")),
        ("active version", agent.active_version or "—"),
        (
            "last good version",
            f"{agent.entry.last_good_version} ({agent.entry.last_good_source})"
            if agent.entry and agent.entry.last_good_version
            else ("none has passed yet" if agent.entry else ""),
        ),
        ("last level change", _level_change(agent)),
        ("next level", nxt or "none: this is the top"),
    ]
    if latest is not None:
        link = links.run(agent.agent, latest.run_id, 1)
        facts.append(
            (
                "latest run",
                join(
                    [
                        el("a", latest.run_id, href=link) if link else latest.run_id,
                        f" · {latest.trigger} · {fmt_time(latest.started_at)} · {latest.version} gated at "
                        f"{latest.level}: ",
                        _badge(latest.verdict),
                    ]
                ),
            )
        )
        if agent.contract is not None:
            confidence = agent.contract.autonomy.confidence
            facts.append(
                (
                    "rules",
                    f"intervals at {confidence:.0%} confidence; a gate needs at least "
                    f"{agent.contract.autonomy.min_samples} scored cases to pass",
                )
            )
    headers = ["gated metric", "latest", "interval", "n"]
    headers += [f"now: {level}", "verdict"] if level else ["", ""]
    headers += [f"next: {nxt}", "verdict"] if nxt else ["", ""]
    headers += ["why"]
    return join(
        [
            el("h2", "Autonomy", id="autonomy"),
            _ladder(agent),
            _dl(facts),
            _table(headers, rows, cls="gates")
            if rows
            else el("p", "No run has measured this agent yet.", cls="empty"),
        ]
    )


def _incident(incident: Incident, agent: AgentReport, links: Links) -> Html:
    decisions = agent.decisions_of(incident)
    opened = next((d for d in decisions if d.kind != "recover"), None)
    latest = next((d for d in reversed(decisions) if d.kind != "recover"), None)
    run_id = incident.last_run_id
    link = links.run(agent.agent, run_id, 1)
    if incident.status == "open":
        closes = f"a run passes every gate at {incident.level}"
        status = el("span", "open", cls="badge fail")
    else:
        closes = None
        status = el("span", f"closed by run {run_id}", cls="badge pass")
    return el(
        "div",
        el("h3", status, " ", incident_title(incident)),
        el("p", latest.reason if latest else incident_line(incident)),
        _dl(
            [
                ("metrics", ", ".join(incident.metrics)),
                (
                    "version",
                    f"{opened.version_before} → {latest.version_after}"
                    if opened and latest
                    else "",
                ),
                (
                    "level",
                    f"{opened.level_before} → {latest.level_after}" if opened and latest else "",
                ),
                ("evidence", el("a", run_id, href=link) if link else (run_id or "")),
                ("notified", "; ".join(latest.notifications) if latest else "no channels"),
                ("closes when", closes),
            ]
        ),
        cls="incident" + ("" if incident.status == "open" else " closed"),
        data_incident=incident.severity,
        data_incident_id=str(incident.id),
    )


def _incidents_section(agent: AgentReport, links: Links) -> Html:
    open_ones = agent.open_incidents
    closed = [i for i in agent.incidents if i.status != "open"][:5]
    return join(
        [
            el("h2", f"Open incidents ({len(open_ones)})", id="incidents"),
            [_incident(i, agent, links) for i in open_ones]
            if open_ones
            else el("p", "None: no escalation or rollback is waiting for a recovery.", cls="empty"),
            el(
                "details",
                el("summary", f"recently closed ({len(closed)})"),
                [_incident(i, agent, links) for i in closed],
            )
            if closed
            else None,
        ]
    )


def _channel(channel: Any) -> str:
    if channel.kind == "email":
        return f"email to {', '.join(channel.to)}"
    if channel.kind == "event":
        return "Prefect event" + (f" ({channel.resource})" if channel.resource else "")
    if channel.url_env:
        return f"{channel.kind} ${channel.url_env}"
    # A URL in a contract is not a secret, but its path may carry a token: show the host only.
    return f"{channel.kind} {urlsplit(channel.url or '').netloc or '(no URL)'}"


def _paths_section(agent: AgentReport) -> Html:
    contract = agent.contract
    if contract is None:
        return Html("")
    autonomy = contract.autonomy
    escalation, rule = autonomy.escalation, autonomy.rollback
    channels = (
        ", ".join(_channel(c) for c in escalation.channels)
        or "the decisions table and the Prefect UI only"
    )
    last_good = agent.entry.last_good_version if agent.entry else rule.known_good
    rows = [
        ("escalation owner", escalation.owner),
        ("told through", channels),
        (
            "escalates on",
            "a failing gate" + (" or an inconclusive one" if escalation.on_inconclusive else ""),
        ),
        ("rolls back on", ", ".join(rule.metrics) or "nothing (escalation only)"),
        (
            "rolls back to",
            f"{last_good or 'nothing yet: no version has passed, so a rollback would be refused'}"
            f"{' (the last version that passed every gate of its level)' if last_good else ''}",
        ),
        ("demotes to", rule.demote_to),
        ("contract owner", contract.owner),
    ]
    return join([el("h2", "Escalation and rollback", id="paths"), _dl(rows)])


def _legend() -> Html:
    def swatch(shape: Html) -> Html:
        return el("svg", shape, width=14, height=14, viewBox="0 0 14 14")

    items = [
        (el("circle", cx=7, cy=7, r=4, cls="pt pass"), "run passed this gate"),
        (el("circle", cx=7, cy=7, r=4, cls="pt fail"), "failed"),
        (el("circle", cx=7, cy=7, r=4, cls="pt inconclusive"), "inconclusive"),
        (el("circle", cx=7, cy=7, r=4, cls="pt ungated"), "not gated then"),
        (el("rect", x=1, y=3, width=12, height=8, cls="band"), "interval"),
        (el("line", x1=0, x2=14, y1=7, y2=7, cls="thr current"), "current level"),
        (el("line", x1=0, x2=14, y1=7, y2=7, cls="thr next"), "next level"),
        (el("line", x1=7, x2=7, y1=0, y2=14, cls="ver"), "new version"),
        (el("path", d="M7,1 L13,13 L1,13 Z", cls="ev escalate"), "escalation"),
        (el("path", d="M7,1 L13,7 L7,13 L1,7 Z", cls="ev rollback"), "rollback"),
        (el("path", d="M7,1 L13,13 L1,13 Z", cls="ev promote"), "promotion"),
        (el("path", d="M1,1 L13,1 L7,13 Z", cls="ev demote"), "demotion"),
    ]
    return el("div", [el("span", swatch(shape), " ", text) for shape, text in items], cls="legend")


def _trends_section(agent: AgentReport, links: Links) -> Html:
    runs = agent.monitoring_runs
    names = agent.gated_metrics()
    if not runs or not names:
        return join(
            [el("h2", "Trends", id="trends"), el("p", "No runs to chart yet.", cls="empty")]
        )
    contract = agent.contract
    current = contract.gates(agent.level) if contract and agent.level else {}
    upper = contract.gates(agent.next_level) if contract and agent.next_level else {}
    if contract is None:
        # Without a contract the latest run's stored thresholds are the best we know.
        current = {
            m.metric: Threshold(**{m.direction: m.threshold})
            for m in runs[-1].gated
            if m.threshold is not None and m.direction in {"min", "max"}
        }
    versions: list[VersionMark] = []
    for before, after in itertools.pairwise(runs):
        if after.version != before.version:
            versions.append(VersionMark(after.started_at, after.version))
    events = [
        EventMark(
            d.at,
            d.kind,
            f"{fmt_time(d.at)} {KIND_WORDS.get(d.kind, d.kind)}: {d.reason}",
            links.run(agent.agent, d.run_id, 1),
        )
        for d in agent.decisions
    ]
    charts = []
    for name in names:
        points = []
        for run in runs:
            row = run.metrics.get(name)
            value = row.value if row else None
            title = (
                f"{fmt_time(run.started_at)} · {run.version} at {run.level} ({run.trigger}): "
                f"{fmt_value(name, value)} {fmt_interval(name, row.low, row.high) if row else ''}"
                f" · {row.verdict or 'not gated' if row else 'not measured'}"
            )
            points.append(
                TrendPoint(
                    run.started_at,
                    value,
                    row.low if row else None,
                    row.high if row else None,
                    row.verdict if row and row.gated else None,
                    title,
                    run.version,
                    links.run(agent.agent, run.run_id, 1),
                )
            )
        lines = []
        if name in current:
            lines.append(
                ThresholdLine(f"{agent.level} {current[name]}", current[name].bound, "current")
            )
        if name in upper and (name not in current or upper[name].bound != current[name].bound):
            lines.append(
                ThresholdLine(f"next: {agent.next_level} {upper[name]}", upper[name].bound, "next")
            )
        title = f"{name} over {len(runs)} run(s)"
        charts.append(
            el(
                "figure",
                el("h3", name),
                trend_chart(name, points, lines, versions, events, title),
                cls="chart",
            )
        )
    return join(
        [
            el("h2", "Trends", id="trends"),
            el(
                "p",
                "Each gated metric over the runs of the deployed version (nightly, manual and "
                "promotion runs; CI candidates are on their own pages). Hover a mark for details; "
                "click a point to open its run.",
                cls="lede",
            ),
            _legend(),
            charts,
        ]
    )


def _runs_section(agent: AgentReport, links: Links) -> Html:
    recent = list(reversed(agent.runs))[:RECENT]
    rows = []
    for run in recent:
        link = links.run(agent.agent, run.run_id, 1)
        failing = ", ".join(m.metric for m in run.failing)
        rows.append(
            el(
                "tr",
                _td(fmt_time(run.started_at), "num"),
                _td(el("a", run.run_id, href=link) if link else run.run_id),
                _td(run.trigger + (" (vs baseline)" if run.baseline_run_id else "")),
                _td(run.version),
                _td(run.level or ""),
                _td(_badge(run.verdict)),
                _td(failing, "reason"),
            )
        )
    older = len(agent.runs) - len(recent)
    return join(
        [
            el("h2", f"Runs ({len(agent.runs)})", id="runs"),
            _table(
                ["started", "run", "trigger", "version", "gated at", "verdict", "gates not passed"],
                rows,
            )
            if rows
            else el("p", "No runs yet.", cls="empty"),
            el("p", f"{older} older run(s) not listed; they are in the trends.", cls="small")
            if older > 0
            else None,
        ]
    )


def _decisions_section(agent: AgentReport, links: Links) -> Html:
    recent: list[Decision] = list(reversed(agent.decisions))[:RECENT]
    rows = [
        el(
            "tr",
            _td(fmt_time(d.at), "num"),
            _td(KIND_WORDS.get(d.kind, d.kind)),
            _td(f"{d.version_before or '?'} → {d.version_after or '?'}"),
            _td(f"{d.level_before or '?'} → {d.level_after or '?'}"),
            _td(d.reason, "reason"),
            _td(d.approved_by or d.actor, "small"),
            _td(
                el("a", "run", href=links.run(agent.agent, d.run_id, 1))
                if links.run(agent.agent, d.run_id, 1)
                else ""
            ),
        )
        for d in recent
    ]
    return join(
        [
            el("h2", f"Audit trail ({len(agent.decisions)})", id="decisions"),
            _table(["at", "decision", "version", "level", "why", "by", ""], rows)
            if rows
            else el("p", "No decisions recorded.", cls="empty"),
        ]
    )


def agent_page(agent: AgentReport, links: Links, generated: datetime) -> str:
    """The one-page Agent Impact Contract with trends, runs and the audit trail."""
    contract = agent.contract
    answer = readiness(agent)
    body = join(
        [
            el("div", el("a", "all agents", href="../index.html"), cls="crumbs"),
            el("h1", agent.agent),
            el("p", contract.description if contract else "", cls="lede"),
            [el("div", p, cls="note") for p in agent.problems],
            el(
                "div",
                el("p", "Can it be trusted with more? ", answer.headline),
                el("ul", [el("li", r) for r in answer.reasons]) if answer.reasons else None,
                cls=f"verdict {answer.tone}",
                id="answer",
            ),
            _autonomy_section(agent, links),
            _incidents_section(agent, links),
            _paths_section(agent),
            _contract_section(contract) if contract else None,
            _trends_section(agent, links),
            _runs_section(agent, links),
            _decisions_section(agent, links),
        ]
    )
    return _page(f"{agent.agent} · impactgate", body, 1, generated)


# --- the drill-down ----------------------------------------------------------------------------


def _output(
    output: str | None, sample: SampleRecord | None, pairs: Sequence[tuple[str, str]]
) -> Html:
    """The output with each policy violation's span replaced by its masked form, marked."""
    if output is None:
        return el("p", "no output", cls="empty")
    spans = violation_spans(output, sample.evidence if sample is not None else None)
    parts: list[object] = []
    cursor = 0
    for start, end, shown, rule in spans:
        if start < cursor:
            continue  # overlapping spans: the first one already hides this text
        parts.append(masked(output[cursor:start], pairs))
        parts.append(el("mark", shown, cls="masked", title=f"{rule}: masked"))
        cursor = end
    parts.append(masked(output[cursor:], pairs))
    return el("pre", parts, cls="text")


def _claims(evidence: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> Html | None:
    claims = [c for c in evidence.get("claims") or [] if isinstance(c, dict)]
    if not claims:
        return None
    rows = []
    for claim in claims:
        supported = claim.get("supported")
        verdict = str(claim.get("verdict") or ("supported" if supported else "unsupported"))
        probability = claim.get("probability")
        rows.append(
            el(
                "tr",
                _td(masked(str(claim.get("text") or ""), pairs)),
                _td(_badge("pass" if supported else "fail", verdict)),
                _td(f"{probability:.2f}" if isinstance(probability, (int, float)) else "", "num"),
                _td(masked(str(claim.get("evidence") or ""), pairs), "reason"),
                _td(
                    el(
                        "ul",
                        [el("li", masked_words(str(r), pairs)) for r in claim.get("reasons") or []],
                    ),
                    "reason",
                ),
            )
        )
    judge = evidence.get("judge")
    return join(
        [
            el("div", f"claims ({judge} judge)" if judge else "claims", cls="label"),
            _table(["claim", "verdict", "support", "closest or supporting passage", "why"], rows),
        ]
    )


def _violations(evidence: dict[str, Any]) -> Html | None:
    violations = [v for v in evidence.get("violations") or [] if isinstance(v, dict)]
    if not violations:
        return None
    rows = [
        el(
            "tr",
            _td(str(v.get("rule") or "")),
            _td(str(v.get("severity") or "")),
            _td(el("mark", str(v.get("masked") or "***"), cls="masked")),
            _td(f"{v.get('start')}–{v.get('end')}", "num"),
            _td(str(v.get("message") or ""), "reason"),
        )
        for v in violations
    ]
    return join(
        [
            el("div", "violated rules (span masked)", cls="label"),
            _table(["rule", "severity", "span", "at", "what to do"], rows),
        ]
    )


def _evidence(sample: SampleRecord, pairs: Sequence[tuple[str, str]]) -> Html | None:
    evidence = sample.evidence
    if not evidence:
        return None
    if isinstance(evidence, dict):
        shown = [_claims(evidence, pairs), _violations(evidence)]
        if any(shown):
            return join(shown)
    text = masked(json.dumps(evidence, indent=1, ensure_ascii=False), pairs)
    return el("details", el("summary", "evidence"), el("pre", text, cls="json"))


def _case(failure: CaseFailure, case: Case | None, case_note: str | None) -> Html:
    pairs = mask_spans(failure.samples)
    policy = failure.samples.get("policy_violation")
    blocks: list[object] = [
        el(
            "h3",
            failure.case_id,
            " ",
            [el("span", m, cls="chip fail") for m in failure.metrics],
            [el("span", t, cls="chip") for t in failure.tags],
        )
    ]
    blocks.append(el("div", "input", cls="label"))
    if case is not None:
        blocks.append(el("pre", masked(case.input, pairs), cls="text"))
    else:
        blocks.append(el("p", case_note or "this case is not in the dataset any more", cls="empty"))
    blocks.append(el("div", "output", cls="label"))
    blocks.append(_output(failure.output, policy, pairs))
    if case is not None and case.contexts:
        blocks.append(
            el(
                "details",
                el("summary", f"contexts ({len(case.contexts)} passages)"),
                el(
                    "ol",
                    [el("li", el("pre", masked(c, pairs), cls="text")) for c in case.contexts],
                ),
                cls="contexts",
            )
        )
    if case is not None and case.reference:
        blocks.append(
            el("details", el("summary", "reference answer"), el("pre", case.reference, cls="text"))
        )
    shown: dict[str, str] = {}
    for item in failure.failures:
        sample = item.sample
        # Faithfulness and hallucination rest on the same claims: show them once.
        key = json.dumps(sample.evidence, sort_keys=True, default=str) if sample.evidence else ""
        evidence = (
            el("p", f"Evidence: the claims under {shown[key]} above.", cls="small")
            if key in shown
            else _evidence(sample, pairs)
        )
        if key:
            shown.setdefault(key, sample.metric)
        blocks.append(
            el(
                "div",
                el(
                    "div", f"{sample.metric}: {fmt_value(sample.metric, sample.value)}", cls="label"
                ),
                el("p", masked(item.why, pairs)),
                evidence,
                cls="failure",
                data_metric=sample.metric,
            )
        )
    return el(
        "article",
        blocks,
        cls="case",
        id=f"case-{failure.case_id}",
        data_case=failure.case_id,
        data_metrics=json.dumps(failure.metrics),
        data_tags=json.dumps(list(failure.tags)),
    )


def _run_gates(run: RunRecord) -> Html:
    rows = [
        el(
            "tr",
            _td(m.metric),
            _td(fmt_value(m.metric, m.value), "num"),
            _td(fmt_interval(m.metric, m.low, m.high), "num"),
            _td(f"{m.n}" + (f" ({m.n_errors} errors)" if m.n_errors else ""), "num"),
            _td(m.threshold_text, "num"),
            _td(_badge(m.verdict if m.gated else None)),
            _td(m.reason or m.note or "", "reason"),
            data_metric=m.metric,
        )
        for m in sorted(run.metrics.values(), key=lambda m: not m.gated)
    ]
    return _table(
        ["metric", "value", "interval", "n", "threshold", "verdict", "why"], rows, cls="gates"
    )


MEASURED_SHOWN = 10
"""Worse cases listed per scorer that only measures (cost, latency): small moves are noise."""


def _worst_first(comparisons: Sequence[MetricComparison]) -> list[CaseChange]:
    """The worse cases in the order a reviewer needs them.

    Newly failing cases first, then judged scorers that dropped, then the largest moves of
    scorers that only measure (at most ``MEASURED_SHOWN`` each).
    """
    failing = [w for c in comparisons for w in c.worse if w.newly_failing]
    judged = [
        w
        for c in comparisons
        for w in c.worse
        if not w.newly_failing and w.candidate.passed is not None
    ]
    measured = [
        w
        for c in comparisons
        for w in [x for x in c.worse if not x.newly_failing and x.candidate.passed is None][
            :MEASURED_SHOWN
        ]
    ]
    return failing + judged + measured


Masks = Mapping[str, Sequence[tuple[str, str]]]
"""Case id → ``(raw, masked)`` spans of that case's policy violations in one run."""


def _comparison(
    comparisons: Sequence[MetricComparison],
    baseline: RunRecord,
    links: Links,
    cases: dict[str, Case],
    masks: tuple[Masks, Masks],
) -> Html:
    summary = [
        el(
            "tr",
            _td(c.metric),
            _td(c.better or "?"),
            _td(str(c.n_paired), "num"),
            _td(fmt_value(c.metric, c.baseline_mean), "num"),
            _td(fmt_value(c.metric, c.candidate_mean), "num"),
            _td(
                "—" if c.mean_delta is None else fmt_delta(c.metric, c.mean_delta),
                "num",
            ),
            _td(str(len(c.worse)), "num " + ("fail" if c.worse else "")),
            _td(str(c.n_better), "num"),
            _td(
                f"{c.only_baseline} only in baseline, {c.only_candidate} only in candidate"
                if c.only_baseline or c.only_candidate
                else "",
                "reason",
            ),
        )
        for c in comparisons
    ]
    worse_rows = []
    for change in _worst_first(comparisons):
        before = masks[0].get(change.case_id, ())
        pairs = masks[1].get(change.case_id, ())
        case = cases.get(change.case_id)
        worse_rows.append(
            el(
                "tr",
                _td(join([change.case_id, el("div", case.input, cls="small") if case else None])),
                _td(change.metric),
                _td(
                    join(
                        [
                            fmt_value(change.metric, change.baseline.value),
                            " → ",
                            fmt_value(change.metric, change.candidate.value),
                            el("div", "newly failing", cls="badge fail")
                            if change.newly_failing
                            else None,
                        ]
                    ),
                    "num",
                ),
                _td(el("pre", masked(change.baseline.output, before), cls="text")),
                _td(
                    join(
                        [
                            el("pre", masked(change.candidate.output, pairs), cls="text"),
                            el("div", masked(change.candidate.explanation, pairs), cls="small"),
                        ]
                    )
                ),
                data_case=change.case_id,
                data_metrics=json.dumps([change.metric]),
                data_tags=json.dumps(list(change.candidate.tags)),
            )
        )
    link = links.run(baseline.agent, baseline.run_id, 2)
    return join(
        [
            el("h2", "Candidate vs baseline", id="compare"),
            el(
                "p",
                "Paired by case id on the same golden cases. Baseline: ",
                el("a", baseline.run_id, href=link) if link else baseline.run_id,
                f" ({baseline.version}, {fmt_time(baseline.started_at)}).",
                cls="lede",
            ),
            _table(
                [
                    "scorer",
                    "better",
                    "paired",
                    "baseline mean",
                    "candidate mean",
                    "Δ mean",
                    "worse",
                    "better",
                    "",
                ],
                summary,
            ),
            el("h3", f"Cases that got worse ({sum(len(c.worse) for c in comparisons)})"),
            el(
                "p",
                f"Newly failing first, then the rest; for cost and latency the {MEASURED_SHOWN} "
                "largest moves each.",
                cls="small",
            ),
            _table(
                ["case", "scorer", "baseline → candidate", "baseline output", "candidate output"],
                worse_rows,
                cls="worse",
            )
            if worse_rows
            else el("p", "No case got worse.", cls="empty"),
        ]
    )


def run_page(
    agent: AgentReport,
    run: RunRecord,
    failures: Sequence[CaseFailure],
    cases: dict[str, Case],
    case_note: str | None,
    comparison: tuple[RunRecord, Sequence[MetricComparison], tuple[Masks, Masks]] | None,
    baseline_note: str | None,
    links: Links,
    generated: datetime,
) -> str:
    """A run: its gates, the candidate-vs-baseline view for CI runs, and its failing cases."""
    metric_counts: dict[str, int] = {}
    tag_counts: dict[str, int] = {}
    for failure in failures:
        for metric in failure.metrics:
            metric_counts[metric] = metric_counts.get(metric, 0) + 1
        for tag in failure.tags:
            tag_counts[tag] = tag_counts.get(tag, 0) + 1
    missing = sum(1 for f in failures if f.case_id not in cases)
    filters = el(
        "div",
        el(
            "label",
            "scorer ",
            el(
                "select",
                el("option", f"all ({len(failures)})", value=""),
                [el("option", f"{m} ({n})", value=m) for m, n in sorted(metric_counts.items())],
                id="filter-metric",
            ),
        ),
        el(
            "label",
            "tag ",
            el(
                "select",
                el("option", "all", value=""),
                [el("option", f"{t} ({n})", value=t) for t, n in sorted(tag_counts.items())],
                id="filter-tag",
            ),
        ),
        el("span", f"{len(failures)} shown", id="filter-count", cls="small"),
        cls="filters",
    )
    facts = [
        ("verdict", join([_badge(run.verdict), f" at {run.level}"])),
        ("version", f"{run.version} ({(run.version_hash or '')[:12]})"),
        ("trigger", run.trigger),
        ("started", fmt_time(run.started_at)),
        ("finished", fmt_time(run.finished_at)),
        ("cases", str(run.n_cases)),
        ("dataset", f"{run.dataset} (sha256 {(run.dataset_hash or '?')[:12]})"),
        ("code", run.code_version),
    ]
    notes = [n for n in (case_note, baseline_note) if n]
    if missing and not case_note:
        notes.append(
            f"{missing} failing case(s) are not in today's dataset: their inputs and contexts are not shown"
        )
    body = join(
        [
            el(
                "div",
                el("a", "all agents", href="../../index.html"),
                " › ",
                el("a", agent.agent, href=links.agent(agent.agent, 2)),
                cls="crumbs",
            ),
            el("h1", f"Run {run.run_id}"),
            _dl(facts),
            [el("div", n, cls="note") for n in notes],
            el("h2", "Gates", id="gates"),
            _run_gates(run),
            _comparison(comparison[1], comparison[0], links, cases, comparison[2])
            if comparison
            else None,
            el("h2", f"Failing cases ({len(failures)})", id="cases"),
            el(
                "p",
                "Cases a scorer failed, that could not be scored, or whose own value is beyond a "
                "gate the run did not pass. Inputs and contexts come from the contract's dataset "
                "file; personal data the policy scorer found is masked.",
                cls="lede",
            ),
            filters if failures or comparison else None,
            [_case(f, cases.get(f.case_id), case_note) for f in failures]
            if failures
            else el("p", "No case failed on this run.", cls="empty"),
        ]
    )
    return _page(f"{agent.agent} {run.run_id} · impactgate", body, 2, generated, script=True)
