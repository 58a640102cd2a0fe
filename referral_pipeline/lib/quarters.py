"""Quarters: the one definition of the pipeline's time grain, all boundaries in UTC.

A run's quarters are the temporary table ``run_quarters`` (quarter, starts_at, ends_at); the
quarter-partitioned tables are replaced for exactly those quarters, in one transaction.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import duckdb

from referral_pipeline.lib.warehouse import transaction

FIRST_QUARTER = "2022-01-01"

_QUARTER_LABEL = re.compile(r"(\d{4})-Q([1-4])")
RUN_QUARTERS = "run_quarters"
IN_RUN = f"quarter IN (SELECT quarter FROM {RUN_QUARTERS})"  # a row of one of the run's quarters


# The quarter label of an instant or a day: the one definition of which quarter a row falls in.
# A TIMESTAMPTZ is read in the session's time zone, which the warehouse sets to UTC.
QUARTER_OF_MACRO = "CREATE OR REPLACE TEMP MACRO quarter_of(t) AS year(t)::VARCHAR || '-Q' || quarter(t)"


def quarter_label(day: date) -> str:
    """The label (``2025-Q2``) of the quarter that contains ``day``."""
    return f"{day.year}-Q{(day.month - 1) // 3 + 1}"


def quarter_start(label: str) -> date:
    """The first day of the quarter labelled ``2025-Q2``."""
    match = _QUARTER_LABEL.fullmatch(label)
    if not match:
        raise ValueError(f"{label!r} is not a quarter label like 2025-Q2")
    return date(int(match[1]), 3 * int(match[2]) - 2, 1)


def previous_quarter_label(label: str) -> str:
    """The quarter before ``label``: the latest closed one when ``label`` is in progress."""
    return quarter_label(quarter_start(label) - timedelta(days=1))


def quarters_sql() -> str:
    """A query of the quarters in [$window_start, $window_end): quarter, starts_at, ends_at (UTC).

    Needs the macro ``quarter_of``."""
    return f"""
        SELECT quarter_of(range) AS quarter,
               range AS starts_at,
               range + INTERVAL 3 MONTH AS ends_at
        FROM range($window_start::TIMESTAMPTZ, $window_end::TIMESTAMPTZ, INTERVAL 3 MONTH)
    """


def load_run_quarters(con: duckdb.DuckDBPyConnection, start: datetime, end: datetime) -> list[str]:
    """Create the temporary table ``run_quarters`` for [start, end) and the macro ``quarter_of``;
    return the run's quarter labels."""
    con.execute(QUARTER_OF_MACRO)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {RUN_QUARTERS} AS {quarters_sql()}",
        {"window_start": start, "window_end": end},
    )
    return [row[0] for row in con.execute(f"SELECT quarter FROM {RUN_QUARTERS} ORDER BY 1").fetchall()]


def replace_quarters(
    con: duckdb.DuckDBPyConnection, table: str, columns_ddl: str, select_sql: str, parameters: dict
) -> int:
    """Replace the run's quarters of ``table`` with ``select_sql``'s rows, all or nothing.

    Returns the number of rows written. Readers see the old quarters until the commit.
    """
    schema = table.split(".")[0]
    with transaction(con):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
        con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({columns_ddl})")
        con.execute(f"DELETE FROM {table} WHERE {IN_RUN}")
        con.execute(f"INSERT INTO {table} {select_sql}", parameters)
        (written,) = con.execute(f"SELECT count(*) FROM {table} WHERE {IN_RUN}").fetchone()
    return written
