"""The example telemetry generator: the same arguments give the same bytes, in worker
processes too; files already written are kept; consecutive exports agree; the command; and
each line is what the OTLP exporters' encoder and protobuf's JSON mapping would write.

The history the examples tell their story with is checked in ``test_telemetry.py``; these
tests generate their own short histories (28 days, the shortest the story allows).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import Event, ReadableSpan
from opentelemetry.sdk.trace.export import SpanExportResult
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceState

import examples.telemetry as telemetry
from examples.telemetry import AGENTS, generate, generate_all, paths
from examples.telemetry.__main__ import main
from examples.telemetry._export import CollectorFileExporter, otlp_json
from tests.otel_agent import collector_json, request

pytestmark = pytest.mark.long  # several seconds: sent out early (tests/conftest.py)

END = date(2026, 12, 3)


def test_the_same_arguments_write_the_same_bytes(tmp_path: Path) -> None:
    first = generate("returns-concierge", tmp_path / "a", end=END, days=28, seed=3)
    second = generate("returns-concierge", tmp_path / "b", end=END, days=28, seed=3)
    assert [p.name for p in first] == [p.name for p in second]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()
    other = generate("returns-concierge", tmp_path / "c", end=END, days=28, seed=4)
    assert other[0].read_bytes() != first[0].read_bytes()


def test_worker_processes_write_the_same_bytes(tmp_path: Path) -> None:
    agents = ("returns-concierge", "account-support")
    spawned = generate_all(tmp_path / "a", end=END, days=28, agents=agents, workers=2)
    here = generate_all(tmp_path / "b", end=END, days=28, agents=agents, workers=1)
    assert list(spawned) == list(agents)
    for agent in agents:
        for a, b in zip(spawned[agent], here[agent], strict=True):
            assert a.read_bytes() == b.read_bytes()


def test_files_already_written_are_kept(tmp_path: Path) -> None:
    written = generate("account-support", tmp_path, end=END, days=28)
    stamps = [p.stat().st_mtime_ns for p in written]
    again = generate("account-support", tmp_path, end=END, days=28)
    assert again == written
    assert [p.stat().st_mtime_ns for p in again] == stamps
    assert paths("account-support", tmp_path, end=END, days=28) == written


def test_a_day_is_the_same_history_whatever_the_end(tmp_path: Path) -> None:
    """Consecutive exports agree on the tickets they share (ids, times), so ingesting
    tomorrow's export over today's replaces tickets instead of adding new ones."""
    today = generate("billing-assistant", tmp_path, end=END, days=28)[1]
    tomorrow = generate("billing-assistant", tmp_path, end=date(2026, 12, 4), days=28)[1]

    def opened(path: Path) -> dict[str, str]:
        rows = path.read_text(encoding="utf-8").splitlines()[1:]
        return {r.split(",")[0]: r.split(",")[2] for r in rows}

    a, b = opened(today), opened(tomorrow)
    shared = a.keys() & b.keys()
    assert len(shared) > 20 * 40
    assert all(a[k] == b[k] for k in shared)


def test_unknown_agents_and_short_histories_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown example agent 'nope'; one of billing-assistant"):
        generate("nope", tmp_path, end=END)
    with pytest.raises(ValueError, match="at least 28 days"):
        generate("billing-assistant", tmp_path, end=END, days=7)


def test_the_command_writes_the_agents_asked_for(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "--out",
            str(tmp_path),
            "--end",
            "2026-12-03",
            "--days",
            "28",
            "--agents",
            "account-support",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(p) for p in paths("account-support", tmp_path, end=END, days=28)]
    assert all(Path(p).is_file() for p in printed)
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path), "--end", "3 December"])


class _Checked(CollectorFileExporter):
    """The generator's exporter, checking its first lines against the OTLP exporters' encoder.

    Three lines of 512 spans hold every kind of span an agent writes, failed ones (with their
    exception events) included; the encoder takes three times as long as the lines it checks.
    """

    CHECKED = 3
    lines = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if spans and self.requests < self.CHECKED:
            ours = orjson.dumps(otlp_json(spans))
            assert ours == orjson.dumps(collector_json(request(spans)))
            _Checked.lines += 1
        return super().export(spans)


def test_every_line_is_what_the_otlp_encoder_and_protobuf_json_would_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(telemetry, "CollectorFileExporter", _Checked)
    monkeypatch.setattr(_Checked, "lines", 0)
    for agent in AGENTS:
        generate(agent, tmp_path, end=END, days=28)
    assert _Checked.lines == 3 * _Checked.CHECKED


def _context(trace_id: int, span_id: int, *, remote: bool = False, state: str = "") -> SpanContext:
    return SpanContext(
        trace_id, span_id, is_remote=remote, trace_state=TraceState.from_header([state])
    )


def test_every_kind_of_value_is_encoded_as_the_otlp_encoder_and_protobuf_json_do() -> None:
    """Values and fields the example agents do not use, beside those they do."""
    values: dict[str, Any] = {
        "text": "résumé", "empty": "", "yes": True, "no": False, "zero": 0, "big": 2**62,
        "negative": -7, "half": 0.5, "nothing": 0.0, "nan": math.nan, "inf": math.inf,
        "-inf": -math.inf, "raw": b"\x00\xffbytes", "none": None, "list": ["a", 1, 2.5, True],
        "empty list": [], "map": {"a": 1, "b": ["c"], "d": {}}, "": "no key",
    }  # fmt: skip
    resource = Resource({"service.name": "odd", "count": 3}, schema_url="https://schema/1")
    other = Resource({"service.name": "other"})
    scope = InstrumentationScope("lib", "2.0", "https://schema/scope", {"scoped": True})
    parent = _context(1, 2, remote=True, state="vendor=value,other=1")
    spans = [
        ReadableSpan(
            name="everything",
            context=_context(2**127 + 5, 2**63 + 9, state="k=v"),
            parent=parent,
            resource=resource,
            attributes=values,
            events=[
                Event("exception", {"exception.type": "TimeoutError"}, timestamp=5),
                Event("", None, timestamp=0),
            ],
            links=[Link(_context(3, 4), {"why": "retry"}), Link(_context(5, 6, remote=True))],
            kind=SpanKind.PRODUCER,
            status=Status(StatusCode.ERROR, "the index did not answer"),
            start_time=1,
            end_time=2**63,
            instrumentation_scope=scope,
        ),
        ReadableSpan(name="", context=_context(7, 8), resource=resource, kind=SpanKind.SERVER),
        ReadableSpan(
            name="ok",
            context=_context(9, 10),
            parent=_context(9, 11),
            resource=other,
            status=Status(StatusCode.OK),
            start_time=3,
            end_time=4,
        ),
        ReadableSpan(
            name="equal resource",
            context=_context(12, 13),
            resource=Resource({"service.name": "other"}),
            kind=SpanKind.CONSUMER,
        ),
    ]
    for batch in (spans, spans[1:], spans[:1]):
        assert orjson.dumps(otlp_json(batch)) == orjson.dumps(collector_json(request(batch)))
    assert otlp_json([]) == collector_json(request([]))
