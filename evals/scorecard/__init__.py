"""The measured Agent Impact Contract: outcomes, adoption and workflow from production telemetry.

- :func:`measure`: one agent's scorecard over its telemetry window, every metric with an
  interval, ``n``, a status against its baseline → target path and a weekly series;
- :func:`refresh`: ingest the contract's ``telemetry.sources`` (idempotent) before measuring;
- :func:`red_flags`: adoption without outcome, outcome without adoption, workflow better while
  the customer is worse;
- :func:`run_query`: a contract's SQL on a locked-down DuckDB connection.

See docs/scorecard.md.
"""

from evals.scorecard._flags import RED_FLAGS, red_flags
from evals.scorecard._measure import (
    STATUSES,
    Measurement,
    RedFlag,
    Scorecard,
    Status,
    WeekPoint,
    describe,
    measure,
)
from evals.scorecard._sandbox import lock_down, run_query
from evals.scorecard._sources import refresh, source_paths

__all__ = [
    "RED_FLAGS",
    "STATUSES",
    "Measurement",
    "RedFlag",
    "Scorecard",
    "Status",
    "WeekPoint",
    "describe",
    "lock_down",
    "measure",
    "red_flags",
    "refresh",
    "run_query",
    "source_paths",
]
