"""Facts: the rows behind every KPI number, one quarterly table per KPI population (see lib/kpis.py)."""

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    MaterializeResult,
    TableColumn,
    TableSchema,
    asset,
)

from referral_pipeline.defs.partitions import quarterly_partitions
from referral_pipeline.defs.quarterly import QUARTERLY, record_per_quarter, rows_per_quarter, start_run
from referral_pipeline.defs.resources import KpiConfig, Warehouse
from referral_pipeline.lib.fingerprints import stored_fingerprints
from referral_pipeline.lib.kpis import FACTS, KPIS, Facts
from referral_pipeline.lib.quarters import replace_quarters


def table_key(table: str) -> AssetKey:
    """The asset of a warehouse table: ``facts.completed_qbrs`` is ``facts/completed_qbrs``."""
    return AssetKey(table.split("."))


def column_schema(facts: Facts) -> TableSchema:
    return TableSchema(
        columns=[
            TableColumn("quarter", "VARCHAR", description="The quarter, e.g. 2025-Q2 (UTC boundaries)."),
            *(TableColumn(c.name, c.base_type, description=c.description) for c in facts.columns),
        ]
    )


def _used_by(facts: Facts) -> str:
    return ", ".join(k.table for k in KPIS if facts in k.facts_tables)


def build_facts_asset(facts: Facts) -> AssetsDefinition:
    @asset(
        key=table_key(facts.table),
        deps=[table_key(t) for t in facts.reads],
        partitions_def=quarterly_partitions,
        group_name="facts",
        kinds={"duckdb"},
        description=(
            f"{facts.title}: one row per {facts.grain}. The rows behind {_used_by(facts)}; "
            f"filter on quarter and a segment's column to see the members behind a number."
        ),
        metadata={"dagster/column_schema": column_schema(facts), "dagster/table_name": facts.table},
        **QUARTERLY,
    )
    def _facts(context: AssetExecutionContext, kpi_config: KpiConfig, warehouse: Warehouse) -> MaterializeResult:
        with warehouse.connect() as con:
            quarters = start_run(context, con)
            parameters = facts.parameters(kpi_config.model_dump())
            written = replace_quarters(con, facts.table, facts.columns_ddl, facts.sql, parameters)
            rows = rows_per_quarter(con, facts.table)
            fingerprints = stored_fingerprints(con, facts)
        context.log.info(f"{facts.table}: {written} rows for {len(quarters)} quarter(s): {rows}")
        return MaterializeResult(data_version=record_per_quarter(context, quarters, rows, fingerprints))

    return _facts


facts_assets = [build_facts_asset(facts) for facts in FACTS]
