"""A range run records each quarter's own figures on that quarter's materialisation."""

from dagster import AssetKey, DagsterInstance

from referral_pipeline.defs.quarterly import FINGERPRINT_METADATA
from referral_pipeline_tests.fixtures import SourceSet, account, partner, referred_opportunity


def test_each_quarter_of_a_range_run_gets_its_own_row_count_and_fingerprint(pipeline):
    s = SourceSet(accounts=[account("REF", tier="strategic")], partners=[partner("GOLD")])
    s.opportunities = [referred_opportunity("O1", "2025-02-01"), referred_opportunity("O2", "2025-05-01"),
                       referred_opportunity("O3", "2025-05-02"), referred_opportunity("O4", "2025-05-03")]
    s.write(pipeline.data_dir)
    instance = DagsterInstance.ephemeral()
    pipeline.run(partition_range=("2025-01-01", "2025-04-01"), instance=instance)

    def latest(key: AssetKey, partition: str) -> dict:
        records = instance.fetch_materializations(key, limit=20).records
        record = next(r for r in records if r.partition_key == partition)
        return {name: value.value for name, value in record.asset_materialization.metadata.items()}

    facts = AssetKey(["facts", "strategic_referral_opportunities"])
    q1, q2 = latest(facts, "2025-01-01"), latest(facts, "2025-04-01")
    assert (q1["quarter"], q1["dagster/row_count"]) == ("2025-Q1", 1)
    assert (q2["quarter"], q2["dagster/row_count"]) == ("2025-Q2", 3)
    assert q1[FINGERPRINT_METADATA] != q2[FINGERPRINT_METADATA]
    kpi = latest(AssetKey(["kpi", "strategic_referral_win_rate"]), "2025-04-01")
    assert (kpi["numerator"], kpi["denominator"]) == (0, 3)
    assert "facts.strategic_referral_opportunities" in kpi["drill_down"]
