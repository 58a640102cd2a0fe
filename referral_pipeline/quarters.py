"""Writing quarter-partitioned tables: a run's quarters, replaced in one transaction."""

from __future__ import annotations

import duckdb
from dagster import TimeWindow

from referral_pipeline.partitions import quarters_sql

RUN_QUARTERS = "run_quarters"
IN_RUN = f"quarter IN (SELECT quarter FROM {RUN_QUARTERS})"  # a row of one of the run's quarters


def load_run_quarters(con: duckdb.DuckDBPyConnection, window: TimeWindow) -> list[str]:
    """Create the temporary table ``run_quarters`` for the run's window; return its quarter labels."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {RUN_QUARTERS} AS {quarters_sql(window.start, window.end)}"
    )
    return [row[0] for row in con.execute(f"SELECT quarter FROM {RUN_QUARTERS} ORDER BY 1").fetchall()]


def replace_quarters(
    con: duckdb.DuckDBPyConnection, table: str, columns_ddl: str, select_sql: str, parameters: dict
) -> int:
    """Replace the run's quarters of ``table`` with ``select_sql``'s rows, all or nothing.

    Returns the number of rows written. Readers see the old quarters until the commit.
    """
    schema = table.split(".")[0]
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns_ddl})")
        con.execute(f"DELETE FROM {table} WHERE {IN_RUN}")
        con.execute(f"INSERT INTO {table} {select_sql}", parameters)
        (written,) = con.execute(
            f"SELECT count(*) FROM {table} WHERE {IN_RUN}"
        ).fetchone()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return written
