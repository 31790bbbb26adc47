"""``ingest``: telemetry files into the results store, each file once, bad records reported.

Each file is identified by the SHA-256 of its content: a file whose content was ingested
before (its last batch committed) is skipped, whatever its name. Records are read in chunks
of ``chunk_size`` and each chunk is masked and written as one batch, so memory stays bounded
by the chunk, not the file or the number of files. A record that is bad is reported with its
file, line and field and left out; the good records of the same file are kept. See
docs/design/telemetry.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

import pyarrow as pa

from evals.errors import Problem, UserError, display_path
from evals.store import IngestKind, IngestRecord, ResultsStore
from evals.telemetry._mask import TelemetryMasker
from evals.telemetry._names import WORK_ITEM_ATTRIBUTE
from evals.telemetry._otlp import (
    OtlpError,
    json_documents,
    json_line,
    open_maybe_gzip,
    parse_proto,
    proto_messages,
    read_json_request,
    read_proto_request,
)
from evals.telemetry._parallel import WorkerPool, json_blocks, no_cyclic_gc
from evals.telemetry._problems import ProblemLog
from evals.telemetry._spans import SpanTable
from evals.telemetry._workitems import WorkItemMapping, read_work_items

__all__ = ["FORMATS", "FileReport", "Format", "IngestReport", "ingest", "sniff_format"]

Format = Literal["otlp-json", "otlp-proto", "csv", "jsonl", "parquet"]
FORMATS: tuple[str, ...] = get_args(Format)

_BY_SUFFIX: dict[str, Format] = {
    ".csv": "csv",
    ".tsv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".pb": "otlp-proto",
    ".binpb": "otlp-proto",
    ".proto": "otlp-proto",
    ".protobuf": "otlp-proto",
}
_JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
_SNIFF_BYTES = 1 << 16


@dataclass
class FileReport:
    """What ingesting one file did."""

    path: str
    format: str
    status: Literal["ingested", "already ingested", "failed"]
    kind: IngestKind | None = None
    sha256: str | None = None
    records: int = 0
    """Spans or work items stored."""
    rejected: int = 0
    """Spans or rows left out as bad (lines that are not JSON at all are problems only)."""
    duplicates: int = 0
    """Spans given twice in the file (kept once)."""
    agents: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    problem_count: int = 0
    """All problems, including those not kept in ``problems``."""

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``--json``)."""
        return {
            "path": self.path,
            "format": self.format,
            "status": self.status,
            "kind": self.kind,
            "sha256": self.sha256,
            "records": self.records,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "agents": self.agents,
            "problems": [str(p) for p in self.problems],
            "problem_count": self.problem_count,
        }


@dataclass
class IngestReport:
    """What an ingest did, file by file."""

    files: list[FileReport]
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Every file read without a problem."""
        return all(f.status != "failed" and f.problem_count == 0 for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (``--json``)."""
        return {
            "ok": self.ok,
            "files": [f.to_dict() for f in self.files],
            "warnings": [str(w) for w in self.warnings],
        }


def _content_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sniff_format(path: Path) -> Format:
    """The format of a telemetry file: by its name, else by its first bytes.

    ``.json``/``.jsonl``/``.ndjson`` files are OTLP JSON when they hold ``resourceSpans``,
    else work items; a ``.gz`` ending is looked through.

    Raises:
        UserError: the format cannot be told (pass ``--format``).
    """
    name = path.name.lower().removesuffix(".gz")
    suffix = Path(name).suffix
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    with open_maybe_gzip(path) as handle:
        head = handle.read(_SNIFF_BYTES)
    if suffix in _JSON_SUFFIXES or head.lstrip()[:1] in (b"{", b"["):
        if b'"resourceSpans"' in head or b'"resource_spans"' in head:
            return "otlp-json"
        return "jsonl"
    if head[:4] == b"PAR1":
        return "parquet"
    if head and b"\x00" not in head[:512] and b"," in head.split(b"\n", 1)[0]:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return "csv"
    if head and parse_proto_ok(head, path):
        return "otlp-proto"
    raise UserError.single(
        display_path(path),
        "",
        f"cannot tell the format; pass --format ({', '.join(FORMATS)})",
    )


def parse_proto_ok(head: bytes, path: Path) -> bool:
    """Whether the file reads as OTLP protobuf (a message or a length-prefixed stream)."""
    del head
    try:
        with open_maybe_gzip(path) as handle:
            messages = proto_messages(handle.read())
        return any(len(parse_proto(m).resource_spans) for m in messages)
    except OtlpError:
        return False


