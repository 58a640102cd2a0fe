"""KPI marts: each KPI a plain aggregate of its facts, and the referral funnel over the facts."""

from datetime import timedelta

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSpec,
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetsDefinition,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
    asset_check,
)

from referral_pipeline.defs.assets.facts import table_key
from referral_pipeline.defs.assets.reports import current_quarter, kpi_chart_metadata
from referral_pipeline.defs.partitions import quarterly_partitions
from referral_pipeline.defs.quarterly import (
    QUARTERLY,
    WAREHOUSE_POOL,
    record_per_quarter,
    rows_per_quarter,
    run_window,
    start_run,
)
from referral_pipeline.defs.resources import KpiConfig, Warehouse
from referral_pipeline.lib.kpis import (
    KPI_COLUMNS_DDL,
    KPIS,
    REFERRAL_FUNNEL,
    Kpi,
    drill_down_sql,
    kpi_sql,
    mismatches_sql,
    used_parameters,
)
from referral_pipeline.lib.fingerprints import stored_fingerprints
from referral_pipeline.lib.quarters import IN_RUN, RUN_QUARTERS, load_run_quarters, replace_quarters

NUMERATOR_CHECK = "numerator_within_denominator"
UNIQUE_CHECK = "one_row_per_segment"
FACTS_CHECK = "matches_its_facts"
# Refreshed daily at 03:00 UTC: a KPI not materialised for a day is late, for a day and a half stale.
KPI_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=36), warn_window=timedelta(hours=26))
_MISMATCHES_SHOWN = 20

KPI_SCHEMA = TableSchema(
    columns=[
        TableColumn("quarter", "VARCHAR", description="The quarter, e.g. 2025-Q2 (UTC boundaries)."),
        TableColumn("dimension", "VARCHAR", description="overall, or the segmenting column's name."),
        TableColumn("segment", "VARCHAR", description="all on the overall row; (none) for null."),
        TableColumn("numerator", "BIGINT", description="Members of the segment counted by the KPI."),
        TableColumn("denominator", "BIGINT", description="Members of the segment's population."),
        TableColumn("rate_pct", "DOUBLE", description="100 x numerator / denominator; NULL when 0."),
    ]
)


def _invariant_checks(con, table: str) -> list[AssetCheckResult]:
    (bad_ratio,) = con.execute(
        f"SELECT count(*) FROM {table} WHERE {IN_RUN} AND NOT (0 <= numerator AND numerator <= denominator)"
    ).fetchone()
    (repeated, missing_overall) = con.execute(
        f"""
        SELECT (SELECT count(*) FROM (SELECT 1 FROM {table} WHERE {IN_RUN}
                                      GROUP BY quarter, dimension, segment HAVING count(*) > 1)),
               (SELECT count(*) FROM {RUN_QUARTERS} q WHERE NOT EXISTS (
                    SELECT 1 FROM {table} k
                    WHERE k.quarter = q.quarter AND k.dimension = 'overall' AND k.segment = 'all'))
        """
    ).fetchone()
    return [
        AssetCheckResult(check_name=NUMERATOR_CHECK, passed=bad_ratio == 0, metadata={"rows_out_of_bounds": bad_ratio}),
        AssetCheckResult(
            check_name=UNIQUE_CHECK,
            passed=repeated == 0 and missing_overall == 0,
            metadata={"repeated_segments": repeated, "quarters_without_overall_row": missing_overall},
        ),
    ]


def _drill_down(kpi: Kpi, quarter: str) -> str:
    return (
        f"The rows behind each number are in `{kpi.facts.table}`"
        + "".join(f" (and `{f.table}`)" for f in kpi.facts_tables[1:])
        + f". The members behind one segment:\n\n```sql\n{drill_down_sql(kpi, quarter)}\n```"
    )


