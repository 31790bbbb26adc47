"""One answer per fact: every surface reads a fact from its one owner and prints it one way.

Open incidents come from the ledger, so the report, the run summary and ``impactgate status``
list the same ones; a metric's number is formatted by ``evals.metrics``, so the report, the run
summary, the CI Markdown and JUnit and the ``impactgate run`` table print it the same way.
"""

from __future__ import annotations

import copy
import io
import json
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from rich.console import Console

from evals.actions import choose_action, perform
from evals.ci import gate_agent, junit_xml, markdown
from evals.contract import Contract, load_contract
from evals.gates import evaluate_gates, overall_verdict
from evals.metrics import MetricValue
from evals.readiness import incident_line
from evals.report import run_summary_markdown, site_pages
from evals.runs import RunOutcome, RunResult
from evals.store import Ledger, MetricRecord, ResultsStore, RunRecord, ledger_for
from flows.cli.main import cli
from flows.cli.run import _table
from tests.helpers import CONTRACT, make_project

START = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)


def _contract(tmp: Path) -> Contract:
    data = copy.deepcopy(CONTRACT)
    data["autonomy"]["levels"]["constrained"]["gates"] |= {
        "hallucination_rate": {"max": 0.3},
        "cost_per_case_usd": {"max": 0.001},
    }
    return load_contract(make_project(tmp, data))


def _value(name: str, value: float, low: float, high: float) -> MetricValue:
    return MetricValue(name, value, low, high, 40, 0, "wilson", 0.95)


HEALTHY = {
    "faithfulness": _value("faithfulness", 0.95, 0.9, 0.99),
    "hallucination_rate": _value("hallucination_rate", 0.05, 0.01, 0.12),
    "policy_violation_rate": _value("policy_violation_rate", 0.0, 0.0, 0.09),
    "error_rate": _value("error_rate", 0.0, 0.0, 0.0),
    "cost_per_case_usd": MetricValue(
        "cost_per_case_usd", 0.00011423, 0.00011, 0.00012, 40, 0, "bootstrap", 0.95
    ),
}


def _night(
    contract: Contract, results: Path, night: int, measured: dict[str, MetricValue]
) -> RunRecord:
    """Commit a nightly run with these numbers, and act on it as a run session does."""
    autonomy = contract.autonomy
    gates = evaluate_gates(
        contract.gates("constrained"), measured, autonomy.min_samples,
        frozenset(autonomy.rollback.metrics),
    )  # fmt: skip
    by_gate = {g.metric: g for g in gates}
    started = START + timedelta(days=night)
    record = RunRecord(
        run_id=f"{started:%Y%m%dT%H%M%SZ}-0000000{night}", agent=contract.agent, version="v2",
        version_hash="h2", dataset=contract.evals.dataset, dataset_hash="d", trigger="nightly",
        level="constrained", started_at=started, finished_at=started + timedelta(seconds=40),
        code_version="test", n_cases=40, verdict=str(overall_verdict(gates)),
        metrics={n: MetricRecord.of(n, measured.get(n), by_gate.get(n)) for n in measured},
    )  # fmt: skip
    store = ResultsStore(str(results))
    store.write_run(record, [])
    ledger = ledger_for(results)
    action = choose_action(
        contract, gates, ledger.incidents(contract.agent, open_only=True),
        run_id=record.run_id, version=record.version, level=record.level,
    )  # fmt: skip
    decision = perform(contract, ledger, action, "nightly run")
    if decision is not None:
        store.write_decisions([decision])
    return record


def _status(results: Path, policies: Path) -> dict[str, object]:
    done = CliRunner().invoke(
        cli, ["status", "--results", str(results), "--policies", str(policies), "--json"],
        catch_exceptions=False,
    )  # fmt: skip
    assert done.exit_code == 0, done.output
    (agent,) = json.loads(done.stdout)["agents"]
    return agent  # type: ignore[no-any-return]


def _markdown_list(text: str, heading: str) -> list[str]:
    """The ``- `` items under a bold heading, Markdown escapes removed."""
    lines = text.splitlines()
    start = lines.index(heading) + 1
    items = []
    for line in lines[start:]:
        if not line.startswith("- "):
            break
        items.append(line[2:].replace("\\", ""))
    return items


