"""What every quarterly asset shares: its run's quarters, and metadata recorded per quarter.

A single-run backfill materialises many quarters in one step; each quarter's event in the UI gets
that quarter's own figures (rows, fingerprint), not the whole run's.
"""

from __future__ import annotations

import duckdb
from dagster import AssetExecutionContext, BackfillPolicy, DataVersion, TimeWindow

from referral_pipeline.defs.partitions import quarter_window

from referral_pipeline.lib.quarters import IN_RUN, RUN_QUARTERS, load_run_quarters

FINGERPRINT_METADATA = "input_fingerprint"
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"
WAREHOUSE_POOL = "warehouse"  # every step that writes the warehouse; one at a time (dagster.yaml)
QUARTERLY = {"backfill_policy": BackfillPolicy.single_run(), "pool": WAREHOUSE_POOL}


def start_run(context: AssetExecutionContext, con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Load the run's quarters into ``run_quarters``: {partition key: quarter label}."""
    load_run_quarters(con, *context.partition_time_window)
    return {
        f"{starts_at:%Y-%m-%d}": quarter
        for quarter, starts_at in con.execute(f"SELECT quarter, starts_at FROM {RUN_QUARTERS} ORDER BY 1").fetchall()
    }


def run_window(run_tags: dict[str, str]) -> TimeWindow | None:
    """The quarters a run materialises, from its tags (a partition or a range); None for neither."""
    start = run_tags.get(RANGE_START_TAG) or run_tags.get(PARTITION_TAG)
    end = run_tags.get(RANGE_END_TAG) or run_tags.get(PARTITION_TAG)
    if not (start and end):
        return None
    return TimeWindow(quarter_window(start).start, quarter_window(end).end)


def rows_per_quarter(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    """{quarter label: rows of ``table``} over the run's quarters, 0 included."""
    return dict(
        con.execute(
            f"SELECT q.quarter, count(t.quarter) FROM {RUN_QUARTERS} q "
            f"LEFT JOIN (SELECT quarter FROM {table} WHERE {IN_RUN}) t USING (quarter) GROUP BY ALL"
        ).fetchall()
    )


def record_per_quarter(
    context: AssetExecutionContext,
    quarters: dict[str, str],
    rows: dict[str, int],
    fingerprints: dict[str, str] | None = None,
    extra: dict[str, dict] | None = None,
) -> DataVersion | None:
    """Give each quarter's materialisation its own row count, fingerprint and ``extra[key]``.

    Returns the data version of a single-quarter run (its fingerprint), else None.
    """
    for key, quarter in quarters.items():
        metadata = {"quarter": quarter, "dagster/row_count": rows[quarter], **(extra or {}).get(key, {})}
        if fingerprints:
            metadata[FINGERPRINT_METADATA] = fingerprints[key]
        context.add_asset_metadata(metadata, partition_key=key)
    if fingerprints and len(fingerprints) == 1:
        return DataVersion(next(iter(fingerprints.values())))
    return None
