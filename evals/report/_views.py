"""What each page shows, as plain data: the view model the templates lay out.

One dataclass per page — :class:`IndexPage`, :class:`AgentPage`, :class:`RunPage` (with its
:class:`ComparisonSection` for CI runs) — built from the report's data (``AgentReport``, the
store's records, the readiness answer). Every number is formatted here, through
``evals.metrics.fmt_*``, so a template never formats anything and a value prints the same way
on every surface. Everything is plain text: the templates escape all of it (autoescape), so
nothing from an agent, a dataset, a judge or a contract can become markup. Links are relative
paths made by :class:`Links` only.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any, ClassVar
from urllib.parse import quote, urlsplit

from evals.contract import LEVELS, Channel, Contract
from evals.dataset import Case
from evals.gates import GateResult
from evals.labelling import AGREEMENT
from evals.metrics import fmt_delta, fmt_interval, fmt_time, fmt_unit, fmt_value
from evals.readiness import Readiness, incident_line, incident_title, readiness
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
from evals.report._markdown import evidence_line
from evals.report._svg import (
    EventMark,
    ThresholdLine,
    TrendChart,
    TrendPoint,
    VersionMark,
    trend_chart,
)
from evals.scorecard import Scorecard
from evals.store import Decision, Incident, MetricRecord, RunRecord, SampleRecord

__all__ = [
    "KIND_WORDS",
    "MEASURED_SHOWN",
    "RECENT",
    "AgentCard",
    "AgentPage",
    "CaseView",
    "ClaimRow",
    "ComparisonRow",
    "ComparisonSection",
    "DecisionRow",
    "Fact",
    "FailureView",
    "Filters",
    "GateCell",
    "GateRow",
    "IncidentView",
    "IndexPage",
    "LadderStep",
    "Links",
    "Masks",
    "Option",
    "OutcomeRow",
    "OutputPart",
    "Part",
    "RunGateRow",
    "RunPage",
    "RunRow",
    "ScorecardRow",
    "ScorecardView",
    "ViolationRow",
    "WorseRow",
    "agent_page",
    "channel_text",
    "comparison_section",
    "index_page",
    "run_page",
]

RECENT = 30
"""Rows of runs and decisions listed on an agent's page (newest first)."""

MEASURED_SHOWN = 10
"""Worse cases listed per scorer that only measures (cost, latency): small moves are noise."""

KIND_WORDS = {
    "escalate": "escalation",
    "recover": "recovery",
    "rollback": "rollback",
    "rollback_refused": "rollback refused",
    "promote": "promotion",
    "promotion_failed": "promotion failed",
    "promotion_rejected": "promotion rejected",
    "demote": "demotion",
    "approve": "approval",
    "deploy": "deployment",
}


# --- pieces every page uses -------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    """A piece of inline text: plain, strong, a link, or a verdict badge."""

    text: str
    href: str | None = None
    """A link to another page of the report (relative)."""
    badge: str | None = None
    """Shown as a badge of this verdict (``pass``, ``fail``, ``inconclusive``, ``ungated``)."""
    strong: bool = False


def _badge(verdict: str | None, text: str | None = None) -> Part:
    verdict = verdict or "ungated"
    return Part(text or ("not gated" if verdict == "ungated" else verdict), badge=verdict)


def _link(text: str, href: str | None) -> Part:
    return Part(text, href=href)


@dataclass(frozen=True)
class Fact:
    """One row of a ``<dl>``: a label and what it says."""

    label: str
    parts: tuple[Part, ...]

    @property
    def text(self) -> str:
        """What the row reads as, without markup."""
        return "".join(p.text for p in self.parts)


FactValue = str | Part | Sequence[Part] | None


def _facts(rows: Sequence[tuple[str, FactValue]]) -> list[Fact]:
    """Facts from ``(label, value)`` pairs; empty and missing values are left out."""
    facts = []
    for label, value in rows:
        if value is None or value == "":
            continue
        if isinstance(value, str):
            parts: tuple[Part, ...] = (Part(value),)
        elif isinstance(value, Part):
            parts = (value,)
        else:
            parts = tuple(value)
        facts.append(Fact(label, parts))
    return facts


@dataclass(frozen=True)
class Links:
    """Relative links between pages; a run has a page only when it is in ``run_pages``."""

    run_pages: dict[str, set[str]]
    """Agent → run ids with a page."""

    @staticmethod
    def agent(agent: str, depth: int) -> str:
        """The agent's page from a page ``depth`` folders deep."""
        return f"{'../' * depth}agents/{quote(agent)}.html"

    def run(self, agent: str, run_id: str | None, depth: int) -> str | None:
        """A run's page, or ``None`` when it has none."""
        if run_id is None or run_id not in self.run_pages.get(agent, set()):
            return None
        return f"{'../' * depth}runs/{quote(agent)}/{quote(run_id)}.html"


def _run_part(links: Links, agent: str, run_id: str | None, depth: int) -> Part:
    return _link(run_id or "", links.run(agent, run_id, depth))


def _count(n: int, n_errors: int) -> str:
    return f"{n}" + (f" ({n_errors} errors)" if n_errors else "")


# --- the overview ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentCard:
    """One agent at a glance, on the overview."""

    agent: str
    href: str
    description: str
    facts: list[Fact]
    answer: Readiness
    open_incidents: int


@dataclass(frozen=True)
class IndexPage:
    """``index.html``: every agent."""

    template: ClassVar[str] = "index.html.j2"
    depth: ClassVar[int] = 0
    script: ClassVar[bool] = False

    title: str
    intro: str
    cards: list[AgentCard]
    notes: list[str]