def ingest(
    paths: Sequence[str | Path],
    results: str | Path,
    *,
    policies: str | Path | None = "policies",
    format: Format | None = None,
    mapping: WorkItemMapping | None = None,
    work_item_attribute: str = WORK_ITEM_ATTRIBUTE,
    chunk_size: int = 20_000,
    masking: TelemetryMasker | None = None,
    workers: int = 1,
) -> IngestReport:
    """Ingest telemetry files into the results store (spans and work items).

    Args:
        paths: the files: OTLP JSON or protobuf traces, work-item exports (CSV, JSON lines,
            Parquet).
        results: the results root.
        policies: the contracts folder, for each agent's masking (``TelemetryMasker``).
        format: the format of every file; sniffed per file when ``None``.
        mapping: which column of a work-item export is which field (common names by
            default).
        work_item_attribute: the span attribute that names a span's work item.
        chunk_size: spans masked and written as one batch (memory holds about two).
        masking: a ready masker (otherwise built from ``policies``).
        workers: processes that decode large OTLP JSON files (``PARALLEL_BYTES`` or more);
            1 reads everything in this process. Workers are spawned, so a script that asks
            for more than one needs Python's ``if __name__ == "__main__":`` guard (the CLI
            asks for one per core, up to four).

    Returns:
        A report per file: stored, rejected and duplicate records, problems.

    Raises:
        UserError: a path is missing or not a file, or a format cannot be told; nothing is
            ingested then.
    """
    files = [Path(p) for p in paths]
    problems = [
        Problem(display_path(p), "", "file not found" if not p.exists() else "is not a file")
        for p in files
        if not p.is_file()
    ]
    if problems:
        raise UserError(problems)
    formats = [format or sniff_format(p) for p in files]
    store = ResultsStore(results)
    masking = masking or TelemetryMasker(policies)
    mapping = mapping or WorkItemMapping()
    large = [
        p for p, f in zip(files, formats, strict=True)
        if f == "otlp-json" and p.stat().st_size >= PARALLEL_BYTES
    ]  # fmt: skip
    pool = WorkerPool(masking, workers) if workers > 1 and large else None
    reports = []
    warnings: list[Problem] = []
    try:
        with no_cyclic_gc():
            for path, fmt in zip(files, formats, strict=True):
                reader = _Reader(store, masking, mapping, work_item_attribute, chunk_size)
                if path in large and pool is not None:
                    reader.pool = pool
                reports.append(reader.ingest(path, fmt))
                warnings.extend(w for w in reader.warnings if w not in warnings)
    finally:
        if pool is not None:
            pool.close()
    warnings.extend(w for w in masking.warnings if w not in warnings)
    return IngestReport(reports, warnings)


class _Reader:
    """Ingests one file at a time into a store (in this process, or with a worker pool)."""

    def __init__(
        self,
        store: ResultsStore,
        masking: TelemetryMasker,
        mapping: WorkItemMapping,
        work_item_attribute: str,
        chunk_size: int,
    ) -> None:
        self.store = store
        self.masking = masking
        self.mapping = mapping
        self.work_item_attribute = work_item_attribute
        self.chunk_size = chunk_size
        self.pool: WorkerPool | None = None
        self.warnings: list[Problem] = []

    def ingest(self, path: Path, fmt: Format) -> FileReport:
        shown = display_path(path)
        digest = _content_hash(path)
        report = FileReport(shown, fmt, "ingested", sha256=digest)
        report.kind = "spans" if fmt.startswith("otlp") else "work_items"
        if self.store.ingested(digest) is not None:
            report.status = "already ingested"
            return report
        log = ProblemLog(shown)
        if report.kind == "work_items":
            rows = read_work_items(path, fmt, self.mapping, log)  # type: ignore[arg-type]
            report.rejected = rows.rejected
            with _BatchWriter(self.store, report) as writer:
                writer.write(rows.to_arrow(self.masking), complete=True)
        elif self.pool is not None and _one_request_a_line(path):
            self._parallel(path, report, log)
        else:
            self._spans(path, fmt, report, log)
        report.problems = log.problems
        report.problem_count = log.count
        if report.records == 0 and log.count:
            report.status = "failed"
        return report

    def _spans(self, path: Path, fmt: Format, report: FileReport, log: ProblemLog) -> None:
        # A chunk is written once the next one starts (or the file ends), so the file's last
        # batch is the one marked complete, even when the file ends on a chunk boundary.
        table = SpanTable(self.work_item_attribute)
        pending: pa.Table | None = None
        with _BatchWriter(self.store, report) as writer:
            for _ in _span_chunks(path, fmt, table, log, report, self.chunk_size):
                if pending is not None:
                    writer.write(pending, complete=False)
                pending = _take(table, report, self.masking)
            if len(table) or pending is None:
                if pending is not None:
                    writer.write(pending, complete=False)
                pending = _take(table, report, self.masking)
            writer.write(pending, complete=True)

    def _parallel(self, path: Path, report: FileReport, log: ProblemLog) -> None:
        assert self.pool is not None
        blocks = json_blocks(path, report.path, self.work_item_attribute, BLOCK_BYTES)
        pending: pa.Table | None = None
        with _BatchWriter(self.store, report) as writer:
            for result in self.pool.map(blocks):
                report.rejected += result.rejected
                report.duplicates += result.duplicates
                log.extend(result.problems, result.problem_count)
                self.warnings.extend(w for w in result.warnings if w not in self.warnings)
                if pending is not None:
                    writer.write(pending, complete=False)
                pending = result.table
            if pending is not None:
                writer.write(pending, complete=True)


