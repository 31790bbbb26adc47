"""Running a contract's SQL: one SELECT, on a connection that can read nothing else.

The connection's tables are registered first (pyarrow datasets and Arrow tables); then DuckDB's
file and network access is switched off and the configuration locked, so a query cannot read
``/etc/passwd``, write a file, attach a database or install an extension, and cannot switch
any of that back on. A query also runs under a timeout and a row cap.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from evals.errors import UserError

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

__all__ = ["lock_down", "run_query"]


def lock_down(con: duckdb.DuckDBPyConnection) -> None:
    """No file, network or extension access from here on, and no way to turn it back on."""
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")


def run_query(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    *,
    where: str,
    field: str,
    max_rows: int,
    timeout_s: float,
) -> pa.Table:
    """``day`` (DATE) and ``value`` (DOUBLE) of every row ``sql`` returns.

    Args:
        con: a locked-down connection (:func:`lock_down`) with the tables the query reads.
        sql: one ``SELECT`` (or ``WITH … SELECT``) returning ``day`` and ``value`` columns.
        where: the contract file (and line) the query is written in, for messages.
        field: the query's field (``outcome.customer.query``).
        max_rows: more rows than this is an error.
        timeout_s: a query still running after this is interrupted.

    Raises:
        UserError: not one SELECT, a missing column, a DuckDB error (a table or column that
            does not exist, file access), too many rows, or too slow; naming file and field.
    """
    import duckdb

    def problem(message: str) -> UserError:
        return UserError.single(where, field, message)

    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise problem(f"not valid SQL: {_first_line(exc)}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        kinds = ", ".join(s.type.name for s in statements) or "nothing"
        raise problem(
            f"must be one SELECT returning 'day' and 'value' (found: {kinds}); queries "
            "only read the telemetry tables"
        )
    query = str(statements[0].query).rstrip().rstrip(";")
    try:
        columns = [c.lower() for c in con.sql(query).columns]
    except duckdb.Error as exc:
        raise problem(_explain(exc)) from None
    missing = [c for c in ("day", "value") if c not in columns]
    if missing:
        raise problem(
            f"returns {', '.join(columns) or 'no column'}; it must return "
            f"{' and '.join(repr(m) for m in missing)} (e.g. SELECT closed_at AS day, ... AS value)"
        )
    wrapped = (
        "SELECT CAST(day AS DATE) AS day, CAST(value AS DOUBLE) AS value "
        f"FROM ({query}) AS q LIMIT {max_rows + 1}"
    )
    timer = threading.Timer(timeout_s, con.interrupt)
    timer.start()
    try:
        table = con.sql(wrapped).to_arrow_table()
    except duckdb.InterruptException:
        raise problem(f"took longer than {timeout_s:g} s (telemetry.timeout_s)") from None
    except duckdb.Error as exc:
        raise problem(_explain(exc)) from None
    finally:
        timer.cancel()
    if table.num_rows > max_rows:
        raise problem(
            f"returned more than {max_rows:,} rows (telemetry.max_rows); aggregate per day "
            "or per work item"
        )
    return table


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _explain(exc: Exception) -> str:
    text = _first_line(exc)
    if "disabled by configuration" in text or "external" in text.lower():
        return (
            f"{text}: queries read only spans, work_items and telemetry.tables; name a "
            "data owner's file in telemetry.tables instead"
        )
    return text
