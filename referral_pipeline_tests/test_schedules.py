"""The daily schedule's quarters, and recomputing exactly the quarters whose inputs changed."""

from datetime import datetime, timezone

import pytest
from dagster import AssetKey, DagsterInstance, build_schedule_context, build_sensor_context

from referral_pipeline.definitions import defs
from referral_pipeline.defs.schedules import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    changed_quarters_sensor,
    daily_kpi_refresh,
)
from referral_pipeline_tests.fixtures import account, partner, referred_opportunity
from referral_pipeline_tests.fixtures import SourceSet


@pytest.mark.parametrize(
    ("at", "quarters"),
    [
        ("2025-05-15T03:00:00", ("2025-04-01", "2025-04-01")),  # mid-quarter: the quarter in progress
        ("2025-07-01T03:00:00", ("2025-04-01", "2025-07-01")),  # the first day: the closed one too
        ("2025-07-02T03:00:00", ("2025-04-01", "2025-07-01")),
        ("2025-12-31T03:00:00", ("2025-10-01", "2025-10-01")),  # the last day: no new quarter yet
    ],
)
def test_daily_refresh_requests_the_quarter_in_progress_and_the_one_just_closed(at, quarters):
    when = datetime.fromisoformat(at).replace(tzinfo=timezone.utc)
    request = daily_kpi_refresh(build_schedule_context(scheduled_execution_time=when))
    assert (request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]) == quarters


def test_daily_refresh_is_a_real_run_of_its_quarters(pipeline):
    """The schedule's request runs as one run over both quarters of its range."""
    s = SourceSet(accounts=[account("REF", tier="strategic")], partners=[partner("GOLD")])
    s.opportunities = [referred_opportunity("O1", "2025-06-01"), referred_opportunity("O2", "2025-07-01")]
    s.write(pipeline.data_dir)
    when = datetime(2025, 7, 2, 3, tzinfo=timezone.utc)
    request = daily_kpi_refresh(build_schedule_context(scheduled_execution_time=when))
    pipeline.run(partition_range=(request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]), job_name="refresh_kpis")
    assert pipeline.query("SELECT DISTINCT quarter FROM kpi.strategic_referral_win_rate ORDER BY 1") == [
        ("2025-Q2",), ("2025-Q3",)
    ]


QUARTERLY_KEYS = tuple(
    key for key in defs.resolve_asset_graph().get_all_asset_keys() if key.path[0] in ("intermediate", "facts", "kpi")
)


def materializations(instance: DagsterInstance) -> dict[int, tuple[str, str]]:
    """{storage id: (asset, partition)} of the quarterly assets' materialisations."""
    return {
        record.storage_id: (key.path[-1], record.partition_key)
        for key in QUARTERLY_KEYS
        for record in instance.fetch_materializations(key, limit=100).records
    }


def test_an_edit_in_an_old_quarter_recomputes_that_quarter_only(pipeline):
    s = SourceSet(accounts=[account("REF", tier="strategic")], partners=[partner("GOLD")])
    s.opportunities = [
        referred_opportunity("O1", "2024-05-01"),  # 2024-Q2: this deal closes today
        referred_opportunity("O2", "2024-08-01"),
        referred_opportunity("O3", "2025-05-01"),
    ]
    s.write(pipeline.data_dir)
    instance = DagsterInstance.ephemeral()
    pipeline.run(partition_range=("2024-01-01", "2025-04-01"), instance=instance)

    resources = {"warehouse": pipeline.warehouse_resource(), "kpi_config": defs.resources["kpi_config"]}
    sensor_context = build_sensor_context(instance=instance, resources=resources, definitions=defs)
    assert changed_quarters_sensor(sensor_context).skip_message  # nothing re-staged, nothing to do

    s.opportunities[0].update(stage="closed_won", closed_at="2025-11-28T09:00:00Z")
    s.write(pipeline.data_dir)
    pipeline.run("2025-04-01", instance=instance)  # the daily run: re-stages, recomputes its quarter
    before = max(materializations(instance))

    sensor_context = build_sensor_context(instance=instance, resources=resources, definitions=defs,
                                          cursor=sensor_context.cursor)
    requests = changed_quarters_sensor(sensor_context)
    assert [(r.partition_key, [k.to_user_string() for k in r.asset_selection]) for r in requests] == [
        ("2024-04-01", ["facts/strategic_referral_opportunities", "kpi/referral_funnel",
                        "kpi/strategic_referral_win_rate", "reports/kpi_dashboard"])
    ]
    for request in requests:
        pipeline.run(request.partition_key, instance=instance, job_name="recompute_changed_quarter",
                     asset_selection=request.asset_selection)
    ran = {done for storage_id, done in materializations(instance).items() if storage_id > before}
    assert ran == {("strategic_referral_opportunities", "2024-04-01"), ("referral_funnel", "2024-04-01"),
                   ("strategic_referral_win_rate", "2024-04-01")}
    assert pipeline.kpi("strategic_referral_win_rate", "2024-Q2") == (1, 1, 100.0)

    sensor_context = build_sensor_context(instance=instance, resources=resources, definitions=defs,
                                          cursor="0")
    assert changed_quarters_sensor(sensor_context).skip_message == "no quarter's inputs changed"
