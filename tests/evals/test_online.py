"""Online evals: production traces as cases, the sample, trajectories, production runs."""

from __future__ import annotations

import copy
import shutil
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from evals.contract import ProductionConfig, load_contract
from evals.errors import UserError
from evals.online import (
    build_cases,
    draw_sample,
    plan_production,
    trace_summaries,
)
from evals.policy import PolicyEngine, Subject, load_rule_pack
from evals.runs import RunSession
from evals.store import ResultsStore
from evals.telemetry import TelemetryMasker, ingest
from tests.helpers import CONTRACT, make_project
from tests.online_traces import DAY, UNTIL, Trip, write_traces

pytestmark = pytest.mark.long  # several seconds: sent out early (tests/conftest.py)

ROOT = Path(__file__).resolve().parents[2]
AGENT = "tiny-agent"


def _ingest(tmp: Path, trips: list[Trip], name: str = "traces.jsonl", **kw: Any) -> Path:
    results = tmp / "results"
    path = write_traces(tmp / name, AGENT, trips, **kw)
    report = ingest(
        [path],
        results,
        masking=TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"]),
    )
    assert report.files[0].status == "ingested"
    return results


def _mixed() -> list[Trip]:
    trips = [
        Trip(
            f"When is refund {i} paid?",
            tools=["lookup_order"] if i % 3 == 0 else [],
            route="refunds" if i % 2 else "billing",
            tokens=(300 + i, 30),
        )
        for i in range(12)
    ]
    trips += [
        Trip("Why was I charged twice?", error=True),
        Trip("I want a person", escalated=True),
        Trip("What is your phone number?", passages=[]),
        Trip("Anything?", with_output=False),
    ]
    return trips


# --- traces as cases ----------------------------------------------------------------------


def test_a_trace_becomes_a_case_with_passages_output_tools_latency_tokens_and_cost(
    tmp_path: Path,
) -> None:
    deep = Trip(
        "Refund my order A-1",
        answer="Your refund is on its way within 5 business days.",
        passages=["Refunds take 5 business days.", "Orders ship in 2 days."],
        tools=["lookup_order"],
        delegate="refund-agent",
        delegate_tools=["issue_refund"],
        tokens=(812, 24),
        latency_s=2.5,
    )
    results = _ingest(tmp_path, [deep])
    store = ResultsStore(results)
    traces, notes = trace_summaries(store, AGENT, DAY, UNTIL)
    assert notes == []
    [summary] = traces
    assert summary.latency_s == pytest.approx(2.5)
    assert (summary.input_tokens, summary.output_tokens) == (812, 24)
    # gpt-4o-mini at litellm's bundled price: $0.15 / $0.60 per million tokens
    assert summary.cost_usd == pytest.approx(812 * 0.15e-6 + 24 * 0.6e-6)
    assert summary.route == "via refund-agent"
    assert summary.tool_path == "issue_refund+lookup_order"
    [built] = build_cases(store, traces)
    assert built.skipped is None
    assert not built.no_passages
    case, output = built.case, built.output
    assert case is not None
    assert output is not None
    assert case.id == summary.trace_id
    assert case.input == "Refund my order A-1"
    assert case.contexts == ["Refunds take 5 business days.", "Orders ship in 2 days."]
    assert output.text == "Your refund is on its way within 5 business days."
    assert output.latency_s == pytest.approx(2.5)
    assert output.model == "gpt-4o-mini"
    assert output.usage is not None
    assert output.usage.prompt_tokens == 812
    calls = output.tool_calls
    assert calls is not None
    assert [(c["name"], c["depth"], c["agent"]) for c in calls] == [
        ("lookup_order", 0, AGENT),
        ("issue_refund", 1, "refund-agent"),
    ]
    assert all(len(c["span_id"]) == 16 for c in calls)
    assert calls[0]["arguments"] == {"order": "A-1"}