def _card(agent: AgentReport) -> AgentCard:
    latest = agent.latest
    n_open = len(agent.open_incidents)
    facts = _facts(
        [
            ("level", Part(agent.level or "—", strong=True)),
            ("version", agent.active_version or "—"),
            (
                "latest run",
                [_badge(latest.verdict), Part(f" {fmt_time(latest.started_at)}")]
                if latest
                else "no runs",
            ),
            ("open incidents", str(n_open) if n_open else "none"),
        ]
    )
    return AgentCard(
        agent=agent.agent,
        href=Links.agent(agent.agent, 0),
        description=agent.contract.description if agent.contract else "",
        facts=facts,
        answer=readiness(agent),
        open_incidents=n_open,
    )


def index_page(agents: Sequence[AgentReport], results: str, notes: Sequence[str]) -> IndexPage:
    """The overview: one card per agent."""
    return IndexPage(
        title="impactgate report",
        intro=f"{len(agents)} agent(s) from {results}. Each card answers: can this agent be "
        "trusted with more, and if not, why.",
        cards=[_card(a) for a in agents],
        notes=list(notes),
    )


# --- the scorecard ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LadderStep:
    """One level of the autonomy ladder."""

    level: str
    label: str
    state: str
    """``held``, ``next`` or empty."""


@dataclass(frozen=True)
class GateCell:
    """A gate of one level against the latest run."""

    threshold: str
    verdict: Part
    reason: str


@dataclass(frozen=True)
class GateRow:
    """A metric gated at the current or the next level, with the latest run's number."""

    metric: str
    rolls_back: bool
    value: str
    interval: str
    n: str
    now: GateCell | None
    next: GateCell | None
    why: str


@dataclass(frozen=True)
class IncidentView:
    """An incident from the ledger, with the decisions that opened, updated or closed it."""

    id: int
    kind: str
    """The latest decision's kind (``escalate``, ``rollback``, ``rollback_refused``)."""
    severity: str
    open: bool
    status: Part
    title: str
    summary: str
    """The latest decision's reason, else the incident in one line."""
    facts: list[Fact]
    trail: list[str]
    """Its decisions, oldest first, one line each."""


@dataclass(frozen=True)
class OutcomeRow:
    """A row of the contract's outcome, adoption and workflow table."""

    group: str
    name: str
    source: str
    change: str
    """Baseline → target, in the metric's unit."""
    window: str
    owner: str


@dataclass(frozen=True)
class ScorecardRow:
    """A measured metric of the scorecard."""

    block: str
    name: str
    unit: str
    change: str
    """Baseline → target (or the error budget)."""
    value: str
    interval: str
    n: str
    status: str
    tone: str
    """``pass``, ``warn``, ``fail`` or ``muted``: how the status reads."""
    red_flags: str
    note: str


@dataclass(frozen=True)
class ScorecardView:
    """The contract measured from production telemetry, with weekly trends."""

    window: str
    headline: str
    rows: list[ScorecardRow]
    red_flags: list[str]
    notes: list[str]
    charts: list[TrendChart]


@dataclass(frozen=True)
class RunRow:
    """A run in the agent's runs table."""

    started: str
    run: Part
    trigger: str
    version: str
    level: str
    verdict: Part
    failing: str


@dataclass(frozen=True)
class DecisionRow:
    """An entry of the audit trail."""

    at: str
    kind: str
    version: str
    level: str
    why: str
    by: str
    run: Part | None


@dataclass(frozen=True)
class ProductionRow:
    """A metric on the golden set and on production, side by side, with the gap."""

    metric: str
    golden: str
    golden_interval: str
    production: str
    production_interval: str
    gap: str
    """Production minus golden with its interval (quality metrics), else empty."""
    worse: bool
    """The gap's interval excludes zero on the metric's bad side."""
    verdict: Part
    """The production run's gate on the metric."""


@dataclass(frozen=True)
class ClusterRow:
    """A cluster of production questions no golden case is close to."""

    size: str
    share: str
    nearest: str
    example: str
    trace: str


@dataclass(frozen=True)
class ProductionSection:
    """The agent's latest production run beside its latest golden run, and the coverage."""

    run: Part
    evidence: str
    rows: list[ProductionRow]
    coverage: str
    """``golden_coverage`` with its interval and n, or empty when not measured."""
    clusters: list[ClusterRow]


@dataclass(frozen=True)
class AgentPage:
    """``agents/<agent>.html``: the one-page Agent Impact Contract."""

    template: ClassVar[str] = "agent.html.j2"
    depth: ClassVar[int] = 1
    script: ClassVar[bool] = False

    agent: str
    title: str
    description: str
    problems: list[str]
    answer: Readiness
    ladder: list[LadderStep]
    facts: list[Fact]
    """The autonomy facts: level held, versions, last level change, next level, latest run."""
    gate_headers: list[str]
    gates: list[GateRow]
    open_incidents: list[IncidentView]
    closed_incidents: list[IncidentView]
    """Recently closed, newest first."""
    paths: list[Fact]
    """Escalation and rollback; empty without a contract."""
    outcomes: list[OutcomeRow]
    """Outcome, adoption and workflow; empty without a contract."""
    scorecard: ScorecardView | None
    """The same blocks measured from production telemetry (a ``telemetry`` block)."""
    charts: list[TrendChart]
    runs: list[RunRow]
    """The latest runs, newest first."""
    runs_total: int
    decisions: list[DecisionRow]
    """The latest decisions, newest first."""
    decisions_total: int
    production: ProductionSection | None = None
    """Golden and production side by side; ``None`` without a production run."""

    @property
    def runs_older(self) -> int:
        """Runs not listed (they are in the trends)."""
        return self.runs_total - len(self.runs)

    def fact(self, label: str) -> str:
        """The autonomy fact with this label, as text (empty when absent)."""
        return next((f.text for f in self.facts if f.label == label), "")


