"""Warning checks on staged keys: rows that point at nothing are kept, and counted here."""

from dagster import AssetCheckResult, AssetCheckSeverity, AssetChecksDefinition, asset_check

from referral_pipeline.assets.staging import STAGING_KEYS
from referral_pipeline.resources import Warehouse

_UNKNOWN_ACCOUNT_SQL = """
    SELECT count(*) FROM staging.{table} t
    WHERE NOT EXISTS (SELECT 1 FROM staging.accounts a WHERE a.account_id = t.account_id)
"""
_UNRESOLVED_REFERRER_SQL = """
    SELECT count(*) FROM staging.opportunities o
    WHERE (o.referral_source_type = 'customer'
           AND NOT EXISTS (SELECT 1 FROM staging.accounts a WHERE a.account_id = o.referrer_id))
       OR (o.referral_source_type = 'partner'
           AND NOT EXISTS (SELECT 1 FROM staging.partners p WHERE p.partner_id = o.referrer_id))
"""


def _warning_check(table: str, name: str, description: str, sql: str, deps: list) -> AssetChecksDefinition:
    @asset_check(
        asset=STAGING_KEYS[table],
        name=name,
        description=description,
        additional_deps=deps,
    )
    def _check(warehouse: Warehouse) -> AssetCheckResult:
        with warehouse.connect() as con:
            (rows,) = con.execute(sql).fetchone()
            (total,) = con.execute(f"SELECT count(*) FROM staging.{table}").fetchone()
        return AssetCheckResult(
            passed=rows == 0,
            severity=AssetCheckSeverity.WARN,
            description=f"{rows} of {total} rows of staging.{table}: {description.lower()}",
            metadata={"rows": rows, "staged_rows": total},
        )

    return _check


orphan_checks = [
    _warning_check(
        table,
        "account_id_known",
        "Rows whose account_id is not in staging.accounts (staged, counted nowhere).",
        _UNKNOWN_ACCOUNT_SQL.format(table=table),
        [STAGING_KEYS["accounts"]],
    )
    for table in ("opportunities", "warm_intro_asks", "nps_responses", "qbr_notes")
]
referrer_check = _warning_check(
    "opportunities",
    "referrer_resolves",
    "Customer or partner referrals whose referrer_id resolves to no account or partner "
    "(never strategic).",
    _UNRESOLVED_REFERRER_SQL,
    [STAGING_KEYS["accounts"], STAGING_KEYS["partners"]],
)
warning_checks = [*orphan_checks, referrer_check]
