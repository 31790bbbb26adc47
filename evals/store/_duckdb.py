"""SQL over the telemetry tables: a DuckDB connection with deduplicated views.

The views see the files present when the connection opens:

- ``ingests``: every agent's share of every telemetry batch;
- ``spans``: spans of committed batches, one row per ``(trace_id, span_id)`` (the latest
  ingest wins);
- ``work_items``: work items of committed batches, one row per ``work_item_id``, as last
  exported (the latest ``updated_at``, then the latest ingest, then the later row of a file).

A batch is committed when it has an ``ingests`` row for every agent it wrote. Deduplicating by
key when reading, not when writing, is what keeps ingest idempotent across separate calls, and
it makes compaction (rewriting a partition's files as one) safe at any moment. See
docs/design/telemetry.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset as ds

from evals.store._parquet import PARTITIONS, TABLES, ResultsStore

if TYPE_CHECKING:
    import duckdb

__all__ = [
    "connect",
    "connect_agent",
    "connect_telemetry",
    "first_telemetry_day",
    "read_table_file",
]

_ORDER = {
    "spans": "ingested_at DESC, batch_id DESC",
    "work_items": "updated_at DESC NULLS LAST, ingested_at DESC, batch_id DESC, seq DESC",
}
_KEYS = {"spans": "trace_id, span_id", "work_items": "work_item_id"}


def connect_telemetry(results: str | Path) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection over a results root, with the telemetry views.

    ``spans``, ``work_items`` (committed rows, one per key) and ``ingests``; see the module
    docstring.

    Example::

        with connect_telemetry("results") as db:
            db.sql("SELECT agent, count(*) FROM spans GROUP BY agent").show()
    """
    return connect(ResultsStore(results))