def _ladder(agent: AgentReport) -> list[LadderStep]:
    steps = []
    for level in LEVELS:
        policy = agent.contract.autonomy.levels.get(level) if agent.contract else None
        person = " · person approves" if policy is not None and policy.human_approval else ""
        state = "held" if level == agent.level else ("next" if level == agent.next_level else "")
        steps.append(LadderStep(level, level + person, state))
    return steps


def _gate_cell(gate: GateResult | None) -> GateCell | None:
    if gate is None:
        return None
    return GateCell(str(gate.threshold), _badge(str(gate.verdict)), gate.reason)


def _level_change(agent: AgentReport) -> str | None:
    for d in reversed(agent.decisions):
        if d.level_before and d.level_after and d.level_before != d.level_after:
            return (
                f"{KIND_WORDS.get(d.kind, d.kind)} on {fmt_time(d.at)}: "
                f"{d.level_before} → {d.level_after}, version "
                f"{d.version_before} → {d.version_after}"
            )
    return None


def _gate_rows(agent: AgentReport) -> list[GateRow]:
    latest, contract = agent.latest, agent.contract
    if latest is None:
        return []
    if contract is None:
        # Without a contract, the latest run's stored gates are the best we know.
        return [
            GateRow(
                metric=m.metric,
                rolls_back=m.rollback,
                value=m.value_text,
                interval=m.interval_text,
                n=str(m.n),
                now=GateCell(m.threshold_text, _badge(m.verdict), m.reason or ""),
                next=None,
                why=m.reason or "",
            )
            for m in latest.gated
        ]
    current = {g.metric: g for g in agent.gates_at(agent.level)}
    upper = {g.metric: g for g in agent.gates_at(agent.next_level)}
    rollback_on = set(contract.autonomy.rollback.metrics)
    rows = []
    for name in dict.fromkeys([*current, *upper]):
        row = latest.metrics.get(name)
        rows.append(
            GateRow(
                metric=name,
                rolls_back=name in rollback_on,
                value=fmt_value(name, row.value if row else None),
                interval=row.interval_text if row else "",
                n=_count(row.n, row.n_errors) if row else "0",
                now=_gate_cell(current.get(name)),
                next=_gate_cell(upper.get(name)),
                why=(current.get(name) or upper[name]).reason,
            )
        )
    checked = latest.metrics.get(AGREEMENT)
    if AGREEMENT not in current and AGREEMENT not in upper and checked is not None:
        # The judge behind the grounding metrics, checked on the owner's labels: shown with
        # them even when only a higher level gates it.
        later = [
            f"{level} needs {gates[AGREEMENT]}"
            for level in LEVELS
            if AGREEMENT in (gates := contract.gates(level))
        ]
        rows.append(
            GateRow(
                metric=AGREEMENT,
                rolls_back=False,
                value=fmt_value(AGREEMENT, checked.value),
                interval=checked.interval_text,
                n=_count(checked.n, checked.n_errors),
                now=None,
                next=None,
                why="; ".join([checked.note or "", *later[:1]]).strip("; "),
            )
        )
    return rows


def _autonomy_facts(agent: AgentReport, links: Links) -> list[Fact]:
    latest, entry = agent.latest, agent.entry
    rows: list[tuple[str, FactValue]] = [
        ("holds", Part(agent.level or "—", strong=True)),
        ("active version", agent.active_version or "—"),
        (
            "last good version",
            f"{entry.last_good_version} ({entry.last_good_source})"
            if entry and entry.last_good_version
            else ("none has passed yet" if entry else ""),
        ),
        ("last level change", _level_change(agent)),
        ("next level", agent.next_level or "none: this is the top"),
    ]
    if latest is not None:
        rows.append(
            (
                "latest run",
                [
                    _run_part(links, agent.agent, latest.run_id, 1),
                    Part(
                        f" · {latest.trigger} · {fmt_time(latest.started_at)} · {latest.version} "
                        f"gated at {latest.level}: "
                    ),
                    _badge(latest.verdict),
                ],
            )
        )
        if agent.contract is not None:
            autonomy = agent.contract.autonomy
            rows.append(
                (
                    "rules",
                    f"intervals at {autonomy.confidence:.0%} confidence; a gate needs at least "
                    f"{autonomy.min_samples} scored cases to pass",
                )
            )
    return _facts(rows)


