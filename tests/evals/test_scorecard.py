"""The scorecard on constructed telemetry with known answers: values, intervals, statuses,
the sandbox, freshness, gates, red flags and promotion, on real DuckDB over real files."""

from __future__ import annotations

import copy
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evals.actions import workflow_gates
from evals.contract import load_contract
from evals.errors import UserError
from evals.gates import Verdict
from evals.metrics import quantile_interval, wilson_interval
from evals.runs import RunSession
from evals.scorecard import measure, refresh
from evals.store import Incident, ledger_for
from evals.store import ledger_rules as rules
from tests.helpers import CONTRACT, make_project
from tests.scorecard_data import Item, days_ago, write_telemetry

pytestmark = pytest.mark.long  # several seconds: sent out early (tests/conftest.py)

AS_OF = datetime(2026, 12, 3, tzinfo=UTC)
CSAT = (
    "SELECT closed_at AS day, CAST(outcomes->>'csat' AS DOUBLE) AS value FROM work_items "
    "WHERE closed_at IS NOT NULL"
)
COST = (
    "SELECT opened_at AS day, CAST(outcomes->>'cost' AS DOUBLE) AS value FROM work_items"
)  # fmt: skip


def _contract(tmp: Path, **telemetry: Any) -> dict[str, Any]:
    data = copy.deepcopy(CONTRACT)
    # No grounding suites: runs here need no embedding model.
    data["evals"]["suites"] = ["policy", "cost", "latency"]
    data["autonomy"]["levels"]["constrained"] = {"gates": {"latency_p50_s": {"max": 5}}}
    data["telemetry"] = {"sources": ["telemetry/*"], **telemetry}
    data["outcome"]["customer"]["query"] = CSAT
    data["outcome"]["business"][0]["query"] = COST
    return data


def _project(tmp: Path, items: list[Item], data: dict[str, Any] | None = None) -> Path:
    path = make_project(tmp, data or _contract(tmp))
    write_telemetry(tmp / "telemetry", "tiny-agent", items)
    return path


def _items(as_of: datetime, count: int = 200, **overrides: Any) -> list[Item]:
    """``count`` items over the last 27 days: every other one handled by the agent."""
    items = []
    for i in range(count):
        handled = i % 2 == 0
        fields: dict[str, Any] = {
            "hours": float(i % 10 + 1),
            "handled": handled,
            "resolved_by": "agent" if handled else "human",
            "escalated": handled and i % 4 == 0,
            "reopened": handled and i % 10 == 0,
            "error": handled and i % 20 == 0,
            "outcomes": {"csat": 4.0 + (i % 3) / 2, "cost": 2.0 if handled else 5.0},
        }
        fields.update(overrides)
        items.append(Item(f"T{i:04d}", days_ago(as_of, i % 27), **fields))
    return items


def test_workflow_and_adoption_are_measured_with_the_known_answers(tmp_path: Path) -> None:
    items = _items(AS_OF)
    contract = load_contract(_project(tmp_path, items))
    refresh(contract, tmp_path / "results")
    card = measure(contract, tmp_path / "results", as_of=AS_OF.date())
    metrics = card.metrics()

    handled = [i for i in items if i.handled]
    # adoption: half the items carry a span of the agent
    adoption = metrics["adoption_rate"]
    assert (adoption.value, adoption.n) == (0.5, 200)
    assert (adoption.low, adoption.high) == pytest.approx(wilson_interval(100, 200, 0.95))
    # escalation: of the handled items; rework: of the agent's resolutions; automation: of all
    esc = sum(i.escalated for i in handled)
    assert metrics["escalation_rate"].value == esc / len(handled)
    assert metrics["escalation_rate"].n == len(handled)
    assert (metrics["escalation_rate"].low, metrics["escalation_rate"].high) == pytest.approx(
        wilson_interval(esc, len(handled), 0.95)
    )
    assert metrics["rework_rate"].value == sum(i.reopened for i in handled) / len(handled)
    assert metrics["automation_rate"].value == (len(handled) - esc) / 200
    # production errors: of the agent's traces
    assert metrics["production_error_rate"].value == sum(i.error for i in handled) / len(handled)
    # cycle time: order statistics of the hours
    hours = np.array([i.hours for i in items], dtype=float)
    p50 = metrics["cycle_time_p50_h"]
    assert p50.value == pytest.approx(float(np.quantile(hours, 0.5)))
    assert (p50.low, p50.high) == quantile_interval(hours, 0.5, 0.95)
    assert metrics["cycle_time_p90_h"].value == pytest.approx(float(np.quantile(hours, 0.9)))
    # weekly series add up to the window
    rows = {m.key: m for m in card.measurements}
    assert sum(p.n for p in rows["adoption_rate"].weekly) == 200
    assert card.window == "2026-11-06..2026-12-03"


