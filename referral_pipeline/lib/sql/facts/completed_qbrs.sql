-- One row per completed QBR held in each of the run's quarters: the QBR rate's denominator, with
-- its referral signal. csm is the QBR's, else the account's csm_owner; the tier is the account's.
SELECT q.quarter, n.qbr_id, n.account_id, n.held_on, coalesce(n.csm, a.csm_owner) AS csm, n.format,
       a.account_tier, coalesce(s.referral_signal, false) AS referral_signal, s.signal_source, s.evidence
FROM staging.qbr_notes n
JOIN run_quarters q ON q.quarter = quarter_of(n.held_on)
LEFT JOIN intermediate.qbr_referral_signals s ON s.quarter = q.quarter AND s.qbr_id = n.qbr_id
LEFT JOIN staging.accounts a ON a.account_id = n.account_id
WHERE n.status = 'completed'