def test_two_escalations_are_one_open_incident_on_every_surface(tmp_path: Path) -> None:
    contract = _contract(tmp_path)
    results = tmp_path / "results"
    policies = tmp_path / "policies"
    ledger_for(results).sync(contract.agent, "v2", "constrained", "v1", "test")
    unfaithful = HEALTHY | {"faithfulness": _value("faithfulness", 0.3, 0.26, 0.34)}
    first = _night(contract, results, 0, unfaithful)
    hallucinating = unfaithful | {
        "hallucination_rate": _value("hallucination_rate", 0.6, 0.45, 0.73)
    }
    latest = _night(contract, results, 1, hallucinating)
    (incident,) = Ledger(results / "ledger.sqlite").incidents(contract.agent, open_only=True)
    assert incident.metrics == ["faithfulness", "hallucination_rate"]
    assert (incident.runs, incident.last_run_id) == (2, latest.run_id)
    assert first.run_id != latest.run_id

    # The report's agent page.
    page = site_pages(results, policies=policies).agent(contract.agent)
    (shown,) = page.open_incidents
    assert shown.id == incident.id
    assert {f.label: f.text for f in shown.facts}["metrics"] == "faithfulness, hallucination_rate"
    assert len(shown.trail) == 2  # both escalations behind it
    # The run summary Markdown of the latest run.
    summary = run_summary_markdown(results, latest.run_id, contract=contract)
    assert _markdown_list(summary, "**Open incidents (1):**") == [incident_line(incident)]
    # impactgate status --json.
    status = _status(results, policies)
    listed = status["open_incidents"]
    assert isinstance(listed, list)
    assert [(i["id"], i["summary"]) for i in listed] == [(incident.id, incident_line(incident))]
    # And the same answer to "can it be trusted with more?" everywhere.
    assert status["readiness"] == page.answer.to_dict()
    headline = page.answer.headline
    assert f"**Can it be trusted with more?** {headline}" in summary.replace("\\", "")


def _cli_rows(record: RunRecord, measured: dict[str, MetricValue]) -> dict[str, list[str]]:
    """The ``impactgate run`` table as text, one row per metric (cells split on ``│``)."""
    gates = [g for m in record.metrics.values() if (g := m.gate()) is not None]
    outcome = RunOutcome(RunResult(record, [], measured, gates), None, [], record.level)
    console = Console(file=io.StringIO(), width=240, color_system=None)
    console.print(_table([outcome.summary()]))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    rows = {}
    for line in text.splitlines():
        cells = line.split()
        for name in record.metrics:
            if name in cells:
                rows[name] = cells[cells.index(name) + 1 :]
    return rows


@pytest.mark.parametrize("metric", ["cost_per_case_usd", "faithfulness"])
def test_a_metric_prints_the_same_on_every_surface(tmp_path: Path, metric: str) -> None:
    contract = _contract(tmp_path)
    results = tmp_path / "results"
    ledger_for(results).sync(contract.agent, "v2", "constrained", "v1", "test")
    record = _night(contract, results, 0, HEALTHY)
    expected = {"cost_per_case_usd": "$0.000114", "faithfulness": "0.950"}[metric]
    interval = {
        "cost_per_case_usd": "[$0.000110, $0.000120]",
        "faithfulness": "[0.900, 0.990]",
    }[metric]
    threshold = {"cost_per_case_usd": "≤ 0.001", "faithfulness": "≥ 0.5"}[metric]

    # The report: the run page's gates and the agent page's scorecard.
    site = site_pages(results, policies=tmp_path / "policies")
    (row,) = [g for g in site.run(record.run_id).gates if g.metric == metric]
    assert (row.value, row.interval, row.threshold) == (expected, interval, threshold)
    (card,) = [g for g in site.agent(contract.agent).gates if g.metric == metric]
    assert (card.value, card.interval) == (expected, interval)
    # The run summary Markdown.
    summary = run_summary_markdown(results, record.run_id, contract=contract).replace("\\", "")
    assert f"| {metric} | {expected} | {interval} | {threshold} | pass |" in summary
    # The CI gate's Markdown and JUnit.
    gate = gate_agent(contract, "constrained", record, [], None)
    assert f"| {metric} | — | {expected} {interval} | {threshold} | pass |" in markdown(
        [gate], "main"
    )
    junit = ET.fromstring(junit_xml([gate]))
    (case,) = [c for c in junit.iter("testcase") if c.get("name") == metric]
    assert (
        case.findtext("system-out") == f"{metric} {expected} {interval} (needs {threshold}): pass"
    )
    # The impactgate run table.
    cells = _cli_rows(record, HEALTHY)[metric]
    assert cells[:3] == [expected, *interval.split()]
    # No surface shows the unformatted number (0.00011423 has more digits than any format).
    for text in (summary, markdown([gate], "main"), junit_xml([gate]), *cells):
        assert "0.0001142" not in text
        assert "1.142e" not in text.lower()