def _incident(incident: Incident, agent: AgentReport, links: Links) -> IncidentView:
    decisions = agent.decisions_of(incident)
    acting = [d for d in decisions if d.kind != "recover"]
    opened = acting[0] if acting else None
    latest = acting[-1] if acting else None
    is_open = incident.status == "open"
    # The run behind the latest breach; once closed, the ledger's last run is the closing one.
    evidence = (
        latest.run_id if latest and latest.run_id else (incident.last_run_id if is_open else None)
    )
    closed_by = f"closed by run {incident.last_run_id}" if incident.last_run_id else "closed"
    facts = _facts(
        [
            ("metrics", ", ".join(incident.metrics)),
            ("severity", incident.severity),
            (
                "version",
                f"{opened.version_before} → {latest.version_after}" if opened and latest else "",
            ),
            ("level", f"{opened.level_before} → {latest.level_after}" if opened and latest else ""),
            ("evidence", _run_part(links, agent.agent, evidence, 1) if evidence else None),
            ("notified", "; ".join(latest.notifications) or "no channels" if latest else None),
            ("closes when", f"a run passes every gate at {incident.level}" if is_open else None),
        ]
    )
    return IncidentView(
        id=incident.id,
        kind=latest.kind if latest else "",
        severity=incident.severity,
        open=is_open,
        status=_badge("fail", "open") if is_open else _badge("pass", closed_by),
        title=incident_title(incident),
        summary=latest.reason if latest else incident_line(incident),
        facts=facts,
        trail=[
            f"{fmt_time(d.at)} · {KIND_WORDS.get(d.kind, d.kind)}: {d.reason}" for d in decisions
        ],
    )


def channel_text(channel: Channel) -> str:
    """How a notification channel is named on the page: never a secret."""
    if channel.kind == "email":
        return f"email to {', '.join(channel.to)}"
    if channel.kind == "event":
        return "Prefect event" + (f" ({channel.resource})" if channel.resource else "")
    if channel.url_env:
        return f"{channel.kind} ${channel.url_env}"
    # A URL in a contract is not a secret, but its path may carry a token: show the host only.
    return f"{channel.kind} {urlsplit(channel.url or '').netloc or '(no URL)'}"


def _paths(agent: AgentReport) -> list[Fact]:
    contract = agent.contract
    if contract is None:
        return []
    autonomy = contract.autonomy
    escalation, rule = autonomy.escalation, autonomy.rollback
    channels = ", ".join(channel_text(c) for c in escalation.channels)
    last_good = agent.entry.last_good_version if agent.entry else rule.known_good
    return _facts(
        [
            ("escalation owner", escalation.owner),
            ("told through", channels or "the decisions table and the Prefect UI only"),
            (
                "escalates on",
                "a failing gate"
                + (" or an inconclusive one" if escalation.on_inconclusive else ""),
            ),
            ("rolls back on", ", ".join(rule.metrics) or "nothing (escalation only)"),
            (
                "rolls back to",
                f"{last_good} (the last version that passed every gate of its level)"
                if last_good
                else "nothing yet: no version has passed, so a rollback would be refused",
            ),
            ("demotes to", rule.demote_to),
            ("contract owner", contract.owner),
        ]
    )


def _outcomes(contract: Contract | None) -> list[OutcomeRow]:
    if contract is None:
        return []
    rows = [
        OutcomeRow(
            group,
            metric.name,
            metric.source or "",
            f"{metric.baseline:g} → {metric.target:g} {metric.unit}",
            metric.window,
            metric.owner,
        )
        for group, metric in [
            *(("business outcome", m) for m in contract.outcome.business),
            ("customer outcome", contract.outcome.customer),
        ]
    ]
    adoption = contract.adoption
    rows.append(
        OutcomeRow(
            "adoption",
            adoption.measure,
            "",
            f"{adoption.baseline:.0%} → {adoption.target:.0%}",
            adoption.window,
            adoption.owner,
        )
    )
    workflow = contract.workflow
    for name in ("cycle_time", "automation_rate", "escalation_rate", "rework_rate"):
        metric = getattr(workflow, name)
        change = (
            f"{metric.baseline:.0%} → {metric.target:.0%}"
            if metric.unit == "share"
            else f"{metric.baseline:g} → {metric.target:g} {metric.unit}"
        )
        rows.append(OutcomeRow("workflow", name.replace("_", " "), "", change, "", ""))
    rows.append(
        OutcomeRow(
            "workflow",
            "error budget (gated at every level as error_rate)",
            "",
            f"≤ {workflow.error_budget:.0%} of cases",
            "per run",
            "",
        )
    )
    return rows


def _charts(agent: AgentReport, links: Links) -> list[TrendChart]:
    runs = agent.monitoring_runs
    names = agent.gated_metrics()
    if not runs or not names:
        return []
    contract = agent.contract
    current = contract.gates(agent.level) if contract and agent.level else {}
    upper = contract.gates(agent.next_level) if contract and agent.next_level else {}
    if contract is None:
        current = {m.metric: t for m in runs[-1].gated if (t := m.threshold_obj()) is not None}
    versions = [
        VersionMark(after.started_at, after.version)
        for before, after in itertools.pairwise(runs)
        if after.version != before.version
    ]
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
        points = [_trend_point(name, run, run.metrics.get(name), links) for run in runs]
        lines = []
        if name in current:
            lines.append(
                ThresholdLine(f"{agent.level} {current[name]}", current[name].bound, "current")
            )
        if name in upper and (name not in current or upper[name].bound != current[name].bound):
            lines.append(
                ThresholdLine(f"next: {agent.next_level} {upper[name]}", upper[name].bound, "next")
            )
        chart = trend_chart(
            name, points, lines, versions, events, f"{name} over {len(runs)} run(s)"
        )
        if chart is not None:
            charts.append(chart)
    return charts


def _trend_point(name: str, run: RunRecord, row: MetricRecord | None, links: Links) -> TrendPoint:
    if row is None:
        shown = f"{fmt_value(name, None)} · not measured"
    else:
        shown = f"{row.value_text} {row.interval_text} · {row.verdict or 'not gated'}"
    return TrendPoint(
        run.started_at,
        row.value if row else None,
        row.low if row else None,
        row.high if row else None,
        row.verdict if row and row.gated else None,
        f"{fmt_time(run.started_at)} · {run.version} at {run.level} ({run.trigger}): {shown}",
        run.version,
        links.run(run.agent, run.run_id, 1),
    )


