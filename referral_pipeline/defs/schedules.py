"""Running itself: the daily refresh, hourly observation of the exports, and recomputing old
quarters whose inputs changed."""

from datetime import datetime, timedelta

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from referral_pipeline.defs.assets.intermediate import qbr_referral_signals
from referral_pipeline.defs.assets.kpi import kpi_assets
from referral_pipeline.defs.assets.source_files import source_files
from referral_pipeline.defs.assets.staging import STAGING_KEYS
from referral_pipeline.defs.fingerprints import (
    FINGERPRINTS_METADATA,
    SIGNALS,
    quarter_fingerprints,
)
from referral_pipeline.defs.partitions import (
    FIRST_QUARTER,
    all_quarters_window,
    previous_quarter,
    quarter_in_progress,
    quarter_window,
)
from referral_pipeline.lib.quarters import load_run_quarters
from referral_pipeline.defs.resources import KpiConfig, Warehouse

# Late deals close after the quarter ends: the daily run recomputes the closed quarter this long.
LATE_CLOSE_WINDOW = timedelta(weeks=6)
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"

QUARTERLY_ASSETS = AssetSelection.groups("intermediate", "kpi")

refresh_job = define_asset_job(
    "refresh_kpis",
    selection=AssetSelection.groups("staging") | QUARTERLY_ASSETS,
    description="Stage every source, then recompute the quarters' signals and KPIs.",
)
recompute_quarter_job = define_asset_job(
    "recompute_changed_quarter",
    selection=QUARTERLY_ASSETS,
    description="Recompute one quarter of the assets whose inputs changed since they last ran.",
)
observe_sources_job = define_asset_job(
    "observe_source_files",
    selection=AssetSelection.assets(source_files),
    description="Record each export's modification time and content fingerprint; check freshness.",
)


def quarters_to_refresh(at: datetime) -> list[str]:
    """The quarter in progress at ``at``, preceded in its first weeks by the quarter just closed."""
    current = quarter_in_progress(at)
    if at - quarter_window(current).start < LATE_CLOSE_WINDOW and current != FIRST_QUARTER:
        return [previous_quarter(current), current]
    return [current]


@schedule(
    job=refresh_job,
    cron_schedule="0 3 * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Daily 03:00 UTC: the quarter in progress, and in its first six weeks the closed one.",
)
def daily_kpi_refresh(context: ScheduleEvaluationContext) -> RunRequest:
    quarters = quarters_to_refresh(context.scheduled_execution_time)
    return RunRequest(
        run_key=f"daily-{quarters[-1]}-{context.scheduled_execution_time:%Y%m%d}",
        tags={RANGE_START_TAG: quarters[0], RANGE_END_TAG: quarters[-1]},
    )


@schedule(
    job=observe_sources_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
    description="Hourly: observe the source exports and check their freshness.",
)
def hourly_source_observation() -> RunRequest:
    return RunRequest()


_QUARTERLY_KEYS = {SIGNALS: qbr_referral_signals.key} | {a.key.path[-1]: a.key for a in kpi_assets}
_DOWNSTREAM_OF_SIGNALS = "qbr_referral_intent_rate"


def _recorded_fingerprint(context: SensorEvaluationContext, key: AssetKey, partition: str) -> str | None:
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    recorded = records[0].asset_materialization.metadata.get(FINGERPRINTS_METADATA)
    return recorded.value.get(partition) if recorded else None


def changed_quarters(
    context: SensorEvaluationContext, warehouse: Warehouse, kpi_config: KpiConfig
) -> dict[str, list[AssetKey]]:
    """{quarter: assets} for every materialised quarter whose current inputs differ from its last run's."""
    with warehouse.connect() as con:
        load_run_quarters(con, *all_quarters_window())
        current = {name: quarter_fingerprints(con, name, kpi_config) for name in _QUARTERLY_KEYS}
    changed: dict[str, set[str]] = {}
    for name, key in _QUARTERLY_KEYS.items():
        for partition in context.instance.get_materialized_partitions(key):
            if current[name].get(partition) != _recorded_fingerprint(context, key, partition):
                changed.setdefault(partition, set()).add(name)
    for names in changed.values():
        if SIGNALS in names:
            names.add(_DOWNSTREAM_OF_SIGNALS)
    return {q: [_QUARTERLY_KEYS[n] for n in sorted(names)] for q, names in sorted(changed.items())}


@sensor(
    job=recompute_quarter_job,
    minimum_interval_seconds=120,
    default_status=DefaultSensorStatus.RUNNING,
    description="After the sources are re-staged, recompute exactly the quarters whose inputs changed.",
)
def changed_quarters_sensor(context: SensorEvaluationContext, warehouse: Warehouse, kpi_config: KpiConfig):
    latest = [
        context.instance.fetch_materializations(key, limit=1).records for key in STAGING_KEYS.values()
    ]
    staged_up_to = max((records[0].storage_id for records in latest if records), default=0)
    if staged_up_to <= int(context.cursor or 0):
        return SkipReason("no source re-staged since the last evaluation")
    changed = changed_quarters(context, warehouse, kpi_config)
    context.update_cursor(str(staged_up_to))
    if not changed:
        return SkipReason("no quarter's inputs changed")
    return [
        RunRequest(run_key=f"{quarter}-{staged_up_to}", partition_key=quarter, asset_selection=keys)
        for quarter, keys in changed.items()
    ]
