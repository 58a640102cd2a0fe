"""Small hand-checked source folders, and running the real pipeline over them (used by the tests)."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
from dagster import DagsterInstance

from referral_pipeline.definitions import defs
from referral_pipeline.defs.resources import Warehouse
from referral_pipeline.lib.sources import SOURCES_BY_NAME
from referral_pipeline.lib.validation import stage_source

HEADERS = {name: [c.name for c in source.columns] for name, source in SOURCES_BY_NAME.items()}


def write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


@dataclass
class SourceSet:
    """Rows of the six sources; ``write`` lays them out as the contract's files."""

    accounts: list[dict] = field(default_factory=list)
    partners: list[dict] = field(default_factory=list)
    opportunities: list[dict] = field(default_factory=list)
    warm_intro_asks: list[dict] = field(default_factory=list)
    nps_responses: list[dict] = field(default_factory=list)
    qbr_notes: list[dict] = field(default_factory=list)

    def write(self, folder: Path) -> Path:
        for name, source in SOURCES_BY_NAME.items():
            rows = getattr(self, name)
            path = folder / f"{source.path_stem}.{source.text_format}"
            if source.text_format == "jsonl":
                write_jsonl(path, rows)
            else:
                write_csv(path, HEADERS[name], rows)
        return folder


def account(account_id: str, tier: str = "enterprise", since: str | None = "2023-01-01", **extra) -> dict:
    return {
        "account_id": account_id,
        "account_name": f"Account {account_id}",
        "account_tier": tier,
        "lifecycle_stage": "adoption",
        "customer_since": since,
        **extra,
    }


def partner(partner_id: str, tier: str = "gold", kind: str = "reseller") -> dict:
    return {"partner_id": partner_id, "partner_name": f"Partner {partner_id}", "partner_type": kind,
            "partner_tier": tier}


def opportunity(opportunity_id: str, created_at: str, stage: str = "prospecting", **extra) -> dict:
    closed = stage in ("closed_won", "closed_lost")
    return {
        "opportunity_id": opportunity_id,
        "account_id": "PROSPECT",
        "stage": stage,
        "created_at": created_at,
        "closed_at": created_at if closed else None,
        "lead_source": "referral",
        **extra,
    }


def referred_opportunity(opportunity_id: str, created_at: str, referrer: str = "REF",
                         kind: str = "customer", **extra) -> dict:
    return opportunity(opportunity_id, created_at, referral_source_type=kind, referrer_id=referrer, **extra)


def ask(ask_id: str, account_id: str, asked_at: str, trigger: str = "qbr", **extra) -> dict:
    return {"ask_id": ask_id, "account_id": account_id, "trigger_event": trigger, "asked_at": asked_at,
            **extra}


def nps(response_id: str, account_id: str, score: int, responded_at: str) -> dict:
    return {"response_id": response_id, "account_id": account_id, "score": score,
            "responded_at": responded_at}


def qbr(qbr_id: str, account_id: str, held_on: str, status: str = "completed", **extra) -> dict:
    return {"qbr_id": qbr_id, "account_id": account_id, "held_on": held_on, "format": "virtual",
            "status": status, **extra}


