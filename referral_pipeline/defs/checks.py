"""Warning checks: staged keys that point at nothing, and KPI quarters not refreshed after they closed."""

from datetime import datetime, timedelta, timezone

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    asset_check,
)

from referral_pipeline.defs.assets.staging import STAGING_KEYS
from referral_pipeline.defs.quarterly import WAREHOUSE_POOL
from referral_pipeline.lib.kpis import KPIS
from referral_pipeline.defs.partitions import previous_quarter, quarter_in_progress, quarter_window
from referral_pipeline.defs.resources import Freshness, Warehouse
from referral_pipeline.lib.validation import staged_inputs_key

_UNKNOWN_ACCOUNT_SQL = """
    SELECT count(*) FROM staging.{table} t
    WHERE NOT EXISTS (SELECT 1 FROM staging.accounts a WHERE a.account_id = t.account_id)
"""
_UNRESOLVED_REFERRER_SQL = """
    SELECT count(*) FROM staging.opportunities o
    WHERE (o.referral_source_type = 'customer'
           AND NOT EXISTS (SELECT 1 FROM staging.accounts a WHERE a.account_id = o.referrer_id))
       OR (o.referral_source_type = 'partner'
           AND NOT EXISTS (SELECT 1 FROM staging.partners p WHERE p.partner_id = o.referrer_id))
"""


# The counts of the last evaluation of each warning check, with what its staging tables were built
# from: tables built from the same files under the same rules give the same counts.
CHECK_COUNTS_TABLE = "meta.staging_check_counts"
CHECK_COUNTS_DDL = f"""
CREATE TABLE IF NOT EXISTS {CHECK_COUNTS_TABLE} (
    check_key VARCHAR PRIMARY KEY,   -- the staging table and the check's name
    inputs_key VARCHAR NOT NULL,     -- staged_inputs_key of the tables it reads, with its SQL
    rows BIGINT NOT NULL,
    staged_rows BIGINT NOT NULL,
    counted_at TIMESTAMPTZ NOT NULL
)
"""


def _warning_check(table: str, name: str, description: str, sql: str, deps: list) -> AssetChecksDefinition:
    reads = [table, *(key.path[-1] for key in deps)]

    @asset_check(
        asset=STAGING_KEYS[table],
        name=name,
        description=description,
        additional_deps=deps,
        pool=WAREHOUSE_POOL,
    )
    def _check(warehouse: Warehouse) -> AssetCheckResult:
        check_key = f"{table}.{name}"
        with warehouse.connect() as con:
            staged = staged_inputs_key(con, reads)
            con.execute(CHECK_COUNTS_DDL)
            inputs = staged and f"{staged}:{sql}"
            known = con.execute(
                f"SELECT rows, staged_rows, counted_at FROM {CHECK_COUNTS_TABLE} WHERE check_key = ? AND inputs_key = ?",
                [check_key, inputs],
            ).fetchone()
            if known:
                rows, total, counted_at = known
            else:
                (rows,) = con.execute(sql).fetchone()
                (total,) = con.execute(f"SELECT count(*) FROM staging.{table}").fetchone()
                counted_at = None
                if inputs:
                    con.execute(
                        f"INSERT OR REPLACE INTO {CHECK_COUNTS_TABLE} VALUES (?, ?, ?, ?, now())",
                        [check_key, inputs, rows, total],
                    )
        unchanged = f" (staging tables unchanged since they were counted at {counted_at:%Y-%m-%d %H:%M} UTC)" if known else ""
        return AssetCheckResult(
            passed=rows == 0,
            severity=AssetCheckSeverity.WARN,
            description=f"{rows} of {total} rows of staging.{table}: {description.lower()}{unchanged}",
            metadata={"rows": rows, "staged_rows": total, "counted_again": not known},
        )

    return _check


orphan_checks = [
    _warning_check(
        table,
        "account_id_known",
        "Rows whose account_id is not in staging.accounts (staged, counted nowhere).",
        _UNKNOWN_ACCOUNT_SQL.format(table=table),
        [STAGING_KEYS["accounts"]],
    )
    for table in ("opportunities", "warm_intro_asks", "nps_responses", "qbr_notes")
]
referrer_check = _warning_check(
    "opportunities",
    "referrer_resolves",
    "Customer or partner referrals whose referrer_id resolves to no account or partner "
    "(never strategic).",
    _UNRESOLVED_REFERRER_SQL,
    [STAGING_KEYS["accounts"], STAGING_KEYS["partners"]],
)
warning_checks = [*orphan_checks, referrer_check]


def closed_quarter_check(
    instance: DagsterInstance, asset_key: AssetKey, now: datetime, grace_days: float
) -> AssetCheckResult:
    """Fails when the quarter that closed before ``now`` has no materialisation since its close,
    ``grace_days`` after the close."""
    closed = previous_quarter(quarter_in_progress(now))
    closed_at = quarter_window(closed).end
    deadline = closed_at + timedelta(days=grace_days)
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key, asset_partitions=[closed], after_timestamp=closed_at.timestamp()),
        limit=1,
    ).records
    metadata = {"closed_quarter": closed, "deadline": deadline.isoformat()}
    if records:
        done = datetime.fromtimestamp(records[0].timestamp, timezone.utc)
        return AssetCheckResult(
            passed=True, metadata=metadata,
            description=f"quarter {closed} was materialised at {done:%Y-%m-%d %H:%M} UTC, after its close",
        )
    if now <= deadline:
        return AssetCheckResult(
            passed=True, metadata=metadata,
            description=f"quarter {closed} closed at {closed_at:%Y-%m-%d}; due by {deadline:%Y-%m-%d %H:%M} UTC",
        )
    late_days = (now - closed_at).total_seconds() / 86400
    return AssetCheckResult(
        passed=False, severity=AssetCheckSeverity.WARN, metadata=metadata,
        description=(
            f"quarter {closed} closed {late_days:.1f} days ago and has not been materialised since "
            f"(allowed: {grace_days:g} days)"
        ),
    )


def _closed_quarter_materialised(kpi_key: AssetKey) -> AssetChecksDefinition:
    @asset_check(
        asset=kpi_key,
        name="closed_quarter_materialised",
        description="The quarter that just closed was re-materialised within the grace period after its close.",
    )
    def _check(context: AssetCheckExecutionContext, freshness: Freshness) -> AssetCheckResult:
        return closed_quarter_check(
            context.instance, kpi_key, datetime.now(timezone.utc), freshness.closed_quarter_grace_days
        )

    return _check


kpi_freshness_checks = [_closed_quarter_materialised(AssetKey(["kpi", kpi.name])) for kpi in KPIS]
