-- One row per strategic referral created in each of the run's quarters: the win rate's denominator.
-- A referrer is looked up by its type: a customer among the accounts, a partner among the partners.
SELECT q.quarter, o.opportunity_id, o.account_id, o.created_at, o.stage,
       (o.stage = 'closed_won')::INTEGER AS closed_won,
       o.amount, o.referral_source_type, o.referrer_id,
       CASE WHEN o.referral_source_type = 'customer' THEN a.account_tier
            WHEN p.partner_type = 'advisor' THEN 'advisor'
            ELSE p.partner_tier END AS referrer_tier,
       o.vertical, o.owner
FROM staging.opportunities o
JOIN run_quarters q ON q.quarter = quarter_of(o.created_at)
LEFT JOIN staging.accounts a ON o.referral_source_type = 'customer' AND a.account_id = o.referrer_id
LEFT JOIN staging.partners p ON o.referral_source_type = 'partner' AND p.partner_id = o.referrer_id
WHERE (o.referral_source_type = 'customer' AND list_contains($strategic_customer_tiers, a.account_tier))
   OR (o.referral_source_type = 'partner' AND (
           list_contains($strategic_partner_tiers, p.partner_tier)
           OR ($advisors_are_strategic AND p.partner_type = 'advisor')))
