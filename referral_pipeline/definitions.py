"""The Dagster definitions of the referral KPI pipeline: sources -> staging -> intermediate -> kpi."""

from dagster import Definitions, in_process_executor

from referral_pipeline.assets.intermediate import qbr_referral_signals
from referral_pipeline.assets.kpi import kpi_assets
from referral_pipeline.assets.source_files import source_file_specs
from referral_pipeline.assets.staging import staging_assets
from referral_pipeline.checks import warning_checks
from referral_pipeline.resources import KpiConfig, SourceFolder, Warehouse

defs = Definitions(
    assets=[*source_file_specs, *staging_assets, qbr_referral_signals, *kpi_assets],
    asset_checks=warning_checks,
    resources={
        "kpi_config": KpiConfig(),
        "source_folder": SourceFolder(),
        "warehouse": Warehouse(),
    },
    # One process: the steps share the DuckDB file, which takes one writer at a time.
    executor=in_process_executor,
)
