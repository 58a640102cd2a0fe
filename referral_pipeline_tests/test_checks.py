"""The KPI check that a closed quarter was refreshed after its close, at frozen times; the staging
warning checks, counted again only when a table they read changed."""

from datetime import datetime, timezone

from dagster import AssetKey, AssetMaterialization, DagsterInstance

from referral_pipeline.defs.checks import closed_quarter_check
from referral_pipeline_tests.fixtures import SourceSet, account, opportunity

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


def _account_id_known(result):
    [evaluation] = [
        e for e in result.get_asset_check_evaluations()
        if e.asset_check_key.name == "account_id_known" and e.asset_check_key.asset_key.path[-1] == "opportunities"
    ]
    return evaluation.passed, {k: v.value for k, v in evaluation.metadata.items()}


def test_a_warning_check_counts_again_only_when_a_table_it_reads_was_staged_from_other_content(pipeline):
    s = SourceSet()
    s.accounts.append(account("C1"))
    s.opportunities += [opportunity("O1", "2025-05-01", account_id="C1"), opportunity("O2", "2025-05-01", account_id="C2")]
    s.write(pipeline.data_dir)
    assert _account_id_known(pipeline.run("2025-04-01")) == (False, {"rows": 1, "staged_rows": 2, "counted_again": True})
    # Nothing changed: the counts are those of the tables as they were counted.
    assert _account_id_known(pipeline.run("2025-04-01")) == (False, {"rows": 1, "staged_rows": 2, "counted_again": False})
    # The accounts file gains C2: the check reads staging.accounts, so it counts again.
    s.accounts.append(account("C2"))
    s.write(pipeline.data_dir)
    assert _account_id_known(pipeline.run("2025-04-01")) == (True, {"rows": 0, "staged_rows": 2, "counted_again": True})
