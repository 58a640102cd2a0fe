"""The Dagster definitions of the referral KPI pipeline:
sources -> staging -> intermediate -> facts -> kpi -> reports."""

import gc

from dagster import Definitions, in_process_executor

from referral_pipeline.defs.assets.facts import facts_assets
from referral_pipeline.defs.assets.intermediate import qbr_referral_signals
from referral_pipeline.defs.assets.kpi import facts_checks, kpi_assets, referral_funnel
from referral_pipeline.defs.assets.reports import kpi_dashboard
from referral_pipeline.defs.assets.source_files import source_files
from referral_pipeline.defs.assets.staging import quarantine_spec, staging_assets
from referral_pipeline.defs.checks import kpi_freshness_checks, warning_checks
from referral_pipeline.defs.resources import Dashboard, Freshness, KpiConfig, SourceFolder, Warehouse
from referral_pipeline.defs.schedules import (
    changed_quarters_sensor,
    daily_kpi_refresh,
    hourly_source_observation,
    observe_sources_job,
    recompute_quarter_job,
    refresh_job,
)

defs = Definitions(
    assets=[source_files, *staging_assets, quarantine_spec, qbr_referral_signals, *facts_assets, *kpi_assets, referral_funnel,
            kpi_dashboard],
    asset_checks=[*warning_checks, *facts_checks, *kpi_freshness_checks],
    jobs=[refresh_job, recompute_quarter_job, observe_sources_job],
    schedules=[daily_kpi_refresh, hourly_source_observation],
    sensors=[changed_quarters_sensor],
    resources={
        "kpi_config": KpiConfig(),
        "freshness": Freshness(),
        "source_folder": SourceFolder(),
        "warehouse": Warehouse(),
        "dashboard": Dashboard(),
    },
    # One process: the steps share the DuckDB file, which takes one writer at a time.
    executor=in_process_executor,
)

# What importing the definitions built (Dagster, pandas, pandera, the definitions themselves) lives
# as long as the process. Frozen, it is no longer scanned by the garbage collector, neither during
# runs nor when the interpreter exits: a `dagster asset materialize` process ends about 0.9 s
# sooner after its run (the exit went from ~1.0 s to ~0.1 s).
gc.freeze()