def build_kpi_asset(kpi: Kpi) -> AssetsDefinition:
    key = table_key(kpi.table)

    @asset(
        key=key,
        deps=[table_key(f.table) for f in kpi.facts_tables],
        partitions_def=quarterly_partitions,
        group_name="kpi",
        kinds={"duckdb"},
        description=f"{kpi.title} = {kpi.formula}. {kpi.description} Facts: {kpi.facts.table}.",
        metadata={
            "dagster/column_schema": KPI_SCHEMA,
            "dagster/table_name": kpi.table,
            "formula": kpi.formula,
            "dimensions": ", ".join(kpi.all_dimensions),
            "facts_table": MetadataValue.asset(table_key(kpi.facts.table)),
            "seed": kpi.seed,
        },
        check_specs=[
            AssetCheckSpec(NUMERATOR_CHECK, asset=key, description="0 <= numerator <= denominator."),
            AssetCheckSpec(
                UNIQUE_CHECK,
                asset=key,
                description="(quarter, dimension, segment) is unique; every quarter has its overall row.",
            ),
        ],
        freshness_policy=KPI_FRESHNESS,
        **QUARTERLY,
    )
    def _kpi(context: AssetExecutionContext, kpi_config: KpiConfig, warehouse: Warehouse):
        sql = kpi_sql(kpi)
        with warehouse.connect() as con:
            quarters = start_run(context, con)
            written = replace_quarters(con, kpi.table, KPI_COLUMNS_DDL, sql, used_parameters(sql, kpi_config.model_dump()))
            rows = rows_per_quarter(con, kpi.table)
            overall = {
                quarter: (numerator, denominator, rate)
                for quarter, numerator, denominator, rate in con.execute(
                    f"SELECT quarter, numerator, denominator, rate_pct FROM {kpi.table} "
                    f"WHERE {IN_RUN} AND dimension = 'overall'"
                ).fetchall()
            }
            checks = _invariant_checks(con, kpi.table)
            chart = kpi_chart_metadata(con, kpi, current_quarter())
        context.log.info(f"{kpi.table}: {written} rows for {len(quarters)} quarter(s)")
        record_per_quarter(
            context,
            quarters,
            rows,
            extra={
                key: {
                    "numerator": overall[quarter][0],
                    "denominator": overall[quarter][1],
                    "rate_pct": MetadataValue.null() if overall[quarter][2] is None
                    else MetadataValue.float(overall[quarter][2]),
                    "drill_down": MetadataValue.md(_drill_down(kpi, quarter)),
                    **chart,
                }
                for key, quarter in quarters.items()
            },
        )
        return MaterializeResult(check_results=checks)

    return _kpi


def build_facts_check(kpi: Kpi) -> AssetChecksDefinition:
    """Blocking: every KPI row equals the re-aggregation of its facts (numerator, denominator)."""

    @asset_check(
        asset=table_key(kpi.table),
        name=FACTS_CHECK,
        blocking=True,
        additional_deps=[table_key(f.table) for f in kpi.facts_tables],
        pool=WAREHOUSE_POOL,
        description=(
            f"Re-aggregates {', '.join(f.table for f in kpi.facts_tables)} and finds every row of "
            f"{kpi.table} equal: quarter, dimension, segment, numerator and denominator."
        ),
    )
    def _check(context: AssetCheckExecutionContext, kpi_config: KpiConfig, warehouse: Warehouse) -> AssetCheckResult:
        window = run_window(context.run.tags)  # the run's quarters; every quarter outside a partitioned run
        sql = mismatches_sql(kpi, f"SELECT quarter FROM {RUN_QUARTERS}" if window else None)
        with warehouse.connect() as con:
            if window:
                load_run_quarters(con, *window)
            found = con.execute(sql, used_parameters(sql, kpi_config.model_dump())).df()
            (rows,) = con.execute(f"SELECT count(*) FROM {kpi.table}").fetchone()
        metadata = {"kpi_rows": rows, "mismatched_rows": len(found)}
        if len(found):
            metadata["mismatches"] = MetadataValue.md(found.head(_MISMATCHES_SHOWN).to_markdown(index=False))
        return AssetCheckResult(
            passed=found.empty,
            metadata=metadata,
            description=f"{len(found)} rows of {kpi.table} differ from the aggregate of their facts",
        )

    return _check


FUNNEL_STEPS_CHECK = "five_steps_per_quarter"
FUNNEL_MONOTONE_CHECK = "accounts_through_never_grow"
FUNNEL_BOUNDS_CHECK = "accounts_within_scope"
_STAGES = [stage for stage, _ in REFERRAL_FUNNEL.stages]
REFERRAL_FUNNEL_TABLE = REFERRAL_FUNNEL.table
FUNNEL_SCHEMA = TableSchema(
    columns=[
        TableColumn("quarter", "VARCHAR", description="The quarter, e.g. 2025-Q2."),
        TableColumn("step", "INTEGER", description="1 to 5."),
        TableColumn("stage", "VARCHAR", description=", ".join(f"{i}. {s}: {m}" for i, (s, m) in
                                                                enumerate(REFERRAL_FUNNEL.stages, 1))),
        TableColumn("accounts", "BIGINT", description="In-scope accounts at this stage."),
        TableColumn("pct_of_scope", "DOUBLE", description="100 x accounts / step 1's accounts; NULL when 0."),
        TableColumn("accounts_through", "BIGINT", description="In-scope accounts at this stage and every earlier one."),
        TableColumn("step_conversion_pct", "DOUBLE",
                    description="100 x accounts_through / the previous step's; NULL on step 1 and when that is 0."),
    ]
)
_FUNNEL_KEY = table_key(REFERRAL_FUNNEL_TABLE)


