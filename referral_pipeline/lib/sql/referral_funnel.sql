-- The referral funnel: the accounts in the warm-intro scope of each of the run's quarters, through
-- the steps ($stages, in order) judged within that quarter. accounts: in-scope accounts at the step; accounts_through:
-- those at the step and at every earlier step.
WITH scope AS (
    SELECT quarter, account_id, asked = 1 AS asked FROM facts.active_customers
    WHERE quarter IN (SELECT quarter FROM run_quarters)
), intent AS (
    SELECT DISTINCT quarter, account_id FROM facts.completed_qbrs
    WHERE referral_signal AND quarter IN (SELECT quarter FROM run_quarters)
), referred AS (  -- customer referrals created in the quarter, strategic or not
    SELECT q.quarter, o.referrer_id AS account_id, bool_or(o.stage = 'closed_won') AS won
    FROM staging.opportunities o
    JOIN run_quarters q ON q.quarter = quarter_of(o.created_at)
    WHERE o.referral_source_type = 'customer'
    GROUP BY ALL
), stages AS (
    SELECT s.quarter, s.account_id,
           [true, i.account_id IS NOT NULL, s.asked, r.account_id IS NOT NULL, coalesce(r.won, false)] AS at
    FROM scope s
    LEFT JOIN intent i USING (quarter, account_id)
    LEFT JOIN referred r USING (quarter, account_id)
), steps AS (
    SELECT generate_subscripts($stages, 1) AS step, unnest($stages) AS stage
), counted AS (
    SELECT q.quarter, t.step, t.stage,
           count(s.account_id) FILTER (WHERE s.at[t.step]) AS accounts,
           count(s.account_id) FILTER (WHERE list_bool_and(s.at[1:t.step])) AS accounts_through
    FROM run_quarters q CROSS JOIN steps t
    LEFT JOIN stages s ON s.quarter = q.quarter
    GROUP BY ALL
)
SELECT quarter, step, stage, accounts,
       CASE WHEN first(accounts) OVER w > 0 THEN 100.0 * accounts / first(accounts) OVER w END AS pct_of_scope,
       accounts_through,
       CASE WHEN step > 1 AND lag(accounts_through) OVER w > 0
            THEN 100.0 * accounts_through / lag(accounts_through) OVER w END AS step_conversion_pct
FROM counted
WINDOW w AS (PARTITION BY quarter ORDER BY step)
ORDER BY quarter, step