def test_traces_without_output_are_skipped_and_without_passages_are_marked(
    tmp_path: Path,
) -> None:
    results = _ingest(tmp_path, _mixed())
    store = ResultsStore(results)
    traces, _ = trace_summaries(store, AGENT, DAY, UNTIL)
    assert len(traces) == 16
    built = {b.summary.trace_id: b for b in build_cases(store, traces)}
    by_input = {(b.case.input if b.case else None): b for b in built.values() if b.case is not None}
    skipped = [b for b in built.values() if b.skipped]
    assert [b.skipped for b in skipped] == ["no output text in the trace"]
    assert by_input["What is your phone number?"].no_passages
    error = by_input["Why was I charged twice?"]
    assert error.output is not None
    assert error.output.text is None
    assert error.output.error == "the trace ended in an error: TimeoutError"
    assert by_input["I want a person"].summary.outcome == "escalated"


def test_traces_outside_the_window_or_of_other_agents_are_not_read(tmp_path: Path) -> None:
    results = _ingest(tmp_path, _mixed()[:4])
    other = write_traces(tmp_path / "other.jsonl", "other-agent", [Trip("Hi?")])
    late = write_traces(
        tmp_path / "late.jsonl", AGENT, [Trip("Tomorrow?")], start=UNTIL + timedelta(hours=2)
    )
    ingest(
        [other, late],
        results,
        masking=TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"]),
    )
    traces, _ = trace_summaries(ResultsStore(results), AGENT, DAY, UNTIL)
    assert len(traces) == 4


# --- the sample -----------------------------------------------------------------------------


def test_the_sample_is_seeded_stratified_and_keeps_every_error_and_escalation(
    tmp_path: Path,
) -> None:
    results = _ingest(tmp_path, _mixed())
    traces, _ = trace_summaries(ResultsStore(results), AGENT, DAY, UNTIL)
    strata = ["route", "tool_path", "outcome"]
    sample = draw_sample(traces, 6, strata, "0:night-1")
    again = draw_sample(list(reversed(traces)), 6, strata, "0:night-1")
    other = draw_sample(traces, 6, strata, "0:night-2")
    assert [t.trace_id for t in sample.traces] == [t.trace_id for t in again.traces]
    assert {t.trace_id for t in sample.proportional} != {t.trace_id for t in other.proportional}
    assert len(sample.proportional) == 6
    assert all(t.error is None for t in sample.proportional)
    outcomes = sorted(t.outcome for t in sample.forced)
    drawn = {t.trace_id for t in sample.proportional}
    assert "error" in outcomes
    assert any(t.escalated for t in [*sample.forced, *sample.proportional])
    assert all(t.trace_id not in drawn for t in sample.forced)
    # proportional: billing/no tools has 4 of 15 answerable traces -> 6 * 4/15 = 1.6 -> 2
    assert sample.strata[("billing", "no tools", "ok")] == (4, 2)
    assert sum(d for _, d in sample.strata.values()) == 6
    everything = draw_sample(traces, 1000, strata, "0")
    assert len(everything.proportional) == 15
    assert len(everything.forced) == 1


# --- trajectories from traces -------------------------------------------------------------


def test_a_tool_depth_violation_deep_in_a_multi_agent_trace_names_the_agent_and_span(
    tmp_path: Path,
) -> None:
    """invoke_agent -> invoke_agent -> invoke_agent -> execute_tool, made with the OTel SDK."""
    trip = Trip(
        "Close my account and refund the balance",
        tools=["lookup_account"],
        delegate="closure-agent",
        delegate_tools=["close_account"],
        nested="ledger-agent",
        nested_tools=["ledger_write"],
    )
    results = _ingest(tmp_path, [trip])
    store = ResultsStore(results)
    traces, _ = trace_summaries(store, AGENT, DAY, UNTIL)
    [built] = build_cases(store, traces)
    assert built.case is not None
    assert built.output is not None
    deepest = next(c for c in built.output.tool_calls or () if c["name"] == "ledger_write")
    with store.connect() as db:
        [(span_agent, operation)] = db.execute(
            "SELECT agent, operation FROM spans WHERE span_id = ?", [deepest["span_id"]]
        ).fetchall()
    assert (span_agent, operation) == ("ledger-agent", "execute_tool")
    engine = PolicyEngine(
        [load_rule_pack(ROOT / "policies" / "rules" / "trajectory.yaml")],
        disable=["tool.arguments"],
        tools=["lookup_account", "close_account", "ledger_write"],
        max_tool_depth=1,
    )
    [violations] = engine.check_many([Subject.of(built.case, built.output)])
    [violation] = violations
    assert violation.rule == "tool.limits"
    assert (violation.agent, violation.span_id) == ("ledger-agent", deepest["span_id"])
    assert "'ledger_write' at depth 2, deeper than 1" in violation.message or (
        "depth 2" in violation.describe()
    )
    assert "by agent 'ledger-agent'" in violation.describe()
    assert deepest["span_id"] in violation.describe()


