"""The results store: ``samples``, ``runs`` and ``decisions`` as hive-partitioned Parquet.

Layout under the results root (a path, or a URI pyarrow understands)::

    samples/agent=<agent>/date=<YYYY-MM-DD>/<run_id>.parquet
    runs/agent=<agent>/date=<YYYY-MM-DD>/<run_id>.parquet
    decisions/agent=<agent>/date=<YYYY-MM-DD>/<run_id or decision id>.parquet

Files are named by run, so runs never overwrite each other. Each file is written under a
dot-prefixed temporary name (which readers ignore) and renamed into place. A run commits when
its ``runs`` file appears, which is written last: samples whose run never committed are never
read back. See docs/design/storage.md.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from evals.store._records import Decision, MetricRecord, RunRecord, SampleRecord

__all__ = ["DECISIONS_SCHEMA", "RUNS_SCHEMA", "SAMPLES_SCHEMA", "TABLES", "ResultsStore"]

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

TABLES = {"samples": SAMPLES_SCHEMA, "runs": RUNS_SCHEMA, "decisions": DECISIONS_SCHEMA}
"""Every table of the store and its schema (partition columns ``agent`` and ``date`` aside)."""


_RUN_FIELDS = (
    "run_id", "version", "version_hash", "dataset", "dataset_hash", "trigger", "level",
    "started_at", "finished_at", "code_version", "n_cases", "n_cached", "n_resumed",
    "scoring_hash", "baseline_run_id", "contract", "source",
)  # fmt: skip


def _runs_rows(run: RunRecord) -> list[dict[str, Any]]:
    common: dict[str, Any] = {name: getattr(run, name) for name in _RUN_FIELDS}
    common["scoring_hash"] = run.scoring_hash or None
    common["run_verdict"] = run.verdict
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
                verdict=row.get("run_verdict") or "fail",
                metrics=metrics[run_id],
            )
        )
    records.sort(key=lambda r: (r.started_at, r.run_id))
    return records


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
        schema = TABLES[table_name]
        table = pa.Table.from_pylist(rows, schema=schema)
        folder = f"{self.base}/{table_name}/agent={agent}/date={date}"
        self.fs.create_dir(folder, recursive=True)
        final = f"{folder}/{name}.parquet"
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

    def samples(self, runs: RunRecord | Iterable[RunRecord]) -> list[SampleRecord]:
        """The samples of the given committed runs, in stored order.

        Reads only the partitions (agent, date) those runs live in and filters on ``run_id``,
        so a year of nightly runs costs what the few runs asked for cost.
        """
        asked = [runs] if isinstance(runs, RunRecord) else list(runs)
        # Only committed runs have samples: a run's ``runs`` file is its commit point.
        wanted = {r.run_id: r for r in asked if self._committed(r)}
        if not wanted:
            return []
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
            return []
        table = dataset.to_table(filter=pc.field("run_id").isin(list(wanted)))
        return [SampleRecord.from_row(row) for row in table.to_pylist()]

    def _committed(self, run: RunRecord) -> bool:
        path = f"{self.base}/runs/agent={run.agent}/date={run.date}/{run.run_id}.parquet"
        return bool(self.fs.get_file_info(path).type == pafs.FileType.File)

    def decisions(self, agent: str | None = None) -> list[Decision]:
        """The audit trail, oldest first."""
        return [Decision.from_row(row) for row in self.table("decisions", agent).to_pylist()]
