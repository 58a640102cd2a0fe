"""The three KPIs as DuckDB SQL over the staging tables, one row per quarter x dimension x segment.

Each KPI's inputs are first computed into temporary tables (``prepare_inputs``): its named
queries, then ``population``, one row per member of its denominator. They read the quarters of the
run from the temporary table ``run_quarters`` (quarter, starts_at, ends_at) and take the KPI
configuration as named parameters. The KPI's rows and the fingerprints of its inputs read them.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from referral_pipeline.lib.quarters import in_quarter_sql


KPI_COLUMNS_DDL = """
    quarter VARCHAR NOT NULL,      -- 2025-Q2
    dimension VARCHAR NOT NULL,    -- overall, or the segmenting column's name
    segment VARCHAR NOT NULL,      -- all on the overall row; (none) for a null value
    numerator BIGINT NOT NULL,
    denominator BIGINT NOT NULL,
    rate_pct DOUBLE                -- 100 x numerator / denominator; NULL when the denominator is 0
"""
NO_VALUE = "(none)"


@dataclass(frozen=True)
class Kpi:
    """A KPI table: its name, what it means, its formula and the query that computes it."""

    name: str
    title: str
    description: str
    formula: str
    dimensions: tuple[str, ...]
    population_sql: str  # one row per denominator member: quarter, counted, the dimensions
    inputs_sql: tuple[tuple[str, str], ...] = ()  # named queries the population and extra rows use
    extra_rows: str = ""  # rows of dimensions whose denominator is not their segment's population
    inputs: tuple[str, ...] = ("population",)  # the named queries whose rows are the KPI's inputs

    @property
    def table(self) -> str:
        return f"kpi.{self.name}"


def _segment_rows(population: str, dimensions: tuple[str, ...]) -> str:
    """Numerator and denominator of every segment of every dimension present in the population."""
    return "\nUNION ALL\n".join(
        f"""SELECT quarter, '{d}' AS dimension, coalesce({d}::VARCHAR, '{NO_VALUE}') AS segment,
                   count(*) FILTER (WHERE counted) AS numerator, count(*) AS denominator
            FROM {population} GROUP BY ALL"""
        for d in dimensions
    )


def used_parameters(sql: str, parameters: dict) -> dict:
    """The named parameters ``sql`` refers to (DuckDB refuses any others)."""
    return {key: value for key, value in parameters.items() if f"${key}" in sql}


def prepare_inputs(con: duckdb.DuckDBPyConnection, kpi: Kpi, parameters: dict) -> None:
    """Compute the KPI's inputs for the quarters in ``run_quarters`` into temporary tables."""
    for name, sql in (*kpi.inputs_sql, ("population", kpi.population_sql)):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {sql}", used_parameters(sql, parameters))


def kpi_sql(kpi: Kpi) -> str:
    """The KPI's rows: the overall row for every quarter of the run (0/0 included), then segments."""
    segments = _segment_rows("population", kpi.dimensions)
    return f"""
    WITH overall AS (
        SELECT q.quarter, 'overall' AS dimension, 'all' AS segment,
               count(p.quarter) FILTER (WHERE p.counted) AS numerator, count(p.quarter) AS denominator
        FROM run_quarters q LEFT JOIN population p USING (quarter)
        GROUP BY q.quarter
    ),
    all_rows AS (
        SELECT * FROM overall
        UNION ALL {segments}
        {kpi.extra_rows}
    )
    SELECT quarter, dimension, segment, numerator, denominator,
           CASE WHEN denominator > 0 THEN 100.0 * numerator / denominator END AS rate_pct
    FROM all_rows
    ORDER BY quarter, dimension <> 'overall', dimension, segment
    """