def test_outcomes_average_their_query_a_share_when_every_value_is_zero_or_one(
    tmp_path: Path,
) -> None:
    items = _items(AS_OF, count=120)
    for i, item in enumerate(items):
        item.outcomes["converted"] = 1 if i % 3 == 0 else 0
    data = _contract(tmp_path)
    data["outcome"]["business"][0].update(
        name="Converted", baseline=0.1, target=0.4, unit="share",
        query="SELECT opened_at AS day, CAST(outcomes->>'converted' AS INTEGER) AS value "
        "FROM work_items",
    )  # fmt: skip
    contract = load_contract(_project(tmp_path, items, data))
    refresh(contract, tmp_path / "results")
    card = measure(contract, tmp_path / "results", as_of=AS_OF.date())

    business = card.get("outcome.business.0")
    assert business is not None
    assert (business.value.value, business.value.n, business.value.method) == (
        40 / 120,
        120,
        "wilson",
    )
    customer = card.get("outcome.customer")
    assert customer is not None
    csat = [i.outcomes["csat"] for i in items]
    assert customer.value.value == pytest.approx(float(np.mean(csat)))
    assert customer.value.method == "bootstrap"
    assert customer.value.low is not None
    assert customer.value.low < customer.value.value
    assert sum(p.n for p in customer.weekly) == 120
    # progress is the outcome on its path: 0 at baseline, 1 at target
    progress = card.metrics()["business_outcome_progress"]
    assert progress.value == pytest.approx((40 / 120 - 0.1) / 0.3)


def test_status_follows_the_linear_path_from_baseline_to_target(tmp_path: Path) -> None:
    # Live since 45 days ago; the window (Nov 6 to Dec 3) has its middle on day 32 of 90.
    items = _items(AS_OF, count=200)
    data = _contract(tmp_path, start=(AS_OF.date() - timedelta(days=45)).isoformat())
    data["outcome"]["customer"].update(baseline=4.9, target=5.0)  # the CSAT of ~4.5 is worse
    data["outcome"]["business"][0].update(baseline=5.0, target=1.0)  # cost ~3.5: behind
    contract = load_contract(_project(tmp_path, items, data))
    refresh(contract, tmp_path / "results")
    card = measure(contract, tmp_path / "results", as_of=AS_OF.date())
    customer, business = card.get("outcome.customer"), card.get("outcome.business.0")
    assert customer is not None
    assert business is not None
    assert customer.status == "worse_than_baseline"
    expected = 5.0 + (1.0 - 5.0) * (32 / 90)
    assert business.expected == pytest.approx(expected)
    assert business.value.value == pytest.approx(3.5)
    assert business.status == "on_track"  # 3.5 is below (better than) the path's 3.58
    escalation = card.get("escalation_rate")
    assert escalation is not None
    assert escalation.status == "target_met"
    # the customer is worse while the workflow improved: a red flag
    assert [f.name for f in card.red_flags] == ["workflow_better_customer_worse"]
    assert "workflow_better_customer_worse" in customer.red_flags


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
        ("COPY (SELECT 1 AS day, 1 AS value) TO '/tmp/stolen.csv'", "must be one SELECT"),
        ("INSTALL httpfs", "must be one SELECT"),
        ("ATTACH '/tmp/other.duckdb'", "must be one SELECT"),
        ("SELECT 1 AS day, 1 AS value; COPY work_items TO '/tmp/x.csv'", "must be one SELECT"),
        (
            "SELECT current_date AS day, count(*) AS value FROM read_parquet('/etc/hostname')",
            "file system operations are disabled",
        ),
        ("SELECT opened_at AS day FROM work_items", "must return 'value'"),
        ("SELECT day, value FROM no_such_table", "no_such_table"),
    ],
)
def test_the_sandbox_refuses_what_a_query_may_not_do_naming_file_and_field(
    tmp_path: Path, query: str, said: str
) -> None:
    data = _contract(tmp_path)
    data["outcome"]["customer"]["query"] = query
    contract = load_contract(_project(tmp_path, _items(AS_OF, count=10), data))
    refresh(contract, tmp_path / "results")
    with pytest.raises(UserError) as caught:
        measure(contract, tmp_path / "results", as_of=AS_OF.date())
    [problem] = caught.value.problems
    assert problem.field == "outcome.customer.query"
    assert "tiny-agent.yaml" in problem.file
    assert said in problem.message
    assert not Path("/tmp/stolen.csv").exists()


