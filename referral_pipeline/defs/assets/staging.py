"""Staging: one validated, typed table per source, and the quarantine of every rejected row."""

from dagster import (
    AssetMaterialization,
    AssetSpec,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    asset,
)

from referral_pipeline.defs.assets.source_files import source_file_key
from referral_pipeline.defs.quarterly import WAREHOUSE_POOL
from referral_pipeline.defs.resources import KpiConfig, SourceFolder, Warehouse
from referral_pipeline.lib.sources import SOURCES, Source
from referral_pipeline.lib.validation import QUARANTINE_TABLE, StagingResult, stage_source

TOLERANCE_CHECK = "rejected_share_within_tolerance"
REJECTS_CHECK = "rejected_rows"
_SAMPLE_REJECTS = 20
_LOGGED_REASONS = 5
QUARANTINE_KEY = AssetKey(QUARANTINE_TABLE.split("."))
QUARANTINE_SCHEMA = TableSchema(
    columns=[
        TableColumn("source", "VARCHAR", description="The staging table the row was meant for, e.g. opportunities."),
        TableColumn("source_row", "BIGINT", description="1-based data row (CSV, Parquet) or line (JSON Lines) in the file."),
        TableColumn("record_key", "VARCHAR", description="The row's key (e.g. its opportunity_id), when it has one."),
        TableColumn("reason", "VARCHAR", description="Every rule the row breaks, joined by '; '."),
        TableColumn("record", "VARCHAR", description="The raw row as JSON text, as written in the file."),
    ]
)


def staging_key(source: Source) -> AssetKey:
    return AssetKey(["staging", source.name])


def column_schema(source: Source) -> TableSchema:
    """The source's pandera model as the table schema the UI shows."""
    columns = []
    for col in source.columns:
        rules = []
        if col.enum:
            rules.append("one of " + ", ".join(col.enum))
        if col.min_value is not None:
            rules.append(f">= {col.min_value}")
        if col.max_value is not None:
            rules.append(f"<= {col.max_value}")
        columns.append(
            TableColumn(
                name=col.name,
                type=col.sql_type,
                description=source.schema.columns[col.name].description,
                constraints=TableColumnConstraints(
                    nullable=not col.required, unique=col.name == source.key, other=rules
                ),
            )
        )
    return TableSchema(columns=columns)


def _rejects_preview(con, source: Source):
    frame = con.execute(
        f"SELECT source_row, record_key, reason FROM {QUARANTINE_TABLE} "
        f"WHERE source = ? ORDER BY source_row LIMIT {_SAMPLE_REJECTS}",
        [source.name],
    ).df()
    return MetadataValue.md(frame.to_markdown(index=False)) if len(frame) else MetadataValue.text("none")


def _check_results(result: StagingResult, tolerance: float, preview) -> list[AssetCheckResult]:
    share = result.quarantined_fraction
    reasons = dict(result.reasons.most_common(10))
    summary = {
        "input_rows": result.input_rows,
        "quarantined_rows": result.quarantined_rows,
        "quarantined_share": share,
        "max_rejected_fraction": tolerance,
    }
    return [
        AssetCheckResult(
            check_name=TOLERANCE_CHECK,
            passed=share <= tolerance,
            severity=AssetCheckSeverity.ERROR,
            description=(
                f"{result.quarantined_rows} of {result.input_rows} rows of {result.path} quarantined "
                f"({share:.2%}); tolerance {tolerance:.2%}"
            ),
            metadata=summary,
        ),
        AssetCheckResult(
            check_name=REJECTS_CHECK,
            passed=result.quarantined_rows == 0,
            severity=AssetCheckSeverity.WARN,
            description=f"{result.quarantined_rows} rows quarantined in {QUARANTINE_TABLE}",
            metadata={**summary, "reasons": MetadataValue.json(reasons), "first_rejects": preview},
        ),
    ]


