"""The example agents' production telemetry: deterministic, ingestible, masked, and on story.

One module-scoped history (the three agents, 90 days before 2026-12-03, seed 0) is generated
and ingested once; the story's numbers are measured on it with DuckDB over the stored tables,
the way the scorecard measures them.
"""

from __future__ import annotations

import functools
import gzip
import json
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from evals.store import connect_telemetry
from evals.telemetry import WORK_ITEM_ATTRIBUTE, IngestReport, ingest
from examples.telemetry import AGENTS, generate_all
from examples.telemetry import _traces as traces

pytestmark = pytest.mark.long  # several seconds: sent out early (tests/conftest.py)

END = date(2026, 12, 3)
POLICIES = Path(__file__).resolve().parents[2] / "policies"


@dataclass
class History:
    folder: Path
    results: Path
    files: dict[str, list[Path]]
    report: IngestReport


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> History:
    folder = tmp_path_factory.mktemp("telemetry")
    results = tmp_path_factory.mktemp("results")
    files = generate_all(folder, end=END, workers=1)
    report = ingest([p for f in files.values() for p in f], results, policies=POLICIES)
    return History(folder, results, files, report)


def _requests(path: Path) -> Iterator[dict[str, Any]]:
    with gzip.open(path, "rb") as lines:
        for line in lines:
            yield orjson.loads(line)