def _run_rows(agent: AgentReport, links: Links) -> list[RunRow]:
    return [
        RunRow(
            started=fmt_time(run.started_at),
            run=_run_part(links, agent.agent, run.run_id, 1),
            trigger=run.trigger
            + (" (vs baseline)" if run.baseline_run_id else "")
            + (" · production" if run.source == "production" else ""),
            version=run.version,
            level=run.level or "",
            verdict=_badge(run.verdict),
            failing=", ".join(m.metric for m in run.failing),
        )
        for run in list(reversed(agent.runs))[:RECENT]
    ]


def _decision_rows(decisions: Sequence[Decision], agent: str, links: Links) -> list[DecisionRow]:
    rows = []
    for d in list(reversed(decisions))[:RECENT]:
        href = links.run(agent, d.run_id, 1)
        rows.append(
            DecisionRow(
                at=fmt_time(d.at),
                kind=KIND_WORDS.get(d.kind, d.kind),
                version=f"{d.version_before or '?'} → {d.version_after or '?'}",
                level=f"{d.level_before or '?'} → {d.level_after or '?'}",
                why=d.reason,
                by=d.approved_by or d.actor,
                run=_link("run", href) if href else None,
            )
        )
    return rows


_TONE = {
    "target_met": "pass", "on_track": "pass", "within_budget": "pass", "measured": "muted",
    "behind": "warn", "worse_than_baseline": "fail", "over_budget": "fail",
    "not_measured": "muted",
}  # fmt: skip


def _scorecard(card: Scorecard | None) -> ScorecardView | None:
    """The scorecard's rows and one weekly chart per measured metric."""
    if card is None:
        return None
    rows, charts = [], []
    for m in card.measurements:
        if m.metric == "production_error_rate":
            change = f"budget ≤ {fmt_unit(m.target, '')}"
        elif m.baseline is None or m.target is None:
            change = "—"
        else:
            change = f"{fmt_unit(m.baseline, '')} → {fmt_unit(m.target, '')}"
        measured = m.value.value is not None
        rows.append(
            ScorecardRow(
                block=m.block,
                name=m.name,
                unit="" if m.unit == "share" else m.unit,
                change=change,
                value=fmt_unit(m.value.value, ""),
                interval=fmt_interval("", m.value.low, m.value.high),
                n=f"{m.value.n:,}" if measured else "—",
                status=m.status.replace("_", " "),
                tone=_TONE.get(m.status, "muted"),
                red_flags=", ".join(m.red_flags),
                note=m.value.note,
            )
        )
        points = [
            TrendPoint(
                at=datetime.combine(p.week, time(), tzinfo=UTC),
                value=p.value, low=None, high=None, verdict=None,
                title=f"week of {p.week.isoformat()}: {fmt_unit(p.value, m.unit)} (n={p.n:,})",
            )
            for p in m.weekly
            if p.value is not None
        ]  # fmt: skip
        lines = [
            ThresholdLine(label, bound, kind)
            for label, bound, kind in (
                ("target", m.target, "next"),
                ("baseline", m.baseline, "current"),
            )
            if bound is not None
        ]
        chart = (
            trend_chart(m.metric, points, lines, [], [], f"{m.name}, weekly") if points else None
        )
        if chart is not None:
            charts.append(chart)
    return ScorecardView(
        window=card.window,
        headline=card.headline() if card.measured else "not measured",
        rows=rows,
        red_flags=[f"{f.name}: {f.message}" for f in card.red_flags],
        notes=list(card.notes),
        charts=charts,
    )


def _production(agent: AgentReport, links: Links) -> ProductionSection | None:
    production = agent.latest_production
    if production is None:
        return None
    golden = agent.latest
    account = production.production or {}
    gaps = {g["metric"]: g for g in (account.get("drift") or {}).get("metrics", [])}
    rows = []
    for name, m in production.metrics.items():
        if name == "golden_coverage":
            continue
        g = golden.metrics.get(name) if golden is not None else None
        gap = gaps.get(name)
        rows.append(
            ProductionRow(
                metric=name,
                golden=fmt_value(name, g.value) if g is not None else "—",
                golden_interval=fmt_interval(name, g.low, g.high) if g is not None else "",
                production=fmt_value(name, m.value),
                production_interval=fmt_interval(name, m.low, m.high),
                gap=(
                    f"{fmt_delta(name, gap['difference'])} "
                    f"{fmt_interval(name, gap['low'], gap['high'], signed=True)}"
                    if gap is not None
                    else ""
                ),
                worse=bool(gap and gap["worse"]),
                verdict=_badge(m.verdict if m.gated else None),
            )
        )
    coverage = production.metrics.get("golden_coverage")
    clusters = ((account.get("coverage") or {}).get("uncovered_clusters")) or []
    return ProductionSection(
        run=_run_part(links, agent.agent, production.run_id, 1),
        evidence=evidence_line(production),
        rows=rows,
        coverage=(
            f"{fmt_value('golden_coverage', coverage.value)} "
            f"{fmt_interval('golden_coverage', coverage.low, coverage.high)} of {coverage.n:,} "
            "production inputs"
            if coverage is not None and coverage.measured
            else ""
        ),
        clusters=[
            ClusterRow(
                size=f"{c['size']:,}",
                share=f"{c['share']:.1%}",
                nearest=f"{c['nearest_golden']:.2f}",
                example=c["examples"][0] if c["examples"] else "",
                trace=c["trace_ids"][0] if c["trace_ids"] else "",
            )
            for c in clusters[:5]
        ],
    )


