"""The source contracts: one pandera model per source, the single place for its column rules.

Each model holds a source's columns, their staging types, whether they are required, their enums,
ranges and keys, a description for the UI, and its cross-column rules. The pipeline compiles the
models to DuckDB SQL (``validation.py``) so validation runs where the data is; pandera itself can
validate any staged table as a DataFrame with the same models.

Column metadata used by the compiler:
- ``header``: the column must be present in the file (required, or an enum not marked optional,
  or required exactly when another column says so); absent optional columns are read as null.
- ``free_text``: the value is kept verbatim (not trimmed).
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pandera.pandas as pa
from pandera.typing import Series

ACCOUNT_TIERS = ("strategic", "enterprise", "mid_market", "smb")
LIFECYCLE_STAGES = ("prospect", "onboarding", "adoption", "expansion", "renewal", "churned")
PARTNER_TYPES = ("reseller", "technology", "agency", "advisor")
PARTNER_TIERS = ("platinum", "gold", "silver", "registered")
OPPORTUNITY_STAGES = (
    "prospecting",
    "qualification",
    "proposal",
    "negotiation",
    "closed_won",
    "closed_lost",
)
CLOSED_STAGES = ("closed_won", "closed_lost")
LEAD_SOURCES = ("referral", "inbound", "outbound", "event", "partner", "other")
REFERRAL_SOURCE_TYPES = ("customer", "partner", "employee")
TRIGGER_EVENTS = ("qbr", "nps", "renewal", "onboarding", "other")
ASK_OUTCOMES = ("accepted", "declined", "pending")
QBR_FORMATS = ("in_person", "virtual", "hybrid")
QBR_STATUSES = ("completed", "cancelled", "scheduled")

_IN_FILE = {"header": True}
_FREE_TEXT = {"free_text": True}

UtcTimestamp = pd.DatetimeTZDtype(tz="UTC")


def row_rule(name: str, reason: str, violation_sql: str):
    """A cross-column rule written once, as the SQL condition that flags a violating row.

    pandera evaluates it on a DataFrame through DuckDB; the pipeline compiles the same SQL.
    """

    def check(cls, df: pd.DataFrame) -> pd.Series:
        return duckdb.sql(f"SELECT NOT coalesce(({violation_sql}), false) AS ok FROM df").df()["ok"]

    check.__name__ = name
    return pa.dataframe_check(
        check, name=name, error=reason, statistics={"violation_sql": violation_sql}
    )


def _sql_list(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class Accounts(pa.DataFrameModel):
    """Every account in the CRM, customer or not (`crm/accounts`)."""

    account_id: Series[str] = pa.Field(unique=True, metadata=_IN_FILE, description="CRM account id.")
    account_name: Series[str] = pa.Field(metadata=_IN_FILE, description="Account name.")
    account_tier: Series[str] = pa.Field(
        isin=ACCOUNT_TIERS, metadata=_IN_FILE, description="Commercial tier, as it is today."
    )
    vertical: Series[str] = pa.Field(nullable=True, description="Industry vertical.")
    csm_owner: Series[str] = pa.Field(nullable=True, description="Customer success manager today.")
    lifecycle_stage: Series[str] = pa.Field(
        isin=LIFECYCLE_STAGES, metadata=_IN_FILE, description="Lifecycle stage, as it is today."
    )
    customer_since: Series[pa.Date] = pa.Field(
        nullable=True, description="First day as a customer; null = never a customer."
    )
    churned_on: Series[pa.Date] = pa.Field(nullable=True, description="Day the customer churned.")

    churned_after_customer_since = row_rule(
        "churned_after_customer_since",
        "churned_on: before customer_since",
        "churned_on < customer_since",
    )

    class Config:
        coerce = True


class Partners(pa.DataFrameModel):
    """Partners and advisors who refer business (`crm/partners`)."""

    partner_id: Series[str] = pa.Field(unique=True, metadata=_IN_FILE, description="Partner id.")
    partner_name: Series[str] = pa.Field(metadata=_IN_FILE, description="Partner name.")
    partner_type: Series[str] = pa.Field(
        isin=PARTNER_TYPES, metadata=_IN_FILE, description="Kind of partner; advisors are people."
    )
    partner_tier: Series[str] = pa.Field(
        isin=PARTNER_TIERS, metadata=_IN_FILE, description="Partner programme tier."
    )

    class Config:
        coerce = True


class Opportunities(pa.DataFrameModel):
    """Sales opportunities, with how each was referred (`crm/opportunities`)."""

    opportunity_id: Series[str] = pa.Field(unique=True, metadata=_IN_FILE, description="Opportunity id.")
    account_id: Series[str] = pa.Field(metadata=_IN_FILE, description="The prospect's account.")
    owner: Series[str] = pa.Field(nullable=True, description="The sales rep who owns it.")
    stage: Series[str] = pa.Field(
        isin=OPPORTUNITY_STAGES, metadata=_IN_FILE, description="Pipeline stage today."
    )
    amount: Series[float] = pa.Field(ge=0, nullable=True, description="Deal amount.")
    created_at: Series[UtcTimestamp] = pa.Field(metadata=_IN_FILE, description="Created (UTC).")
    closed_at: Series[UtcTimestamp] = pa.Field(
        nullable=True, metadata=_IN_FILE, description="Closed (UTC); set exactly when the stage is closed."
    )
    lead_source: Series[str] = pa.Field(
        isin=LEAD_SOURCES, metadata=_IN_FILE, description="Descriptive lead source."
    )
    referral_source_type: Series[str] = pa.Field(
        isin=REFERRAL_SOURCE_TYPES,
        nullable=True,
        description="Who referred it: customer, partner or employee; null = not a referral.",
    )
    referrer_id: Series[str] = pa.Field(
        nullable=True,
        metadata=_IN_FILE,
        description="The referrer: an account_id (customer), a partner_id (partner) or any id (employee).",
    )
    vertical: Series[str] = pa.Field(nullable=True, description="The opportunity's vertical.")

    closed_at_iff_closed = row_rule(
        "closed_at_iff_closed",
        "closed_at: required exactly when stage is closed_won or closed_lost",
        f"(stage IN {_sql_list(CLOSED_STAGES)}) <> (closed_at IS NOT NULL)",
    )
    closed_after_created = row_rule(
        "closed_after_created", "closed_at: before created_at", "closed_at < created_at"
    )
    referrer_iff_referral = row_rule(
        "referrer_iff_referral",
        "referrer_id: required exactly when referral_source_type is set",
        "(referral_source_type IS NOT NULL) <> (referrer_id IS NOT NULL)",
    )

    class Config:
        coerce = True


class WarmIntroAsks(pa.DataFrameModel):
    """Each time a customer was asked or prompted for a warm introduction (`crm/warm_intro_asks`)."""

    ask_id: Series[str] = pa.Field(unique=True, metadata=_IN_FILE, description="Ask id.")
    account_id: Series[str] = pa.Field(metadata=_IN_FILE, description="The customer asked.")
    asked_by: Series[str] = pa.Field(nullable=True, description="The CSM or rep who asked.")
    trigger_event: Series[str] = pa.Field(
        isin=TRIGGER_EVENTS, metadata=_IN_FILE, description="What prompted the ask."
    )
    asked_at: Series[UtcTimestamp] = pa.Field(metadata=_IN_FILE, description="When (UTC).")
    outcome: Series[str] = pa.Field(
        isin=ASK_OUTCOMES, nullable=True, description="accepted, declined or pending."
    )

    class Config:
        coerce = True


class NpsResponses(pa.DataFrameModel):
    """NPS survey responses (`nps/responses`)."""

    response_id: Series[str] = pa.Field(unique=True, metadata=_IN_FILE, description="Response id.")
    account_id: Series[str] = pa.Field(metadata=_IN_FILE, description="The responding account.")
    respondent_id: Series[str] = pa.Field(nullable=True, description="The person who answered.")
    score: Series[int] = pa.Field(
        in_range={"min_value": 0, "max_value": 10}, metadata=_IN_FILE, description="0 to 10."
    )
    comment: Series[str] = pa.Field(
        nullable=True, metadata=_FREE_TEXT, description="Free-text comment."
    )
    responded_at: Series[UtcTimestamp] = pa.Field(metadata=_IN_FILE, description="When (UTC).")

    class Config:
        coerce = True


class QbrNotes(pa.DataFrameModel):
    """Quarterly business reviews with the CSM's notes (`qbr/notes`)."""

    qbr_id: Series[str] = pa.Field(unique=True, metadata=_IN_FILE, description="QBR id.")
    account_id: Series[str] = pa.Field(metadata=_IN_FILE, description="The customer reviewed.")
    held_on: Series[pa.Date] = pa.Field(metadata=_IN_FILE, description="Day the QBR was held.")
    csm: Series[str] = pa.Field(nullable=True, description="Who ran it.")
    format: Series[str] = pa.Field(
        isin=QBR_FORMATS, metadata=_IN_FILE, description="in_person, virtual or hybrid."
    )
    status: Series[str] = pa.Field(
        isin=QBR_STATUSES, metadata=_IN_FILE, description="completed, cancelled or scheduled."
    )
    tags: Series[object] = pa.Field(
        metadata={"list_of_strings": True}, description="Tags as logged; missing or null = empty list."
    )
    notes: Series[str] = pa.Field(
        nullable=True, metadata=_FREE_TEXT, description="The CSM's free-text notes."
    )

    class Config:
        coerce = True
