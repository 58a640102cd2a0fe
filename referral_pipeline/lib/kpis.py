"""The KPIs, each declared once: its facts (the rows behind every number), measures and dimensions.

Everything else is derived from these declarations: the facts and KPI assets and their deps, the
fingerprints that detect changed quarters, the docs, the checks and the Cube model.

A facts table holds, per quarter of a run, one row per member of a KPI's population; its query
(``sql/facts/<name>.sql``) reads the quarters of the run from the temporary table ``run_quarters``
(quarter, starts_at, ends_at) and the configuration as named parameters (``$counted_triggers``).
A KPI table is a plain aggregate of its facts: per quarter the ``overall`` row, then one row per
segment of every dimension.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files

from referral_pipeline.lib.quarters import IN_RUN, RUN_QUARTERS

NO_VALUE = "(none)"  # the segment of a null dimension value
_SQL = files("referral_pipeline.lib") / "sql"
_TABLE_READ = re.compile(r"\b((?:staging|intermediate|facts)\.[a-z_]+)\b")
_PARAMETER = re.compile(r"\$([a-z_]+)")


@dataclass(frozen=True)
class FactColumn:
    name: str
    type: str  # DuckDB type, with its constraint (VARCHAR NOT NULL)
    description: str

    @property
    def base_type(self) -> str:
        """The type without its constraint: VARCHAR."""
        return self.type.split()[0]


@dataclass(frozen=True)
class Facts:
    """A facts table: one row per member of a KPI's population in a quarter."""

    name: str
    title: str
    grain: str  # what one row is
    key: str  # unique within a quarter
    columns: tuple[FactColumn, ...]  # after ``quarter``

    @property
    def table(self) -> str:
        return f"facts.{self.name}"

    @cached_property
    def sql(self) -> str:
        return (_SQL / "facts" / f"{self.name}.sql").read_text(encoding="utf-8")

    @property
    def reads(self) -> tuple[str, ...]:
        return tables_read(self.sql)

    def parameters(self, config: dict) -> dict:
        """The configuration values its query uses."""
        return used_parameters(self.sql, config)

    @property
    def columns_ddl(self) -> str:
        return ",\n".join(
            f"{c.name} {c.type}" for c in (FactColumn("quarter", "VARCHAR NOT NULL", ""), *self.columns)
        )


@dataclass(frozen=True)
class Measure:
    """An aggregate over a facts table's rows, as Cube states it: count, sum or count_distinct."""

    name: str
    type: str
    column: str | None  # what is summed or counted distinct; None for count
    title: str

    def sql(self, facts: Facts) -> str:
        if self.type == "count":
            return f"count({facts.key})"
        if self.type == "sum":
            return f"coalesce(sum({self.column}), 0)"
        return f"count(DISTINCT {self.column})"


@dataclass(frozen=True)
class Breakdown:
    """A dimension whose numerator comes from another facts table, over the KPI's whole denominator.

    ``every_value_of``: a configuration list whose every value gets a row (0 where none).
    """

    dimension: str
    facts: Facts
    numerator: Measure
    every_value_of: str | None = None


@dataclass(frozen=True)
class Kpi:
    """A KPI: what it means, its seed, its facts, its numerator and denominator, its dimensions."""

    name: str
    title: str
    seed: str  # the seed document it comes from
    formula: str
    description: str
    facts: Facts
    numerator: Measure
    denominator: Measure
    rate: str  # the rate measure's name in the Cube model
    dimensions: tuple[str, ...]  # columns of ``facts``: one row per segment present in the population
    breakdowns: tuple[Breakdown, ...] = ()

    @property
    def table(self) -> str:
        return f"kpi.{self.name}"

    @property
    def all_dimensions(self) -> tuple[str, ...]:
        return (*(b.dimension for b in self.breakdowns), *self.dimensions)

    @property
    def facts_tables(self) -> tuple[Facts, ...]:
        return (self.facts, *(b.facts for b in self.breakdowns if b.facts != self.facts))


def tables_read(sql: str) -> tuple[str, ...]:
    """The warehouse tables (staging, intermediate, facts) a query names, in order of appearance."""
    return tuple(dict.fromkeys(_TABLE_READ.findall(sql)))