# --- the contract block ---------------------------------------------------------------------


def test_the_production_block_is_validated() -> None:
    config = ProductionConfig(n=50, window="12h", max_cost_usd=2.0, required_from="expanded")
    assert config.monitoring.alpha == 0.05
    with pytest.raises(ValueError, match="window"):
        ProductionConfig(window="1mo")
    with pytest.raises(ValueError, match="listed twice"):
        ProductionConfig(strata=["route", "route"])
    with pytest.raises(ValueError, match="greater than or equal to 1"):
        ProductionConfig(n=0)


# --- production runs ------------------------------------------------------------------------


def _production_project(tmp: Path, leak_every: int = 2, **production: Any) -> Path:
    contract = copy.deepcopy(CONTRACT)
    contract["evals"]["suites"] = ["policy", "cost", "latency"]
    contract["evals"]["policy"] = {
        "rule_packs": ["policies/rules/default.yaml", "policies/rules/trajectory.yaml"],
        "tools": ["lookup_order"],
        "max_tool_depth": 0,
        "disable": ["tool.arguments"],
    }
    contract["evals"]["production"] = {"n": 8, "window": "1d", "coverage": False, **production}
    contract["autonomy"]["levels"] = {
        "approval": {"gates": {"policy_violation_rate": {"max": 0.4}}},
    }
    contract["autonomy"]["level"] = "approval"
    contract["autonomy"]["rollback"]["metrics"] = []
    path = make_project(tmp, contract, leak_every=leak_every)
    shutil.copy(
        ROOT / "policies" / "rules" / "trajectory.yaml",
        tmp / "policies" / "rules" / "trajectory.yaml",
    )
    return path


def test_a_production_run_is_stored_with_its_source_and_judges_nothing_twice(
    tmp_path: Path,
) -> None:
    contract = _production_project(tmp_path, n=20)  # every answerable trace, whatever the ids
    trips = _mixed()
    trips[1] = Trip(
        "Refund via the ledger", delegate="ledger-agent", delegate_tools=["x"], escalated=True
    )
    results = str(_ingest(tmp_path, trips))
    with RunSession.open_production(contract, results, until=UNTIL) as session:
        assert session.header.source == "production"
        outcome = session.run(act=False)
    record = outcome.result.record
    assert record.source == "production"
    assert record.production is not None
    assert record.production["traces"] == 16
    assert record.production["skipped"] == {"no output text in the trace": 1}
    # error rate from every trace of the window: 1 error among 16 traces
    assert record.metrics["error_rate"].value == pytest.approx(1 / 16)
    assert record.metrics["latency_p50_s"].n == 15
    stored = ResultsStore(results).runs(AGENT)
    assert [r.source for r in stored] == ["production"]
    assert stored[0].production == record.production
    samples = ResultsStore(results).samples(stored[0])
    assert {s.case_id for s in samples} == {c.case.id for c in outcome.result.cases}
    assert any("forced" in s.tags for s in samples)
    # the escalated trace is always judged; its sub-agent's tool call breaks two rules
    [flagged] = [s for s in samples if s.metric == "policy_violation" and s.value == 1.0]
    found = flagged.evidence["violations"]
    assert {(v["rule"], v["agent"]) for v in found} == {
        ("tool.allowlist", "ledger-agent"),
        ("tool.limits", "ledger-agent"),
    }
    assert "outcome:escalated" in flagged.tags
    from evals.report import run_summary_markdown, site_pages

    # The run page's failing case is the trace: input, passages, and the span tree.
    page = site_pages(results, policies=contract.parent).run(record.run_id)
    [case] = [c for c in page.cases if c.input == "Refund via the ledger"]
    assert "policy_violation" in case.metrics
    tool = next(row for row in case.trace if row.name == "execute_tool x")
    assert (tool.agent, tool.depth) == ("ledger-agent", 2)
    assert case.trace[0].depth == 0
    assert case.trace[0].agent == AGENT

    summary = run_summary_markdown(results, record.run_id, contract=load_contract(contract))
    assert "**Evidence:** production traces 2026-11-30T00:00 → 2026-12-01T00:00 UTC: 15 judged" in (
        summary.replace("\\", "")
    )
    with RunSession.open_production(contract, results, until=UNTIL) as session:
        again = session.run(act=False)
        assert session.reused == len(outcome.result.cases)
    assert again.result.record.production is not None
    assert again.result.record.production["reused"] == len(outcome.result.cases)
    assert [c.scores["policy_violation"].value for c in again.result.cases] == [
        c.scores["policy_violation"].value for c in outcome.result.cases
    ]


