-- One row per account in the warm-intro scope of each of the run's quarters: its denominator.
-- Active: customer_since on or before the quarter's last day, not churned before its first day.
-- NPS at the quarter's end: the latest response before the next quarter's first instant (the mean
-- of several at that instant), of any age.
WITH nps_points AS (
    SELECT account_id, responded_at, avg(score) AS score
    FROM staging.nps_responses GROUP BY ALL
), active AS (
    SELECT q.quarter, q.ends_at, a.*
    FROM run_quarters q
    JOIN staging.accounts a
        ON a.customer_since IS NOT NULL
       AND a.customer_since < q.ends_at::DATE
       AND (a.churned_on IS NULL OR a.churned_on >= q.starts_at::DATE)
), scored AS (
    SELECT active.*, n.score AS nps_score
    FROM active ASOF LEFT JOIN nps_points n
        ON active.account_id = n.account_id AND active.ends_at > n.responded_at
), asked AS (
    SELECT DISTINCT q.quarter, k.account_id
    FROM staging.warm_intro_asks k
    JOIN run_quarters q ON q.quarter = quarter_of(k.asked_at)
    WHERE list_contains($counted_triggers, k.trigger_event)
)
SELECT s.quarter, s.account_id, s.account_name, s.customer_since, s.churned_on, s.csm_owner,
       s.lifecycle_stage, s.account_tier, s.nps_score,
       CASE WHEN s.nps_score IS NULL THEN 'no_response'
            WHEN s.nps_score >= 9 THEN 'promoter'
            WHEN s.nps_score >= 7 THEN 'passive'
            ELSE 'detractor' END AS nps_band,
       (k.account_id IS NOT NULL)::INTEGER AS asked
FROM scored s
LEFT JOIN asked k ON k.quarter = s.quarter AND k.account_id = s.account_id
WHERE $warm_intro_scope = 'active' OR s.nps_score >= 9