def parameters_used(sql: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_PARAMETER.findall(sql)))


def used_parameters(sql: str, parameters: dict) -> dict:
    """The named parameters ``sql`` refers to (DuckDB refuses any others)."""
    names = parameters_used(sql)
    return {key: value for key, value in parameters.items() if key in names}


def _column(name: str, type_: str, description: str) -> FactColumn:
    return FactColumn(name, type_, description)


STRATEGIC_REFERRAL_OPPORTUNITIES = Facts(
    name="strategic_referral_opportunities",
    title="Strategic referral opportunities",
    grain="strategic referral created in the quarter (the win rate's denominator)",
    key="opportunity_id",
    columns=(
        _column("opportunity_id", "VARCHAR NOT NULL", "The opportunity."),
        _column("account_id", "VARCHAR NOT NULL", "The prospect's account."),
        _column("created_at", "TIMESTAMPTZ NOT NULL", "When it was created (UTC); decides its quarter."),
        _column("stage", "VARCHAR NOT NULL", "Pipeline stage today."),
        _column("closed_won", "INTEGER NOT NULL", "1 when the stage is closed_won, else 0."),
        _column("amount", "DOUBLE", "Deal amount."),
        _column("referral_source_type", "VARCHAR NOT NULL", "customer or partner."),
        _column("referrer_id", "VARCHAR NOT NULL", "The referring account or partner."),
        _column("referrer_tier", "VARCHAR", "The referrer's account or partner tier; advisor for advisors."),
        _column("vertical", "VARCHAR", "The opportunity's vertical."),
        _column("owner", "VARCHAR", "The sales rep who owns it."),
    ),
)
ACTIVE_CUSTOMERS = Facts(
    name="active_customers",
    title="Active customers in the warm-intro scope",
    grain="account in the warm-intro scope in the quarter (its denominator)",
    key="account_id",
    columns=(
        _column("account_id", "VARCHAR NOT NULL", "The customer account."),
        _column("account_name", "VARCHAR NOT NULL", "Its name."),
        _column("customer_since", "DATE NOT NULL", "First day as a customer."),
        _column("churned_on", "DATE", "Day it churned, if it did."),
        _column("csm_owner", "VARCHAR", "Its customer success manager today."),
        _column("lifecycle_stage", "VARCHAR NOT NULL", "Its lifecycle stage today."),
        _column("account_tier", "VARCHAR NOT NULL", "Its tier today."),
        _column("nps_score", "DOUBLE", "NPS at the quarter's end; NULL without a response."),
        _column("nps_band", "VARCHAR NOT NULL", "promoter (>= 9), passive (>= 7), detractor or no_response."),
        _column("asked", "INTEGER NOT NULL", "1 when asked for a warm intro in the quarter through a counted trigger."),
    ),
)
WARM_INTRODUCTION_OFFERS = Facts(
    name="warm_introduction_offers",
    title="Warm-introduction asks",
    grain="ask in the quarter through a counted trigger, of an account in scope that quarter",
    key="ask_id",
    columns=(
        _column("ask_id", "VARCHAR NOT NULL", "The ask."),
        _column("account_id", "VARCHAR NOT NULL", "The customer asked."),
        _column("asked_by", "VARCHAR", "The CSM or rep who asked."),
        _column("trigger_event", "VARCHAR NOT NULL", "What prompted the ask."),
        _column("asked_at", "TIMESTAMPTZ NOT NULL", "When (UTC)."),
        _column("outcome", "VARCHAR", "accepted, declined or pending."),
    ),
)
COMPLETED_QBRS = Facts(
    name="completed_qbrs",
    title="Completed QBRs",
    grain="completed QBR held in the quarter (the QBR rate's denominator)",
    key="qbr_id",
    columns=(
        _column("qbr_id", "VARCHAR NOT NULL", "The QBR."),
        _column("account_id", "VARCHAR NOT NULL", "The customer reviewed."),
        _column("held_on", "DATE NOT NULL", "Day it was held."),
        _column("csm", "VARCHAR", "Who ran it: the QBR's CSM, else the account's owner."),
        _column("format", "VARCHAR NOT NULL", "in_person, virtual or hybrid."),
        _column("account_tier", "VARCHAR", "The account's tier today."),
        _column("referral_signal", "BOOLEAN NOT NULL", "A referral tag or a signal in the notes."),
        _column("signal_source", "VARCHAR", "tag, text or tag+text; NULL without a signal."),
        _column("evidence", "VARCHAR", "The sentence of the notes, else the tag, that shows it."),
    ),
)
FACTS = (STRATEGIC_REFERRAL_OPPORTUNITIES, ACTIVE_CUSTOMERS, WARM_INTRODUCTION_OFFERS, COMPLETED_QBRS)

