"""Work items from ticketing exports: mapped columns, later exports replacing earlier ones, bad rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from evals.store import ResultsStore, connect_telemetry
from evals.telemetry import TelemetryMasker, WorkItemMapping, ingest, sniff_format

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def masking() -> TelemetryMasker:
    return TelemetryMasker(ROOT / "policies", default_packs=["rules/default.yaml"])


HEADER = "ticket_id,queue,created_at,resolved_at,resolved_by,escalated_to,reopen_count,CSAT,refund_usd,comment\n"
MONDAY = HEADER + (
    "T-1,billing-assistant,2026-03-02T09:00:00Z,2026-03-02T11:30:00Z,bot,,0,5,0,quick\n"
    "T-2,billing-assistant,2026-03-02T10:00:00Z,,,,0,,,\n"
    "T-3,billing-assistant,2026-03-02 12:00:00,2026-03-03 12:00:00,Dana Whitfield,Tier 2,1,3,12.50,"
    '"card 4111 1111 1111 1111, mail dana@mail.example"\n'
)
TUESDAY = HEADER + (
    "T-2,billing-assistant,2026-03-02T10:00:00Z,2026-03-03T08:00:00Z,assistant,,0,4,0,solved after all\n"
)


def test_a_later_export_of_the_same_ticket_replaces_it_and_counts_once(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    monday, tuesday = tmp_path / "monday.csv", tmp_path / "tuesday.csv"
    monday.write_text(MONDAY)
    tuesday.write_text(TUESDAY)
    results = tmp_path / "results"
    assert sniff_format(monday) == "csv"
    first = ingest([monday], results, masking=masking)
    assert first.ok
    assert first.files[0].records == 3
    assert first.files[0].kind == "work_items"
    assert ingest([tuesday, monday], results, masking=masking).files[1].status == "already ingested"
    items = {w.work_item_id: w for w in ResultsStore(results).work_items()}
    assert sorted(items) == ["T-1", "T-2", "T-3"]
    t1, t2, t3 = items["T-1"], items["T-2"], items["T-3"]
    assert t2.closed_at == datetime(2026, 3, 3, 8, tzinfo=UTC)  # Tuesday's values
    assert (t2.resolved_by, t2.outcomes) == (
        "agent",
        {"CSAT": 4, "refund_usd": 0, "comment": "solved after all"},
    )
    assert (t1.agent, t1.resolved_by, t1.escalated, t1.reopened) == (
        "billing-assistant",
        "agent",
        False,
        False,
    )
    assert t1.cycle_time_h == 2.5
    # A person resolved T-3: who it was is not kept; the escalation names a team: escalated.
    assert (t3.resolved_by, t3.escalated, t3.reopened) == ("human", True, True)
    assert t3.opened_at == datetime(
        2026, 3, 2, 12, tzinfo=UTC
    )  # no zone given: the mapping's (UTC)
    assert t3.outcomes == {
        "CSAT": 3,
        "refund_usd": 12.5,
        "comment": "card ****1111, mail d***@mail.example",
    }
    with connect_telemetry(results) as db:
        rows = db.sql(
            "SELECT count(*), avg(CAST(json_extract(outcomes, '$.CSAT') AS DOUBLE)) FROM work_items"
        ).fetchall()
    assert rows == [(3, 4.0)]


def test_the_latest_updated_at_wins_whatever_the_order_of_ingest(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    rows = [
        {
            "id": "C-7",
            "agent": "returns-concierge",
            "opened_at": "2026-04-01T08:00:00Z",
            "updated_at": "2026-04-03T00:00:00Z",
            "status": "closed",
        },
        {
            "id": "C-7",
            "agent": "returns-concierge",
            "opened_at": "2026-04-01T08:00:00Z",
            "updated_at": "2026-04-02T00:00:00Z",
            "status": "open",
        },
    ]
    newer, older = tmp_path / "newer.jsonl", tmp_path / "older.jsonl"
    newer.write_text(json.dumps(rows[0]) + "\n")
    older.write_text(json.dumps(rows[1]) + "\n")
    assert sniff_format(newer) == "jsonl"
    ingest([newer], tmp_path / "results", masking=masking)
    ingest([older], tmp_path / "results", masking=masking)  # an old export, ingested late
    (item,) = ResultsStore(tmp_path / "results").work_items()
    assert item.outcomes == {"status": "closed"}


def test_the_later_row_of_one_file_wins_and_parquet_exports_are_read(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    table = pa.table(
        {
            "Case Number": ["K1", "K2", "K1"],
            "Opened": [datetime(2026, 5, 1, 9, tzinfo=UTC)] * 3,
            "Closed": [
                None,
                datetime(2026, 5, 1, 10, tzinfo=UTC),
                datetime(2026, 5, 2, 9, tzinfo=UTC),
            ],
            "Handled By": ["ai", "Sam", "ai"],
            "Converted": [False, True, True],
        }
    )
    path = tmp_path / "cases.parquet"
    pq.write_table(table, path)
    mapping = WorkItemMapping(
        id="Case Number",
        opened_at="Opened",
        closed_at="Closed",
        resolved_by="Handled By",
        default_agent="account-support",
        outcomes={"converted": "Converted"},
    )
    report = ingest([path], tmp_path / "results", mapping=mapping, masking=masking)
    assert report.ok
    assert report.files[0].format == "parquet"
    assert report.files[0].records == 3
    items = {w.work_item_id: w for w in ResultsStore(tmp_path / "results").work_items()}
    assert items["K1"].closed_at == datetime(2026, 5, 2, 9, tzinfo=UTC)  # row 3 replaced row 1
    assert items["K1"].outcomes == {"converted": True}
    assert items["K2"].resolved_by == "human"
    assert {w.agent for w in items.values()} == {"account-support"}


def test_bad_rows_are_named_by_line_and_field_and_the_rest_kept(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text(
        "id,agent,created_at,closed_at,csat\n"
        "A1,billing-assistant,2026-03-01T09:00:00Z,2026-03-01T10:00:00Z,5\n"
        ",billing-assistant,2026-03-01T09:00:00Z,,\n"
        "A3,billing-assistant,next tuesday,,\n"
        "A4,,2026-03-01T09:00:00Z,,\n"
        "A5,billing-assistant,2026-03-02T09:00:00Z,2026-03-01T09:00:00Z,\n"
        "A7,billing-assistant,2026-03-01T09:00:00Z,,4,extra\n"
        "A8,billing-assistant\n"
        "A9,billing-assistant,1767258000,,2\n"
        '"A10,billing-assistant,2026-03-01T09:00:00Z,,4\n'
        "A11,billing-assistant,2026-03-01T09:00:00Z,,4\n"
    )
    report = ingest([path], tmp_path / "results", masking=masking).files[0]
    assert [str(p).split("/")[-1] for p in report.problems] == [
        "tickets.csv: line 3: field 'id' (column 'id'): empty; row left out",
        "tickets.csv: line 4: field 'opened_at' (column 'created_at'): 'next tuesday' is not a "
        "date and time (ISO 8601, e.g. 2026-03-01T09:30:00Z); row left out",
        "tickets.csv: line 5: field 'agent' (column 'agent'): empty (set default_agent for rows "
        "without one); row left out",
        "tickets.csv: line 6: field 'closed_at' (column 'closed_at'): is before opened_at; row left out",
        "tickets.csv: line 7: 1 more value(s) than columns; row left out",
        "tickets.csv: line 8: fewer values than columns; row left out",
        "tickets.csv: line 10: unreadable CSV from here (unexpected end of data); the rest of the file left out",
    ]
    assert (report.records, report.rejected) == (2, 6)
    items = {w.work_item_id: w for w in ResultsStore(tmp_path / "results").work_items()}
    assert sorted(items) == ["A1", "A9"]
    assert items["A9"].opened_at == datetime(2026, 1, 1, 9, tzinfo=UTC)  # epoch seconds


def test_an_export_without_a_required_column_is_refused_as_a_whole(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    path = tmp_path / "tickets.csv"
    path.write_text("number,when\n1,2026-03-01\n")
    report = ingest([path], tmp_path / "results", masking=masking).files[0]
    assert report.status == "failed"
    assert report.records == 0
    assert [p.field for p in report.problems] == ["mapping.opened_at", "mapping.agent"]
    assert "looked for opened_at, created_at" in report.problems[0].message
    mapping = WorkItemMapping(opened_at="when", default_agent="billing-assistant")
    fixed = ingest([path], tmp_path / "results", mapping=mapping, masking=masking).files[0]
    assert fixed.records == 1
    assert fixed.status == "ingested"


def test_jsonl_rows_may_leave_keys_out_and_bad_lines_are_reported(
    tmp_path: Path, masking: TelemetryMasker
) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text(
        '{"id": "E1", "agent": "billing-assistant", "opened_at": "2026-03-01T09:00:00+01:00"}\n'
        '{"id": "E2", "agent": "billing-assistant", "opened_at": "2026-03-01T09:00:00Z", '
        '"closed_at": "2026-03-01T09:30:00Z", "escalated": true}\n'
        "not json\n"
        '["a list"]\n'
        '{"agent": "billing-assistant", "opened_at": "2026-03-01T09:00:00Z"}\n'
    )
    report = ingest([path], tmp_path / "results", masking=masking).files[0]
    assert [(p.field, p.message) for p in report.problems] == [
        ("line 3", "invalid JSON: invalid literal, expected 'null'; row left out"),
        ("line 4", "is a JSON list, not an object; row left out"),
        ("line 5: field 'id' (column 'id')", "empty; row left out"),
    ]
    items = {w.work_item_id: w for w in ResultsStore(tmp_path / "results").work_items()}
    assert items["E1"].opened_at == datetime(2026, 3, 1, 8, tzinfo=UTC)
    assert (items["E1"].escalated, items["E2"].escalated, items["E2"].cycle_time_h) == (
        None,
        True,
        0.5,
    )


def test_the_mapping_model_refuses_unknown_fields_zones_and_agent_names() -> None:
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        WorkItemMapping.model_validate({"ticket": "id"})
    with pytest.raises(ValidationError, match="unknown time zone 'Mars/Olympus'"):
        WorkItemMapping(timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="should match pattern"):
        WorkItemMapping(default_agent="Billing Assistant")
