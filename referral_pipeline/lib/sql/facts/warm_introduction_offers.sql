-- One row per ask in each of the run's quarters through a counted trigger, of an account in the
-- warm-intro scope that quarter (whatever the ask's date relative to customer_since or churned_on).
SELECT q.quarter, k.ask_id, k.account_id, k.asked_by, k.trigger_event, k.asked_at, k.outcome
FROM staging.warm_intro_asks k
JOIN run_quarters q ON q.quarter = quarter_of(k.asked_at)
SEMI JOIN facts.active_customers c ON c.quarter = q.quarter AND c.account_id = k.account_id
WHERE list_contains($counted_triggers, k.trigger_event)
