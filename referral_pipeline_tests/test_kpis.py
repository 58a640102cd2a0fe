"""The seeds' worked examples and the contract's KPI rules, on hand-checked source folders."""

import duckdb
from dagster import AssetCheckKey, AssetKey

from referral_pipeline_tests.fixtures import (
    SourceSet,
    account,
    ask,
    nps,
    opportunity,
    partner,
    qbr,
    referred_opportunity,
    worked_examples,
)

Q2 = "2025-04-01"


def test_seed_worked_examples(pipeline):
    worked_examples().write(pipeline.data_dir)
    pipeline.run(Q2)
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (24, 40, 60.0)
    assert pipeline.kpi("qbr_referral_intent_rate", "2025-Q2") == (18, 60, 30.0)
    pipeline.run(Q2, config={"warm_intro_scope": "promoters"})
    assert pipeline.kpi("warm_intro_offer_rate", "2025-Q2") == (38, 200, 19.0)


def base() -> SourceSet:
    """A strategic customer account REF, a gold partner, an advisor, a silver partner."""
    s = SourceSet()
    s.accounts.append(account("REF", tier="strategic", csm_owner="ana"))
    s.partners += [partner("GOLD", "gold"), partner("ADV", "registered", "advisor"), partner("SILVER", "silver")]
    return s


def test_quarter_boundaries_are_utc_instants(pipeline):
    s = base()
    s.opportunities += [
        referred_opportunity("O1", "2025-03-31T23:30:00-02:00"),  # 2025-04-01 01:30 UTC: Q2
        referred_opportunity("O2", "2025-04-01T01:00:00+02:00"),  # 2025-03-31 23:00 UTC: Q1
        referred_opportunity("O3", "2025-06-30T23:59:59Z"),  # Q2
        referred_opportunity("O4", "2025-07-01"),  # midnight UTC: Q3
    ]
    s.write(pipeline.data_dir)
    pipeline.run(partition_range=("2025-01-01", "2025-07-01"))
    assert [pipeline.kpi("strategic_referral_win_rate", q)[1] for q in ("2025-Q1", "2025-Q2", "2025-Q3")] == [1, 2, 1]


def test_strategic_referrers_are_resolved_by_their_type(pipeline):
    s = base()
    s.accounts.append(account("ENT", tier="enterprise"))
    s.opportunities += [
        referred_opportunity("O1", "2025-05-01", "REF", "customer", stage="closed_won", vertical="fintech", owner="kim"),
        referred_opportunity("O2", "2025-05-01", "GOLD", "partner", vertical="fintech", owner="kim"),
        referred_opportunity("O3", "2025-05-01", "ADV", "partner", stage="closed_won"),
        referred_opportunity("O4", "2025-05-01", "SILVER", "partner"),  # silver: not strategic
        referred_opportunity("O5", "2025-05-01", "GOLD", "customer"),  # a partner id given as a customer
        referred_opportunity("O6", "2025-05-01", "NOBODY", "customer"),  # resolves to nothing
        referred_opportunity("O7", "2025-05-01", "ENT", "customer"),  # enterprise: not strategic by default
        referred_opportunity("O8", "2025-05-01", "REF", "employee"),  # employees are never strategic
        opportunity("O9", "2025-05-01", lead_source="partner"),  # lead_source alone is no referral
    ]
    s.write(pipeline.data_dir)
    pipeline.run(Q2)
    win_rate = "strategic_referral_win_rate"
    assert pipeline.kpi(win_rate, "2025-Q2") == (2, 3, 100 * 2 / 3)
    rows = pipeline.query(
        f"SELECT dimension, segment, numerator, denominator FROM kpi.{win_rate} "
        "WHERE dimension <> 'overall' ORDER BY 1, 2"
    )
    assert rows == [
        ("owner", "(none)", 1, 1), ("owner", "kim", 1, 2),
        ("referral_source_type", "customer", 1, 1), ("referral_source_type", "partner", 1, 2),
        ("referrer_tier", "advisor", 1, 1), ("referrer_tier", "gold", 0, 1), ("referrer_tier", "strategic", 1, 1),
        ("vertical", "(none)", 1, 1), ("vertical", "fintech", 1, 2),
    ]
    checks = {
        (e.asset_check_key.asset_key.path[-1], e.asset_check_key.name): e.passed
        for e in pipeline.run(Q2).get_asset_check_evaluations()
    }
    assert checks[("opportunities", "referrer_resolves")] is False  # O5 and O6 are counted
    pipeline.run(Q2, config={"advisors_are_strategic": False,
                             "strategic_customer_tiers": ["Strategic", "enterprise"]})
    assert pipeline.kpi(win_rate, "2025-Q2") == (1, 3, 100 / 3)  # O1, O2, O7


