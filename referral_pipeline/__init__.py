"""Referral KPIs from CRM, NPS and QBR-note exports: a Dagster pipeline over DuckDB.

`lib/` holds the plain logic (no Dagster); `defs/` the Dagster definitions built on it;
`definitions.py` assembles them.
"""
