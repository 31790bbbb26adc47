"""Production telemetry of the example agents: 90 days of traces and tickets, seeded.

:func:`generate` writes one agent's history as a production system would export it:

- ``<agent>_<end>_<days>d_seed<seed>_v<N>.otlp.jsonl.gz``: its traces, recorded with the
  OpenTelemetry SDK (a ``TracerProvider`` with a fixed resource and seeded ids) and written
  as the Collector's ``file`` exporter writes them (one OTLP/JSON ``ExportTraceServiceRequest``
  a line, gzip);
- ``<agent>_<end>_<days>d_seed<seed>_v<N>.work_items.csv``: the ticketing system's export of
  the same period (``id, agent, opened_at, closed_at, resolved_by, escalated, reopened,
  category`` and the agent's outcome columns). An item is agent-handled when a trace names it
  (``impactgate.work_item.id``).

The history covers the ``days`` whole days before ``end`` (UTC), as exported at 00:00 UTC on
``end``: tickets still open then have no ``closed_at``. Each agent has its story (``_story.py``;
docs/telemetry.md, "Example telemetry"). ``python -m examples.telemetry --out DIR`` writes
all three.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime, time, timedelta
from multiprocessing import get_context
from pathlib import Path

from evals._io import atomic_open
from examples.telemetry._export import BatchingSpanProcessor, CollectorFileExporter
from examples.telemetry._story import COLUMNS, STORIES, day_items, work_item_row
from examples.telemetry._traces import SeededIds, Tracing, provider

__all__ = ["AGENTS", "VERSION", "generate", "generate_all", "paths"]

AGENTS: tuple[str, ...] = ("billing-assistant", "returns-concierge", "account-support")
"""The example agents that have production telemetry."""

VERSION = 2
"""The generator's version, part of the file names: a change to what it writes bumps it, so
files written by an earlier version are not taken for the new ones."""


def paths(agent: str, folder: Path, *, end: date, days: int = 90, seed: int = 0) -> list[Path]:
    """Where :func:`generate` writes (traces, then work items)."""
    stem = f"{agent}_{end:%Y%m%d}_{days}d_seed{seed}_v{VERSION}"
    return [folder / f"{stem}.otlp.jsonl.gz", folder / f"{stem}.work_items.csv"]


def generate(agent: str, folder: Path, *, end: date, days: int = 90, seed: int = 0) -> list[Path]:
    """Write the agent's traces and its work-item export into ``folder``; return the paths.

    The traces are OTLP JSON lines, gzip, as the Collector's file exporter writes them (one
    ``ExportTraceServiceRequest`` a line); the work items a CSV export. Deterministic: the
    same arguments give byte-identical files, and files already written for them are kept
    (the call is then cheap).

    Args:
        agent: one of :data:`AGENTS`.
        folder: where to write (created if missing).
        end: the export date: the history covers the ``days`` days before it.
        days: how many days of history (at least 28).
        seed: seeds every random draw.

    Raises:
        ValueError: an unknown agent or too few days.
        RuntimeError: the OpenTelemetry SDK is disabled (``OTEL_SDK_DISABLED``).
    """
    if agent not in STORIES:
        raise ValueError(f"unknown example agent {agent!r}; one of {', '.join(AGENTS)}")
    if days < 28:
        raise ValueError(f"days={days}: the story needs at least 28 days of history")
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        raise RuntimeError(
            "OTEL_SDK_DISABLED=true turns the OpenTelemetry SDK off, so no trace can be "
            "recorded; unset it to generate the example telemetry"
        )
    traces_path, items_path = paths(agent, folder, end=end, days=days, seed=seed)
    if traces_path.is_file() and items_path.is_file():
        return [traces_path, items_path]
    story = STORIES[agent]
    export_at = datetime.combine(end, time(), tzinfo=UTC)
    first = end - timedelta(days=days)
    rows = io.StringIO()
    writer = csv.writer(rows, lineterminator="\n")
    writer.writerow([*COLUMNS, *story.outcome_columns])
    ids = SeededIds()
    tracer_provider = provider(agent, ids)
    with atomic_open(traces_path, "wb") as raw:
        exporter = CollectorFileExporter(raw)
        tracer_provider.add_span_processor(BatchingSpanProcessor(exporter))
        tracing = Tracing(agent, tracer_provider, ids)
        for index in range(days):
            day = first + timedelta(days=index)
            for item in day_items(story, day, index / (days - 1), seed, export_at):
                writer.writerow(work_item_row(item, story))
                if item.handled:
                    tracing.handle(item)
        tracer_provider.shutdown()
    with atomic_open(items_path, "w") as out:
        out.write(rows.getvalue())
    return [traces_path, items_path]


def generate_all(
    folder: Path,
    *,
    end: date,
    days: int = 90,
    seed: int = 0,
    agents: Sequence[str] = AGENTS,
    workers: int | None = None,
) -> dict[str, list[Path]]:
    """:func:`generate` for several agents, each in its own process when there are cores.

    Args:
        folder: where to write.
        end: the export date.
        days: days of history.
        seed: seeds every random draw.
        agents: which agents (default: all three).
        workers: processes; by default one per agent up to the number of cores. Workers are
            spawned, so a script calling this needs Python's ``if __name__ == "__main__":``
            guard.

    Returns:
        Each agent's paths (traces, work items), in the order of ``agents``.
    """
    for agent in agents:
        if agent not in STORIES:
            raise ValueError(f"unknown example agent {agent!r}; one of {', '.join(AGENTS)}")
    todo = [
        a
        for a in agents
        if not all(p.is_file() for p in paths(a, folder, end=end, days=days, seed=seed))
    ]
    count = min(len(todo), workers or os.cpu_count() or 1)
    if count > 1:
        with ProcessPoolExecutor(count, mp_context=get_context("spawn")) as pool:
            futures = [
                pool.submit(generate, a, folder, end=end, days=days, seed=seed) for a in todo
            ]
            for future in futures:
                future.result()
    return {a: generate(a, folder, end=end, days=days, seed=seed) for a in agents}
