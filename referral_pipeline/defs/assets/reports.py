"""Reports: the KPI dashboard (one self-contained HTML file) and each KPI's chart for the Dagster UI."""

from datetime import datetime, timezone

import duckdb
from dagster import AssetExecutionContext, AssetKey, BackfillPolicy, MaterializeResult, MetadataValue, asset

from referral_pipeline.defs.resources import Dashboard, Freshness, KpiConfig, SourceFolder, Warehouse
from referral_pipeline.lib.dashboard import (
    fmt_int,
    fmt_pct,
    fmt_pp,
    inline_bundle,
    kpi_latest_markdown,
    kpi_trend_markdown,
    quarter_label,
    write_dashboard,
)
from referral_pipeline.lib.kpis import KPIS

DASHBOARD_KEY = AssetKey(["reports", "kpi_dashboard"])
FUNNEL_KEY = AssetKey(["kpi", "referral_funnel"])


def current_quarter(at: datetime | None = None) -> str:
    """The label (``2026-Q4``) of the quarter in progress at ``at`` (default now), in UTC."""
    return quarter_label((at or datetime.now(timezone.utc)).astimezone(timezone.utc).date())


def kpi_chart_metadata(con: duckdb.DuckDBPyConnection, kpi, current_quarter: str) -> dict[str, MetadataValue]:
    """Metadata for a KPI asset's page in the Dagster UI: ``latest``, one line it shows inline, and
    ``trend_chart``, the trend chart as a markdown image (SVG data URI) over the numbers as a table,
    which it shows under "[Show Markdown]" (the UI inlines markdown only below 1,000 characters)."""
    return {
        "latest": MetadataValue.md(kpi_latest_markdown(con, kpi, current_quarter)),
        "trend_chart": MetadataValue.md(kpi_trend_markdown(con, kpi, current_quarter)),
    }


def _summary_markdown(summary) -> str:
    lines = [
        f"Latest closed quarter **{summary.latest_closed_quarter}**; "
        f"{summary.current_quarter} is in progress (partial).",
        "",
        f"| KPI | {summary.latest_closed_quarter} | Numerator | Denominator | Change vs previous quarter |",
        "|---|---:|---:|---:|---:|",
    ]
    for h in summary.headlines:
        lines.append(
            f"| {h.title} | {fmt_pct(h.rate_pct) if h.quarter else 'not materialised'} | {fmt_int(h.numerator)} "
            f"| {fmt_int(h.denominator)} | {fmt_pp(h.change_pp)} |"
        )
    if summary.missing_tables:
        lines += ["", f"Not materialised yet: {', '.join(summary.missing_tables)}."]
    return "\n".join(lines)


@asset(
    key=DASHBOARD_KEY,
    deps=[*(AssetKey(["kpi", kpi.name]) for kpi in KPIS), FUNNEL_KEY],
    group_name="reports",
    backfill_policy=BackfillPolicy.single_run(),  # one run for a range of quarters, as the CLI needs
    kinds={"html", "vega"},
    description=(
        "The KPI dashboard: one HTML file that opens offline in any browser. Each KPI's trend over the "
        "quarters (the quarter in progress marked partial) with quarter-over-quarter change, the latest "
        "closed quarter's segments for every dimension, the referral funnel, and data quality per export "
        "(rows staged and quarantined, top reasons, age of the file). Its path is the dashboard resource's."
    ),
)
def kpi_dashboard(
    context: AssetExecutionContext,
    warehouse: Warehouse,
    source_folder: SourceFolder,
    dashboard: Dashboard,
    kpi_config: KpiConfig,
    freshness: Freshness,
) -> MaterializeResult:
    path = dashboard.resolve(warehouse)
    inline_bundle()  # built before taking the warehouse's lock, which the other steps wait for
    with warehouse.connect() as con:
        summary = write_dashboard(
            con,
            path,
            current_quarter(),
            source_folder.resolve(),
            tolerance_pct=100 * kpi_config.max_rejected_fraction,
            max_age_hours=freshness.source_max_age_hours,
        )
    context.log.info(f"KPI dashboard: {path} ({summary.size_bytes / 1e6:.1f} MB, {summary.charts} charts)")
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(path)),
            "size_bytes": summary.size_bytes,
            "charts": summary.charts,
            "latest_closed_quarter": summary.latest_closed_quarter,
            "quarter_in_progress": summary.current_quarter,
            "summary": MetadataValue.md(_summary_markdown(summary)),
        }
    )
