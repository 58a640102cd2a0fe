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

from referral_pipeline.defs.assets.facts import facts_assets, table_key
from referral_pipeline.defs.assets.intermediate import qbr_referral_signals
from referral_pipeline.defs.assets.kpi import kpi_assets, referral_funnel
from referral_pipeline.defs.assets.reports import DASHBOARD_KEY
from referral_pipeline.defs.assets.source_files import source_files
from referral_pipeline.defs.assets.staging import STAGING_KEYS
from referral_pipeline.defs.partitions import (
    all_quarters_window,
    previous_quarter,
    quarter_in_progress,
    quarter_window,
)
from referral_pipeline.defs.quarterly import FINGERPRINT_METADATA, RANGE_END_TAG, RANGE_START_TAG
from referral_pipeline.defs.resources import KpiConfig, Warehouse
from referral_pipeline.lib.fingerprints import current_fingerprints, signals_fingerprints
from referral_pipeline.lib.kpis import FACTS, REFERRAL_FUNNEL
from referral_pipeline.lib.quarters import FIRST_QUARTER, load_run_quarters

# Late deals close after the quarter ends: the daily run recomputes the closed quarter this long.
LATE_CLOSE_WINDOW = timedelta(weeks=6)

QUARTERLY_ASSETS = AssetSelection.groups("intermediate", "facts", "kpi")
REPORTS = AssetSelection.groups("reports")  # rewritten after every KPI run

refresh_job = define_asset_job(
    "refresh_kpis",
    selection=AssetSelection.groups("staging") | QUARTERLY_ASSETS | REPORTS,
    description="Stage every source, then recompute the quarters' signals, facts, KPIs and funnel; redraw the dashboard.",
)
recompute_quarter_job = define_asset_job(
    "recompute_changed_quarter",
    selection=QUARTERLY_ASSETS | REPORTS,
    description="Recompute one quarter of the assets whose inputs changed since they last ran; redraw the dashboard.",
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


_QUARTERLY = [qbr_referral_signals, *facts_assets, *kpi_assets, referral_funnel]
# What each quarterly asset reads among the quarterly assets: recomputing one recomputes these.
_UPSTREAM = {a.key: {d for d in a.asset_deps[a.key] if d in {q.key for q in _QUARTERLY}} for a in _QUARTERLY}


def _with_downstream(keys: set[AssetKey]) -> set[AssetKey]:
    """``keys`` and every quarterly asset that reads them, directly or not."""
    found = set(keys)
    while grown := {k for k, upstream in _UPSTREAM.items() if upstream & found} - found:
        found |= grown
    return found


def _recorded_fingerprint(context: SensorEvaluationContext, key: AssetKey, partition: str) -> str | None:
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(key, asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    recorded = records[0].asset_materialization.metadata.get(FINGERPRINT_METADATA)
    return recorded.value if recorded else None


def changed_quarters(
    context: SensorEvaluationContext, warehouse: Warehouse, kpi_config: KpiConfig
) -> dict[str, list[AssetKey]]:
    """{quarter: assets} for every materialised quarter whose inputs differ from its last run's.

    The signals, the facts and the funnel are fingerprinted (the rows of the facts and the funnel
    recomputed from today's tables);
    whatever reads a changed one is recomputed with it.
    """
    parameters = kpi_config.model_dump()
    with warehouse.connect() as con:
        load_run_quarters(con, *all_quarters_window())
        current = {qbr_referral_signals.key: signals_fingerprints(con, kpi_config.referral_tags)}
        for derived in (*FACTS, REFERRAL_FUNNEL):  # in dependency order
            current[table_key(derived.table)] = current_fingerprints(con, derived, parameters)
    changed: dict[str, set[AssetKey]] = {}
    for key, fingerprints in current.items():
        for partition in context.instance.get_materialized_partitions(key):
            if fingerprints.get(partition) != _recorded_fingerprint(context, key, partition):
                changed.setdefault(partition, set()).add(key)
    return {
        quarter: sorted(_with_downstream(keys), key=lambda k: k.to_user_string())
        for quarter, keys in sorted(changed.items())
    }


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
        RunRequest(run_key=f"{quarter}-{staged_up_to}", partition_key=quarter, asset_selection=[*keys, DASHBOARD_KEY])
        for quarter, keys in changed.items()
    ]
