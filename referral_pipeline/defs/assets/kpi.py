"""KPI marts: the three referral KPIs, one row per quarter x dimension x segment."""

from datetime import timedelta

from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    FreshnessPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableSchema,
    asset,
)

from referral_pipeline.defs.assets.intermediate import qbr_referral_signals
from referral_pipeline.defs.assets.staging import STAGING_KEYS, WAREHOUSE_POOL
from referral_pipeline.defs.fingerprints import quarter_fingerprints, quarterly_metadata, single_quarter_version
from referral_pipeline.lib.kpis import (
    KPI_COLUMNS_DDL,
    QBR_REFERRAL_INTENT_RATE,
    STRATEGIC_REFERRAL_WIN_RATE,
    WARM_INTRO_OFFER_RATE,
    Kpi,
    kpi_parameters,
    kpi_sql,
    prepare_inputs,
    used_parameters,
)
from referral_pipeline.defs.partitions import quarterly_partitions
from referral_pipeline.lib.quarters import IN_RUN, RUN_QUARTERS, load_run_quarters, replace_quarters
from referral_pipeline.defs.resources import KpiConfig, Warehouse

NUMERATOR_CHECK = "numerator_within_denominator"
# Refreshed daily at 03:00 UTC: a KPI not materialised for a day is late, for a day and a half stale.
KPI_FRESHNESS = FreshnessPolicy.time_window(fail_window=timedelta(hours=36), warn_window=timedelta(hours=26))
UNIQUE_CHECK = "one_row_per_segment"

KPI_SCHEMA = TableSchema(
    columns=[
        TableColumn("quarter", "VARCHAR", description="The quarter, e.g. 2025-Q2 (UTC boundaries)."),
        TableColumn("dimension", "VARCHAR", description="overall, or the segmenting column's name."),
        TableColumn("segment", "VARCHAR", description="all on the overall row; (none) for null."),
        TableColumn("numerator", "BIGINT"),
        TableColumn("denominator", "BIGINT"),
        TableColumn("rate_pct", "DOUBLE", description="100 x numerator / denominator; NULL when 0."),
    ]
)


def _invariant_checks(con, kpi: Kpi) -> list[AssetCheckResult]:
    (bad_ratio,) = con.execute(
        f"SELECT count(*) FROM {kpi.table} WHERE {IN_RUN} "
        "AND NOT (0 <= numerator AND numerator <= denominator)"
    ).fetchone()
    (repeated, missing_overall) = con.execute(
        f"""
        SELECT (SELECT count(*) FROM (SELECT 1 FROM {kpi.table} WHERE {IN_RUN}
                                      GROUP BY quarter, dimension, segment HAVING count(*) > 1)),
               (SELECT count(*) FROM {RUN_QUARTERS} q WHERE NOT EXISTS (
                    SELECT 1 FROM {kpi.table} k
                    WHERE k.quarter = q.quarter AND k.dimension = 'overall' AND k.segment = 'all'))
        """
    ).fetchone()
    return [
        AssetCheckResult(
            check_name=NUMERATOR_CHECK,
            passed=bad_ratio == 0,
            metadata={"rows_out_of_bounds": bad_ratio},
        ),
        AssetCheckResult(
            check_name=UNIQUE_CHECK,
            passed=repeated == 0 and missing_overall == 0,
            metadata={"repeated_segments": repeated, "quarters_without_overall_row": missing_overall},
        ),
    ]


def build_kpi_asset(kpi: Kpi, deps: list) -> AssetsDefinition:
    key = AssetKey(["kpi", kpi.name])

    @asset(
        key=key,
        deps=deps,
        partitions_def=quarterly_partitions,
        group_name="kpi",
        kinds={"duckdb"},
        description=f"**{kpi.title}** = {kpi.formula}. {kpi.description}",
        metadata={
            "dagster/column_schema": KPI_SCHEMA,
            "dagster/table_name": kpi.table,
            "formula": kpi.formula,
            "dimensions": ", ".join(kpi.dimensions),
        },
        check_specs=[
            AssetCheckSpec(NUMERATOR_CHECK, asset=key, description="0 <= numerator <= denominator."),
            AssetCheckSpec(
                UNIQUE_CHECK,
                asset=key,
                description="(quarter, dimension, segment) is unique; every quarter has its overall row.",
            ),
        ],
        backfill_policy=BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        freshness_policy=KPI_FRESHNESS,
    )
    def _kpi(context: AssetExecutionContext, kpi_config: KpiConfig, warehouse: Warehouse):
        with warehouse.connect() as con:
            quarters = load_run_quarters(con, *context.partition_time_window)
            parameters = kpi_parameters(kpi, kpi_config)
            prepare_inputs(con, kpi, parameters)
            rows_sql = kpi_sql(kpi)
            written = replace_quarters(
                con, kpi.table, KPI_COLUMNS_DDL, rows_sql, used_parameters(rows_sql, parameters)
            )
            overall = con.execute(
                f"SELECT quarter, numerator, denominator, rate_pct FROM {kpi.table} "
                f"WHERE {IN_RUN} AND dimension = 'overall' "
                "ORDER BY quarter"
            ).df()
            checks = _invariant_checks(con, kpi)
            fingerprints = quarter_fingerprints(con, kpi.name, kpi_config, inputs_ready=True)
        context.log.info(f"{kpi.table}: {written} rows for {len(quarters)} quarter(s)")
        return MaterializeResult(
            data_version=single_quarter_version(fingerprints),
            metadata={
                **quarterly_metadata(fingerprints, written, quarters),
                "overall": MetadataValue.md(overall.to_markdown(index=False)),
            },
            check_results=checks,
        )

    return _kpi


kpi_assets = [
    build_kpi_asset(
        STRATEGIC_REFERRAL_WIN_RATE,
        [STAGING_KEYS["opportunities"], STAGING_KEYS["accounts"], STAGING_KEYS["partners"]],
    ),
    build_kpi_asset(
        WARM_INTRO_OFFER_RATE,
        [STAGING_KEYS["accounts"], STAGING_KEYS["warm_intro_asks"], STAGING_KEYS["nps_responses"]],
    ),
    build_kpi_asset(
        QBR_REFERRAL_INTENT_RATE,
        [qbr_referral_signals, STAGING_KEYS["qbr_notes"], STAGING_KEYS["accounts"]],
    ),
]
