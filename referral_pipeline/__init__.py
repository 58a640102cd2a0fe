"""Referral KPIs from CRM, NPS and QBR-note exports: a Dagster pipeline over DuckDB."""

import warnings

from dagster import BetaWarning

# Single-run backfills are the point of these assets; Dagster marks the parameter beta.
warnings.filterwarnings("ignore", message="Parameter `backfill_policy`", category=BetaWarning)