def test_warm_intro_scope_churn_and_nps_at_quarter_end(pipeline):
    s = base()
    s.accounts += [
        account("CHURN_FIRST_DAY", churned_on="2025-04-01", lifecycle_stage="churned"),
        account("CHURN_BEFORE", churned_on="2025-03-31", lifecycle_stage="churned"),
        account("SINCE_LAST_DAY", since="2025-06-30"),
        account("SINCE_NEXT_Q", since="2025-07-01"),
        account("PROSPECT", since=None),
        account("TIE"),
    ]
    s.nps_responses += [
        nps("N1", "TIE", 9, "2025-06-01T10:00:00Z"),
        nps("N2", "TIE", 8, "2025-06-01T12:00:00+02:00"),  # same instant: mean 8.5
        nps("N3", "TIE", 10, "2025-07-01T00:00:00Z"),  # next quarter's first instant: too late
        nps("N4", "SINCE_LAST_DAY", 10, "2021-01-01"),  # of any age
    ]
    s.warm_intro_asks += [
        ask("K1", "CHURN_FIRST_DAY", "2025-05-01", asked_by="ana"),
        ask("K2", "SINCE_LAST_DAY", "2025-04-02", asked_by="ana"),  # before customer_since, in scope
        ask("K3", "SINCE_LAST_DAY", "2025-05-02", "nps"),  # asked twice: counts once
        ask("K4", "CHURN_BEFORE", "2025-05-01", asked_by="ana"),  # out of scope
        ask("K5", "PROSPECT", "2025-05-01"),  # never a customer
        ask("K6", "TIE", "2025-07-01T00:00:00Z"),  # next quarter
    ]
    s.write(pipeline.data_dir)
    pipeline.run(Q2)
    rate = "warm_intro_offer_rate"
    # in scope: REF, CHURN_FIRST_DAY, SINCE_LAST_DAY, TIE
    assert pipeline.kpi(rate, "2025-Q2") == (2, 4, 50.0)
    assert pipeline.kpi(rate, "2025-Q2", "nps_band", "passive") == (0, 1, 0.0)
    assert pipeline.kpi(rate, "2025-Q2", "nps_band", "promoter") == (1, 1, 100.0)
    assert pipeline.kpi(rate, "2025-Q2", "nps_band", "no_response") == (1, 2, 50.0)
    assert pipeline.kpi(rate, "2025-Q2", "asked_by", "ana") == (2, 4, 50.0)
    assert pipeline.kpi(rate, "2025-Q2", "asked_by", "(none)") == (1, 4, 25.0)
    assert pipeline.kpi(rate, "2025-Q2", "trigger_event", "qbr") == (2, 4, 50.0)
    assert pipeline.kpi(rate, "2025-Q2", "trigger_event", "nps") == (1, 4, 25.0)
    assert pipeline.kpi(rate, "2025-Q2", "trigger_event", "other") == (0, 4, 0.0)
    assert pipeline.kpi(rate, "2025-Q2", "lifecycle_stage", "churned") == (1, 1, 100.0)

    pipeline.run(Q2, config={"warm_intro_scope": "promoters", "counted_triggers": ["nps"]})
    assert pipeline.kpi(rate, "2025-Q2") == (1, 1, 100.0)  # SINCE_LAST_DAY, asked through nps
    triggers = pipeline.query(
        f"SELECT segment FROM kpi.{rate} WHERE quarter = '2025-Q2' AND dimension = 'trigger_event'"
    )
    assert triggers == [("nps",)]
    assert pipeline.kpi(rate, "2025-Q2", "asked_by", "ana") is None  # asked through qbr only


