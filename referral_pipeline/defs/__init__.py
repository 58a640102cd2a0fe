"""The Dagster definitions of the pipeline: assets by layer, resources, partitions, checks, schedules."""

import warnings

from dagster import BetaWarning

# Single-run backfills and observable exports are the point of these assets; Dagster marks both beta.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
warnings.filterwarnings("ignore", message="Function `multi_observable_source_asset`", category=BetaWarning)
