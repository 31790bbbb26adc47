"""Storage: the records the engine keeps, the Parquet results store and the release ledger."""

import os
from pathlib import Path

from evals.errors import UserError
from evals.store import _transitions as ledger_rules
from evals.store._duckdb import connect_telemetry
from evals.store._journal import RunJournal, journal_dir, valid_run_id
from evals.store._labels import LABELS_SCHEMA, LabelKind, LabelRecord, item_id, labels_hash
from evals.store._ledger import (
    Incident,
    IncidentUpdate,
    Ledger,
    LedgerEntry,
    LedgerEvent,
    NoGoodVersion,
)
from evals.store._outputs import OutputCache
from evals.store._parquet import (
    DECISIONS_SCHEMA,
    INGESTS_SCHEMA,
    RUNS_SCHEMA,
    SAMPLES_SCHEMA,
    SPANS_SCHEMA,
    TABLES,
    TELEMETRY_KEYS,
    WORK_ITEMS_SCHEMA,
    ResultsStore,
)
from evals.store._records import (
    Decision,
    DecisionKind,
    IngestKind,
    IngestRecord,
    MetricRecord,
    Output,
    Resolver,
    RunHeader,
    RunRecord,
    SampleRecord,
    Source,
    SpanRecord,
    SpanStatus,
    WorkItemRecord,
)

__all__ = [
    "DECISIONS_SCHEMA",
    "INGESTS_SCHEMA",
    "LABELS_SCHEMA",
    "RUNS_SCHEMA",
    "SAMPLES_SCHEMA",
    "SPANS_SCHEMA",
    "TABLES",
    "TELEMETRY_KEYS",
    "WORK_ITEMS_SCHEMA",
    "Decision",
    "DecisionKind",
    "Incident",
    "IncidentUpdate",
    "IngestKind",
    "IngestRecord",
    "LabelKind",
    "LabelRecord",
    "Ledger",
    "LedgerEntry",
    "LedgerEvent",
    "MetricRecord",
    "NoGoodVersion",
    "Output",
    "OutputCache",
    "Resolver",
    "ResultsStore",
    "RunHeader",
    "RunJournal",
    "RunRecord",
    "SampleRecord",
    "Source",
    "SpanRecord",
    "SpanStatus",
    "WorkItemRecord",
    "connect_telemetry",
    "item_id",
    "journal_dir",
    "labels_hash",
    "ledger_for",
    "ledger_path",
    "ledger_rules",
    "valid_run_id",
]

LEDGER_ENV = "IMPACTGATE_LEDGER"


def ledger_path(results: str | Path) -> Path | None:
    """Where the ledger of a results root is (``None``: remote root, no local path set).

    ``$IMPACTGATE_LEDGER`` when set, else ``<results>/ledger.sqlite``.
    """
    override = os.environ.get(LEDGER_ENV)
    if override:
        return Path(override)
    if "://" in str(results):
        return None
    return Path(results) / "ledger.sqlite"


def ledger_for(results: str | Path) -> Ledger:
    """The ledger beside a results root (``<results>/ledger.sqlite``), or ``$IMPACTGATE_LEDGER``.

    Raises:
        UserError: the results root is remote and no local ledger path is set.
    """
    path = ledger_path(results)
    if path is None:
        raise UserError.single(
            str(results),
            "",
            f"the ledger is a local SQLite file; with a remote results root set {LEDGER_ENV} "
            "to a local path",
        )
    return Ledger(path)