def test_quarter_with_no_denominator_has_its_overall_row_alone(pipeline):
    s = base()
    s.opportunities.append(referred_opportunity("O1", "2025-05-01"))
    s.write(pipeline.data_dir)
    pipeline.run("2024-01-01")
    for name in ("strategic_referral_win_rate", "qbr_referral_intent_rate"):
        assert pipeline.query(f"SELECT dimension, segment, numerator, denominator, rate_pct FROM kpi.{name}") == [
            ("overall", "all", 0, 0, None)
        ]


def test_qbr_signals_tags_text_and_dimensions(pipeline):
    s = base()
    s.accounts.append(account("C1", tier="smb", csm_owner="owner1"))
    s.qbr_notes += [
        qbr("Q1", "C1", "2025-04-01", tags=["\t REFERRAL_INTENT \u00a0"], format="In_Person"),
        qbr("Q2", "C1", "2025-04-02", tags=["no_referral_intent"], csm="csm2"),
        qbr("Q3", "C1", "2025-04-03", notes="Reviewed usage. They offered to introduce us to their CFO."),
        qbr("Q4", "UNKNOWN", "2025-06-30"),
        qbr("Q5", "C1", "2025-05-01", status="cancelled", tags=["referral_intent"]),
        qbr("Q6", "C1", "2025-07-01", tags=["referral_intent"]),
    ]
    s.write(pipeline.data_dir)
    pipeline.run(Q2)
    rate = "qbr_referral_intent_rate"
    assert pipeline.kpi(rate, "2025-Q2") == (2, 4, 50.0)
    assert pipeline.kpi(rate, "2025-Q2", "csm", "owner1") == (2, 2, 100.0)
    assert pipeline.kpi(rate, "2025-Q2", "csm", "csm2") == (0, 1, 0.0)
    assert pipeline.kpi(rate, "2025-Q2", "csm", "(none)") == (0, 1, 0.0)
    assert pipeline.kpi(rate, "2025-Q2", "account_tier", "(none)") == (0, 1, 0.0)
    assert pipeline.kpi(rate, "2025-Q2", "format", "in_person") == (1, 1, 100.0)
    signals = pipeline.query(
        "SELECT qbr_id, referral_signal, signal_source, evidence FROM intermediate.qbr_referral_signals ORDER BY 1"
    )
    assert signals == [
        ("Q1", True, "tag", "\t REFERRAL_INTENT \u00a0"),
        ("Q2", False, None, None),
        ("Q3", True, "text", "They offered to introduce us to their CFO."),
        ("Q4", False, None, None),
        ("Q5", True, "tag", "referral_intent"),
    ]


def test_rematerialising_a_quarter_replaces_exactly_its_rows(pipeline):
    s = base()
    s.opportunities += [referred_opportunity("O1", "2025-05-01", stage="closed_won"), referred_opportunity("O2", "2025-02-01")]
    s.write(pipeline.data_dir)
    pipeline.run(partition_range=("2025-01-01", "2025-04-01"))
    snapshot = "SELECT * FROM kpi.{} ORDER BY ALL"
    before = {name: pipeline.query(snapshot.format(name)) for name in
              ("strategic_referral_win_rate", "warm_intro_offer_rate", "qbr_referral_intent_rate")}
    pipeline.run(Q2)
    assert {name: pipeline.query(snapshot.format(name)) for name in before} == before

    s.opportunities[0]["stage"] = "closed_lost"
    s.opportunities[1]["stage"] = "closed_won"
    s.opportunities[1]["closed_at"] = "2025-02-02"
    s.write(pipeline.data_dir)
    pipeline.run(Q2)
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (0, 1, 0.0)
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q1") == (0, 1, 0.0)  # not re-run: unchanged