@dataclass
class Pipeline:
    """The real definitions, run in-process over one source folder and one warehouse file."""

    data_dir: Path
    warehouse: Path

    def run(self, partition: str | None = None, partition_range: tuple[str, str] | None = None,
            config: dict | None = None, raise_on_error: bool = True, instance: DagsterInstance | None = None,
            job_name: str | None = None, asset_selection=None, asset_check_selection=None):
        """Materialise a quarter or a range of quarters, as the CLI does: every asset unless a job
        or an asset selection is named; with ``asset_check_selection`` alone, run those checks."""
        tags = {}
        if partition_range:
            tags = {"dagster/asset_partition_range_start": partition_range[0],
                    "dagster/asset_partition_range_end": partition_range[1]}
        run_config = {
            "resources": {
                "source_folder": {"config": {"path": str(self.data_dir)}},
                "warehouse": {"config": {"path": str(self.warehouse)}},
                "kpi_config": {"config": config or {}},
            }
        }
        job = defs.resolve_job_def(job_name) if job_name else defs.resolve_implicit_global_asset_job_def()
        if asset_check_selection is not None:
            job = job.get_subset(asset_selection=set(), asset_check_selection=set(asset_check_selection))
        return job.execute_in_process(
            run_config=run_config,
            partition_key=partition,
            tags=tags,
            instance=instance or DagsterInstance.ephemeral(),
            raise_on_error=raise_on_error,
            asset_selection=asset_selection,
        )

    def warehouse_resource(self) -> Warehouse:
        return Warehouse(path=str(self.warehouse))

    def query(self, sql: str, params: list | None = None) -> list[tuple]:
        with duckdb.connect(str(self.warehouse), read_only=True) as con:
            con.execute("SET TimeZone = 'UTC'")
            return con.execute(sql, params or []).fetchall()

    def kpi(self, name: str, quarter: str, dimension: str = "overall", segment: str = "all"):
        rows = self.query(
            f"SELECT numerator, denominator, rate_pct FROM kpi.{name} "
            "WHERE quarter = ? AND dimension = ? AND segment = ?",
            [quarter, dimension, segment],
        )
        assert len(rows) <= 1
        return rows[0] if rows else None


def worked_examples() -> SourceSet:
    """2025-Q2: 24 of 40 strategic referrals won; 38 of 200 promoters asked; 18 of 60 QBRs."""
    s = SourceSet()
    s.accounts.append(account("REF", tier="strategic", csm_owner="ana"))
    s.accounts.append(account("SMB", tier="smb"))
    s.partners += [partner("GOLD", "gold"), partner("SILVER", "silver"), partner("ADV", "registered", "advisor")]
    for i in range(40):  # strategic: by the strategic account, a gold partner or an advisor
        referrer = [("customer", "REF"), ("partner", "GOLD"), ("partner", "ADV")][i % 3]
        s.opportunities.append(opportunity(
            f"S{i}", "2025-05-01T10:00:00Z", "closed_won" if i < 24 else "closed_lost",
            referral_source_type=referrer[0], referrer_id=referrer[1], owner="rep1"))
    s.opportunities += [  # not strategic: an smb customer, a silver partner, an employee, no referral
        opportunity("N1", "2025-05-01", "closed_won", referral_source_type="customer", referrer_id="SMB"),
        opportunity("N2", "2025-05-01", "closed_won", referral_source_type="partner", referrer_id="SILVER"),
        opportunity("N3", "2025-05-01", "closed_won", referral_source_type="employee", referrer_id="E1"),
        opportunity("N4", "2025-05-01", "closed_won"),
    ]
    for i in range(250):  # 200 promoters, 50 passives; the first 38 promoters and 10 passives asked
        s.accounts.append(account(f"C{i}", csm_owner="bo"))
        s.nps_responses.append(nps(f"R{i}", f"C{i}", 9 + i % 2 if i < 200 else 8, "2025-03-15T00:00:00Z"))
        if i < 38 or 200 <= i < 210:
            s.warm_intro_asks.append(ask(f"K{i}", f"C{i}", "2025-06-30T23:59:59Z", "renewal"))
    for i in range(60):
        tags = ["referral_intent"] if i < 12 else []
        notes = "They offered to introduce us to their CFO." if 12 <= i < 18 else "Reviewed adoption."
        s.qbr_notes.append(qbr(f"Q{i}", f"C{i}", "2025-05-20", tags=tags, notes=notes))
    s.qbr_notes.append(qbr("QX", "C1", "2025-05-20", status="cancelled", tags=["referral_intent"]))
    return s


def write_bytes(folder: Path, relative: str, content: bytes) -> Path:
    """Write ``content`` to ``folder/relative`` as raw bytes (for malformed files)."""
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def stage(con, folder: Path, name: str):
    """Stage one source from ``folder`` on ``con``."""
    source = SOURCES_BY_NAME[name]
    return stage_source(con, source, source.locate(folder))