def build_staging_asset(source: Source) -> AssetsDefinition:
    key = staging_key(source)

    @asset(
        key=key,
        deps=[source_file_key(source)],
        group_name="staging",
        kinds={"duckdb", "pandera"},
        description=(
            f"{source.model.__doc__.replace('`', '')} One row per valid source row, typed and normalised "
            f"(enums trimmed and lower-case, timestamps in UTC). Rows that break a rule of the "
            f"{source.model.__name__} model are in {QUARANTINE_TABLE} with their reason."
        ),
        metadata={
            "dagster/column_schema": column_schema(source),
            "dagster/table_name": source.staging_table,
        },
        check_specs=[
            AssetCheckSpec(
                TOLERANCE_CHECK,
                asset=key,
                blocking=True,
                description="Quarantined share of the source's rows is at most max_rejected_fraction; "
                "above it, no KPI downstream is written in the run.",
            ),
            AssetCheckSpec(REJECTS_CHECK, asset=key, description="Lists the quarantined rows."),
        ],
        backfill_policy=BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
    )
    def _staging(
        context: AssetExecutionContext,
        kpi_config: KpiConfig,
        source_folder: SourceFolder,
        warehouse: Warehouse,
    ) -> MaterializeResult:
        path = source.locate(source_folder.resolve())
        context.log.info(f"Reading {path}")
        with warehouse.connect() as con:
            result = stage_source(con, source, path)
            preview = _rejects_preview(con, source)
        if result.unchanged_since:
            context.log.info(f"{path} unchanged since it was staged at {result.unchanged_since}: not re-read")
        context.log.info(
            f"{source.staging_table}: {result.input_rows} rows read, {result.staged_rows} staged, "
            f"{result.quarantined_rows} quarantined ({result.quarantined_fraction:.2%})"
        )
        for reason, count in result.reasons.most_common(_LOGGED_REASONS):
            context.log.warning(f"{count} rows quarantined: {reason}")
        if len(result.reasons) > _LOGGED_REASONS:
            more = result.reasons.most_common()[_LOGGED_REASONS:]
            context.log.warning(
                f"... and {sum(n for _, n in more)} rows quarantined for {len(more)} other reasons: "
                f"see {QUARANTINE_TABLE} WHERE source = '{source.name}'"
            )
        context.log_event(
            AssetMaterialization(asset_key=QUARANTINE_KEY, metadata=quarantine_metadata(result, preview))
        )
        return MaterializeResult(
            metadata={
                "source_file": str(path),
                "input_rows": result.input_rows,
                "dagster/row_count": result.staged_rows,
                "quarantined_rows": result.quarantined_rows,
                "unchanged_since_last_staging": bool(result.unchanged_since),
            },
            check_results=_check_results(result, kpi_config.max_rejected_fraction, preview),
        )

    return _staging


staging_assets = [build_staging_asset(source) for source in SOURCES]
STAGING_KEYS = {source.name: staging_key(source) for source in SOURCES}


def quarantine_metadata(result: StagingResult, preview) -> dict:
    """What one staging run put in the quarantine, recorded on the quarantine's own asset."""
    return {
        "source": result.source,
        "source_file": str(result.path),
        "input_rows": result.input_rows,
        "quarantined_rows": result.quarantined_rows,
        "reasons": MetadataValue.json(dict(result.reasons.most_common())),
        "first_rejects": preview,
    }


# Written by each staging step, in the transaction that writes its staging table; each staging run
# records what it put here as a materialisation of this asset.
quarantine_spec = AssetSpec(
    key=QUARANTINE_KEY,
    deps=list(STAGING_KEYS.values()),
    group_name="staging",
    kinds={"duckdb"},
    description=(
        "Every source row that broke a rule of the contract, with the reason and the raw row: nothing "
        "is dropped, staged rows + quarantined rows = input rows for every source. Each staging run "
        "replaces its source's rows here and records them as a materialisation of this asset."
    ),
    metadata={"dagster/column_schema": QUARANTINE_SCHEMA, "dagster/table_name": QUARANTINE_TABLE},
)
