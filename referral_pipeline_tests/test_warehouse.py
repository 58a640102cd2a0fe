"""The warehouse file: waiting for another holder (bounded), and faults reported with the file's name."""

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from referral_pipeline.lib.warehouse import WarehouseError, connect, transaction

HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold_open(database: Path, seconds: float) -> subprocess.Popen:
    """Another process with the warehouse open (read-only, as a BI client would)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(database), str(seconds)], stdout=subprocess.PIPE,
                              text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


@pytest.fixture
def database(tmp_path) -> Path:
    path = tmp_path / "w.duckdb"
    with connect(path) as con:
        con.execute("CREATE TABLE t AS SELECT 1 AS x")
    return path


def test_a_process_holding_the_warehouse_is_waited_for(database):
    holder = hold_open(database, 2)
    started = time.monotonic()
    with connect(database, lock_timeout=60) as con:
        assert con.execute("SELECT x FROM t").fetchall() == [(1,)]
    assert time.monotonic() - started >= 1
    holder.wait(timeout=30)


def test_waiting_is_bounded_and_names_the_holder(database):
    holder = hold_open(database, 60)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseError) as caught:
            with connect(database, lock_timeout=1.5):
                pass
        waited = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert 1.5 <= waited < 15
    message = str(caught.value)
    assert message.startswith(f"{database}: still locked by another process after waiting 1.5 s")
    assert f"(PID {holder.pid})" in message


def test_a_failed_rollback_does_not_hide_the_error(database):
    """When DuckDB has already ended the transaction, the error that ended it is the one raised."""
    with connect(database) as con:
        with pytest.raises(duckdb.Error, match="the original error"):
            with transaction(con):
                con.execute("ROLLBACK")
                con.execute("SELECT error('the original error')")


def test_a_full_disk_says_so_and_names_the_file(tmp_path):
    mount = tmp_path / "small"
    mount.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("needs a small file system (mount -t tmpfs)")
    try:
        database = mount / "w.duckdb"
        with pytest.raises(WarehouseError) as caught:
            with connect(database) as con:
                with transaction(con):
                    con.execute("CREATE TABLE big AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(300000)")
        headline = str(caught.value).splitlines()[0]
        assert headline.startswith(f"No space left on device: cannot write the warehouse {database}")
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_truncated_or_corrupt_warehouse_names_the_file(tmp_path):
    database = tmp_path / "w.duckdb"
    with connect(database) as con:
        con.execute("CREATE TABLE t AS SELECT range AS i, md5(range::VARCHAR) AS s FROM range(300000)")
    content = database.read_bytes()
    truncated, corrupt = tmp_path / "truncated.duckdb", tmp_path / "corrupt.duckdb"
    truncated.write_bytes(content[: len(content) // 2])
    middle = len(content) // 2
    corrupt.write_bytes(content[:middle] + bytes(4096) + content[middle + 4096:])
    garbage = tmp_path / "garbage.duckdb"
    garbage.write_bytes(b"not a database at all")
    for broken in (truncated, corrupt, garbage):
        with pytest.raises(WarehouseError, match=rf"^{broken}: the warehouse file is damaged"):
            with connect(broken) as con:
                con.execute("SELECT count(*), max(s) FROM t").fetchall()


def test_an_error_of_the_work_itself_is_not_rewritten(database):
    with pytest.raises(duckdb.CatalogException):
        with connect(database) as con:
            con.execute("SELECT * FROM no_such_table")