def connect(store: ResultsStore) -> duckdb.DuckDBPyConnection:
    """The telemetry views over one store (see :func:`connect_telemetry`)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name in ("ingests", *_KEYS):
        _files_view(con, store, name, f"_{name}_files")
    con.execute(
        "CREATE VIEW ingests AS SELECT * FROM _ingests_files;"
        "CREATE VIEW _committed AS SELECT batch_id FROM ingests GROUP BY batch_id "
        "HAVING count(DISTINCT agent) >= max(len(agents))"
    )
    for name, key in _KEYS.items():
        con.execute(
            f"CREATE VIEW {name} AS SELECT * FROM _{name}_files "
            "WHERE batch_id IN (SELECT batch_id FROM _committed) "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {_ORDER[name]}) = 1"
        )
    return con


def _files_view(con: duckdb.DuckDBPyConnection, store: ResultsStore, table: str, view: str) -> None:
    schema = pa.unify_schemas([TABLES[table], PARTITIONS])
    files = store.files(table)
    if not files:
        con.register(f"{view}_empty", schema.empty_table())
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM {view}_empty")
    elif store.local_root is not None:
        columns = ", ".join(f'"{f.name}"' for f in schema)  # one order, whatever the files'
        paths = ", ".join(_literal(path) for path in files)
        con.execute(
            f"CREATE VIEW {view} AS SELECT {columns} FROM read_parquet([{paths}], "
            "hive_partitioning = true, hive_types = {'agent': 'VARCHAR', 'date': 'VARCHAR'}, "
            "union_by_name = true)"
        )
    else:  # an object store: pyarrow's filesystems read it, DuckDB scans the dataset
        dataset = ds.dataset(
            files,
            schema=schema,
            format="parquet",
            filesystem=store.fs,
            partitioning=ds.partitioning(PARTITIONS, flavor="hive"),
            partition_base_dir=f"{store.base}/{table}",
        )
        con.register(f"{view}_dataset", dataset)
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM {view}_dataset")


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def connect_agent(store: ResultsStore, agent: str, since: str) -> duckdb.DuckDBPyConnection:
    """One agent's telemetry from the day ``since`` (``YYYY-MM-DD``) on, ready to be sandboxed.

    The views ``spans`` and ``work_items`` (committed rows, one per key, as in
    :func:`connect`) hold only ``agent``'s partitions dated ``since`` or later, and read them
    through pyarrow datasets registered with the connection rather than DuckDB's own file
    reader, so the caller may then switch off DuckDB's file access
    (``SET enable_external_access = false``) and still query them. ``_spans_committed`` is
    ``spans`` before deduplication (cheaper for counting distinct ids). An agent's rows of
    one key share a partition (the partition day is the span's start or the item's opening),
    so deduplicating within them is deduplicating over the whole table.

    ``_spans_fast`` and ``_work_items_fast`` are the same committed rows (``_work_items_fast``
    deduplicated) read with DuckDB's own Parquet reader on a local root, several times faster
    than through pyarrow: for reading once, before file access is switched off.
    """
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    ingests = store.files("ingests")  # every agent's: a batch commits when all have a row
    _register(con, store, "_ingests_files", "ingests", ingests, f"{store.base}/ingests", None)
    listed = {
        table: [p for p in store.files(f"{table}/agent={agent}") if _partition_day(p) >= since]
        for table in _KEYS
    }
    for table, files in listed.items():
        folder = f"{store.base}/{table}/agent={agent}"
        _register(con, store, f"_{table}_files", table, files, folder, agent)
    # Which batches committed, worked out once (every other view filters on it): with
    # DuckDB's own reader on a local root, the ingests files being many and small.
    committed = (
        "SELECT batch_id FROM {} GROUP BY batch_id HAVING count(DISTINCT agent) >= max(len(agents))"
    )
    if store.local_root is not None and ingests:
        paths = ", ".join(_literal(path) for path in ingests)
        scan = f"read_parquet([{paths}], hive_partitioning = true, union_by_name = true)"
    else:
        scan = "_ingests_files"
    con.execute(
        f"CREATE VIEW ingests AS SELECT * FROM _ingests_files WHERE agent = {_literal(agent)};"
        f"CREATE TEMP TABLE _committed_batches AS {committed.format(scan)};"
        "CREATE VIEW _committed AS SELECT batch_id FROM _committed_batches"
    )
    for name, key in _KEYS.items():
        con.execute(
            f"CREATE VIEW _{name}_committed AS SELECT * FROM _{name}_files "
            "WHERE batch_id IN (SELECT batch_id FROM _committed);"
            f"CREATE VIEW {name} AS SELECT * FROM _{name}_committed "
            f"QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {_ORDER[name]}) = 1"
        )
        files = listed[name]
        source = f"_{name}_committed"
        if store.local_root is not None and files:
            columns = ", ".join(
                f'"{f.name}"' if f.name != "agent" else f"{_literal(agent)} AS agent"
                for f in pa.unify_schemas([TABLES[name], PARTITIONS])
                if f.name != "date"
            )
            paths = ", ".join(_literal(path) for path in files)
            con.execute(
                f"CREATE VIEW _{name}_native AS SELECT {columns} FROM read_parquet([{paths}], "
                "union_by_name = true) WHERE batch_id IN (SELECT batch_id FROM _committed)"
            )
            source = f"_{name}_native"
        fast = f"SELECT * FROM {source}"
        if name == "work_items":
            fast += f" QUALIFY row_number() OVER (PARTITION BY {key} ORDER BY {_ORDER[name]}) = 1"
        con.execute(f"CREATE VIEW _{name}_fast AS {fast}")
    return con


def _register(
    con: duckdb.DuckDBPyConnection,
    store: ResultsStore,
    view: str,
    table: str,
    files: list[str],
    base: str,
    agent: str | None,
) -> None:
    """``view`` over ``files`` through a registered pyarrow dataset.

    ``agent``: the files are in one agent's folder, whose rows get that agent; ``None``: the
    table's folder, agent and date from the path.
    """
    schema = pa.unify_schemas([TABLES[table], PARTITIONS])
    if not files:
        con.register(f"{view}_empty", schema.empty_table())
        con.execute(f"CREATE VIEW {view} AS SELECT * FROM {view}_empty")
        return
    partitioning = PARTITIONS if agent is None else pa.schema([("date", pa.string())])
    dataset = ds.dataset(
        files,
        schema=schema,
        format="parquet",
        filesystem=store.fs,
        partitioning=ds.partitioning(partitioning, flavor="hive"),
        partition_base_dir=base,
    )
    con.register(f"{view}_dataset", dataset)
    select = "*" if agent is None else f"* REPLACE ({_literal(agent)} AS agent)"
    con.execute(f"CREATE VIEW {view} AS SELECT {select} FROM {view}_dataset")


def _partition_day(path: str) -> str:
    """The ``date=`` of a partitioned file's path (empty when it has none)."""
    for part in path.split("/"):
        if part.startswith("date="):
            return part[5:]
    return ""


def first_telemetry_day(store: ResultsStore, agent: str) -> str | None:
    """The earliest partition day (``YYYY-MM-DD``) of the agent's spans or work items."""
    days = [
        _partition_day(path) for table in _KEYS for path in store.files(f"{table}/agent={agent}")
    ]
    days = [d for d in days if d]
    return min(days) if days else None


def read_table_file(path: str | Path) -> pa.Table:
    """A data owner's Parquet file, whole (a table an outcome query reads)."""
    import pyarrow.parquet as pq

    return pq.read_table(path)
