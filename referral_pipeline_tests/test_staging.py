"""The staging assets in real runs: the tolerance gate, failures that keep the warehouse as it was."""

import pytest
from dagster import AssetKey, DagsterInstance

from referral_pipeline.defs.assets.staging import TOLERANCE_CHECK
from referral_pipeline_tests.fixtures import SourceSet, account, partner, referred_opportunity

Q2 = "2025-04-01"


def with_partners(good: int, bad: int) -> SourceSet:
    s = SourceSet(accounts=[account("REF", tier="strategic")])
    s.partners = [partner(f"P{i}") for i in range(good)] + [partner(f"X{i}", tier="tin") for i in range(bad)]
    s.opportunities = [referred_opportunity("O1", "2025-05-01", "P0", "partner")]
    return s


def check_results(result) -> dict:
    return {
        (e.asset_check_key.asset_key.path[-1], e.asset_check_key.name): e.passed
        for e in result.get_asset_check_evaluations()
    }


def test_rejects_at_exactly_the_tolerance_pass(pipeline):
    with_partners(good=99, bad=1).write(pipeline.data_dir)  # 1 of 100: exactly 1%
    result = pipeline.run(Q2)
    assert result.success
    assert check_results(result)[("partners", TOLERANCE_CHECK)] is True
    assert check_results(result)[("partners", "rejected_rows")] is False  # the warning lists them
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (0, 1, 0.0)


def test_rejects_above_the_tolerance_hold_back_the_kpis_downstream(pipeline):
    with_partners(good=98, bad=1).write(pipeline.data_dir)  # 1 of 99: 1.01%
    result = pipeline.run(Q2, raise_on_error=False)
    assert not result.success
    assert check_results(result)[("partners", TOLERANCE_CHECK)] is False
    tables = {row[0] for row in pipeline.query("SELECT schema_name || '.' || table_name FROM duckdb_tables()")}
    assert "staging.partners" in tables  # the valid rows are staged, the bad one quarantined
    assert pipeline.query("SELECT count(*) FROM quarantine.rejected_rows") == [(1,)]
    assert "kpi.strategic_referral_win_rate" not in tables  # downstream of partners: held back
    assert "kpi.qbr_referral_intent_rate" in tables  # not downstream of partners

    result = pipeline.run(Q2, config={"max_rejected_fraction": 0.02})
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (0, 1, 0.0)


def test_a_missing_file_fails_its_asset_and_keeps_the_warehouse(pipeline):
    source_set = with_partners(good=5, bad=0)
    source_set.opportunities[0]["stage"] = "closed_won"
    source_set.opportunities[0]["closed_at"] = "2025-05-02"
    source_set.write(pipeline.data_dir)
    pipeline.run(Q2)
    (pipeline.data_dir / "crm" / "partners.csv").unlink()
    result = pipeline.run(Q2, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "crm/partners.csv: file not found" in str(failure.event_specific_data.error)
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (1, 1, 100.0)
    assert pipeline.query("SELECT count(*) FROM staging.partners") == [(5,)]


@pytest.mark.parametrize(
    ("config", "field"),
    [
        ({"warm_intro_scope": "everyone"}, "warm_intro_scope"),
        ({"strategic_customer_tiers": ["platinum"]}, "strategic_customer_tiers"),
        ({"strategic_partner_tiers": ["diamond"]}, "strategic_partner_tiers"),
        ({"counted_triggers": ["webinar"]}, "counted_triggers"),
        ({"max_rejected_fraction": -0.1}, "max_rejected_fraction"),
        ({"referral_tags": [" "]}, "referral_tags"),
    ],
)
def test_config_errors_fail_the_run_before_anything_is_read(pipeline, config, field):
    with_partners(good=5, bad=0).write(pipeline.data_dir)
    result = pipeline.run(Q2, config=config, raise_on_error=False)
    assert not result.success
    events = {e.event_type_value: e for e in result.all_events}
    assert "STEP_START" not in events
    assert field in events["RESOURCE_INIT_FAILURE"].event_specific_data.error.message
    assert not pipeline.warehouse.exists()


def test_the_quarantine_is_an_asset_with_each_staging_runs_rejects(pipeline):
    s = SourceSet(accounts=[account("A1"), account("A1", account_tier="nope"), account("A2", account_tier="bad")])
    s.write(pipeline.data_dir)
    instance = DagsterInstance.ephemeral()
    pipeline.run("2025-04-01", instance=instance, raise_on_error=False)
    records = instance.fetch_materializations(AssetKey(["quarantine", "rejected_rows"]), limit=20).records
    by_source = {r.asset_materialization.metadata["source"].value: r.asset_materialization.metadata for r in records}
    assert set(by_source) == {"accounts", "partners", "opportunities", "warm_intro_asks", "nps_responses", "qbr_notes"}
    assert by_source["accounts"]["quarantined_rows"].value == 3
    assert by_source["accounts"]["reasons"].value == {
        "conflicting duplicate": 2, "account_tier: 'bad' is not one of strategic, enterprise, mid_market, smb": 1
    }
    assert by_source["partners"]["quarantined_rows"].value == 0
