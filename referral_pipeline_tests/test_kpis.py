"""The seeds' worked examples and the contract's KPI rules, on hand-checked source folders."""

from referral_pipeline_tests.conftest import SourceSet, account, ask, nps, opportunity, partner, qbr

Q2 = "2025-04-01"


def worked_examples() -> SourceSet:
    """2025-Q2: 24 of 40 strategic referrals won; 38 of 200 promoters asked; 18 of 60 QBRs."""
    s = SourceSet()
    s.accounts.append(account("REF", tier="strategic", csm_owner="ana"))
    s.accounts.append(account("SMB", tier="smb"))
    s.partners += [partner("GOLD", "gold"), partner("SILVER", "silver"), partner("ADV", "registered", "advisor")]
    for i in range(40):  # strategic: by the strategic account, a gold partner or an advisor
        referrer = [("customer", "REF"), ("partner", "GOLD"), ("partner", "ADV")][i % 3]
        s.opportunities.append(opportunity(
            f"S{i}", "2025-05-01T10:00:00Z", "closed_won" if i < 24 else "closed_lost",
            referral_source_type=referrer[0], referrer_id=referrer[1], owner="rep1"))
    s.opportunities += [  # not strategic: an smb customer, a silver partner, an employee, no referral
        opportunity("N1", "2025-05-01", "closed_won", referral_source_type="customer", referrer_id="SMB"),
        opportunity("N2", "2025-05-01", "closed_won", referral_source_type="partner", referrer_id="SILVER"),
        opportunity("N3", "2025-05-01", "closed_won", referral_source_type="employee", referrer_id="E1"),
        opportunity("N4", "2025-05-01", "closed_won"),
    ]
    for i in range(250):  # 200 promoters, 50 passives; the first 38 promoters and 10 passives asked
        s.accounts.append(account(f"C{i}", csm_owner="bo"))
        s.nps_responses.append(nps(f"R{i}", f"C{i}", 9 + i % 2 if i < 200 else 8, "2025-03-15T00:00:00Z"))
        if i < 38 or 200 <= i < 210:
            s.warm_intro_asks.append(ask(f"K{i}", f"C{i}", "2025-06-30T23:59:59Z", "renewal"))
    for i in range(60):
        tags = ["referral_intent"] if i < 12 else []
        notes = "They offered to introduce us to their CFO." if 12 <= i < 18 else "Reviewed adoption."
        s.qbr_notes.append(qbr(f"Q{i}", f"C{i}", "2025-05-20", tags=tags, notes=notes))
    s.qbr_notes.append(qbr("QX", "C1", "2025-05-20", status="cancelled", tags=["referral_intent"]))
    return s


def test_seed_worked_examples(pipeline):
    worked_examples().write(pipeline.data_dir)
    pipeline.run(Q2)
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (24, 40, 60.0)
    assert pipeline.kpi("qbr_referral_intent_rate", "2025-Q2") == (18, 60, 30.0)
    pipeline.run(Q2, config={"warm_intro_scope": "promoters"})
    assert pipeline.kpi("warm_intro_offer_rate", "2025-Q2") == (38, 200, 19.0)
