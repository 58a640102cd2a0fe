-- Baseline for bench/bench_scale.py: the three KPI tables of ../shared/contract.md computed straight
-- from the source files with plain DuckDB SQL, as a user who picks plain DuckDB would write them:
-- no validation, no quarantine, no duplicate handling, no Python. The QBR text rule is one SQL
-- regular expression over the lower-cased notes (the macro `referral_text` below), not the
-- project's detector.
--
-- bench_scale.py substitutes the {placeholders} (a DuckDB reader per source: read_csv / read_json /
-- read_parquet, and the last quarter's first day) and runs the script in one DuckDB connection,
-- statement by statement (to print where the time goes).
--
-- Normalisation is only what the KPIs need: identifiers and short text trimmed (empty = null),
-- enums trimmed and lower-cased, timestamps cast to TIMESTAMPTZ with TimeZone UTC (an offset is
-- converted, none means UTC, a bare date is midnight UTC), dates cast to DATE. TRY_CAST keeps a row
-- whose value does not parse (as null) instead of excluding it.

SET TimeZone = 'UTC';

-- The QBR text rule: the obvious trigger phrases (refer / referral / reference, introduce / intro,
-- recommend, case study, peer call, testimonial, advocate), written once. bench_scale.py also reads
-- this statement to compare the rule with the pipeline's detector QBR by QBR (outside the timing).
CREATE OR REPLACE TEMP MACRO referral_text(notes) AS
    regexp_matches(lower(notes), '\b(refer|introduc|intros?\b|recommend|case stud|peer call|testimonial|advocat)');

CREATE OR REPLACE TEMP TABLE quarters AS
SELECT strftime(range, '%Y') || '-Q' || quarter(range) AS quarter,
       range AS starts_at,
       range + INTERVAL 3 MONTH AS ends_at
FROM range(TIMESTAMPTZ '2022-01-01 00:00:00+00', TIMESTAMPTZ '{last_quarter} 00:00:00+00' + INTERVAL 3 MONTH,
           INTERVAL 3 MONTH);

CREATE OR REPLACE TEMP TABLE accounts AS
SELECT nullif(trim(account_id::VARCHAR), '') AS account_id,
       lower(nullif(trim(account_tier::VARCHAR), '')) AS account_tier,
       nullif(trim(csm_owner::VARCHAR), '') AS csm_owner,
       lower(nullif(trim(lifecycle_stage::VARCHAR), '')) AS lifecycle_stage,
       TRY_CAST(nullif(trim(customer_since::VARCHAR), '') AS DATE) AS customer_since,
       TRY_CAST(nullif(trim(churned_on::VARCHAR), '') AS DATE) AS churned_on
FROM {accounts};

CREATE OR REPLACE TEMP TABLE partners AS
SELECT nullif(trim(partner_id::VARCHAR), '') AS partner_id,
       lower(nullif(trim(partner_type::VARCHAR), '')) AS partner_type,
       lower(nullif(trim(partner_tier::VARCHAR), '')) AS partner_tier
FROM {partners};

CREATE SCHEMA IF NOT EXISTS kpi;

-- Strategic Referral Win Rate -------------------------------------------------------------------
CREATE OR REPLACE TABLE kpi.strategic_referral_win_rate AS
WITH opps AS (
    SELECT lower(nullif(trim(stage::VARCHAR), '')) AS stage,
           TRY_CAST(nullif(trim(created_at::VARCHAR), '') AS TIMESTAMPTZ) AS created_at,
           lower(nullif(trim(referral_source_type::VARCHAR), '')) AS referral_source_type,
           nullif(trim(referrer_id::VARCHAR), '') AS referrer_id,
           nullif(trim(vertical::VARCHAR), '') AS vertical,
           nullif(trim(owner::VARCHAR), '') AS owner
    FROM {opportunities}
), pop AS (
    SELECT q.quarter, o.stage = 'closed_won' AS won, o.referral_source_type,
           CASE WHEN o.referral_source_type = 'customer' THEN a.account_tier
                WHEN p.partner_type = 'advisor' THEN 'advisor'
                ELSE p.partner_tier END AS referrer_tier,
           o.vertical, o.owner
    FROM opps o
    JOIN quarters q ON o.created_at >= q.starts_at AND o.created_at < q.ends_at
    LEFT JOIN accounts a ON o.referral_source_type = 'customer' AND a.account_id = o.referrer_id
    LEFT JOIN partners p ON o.referral_source_type = 'partner' AND p.partner_id = o.referrer_id
    WHERE (o.referral_source_type = 'customer' AND a.account_tier = 'strategic')
       OR (o.referral_source_type = 'partner'
           AND (p.partner_tier IN ('platinum', 'gold') OR p.partner_type = 'advisor'))
), rows_ AS (
    SELECT q.quarter, 'overall' AS dimension, 'all' AS segment,
           count(p.quarter) FILTER (WHERE p.won) AS numerator, count(p.quarter) AS denominator
    FROM quarters q LEFT JOIN pop p USING (quarter) GROUP BY q.quarter
    UNION ALL
    SELECT quarter, dimension, coalesce(segment, '(none)'), count(*) FILTER (WHERE won), count(*)
    FROM (SELECT quarter, won, referral_source_type, referrer_tier, vertical, owner FROM pop)
         UNPIVOT INCLUDE NULLS (segment FOR dimension IN (referral_source_type, referrer_tier, vertical, owner))
    GROUP BY ALL
)
SELECT quarter, dimension, segment, numerator::BIGINT AS numerator, denominator::BIGINT AS denominator,
       CASE WHEN denominator > 0 THEN 100.0 * numerator / denominator END AS rate_pct
FROM rows_;

-- Warm Introduction Offer Rate ------------------------------------------------------------------
CREATE OR REPLACE TABLE kpi.warm_intro_offer_rate AS
WITH nps AS (  -- several responses at one instant: their mean
    SELECT nullif(trim(account_id::VARCHAR), '') AS account_id,
           TRY_CAST(nullif(trim(responded_at::VARCHAR), '') AS TIMESTAMPTZ) AS responded_at,
           avg(TRY_CAST(nullif(trim(score::VARCHAR), '') AS DOUBLE)) AS score
    FROM {nps_responses} GROUP BY ALL
), asks AS (
    SELECT q.quarter, nullif(trim(k.account_id::VARCHAR), '') AS account_id,
           lower(nullif(trim(k.trigger_event::VARCHAR), '')) AS trigger_event,
           nullif(trim(k.asked_by::VARCHAR), '') AS asked_by
    FROM {warm_intro_asks} k
    JOIN quarters q
      ON TRY_CAST(nullif(trim(k.asked_at::VARCHAR), '') AS TIMESTAMPTZ) >= q.starts_at
     AND TRY_CAST(nullif(trim(k.asked_at::VARCHAR), '') AS TIMESTAMPTZ) < q.ends_at
    WHERE lower(nullif(trim(k.trigger_event::VARCHAR), '')) IN ('qbr', 'nps', 'renewal', 'onboarding', 'other')
), active AS (
    SELECT q.quarter, q.ends_at, a.*
    FROM quarters q
    JOIN accounts a
      ON a.customer_since IS NOT NULL
     AND a.customer_since <= (q.ends_at - INTERVAL 1 DAY)::DATE
     AND (a.churned_on IS NULL OR a.churned_on >= q.starts_at::DATE)
), scope AS (
    SELECT s.quarter, s.account_id, s.csm_owner, s.lifecycle_stage, s.account_tier,
           CASE WHEN n.score IS NULL THEN 'no_response' WHEN n.score >= 9 THEN 'promoter'
                WHEN n.score >= 7 THEN 'passive' ELSE 'detractor' END AS nps_band
    FROM active s ASOF LEFT JOIN nps n ON s.account_id = n.account_id AND s.ends_at > n.responded_at
), scoped_asks AS (
    SELECT DISTINCT k.quarter, k.account_id, k.trigger_event, k.asked_by
    FROM asks k SEMI JOIN scope s USING (quarter, account_id)
), asked_accounts AS (
    SELECT DISTINCT quarter, account_id FROM scoped_asks
), pop AS (
    SELECT s.*, x.account_id IS NOT NULL AS asked
    FROM scope s LEFT JOIN asked_accounts x USING (quarter, account_id)
), scope_size AS (
    SELECT quarter, count(*) AS denominator FROM scope GROUP BY quarter
), rows_ AS (
    SELECT q.quarter, 'overall' AS dimension, 'all' AS segment,
           count(p.quarter) FILTER (WHERE p.asked) AS numerator, count(p.quarter) AS denominator
    FROM quarters q LEFT JOIN pop p USING (quarter) GROUP BY q.quarter
    UNION ALL
    SELECT quarter, dimension, coalesce(segment, '(none)'), count(*) FILTER (WHERE asked), count(*)
    FROM (SELECT quarter, asked, csm_owner, lifecycle_stage, nps_band, account_tier FROM pop)
         UNPIVOT INCLUDE NULLS (segment FOR dimension IN (csm_owner, lifecycle_stage, nps_band, account_tier))
    GROUP BY ALL
    UNION ALL  -- a row for every counted trigger; the denominator stays the whole scope
    SELECT z.quarter, 'trigger_event', t.trigger_event, count(DISTINCT k.account_id), any_value(z.denominator)
    FROM scope_size z
    CROSS JOIN (SELECT unnest(['qbr', 'nps', 'renewal', 'onboarding', 'other']) AS trigger_event) t
    LEFT JOIN scoped_asks k ON k.quarter = z.quarter AND k.trigger_event = t.trigger_event
    GROUP BY ALL
    UNION ALL  -- a row for each person who asked an in-scope account
    SELECT k.quarter, 'asked_by', coalesce(k.asked_by, '(none)'), count(DISTINCT k.account_id),
           any_value(z.denominator)
    FROM scoped_asks k JOIN scope_size z USING (quarter)
    GROUP BY ALL
)
SELECT quarter, dimension, segment, numerator::BIGINT AS numerator, denominator::BIGINT AS denominator,
       CASE WHEN denominator > 0 THEN 100.0 * numerator / denominator END AS rate_pct
FROM rows_;

-- Referral Intent Identified in QBRs (tag `referral_intent`, or the text rule above) --------------
CREATE OR REPLACE TABLE kpi.qbr_referral_intent_rate AS
WITH qbrs AS (
    SELECT nullif(trim(account_id::VARCHAR), '') AS account_id,
           TRY_CAST(nullif(trim(held_on::VARCHAR), '') AS DATE) AS held_on,
           nullif(trim(csm::VARCHAR), '') AS csm,
           lower(nullif(trim(format::VARCHAR), '')) AS format,
           coalesce(list_contains(list_transform(tags, lambda t: lower(trim(t))), 'referral_intent'), false)
               OR coalesce(referral_text(notes), false) AS signal
    FROM {qbr_notes}
    WHERE lower(nullif(trim(status::VARCHAR), '')) = 'completed'
), pop AS (
    SELECT q.quarter, n.signal, a.account_tier, coalesce(n.csm, a.csm_owner) AS csm, n.format
    FROM qbrs n
    JOIN quarters q ON n.held_on >= q.starts_at::DATE AND n.held_on < q.ends_at::DATE
    LEFT JOIN accounts a ON a.account_id = n.account_id
), rows_ AS (
    SELECT q.quarter, 'overall' AS dimension, 'all' AS segment,
           count(p.quarter) FILTER (WHERE p.signal) AS numerator, count(p.quarter) AS denominator
    FROM quarters q LEFT JOIN pop p USING (quarter) GROUP BY q.quarter
    UNION ALL
    SELECT quarter, dimension, coalesce(segment, '(none)'), count(*) FILTER (WHERE signal), count(*)
    FROM (SELECT quarter, signal, account_tier, csm, format FROM pop)
         UNPIVOT INCLUDE NULLS (segment FOR dimension IN (account_tier, csm, format))
    GROUP BY ALL
)
SELECT quarter, dimension, segment, numerator::BIGINT AS numerator, denominator::BIGINT AS denominator,
       CASE WHEN denominator > 0 THEN 100.0 * numerator / denominator END AS rate_pct
FROM rows_;
