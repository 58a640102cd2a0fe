"""Quarters: the one definition of the pipeline's time grain, all boundaries in UTC."""

from datetime import datetime, timedelta

from dagster import TimeWindow, TimeWindowPartitionsDefinition

FIRST_QUARTER = "2022-01-01"

quarterly_partitions = TimeWindowPartitionsDefinition(
    start=FIRST_QUARTER,
    cron_schedule="0 0 1 1,4,7,10 *",
    fmt="%Y-%m-%d",
    timezone="UTC",
    end_offset=1,  # include the quarter in progress
)

# The quarter label (2025-Q2) in DuckDB SQL, for a DATE or TIMESTAMPTZ quarter start.
QUARTER_LABEL_SQL = "strftime({start}, '%Y') || '-Q' || quarter({start})"


def quarter_in_progress(at: datetime) -> str:
    """The key of the quarter that contains the instant ``at``."""
    return quarterly_partitions.get_partition_key_for_timestamp(at.timestamp())


def quarter_window(key: str) -> TimeWindow:
    return quarterly_partitions.time_window_for_partition_key(key)


def previous_quarter(key: str) -> str:
    return quarter_in_progress(quarter_window(key).start - timedelta(seconds=1))


def all_quarters_window() -> TimeWindow:
    """From the first quarter's start to the end of the quarter in progress."""
    return TimeWindow(
        quarter_window(quarterly_partitions.get_first_partition_key()).start,
        quarter_window(quarterly_partitions.get_last_partition_key()).end,
    )


def in_quarter_sql(value: str, quarter: str = "q") -> str:
    """SQL: the instant or day ``value`` falls in the run quarter aliased ``quarter`` (UTC).

    A DATE compares as its midnight in the session's time zone, which the warehouse sets to UTC.
    """
    return f"({value} >= {quarter}.starts_at AND {value} < {quarter}.ends_at)"


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
