"""The DuckDB warehouse file: one writer at a time across processes, and all-or-nothing writes.

Faults name the file: another process holding it (waited for, up to a bound), a full disk, a
truncated or corrupt file.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
from filelock import FileLock, Timeout

DEFAULT_LOCK_TIMEOUT_SECONDS = 120.0
_RETRY_SECONDS = (0.1, 2.0)  # first and longest pause between attempts to open a locked file
_HELD_BY = re.compile(r"Conflicting lock is held in (.+?)(?:\. However|\.?$)", re.DOTALL)
_FULL_DISK = "No space left on device"
_DAMAGED = ("Corrupt database file", "checksum", "not a valid DuckDB database", "Could not read enough bytes")


class WarehouseError(Exception):
    """The warehouse file cannot be used: held by another process, damaged, or its disk is full."""


def warehouse_fault(database: Path, exc: BaseException) -> WarehouseError | None:
    """The fault ``exc`` means for the warehouse file, in words naming it; None if it is no such fault."""
    message = str(exc)
    if _FULL_DISK in message:
        return WarehouseError(
            f"{_FULL_DISK}: cannot write the warehouse {database} (free space on its disk, or point "
            f"REFERRAL_WAREHOUSE elsewhere); nothing of this step was committed\n{message}"
        )
    if any(sign in message for sign in _DAMAGED):
        return WarehouseError(
            f"{database}: the warehouse file is damaged (truncated or corrupt): {message}\n"
            "Restore it from a backup, or move it away and materialise every quarter again to rebuild it "
            "from the sources."
        )
    return None


def _open(database: Path, deadline: float, timeout: float) -> duckdb.DuckDBPyConnection:
    """``duckdb.connect``, retried while another process holds the file, until ``deadline``."""
    pause = _RETRY_SECONDS[0]
    while True:
        try:
            return duckdb.connect(str(database))
        except duckdb.IOException as exc:
            if "Could not set lock" not in str(exc):
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                held = _HELD_BY.search(str(exc))
                holder = held.group(1).strip() if held else "another process"
                raise WarehouseError(
                    f"{database}: still locked by another process after waiting {timeout:g} s: the lock is "
                    f"held by {holder}; close that program (a DuckDB client or notebook with the file open) "
                    f"or raise the warehouse resource's lock_timeout_seconds\n{exc}"
                ) from exc
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, _RETRY_SECONDS[1])


@contextmanager
def connect(
    database: Path, memory_limit: str = "4GB", lock_timeout: float = DEFAULT_LOCK_TIMEOUT_SECONDS
) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection to ``database`` (created with its folder if missing), in UTC.

    The connection holds an exclusive lock on ``<file>.lock`` for as long as it is open, so
    concurrent runs (other processes included) wait for each other instead of failing on
    DuckDB's own file lock; a process outside the pipeline holding the file is waited for too.
    Either wait ends after ``lock_timeout`` seconds with a ``WarehouseError``, as do a full disk
    and a damaged file, raised inside the block or not.
    """
    database.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + lock_timeout
    lock = FileLock(f"{database}.lock")
    try:
        lock.acquire(timeout=lock_timeout)
    except Timeout as exc:
        raise WarehouseError(
            f"{database}: still locked after waiting {lock_timeout:g} s: another run of the pipeline holds "
            f"{database}.lock"
        ) from exc
    try:
        try:
            con = _open(database, deadline, lock_timeout)
        except duckdb.Error as exc:
            if (fault := warehouse_fault(database, exc)) is not None:
                raise fault from exc
            raise
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("SET memory_limit = ?", [memory_limit])
            yield con
        except (duckdb.Error, OSError) as exc:
            if (fault := warehouse_fault(database, exc)) is not None:
                raise fault from exc
            raise
        finally:
            with suppress(duckdb.Error):
                con.close()
    finally:
        lock.release()


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block in one transaction: committed when it ends, rolled back when it raises.

    If DuckDB has already ended the transaction (it does on some errors), the error that ended
    it is raised, not the failed ROLLBACK.
    """
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")