STRATEGIC_REFERRAL_WIN_RATE = Kpi(
    name="strategic_referral_win_rate",
    title="Strategic Referral Win Rate",
    seed="000_45c2fc16df8aadb7.txt",
    formula="closed-won strategic referred opportunities / strategic referred opportunities x 100",
    description=(
        "Share of opportunities referred by a strategic source (a customer account in a strategic "
        "tier, a partner in a strategic tier, or an advisor) that were won, by the quarter in which "
        "they were created."
    ),
    facts=STRATEGIC_REFERRAL_OPPORTUNITIES,
    numerator=Measure("closed_won", "sum", "closed_won", "Closed-won strategic referrals"),
    denominator=Measure("count", "count", None, "Strategic referrals"),
    rate="win_rate_pct",
    dimensions=("referral_source_type", "referrer_tier", "vertical", "owner"),
)
WARM_INTRO_OFFER_RATE = Kpi(
    name="warm_intro_offer_rate",
    title="Warm Introduction Offer Rate",
    seed="003_e51c73148f1a8be9.txt",
    formula="customers in scope asked for a warm introduction / customers in scope x 100",
    description=(
        "Share of customers in scope (active customers, or active promoters when so configured) "
        "who were asked for a warm introduction in the quarter through a counted trigger; an "
        "account asked several times counts once."
    ),
    facts=ACTIVE_CUSTOMERS,
    numerator=Measure("asked", "sum", "asked", "Customers asked"),
    denominator=Measure("count", "count", None, "Customers in scope"),
    rate="offer_rate_pct",
    dimensions=("csm_owner", "lifecycle_stage", "nps_band", "account_tier"),
    breakdowns=(
        Breakdown(
            "trigger_event",
            WARM_INTRODUCTION_OFFERS,
            Measure("accounts_asked", "count_distinct", "account_id", "Customers asked"),
            every_value_of="counted_triggers",
        ),
        Breakdown(
            "asked_by",
            WARM_INTRODUCTION_OFFERS,
            Measure("accounts_asked", "count_distinct", "account_id", "Customers asked"),
        ),
    ),
)
QBR_REFERRAL_INTENT_RATE = Kpi(
    name="qbr_referral_intent_rate",
    title="Referral Intent Identified in QBRs",
    seed="004_d8ff4de135a5b65f.txt",
    formula="QBRs with a referral signal / QBRs conducted x 100",
    description=(
        "Share of QBRs held (status completed) in the quarter in which the customer showed "
        "willingness to refer, introduce or recommend: a referral tag, or a signal in the CSM's notes."
    ),
    facts=COMPLETED_QBRS,
    numerator=Measure("with_referral_signal", "sum", "referral_signal::INTEGER", "QBRs with a referral signal"),
    denominator=Measure("count", "count", None, "Completed QBRs"),
    rate="referral_intent_rate_pct",
    dimensions=("account_tier", "csm", "format"),
)
KPIS = (STRATEGIC_REFERRAL_WIN_RATE, WARM_INTRO_OFFER_RATE, QBR_REFERRAL_INTENT_RATE)

KPI_COLUMNS_DDL = """
    quarter VARCHAR NOT NULL,      -- 2025-Q2
    dimension VARCHAR NOT NULL,    -- overall, or the segmenting column's name
    segment VARCHAR NOT NULL,      -- all on the overall row; (none) for a null value
    numerator BIGINT NOT NULL,
    denominator BIGINT NOT NULL,
    rate_pct DOUBLE                -- 100 x numerator / denominator; NULL when the denominator is 0
"""
_RATE = "CASE WHEN denominator > 0 THEN 100.0 * numerator / denominator END"
_ORDER = "ORDER BY quarter, dimension <> 'overall', dimension, segment"


