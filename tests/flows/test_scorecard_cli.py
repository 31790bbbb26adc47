"""``impactgate scorecard`` and the scorecard in ``impactgate status``, on a small project."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from evals.contract import load_contract
from evals.runs import RunSession
from flows.cli.main import cli
from tests.evals.test_scorecard import _contract, _items
from tests.helpers import make_project
from tests.scorecard_data import write_telemetry

AS_OF = datetime(2026, 12, 3, tzinfo=UTC)
KEYS = {
    "key", "metric", "name", "block", "unit", "better", "baseline", "target", "expected",
    "value", "low", "high", "n", "method", "window", "status", "note", "red_flags", "weekly",
}  # fmt: skip


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = make_project(tmp_path, _contract(tmp_path))
    write_telemetry(tmp_path / "telemetry", "tiny-agent", _items(AS_OF, count=200))
    monkeypatch.chdir(tmp_path)
    return path


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout


def test_scorecard_json_gives_every_metric_with_its_interval(project: Path) -> None:
    code, out = _invoke("scorecard", "--json", "--results", "results", "--as-of", "2026-12-03")
    assert code == 0
    [card] = json.loads(out)["scorecards"]
    assert card["agent"] == "tiny-agent"
    assert card["window"] == "2026-11-06..2026-12-03"
    keys = [m["key"] for m in card["metrics"]]
    assert keys == [
        "cycle_time_p50_h", "cycle_time_p90_h", "automation_rate", "escalation_rate",
        "rework_rate", "production_error_rate", "adoption_rate", "outcome.business.0",
        "outcome.customer",
    ]  # fmt: skip
    for metric in card["metrics"]:
        assert set(metric) == KEYS
        assert metric["value"] is not None
        assert metric["low"] <= metric["value"] <= metric["high"]
        assert metric["n"] > 0
    escalation = next(m for m in card["metrics"] if m["key"] == "escalation_rate")
    assert (escalation["block"], escalation["baseline"], escalation["target"]) == (
        "workflow",
        1,
        0.5,
    )
    assert (escalation["value"], escalation["n"], escalation["status"]) == (0.5, 100, "target_met")
    assert sum(w["n"] for w in escalation["weekly"]) == 100
    # a second call ingests nothing new and measures the same
    code, again = _invoke("scorecard", "--json", "--results", "results", "--as-of", "2026-12-03")
    assert json.loads(again)["scorecards"] == [card]


def test_scorecard_table_and_status_headline(project: Path) -> None:
    code, out = _invoke("scorecard", "--results", "results", "--as-of", "2026-12-03")
    assert code == 0
    assert "impactgate scorecard" in out
    assert "Escalation rate" in out
    assert "0.500 [0.404, 0.596]" in out
    # status reads what is stored as of today. The tickets above are from 2026-12-03 and
    # before, so today's 28-day window holds fewer of them each day: today's export replaces
    # every one of them (same ids), and the window then holds exactly the data it is read on.
    contract = load_contract(project)
    now = datetime.now(UTC)
    write_telemetry(Path("telemetry"), "tiny-agent", _items(now, count=200), name="now")
    with RunSession.open(contract, "results") as session:
        session.run()
    code, out = _invoke("status", "--results", "results")
    assert code == 0
    assert "measured: share of tickets 0.5" in out
    code, out = _invoke("status", "--results", "results", "--json")
    [row] = json.loads(out)["agents"]
    assert row["scorecard"]["headline"].startswith("share of tickets 0.5")
    assert row["scorecard"]["red_flags"] == []


def test_a_bad_outcome_query_is_a_user_error_naming_file_and_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _contract(tmp_path)
    data["outcome"]["customer"]["query"] = "SELECT * FROM read_csv('/etc/passwd')"
    make_project(tmp_path, data)
    write_telemetry(tmp_path / "telemetry", "tiny-agent", _items(AS_OF, count=10))
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(
        cli, ["scorecard", "--results", "results", "--as-of", AS_OF.date().isoformat()]
    )
    assert result.exit_code == 2
    assert "tiny-agent.yaml" in result.output
    assert "outcome.customer.query" in result.output
    assert "disabled by configuration" in result.output
