"""``impactgate ingest`` and ``impactgate collect`` as a user runs them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from evals.store import ResultsStore
from evals.telemetry import FORMATS
from flows.cli import ingest as ingest_command
from flows.cli.main import cli
from tests.otel_agent import AGENT, answer, collector_file_lines, provider, recorded, request

ROOT = Path(__file__).resolve().parents[2]


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def traces(tmp_path: Path, name: str = "traces.jsonl") -> Path:
    with recorded() as (tracer, exporter):
        for i in range(2):
            answer(tracer, f"Why was invoice {i} charged twice?", work_item=f"T-{i}")
        message = request(exporter.get_finished_spans())
    path = tmp_path / name
    path.write_text(collector_file_lines(message))
    return path


def test_ingest_stores_traces_and_work_items_and_skips_a_file_it_has(tmp_path: Path) -> None:
    results = str(tmp_path / "results")
    tickets = tmp_path / "tickets.csv"
    tickets.write_text(
        "ticket,opened,CSAT\nT-0,2026-03-01T09:00:00Z,5\nT-1,2026-03-01T10:00:00Z,4\n"
    )
    mapping = tmp_path / "mapping.yaml"
    mapping.write_text("id: ticket\nopened_at: opened\ndefault_agent: billing-assistant\n")
    code, out, err = invoke(
        "ingest",
        str(traces(tmp_path)),
        str(tickets),
        "--results",
        results,
        "--mapping",
        str(mapping),
    )
    assert (code, err) == (0, "")
    assert out.splitlines() == [
        f"{tmp_path}/traces.jsonl (otlp-json): 10 spans stored ({AGENT} 10)",
        f"{tmp_path}/tickets.csv (csv): 2 work items stored ({AGENT} 2)",
    ]
    code, out, _ = invoke("ingest", str(tmp_path / "traces.jsonl"), "--results", results, "--json")
    report = json.loads(out)
    assert code == 0
    assert report["files"][0]["status"] == "already ingested"
    store = ResultsStore(results)
    assert (len(store.spans()), len(store.work_items())) == (10, 2)


def test_ingest_lists_bad_records_on_stderr_keeps_the_rest_and_exits_2(tmp_path: Path) -> None:
    path = traces(tmp_path)
    path.write_text(
        path.read_text() + '{"resourceSpans": [{"scopeSpans": [{"spans": [{"spanId": "x"}]}]}]}\n'
    )
    code, out, err = invoke("ingest", str(path), "--results", str(tmp_path / "results"))
    assert code == 2
    assert "10 spans stored" in out
    assert "1 rejected" in out
    assert err.strip() == (
        f"error {tmp_path}/traces.jsonl: line 2: field 'resourceSpans.0.scopeSpans.0.spans.0.traceId': "
        "required (a trace id is 32 hex digits in a string); span left out"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope.jsonl"], "nope.jsonl: file not found"),
        (
            ["{mapping}", "--mapping", "{mapping}"],
            "mapping.yaml: ticket: Extra inputs are not permitted",
        ),
        (["{mystery}"], "mystery.dat: cannot tell the format; pass --format"),
    ],
)
def test_ingest_usage_errors_exit_2_before_anything_is_stored(
    tmp_path: Path, args: list[str], message: str
) -> None:
    (tmp_path / "mapping.yaml").write_text("ticket: id\n")
    (tmp_path / "mystery.dat").write_bytes(b"\x00\x00\x00")
    paths = {"mapping": str(tmp_path / "mapping.yaml"), "mystery": str(tmp_path / "mystery.dat")}
    code, _, err = invoke(
        "ingest", *[a.format(**paths) for a in args], "--results", str(tmp_path / "results")
    )
    assert code == 2
    assert message in err.replace(str(tmp_path) + "/", "")
    assert not (tmp_path / "results").exists()


def test_ingest_format_choices_are_the_engines() -> None:
    assert ingest_command.FORMATS == FORMATS


@pytest.mark.parametrize("command", ["ingest", "collect"])
def test_the_commands_help_loads_no_engine(command: str) -> None:
    probe = (
        "import sys\n"
        "from flows.cli.main import cli\n"
        f"try:\n    cli([{command!r}, '--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = ('evals.telemetry', 'evals.store', 'pyarrow', 'pydantic', 'duckdb', 'opentelemetry', 'google')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


@pytest.mark.server
def test_collect_receives_from_the_exporter_and_writes_everything_on_sigterm(
    tmp_path: Path,
) -> None:
    results = tmp_path / "results"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "flows.cli.main",
            "collect",
            "--port",
            "0",
            "--results",
            str(results),
            "--flush-seconds",
            "600",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("listening on http://127.0.0.1:"), line
        endpoint = line.split()[2].rstrip(";")
        tracer_provider = provider(OTLPSpanExporter(endpoint=endpoint, timeout=10))
        answer(tracer_provider.get_tracer("billing-agent"), "Where is my refund?", work_item="T-5")
        tracer_provider.shutdown()
        assert not results.exists()  # nothing written yet: the batch waits for 600 s ...
        process.send_signal(signal.SIGTERM)  # ... or for the receiver to stop
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert "5 span(s) written in 1 batch(es)" in err
    assert {s.work_item_id for s in ResultsStore(results).spans()} == {"T-5"}