def _in_run(facts: Facts) -> str:
    return f"(SELECT * FROM {facts.table} WHERE {IN_RUN})"


def _segment(dimension: str) -> str:
    return f"coalesce({dimension}::VARCHAR, '{NO_VALUE}')"


def _overall_sql(kpi: Kpi) -> str:
    """Every run quarter's overall row, 0/0 included; its denominator is each breakdown's too."""
    return f"""
        SELECT q.quarter, 'overall' AS dimension, 'all' AS segment,
               {kpi.numerator.sql(kpi.facts)} AS numerator, {kpi.denominator.sql(kpi.facts)} AS denominator
        FROM {RUN_QUARTERS} q LEFT JOIN {_in_run(kpi.facts)} f USING (quarter)
        GROUP BY q.quarter
    """


def _breakdown_sql(breakdown: Breakdown) -> str:
    """A breakdown's rows in the quarters whose denominator is not 0."""
    numerator = breakdown.numerator.sql(breakdown.facts)
    if breakdown.every_value_of:
        return f"""
        SELECT o.quarter, '{breakdown.dimension}', v.segment, {numerator},
               any_value(o.denominator)
        FROM overall o CROSS JOIN (SELECT unnest(${breakdown.every_value_of}) AS segment) v
        LEFT JOIN {_in_run(breakdown.facts)} f ON f.quarter = o.quarter AND f.{breakdown.dimension} = v.segment
        WHERE o.denominator > 0
        GROUP BY o.quarter, v.segment
        """
    return f"""
        SELECT f.quarter, '{breakdown.dimension}', {_segment(breakdown.dimension)}, {numerator},
               any_value(o.denominator)
        FROM {_in_run(breakdown.facts)} f JOIN overall o USING (quarter)
        GROUP BY ALL
    """


def kpi_sql(kpi: Kpi) -> str:
    """The KPI's rows for the quarters in ``run_quarters``, aggregated from its facts tables.

    The segments of every dimension come from one scan of the facts (grouping sets).
    """
    which = " ".join(f"WHEN grouping({d}) = 0 THEN '{d}'" for d in kpi.dimensions)
    segment = " ".join(f"WHEN grouping({d}) = 0 THEN {_segment(d)}" for d in kpi.dimensions)
    sets = ", ".join(f"(quarter, {d})" for d in kpi.dimensions)
    breakdowns = "".join(f"UNION ALL {_breakdown_sql(b)}" for b in kpi.breakdowns)
    return f"""
    WITH overall AS ({_overall_sql(kpi)}),
    all_rows AS (
        SELECT * FROM overall
        {breakdowns}
        UNION ALL
        SELECT quarter, CASE {which} END, CASE {segment} END,
               {kpi.numerator.sql(kpi.facts)}, {kpi.denominator.sql(kpi.facts)}
        FROM {_in_run(kpi.facts)} GROUP BY GROUPING SETS ({sets})
    )
    SELECT quarter, dimension, segment, numerator, denominator, {_RATE} AS rate_pct
    FROM all_rows {_ORDER}
    """


def reaggregation_sql(kpi: Kpi, quarters: str) -> str:
    """The KPI's rows of ``quarters`` (a query of quarter labels) re-aggregated from the stored
    facts, one dimension at a time: an independent derivation the check compares with the KPI table."""
    quarters = f"({quarters})"
    parts = [
        f"""SELECT k.quarter, 'overall' AS dimension, 'all' AS segment,
                   {kpi.numerator.sql(kpi.facts)} AS numerator, {kpi.denominator.sql(kpi.facts)} AS denominator
            FROM {quarters} k LEFT JOIN {kpi.facts.table} f USING (quarter) GROUP BY k.quarter"""
    ]
    parts += [
        f"""SELECT quarter, '{d}', {_segment(d)}, {kpi.numerator.sql(kpi.facts)}, {kpi.denominator.sql(kpi.facts)}
            FROM {kpi.facts.table} WHERE quarter IN {quarters} GROUP BY ALL"""
        for d in kpi.dimensions
    ]
    for b in kpi.breakdowns:
        overall = f"(SELECT quarter, {kpi.denominator.sql(kpi.facts)} AS d FROM {kpi.facts.table} GROUP BY ALL)"
        found = f"""SELECT quarter, {_segment(b.dimension)} AS segment, {b.numerator.sql(b.facts)} AS n
                    FROM {b.facts.table} GROUP BY ALL"""
        if b.every_value_of:
            parts.append(
                f"""SELECT o.quarter, '{b.dimension}', t.segment, coalesce(x.n, 0), o.d
                    FROM {overall} o CROSS JOIN (SELECT unnest(${b.every_value_of}) AS segment) t
                    LEFT JOIN ({found}) x ON x.quarter = o.quarter AND x.segment = t.segment
                    WHERE o.d > 0 AND o.quarter IN {quarters}"""
            )
        else:
            parts.append(
                f"""SELECT x.quarter, '{b.dimension}', x.segment, x.n, o.d
                    FROM ({found}) x JOIN {overall} o USING (quarter) WHERE x.quarter IN {quarters}"""
            )
    return "\nUNION ALL\n".join(parts)


