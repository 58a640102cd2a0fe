"""Resources: where the sources and the warehouse are, and the KPI definitions as configuration."""

from __future__ import annotations

import os
from contextlib import AbstractContextManager
from pathlib import Path

import duckdb
from dagster import ConfigurableResource
from pydantic import Field, field_validator

from referral_pipeline.lib import schemas, warehouse

PROJECT_DIR = Path(__file__).resolve().parents[2]
DATA_DIR_ENV = "REFERRAL_DATA_DIR"
WAREHOUSE_ENV = "REFERRAL_WAREHOUSE"
DASHBOARD_ENV = "REFERRAL_DASHBOARD"


def _allowed(field: str, values: list[str], allowed: tuple[str, ...]) -> list[str]:
    normalised = [v.strip().lower() for v in values]
    unknown = [v for v in normalised if v not in allowed]
    if unknown:
        raise ValueError(f"{field}: {', '.join(unknown)} not among {', '.join(allowed)}")
    return normalised


class KpiConfig(ConfigurableResource):
    """The KPI definitions: which referrers are strategic, the warm-intro scope, the tolerance."""

    strategic_customer_tiers: list[str] = Field(
        default=["strategic"], description="Account tiers whose customer referrals are strategic."
    )
    strategic_partner_tiers: list[str] = Field(
        default=["platinum", "gold"], description="Partner tiers whose referrals are strategic."
    )
    advisors_are_strategic: bool = Field(
        default=True, description="Referrals by advisor partners are strategic, whatever their tier."
    )
    warm_intro_scope: str = Field(
        default="active",
        description="Accounts in scope of the warm-intro rate: 'active' customers or 'promoters' (NPS >= 9).",
    )
    counted_triggers: list[str] = Field(
        default=list(schemas.TRIGGER_EVENTS), description="Ask triggers that count as an ask."
    )
    referral_tags: list[str] = Field(
        default=["referral_intent"], description="QBR tags that mark a referral signal (any case)."
    )
    max_rejected_fraction: float = Field(
        default=0.01,
        description="Largest share of a source's rows that may be quarantined before its KPIs are held back.",
    )

    @field_validator("strategic_customer_tiers")
    @classmethod
    def _customer_tiers(cls, v: list[str]) -> list[str]:
        return _allowed("strategic_customer_tiers", v, schemas.ACCOUNT_TIERS)

    @field_validator("strategic_partner_tiers")
    @classmethod
    def _partner_tiers(cls, v: list[str]) -> list[str]:
        return _allowed("strategic_partner_tiers", v, schemas.PARTNER_TIERS)

    @field_validator("counted_triggers")
    @classmethod
    def _triggers(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("counted_triggers: give at least one trigger (an empty list would count no ask)")
        return _allowed("counted_triggers", v, schemas.TRIGGER_EVENTS)

    @field_validator("warm_intro_scope")
    @classmethod
    def _scope(cls, v: str) -> str:
        return _allowed("warm_intro_scope", [v], ("active", "promoters"))[0]

    @field_validator("referral_tags")
    @classmethod
    def _tags(cls, v: list[str]) -> list[str]:
        tags = [t.strip().lower() for t in v]
        if not tags or "" in tags:
            raise ValueError("referral_tags: give at least one non-empty tag")
        return tags

    @field_validator("max_rejected_fraction")
    @classmethod
    def _tolerance(cls, v: float) -> float:
        if not 0 <= v <= 1:
            raise ValueError(f"max_rejected_fraction: {v} is not between 0 and 1")
        return v


class Freshness(ConfigurableResource):
    """How fresh the exports and the KPI tables must be."""

    source_max_age_hours: float = Field(
        default=26.0, description="An export older than this fails its freshness check."
    )
    closed_quarter_grace_days: float = Field(
        default=3.0,
        description="A quarter that closed must be materialised within this many days after its close.",
    )


class SourceFolder(ConfigurableResource):
    """The folder of source exports: ``path``, else $REFERRAL_DATA_DIR, else the project's ``data/``."""

    path: str | None = Field(default=None, description=f"Source folder; default ${DATA_DIR_ENV} or data/.")

    def resolve(self) -> Path:
        return Path(self.path or os.environ.get(DATA_DIR_ENV) or PROJECT_DIR / "data").resolve()


class Warehouse(ConfigurableResource):
    """The DuckDB warehouse file: ``path``, else $REFERRAL_WAREHOUSE, else ``data/warehouse.duckdb``.

    One writer at a time: every connection holds an exclusive lock on ``<file>.lock`` for as
    long as it is open, so concurrent runs (other processes included) wait instead of failing.
    """

    path: str | None = Field(default=None, description=f"DuckDB file; default ${WAREHOUSE_ENV}.")
    memory_limit: str = Field(
        default="4GB",
        description="DuckDB's memory limit; larger work spills to <file>.tmp next to the warehouse.",
    )
    lock_timeout_seconds: float = Field(
        default=warehouse.DEFAULT_LOCK_TIMEOUT_SECONDS,
        description="How long a step waits for another process holding the warehouse before it fails.",
    )

    @field_validator("lock_timeout_seconds")
    @classmethod
    def _lock_timeout(cls, v: float) -> float:
        if not v >= 0:
            raise ValueError(f"lock_timeout_seconds: {v} is not a number of seconds >= 0")
        return v

    def resolve(self) -> Path:
        return Path(
            self.path or os.environ.get(WAREHOUSE_ENV) or PROJECT_DIR / "data" / "warehouse.duckdb"
        ).resolve()

    def connect(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        return warehouse.connect(self.resolve(), self.memory_limit, self.lock_timeout_seconds)


class Dashboard(ConfigurableResource):
    """Where the dashboard is written: ``path``, else $REFERRAL_DASHBOARD, else ``dashboard.html``
    in the warehouse's folder."""

    path: str | None = Field(
        default=None, description=f"HTML file of the KPI dashboard; default ${DASHBOARD_ENV}, else beside the warehouse."
    )

    def resolve(self, warehouse: Warehouse) -> Path:
        chosen = self.path or os.environ.get(DASHBOARD_ENV)
        return Path(chosen).resolve() if chosen else warehouse.resolve().parent / "dashboard.html"
