"""The KPI check that a closed quarter was refreshed after its close, at frozen times."""

from datetime import datetime, timezone

from dagster import AssetKey, AssetMaterialization, DagsterInstance

from referral_pipeline.defs.checks import closed_quarter_check

KPI = AssetKey(["kpi", "strategic_referral_win_rate"])


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_closed_quarter_is_due_within_the_grace_period():
    instance = DagsterInstance.ephemeral()
    within = closed_quarter_check(instance, KPI, at("2025-07-03T23:00:00"), grace_days=3)
    assert within.passed and "quarter 2025-04-01 closed at 2025-07-01" in within.description
    late = closed_quarter_check(instance, KPI, at("2025-07-05T12:00:00"), grace_days=3)
    assert not late.passed
    assert late.description == (
        "quarter 2025-04-01 closed 4.5 days ago and has not been materialised since (allowed: 3 days)"
    )
    assert closed_quarter_check(instance, KPI, at("2025-07-05T12:00:00"), grace_days=5).passed


def test_closed_quarter_materialised_after_its_close_passes():
    instance = DagsterInstance.ephemeral()
    instance.report_runless_asset_event(AssetMaterialization(KPI, partition="2025-01-01"))
    assert not closed_quarter_check(instance, KPI, at("2025-07-10"), grace_days=3).passed  # another quarter
    instance.report_runless_asset_event(AssetMaterialization(KPI, partition="2025-04-01"))
    result = closed_quarter_check(instance, KPI, at("2025-07-10"), grace_days=3)
    assert result.passed and "was materialised at" in result.description