def agent_page(agent: AgentReport, links: Links) -> AgentPage:
    """The one-page Agent Impact Contract with trends, runs and the audit trail."""
    level, nxt = agent.level, agent.next_level
    headers = ["gated metric", "latest", "interval", "n"]
    headers += [f"now: {level}", "verdict"] if level else ["", ""]
    headers += [f"next: {nxt}", "verdict"] if nxt else ["", ""]
    headers += ["why"]
    closed = [i for i in agent.incidents if i.status != "open"][:5]
    return AgentPage(
        agent=agent.agent,
        title=f"{agent.agent} · impactgate",
        description=agent.contract.description if agent.contract else "",
        problems=list(agent.problems),
        answer=readiness(agent),
        ladder=_ladder(agent),
        facts=_autonomy_facts(agent, links),
        gate_headers=headers,
        gates=_gate_rows(agent),
        open_incidents=[_incident(i, agent, links) for i in agent.open_incidents],
        closed_incidents=[_incident(i, agent, links) for i in closed],
        paths=_paths(agent),
        outcomes=_outcomes(agent.contract),
        scorecard=_scorecard(agent.scorecard),
        charts=_charts(agent, links),
        runs=_run_rows(agent, links),
        runs_total=len(agent.runs),
        decisions=_decision_rows(agent.decisions, agent.agent, links),
        decisions_total=len(agent.decisions),
        production=_production(agent, links),
    )


# --- the drill-down --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunGateRow:
    """A metric of the run: its number and the gate it met (if gated)."""

    metric: str
    value: str
    interval: str
    n: str
    threshold: str
    verdict: Part
    why: str


@dataclass(frozen=True)
class Option:
    """A choice of a filter."""

    value: str
    label: str


@dataclass(frozen=True)
class Filters:
    """The scorer and tag filters over the run's cases."""

    metrics: list[Option]
    tags: list[Option]
    total: int


@dataclass(frozen=True)
class OutputPart:
    """A stretch of an output; ``rule`` set when it is a masked policy violation."""

    text: str
    rule: str | None = None


@dataclass(frozen=True)
class ClaimRow:
    """One claim the grounding judge checked."""

    text: str
    verdict: Part
    support: str
    passage: str
    reasons: list[str]


@dataclass(frozen=True)
class ViolationRow:
    """One policy rule an output violated (its span masked)."""

    rule: str
    severity: str
    masked: str
    at: str
    message: str


@dataclass(frozen=True)
class FailureView:
    """Why a case fails one scorer, with the evidence."""

    metric: str
    value: str
    why: str
    judge: str | None
    claims: list[ClaimRow]
    violations: list[ViolationRow]
    evidence_json: str | None
    """Evidence of another shape, as JSON text (masked)."""
    same_as: str | None
    """The scorer above whose evidence is the same (grounding scorers share the claims)."""


@dataclass(frozen=True)
class TraceRow:
    """A span of a production case's trace, indented by its depth (masked as stored)."""

    depth: int
    name: str
    agent: str
    operation: str
    duration: str
    status: Part
    detail: str
    """The tool's arguments, else the span's input, shortened."""


@dataclass(frozen=True)
class CaseView:
    """A failing case: the golden row, the output, and each failing scorer."""

    case_id: str
    metrics: list[str]
    """Scorers the case fails."""
    tags: list[str]
    input: str | None
    """From today's dataset file; ``None`` when the case is not there."""
    missing: str
    """Why there is no input, when there is none."""
    output: list[OutputPart] | None
    contexts: list[str]
    reference: str | None
    failures: list[FailureView]
    trace: list[TraceRow] = field(default_factory=list)
    """For a production case: its trace's spans, who did what, when, with what input."""

    @property
    def anchor(self) -> str:
        """The element id."""
        return f"case-{self.case_id}"

    @property
    def metrics_json(self) -> str:
        """``data-metrics``: what the filter script reads."""
        return json.dumps(self.metrics)

    @property
    def tags_json(self) -> str:
        """``data-tags``: what the filter script reads."""
        return json.dumps(self.tags)


@dataclass(frozen=True)
class ComparisonRow:
    """One scorer compared, case by case, between candidate and baseline."""

    metric: str
    better: str
    paired: str
    baseline_mean: str
    candidate_mean: str
    delta: str
    worse: int
    improved: int
    unpaired: str


@dataclass(frozen=True)
class WorseRow:
    """A case that got worse on one scorer, with both outputs (masked)."""

    case_id: str
    input: str | None
    metric: str
    scorer: str
    """The scorer behind the metric: what the scorer filter matches."""
    baseline_value: str
    candidate_value: str
    newly_failing: bool
    baseline_output: str
    candidate_output: str
    candidate_why: str
    tags: list[str]

    @property
    def metrics_json(self) -> str:
        """``data-metrics``: the scorer filter shows the row with its scorer's cases."""
        return json.dumps([self.scorer])

    @property
    def tags_json(self) -> str:
        """``data-tags``."""
        return json.dumps(self.tags)


