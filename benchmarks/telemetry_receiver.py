"""How many spans a second does ``impactgate collect`` take from the real OTLP exporter?

    .venv/bin/python benchmarks/telemetry_receiver.py [--spans 100000] [--write]

``impactgate collect`` runs in its own process (as deployed). The client instruments the
example billing agent with the OpenTelemetry SDK (``tests/otel_agent.py``: five spans a
question, GenAI attributes, questions drawn from 1,000 distinct ones), keeps the finished
spans in memory, then sends them through ``OTLPSpanExporter`` (HTTP, protobuf) in batches of
512, the BatchSpanProcessor's default, from ``--senders`` threads, as several processes of an
agent would. The clock runs from the first export to the collector's exit after SIGTERM, so
the final masked write is included. Measured without and with gzip.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).parent))

from opentelemetry.exporter.otlp.proto.http import Compression  # noqa: E402
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # noqa: E402
from opentelemetry.sdk.trace import ReadableSpan  # noqa: E402
from opentelemetry.sdk.trace.export import SpanExportResult  # noqa: E402
from results_file import code_commit, write_section  # noqa: E402
from telemetry_data import question  # noqa: E402

from evals.store import ResultsStore  # noqa: E402
from tests.otel_agent import answer, recorded  # noqa: E402

BATCH = 512


def make_spans(n_spans: int) -> list[ReadableSpan]:
    rng = random.Random(11)
    with recorded() as (tracer, exporter):
        for number in range(n_spans // 5):
            asked, _ = question(rng, rng.randrange(1000))
            answer(tracer, asked, work_item=f"T-{number}", conversation=f"c{number}")
        return list(exporter.get_finished_spans())


def run(
    spans: list[ReadableSpan], compression: Compression, senders: int
) -> tuple[float, int, int, str]:
    results = tempfile.mkdtemp(prefix="ig-collect-")
    process = subprocess.Popen(
        [sys.executable, "-m", "flows.cli.main", "collect", "--port", "0", "--results", results],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    assert process.stdout is not None
    endpoint = process.stdout.readline().split()[2].rstrip(";")
    batches = [spans[i : i + BATCH] for i in range(0, len(spans), BATCH)]
    failures = [0]

    def send(mine: list[list[ReadableSpan]]) -> None:
        exporter = OTLPSpanExporter(endpoint=endpoint, compression=compression, timeout=30)
        for batch in mine:
            if exporter.export(batch) is not SpanExportResult.SUCCESS:
                failures[0] += 1
        exporter.shutdown()

    threads = [threading.Thread(target=send, args=(batches[i::senders],)) for i in range(senders)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=300)
    seconds = time.perf_counter() - start
    stored = len(ResultsStore(results).spans())
    return seconds, stored, failures[0], err.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=100_000)
    parser.add_argument("--senders", type=int, default=4)
    parser.add_argument("--write", action="store_true", help="record benchmarks/RESULTS.md")
    args = parser.parse_args()

    started = time.perf_counter()
    spans = make_spans(args.spans)
    print(
        f"{len(spans):,} spans made with the SDK in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    rows = []
    for label, compression in (
        ("protobuf", Compression.NoCompression),
        ("protobuf, gzip", Compression.Gzip),
    ):
        seconds, stored, failures, summary = run(spans, compression, args.senders)
        rate = len(spans) / seconds
        rows.append((label, seconds, stored, failures, rate, summary))
        print(
            f"{label}: {len(spans):,} spans in {seconds:.2f} s = {rate:,.0f} spans/s; "
            f"{stored:,} stored, {failures} failed exports; {summary}",
            flush=True,
        )

    if args.write:
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        lines = [
            "## Telemetry receiver",
            "",
            f"Command: `.venv/bin/python benchmarks/telemetry_receiver.py --spans {args.spans} --write`  ",
            f"Run: {when}, commit {code_commit()}, {platform.machine()}, 2 cores shared by the "
            f"collector and the client, Python {platform.python_version()}. `impactgate collect` in "
            f"its own process; {len(spans):,} spans of the instrumented example agent (SDK, GenAI "
            f"attributes) sent by `OTLPSpanExporter` in batches of {BATCH} from {args.senders} "
            "threads; timed from the first export to the collector's exit after SIGTERM (the last "
            "masked write included).",
            "",
            "| encoding | spans | seconds | spans/s | stored (read back once each) | failed exports |",
            "|---|---|---|---|---|---|",
            *[
                f"| {label} | {len(spans):,} | {seconds:.2f} | **{rate:,.0f}** | {stored:,} | {failures} |"
                for label, seconds, stored, failures, rate, _ in rows
            ],
        ]
        write_section("telemetry_receiver", "\n".join(lines))


if __name__ == "__main__":
    main()
