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

__all__ = ["connect", "connect_telemetry"]

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
