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
import json
import secrets
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from evals.decisions import Decision

if TYPE_CHECKING:
    # Only for annotations: evals.runs imports the store (journal, output cache).
    from evals.runs import RunResult

__all__ = ["DECISIONS_SCHEMA", "RUNS_SCHEMA", "SAMPLES_SCHEMA", "ResultsStore"]

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

_SCHEMAS = {"samples": SAMPLES_SCHEMA, "runs": RUNS_SCHEMA, "decisions": DECISIONS_SCHEMA}


def _samples_rows(result: RunResult) -> list[dict[str, Any]]:
    rows = []
    for case_result in result.cases:
        case, output = case_result.case, case_result.output
        usage = output.usage
        common = {
            "run_id": result.info.run_id,
            "version": result.info.version.label,
            "case_id": case.id,
            "output": output.text,
            "latency_s": output.latency_s,
            "prompt_tokens": usage.prompt_tokens if usage else None,
            "completion_tokens": usage.completion_tokens if usage else None,
            "cost_usd": output.cost_usd,
            "tags": list(case.tags),
            "model": output.model,
            "attempts": output.attempts,
            "usage_counted": output.usage_counted,
            "cached": output.cached,
            "tool_calls": json.dumps(output.tool_calls, default=str) if output.tool_calls else None,
        }
        for metric, score in case_result.scores.items():
            rows.append(
                common
                | {
                    "metric": metric,
                    "value": score.value,
                    "passed": score.passed,
                    "explanation": score.explanation,
                    "evidence": json.dumps(score.metadata, default=str) if score.metadata else None,
                    "error": score.error,
                }
            )
        if not case_result.scores:
            rows.append(common | {"metric": "call", "error": output.error})
    return rows


def _runs_rows(result: RunResult) -> list[dict[str, Any]]:
    info = result.info
    gates = {g.metric: g for g in result.gates}
    common = {
        "run_id": info.run_id,
        "version": info.version.label,
        "version_hash": info.version.hash,
        "dataset": info.dataset,
        "dataset_hash": info.dataset_hash,
        "trigger": info.trigger,
        "level": info.level,
        "started_at": info.started_at,
        "finished_at": info.finished_at,
        "code_version": info.code_version,
        "n_cases": len(result.cases),
        "n_cached": info.n_cached,
        "n_resumed": info.n_resumed,
        "scoring_hash": info.scoring_hash or None,
        "baseline_run_id": info.baseline_run_id,
        "run_verdict": str(result.verdict),
    }
    rows = []
    names = list(dict.fromkeys([*result.metrics, *gates]))
    for name in names:
        metric = result.metrics.get(name)
        gate = gates.get(name)
        rows.append(
            common
            | {
                "metric": name,
                "value": metric.value if metric else None,
                "low": metric.low if metric else None,
                "high": metric.high if metric else None,
                "n": metric.n if metric else 0,
                "n_errors": metric.n_errors if metric else 0,
                "method": metric.method if metric else None,
                "confidence": metric.confidence if metric else None,
                "note": metric.note if metric else None,
                "gated": gate is not None,
                "threshold_direction": gate.threshold.direction if gate else None,
                "threshold": gate.threshold.bound if gate else None,
                "verdict": str(gate.verdict) if gate else None,
                "reason": gate.reason if gate else None,
                "rollback_metric": gate.rollback if gate else False,
            }
        )
    return rows


def _decision_row(decision: Decision) -> dict[str, Any]:
    row = asdict(decision)
    row.pop("agent")
    # The notification payload was sent; the decision's own fields already say what it held.
    details = {k: v for k, v in decision.details.items() if k != "payload"}
    row["details"] = json.dumps(details, default=str) if details else None
    return row


class ResultsStore:
    """Read and write the three tables under one results root."""

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
        schema = _SCHEMAS[table_name]
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

    def write_run(self, result: RunResult) -> None:
        """Write a run's samples, then its runs rows (the commit point)."""
        info = result.info
        date = info.started_at.strftime("%Y-%m-%d")
        self._write("samples", info.agent, date, info.run_id, _samples_rows(result))
        self._write("runs", info.agent, date, info.run_id, _runs_rows(result))

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
                [_decision_row(d) for d in batch],
            )

    # -- reading --------------------------------------------------------------------------

    def _read(self, table_name: str, agent: str | None) -> pa.Table:
        schema = pa.unify_schemas([_SCHEMAS[table_name], PARTITIONS])
        folder = f"{self.base}/{table_name}"
        if self.fs.get_file_info(folder).type == pafs.FileType.NotFound:
            return schema.empty_table()
        dataset = ds.dataset(
            folder,
            schema=schema,
            format="parquet",
            filesystem=self.fs,
            partitioning=ds.partitioning(PARTITIONS, flavor="hive"),
        )
        expression = pc.field("agent") == agent if agent is not None else None
        return dataset.to_table(filter=expression)

    def runs(self, agent: str | None = None) -> pa.Table:
        """Committed runs, one row per run × metric."""
        return self._read("runs", agent)

    def samples(self, agent: str | None = None, run_id: str | None = None) -> pa.Table:
        """Samples of committed runs only, one row per case × metric."""
        table = self._read("samples", agent)
        committed = pc.unique(self.runs(agent).column("run_id"))
        mask = pc.is_in(table.column("run_id"), value_set=committed)
        if run_id is not None:
            mask = pc.and_(mask, pc.equal(table.column("run_id"), run_id))
        return table.filter(mask)

    def decisions(self, agent: str | None = None) -> pa.Table:
        """The audit trail, oldest first."""
        return self._read("decisions", agent).sort_by("at")
