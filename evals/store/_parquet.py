"""The results store: runs, their samples and decisions, and production telemetry, as Parquet.

Layout under the results root (a path, or a URI pyarrow understands)::

    samples/agent=<agent>/date=<YYYY-MM-DD>/<run_id>.parquet
    runs/agent=<agent>/date=<YYYY-MM-DD>/<run_id>.parquet
    decisions/agent=<agent>/date=<YYYY-MM-DD>/<run_id or decision id>.parquet
    spans/agent=<agent>/date=<YYYY-MM-DD>/<batch_id>.parquet
    work_items/agent=<agent>/date=<YYYY-MM-DD>/<batch_id>.parquet
    ingests/agent=<agent>/date=<YYYY-MM-DD>/<batch_id>.parquet
    labels/agent=<agent>/date=<YYYY-MM-DD>/<batch_id>.parquet

Files are named by run or batch, so writers never overwrite each other. On a local disk each
file is written under a dot-prefixed temporary name (which readers ignore) and renamed into
place. An object store (``s3://``, ``gs://``, ``abfs://``) has no atomic rename, and needs
none: each file is serialised whole in memory first and uploaded as one object, which becomes
visible complete or not at all. Either way a file is never seen half-written. A run
commits when its ``runs`` file appears, which is written last: samples whose run never
committed are never read back. A telemetry batch commits the same way when its ``ingests``
rows appear, and rows are deduplicated by key when read. See docs/design/storage.md and
docs/design/telemetry.md.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import secrets
from collections.abc import Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from evals.store._records import (
    Decision,
    IngestKind,
    IngestRecord,
    LabelRecord,
    MetricRecord,
    RunRecord,
    SampleRecord,
    SpanRecord,
    WorkItemRecord,
)

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "DECISIONS_SCHEMA",
    "INGESTS_SCHEMA",
    "LABELS_SCHEMA",
    "RUNS_SCHEMA",
    "SAMPLES_SCHEMA",
    "SPANS_SCHEMA",
    "TABLES",
    "WORK_ITEMS_SCHEMA",
    "ResultsStore",
    "TableWriter",
]

_TS = pa.timestamp("us", tz="UTC")
PARTITIONS = pa.schema([("agent", pa.string()), ("date", pa.string())])

SAMPLES_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("version", pa.string()),
        ("case_id", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("passed", pa.bool_()),
        ("explanation", pa.string()),
        ("evidence", pa.string()),
        ("output", pa.string()),
        ("latency_s", pa.float64()),
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("error", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("model", pa.string()),
        ("attempts", pa.int64()),
        ("usage_counted", pa.bool_()),
        ("cached", pa.bool_()),
        ("tool_calls", pa.string()),
    ]
)

_BULKY_SAMPLE_COLUMNS = frozenset({"evidence", "output", "tool_calls"})
"""Sample columns a light read (:meth:`ResultsStore.iter_samples`) leaves out."""

RUNS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("version", pa.string()),
        ("version_hash", pa.string()),
        ("dataset", pa.string()),
        ("dataset_hash", pa.string()),
        ("trigger", pa.string()),
        ("level", pa.string()),
        ("started_at", _TS),
        ("finished_at", _TS),
        ("code_version", pa.string()),
        ("n_cases", pa.int64()),
        ("n_cached", pa.int64()),
        ("n_resumed", pa.int64()),
        ("scoring_hash", pa.string()),
        ("baseline_run_id", pa.string()),
        ("contract", pa.string()),
        ("source", pa.string()),
        ("production", pa.string()),
        ("run_verdict", pa.string()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("low", pa.float64()),
        ("high", pa.float64()),
        ("n", pa.int64()),
        ("n_errors", pa.int64()),
        ("method", pa.string()),
        ("confidence", pa.float64()),
        ("note", pa.string()),
        ("gated", pa.bool_()),
        ("threshold_direction", pa.string()),
        ("threshold", pa.float64()),
        ("verdict", pa.string()),
        ("reason", pa.string()),
        ("rollback_metric", pa.bool_()),
        ("calibration", pa.string()),
    ]
)

DECISIONS_SCHEMA = pa.schema(
    [
        ("decision_id", pa.string()),
        ("run_id", pa.string()),
        ("kind", pa.string()),
        ("at", _TS),
        ("level_before", pa.string()),
        ("level_after", pa.string()),
        ("version_before", pa.string()),
        ("version_after", pa.string()),
        ("metrics", pa.list_(pa.string())),
        ("reason", pa.string()),
        ("actor", pa.string()),
        ("approved_by", pa.string()),
        ("notifications", pa.list_(pa.string())),
        ("details", pa.string()),
    ]
)

SPANS_SCHEMA = pa.schema(
    [
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("parent_span_id", pa.string()),
        ("name", pa.string()),
        ("kind", pa.string()),
        ("start", _TS),
        ("end", _TS),
        ("duration_s", pa.float64()),
        ("status", pa.string()),
        ("status_message", pa.string()),
        ("error_type", pa.string()),
        ("service", pa.string()),
        ("operation", pa.string()),
        ("openinference_kind", pa.string()),
        ("model", pa.string()),
        ("provider", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("conversation_id", pa.string()),
        ("tool_name", pa.string()),
        ("tool_arguments", pa.string()),
        ("input_text", pa.string()),
        ("output_text", pa.string()),
        ("messages", pa.string()),
        ("documents", pa.list_(pa.string())),
        ("work_item_id", pa.string()),
        ("attributes", pa.string()),
        ("resource", pa.string()),
        ("events", pa.string()),
        ("batch_id", pa.string()),
        ("ingested_at", _TS),
    ]
)

WORK_ITEMS_SCHEMA = pa.schema(
    [
        ("work_item_id", pa.string()),
        ("opened_at", _TS),
        ("closed_at", _TS),
        ("updated_at", _TS),
        ("resolved_by", pa.string()),
        ("escalated", pa.bool_()),
        ("reopened", pa.bool_()),
        ("outcomes", pa.string()),
        ("seq", pa.int64()),
        ("batch_id", pa.string()),
        ("ingested_at", _TS),
    ]
)

LABELS_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("kind", pa.string()),
        ("run_id", pa.string()),
        ("case_id", pa.string()),
        ("version", pa.string()),
        ("question", pa.string()),
        ("contexts", pa.list_(pa.string())),
        ("answer", pa.string()),
        ("judge", pa.string()),
        ("judge_score", pa.float64()),
        ("judge_flag", pa.bool_()),
        ("label", pa.int64()),
        ("note", pa.string()),
        ("labelled_by", pa.string()),
        ("labelled_at", _TS),
        ("batch_id", pa.string()),
        ("source", pa.string()),
    ]
)

INGESTS_SCHEMA = pa.schema(
    [
        ("batch_id", pa.string()),
        ("kind", pa.string()),
        ("source", pa.string()),
        ("format", pa.string()),
        ("sha256", pa.string()),
        ("complete", pa.bool_()),
        ("rows", pa.int64()),
        ("rejected", pa.int64()),
        ("agents", pa.list_(pa.string())),
        ("at", _TS),
    ]
)

TABLES = {
    "samples": SAMPLES_SCHEMA,
    "runs": RUNS_SCHEMA,
    "decisions": DECISIONS_SCHEMA,
    "spans": SPANS_SCHEMA,
    "work_items": WORK_ITEMS_SCHEMA,
    "ingests": INGESTS_SCHEMA,
    "labels": LABELS_SCHEMA,
}
"""Every table of the store and its schema (partition columns ``agent`` and ``date`` aside)."""

TELEMETRY_KEYS: dict[IngestKind, tuple[str, ...]] = {
    "spans": ("trace_id", "span_id"),
    "work_items": ("work_item_id",),
}
"""The key each telemetry table is deduplicated by when read (docs/design/telemetry.md)."""

_STAMPED = ("batch_id", "ingested_at")  # filled in by the store when it writes a batch


_RUN_FIELDS = (
    "run_id", "version", "version_hash", "dataset", "dataset_hash", "trigger", "level",
    "started_at", "finished_at", "code_version", "n_cases", "n_cached", "n_resumed",
    "scoring_hash", "baseline_run_id", "contract", "source",
)  # fmt: skip


def _runs_rows(run: RunRecord) -> list[dict[str, Any]]:
    common: dict[str, Any] = {name: getattr(run, name) for name in _RUN_FIELDS}
    common["scoring_hash"] = run.scoring_hash or None
    common["run_verdict"] = run.verdict
    common["production"] = (
        json.dumps(run.production, default=str) if run.production is not None else None
    )
    return [
        common
        | {
            "metric": m.metric,
            "value": m.value,
            "low": m.low,
            "high": m.high,
            "n": m.n,
            "n_errors": m.n_errors,
            "method": m.method,
            "confidence": m.confidence,
            "note": m.note,
            "gated": m.gated,
            "threshold_direction": m.direction,
            "threshold": m.threshold,
            "verdict": m.verdict,
            "reason": m.reason,
            "rollback_metric": m.rollback,
            "calibration": json.dumps(run.calibration) if run.calibration else None,
        }
        for m in run.metrics.values()
    ]


def _runs_from_rows(rows: Iterable[dict[str, Any]]) -> list[RunRecord]:
    """Group ``runs`` rows (one per run × metric) into records, oldest first."""
    heads: dict[str, dict[str, Any]] = {}
    metrics: dict[str, dict[str, MetricRecord]] = {}
    for row in rows:
        run_id = row["run_id"]
        if run_id not in heads:
            heads[run_id] = row
            metrics[run_id] = {}
        direction = row.get("threshold_direction")
        metrics[run_id][row["metric"]] = MetricRecord(
            metric=row["metric"],
            value=row.get("value"),
            low=row.get("low"),
            high=row.get("high"),
            n=row.get("n") or 0,
            n_errors=row.get("n_errors") or 0,
            method=row.get("method"),
            confidence=row.get("confidence"),
            note=row.get("note"),
            gated=bool(row.get("gated")),
            direction=direction if direction in ("min", "max") else None,
            threshold=row.get("threshold"),
            verdict=row.get("verdict"),
            reason=row.get("reason"),
            rollback=bool(row.get("rollback_metric")),
        )
    records = []
    for run_id, row in heads.items():
        if row.get("started_at") is None:
            continue  # a row without a start time cannot be placed anywhere
        records.append(
            RunRecord(
                run_id=run_id,
                agent=row["agent"],
                version=row.get("version") or "?",
                version_hash=row.get("version_hash") or "",
                dataset=row.get("dataset") or "",
                dataset_hash=row.get("dataset_hash") or "",
                trigger=row.get("trigger") or "manual",
                level=row.get("level") or "",
                started_at=row["started_at"],
                finished_at=row.get("finished_at"),
                code_version=row.get("code_version"),
                n_cases=row.get("n_cases") or 0,
                n_cached=row.get("n_cached") or 0,
                n_resumed=row.get("n_resumed") or 0,
                scoring_hash=row.get("scoring_hash"),
                baseline_run_id=row.get("baseline_run_id") or None,
                contract=row.get("contract") or "",
                source=row.get("source") or "golden",
                production=json.loads(row["production"]) if row.get("production") else None,
                verdict=row.get("run_verdict") or "fail",
                metrics=metrics[run_id],
                calibration=json.loads(row["calibration"]) if row.get("calibration") else None,
            )
        )
    records.sort(key=lambda r: (r.started_at, r.run_id))
    return records


class TableWriter:
    """Rows appended to one new file of a table in row groups, visible only once committed.

    The file is written under a dot-prefixed temporary name, which readers ignore, then moved
    into place: a rename on a local disk; on an object store (no rename) a server-side copy,
    which makes the object appear whole, and a delete of the temporary one. A writer that is
    aborted, or a process that dies, leaves nothing a reader sees.
    """

    def __init__(
        self, fs: pafs.FileSystem, folder: str, name: str, schema: pa.Schema, *, local: bool
    ) -> None:
        self.fs, self.schema = fs, schema
        self.final = f"{folder}/{name}.parquet"
        self._temporary = f"{folder}/.{name}.{secrets.token_hex(4)}.tmp"
        if local:
            fs.create_dir(folder, recursive=True)
        self._stream = fs.open_output_stream(self._temporary)
        self._writer: pq.ParquetWriter | None = pq.ParquetWriter(self._stream, schema)
        self.rows = 0

    def write(self, rows: Sequence[dict[str, Any]]) -> None:
        """Append rows (one row group, unless they are none)."""
        if self._writer is None:
            raise RuntimeError("the writer was committed or aborted")
        if rows:
            self._writer.write_table(pa.Table.from_pylist(list(rows), schema=self.schema))
            self.rows += len(rows)

    def commit(self) -> str:
        """Finish the file and move it into place; returns its path."""
        if self._writer is None:
            raise RuntimeError("the writer was committed or aborted")
        writer, self._writer = self._writer, None
        try:
            writer.close()
            self._stream.close()
            self.fs.move(self._temporary, self.final)
        except BaseException:
            self._discard()
            raise
        return self.final

    def abort(self) -> None:
        """Drop what was written (nothing becomes visible)."""
        writer, self._writer = self._writer, None
        with contextlib.suppress(Exception):
            if writer is not None:
                writer.close()
            self._stream.close()
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(OSError, FileNotFoundError):
            self.fs.delete_file(self._temporary)


class ResultsStore:
    """Read and write the tables under one results root, as typed records.

    ``table(name)`` gives the raw Arrow view of a table for analysis (a notebook, DuckDB);
    the engine itself only uses the typed readers.
    """

    def __init__(self, root: str | Path) -> None:
        text = str(root)
        if "://" in text:
            self.fs, self.base = pafs.FileSystem.from_uri(text)
            self.local_root: Path | None = None
        else:
            self.local_root = Path(text).resolve()
            self.fs, self.base = pafs.LocalFileSystem(), self.local_root.as_posix()
        self.root = text

    # -- writing --------------------------------------------------------------------------

    def _write(
        self, table_name: str, agent: str, date: str, name: str, rows: list[dict[str, Any]]
    ) -> str:
        table = pa.Table.from_pylist(rows, schema=TABLES[table_name])
        return self._write_table(table_name, agent, date, name, table)

    def _write_table(
        self, table_name: str, agent: str, date: str, name: str, table: pa.Table
    ) -> str:
        folder = f"{self.base}/{table_name}/agent={agent}/date={date}"
        final = f"{folder}/{name}.parquet"
        if self.local_root is None:
            # An object store: no rename. Serialise the whole file first (a failure leaves
            # nothing behind), then upload it as one object: a PUT, or a multipart upload that
            # the store only shows once it completes. The commit record (``runs``, ``ingests``)
            # is uploaded after the data, so readers never see a run's samples without it.
            sink = pa.BufferOutputStream()
            pq.write_table(table, sink)
            data = sink.getvalue()
            with self.fs.open_output_stream(final) as stream:
                stream.write(data)
            return final
        self.fs.create_dir(folder, recursive=True)
        temporary = f"{folder}/.{name}.{secrets.token_hex(4)}.tmp"
        try:
            pq.write_table(table, temporary, filesystem=self.fs)
            self.fs.move(temporary, final)
        except BaseException:
            with contextlib.suppress(OSError, FileNotFoundError):
                self.fs.delete_file(temporary)
            raise
        return final

    def write_run(self, run: RunRecord, samples: Sequence[SampleRecord]) -> None:
        """Write a run's samples, then its ``runs`` rows (the commit point)."""
        self._write("samples", run.agent, run.date, run.run_id, [s.to_row() for s in samples])
        self.commit_run(run)

    def open_samples(self, agent: str, date: str, run_id: str) -> TableWriter:
        """A writer that appends a run's samples batch by batch (a streamed run).

        Its file is only visible once :meth:`TableWriter.commit` is called; the run itself
        commits after that, with :meth:`commit_run`.
        """
        folder = f"{self.base}/samples/agent={agent}/date={date}"
        return TableWriter(
            self.fs, folder, run_id, SAMPLES_SCHEMA, local=self.local_root is not None
        )

    def commit_run(self, run: RunRecord) -> None:
        """Write a run's ``runs`` rows: the commit point, once its samples are written."""
        self._write("runs", run.agent, run.date, run.run_id, _runs_rows(run))

    def write_decisions(self, decisions: Sequence[Decision]) -> None:
        """Append decisions (one file per agent and batch)."""
        by_agent: dict[str, list[Decision]] = {}
        for decision in decisions:
            by_agent.setdefault(decision.agent, []).append(decision)
        for agent, batch in by_agent.items():
            first = batch[0]
            name = f"{first.at.strftime('%Y%m%dT%H%M%SZ')}-{first.decision_id}"
            self._write(
                "decisions",
                agent,
                first.at.strftime("%Y-%m-%d"),
                name,
                [d.to_row() for d in batch],
            )

    def write_labels(self, labels: Sequence[LabelRecord]) -> None:
        """Append one import of labels (one file per agent, renamed into place: all or none)."""
        by_agent: dict[str, list[LabelRecord]] = {}
        for record in labels:
            by_agent.setdefault(record.agent, []).append(record)
        for agent, batch in by_agent.items():
            first = batch[0]
            self._write("labels", agent, first.date, first.batch_id, [r.to_row() for r in batch])

    def labels(self, agent: str, kind: str | None = None) -> list[LabelRecord]:
        """An agent's current labels: the newest of each item, in item order."""
        rows = self.table("labels", agent).to_pylist()
        newest: dict[str, LabelRecord] = {}
        for record in sorted(
            (LabelRecord.from_row(r) for r in rows), key=lambda r: (r.labelled_at, r.batch_id)
        ):
            newest[record.item_id] = record
        return [newest[k] for k in sorted(newest) if kind is None or newest[k].kind == kind]

    def write_telemetry(
        self,
        kind: IngestKind,
        rows: pa.Table | Sequence[SpanRecord] | Sequence[WorkItemRecord],
        *,
        source: str,
        format: str,
        sha256: str | None = None,
        complete: bool = True,
        rejected: int = 0,
        at: datetime | None = None,
    ) -> list[IngestRecord]:
        """Write one batch of spans or work items, then its ``ingests`` records (the commit).

        Args:
            kind: ``spans`` or ``work_items``.
            rows: records, or an Arrow table with the table's columns plus ``agent`` and
                ``date`` (the partition); ``batch_id`` and ``ingested_at`` are filled in here.
            source: the file as given, or ``otlp-http``.
            format: the format it was read as.
            sha256: the file's content hash, so the same file is ingested once.
            complete: this is the file's last batch.
            rejected: records of the source that were bad and left out.
            at: the ingest time (now by default).

        Returns:
            The batch's ``ingests`` records, one per agent (none for an empty batch).
        """
        at = at or datetime.now(UTC)
        batch_id = f"{at.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(6)}"
        schema = TABLES[kind]
        if not isinstance(rows, pa.Table):
            rows = pa.Table.from_pylist([r.to_row() for r in rows])
        if rows.num_rows == 0:
            return []
        n = rows.num_rows
        stamped = {
            "batch_id": pa.repeat(pa.scalar(batch_id), n),
            "ingested_at": pa.repeat(pa.scalar(at, type=schema.field("ingested_at").type), n),
        }
        columns = [
            stamped[f.name] if f.name in _STAMPED else rows.column(f.name).cast(f.type)
            for f in schema
        ]
        data = pa.Table.from_arrays(columns, schema=schema)
        partitioned = rows.select(["agent", "date"]).append_column("_i", pa.array(range(n)))
        partitioned = partitioned.sort_by([("agent", "ascending"), ("date", "ascending")])
        order = partitioned.column("_i")
        keys = zip(
            partitioned.column("agent").to_pylist(),
            partitioned.column("date").to_pylist(),
            strict=True,
        )
        counts: dict[str, int] = {}
        offset = 0
        for (agent, date), group in itertools.groupby(keys):
            size = sum(1 for _ in group)
            indices = order.slice(offset, size)
            offset += size
            self._write_table(kind, agent, date, batch_id, data.take(indices))
            counts[agent] = counts.get(agent, 0) + size
        agents = tuple(sorted(counts))
        records = [
            IngestRecord(
                batch_id=batch_id,
                agent=agent,
                kind=kind,
                source=source,
                format=format,
                sha256=sha256,
                complete=complete,
                rows=count,
                rejected=rejected,
                agents=agents,
                at=at,
            )
            for agent, count in sorted(counts.items())
        ]
        for record in records:  # the batch is visible once every agent's record is written
            self._write("ingests", record.agent, record.date, batch_id, [record.to_row()])
        return records

    # -- reading --------------------------------------------------------------------------

    def _dataset(self, table_name: str, files: list[str] | None = None) -> ds.Dataset | None:
        schema = pa.unify_schemas([TABLES[table_name], PARTITIONS])
        folder = f"{self.base}/{table_name}"
        if self.fs.get_file_info(folder).type == pafs.FileType.NotFound:
            return None
        if files is not None and not files:
            return None
        return ds.dataset(
            files if files is not None else folder,
            schema=schema,
            format="parquet",
            filesystem=self.fs,
            partitioning=ds.partitioning(PARTITIONS, flavor="hive"),
            partition_base_dir=folder if files is not None else None,
        )

    def table(self, name: str, agent: str | None = None) -> pa.Table:
        """The raw Arrow table (with ``agent`` and ``date``), for analysis outside the engine.

        ``samples`` holds rows of committed runs only.
        """
        if name not in TABLES:
            raise ValueError(f"no table {name!r}; tables: {', '.join(TABLES)}")
        dataset = self._dataset(name)
        if dataset is None:
            return pa.unify_schemas([TABLES[name], PARTITIONS]).empty_table()
        expression = pc.field("agent") == agent if agent is not None else None
        table = dataset.to_table(filter=expression)
        if name == "samples":
            committed = pc.unique(self.table("runs", agent).column("run_id"))
            table = table.filter(pc.is_in(table.column("run_id"), value_set=committed))
        elif name == "decisions":
            table = table.sort_by("at")
        elif name in TELEMETRY_KEYS:
            batches = pa.array(sorted(self.committed_batches()), pa.string())
            table = table.filter(pc.is_in(table.column("batch_id"), value_set=batches))
        elif name == "ingests":
            table = table.sort_by([("at", "ascending"), ("batch_id", "ascending")])
        return table

    def runs(self, agent: str | None = None) -> list[RunRecord]:
        """Committed runs (of one agent, or all), oldest first."""
        return _runs_from_rows(self.table("runs", agent).to_pylist())

    def run(self, run_id: str, agent: str | None = None) -> RunRecord | None:
        """One committed run, or ``None``."""
        dataset = self._dataset("runs")
        if dataset is None:
            return None
        expression = pc.field("run_id") == run_id
        if agent is not None:
            expression = expression & (pc.field("agent") == agent)
        records = _runs_from_rows(dataset.to_table(filter=expression).to_pylist())
        return records[0] if records else None

    def samples(
        self, runs: RunRecord | Iterable[RunRecord], *, case_ids: Collection[str] | None = None
    ) -> list[SampleRecord]:
        """The samples of the given committed runs (of ``case_ids`` only), in stored order.

        Reads only the partitions (agent, date) those runs live in and filters on ``run_id``,
        so a year of nightly runs costs what the few runs asked for cost.
        """
        return [sample for batch in self.iter_samples(runs, case_ids=case_ids) for sample in batch]

    def iter_samples(
        self,
        runs: RunRecord | Iterable[RunRecord],
        batch_size: int = 10_000,
        *,
        case_ids: Collection[str] | None = None,
        light: bool = False,
    ) -> Iterator[list[SampleRecord]]:
        """:meth:`samples`, at most ``batch_size`` at a time (a large run is never held whole).

        A run's samples are stored case by case, each case's together, in dataset order.

        Args:
            runs: the runs whose samples to read.
            batch_size: samples per batch at most.
            case_ids: only these cases' samples (default: every case's).
            light: leave out the bulky columns (``evidence``, ``output``, ``tool_calls``): what
                counts or finds cases needs only the values and verdicts, and parsing every
                case's evidence would cost a large run's reader far more than the rest.
        """
        asked = [runs] if isinstance(runs, RunRecord) else list(runs)
        # Only committed runs have samples: a run's ``runs`` file is its commit point.
        wanted = {r.run_id: r for r in asked if self._committed(r)}
        if not wanted:
            return
        folder = f"{self.base}/samples"
        files: list[str] = []
        for agent, date in sorted({(r.agent, r.date) for r in wanted.values()}):
            selector = pafs.FileSelector(
                f"{folder}/agent={agent}/date={date}", allow_not_found=True
            )
            files.extend(
                info.path
                for info in self.fs.get_file_info(selector)
                if info.type == pafs.FileType.File
                and info.base_name.endswith(".parquet")
                and not info.base_name.startswith((".", "_"))
            )
        dataset = self._dataset("samples", files)
        if dataset is None:
            return
        expression = pc.field("run_id").isin(list(wanted))
        if case_ids is not None:
            expression = expression & pc.field("case_id").isin(list(case_ids))
        columns = (
            [name for name in dataset.schema.names if name not in _BULKY_SAMPLE_COLUMNS]
            if light
            else None
        )
        # One batch read ahead, one file at a time, in the C allocator's memory: Arrow's
        # default pool (mimalloc) kept what each batch had used, so reading a 100,000-case
        # run back (the run's summary does) grew the process by hundreds of MB for good.
        for batch in dataset.to_batches(
            columns=columns,
            filter=expression,
            batch_size=batch_size,
            batch_readahead=1,
            fragment_readahead=1,
            memory_pool=pa.system_memory_pool(),
        ):
            if batch.num_rows:
                yield [SampleRecord.from_row(row) for row in batch.to_pylist()]

    def _committed(self, run: RunRecord) -> bool:
        path = f"{self.base}/runs/agent={run.agent}/date={run.date}/{run.run_id}.parquet"
        return bool(self.fs.get_file_info(path).type == pafs.FileType.File)

    def decisions(self, agent: str | None = None) -> list[Decision]:
        """The audit trail, oldest first."""
        return [Decision.from_row(row) for row in self.table("decisions", agent).to_pylist()]

    # -- telemetry ------------------------------------------------------------------------

    def ingests(self, agent: str | None = None) -> list[IngestRecord]:
        """Every agent's share of every telemetry batch written, oldest first.

        A batch whose writer died before recording every agent is listed but not committed
        (see :meth:`committed_batches`).
        """
        return [IngestRecord.from_row(row) for row in self.table("ingests", agent).to_pylist()]

    def committed_batches(self) -> set[str]:
        """Batches with an ``ingests`` record for every agent they wrote: the visible ones."""
        seen: dict[str, set[str]] = {}
        wanted: dict[str, set[str]] = {}
        for record in self.ingests():
            seen.setdefault(record.batch_id, set()).add(record.agent)
            wanted.setdefault(record.batch_id, set()).update(record.agents)
        return {batch for batch, agents in seen.items() if agents >= wanted[batch]}

    def ingested(self, sha256: str) -> IngestRecord | None:
        """The record of the committed last batch of a file with this content, or ``None``."""
        committed = self.committed_batches()
        for record in self.ingests():
            if record.sha256 == sha256 and record.complete and record.batch_id in committed:
                return record
        return None

    def files(self, table_name: str) -> list[str]:
        """The Parquet files of a table (temporary files left out), for a query engine."""
        folder = f"{self.base}/{table_name}"
        selector = pafs.FileSelector(folder, recursive=True, allow_not_found=True)
        return sorted(
            info.path
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File
            and info.base_name.endswith(".parquet")
            and not info.base_name.startswith((".", "_"))
        )

    def connect(self) -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with the views ``spans``, ``work_items`` and ``ingests``.

        ``spans`` and ``work_items`` hold the rows of committed batches, one per key (see
        :func:`evals.store.connect_telemetry`).
        """
        from evals.store._duckdb import connect

        return connect(self)

    def spans(
        self,
        agent: str | None = None,
        *,
        trace_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[SpanRecord]:
        """Stored spans, each once, by start time.

        Args:
            agent: one agent's spans only.
            trace_id: one trace's spans only.
            since: spans that started at or after this time.
            until: spans that started before this time.
        """
        where, params = _where(agent=agent, trace_id=trace_id)
        if since is not None:
            where.append("start >= ?")
            params.append(since)
        if until is not None:
            where.append("start < ?")
            params.append(until)
        sql = "SELECT * FROM spans"
        sql += f" WHERE {' AND '.join(where)}" if where else ""
        with self.connect() as con:
            query = con.sql(sql + " ORDER BY start, trace_id, span_id", params=params)
            rows = query.to_arrow_table().to_pylist()
        return [SpanRecord.from_row(row) for row in rows]

    def work_items(self, agent: str | None = None) -> list[WorkItemRecord]:
        """Stored work items as last exported, each once, by opening time."""
        where, params = _where(agent=agent)
        sql = "SELECT * FROM work_items"
        sql += f" WHERE {' AND '.join(where)}" if where else ""
        with self.connect() as con:
            query = con.sql(sql + " ORDER BY opened_at, work_item_id", params=params)
            rows = query.to_arrow_table().to_pylist()
        return [WorkItemRecord.from_row(row) for row in rows]


def _where(**equal: str | None) -> tuple[list[str], list[Any]]:
    names = [f"{name} = ?" for name, value in equal.items() if value is not None]
    return names, [value for value in equal.values() if value is not None]