STRATEGIC_REFERRAL_WIN_RATE = Kpi(
    name="strategic_referral_win_rate",
    title="Strategic Referral Win Rate",
    description=(
        "Share of opportunities referred by a strategic source (a customer account in a strategic "
        "tier, a partner in a strategic tier, or an advisor) that were won. One row per quarter in "
        "which the opportunities were created, overall and by referral source type, referrer tier, "
        "vertical and owner."
    ),
    formula="closed-won strategic referred opportunities / strategic referred opportunities x 100",
    dimensions=("referral_source_type", "referrer_tier", "vertical", "owner"),
    population_sql=f"""
        SELECT q.quarter, o.stage = 'closed_won' AS counted, o.referral_source_type,
               CASE WHEN o.referral_source_type = 'customer' THEN a.account_tier
                    WHEN p.partner_type = 'advisor' THEN 'advisor'
                    ELSE p.partner_tier END AS referrer_tier,
               o.vertical, o.owner
        FROM staging.opportunities o
        JOIN run_quarters q ON {in_quarter_sql("o.created_at")}
        LEFT JOIN staging.accounts a
            ON o.referral_source_type = 'customer' AND a.account_id = o.referrer_id
        LEFT JOIN staging.partners p
            ON o.referral_source_type = 'partner' AND p.partner_id = o.referrer_id
        WHERE (o.referral_source_type = 'customer' AND list_contains($strategic_customer_tiers, a.account_tier))
           OR (o.referral_source_type = 'partner' AND (
                   list_contains($strategic_partner_tiers, p.partner_tier)
                   OR ($advisors_are_strategic AND p.partner_type = 'advisor')))
    """,
)

# Accounts in scope of the warm-intro rate, per quarter, with their NPS at the quarter's end.
_WARM_INTRO_SCOPE = """
    WITH nps_points AS (  -- several responses at one instant count as their mean
        SELECT account_id, responded_at, avg(score) AS score
        FROM staging.nps_responses GROUP BY ALL
    ), active AS (
        SELECT q.quarter, q.ends_at, a.account_id, a.csm_owner, a.lifecycle_stage, a.account_tier
        FROM run_quarters q
        JOIN staging.accounts a
            ON a.customer_since IS NOT NULL
           AND a.customer_since < q.ends_at::DATE
           AND (a.churned_on IS NULL OR a.churned_on >= q.starts_at::DATE)
    ), scored AS (
        SELECT active.*, n.score AS nps_score
        FROM active ASOF LEFT JOIN nps_points n
            ON active.account_id = n.account_id AND active.ends_at > n.responded_at
    )
    SELECT quarter, account_id, csm_owner, lifecycle_stage, account_tier,
           CASE WHEN nps_score IS NULL THEN 'no_response'
                WHEN nps_score >= 9 THEN 'promoter'
                WHEN nps_score >= 7 THEN 'passive'
                ELSE 'detractor' END AS nps_band
    FROM scored
    WHERE $warm_intro_scope = 'active' OR nps_score >= 9
"""
_COUNTED_ASKS = f"""
    SELECT q.quarter, k.account_id, k.trigger_event, k.asked_by
    FROM staging.warm_intro_asks k
    JOIN run_quarters q ON {in_quarter_sql("k.asked_at")}
    WHERE list_contains($counted_triggers, k.trigger_event)
"""

# trigger_event and asked_by: numerator from the asks, denominator the whole scope.
_WARM_INTRO_ASK_ROWS = f"""
    UNION ALL
    SELECT z.quarter, 'trigger_event', t.trigger_event,
           count(DISTINCT a.account_id), any_value(z.denominator)
    FROM scope_size z
    CROSS JOIN (SELECT unnest($counted_triggers) AS trigger_event) t
    LEFT JOIN scoped_asks a ON a.quarter = z.quarter AND a.trigger_event = t.trigger_event
    GROUP BY z.quarter, t.trigger_event
    UNION ALL
    SELECT a.quarter, 'asked_by', coalesce(a.asked_by, '{NO_VALUE}'),
           count(DISTINCT a.account_id), any_value(z.denominator)
    FROM scoped_asks a JOIN scope_size z USING (quarter)
    GROUP BY ALL
"""