def mismatches_sql(kpi: Kpi, quarters: str | None = None) -> str:
    """KPI rows of ``quarters`` (a query of quarter labels; default every quarter the KPI table
    holds) that differ from the re-aggregation of their facts, either way, with the side."""
    quarters = quarters or f"SELECT DISTINCT quarter FROM {kpi.table}"
    stored = (
        f"SELECT quarter, dimension, segment, numerator, denominator FROM {kpi.table} "
        f"WHERE quarter IN ({quarters})"
    )
    return f"""
    WITH derived AS ({reaggregation_sql(kpi, quarters)}), stored AS ({stored})
    SELECT 'kpi table only' AS found_in, * FROM (FROM stored EXCEPT ALL FROM derived)
    UNION ALL
    SELECT 'facts only', * FROM (FROM derived EXCEPT ALL FROM stored)
    ORDER BY quarter, dimension, segment, found_in
    """


def drill_down_sql(kpi: Kpi, quarter: str) -> str:
    """An example for the UI: the facts rows behind one segment of the KPI."""
    dimension = kpi.dimensions[0]
    return (
        f"SELECT * FROM {kpi.facts.table}\n"
        f"WHERE quarter = '{quarter}' AND {dimension} = '<segment>'  -- one row of {kpi.table}\n"
        f"ORDER BY {kpi.facts.key};"
    )


# Every QBR held in one of the run's quarters, with that quarter.
QBRS_IN_RUN = f"""
    SELECT q.quarter, n.*
    FROM staging.qbr_notes n JOIN {RUN_QUARTERS} q ON q.quarter = quarter_of(n.held_on)
"""


@dataclass(frozen=True)
class Funnel:
    """The referral funnel: in-scope accounts through stages, each judged within the quarter."""

    table: str
    stages: tuple[tuple[str, str], ...]  # (stage, an in-scope account is at it when ...), in step order
    columns_ddl: str

    @cached_property
    def sql(self) -> str:
        return (_SQL / "referral_funnel.sql").read_text(encoding="utf-8")

    @property
    def reads(self) -> tuple[str, ...]:
        return tables_read(self.sql)

    def parameters(self, config: dict) -> dict:
        return {"stages": [stage for stage, _ in self.stages]}


REFERRAL_FUNNEL = Funnel(
    table="kpi.referral_funnel",
    stages=(
        ("in_scope", "always (facts.active_customers)"),
        ("referral_intent", "it had a completed QBR held in the quarter with a referral signal"),
        ("asked", "it was asked for a warm introduction in the quarter through a counted trigger"),
        ("referred", "it is the customer referrer of an opportunity created in the quarter, strategic or not"),
        ("referral_won", "such an opportunity it referred, created in the quarter, is closed_won"),
    ),
    columns_ddl="""
        quarter VARCHAR NOT NULL,
        step INTEGER NOT NULL,
        stage VARCHAR NOT NULL,
        accounts BIGINT NOT NULL,           -- in-scope accounts at this stage
        pct_of_scope DOUBLE,                -- 100 x accounts / step 1's accounts; NULL when that is 0
        accounts_through BIGINT NOT NULL,   -- in-scope accounts at this stage and every earlier one
        step_conversion_pct DOUBLE          -- 100 x accounts_through / the previous step's; NULL on step 1 or 0
    """,
)