def _spans(path: Path) -> Iterator[dict[str, Any]]:
    for request in _requests(path):
        for resource in request["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                yield from scope["spans"]


@functools.cache
def _span_keys(path: Path) -> list[tuple[str, frozenset[str]]]:
    """Each span's name and attribute keys, read once a module (the files do not change)."""
    return [(s["name"], frozenset(a["key"] for a in s["attributes"])) for s in _spans(path)]


def _csv_rows(path: Path) -> int:
    return len(path.read_text(encoding="utf-8").splitlines()) - 1


def test_the_traces_are_collector_file_lines_from_the_sdk(history: History) -> None:
    path = history.files["billing-assistant"][0]
    request = next(_requests(path))
    resource = request["resourceSpans"][0]
    attributes = {a["key"]: a["value"] for a in resource["resource"]["attributes"]}
    assert attributes["service.name"] == {"stringValue": "billing-assistant"}
    assert attributes["telemetry.sdk.name"] == {"stringValue": "opentelemetry"}
    span = resource["scopeSpans"][0]["spans"][0]
    assert re.fullmatch(r"[0-9a-f]{32}", span["traceId"])
    assert re.fullmatch(r"[0-9a-f]{16}", span["spanId"])
    assert isinstance(span["startTimeUnixNano"], str)
    assert isinstance(span["kind"], int)
    assert sum(len(s["spans"]) for s in resource["scopeSpans"]) == 512  # one batch a line


def test_every_span_names_its_work_item(history: History) -> None:
    assert traces.WORK_ITEM_ATTRIBUTE == WORK_ITEM_ATTRIBUTE
    for agent in AGENTS:
        spans = _span_keys(history.files[agent][0])
        assert spans
        for name, keys in spans:
            assert WORK_ITEM_ATTRIBUTE in keys, (agent, name)


def test_the_history_ingests_without_a_problem(history: History) -> None:
    report = history.report
    assert report.ok, [str(p) for f in report.files for p in f.problems]
    assert report.warnings == []
    stored = {Path(f.path).name: f for f in report.files}
    for agent in AGENTS:
        traces_path, items_path = history.files[agent]
        spans = len(_span_keys(traces_path))
        assert stored[traces_path.name].records == spans
        assert stored[traces_path.name].agents == {agent: spans}
        assert stored[items_path.name].records == _csv_rows(items_path)
        assert 90 * 40 <= stored[items_path.name].records <= 90 * 80
    with connect_telemetry(history.results) as db:
        per_trace = db.execute(
            "SELECT min(n), max(n) FROM (SELECT count(*) AS n FROM spans GROUP BY trace_id)"
        ).fetchone()
        days = db.execute(
            "SELECT min(n), max(n) FROM (SELECT count(*) AS n FROM work_items "
            "GROUP BY agent, opened_at::DATE)"
        ).fetchone()
        kinds = db.execute(
            "SELECT service, list(DISTINCT operation ORDER BY operation), "
            "count(openinference_kind) > 0 FROM spans GROUP BY service ORDER BY service"
        ).fetchall()
    assert per_trace == (3, 5)  # 2-6 spans a handled item
    assert days is not None
    assert days[0] >= 40
    assert days[1] <= 80
    operations = ["chat", "execute_tool", "invoke_agent", "retrieval"]
    assert kinds == [
        ("account-support", operations, False),
        ("billing-assistant", operations, False),
        ("returns-concierge", operations, True),  # OpenInference spans
    ]


def test_a_span_sent_twice_is_counted_once(history: History, tmp_path: Path) -> None:
    source = history.files["returns-concierge"][0]
    results = tmp_path / "results"
    shutil.copytree(history.results, results)
    # The same spans in a different file (recompressed: another hash, so it is read again).
    again = tmp_path / "again.otlp.jsonl.gz"
    with gzip.open(source, "rb") as raw, gzip.open(again, "wb", compresslevel=1) as out:
        out.write(raw.read())
    assert again.read_bytes() != source.read_bytes()
    report = ingest([again, source], results, policies=POLICIES)
    assert [f.status for f in report.files] == ["ingested", "already ingested"]
    with connect_telemetry(results) as db:
        row = db.execute(
            "SELECT count(*), count(DISTINCT (trace_id, span_id)) FROM spans "
            "WHERE service = 'returns-concierge'"
        ).fetchone()
    assert row is not None
    assert row[0] == row[1] == len(_span_keys(source))


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")  # tried at word starts only
_PHONE = re.compile(r"\+1 \d{3} 555 \d{4}")


def test_account_support_personal_data_never_reaches_parquet(history: History) -> None:
    traces_path = history.files["account-support"][0]
    with gzip.open(traces_path, "rt", encoding="utf-8") as raw:
        text = raw.read()
    allowed = {"help@contoso.example", "+1 800 555 0100"}  # the contract's allowlist
    personal = (set(_EMAIL.findall(text)) | set(_PHONE.findall(text))) - allowed
    assert len(personal) > 100  # the export does carry customers' emails and phone numbers
    stored: list[str] = []
    for table in ("spans", "work_items"):
        for path in (history.results / table).glob("agent=account-support/*/*.parquet"):
            data = pq.read_table(path)
            for column in data.itercolumns():
                if pa.types.is_string(column.type):
                    stored.extend(v for v in column.to_pylist() if v)
                elif pa.types.is_list(column.type):
                    stored.extend(v for values in column.to_pylist() for v in values or () if v)
    blob = "\n".join(stored)
    assert "lookup_crm_notes" in blob  # the spans are there, masked
    found = set(_EMAIL.findall(blob)) | set(_PHONE.findall(blob))
    assert found & personal == set()


def _window(db: Any, agent: str, last: bool) -> dict[str, float]:
    where = (
        f"opened_at >= TIMESTAMP '{END}' - INTERVAL 28 DAY"
        if last
        else f"opened_at < TIMESTAMP '{END}' - INTERVAL 62 DAY"
    )
    row = db.execute(
        f"""
        WITH handled AS (SELECT DISTINCT work_item_id FROM spans WHERE service = '{agent}'),
        w AS (
            SELECT w.*, h.work_item_id IS NOT NULL AS handled,
                   TRY_CAST(json_extract_string(outcomes, '$.csat') AS DOUBLE) AS csat,
                   TRY_CAST(json_extract_string(outcomes, '$.nps') AS INT) AS nps,
                   TRY_CAST(json_extract_string(outcomes, '$.converted_to_exchange') AS BOOLEAN)
                       AS converted,
                   TRY_CAST(json_extract_string(outcomes, '$.handling_cost_usd') AS DOUBLE) AS cost,
                   TRY_CAST(json_extract_string(outcomes, '$.access_restored_hours') AS DOUBLE)
                       AS access_hours
            FROM work_items w LEFT JOIN handled h USING (work_item_id)
            WHERE w.agent = '{agent}' AND {where}
        )
        SELECT avg(handled::INT) AS adoption,
               avg(CASE WHEN handled THEN escalated::INT END) AS escalation,
               avg(CASE WHEN closed_at IS NOT NULL THEN (resolved_by = 'agent')::INT END)
                   AS automation,
               avg(CASE WHEN closed_at IS NOT NULL THEN reopened::INT END) AS rework,
               avg(csat) AS csat,
               100 * (avg(CASE WHEN nps >= 9 THEN 1.0 WHEN nps IS NOT NULL THEN 0.0 END)
                    - avg(CASE WHEN nps <= 6 THEN 1.0 WHEN nps IS NOT NULL THEN 0.0 END)) AS nps,
               avg(converted::INT) AS conversion,
               avg(cost) AS cost,
               avg(access_hours) AS access_hours,
               median(epoch(closed_at - opened_at) / 3600) AS cycle_p50_h
        FROM w
        """
    ).fetchone()
    names = (
        "adoption", "escalation", "automation", "rework", "csat", "nps", "conversion", "cost",
        "access_hours", "cycle_p50_h",
    )  # fmt: skip
    return dict(zip(names, row, strict=True))


def test_the_stories_hold_over_the_last_four_weeks(history: History) -> None:
    with connect_telemetry(history.results) as db:
        billing = _window(db, "billing-assistant", last=True)
        billing_start = _window(db, "billing-assistant", last=False)
        returns = _window(db, "returns-concierge", last=True)
        returns_start = _window(db, "returns-concierge", last=False)
        account = _window(db, "account-support", last=True)
        errors = db.execute(
            "SELECT service, avg((status = 'error')::INT), count(error_type) "
            "FROM spans GROUP BY service ORDER BY service"
        ).fetchall()
        add_on = db.execute(
            f"SELECT opened_at >= TIMESTAMP '{END}' - INTERVAL 28 DAY AS recent, "
            "avg((outcomes->>'category' = 'ai-add-on')::INT) FROM work_items "
            "WHERE agent = 'billing-assistant' GROUP BY recent ORDER BY recent"
        ).fetchall()
        golden_topics = {
            json.loads(line)["tags"][0]
            for line in (POLICIES.parent / "datasets/billing-assistant/cases.jsonl")
            .read_text(encoding="utf-8")
            .splitlines()
        }
    # billing-assistant moves its outcome with adoption.
    assert billing["adoption"] == pytest.approx(0.63, abs=0.02)
    assert billing_start["adoption"] < 0.2
    assert billing["escalation"] == pytest.approx(0.28, abs=0.02)
    assert 0.45 <= billing["automation"] <= 0.50
    assert billing["rework"] == pytest.approx(0.04, abs=0.02)
    assert billing["csat"] == pytest.approx(4.38, abs=0.05)
    assert billing_start["csat"] == pytest.approx(4.17, abs=0.08)
    assert billing["cost"] == pytest.approx(2.8, abs=0.15)
    assert billing_start["cost"] > 5.0
    assert billing["cycle_p50_h"] < billing_start["cycle_p50_h"] / 2
    # ... while a quarter of its recent questions are about the Copilot add-on, a topic its
    # golden set does not have.
    assert add_on[0][1] < 0.1
    assert add_on[1][1] == pytest.approx(0.25, abs=0.03)
    assert "ai-add-on" not in golden_topics
    # returns-concierge: adoption without outcome.
    assert returns["adoption"] == pytest.approx(0.48, abs=0.02)
    assert returns_start["adoption"] < 0.15
    assert returns["nps"] == pytest.approx(21, abs=3)
    assert abs(returns["nps"] - returns_start["nps"]) < 5
    assert returns["conversion"] == pytest.approx(0.12, abs=0.02)
    assert returns["cost"] == pytest.approx(5.6, abs=0.15)
    assert returns_start["cost"] == pytest.approx(5.6, abs=0.15)
    # account-support: escalation over its gate (0.35).
    assert 0.35 <= account["adoption"] <= 0.46
    assert account["escalation"] == pytest.approx(0.45, abs=0.02)
    assert account["rework"] == pytest.approx(0.04, abs=0.02)
    assert account["access_hours"] == pytest.approx(18, abs=1.0)
    # About 1% of spans fail, each with its error type.
    for service, rate, typed in errors:
        assert rate == pytest.approx(0.01, abs=0.003), service
        assert typed > 0


@pytest.mark.server
def test_a_live_call_is_traced_by_the_openinference_instrumentation(tmp_path: Path) -> None:
    from evals.testing import FakeOpenAIServer
    from examples.telemetry._live import live_trace

    answer = "Annual plans can be refunded in full within 30 days of the initial purchase."
    with FakeOpenAIServer(responder=lambda request: answer) as server:
        path, got = live_trace(server.url, tmp_path / "live.otlp.jsonl.gz", work_item="BIL-LIVE-1")
        assert server.calls == 1
    assert got == answer
    spans = {s["name"]: s for s in _spans(path)}
    assert set(spans) == {"invoke_agent billing-assistant", "ChatCompletion"}
    llm = {a["key"]: a["value"] for a in spans["ChatCompletion"]["attributes"]}
    assert llm["openinference.span.kind"] == {"stringValue": "LLM"}
    assert llm[WORK_ITEM_ATTRIBUTE] == {"stringValue": "BIL-LIVE-1"}  # from the baggage
    assert (
        spans["ChatCompletion"]["parentSpanId"] == spans["invoke_agent billing-assistant"]["spanId"]
    )

    results = tmp_path / "results"
    report = ingest([path], results, policies=POLICIES)
    assert report.ok
    with connect_telemetry(results) as db:
        rows = db.execute(
            "SELECT operation, model, input_tokens > 0, output_text, work_item_id FROM spans "
            "ORDER BY operation"
        ).fetchall()
    assert rows == [
        ("chat", "gpt-4o-mini", True, answer, "BIL-LIVE-1"),
        ("invoke_agent", None, None, answer, "BIL-LIVE-1"),
    ]
