"""The quarterly partitions of every time-partitioned asset (UTC quarters, keyed by their first day)."""

from datetime import datetime, timedelta

from dagster import TimeWindow, TimeWindowPartitionsDefinition

from referral_pipeline.lib.quarters import FIRST_QUARTER

quarterly_partitions = TimeWindowPartitionsDefinition(
    start=FIRST_QUARTER,
    cron_schedule="0 0 1 1,4,7,10 *",
    fmt="%Y-%m-%d",
    timezone="UTC",
    end_offset=1,  # include the quarter in progress
)


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
