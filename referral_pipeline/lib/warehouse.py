"""The DuckDB warehouse file: one writer at a time across processes, and all-or-nothing writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
from filelock import FileLock


@contextmanager
def connect(database: Path, memory_limit: str = "4GB") -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``database`` (created with its folder if missing), in UTC.

    The connection holds an exclusive lock on ``<file>.lock`` for as long as it is open, so
    concurrent runs (other processes included) wait for each other instead of failing on
    DuckDB's own file lock.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{database}.lock"):
        con = duckdb.connect(str(database))
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET memory_limit = ?", [memory_limit])
            yield con
        finally:
            con.close()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: committed when it ends, rolled back when it raises."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
