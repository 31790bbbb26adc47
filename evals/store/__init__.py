"""Storage: the records the engine keeps, the Parquet results store and the release ledger."""

import os
from pathlib import Path

from evals.errors import UserError
from evals.store import _transitions as ledger_rules
from evals.store._duckdb import (
    connect_agent,
    connect_telemetry,
    first_telemetry_day,
    read_table_file,
)
from evals.store._journal import RunJournal, journal_dir, valid_run_id
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
    LABELS_SCHEMA,
    RUNS_SCHEMA,
    SAMPLES_SCHEMA,
    SPANS_SCHEMA,
    TABLES,
    TELEMETRY_KEYS,
    WORK_ITEMS_SCHEMA,
    ResultsStore,
    TableWriter,
)
from evals.store._records import (
    Decision,
    DecisionKind,
    IngestKind,
    IngestRecord,
    LabelKind,
    LabelRecord,
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
    labels_hash,
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
    "TableWriter",
    "WorkItemRecord",
    "connect_agent",
    "connect_telemetry",
    "existing_ledger",
    "first_telemetry_day",
    "journal_dir",
    "labels_hash",
    "ledger_for",
    "ledger_path",
    "ledger_rules",
    "ledger_url",
    "read_table_file",
    "valid_run_id",
]

LEDGER_ENV = "IMPACTGATE_LEDGER"
LEDGER_URL_ENV = "IMPACTGATE_LEDGER_URL"


def ledger_url() -> str | None:
    """The ledger database URL from ``$IMPACTGATE_LEDGER_URL`` (or a URL in ``$IMPACTGATE_LEDGER``).

    Any SQLAlchemy URL: ``postgresql+psycopg://user:password@host:5432/impactgate`` for a
    ledger shared by several workers, ``sqlite:////abs/path/ledger.sqlite`` for a file.

    Raises:
        UserError: the value is set but is not a database URL.
    """
    for name in (LEDGER_URL_ENV, LEDGER_ENV):
        value = os.environ.get(name, "").strip()
        if name == LEDGER_URL_ENV and value and "://" not in value:
            raise UserError.single(
                f"${LEDGER_URL_ENV}",
                "",
                f"{value!r} is not a database URL; use e.g. "
                "postgresql+psycopg://user:password@host:5432/impactgate, or set "
                f"{LEDGER_ENV} to a SQLite file path",
            )
        if "://" in value:
            return value
    return None


def ledger_path(results: str | Path) -> Path | None:
    """Where the ledger's SQLite file is (``None``: a database URL is set, or remote root).

    ``$IMPACTGATE_LEDGER`` when set to a path, else ``<results>/ledger.sqlite``.
    """
    if ledger_url() is not None:
        return None
    override = os.environ.get(LEDGER_ENV)
    if override:
        return Path(override)
    if "://" in str(results):
        return None
    return Path(results) / "ledger.sqlite"


def ledger_for(results: str | Path) -> Ledger:
    """The ledger of a results root.

    ``$IMPACTGATE_LEDGER_URL`` (or ``impactgate --ledger URL``) when set, else the SQLite file
    ``$IMPACTGATE_LEDGER``, else ``<results>/ledger.sqlite``.

    Raises:
        UserError: the results root is remote and no ledger is configured.
    """
    url = ledger_url()
    if url is not None:
        return Ledger(url)
    path = ledger_path(results)
    if path is None:
        raise UserError.single(
            str(results),
            "",
            f"a remote results root needs a shared ledger: set {LEDGER_URL_ENV} (or "
            f"impactgate --ledger) to a database URL such as "
            f"postgresql+psycopg://user:password@host:5432/impactgate, or {LEDGER_ENV} to a "
            "local SQLite path",
        )
    return Ledger(path)


def existing_ledger(results: str | Path) -> tuple[Ledger | None, str | None]:
    """The ledger for a reader that must not create one: the ledger, or ``None`` and why.

    A database URL is opened as it is; a SQLite file that does not exist stays absent.
    """
    url = ledger_url()
    if url is not None:
        return Ledger(url), None
    path = ledger_path(results)
    if path is None:
        return None, (
            f"the results root is remote and neither {LEDGER_URL_ENV} nor {LEDGER_ENV} is set: "
            "no ledger"
        )
    if not path.is_file():
        return None, f"no ledger at {path}"
    return Ledger(path), None