def test_facts_rows_behind_the_win_rate(pipeline):
    s = base()
    s.opportunities += [
        referred_opportunity("O1", "2025-05-01T10:00:00Z", "REF", "customer", stage="closed_won",
                             closed_at="2025-06-01", amount="1200.5", vertical="fintech", owner="kim"),
        referred_opportunity("O2", "2025-05-02", "ADV", "partner"),
        referred_opportunity("O3", "2025-05-03", "SILVER", "partner", stage="closed_won"),  # not strategic
    ]
    s.write(pipeline.data_dir)
    pipeline.run(Q2)
    rows = pipeline.query(
        "SELECT quarter, opportunity_id, stage, closed_won, amount, referral_source_type, referrer_id, "
        "referrer_tier, vertical, owner FROM facts.strategic_referral_opportunities ORDER BY opportunity_id"
    )
    assert rows == [
        ("2025-Q2", "O1", "closed_won", 1, 1200.5, "customer", "REF", "strategic", "fintech", "kim"),
        ("2025-Q2", "O2", "prospecting", 0, None, "partner", "ADV", "advisor", None, None),
    ]
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (1, 2, 50.0)


def warm_intro_sources() -> SourceSet:
    """2025-Q2: A promoter asked twice (qbr by ana, renewal), B a detractor asked through nps,
    C never asked, D churned before the quarter (asked, out of scope)."""
    s = base()
    s.accounts += [account("A", csm_owner="ana"), account("B", tier="smb"), account("C"),
                   account("D", churned_on="2025-03-01", lifecycle_stage="churned")]
    s.nps_responses += [nps("N1", "A", 10, "2025-05-01"), nps("N2", "B", 3, "2025-05-01")]
    s.warm_intro_asks += [
        ask("K1", "A", "2025-05-02", "qbr", asked_by="ana", outcome="accepted"),
        ask("K2", "A", "2025-06-02", "renewal"),
        ask("K3", "B", "2025-05-03", "nps", asked_by="bo"),
        ask("K4", "D", "2025-05-04", "qbr", asked_by="ana"),
    ]
    return s


def test_facts_rows_behind_the_warm_intro_rate_follow_scope_and_triggers(pipeline):
    warm_intro_sources().write(pipeline.data_dir)
    pipeline.run(Q2)
    customers = "SELECT account_id, nps_score, nps_band, asked FROM facts.active_customers ORDER BY 1"
    asks = "SELECT ask_id, account_id, asked_by, trigger_event, outcome FROM facts.warm_introduction_offers ORDER BY 1"
    assert pipeline.query(customers) == [
        ("A", 10.0, "promoter", 1), ("B", 3.0, "detractor", 1), ("C", None, "no_response", 0),
        ("REF", None, "no_response", 0),
    ]
    assert pipeline.query(asks) == [
        ("K1", "A", "ana", "qbr", "accepted"), ("K2", "A", None, "renewal", None), ("K3", "B", "bo", "nps", None),
    ]
    pipeline.run(Q2, config={"warm_intro_scope": "promoters", "counted_triggers": ["nps", "renewal"]})
    assert pipeline.query(customers) == [("A", 10.0, "promoter", 1)]  # asked through renewal
    assert pipeline.query(asks) == [("K2", "A", None, "renewal", None)]  # B is out of scope now
    assert pipeline.kpi("warm_intro_offer_rate", "2025-Q2", "trigger_event", "nps") == (0, 1, 0.0)
    assert pipeline.kpi("warm_intro_offer_rate", "2025-Q2", "trigger_event", "renewal") == (1, 1, 100.0)