def test_a_slow_or_large_query_is_stopped(tmp_path: Path) -> None:
    data = _contract(tmp_path, max_rows=5)
    contract = load_contract(_project(tmp_path, _items(AS_OF, count=10), data))
    refresh(contract, tmp_path / "results")
    with pytest.raises(UserError, match=r"more than 5 rows \(telemetry.max_rows\)"):
        measure(contract, tmp_path / "results", as_of=AS_OF.date())
    data = _contract(tmp_path, timeout_s=0.2)
    data["outcome"]["customer"]["query"] = (
        "SELECT current_date AS day, count(*) AS value FROM range(100000000) a, range(1000) b"
    )
    contract = load_contract(make_project(tmp_path, data))
    with pytest.raises(UserError, match=r"longer than 0.2 s"):
        measure(contract, tmp_path / "results", as_of=AS_OF.date())


def test_stale_or_missing_telemetry_is_not_measured(tmp_path: Path) -> None:
    contract = load_contract(_project(tmp_path, _items(AS_OF, count=20)))
    refresh(contract, tmp_path / "results")
    later = AS_OF.date() + timedelta(days=10)
    card = measure(contract, tmp_path / "results", as_of=later)
    assert {m.status for m in card.measurements} == {"not_measured"}
    assert "days old" in card.notes[0]
    assert all(v.value is None for v in card.metrics().values())
    empty = measure(contract, tmp_path / "elsewhere", as_of=AS_OF.date())
    assert empty.notes == ("no telemetry for this agent in the store",)


def _gated(tmp: Path, items: list[Item], gates: dict[str, Any]) -> Path:
    data = _contract(tmp)
    data["autonomy"]["levels"]["constrained"]["gates"] |= gates
    return _project(tmp, items, data)


def test_gates_on_telemetry_metrics_fail_when_telemetry_is_missing(tmp_path: Path) -> None:
    path = _gated(tmp_path, [], {"escalation_rate": {"max": 0.6}})
    (tmp_path / "telemetry" / "t.jsonl").unlink()
    (tmp_path / "telemetry" / "t-items.csv").write_text("id,agent,opened_at\n")
    with RunSession.open(path, str(tmp_path / "results")) as session:
        outcome = session.run(act=False)
    gate = next(g for g in outcome.result.gates if g.metric == "escalation_rate")
    assert gate.verdict == Verdict.FAIL
    assert "no telemetry" in gate.reason