def _funnel_checks(con) -> list[AssetCheckResult]:
    (bad_steps,) = con.execute(
        f"""SELECT count(*) FROM {RUN_QUARTERS} q WHERE (
                SELECT list(step ORDER BY step) FROM {REFERRAL_FUNNEL_TABLE} f WHERE f.quarter = q.quarter
            ) IS DISTINCT FROM range(1, {len(_STAGES) + 1})"""
    ).fetchone()
    (growing,) = con.execute(
        f"""SELECT count(*) FROM (
                SELECT accounts_through > lag(accounts_through) OVER (PARTITION BY quarter ORDER BY step) AS grew
                FROM {REFERRAL_FUNNEL_TABLE} WHERE {IN_RUN}) WHERE grew"""
    ).fetchone()
    (outside,) = con.execute(
        f"""SELECT count(*) FROM {REFERRAL_FUNNEL_TABLE} f
            JOIN {REFERRAL_FUNNEL_TABLE} s ON s.quarter = f.quarter AND s.step = 1
            WHERE f.quarter IN (SELECT quarter FROM {RUN_QUARTERS})
              AND NOT (0 <= f.accounts AND f.accounts <= s.accounts)"""
    ).fetchone()
    return [
        AssetCheckResult(check_name=FUNNEL_STEPS_CHECK, passed=bad_steps == 0,
                         metadata={"quarters_without_steps_1_to_5": bad_steps}),
        AssetCheckResult(check_name=FUNNEL_MONOTONE_CHECK, passed=growing == 0,
                         metadata={"steps_where_accounts_through_grew": growing}),
        AssetCheckResult(check_name=FUNNEL_BOUNDS_CHECK, passed=outside == 0,
                         metadata={"rows_outside_0_to_in_scope": outside}),
    ]


@asset(
    key=_FUNNEL_KEY,
    deps=[table_key(t) for t in REFERRAL_FUNNEL.reads],
    partitions_def=quarterly_partitions,
    group_name="kpi",
    kinds={"duckdb"},
    description=(
        "The referral funnel: the accounts in the warm-intro scope of each quarter, through "
        + ", ".join(_STAGES)
        + ", each judged within the quarter. One row per quarter and step."
    ),
    metadata={"dagster/column_schema": FUNNEL_SCHEMA, "dagster/table_name": REFERRAL_FUNNEL_TABLE},
    check_specs=[
        AssetCheckSpec(FUNNEL_STEPS_CHECK, asset=_FUNNEL_KEY, description="Every quarter has steps 1 to 5."),
        AssetCheckSpec(FUNNEL_MONOTONE_CHECK, asset=_FUNNEL_KEY,
                       description="accounts_through never grows from one step to the next."),
        AssetCheckSpec(FUNNEL_BOUNDS_CHECK, asset=_FUNNEL_KEY, description="0 <= accounts <= in-scope accounts."),
    ],
    freshness_policy=KPI_FRESHNESS,
    **QUARTERLY,
)
def referral_funnel(context: AssetExecutionContext, warehouse: Warehouse) -> MaterializeResult:
    with warehouse.connect() as con:
        quarters = start_run(context, con)
        replace_quarters(
            con, REFERRAL_FUNNEL_TABLE, REFERRAL_FUNNEL.columns_ddl, REFERRAL_FUNNEL.sql, REFERRAL_FUNNEL.parameters({})
        )
        rows = rows_per_quarter(con, REFERRAL_FUNNEL_TABLE)
        steps = con.execute(
            f"SELECT quarter, stage, accounts, accounts_through FROM {REFERRAL_FUNNEL_TABLE} "
            f"WHERE {IN_RUN} ORDER BY quarter, step"
        ).df()
        checks = _funnel_checks(con)
        fingerprints = stored_fingerprints(con, REFERRAL_FUNNEL)
    data_version = record_per_quarter(
        context,
        quarters,
        rows,
        extra={
            key: {"steps": MetadataValue.md(steps[steps.quarter == quarter].drop(columns="quarter").to_markdown(index=False))}
            for key, quarter in quarters.items()
        },
        fingerprints=fingerprints,
    )
    return MaterializeResult(check_results=checks, data_version=data_version)


kpi_assets = [build_kpi_asset(kpi) for kpi in KPIS]
facts_checks = [build_facts_check(kpi) for kpi in KPIS]