def test_facts_rows_behind_the_qbr_rate(pipeline):
    s = base()
    s.accounts.append(account("C1", tier="smb", csm_owner="owner1"))
    s.qbr_notes += [
        qbr("Q1", "C1", "2025-04-01", tags=["referral_intent"]),
        qbr("Q2", "C1", "2025-04-02", csm="csm2", notes="Happy to be a reference for us."),
        qbr("Q3", "C1", "2025-04-03", status="cancelled", tags=["referral_intent"]),
    ]
    s.write(pipeline.data_dir)
    pipeline.run(Q2)
    assert pipeline.query(
        "SELECT qbr_id, csm, account_tier, referral_signal, signal_source, evidence FROM facts.completed_qbrs ORDER BY 1"
    ) == [
        ("Q1", "owner1", "smb", True, "tag", "referral_intent"),
        ("Q2", "csm2", "smb", True, "text", "Happy to be a reference for us."),
    ]


def test_referral_funnel_follows_in_scope_accounts_through_the_steps(pipeline):
    s = warm_intro_sources()
    s.qbr_notes += [qbr("Q1", "A", "2025-04-10", tags=["referral_intent"]),
                    qbr("Q2", "C", "2025-04-11", tags=["referral_intent"]),
                    qbr("Q3", "D", "2025-04-12", tags=["referral_intent"])]  # D is out of scope
    s.opportunities += [
        referred_opportunity("O1", "2025-05-01", "A", "customer", stage="closed_won"),  # A: every step
        referred_opportunity("O2", "2025-05-01", "C", "customer"),  # C: intent, not asked, referred
        referred_opportunity("O3", "2025-05-01", "B", "customer", stage="closed_won"),  # B: no intent
        referred_opportunity("O4", "2025-02-01", "C", "customer", stage="closed_won"),  # another quarter
    ]
    s.write(pipeline.data_dir)
    pipeline.run(partition_range=("2022-10-01", Q2))
    rows = pipeline.query(
        "SELECT step, stage, accounts, pct_of_scope, accounts_through, step_conversion_pct "
        "FROM kpi.referral_funnel WHERE quarter = '2025-Q2' ORDER BY step"
    )
    # in scope: A, B, C, REF
    assert rows == [
        (1, "in_scope", 4, 100.0, 4, None),
        (2, "referral_intent", 2, 50.0, 2, 50.0),  # A, C
        (3, "asked", 2, 50.0, 1, 50.0),  # A, B; through: A
        (4, "referred", 3, 75.0, 1, 100.0),  # A, B, C; through: A
        (5, "referral_won", 2, 50.0, 1, 100.0),  # A, B; through: A
    ]
    empty = pipeline.query("SELECT step, accounts, pct_of_scope, accounts_through, step_conversion_pct "
                           "FROM kpi.referral_funnel WHERE quarter = '2022-Q4' ORDER BY step")  # before any customer
    assert empty == [(step, 0, None, 0, None) for step in range(1, 6)]


def test_the_facts_check_fails_when_a_facts_row_is_changed_by_hand(pipeline):
    s = base()
    s.opportunities += [referred_opportunity("O1", "2025-05-01", stage="closed_won"),
                        referred_opportunity("O2", "2025-05-02")]
    s.write(pipeline.data_dir)
    result = pipeline.run(Q2)
    checks = {e.asset_check_key.name: e.passed for e in result.get_asset_check_evaluations()
              if e.asset_key.path[-1] == "strategic_referral_win_rate"}
    assert checks["matches_its_facts"] is True

    with duckdb.connect(str(pipeline.warehouse)) as con:
        con.execute("UPDATE facts.strategic_referral_opportunities SET closed_won = 1 WHERE opportunity_id = 'O2'")
    check_key = AssetCheckKey(AssetKey(["kpi", "strategic_referral_win_rate"]), "matches_its_facts")
    result = pipeline.run(Q2, asset_check_selection=[check_key], raise_on_error=False)
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.passed is False
    # 5 rows (overall, and O2's segment of each of the 4 dimensions), each found on both sides
    assert evaluation.metadata["mismatched_rows"].value == 10
