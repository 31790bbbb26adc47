"""Storage: the Parquet results store and the release ledger."""

import os
from pathlib import Path

from evals.errors import UserError
from evals.store._journal import JournalHeader, RunJournal, journal_dir, valid_run_id
from evals.store._ledger import (
    Incident,
    IncidentUpdate,
    Ledger,
    LedgerEntry,
    LedgerEvent,
    NoGoodVersion,
)
from evals.store._outputs import OutputCache
from evals.store._parquet import DECISIONS_SCHEMA, RUNS_SCHEMA, SAMPLES_SCHEMA, ResultsStore

__all__ = [
    "DECISIONS_SCHEMA",
    "RUNS_SCHEMA",
    "SAMPLES_SCHEMA",
    "Incident",
    "IncidentUpdate",
    "JournalHeader",
    "Ledger",
    "LedgerEntry",
    "LedgerEvent",
    "NoGoodVersion",
    "OutputCache",
    "ResultsStore",
    "RunJournal",
    "journal_dir",
    "ledger_for",
    "valid_run_id",
]

LEDGER_ENV = "IMPACTGATE_LEDGER"


def ledger_for(results: str | Path) -> Ledger:
    """The ledger beside a results root (``<results>/ledger.sqlite``), or ``$IMPACTGATE_LEDGER``.

    Raises:
        UserError: the results root is remote and no local ledger path is set.
    """
    override = os.environ.get(LEDGER_ENV)
    if override:
        return Ledger(override)
    if "://" in str(results):
        raise UserError.single(
            str(results),
            "",
            f"the ledger is a local SQLite file; with a remote results root set {LEDGER_ENV} "
            "to a local path",
        )
    return Ledger(Path(results) / "ledger.sqlite")
