"""Quarters: the one definition of the pipeline's time grain, all boundaries in UTC."""

from __future__ import annotations

from datetime import datetime

from dagster import TimeWindowPartitionsDefinition

FIRST_QUARTER = "2022-01-01"

quarterly_partitions = TimeWindowPartitionsDefinition(
    start=FIRST_QUARTER,
    cron_schedule="0 0 1 1,4,7,10 *",
    fmt="%Y-%m-%d",
    timezone="UTC",
    end_offset=1,  # include the quarter in progress
)


def quarter_label(quarter_start: datetime) -> str:
    """``2025-04-01`` -> ``2025-Q2``."""
    return f"{quarter_start.year}-Q{(quarter_start.month - 1) // 3 + 1}"


# The same label in DuckDB SQL, for a DATE or TIMESTAMPTZ quarter start.
QUARTER_LABEL_SQL = "strftime({start}, '%Y') || '-Q' || quarter({start})"


def quarters_sql(window_start: datetime, window_end: datetime) -> str:
    """A query of the quarters in ``[window_start, window_end)``: quarter, starts_at, ends_at (UTC)."""
    start = f"TIMESTAMPTZ '{window_start.isoformat()}'"
    end = f"TIMESTAMPTZ '{window_end.isoformat()}'"
    return f"""
        SELECT {QUARTER_LABEL_SQL.format(start="range")} AS quarter,
               range AS starts_at,
               range + INTERVAL 3 MONTH AS ends_at
        FROM range({start}, {end}, INTERVAL 3 MONTH)
    """