class _BatchWriter:
    """Writes a file's batches in order, on one thread beside the one that decodes.

    Writing a batch (sorting it into partitions, encoding and compressing Parquet, the files)
    runs in Arrow with the interpreter lock released, so the next chunk is decoded meanwhile.
    One batch is in flight at most: ``write`` first waits for the one before (and raises its
    error), so batches are committed in file order, the last one marked complete, and memory
    holds what it held when writes were inline.
    """

    def __init__(self, store: ResultsStore, report: FileReport) -> None:
        self.store = store
        self.report = report
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="impactgate-ingest-write")
        self._pending: Future[list[IngestRecord]] | None = None

    def __enter__(self) -> _BatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self._wait()
        finally:
            self._thread.shutdown(wait=True)  # a batch being written is finished, not cut

    def write(self, table: pa.Table, *, complete: bool) -> None:
        """Write ``table`` after the batch before it; counts are taken as of now."""
        self._wait()
        report = self.report
        self._pending = self._thread.submit(
            self.store.write_telemetry,
            report.kind or "spans",
            table,
            source=report.path,
            format=report.format,
            sha256=report.sha256,
            complete=complete,
            rejected=report.rejected,
        )

    def _wait(self) -> None:
        if self._pending is not None:
            records, self._pending = self._pending.result(), None
            _count(self.report, records)


PARALLEL_BYTES = 32 * 1024 * 1024
"""OTLP JSON files this large are decoded by worker processes (when there are cores)."""
BLOCK_BYTES = 16 * 1024 * 1024
"""Bytes of lines a worker decodes at a time."""


def _one_request_a_line(path: Path) -> bool:
    """Whether the file's first line is a JSON document on its own (the Collector's layout)."""
    with open_maybe_gzip(path) as handle:
        for raw in handle:
            if raw.strip():
                return json_line(raw)[1] is None
    return False


def _span_chunks(
    path: Path,
    fmt: Format,
    table: SpanTable,
    log: ProblemLog,
    report: FileReport,
    chunk_size: int,
) -> Iterator[None]:
    """Read spans into ``table``; yield each time it holds ``chunk_size``.

    The caller writes and clears the table before the next span is read.
    """
    if fmt == "otlp-json":
        for line, request, error in json_documents(path):
            where = f"line {line}"
            if error is not None:
                log.add(where, error)
                continue
            try:
                _, rejected = read_json_request(request, table, log, where)
            except OtlpError as exc:
                log.add(where, str(exc))
                continue
            report.rejected += rejected
            if len(table) >= chunk_size:
                yield
    else:
        with open_maybe_gzip(path) as handle:
            messages = proto_messages(handle.read())
        for number, message in enumerate(messages, start=1):
            where = f"message {number}"
            try:
                request = parse_proto(message)
            except OtlpError as exc:
                log.add(where, str(exc))
                continue
            _, rejected = read_proto_request(request, table, log, where)
            report.rejected += rejected
            if len(table) >= chunk_size:
                yield


def _take(table: SpanTable, report: FileReport, masking: TelemetryMasker) -> pa.Table:
    """The spans collected so far as masked Arrow; the table starts afresh."""
    report.duplicates += table.duplicates
    arrow = table.to_arrow(masking)
    table.clear()
    return arrow


def _count(report: FileReport, records: list[IngestRecord]) -> None:
    for record in records:
        report.agents[record.agent] = report.agents.get(record.agent, 0) + record.rows
        report.records += record.rows
