"""Per-quarter fingerprints of what a quarterly asset holds or reads: the basis of change detection.

A facts table's (or the funnel's) fingerprint for a quarter hashes its rows (the facts are exactly
what the KPIs aggregate);
the QBR signals' hashes the notes and tags the detector reads, with the detector's version (its
code and vocabulary). Each
materialisation records the fingerprint of every quarter it wrote; recomputing the rows from
today's staging tables and finding another fingerprint means that quarter's inputs changed.
"""

from __future__ import annotations

import hashlib
import json

import duckdb

from referral_pipeline.lib.kpis import QBRS_IN_RUN, Facts, Funnel
from referral_pipeline.lib.quarters import IN_RUN, RUN_QUARTERS
from referral_pipeline.lib.detector_memo import detector_version

SIGNALS_INPUTS = f"SELECT quarter, qbr_id, tags, notes FROM ({QBRS_IN_RUN})"


def _digest(*parts: object) -> str:
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=12).hexdigest()


def fingerprints(con: duckdb.DuckDBPyConnection, rows: str, setting: object = None) -> dict[str, str]:
    """{partition key: fingerprint} of the rows of ``rows`` (a table or query with a ``quarter``
    column) in every quarter of ``run_quarters``, empty quarters included."""
    sql = f"""
        SELECT q.starts_at, count(f.quarter), coalesce(sum(hash(f)::HUGEINT), 0)
        FROM {RUN_QUARTERS} q LEFT JOIN ({rows}) f USING (quarter)
        GROUP BY q.starts_at
    """
    return {
        f"{starts_at:%Y-%m-%d}": _digest(count, total, setting)
        for starts_at, count, total in con.execute(sql).fetchall()
    }


def stored_fingerprints(con: duckdb.DuckDBPyConnection, derived: Facts | Funnel) -> dict[str, str]:
    """Fingerprints of the rows of a facts table or the funnel stored for the run's quarters."""
    return fingerprints(con, f"SELECT * FROM {derived.table} WHERE {IN_RUN}")


def current_fingerprints(con: duckdb.DuckDBPyConnection, derived: Facts | Funnel, config: dict) -> dict[str, str]:
    """Fingerprints of the rows today's tables give a facts table or the funnel for the run's
    quarters (nothing is written); none at all while a table it reads is missing."""
    (present,) = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE list_contains(?, schema_name || '.' || table_name)",
        [list(derived.reads)],
    ).fetchone()
    if present < len(derived.reads):
        return {}
    con.execute(f"CREATE OR REPLACE TEMP TABLE current_rows ({derived.columns_ddl})")
    con.execute(f"INSERT INTO current_rows {derived.sql}", derived.parameters(config))
    return fingerprints(con, "SELECT * FROM current_rows")


def signals_fingerprints(con: duckdb.DuckDBPyConnection, referral_tags: list[str]) -> dict[str, str]:
    """Fingerprints of what the QBR signals of the run's quarters are computed from."""
    setting = (referral_tags, detector_version())
    return fingerprints(con, SIGNALS_INPUTS, setting)