WARM_INTRO_OFFER_RATE = Kpi(
    name="warm_intro_offer_rate",
    title="Warm Introduction Offer Rate",
    description=(
        "Share of customers in scope (active customers, or active promoters when so configured) "
        "who were asked for a warm introduction in the quarter through a counted trigger; an "
        "account asked several times counts once. Overall and by trigger event, who asked, CSM "
        "owner, lifecycle stage, NPS band at the quarter's end and account tier."
    ),
    formula="customers in scope asked for a warm introduction / customers in scope x 100",
    dimensions=("csm_owner", "lifecycle_stage", "nps_band", "account_tier"),
    population_sql="""
        SELECT s.*, asked.account_id IS NOT NULL AS counted
        FROM in_scope s
        LEFT JOIN (SELECT DISTINCT quarter, account_id FROM scoped_asks) asked
            ON asked.quarter = s.quarter AND asked.account_id = s.account_id
    """,
    inputs_sql=(
        ("in_scope", _WARM_INTRO_SCOPE),
        ("counted_asks", _COUNTED_ASKS),
        ("scoped_asks", "SELECT a.* FROM counted_asks a SEMI JOIN in_scope s USING (quarter, account_id)"),
        ("scope_size", "SELECT quarter, count(*) AS denominator FROM in_scope GROUP BY quarter"),
    ),
    extra_rows=_WARM_INTRO_ASK_ROWS,
    inputs=("population", "scoped_asks"),
)


# Every QBR held in one of the run's quarters, with that quarter.
QBRS_IN_RUN = f"""
    SELECT q.quarter, n.*
    FROM staging.qbr_notes n JOIN run_quarters q ON {in_quarter_sql("n.held_on")}
"""

QBR_REFERRAL_INTENT_RATE = Kpi(
    name="qbr_referral_intent_rate",
    title="Referral Intent Identified in QBRs",
    description=(
        "Share of QBRs held (status completed) in the quarter in which the customer showed "
        "willingness to refer, introduce or recommend: a referral tag, or a signal in the CSM's "
        "notes. Overall and by account tier, CSM (the QBR's, else the account's owner) and format."
    ),
    formula="QBRs with a referral signal / QBRs conducted x 100",
    dimensions=("account_tier", "csm", "format"),
    population_sql=f"""
        SELECT n.quarter, coalesce(s.referral_signal, false) AS counted,
               a.account_tier, coalesce(n.csm, a.csm_owner) AS csm, n.format
        FROM ({QBRS_IN_RUN}) n
        LEFT JOIN intermediate.qbr_referral_signals s USING (qbr_id, quarter)
        LEFT JOIN staging.accounts a ON a.account_id = n.account_id
        WHERE n.status = 'completed'
    """,
)

KPIS = (STRATEGIC_REFERRAL_WIN_RATE, WARM_INTRO_OFFER_RATE, QBR_REFERRAL_INTENT_RATE)


def kpi_inputs_sql(kpi: Kpi) -> str:
    """Per quarter of ``run_quarters``: how many input rows the KPI has, and a hash of them."""
    inputs = "\nUNION ALL\n".join(f"SELECT quarter, hash({name}) AS row_hash FROM {name}" for name in kpi.inputs)
    return f"""
    WITH inputs AS ({inputs})
    SELECT q.starts_at, count(i.row_hash) AS input_rows, coalesce(sum(i.row_hash::HUGEINT), 0) AS inputs_hash
    FROM run_quarters q LEFT JOIN inputs i USING (quarter)
    GROUP BY q.starts_at
    """


def kpi_parameters(kpi: Kpi, config) -> dict:
    """The named parameters the KPI's queries use, from the run's configuration."""
    every = {
        "strategic_customer_tiers": config.strategic_customer_tiers,
        "strategic_partner_tiers": config.strategic_partner_tiers,
        "advisors_are_strategic": config.advisors_are_strategic,
        "warm_intro_scope": config.warm_intro_scope,
        "counted_triggers": config.counted_triggers,
    }
    sql = " ".join([kpi.population_sql, kpi.extra_rows, *(q for _, q in kpi.inputs_sql)])
    return {name: value for name, value in every.items() if f"${name}" in sql}