def test_a_judging_budget_draws_a_smaller_sample_and_builds_it_again(tmp_path: Path) -> None:
    """An LLM judge priced over the budget: the plan samples again, on the same views."""
    path = _production_project(tmp_path, n=12, max_cost_usd=0.05)
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["evals"]["suites"] = ["grounding", "policy", "cost", "latency"]
    data["evals"]["grounding"] = {"judge": "llm", "model": "priced-judge"}
    data["evals"]["cost"]["prices"] = {
        "priced-judge": {"input_per_mtok": 100.0, "output_per_mtok": 400.0}
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    results = str(_ingest(tmp_path, _mixed()))
    contract = load_contract(path)
    plan = plan_production(contract, results, until=UNTIL)
    assert contract.evals.production is not None
    production = contract.evals.production.model_copy(update={"max_cost_usd": None})
    evals = contract.evals.model_copy(update={"production": production})
    full = plan_production(contract.model_copy(update={"evals": evals}), results, until=UNTIL)
    assert not any("judging budget" in note for note in full.notes)
    assert any("judging budget ($0.05)" in note for note in plan.notes)
    assert 0 < len(plan.cases) < len(full.cases)
    assert {c.id for c in plan.cases} < {c.id for c in full.cases}
    assert all(c.input for c in plan.cases)  # the smaller sample's cases are built again


def test_a_production_run_without_traces_or_without_a_block_says_what_to_do(
    tmp_path: Path,
) -> None:
    contract = _production_project(tmp_path)
    results = str(tmp_path / "results")
    with pytest.raises(UserError, match="no production trace of 'tiny-agent'"):
        plan_production(load_contract(contract), results, until=UNTIL)
    data = yaml.safe_load(contract.read_text(encoding="utf-8"))
    del data["evals"]["production"]
    contract.write_text(yaml.safe_dump(data), encoding="utf-8")
    with pytest.raises(UserError, match="no production block"):
        plan_production(load_contract(contract), results, until=UNTIL)


# --- monitoring -----------------------------------------------------------------------------


def _nights(tmp: Path, leaky: list[int], per_night: int = 10) -> Path:
    """``per_night`` traces on each of several days; ``leaky[d]`` of day d promise a refund."""
    results = tmp / "results"
    masking = TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"])
    for day, bad in enumerate(leaky):
        trips = [
            Trip(
                f"Night {day} question {i}?",
                answer=(
                    "We guarantee a refund tomorrow."
                    if i < bad
                    else "Refunds go back to the original payment method within 5 business days."
                ),
            )
            for i in range(per_night)
        ]
        path = write_traces(
            tmp / f"night-{day}.jsonl", AGENT, trips, start=DAY + timedelta(days=day)
        )
        ingest([path], results, masking=masking)
    return results


def _verdicts(contract: Path, results: Path, nights: int) -> list[tuple[str, str]]:
    seen = []
    for day in range(nights):
        with RunSession.open_production(
            contract, str(results), until=UNTIL + timedelta(days=day)
        ) as session:
            outcome = session.run(act=False)
        metric = outcome.result.record.metrics["policy_violation_rate"]
        assert metric.verdict is not None
        seen.append((metric.verdict, metric.reason or ""))
    return seen


def _leaking_nights(tmp: Path) -> tuple[Path, Path]:
    """A contract gating policy violations at 10%, and four days leaking on half the traces."""
    contract = _production_project(
        tmp, n=10, monitoring={"alpha": 0.05, "horizon": 30, "breach": 0.1}
    )
    data = yaml.safe_load(contract.read_text(encoding="utf-8"))
    data["autonomy"]["levels"]["approval"]["gates"]["policy_violation_rate"] = {"max": 0.1}
    contract.write_text(yaml.safe_dump(data), encoding="utf-8")
    return contract, _nights(tmp, [5, 5, 5, 5])


def test_a_nightly_production_gate_fails_only_on_evidence_accumulated_over_nights(
    tmp_path: Path,
) -> None:
    contract, results = _leaking_nights(tmp_path)
    verdicts = _verdicts(contract, results, 4)
    # One night at 50% violations is below the bound on its interval, but not yet evidence of
    # a breach over the period: inconclusive, not an escalation.
    assert verdicts[0][0] == "inconclusive"
    assert "no evident breach after 1 night" in verdicts[0][1]
    assert verdicts[-1][0] == "fail"
    assert "a breach is evident across nights" in verdicts[-1][1]
    first_fail = [v for v, _ in verdicts].index("fail")
    assert 1 <= first_fail <= 3
    stored = ResultsStore(results).runs(AGENT)
    assert stored[-1].production is not None
    assert stored[-1].production["monitoring"]["policy_violation_rate"]["alarm"] is True
    assert stored[-1].production["monitoring"]["policy_violation_rate"]["nights"] == 4


def test_judging_the_same_night_again_adds_no_evidence(tmp_path: Path) -> None:
    contract, results = _leaking_nights(tmp_path)
    # The nightly, then three reruns of the same window and one later that day: one night.
    for until in [UNTIL] * 4 + [UNTIL + timedelta(hours=5)]:
        with RunSession.open_production(contract, str(results), until=until) as session:
            metric = session.run(act=False).result.record.metrics["policy_violation_rate"]
        assert metric.verdict == "inconclusive", metric.reason
        assert "after 1 night(s)" in (metric.reason or "")
    # A window ending earlier that day, judged after the later ones, is not a later night.
    with RunSession.open_production(
        contract, str(results), until=UNTIL + timedelta(hours=2)
    ) as session:
        metric = session.run(act=False).result.record.metrics["policy_violation_rate"]
    assert "after 1 night(s)" in (metric.reason or "")
    # The next days are new nights, and the evidence adds up as before.
    verdicts = _verdicts(contract, results, 4)
    assert "after 2 night(s)" in verdicts[1][1] or verdicts[1][0] == "fail"
    assert verdicts[-1][0] == "fail"
    stored = ResultsStore(results).runs(AGENT)[-1]
    assert stored.production is not None
    assert stored.production["monitoring"]["policy_violation_rate"]["nights"] == 4


def test_a_clean_agent_passes_its_monitored_gate_every_night(tmp_path: Path) -> None:
    contract = _production_project(tmp_path, n=10)
    results = _nights(tmp_path, [0, 0, 0])
    assert [v for v, _ in _verdicts(contract, results, 3)] == ["pass", "pass", "pass"]


def test_readiness_for_a_level_needing_production_evidence_waits_for_a_production_run(
    tmp_path: Path,
) -> None:
    from evals.readiness import AgentState, readiness

    contract_path = _production_project(tmp_path, leak_every=0, required_from="constrained")
    data = yaml.safe_load(contract_path.read_text(encoding="utf-8"))
    data["autonomy"]["levels"]["constrained"] = {"gates": {"policy_violation_rate": {"max": 0.4}}}
    contract_path.write_text(yaml.safe_dump(data), encoding="utf-8")
    results = _ingest(tmp_path, [Trip(f"Question {i}?") for i in range(20)])
    contract = load_contract(contract_path)
    with RunSession.open(contract, str(results), use_cache=False) as session:
        golden = session.run(act=False).result.record
    state = AgentState(AGENT, contract, None, [golden])
    answer = readiness(state)
    assert answer.headline.startswith("Not yet")
    assert "constrained needs production evidence as well as golden: no production run" in (
        answer.reasons
    )
    with RunSession.open_production(contract, str(results), until=UNTIL) as session:
        production = session.run(act=False).result.record
    assert production.production is not None
    assert production.production["drift"]["golden_run_id"] == golden.run_id
    [gap] = production.production["drift"]["metrics"]
    assert gap["metric"] == "policy_violation_rate"
    assert gap["low"] < gap["difference"] < gap["high"]
    state = AgentState(AGENT, contract, None, [golden, production])
    assert state.latest is golden
    assert state.latest_production is production
    assert readiness(state).headline.startswith("Yes")

    # The report's agent page: golden and production side by side, the gap, the evidence.
    from datetime import UTC, datetime

    from evals.report import render, site_pages

    site = site_pages(results, policies=contract_path.parent)
    page = site.agent(AGENT)
    assert page.production is not None
    [row] = [r for r in page.production.rows if r.metric == "policy_violation_rate"]
    assert (row.golden, row.production) == ("0.000", "0.000")
    assert row.gap.startswith("+0.000 [")
    assert page.production.evidence.startswith("production traces 2026-11-30T00:00")
    assert page.production.run.href is not None  # the production run has its own page
    html = render(page, datetime.now(UTC))
    assert "Golden and production" in html
    assert "production − golden" in html


# --- golden coverage ------------------------------------------------------------------------


class WordsEmbedder:
    """Bag-of-words unit vectors: enough to tell topics apart without loading a model."""

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> Any:
        import numpy as np

        rows = []
        for text in texts:
            words = [w.strip("?.,!").lower() for w in text.split()]
            for word in words:
                self.vocabulary.setdefault(word, len(self.vocabulary))
            rows.append(words)
        out = np.zeros((len(texts), 512), dtype=np.float32)
        for i, words in enumerate(rows):
            for word in words:
                out[i, self.vocabulary[word] % 512] += 1.0
            out[i] /= float(np.linalg.norm(out[i])) or 1.0
        return out


def test_golden_coverage_finds_the_class_of_questions_the_golden_set_misses() -> None:
    from evals.dataset import Case
    from evals.online import golden_coverage, suggest_cases

    golden = [Case(id=f"g{i}", input=f"when is my refund {i} paid") for i in range(5)]
    production = [(f"t{i}", f"when is my refund {i % 5} paid") for i in range(70)]
    production += [(f"a{i}", f"change the delivery address of order {i % 3}") for i in range(30)]
    coverage = golden_coverage(production, golden, threshold=0.8, embedder=WordsEmbedder())
    assert coverage.metric.value == pytest.approx(0.7)
    assert coverage.metric.n == 100
    assert coverage.metric.low is not None
    assert coverage.metric.low < 0.7
    [cluster] = coverage.clusters
    assert cluster.size == 30
    assert cluster.share == pytest.approx(0.3)
    assert all("delivery address" in e for e in cluster.examples)
    assert all(t.startswith("a") for t in cluster.trace_ids)
    [row] = suggest_cases(coverage)
    assert row["input"] == cluster.examples[0]
    assert row["metadata"]["trace_ids"] == cluster.trace_ids
    assert row["metadata"]["cluster_size"] == 30
    assert "reference" not in row
    empty = golden_coverage([], golden, threshold=0.8, embedder=WordsEmbedder())
    assert empty.metric.value is None
    assert empty.clusters == []


def test_a_gate_on_golden_coverage_needs_production_runs(tmp_path: Path) -> None:
    contract = copy.deepcopy(CONTRACT)
    contract["autonomy"]["levels"]["constrained"]["gates"]["golden_coverage"] = {"min": 0.8}
    path = make_project(tmp_path, contract)
    with pytest.raises(UserError, match="is measured by production runs"):
        load_contract(path)


def _metric(name: str, value: float, low: float, high: float, n: int) -> Any:
    from evals.store import MetricRecord

    return MetricRecord(name, value, low, high, n, 0, "wilson", 0.95, None)


def test_drift_shows_a_gap_between_golden_and_production_with_its_interval() -> None:
    from datetime import UTC, datetime

    from evals.online import drift
    from evals.store import RunRecord

    golden = RunRecord(
        run_id="g",
        agent=AGENT,
        version="v1",
        version_hash="h",
        dataset="d",
        dataset_hash="h",
        trigger="nightly",
        level="approval",
        started_at=datetime(2026, 11, 30, tzinfo=UTC),
        finished_at=None,
        code_version=None,
        n_cases=200,
        metrics={
            "faithfulness": _metric("faithfulness", 0.95, 0.92, 0.97, 200),
            "hallucination_rate": _metric("hallucination_rate", 0.05, 0.02, 0.10, 200),
            "latency_p50_s": _metric("latency_p50_s", 1.0, 0.9, 1.1, 200),
        },
    )
    production = {
        "faithfulness": _metric("faithfulness", 0.78, 0.72, 0.83, 200),
        "hallucination_rate": _metric("hallucination_rate", 0.07, 0.03, 0.15, 200),
        "latency_p50_s": _metric("latency_p50_s", 3.0, 2.9, 3.1, 9000),
    }
    faithfulness, hallucination = drift(golden, production)
    assert faithfulness.metric == "faithfulness"
    assert faithfulness.difference == pytest.approx(-0.17)
    # MOVER: -0.17 - hypot(0.78 - 0.72, 0.97 - 0.95), -0.17 + hypot(0.83 - 0.78, 0.95 - 0.92)
    assert faithfulness.low == pytest.approx(-0.17 - (0.06**2 + 0.02**2) ** 0.5)
    assert faithfulness.high == pytest.approx(-0.17 + (0.05**2 + 0.03**2) ** 0.5)
    assert faithfulness.worse
    assert hallucination.low is not None
    assert hallucination.low < 0 < hallucination.high  # type: ignore[operator]
    assert not hallucination.worse


def _drift_project(tmp: Path) -> Path:
    """A clean golden set gated on how far production's violation rate may rise above it."""
    contract = _production_project(
        tmp, leak_every=0, n=10, monitoring={"alpha": 0.05, "horizon": 30, "breach": 0.1}
    )
    data = yaml.safe_load(contract.read_text(encoding="utf-8"))
    data["autonomy"]["levels"]["approval"]["gates"] = {
        "policy_violation_rate": {"max": 0.6},
        "policy_violation_rate_drift": {"max": 0.1},
    }
    contract.write_text(yaml.safe_dump(data), encoding="utf-8")
    return contract


def _drift_verdicts(contract: Path, results: Path, nights: int) -> list[tuple[str, str]]:
    with RunSession.open(contract, str(results), use_cache=False) as session:
        golden = session.run(act=False).result.record
    assert golden.verdict == "pass", "a golden run leaves drift gates to the production run"
    assert "policy_violation_rate_drift" not in golden.metrics
    seen = []
    for day in range(nights):
        with RunSession.open_production(
            contract, str(results), until=UNTIL + timedelta(days=day)
        ) as session:
            record = session.run(act=False).result.record
        gap = record.metrics["policy_violation_rate_drift"]
        assert gap.verdict is not None
        assert gap.reason is not None
        seen.append((gap.verdict, gap.reason))
    return seen


def test_a_drift_gate_fails_when_production_falls_behind_golden_over_nights(
    tmp_path: Path,
) -> None:
    contract = _drift_project(tmp_path)
    verdicts = _drift_verdicts(contract, _nights(tmp_path, [5, 5, 5, 5]), 4)
    # Night one: production is 0.5 worse than golden, beyond the 0.1 allowed, but one night of
    # ten traces is not yet evidence of a breach: inconclusive, not an escalation.
    assert verdicts[0][0] == "inconclusive"
    assert verdicts[0][1].startswith("production policy_violation_rate 0.500 vs golden 0.000: ")
    assert "no evident breach after 1 night" in verdicts[0][1]
    assert verdicts[-1][0] == "fail"
    assert "a breach is evident across nights" in verdicts[-1][1]
    stored = ResultsStore(tmp_path / "results").runs(AGENT)[-1]
    assert stored.verdict == "fail"
    assert stored.production is not None
    assert stored.production["monitoring"]["policy_violation_rate_drift"]["alarm"] is True
    gap = stored.metrics["policy_violation_rate_drift"]
    assert gap.value == pytest.approx(0.5)
    assert gap.low is not None
    assert gap.high is not None
    assert gap.low < 0.5 < gap.high


def test_a_drift_gate_on_an_unchanged_agent_never_escalates(tmp_path: Path) -> None:
    contract = _drift_project(tmp_path)
    verdicts = _drift_verdicts(contract, _nights(tmp_path, [0, 0, 0, 0]), 4)
    # Ten traces a night cannot show the gap is within 0.1, but nothing says it is not.
    assert [v for v, _ in verdicts] == ["inconclusive"] * 4
    assert "straddles ≤ 0.1" in verdicts[0][1]


def test_a_drift_gate_without_a_golden_run_is_not_measured(tmp_path: Path) -> None:
    contract = _drift_project(tmp_path)
    results = _nights(tmp_path, [0])
    with RunSession.open_production(contract, str(results), until=UNTIL) as session:
        record = session.run(act=False).result.record
    gap = record.metrics["policy_violation_rate_drift"]
    assert gap.verdict == "fail"
    assert gap.reason == (
        "not measured: no golden run of this version to compare production with "
        "(the nightly runs the golden set first)"
    )


def test_a_drift_gate_needs_a_production_block_and_its_suite(tmp_path: Path) -> None:
    contract = copy.deepcopy(CONTRACT)
    contract["autonomy"]["levels"]["constrained"]["gates"]["faithfulness_drift"] = {"max": 0.05}
    contract["evals"]["suites"] = ["policy", "cost", "latency"]
    with pytest.raises(UserError) as raised:
        load_contract(make_project(tmp_path, contract))
    message = str(raised.value)
    assert "'faithfulness_drift' is measured by production runs; add 'evals.production'" in (
        message
    )
    assert "needs the 'grounding' suite" in message


def test_status_holds_a_production_gate_as_the_run_did(tmp_path: Path) -> None:
    from evals.readiness import AgentState

    contract_path = _drift_project(tmp_path)
    results = _nights(tmp_path, [5])
    contract = load_contract(contract_path)
    with RunSession.open(contract, str(results), use_cache=False) as session:
        golden = session.run(act=False).result.record
    with RunSession.open_production(contract, str(results), until=UNTIL) as session:
        production = session.run(act=False).result.record
    gap = production.metrics["policy_violation_rate_drift"]
    assert gap.verdict == "inconclusive", "one night is not yet evidence of a breach"
    state = AgentState(AGENT, contract, None, [golden, production])
    held = {g.metric: g for g in state.gates_at("approval", production)}
    # Held again by its interval alone, the gap would fail on its point estimate; status and
    # the report must say what the run said.
    assert held["policy_violation_rate_drift"].verdict == "inconclusive"
    assert held["policy_violation_rate_drift"].reason == gap.reason
