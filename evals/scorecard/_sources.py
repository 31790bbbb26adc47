"""The contract's telemetry sources, ingested before every run.

A ``files`` source is a path or glob relative to the project root; a ``python`` source is a
function that writes telemetry files (an exporter's output, a ticketing export) into a cache
folder and returns their paths. Either way the files go through :func:`evals.telemetry.ingest`,
which skips a file whose content was ingested before and counts a span or a work item once,
so a rerun adds nothing.
"""

from __future__ import annotations

import importlib
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from evals.contract import Contract, PythonSource
from evals.errors import UserError, display_path
from evals.store import ResultsStore
from evals.telemetry import IngestReport, ingest

__all__ = ["refresh", "source_paths"]


def _cache(results: str | Path, agent: str) -> Path:
    """Where a python source writes: ``<results>/cache/telemetry/<agent>``.

    A local temporary folder when the results live in an object store.
    """
    root = ResultsStore(results).local_root
    base = root / "cache" if root is not None else Path(tempfile.gettempdir()) / "impactgate"
    folder = base / "telemetry" / agent
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _call(
    contract: Contract, index: int, source: PythonSource, folder: Path, end: date
) -> list[Path]:
    field = f"telemetry.sources.{index}.function"
    where = contract.where(field)
    module_name, _, attribute = source.function.partition(":")
    root = str(contract.root)
    added = root not in sys.path
    if added:
        sys.path.insert(0, root)
    try:
        try:
            function = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError) as exc:
            raise UserError.single(
                where,
                field,
                f"cannot import '{source.function}' from {display_path(contract.root)}: {exc}",
            ) from None
        try:
            returned = function(folder=folder, end=end, **source.params)
        except TypeError as exc:
            raise UserError.single(
                where, field,
                f"'{source.function}' does not take folder=, end= and the params given: {exc}",
            ) from None  # fmt: skip
    finally:
        if added:
            sys.path.remove(root)
    if isinstance(returned, (str, Path)):
        returned = [returned]
    try:
        paths = [Path(p) for p in returned]
    except TypeError:
        raise UserError.single(
            where,
            field,
            f"'{source.function}' must return a list of paths, got {type(returned).__name__}",
        ) from None
    return paths


def source_paths(
    contract: Contract, results: str | Path, *, today: date | None = None
) -> list[Path]:
    """The files the contract's telemetry sources name (python sources are called now).

    Raises:
        UserError: a path or glob matches no file, leads outside the project, or a python
            source cannot be imported, called, or returns something other than paths.
    """
    telemetry = contract.telemetry
    if telemetry is None:
        return []
    end = today or datetime.now(UTC).date()
    found: list[Path] = []
    for i, source in enumerate(telemetry.sources):
        if isinstance(source, PythonSource):
            found += _call(contract, i, source, _cache(results, contract.agent), end)
            continue
        if any(c in source.path for c in "*?["):
            matched = sorted(p for p in contract.root.glob(source.path) if p.is_file())
        else:
            path = contract.resolve(source.path)
            matched = [path] if path.is_file() else []
        if not matched:
            field = f"telemetry.sources.{i}.path"
            raise UserError.single(
                contract.where(field),
                field,
                f"'{source.path}' matches no file under {display_path(contract.root)}",
            )
        found += matched
    return list(dict.fromkeys(found))


def refresh(
    contract: Contract, results: str | Path, *, today: date | None = None
) -> IngestReport | None:
    """Ingest the contract's telemetry sources into ``results``; ``None`` without any.

    Idempotent: a file ingested before (by content) is skipped, and a span or work item
    stored twice is read back once.
    """
    paths = source_paths(contract, results, today=today)
    if not paths:
        return None
    telemetry = contract.telemetry
    assert telemetry is not None
    return ingest(
        paths,
        results,
        policies=contract.source.parent,
        mapping=telemetry.work_items,
        work_item_attribute=telemetry.work_item_attribute,
    )
