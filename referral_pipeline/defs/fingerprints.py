"""Per-quarter fingerprints of what each partitioned asset reads: the basis of change detection.

A quarter's fingerprint hashes the input rows that asset reads for that quarter (and the
configuration it runs with). Each materialisation records the fingerprints of the quarters it
wrote; a quarter whose current fingerprint differs from the recorded one has changed inputs.
"""

import hashlib
import json

import duckdb
from dagster import DataVersion, MetadataValue

from referral_pipeline.lib.kpis import (
    KPIS,
    QBRS_IN_RUN,
    kpi_inputs_sql,
    kpi_parameters,
    prepare_inputs,
)
from referral_pipeline.defs.resources import KpiConfig
from referral_pipeline.lib.text_signals import DEFAULT_VOCABULARY_PATH

FINGERPRINTS_METADATA = "input_fingerprints"
SIGNALS = "qbr_referral_signals"

_SIGNALS_INPUTS_SQL = f"""
    SELECT q.starts_at, count(n.qbr_id) AS input_rows,
           coalesce(sum(hash(n.qbr_id, n.tags, n.notes)::HUGEINT), 0) AS inputs_hash
    FROM run_quarters q LEFT JOIN ({QBRS_IN_RUN}) n USING (quarter)
    GROUP BY q.starts_at
"""


def _digest(*parts: object) -> str:
    return hashlib.blake2b(json.dumps(parts, default=str).encode(), digest_size=12).hexdigest()


def quarter_fingerprints(
    con: duckdb.DuckDBPyConnection, asset_name: str, config: KpiConfig, inputs_ready: bool = False
) -> dict[str, str]:
    """{partition key: fingerprint} over the quarters in ``run_quarters``, for one asset.

    A KPI's inputs are computed first, unless ``inputs_ready`` says the caller just did.
    """
    if asset_name == SIGNALS:
        sql = _SIGNALS_INPUTS_SQL
        setting = (config.referral_tags, DEFAULT_VOCABULARY_PATH.read_text(encoding="utf-8"))
    else:
        kpi = next(k for k in KPIS if k.name == asset_name)
        parameters = kpi_parameters(kpi, config)
        if not inputs_ready:
            prepare_inputs(con, kpi, parameters)
        sql, setting = kpi_inputs_sql(kpi), sorted(parameters.items())
    return {
        f"{starts_at:%Y-%m-%d}": _digest(rows, inputs_hash, setting)
        for starts_at, rows, inputs_hash in con.execute(sql).fetchall()
    }


def single_quarter_version(fingerprints: dict[str, str]) -> DataVersion | None:
    """A run of one quarter records its fingerprint as the partition's data version."""
    return DataVersion(next(iter(fingerprints.values()))) if len(fingerprints) == 1 else None


def quarterly_metadata(fingerprints: dict[str, str], rows: int, quarters: list[str]) -> dict:
    """What every materialisation of a quarterly asset records: its rows, quarters and fingerprints."""
    return {
        FINGERPRINTS_METADATA: MetadataValue.json(fingerprints),
        "dagster/row_count": rows,
        "quarters": ", ".join(quarters),
    }