@dataclass(frozen=True)
class ComparisonSection:
    """Candidate vs baseline, paired by case id (``compare_runs``)."""

    baseline: Part
    baseline_about: str
    """The baseline's version and start time."""
    rows: list[ComparisonRow]
    worse_total: int
    worse: list[WorseRow]
    """Newly failing first, then judged scorers, then the largest moves of measured ones."""
    measured_shown: int = MEASURED_SHOWN


@dataclass(frozen=True)
class RunPage:
    """``runs/<agent>/<run_id>.html``: a run's gates, failing cases and (CI) comparison."""

    template: ClassVar[str] = "run.html.j2"
    depth: ClassVar[int] = 2
    script: ClassVar[bool] = True

    agent: str
    agent_href: str
    run_id: str
    title: str
    facts: list[Fact]
    notes: list[str]
    gates: list[RunGateRow]
    comparison: ComparisonSection | None
    filters: Filters | None
    """``None`` when there is nothing to filter."""
    cases: list[CaseView]

    def case(self, case_id: str) -> CaseView | None:
        """One failing case by id."""
        return next((c for c in self.cases if c.case_id == case_id), None)


Masks = Mapping[str, Sequence[tuple[str, str]]]
"""Case id → ``(raw, masked)`` spans of that case's policy violations in one run."""


def _output(
    output: str | None, sample: SampleRecord | None, pairs: Sequence[tuple[str, str]]
) -> list[OutputPart] | None:
    """The output with each policy violation's span replaced by its masked form, marked."""
    if output is None:
        return None
    parts = []
    cursor = 0
    for start, end, shown, rule in violation_spans(output, sample.evidence if sample else None):
        if start < cursor:
            continue  # overlapping spans: the first one already hides this text
        parts.append(OutputPart(masked(output[cursor:start], pairs)))
        parts.append(OutputPart(shown, rule=f"{rule}: masked"))
        cursor = end
    parts.append(OutputPart(masked(output[cursor:], pairs)))
    return [p for p in parts if p.text or p.rule]