def test_gates_on_telemetry_metrics_use_the_measured_values(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    path = _gated(
        tmp_path,
        _items(now),
        {"escalation_rate": {"max": 0.3}, "adoption_rate": {"min": 0.3}},
    )
    with RunSession.open(path, str(tmp_path / "results")) as session:
        outcome = session.run(act=False)
    by = {g.metric: g for g in outcome.result.gates}
    assert by["escalation_rate"].verdict == Verdict.FAIL  # 0.5 measured
    assert by["adoption_rate"].verdict == Verdict.PASS  # 0.5 [0.43, 0.57]
    assert outcome.result.record.metrics["escalation_rate"].value == 0.5
    assert outcome.summary()["scorecard"]["agent"] == "tiny-agent"


def test_a_gate_on_a_telemetry_metric_needs_the_telemetry_block(tmp_path: Path) -> None:
    data = copy.deepcopy(CONTRACT)
    data["autonomy"]["levels"]["constrained"]["gates"]["escalation_rate"] = {"max": 0.3}
    data["autonomy"]["levels"]["constrained"]["gates"]["customer_outcome_progress"] = {"min": 0}
    with pytest.raises(UserError) as caught:
        load_contract(make_project(tmp_path, data))
    text = str(caught.value)
    assert "escalation_rate" in text
    assert "add a 'telemetry' block" in text


def test_red_flags_are_raised_once_across_two_runs_and_close_when_they_clear(
    tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    # The agent handles half the tickets; CSAT and cost stay at their baselines.
    items = _items(now, outcomes={"csat": 4.0, "cost": 5.0})
    path = _project(tmp_path, items)
    results = str(tmp_path / "results")
    for _ in range(2):
        with RunSession.open(path, results, trigger="nightly") as session:
            outcome = session.run()
    assert outcome.scorecard is not None
    assert [f.name for f in outcome.scorecard.red_flags] == ["adoption_without_outcome"]
    ledger = ledger_for(results)
    [flag] = ledger.incidents("tiny-agent", kind="red_flag")
    assert (flag.status, flag.severity, flag.runs, flag.metrics) == (
        "open", "medium", 2, ["adoption_without_outcome"]
    )  # fmt: skip
    assert any(
        n.startswith("red flag adoption_without_outcome: medium incident #")
        and n.endswith("still open (2 runs)")
        for n in outcome.notes
    )
    assert (
        ledger.open_incident("tiny-agent") is None
        or ledger.open_incident("tiny-agent").kind == "breach"
    )
    # The outcome moves: the flag clears and its incident closes.
    moved = _items(now, outcomes={"csat": 4.6, "cost": 2.0})
    write_telemetry(tmp_path / "telemetry", "tiny-agent", moved, name="t2")
    with RunSession.open(path, results, trigger="nightly") as session:
        outcome = session.run()
    assert outcome.scorecard is not None
    assert outcome.scorecard.red_flags == ()
    [flag] = ledger.incidents("tiny-agent", kind="red_flag")
    assert flag.status == "closed"


def test_red_flag_rules_update_the_open_incident_instead_of_opening_another() -> None:
    now = datetime(2026, 12, 3, tzinfo=UTC)
    [first], closed = rules.merge_red_flags(
        [], "a", ["adoption_without_outcome"], "approval", "r1", now
    )
    assert first.opened
    assert closed == []
    stored = Incident(**{**first.incident.__dict__, "id": 7})
    [again], closed = rules.merge_red_flags(
        [stored], "a", ["adoption_without_outcome"], "approval", "r2", now
    )
    assert (again.opened, again.incident.id, again.incident.runs) == (False, 7, 2)
    updates, [gone] = rules.merge_red_flags([stored], "a", [], "approval", "r3", now)
    assert updates == []
    assert gone.status == "closed"
    # a breach's closing rule leaves red flags alone
    assert rules.closing([stored], "expanded", "r4", now) == []


def test_a_promotion_is_judged_on_the_measured_workflow(tmp_path: Path) -> None:
    items = _items(AS_OF)
    contract = load_contract(_project(tmp_path, items))
    refresh(contract, tmp_path / "results")
    card = measure(contract, tmp_path / "results", as_of=AS_OF.date())
    gates = {g.metric: g for g in workflow_gates(contract, card.metrics())}
    # baselines: cycle 10 h (p50 5.5 h), automation 0 (0.375), escalation 1 (0.5), rework 0.1
    assert gates["workflow.cycle_time"].verdict == Verdict.PASS
    assert gates["workflow.automation_rate"].verdict == Verdict.PASS
    assert gates["workflow.escalation_rate"].verdict == Verdict.PASS
    # rework 0.2 of the agent's resolutions is worse than the 0.1 baseline
    assert gates["workflow.rework_rate"].verdict == Verdict.FAIL
    assert "production telemetry" in gates["workflow.cycle_time"].reason


def test_a_python_source_is_called_with_its_folder_and_today(tmp_path: Path) -> None:
    (tmp_path / "fake_source.py").write_text(
        "from tests.scorecard_data import Item, write_telemetry\n"
        "from datetime import datetime, UTC, timedelta\n"
        "def generate(agent, folder, *, end, days=3):\n"
        "    start = datetime(end.year, end.month, end.day, 9, tzinfo=UTC)\n"
        "    items = [Item(f'P{i}', start - timedelta(days=i % days)) for i in range(9)]\n"
        "    return write_telemetry(folder, agent, items, name=f'gen-{end}')\n",
        encoding="utf-8",
    )
    data = _contract(tmp_path)
    data["telemetry"]["sources"] = [
        {"kind": "python", "function": "fake_source:generate", "params": {"agent": "tiny-agent"}}
    ]
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    contract = load_contract(make_project(tmp_path, data))
    today = date(2026, 12, 3)
    first = refresh(contract, tmp_path / "results", today=today)
    again = refresh(contract, tmp_path / "results", today=today)
    assert first is not None
    assert again is not None
    assert {f.status for f in first.files} == {"ingested"}
    assert {f.status for f in again.files} == {"already ingested"}
    assert (tmp_path / "results" / "cache" / "telemetry" / "tiny-agent").is_dir()
    card = measure(contract, tmp_path / "results", as_of=today)
    assert card.metrics()["adoption_rate"].n == 9


def test_the_report_shows_the_scorecard_with_weekly_trends_escaped(tmp_path: Path) -> None:
    import lxml.html

    from evals.report import build_report

    now = datetime.now(UTC)
    data = _contract(tmp_path)
    data["outcome"]["customer"]["name"] = "CSAT <script>alert(1)</script>"
    path = _project(tmp_path, _items(now, outcomes={"csat": 4.0, "cost": 5.0}), data)
    results = tmp_path / "results"
    with RunSession.open(path, str(results), trigger="nightly") as session:
        session.run()
    build_report(results, tmp_path / "site", policies=path.parent)
    page = (tmp_path / "site" / "agents" / "tiny-agent.html").read_text(encoding="utf-8")
    root = lxml.html.document_fromstring(page)
    assert "<script>alert(1)</script>" not in page
    heading = root.xpath("string(//h2[@id='scorecard'])")
    assert heading.startswith("Measured in production (")
    cells = [
        [td.text_content().strip() for td in tr.iterfind("td")]
        for tr in root.xpath("//h2[@id='scorecard']/following-sibling::table[1]//tbody/tr")
    ]
    by_name = {c[1]: c for c in cells}
    assert by_name["Escalation rate"][4:8] == ["0.500", "[0.404, 0.596]", "100", "target met"]
    assert "red flag: adoption_without_outcome" in by_name["share of tickets"][7]
    flags = root.xpath("//h2[@id='scorecard']/following-sibling::div[@class='verdict warn']")
    assert flags[0].text_content().startswith("Red flag · adoption_without_outcome: adoption")
    charts = root.xpath(
        "//h2[@id='scorecard']/following-sibling::figure[following-sibling::h2[@id='trends']]"
        "/svg[@class='trend']"
    )
    assert len(charts) == 9  # every measurement has its weekly trend


def test_a_ci_gate_never_calls_the_contracts_telemetry_sources(tmp_path: Path) -> None:
    """A pull request's contract may name any function as a source: CI reads the store only."""
    (tmp_path / "marking_source.py").write_text(
        "from pathlib import Path\n"
        "def generate(folder, *, end):\n"
        "    (Path(folder) / 'called').write_text(str(end))\n"
        "    return []\n",
        encoding="utf-8",
    )
    data = _contract(tmp_path)
    data["telemetry"]["sources"] = [{"kind": "python", "function": "marking_source:generate"}]
    path = make_project(tmp_path, data)
    results = tmp_path / "results"
    marker = results / "cache" / "telemetry" / "tiny-agent" / "called"
    with RunSession.open(path, str(results), trigger="ci", sync_ledger=False, journal=False) as ci:
        assert not marker.exists(), "the source ran in a CI gate"
        assert any("sources not ingested" in note for note in ci.notes)
    with RunSession.open(path, str(results), trigger="nightly", journal=False):
        assert marker.exists(), "a nightly ingests the sources"