def _claims(evidence: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> list[ClaimRow]:
    rows = []
    for claim in evidence.get("claims") or []:
        if not isinstance(claim, dict):
            continue
        supported = claim.get("supported")
        verdict = str(claim.get("verdict") or ("supported" if supported else "unsupported"))
        probability = claim.get("probability")
        rows.append(
            ClaimRow(
                text=masked(str(claim.get("text") or ""), pairs),
                verdict=_badge("pass" if supported else "fail", verdict),
                support=f"{probability:.2f}" if isinstance(probability, int | float) else "",
                passage=masked(str(claim.get("evidence") or ""), pairs),
                reasons=[masked_words(str(r), pairs) for r in claim.get("reasons") or []],
            )
        )
    return rows


def _violations(evidence: dict[str, Any]) -> list[ViolationRow]:
    return [
        ViolationRow(
            rule=str(v.get("rule") or ""),
            severity=str(v.get("severity") or ""),
            masked=str(v.get("masked") or "***"),
            at=f"{v.get('start')}–{v.get('end')}",
            message=str(v.get("message") or ""),
        )
        for v in evidence.get("violations") or []
        if isinstance(v, dict)
    ]


def _failure(
    sample: SampleRecord, why: str, pairs: Sequence[tuple[str, str]], same_as: str | None
) -> FailureView:
    evidence = sample.evidence
    claims: list[ClaimRow] = []
    violations: list[ViolationRow] = []
    judge = None
    if isinstance(evidence, dict) and same_as is None:
        claims, violations = _claims(evidence, pairs), _violations(evidence)
        judge = str(evidence["judge"]) if evidence.get("judge") else None
    raw_json = None
    if evidence and same_as is None and not claims and not violations:
        raw_json = masked(json.dumps(evidence, indent=1, ensure_ascii=False), pairs)
    return FailureView(
        metric=sample.metric,
        value=fmt_value(sample.metric, sample.value),
        why=masked(why, pairs),
        judge=judge,
        claims=claims,
        violations=violations,
        evidence_json=raw_json,
        same_as=same_as,
    )


def _case(failure: CaseFailure, case: Case | None, case_note: str | None) -> CaseView:
    pairs = mask_spans(failure.samples)
    failures = []
    shown: dict[str, str] = {}
    for item in failure.failures:
        sample = item.sample
        # Faithfulness and hallucination rest on the same claims: show them once.
        key = json.dumps(sample.evidence, sort_keys=True, default=str) if sample.evidence else ""
        failures.append(_failure(sample, item.why, pairs, shown.get(key) if key else None))
        if key:
            shown.setdefault(key, sample.metric)
    return CaseView(
        case_id=failure.case_id,
        metrics=failure.metrics,
        tags=list(failure.tags),
        input=masked(case.input, pairs) if case is not None else None,
        missing=case_note or "this case is not in the dataset any more",
        output=_output(failure.output, failure.samples.get("policy_violation"), pairs),
        contexts=[masked(c, pairs) for c in case.contexts] if case is not None else [],
        reference=case.reference if case is not None else None,
        failures=failures,
        trace=_trace_rows(case.metadata.get("trace") if case is not None else None),
    )


def _trace_rows(spans: Any) -> list[TraceRow]:
    if not isinstance(spans, list):
        return []
    rows = []
    for span in spans:
        detail = span.get("tool_arguments") or span.get("input") or ""
        rows.append(
            TraceRow(
                depth=int(span.get("depth") or 0),
                name=span.get("name") or "",
                agent=span.get("agent") or "",
                operation=span.get("operation") or "",
                duration=f"{span['duration_s']:.2f} s" if span.get("duration_s") else "",
                status=_badge(
                    "fail" if span.get("status") == "error" else "pass",
                    span.get("status") or "unset",
                ),
                detail=detail if len(detail) <= 160 else detail[:157] + "…",
            )
        )
    return rows


def _worst_first(comparisons: Sequence[MetricComparison]) -> list[CaseChange]:
    """The worse cases in the order a reviewer needs them.

    Newly failing cases first, then judged scorers that dropped, then the largest moves of
    scorers that only measure (at most ``MEASURED_SHOWN`` each).
    """
    worse = [w for c in comparisons for w in c.worse]
    failing = [w for w in worse if w.newly_failing]
    judged = [w for w in worse if not w.newly_failing and w.candidate.passed is not None]
    measured = [
        w
        for c in comparisons
        for w in [x for x in c.worse if not x.newly_failing and x.candidate.passed is None][
            :MEASURED_SHOWN
        ]
    ]
    return failing + judged + measured


def comparison_section(
    comparisons: Sequence[MetricComparison],
    baseline: RunRecord,
    links: Links,
    cases: Mapping[str, Case],
    masks: tuple[Masks, Masks],
) -> ComparisonSection:
    """Candidate vs baseline for a CI run's page; ``masks`` are the baseline's and the run's."""
    rows = [
        ComparisonRow(
            metric=c.metric,
            better=c.better or "?",
            paired=str(c.n_paired),
            baseline_mean=fmt_value(c.metric, c.baseline_mean),
            candidate_mean=fmt_value(c.metric, c.candidate_mean),
            delta=fmt_delta(c.metric, c.mean_delta),
            worse=len(c.worse),
            improved=c.n_better,
            unpaired=(
                f"{c.only_baseline} only in baseline, {c.only_candidate} only in candidate"
                if c.only_baseline or c.only_candidate
                else ""
            ),
        )
        for c in comparisons
    ]
    worse = []
    for change in _worst_first(comparisons):
        before = masks[0].get(change.case_id, ())
        after = masks[1].get(change.case_id, ())
        case = cases.get(change.case_id)
        worse.append(
            WorseRow(
                case_id=change.case_id,
                input=masked(case.input, [*before, *after]) if case is not None else None,
                metric=change.metric,
                scorer=change.candidate.metric,
                baseline_value=fmt_value(change.metric, change.baseline.value),
                candidate_value=fmt_value(change.metric, change.candidate.value),
                newly_failing=change.newly_failing,
                baseline_output=masked(change.baseline.output, before),
                candidate_output=masked(change.candidate.output, after),
                candidate_why=masked(change.candidate.explanation, after),
                tags=list(change.candidate.tags),
            )
        )
    return ComparisonSection(
        baseline=_run_part(links, baseline.agent, baseline.run_id, 2),
        baseline_about=f"{baseline.version}, {fmt_time(baseline.started_at)}",
        rows=rows,
        worse_total=sum(len(c.worse) for c in comparisons),
        worse=worse,
    )


def _filters(failures: Sequence[CaseFailure]) -> Filters:
    metric_counts: dict[str, int] = {}
    tag_counts: dict[str, int] = {}
    for failure in failures:
        for metric in failure.metrics:
            metric_counts[metric] = metric_counts.get(metric, 0) + 1
        for tag in failure.tags:
            tag_counts[tag] = tag_counts.get(tag, 0) + 1
    return Filters(
        metrics=[Option(m, f"{m} ({n})") for m, n in sorted(metric_counts.items())],
        tags=[Option(t, f"{t} ({n})") for t, n in sorted(tag_counts.items())],
        total=len(failures),
    )


def run_page(
    agent: AgentReport,
    run: RunRecord,
    failures: Sequence[CaseFailure],
    cases: Mapping[str, Case],
    case_note: str | None,
    comparison: ComparisonSection | None,
    baseline_note: str | None,
) -> RunPage:
    """A run: its gates, the candidate-vs-baseline view for CI runs, and its failing cases."""
    facts = _facts(
        [
            ("verdict", [_badge(run.verdict), Part(f" at {run.level}")]),
            ("version", f"{run.version} ({(run.version_hash or '')[:12]})"),
            ("trigger", run.trigger),
            ("started", fmt_time(run.started_at)),
            ("finished", fmt_time(run.finished_at)),
            ("cases", str(run.n_cases)),
            ("dataset", f"{run.dataset} (sha256 {(run.dataset_hash or '?')[:12]})"),
            ("code", run.code_version),
        ]
    )
    notes = [n for n in (case_note, baseline_note) if n]
    missing = sum(1 for f in failures if f.case_id not in cases)
    if missing and not case_note:
        notes.append(
            f"{missing} failing case(s) are not in today's dataset: their inputs and contexts "
            "are not shown"
        )
    gates = [
        RunGateRow(
            metric=m.metric,
            value=m.value_text,
            interval=m.interval_text,
            n=_count(m.n, m.n_errors),
            threshold=m.threshold_text,
            verdict=_badge(m.verdict if m.gated else None),
            why=m.reason or m.note or "",
        )
        for m in sorted(run.metrics.values(), key=lambda m: not m.gated)
    ]
    return RunPage(
        agent=agent.agent,
        agent_href=Links.agent(agent.agent, 2),
        run_id=run.run_id,
        title=f"{agent.agent} {run.run_id} · impactgate",
        facts=facts,
        notes=notes,
        gates=gates,
        comparison=comparison,
        filters=_filters(failures) if failures or comparison else None,
        cases=[_case(f, cases.get(f.case_id), case_note) for f in failures],
    )
