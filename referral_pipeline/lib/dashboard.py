"""The KPI dashboard: one self-contained HTML file that a RevOps analyst opens in a browser, offline.

Every chart is a Vega-Lite spec built with altair and drawn in the browser by Vega, from the bundle of
Vega, Vega-Lite and Vega-Embed that vl-convert ships, inlined in the file: no CDN, no server, and a
Content-Security-Policy that forbids any request. For the markdown metadata the Dagster UI shows
(``kpi_trend_markdown``), the same trend chart is drawn as plain SVG in Python (``trend_svg``).

It reads the KPI tables, ``kpi.referral_funnel`` and ``meta.staged_files``, and the modification
times of the exports; a table not there yet is said so on the page, not an error.
"""

from __future__ import annotations

import base64
import functools
import html
import json
import math
import os
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import altair as alt
import duckdb
import jinja2
import pandas as pd
import vl_convert as vlc

from referral_pipeline.lib.kpis import KPIS
from referral_pipeline.lib.quarters import previous_quarter_label, quarter_label, quarter_start
from referral_pipeline.lib.sources import SOURCES, SourceFileError

FUNNEL_TABLE = "kpi.referral_funnel"
LOADS_TABLE = "meta.staged_files"
# The Vega-Lite version altair writes specs for, which the inlined bundle must be built for.
VEGA_LITE_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])

CLOSED = "closed quarter"
PARTIAL = "quarter in progress (partial)"
CLOSED_COLOR = "#2b6cb0"
PARTIAL_COLOR = "#b7cde8"
PARTIAL_OUTLINE = "#1a4d8f"  # the dashed outline and the "partial" tag of the quarter in progress
DASH = (4, 3)  # dash and gap of every dashed mark, in pixels
ACCENT_COLOR = "#c05621"
MAX_SEGMENTS = 20  # bars per segment chart; the table below it lists every segment
TOP_REASONS = 3  # reject reasons named per source; the rest are counted

DIMENSION_TITLES = {
    "referral_source_type": "Referral source type",
    "referrer_tier": "Referrer tier",
    "vertical": "Vertical",
    "owner": "Opportunity owner",
    "trigger_event": "Ask trigger",
    "asked_by": "Asked by",
    "csm_owner": "CSM (account owner)",
    "lifecycle_stage": "Lifecycle stage",
    "nps_band": "NPS band at quarter end",
    "account_tier": "Account tier",
    "csm": "CSM who ran the QBR",
    "format": "QBR format",
}
STAGE_TITLES = {
    "in_scope": "1. In warm-intro scope",
    "referral_intent": "2. Referral intent in a QBR",
    "asked": "3. Asked for a warm intro",
    "referred": "4. Referred an opportunity",
    "referral_won": "5. Referred opportunity won",
}

# A quarter label's first day, in DuckDB SQL.
_QUARTER_START_SQL = "make_date(CAST(left({q}, 4) AS INTEGER), 3 * CAST(right({q}, 1) AS INTEGER) - 2, 1)"


# --- reading the warehouse -----------------------------------------------------------------------


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    schema, name = table.split(".")
    (found,) = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
        [schema, name],
    ).fetchone()
    return found > 0


def kpi_trend(con: duckdb.DuckDBPyConnection, table: str, current_quarter: str) -> pd.DataFrame:
    """The overall row of each quarter up to ``current_quarter``, flagged partial or not, with the
    change in percentage points from the calendar quarter before (NULL when that one is missing or
    has no rate). Quarters before the first one with a denominator are left out: no data yet."""
    start = _QUARTER_START_SQL.format(q="quarter")
    return con.execute(
        f"""
        WITH o AS (
            SELECT quarter, numerator, denominator, rate_pct, {start} AS starts_on
            FROM {table} WHERE dimension = 'overall' AND quarter <= $current
        )
        SELECT o.quarter, o.numerator, o.denominator, o.rate_pct, o.quarter = $current AS partial,
               p.quarter AS previous_quarter, o.rate_pct - p.rate_pct AS change_pp
        FROM o LEFT JOIN o AS p ON p.starts_on = o.starts_on - INTERVAL 3 MONTH
        WHERE o.starts_on >= coalesce((SELECT min(starts_on) FROM o WHERE denominator > 0), o.starts_on)
        ORDER BY o.quarter
        """,
        {"current": current_quarter},
    ).df()


def kpi_segments(con: duckdb.DuckDBPyConnection, table: str, quarter: str) -> pd.DataFrame:
    """Every segment row of ``quarter``: highest rate first within a dimension."""
    return con.execute(
        f"""
        SELECT dimension, segment, numerator, denominator, rate_pct FROM {table}
        WHERE quarter = $quarter AND dimension <> 'overall'
        ORDER BY dimension, rate_pct DESC NULLS LAST, denominator DESC, segment
        """,
        {"quarter": quarter},
    ).df()


def funnel_rows(con: duckdb.DuckDBPyConnection, current_quarter: str) -> pd.DataFrame:
    return con.execute(
        f"""
        SELECT quarter, step, stage, accounts, pct_of_scope, accounts_through, step_conversion_pct,
               quarter = $current AS partial
        FROM {FUNNEL_TABLE} WHERE quarter <= $current ORDER BY quarter, step
        """,
        {"current": current_quarter},
    ).df()


def staged_sources(con: duckdb.DuckDBPyConnection, top: int = TOP_REASONS) -> pd.DataFrame:
    """Per staged source: its rows in, staged and quarantined, its ``top`` reasons and what is left out."""
    return con.execute(
        f"""
        WITH reasons AS (
            SELECT source, unnest(map_entries(reasons::MAP(VARCHAR, BIGINT)), recursive := true)
            FROM {LOADS_TABLE}
        ),
        ranked AS (
            SELECT source, key AS reason, value AS rows,
                   row_number() OVER (PARTITION BY source ORDER BY value DESC, key) AS rank
            FROM reasons
        ),
        summary AS (
            SELECT source,
                   list({{'reason': reason, 'rows': rows}} ORDER BY rank) FILTER (WHERE rank <= $top)
                       AS top_reasons,
                   count(*) FILTER (WHERE rank > $top) AS more_reasons,
                   coalesce(sum(rows) FILTER (WHERE rank > $top), 0) AS more_reasons_rows
            FROM ranked GROUP BY source
        )
        SELECT s.source, s.path, s.input_rows, s.staged_rows, s.quarantined_rows, s.staged_at,
               coalesce(r.top_reasons, []) AS top_reasons, coalesce(r.more_reasons, 0) AS more_reasons,
               coalesce(r.more_reasons_rows, 0) AS more_reasons_rows
        FROM {LOADS_TABLE} s LEFT JOIN summary r USING (source)
        ORDER BY s.source
        """,
        {"top": top},
    ).df()


@dataclass(frozen=True)
class ExportFile:
    """One source's export in the data folder and when it last changed."""

    source: str
    title: str
    path: Path | None
    modified_at: datetime | None
    problem: str | None = None


def export_files(data_dir: Path) -> list[ExportFile]:
    """Each source's export file in ``data_dir`` with its modification time (UTC)."""
    found = []
    for source in SOURCES:
        try:
            path = source.locate(data_dir)
            modified = datetime.fromtimestamp(path.stat().st_mtime, tz=timezone.utc)
        except (SourceFileError, OSError) as exc:
            found.append(ExportFile(source.name, source.title, None, None, str(exc)))
            continue
        found.append(ExportFile(source.name, source.title, path, modified))
    return found


# --- formatting ----------------------------------------------------------------------------------


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NA


def fmt_int(value) -> str:
    return "—" if _missing(value) else f"{int(value):,}"


def fmt_pct(value) -> str:
    return "—" if _missing(value) else f"{value:.1f}%"


def fmt_pp(value) -> str:
    """A change in percentage points: ``+2.5 pp``, ``−1.0 pp``."""
    if _missing(value):
        return "—"
    return f"{'+' if value >= 0 else '−'}{abs(value):.1f} pp"


def fmt_age(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    if hours < 1:
        return f"{max(0, round(hours * 60))} min"
    if hours < 48:
        return f"{hours:.1f} h"
    return f"{hours / 24:.1f} days"


def dimension_title(dimension: str) -> str:
    return DIMENSION_TITLES.get(dimension, dimension.replace("_", " ").capitalize())


# --- charts --------------------------------------------------------------------------------------


def _trend_frame(trend: pd.DataFrame) -> pd.DataFrame:
    frame = trend.copy()
    frame["status"] = frame["partial"].map({True: PARTIAL, False: CLOSED})
    frame["label_y"] = frame["rate_pct"].fillna(0.0)
    frame["rate_text"] = [
        "no data" if _missing(r) else f"{r:.1f}%" for r in frame["rate_pct"].astype(object)
    ]
    frame["n_of_d"] = [f"{n:,} of {d:,}" for n, d in zip(frame["numerator"], frame["denominator"])]
    frame["change_text"] = [fmt_pp(c) for c in frame["change_pp"].astype(object)]
    return frame


def trend_chart(trend: pd.DataFrame, title: str) -> alt.LayerChart:
    """Bars of the rate per quarter, the quarter in progress lighter, dashed and tagged ``partial``."""
    frame = _trend_frame(trend)
    status = dict(domain=[CLOSED, PARTIAL])
    legend = alt.Legend(title=None, orient="top")  # one legend: colour, outline and dash merged
    base = alt.Chart(frame).encode(
        x=alt.X("quarter:N", sort=list(frame["quarter"]), title=None, axis=alt.Axis(labelAngle=-40))
    )
    bars = base.mark_bar(strokeWidth=1.5).encode(
        y=alt.Y("rate_pct:Q", title="Rate (%)", scale=alt.Scale(domainMin=0)),
        color=alt.Color(
            "status:N",
            scale=alt.Scale(**status, range=[CLOSED_COLOR, PARTIAL_COLOR]),
            legend=legend,
        ),
        stroke=alt.Stroke("status:N", scale=alt.Scale(**status, range=[CLOSED_COLOR, PARTIAL_OUTLINE]), legend=legend),
        strokeDash=alt.StrokeDash("status:N", scale=alt.Scale(**status, range=[[1, 0], list(DASH)]), legend=legend),
        tooltip=[
            alt.Tooltip("quarter:N", title="Quarter"),
            alt.Tooltip("status:N", title="Status"),
            alt.Tooltip("rate_text:N", title="Rate"),
            alt.Tooltip("numerator:Q", title="Numerator", format=","),
            alt.Tooltip("denominator:Q", title="Denominator", format=","),
            alt.Tooltip("change_text:N", title="Change vs previous quarter"),
        ],
    )
    values = base.mark_text(dy=-6, fontSize=11).encode(y="label_y:Q", text="rate_text:N")
    tag = (
        base.transform_filter(alt.datum.status == PARTIAL)
        .mark_text(dy=-20, fontSize=11, fontStyle="italic", fontWeight="bold", color=PARTIAL_OUTLINE)
        .encode(y="label_y:Q", text=alt.value("partial"))
    )
    return alt.layer(bars, values, tag).properties(title=title, width=alt.Step(40), height=220)


def segment_chart(segments: pd.DataFrame, dimension: str, quarter: str, overall_rate) -> alt.LayerChart:
    """Horizontal bars of the rate per segment of one dimension, labelled rate and n/d, with the
    overall rate as a dashed rule; the ``MAX_SEGMENTS`` largest segments only."""
    frame = segments.nlargest(MAX_SEGMENTS, "denominator", keep="first").copy()
    frame["label"] = [
        f"{fmt_pct(r)}  ({n:,}/{d:,})"
        for r, n, d in zip(frame["rate_pct"].astype(object), frame["numerator"], frame["denominator"])
    ]
    frame["rate"] = frame["rate_pct"].fillna(0.0)
    order = list(frame.sort_values(["rate", "denominator"], ascending=False)["segment"])
    subtitle = f"{quarter}, latest closed quarter"
    if not _missing(overall_rate):
        subtitle += f"; dashed line: overall {overall_rate:.1f}%"
    if len(segments) > len(frame):
        subtitle += f"; the {len(frame)} largest of {len(segments)} segments"
    base = alt.Chart(frame).encode(y=alt.Y("segment:N", sort=order, title=None))
    bars = base.mark_bar(color=CLOSED_COLOR).encode(
        x=alt.X("rate:Q", title="Rate (%)", scale=alt.Scale(domainMin=0)),
        tooltip=[
            alt.Tooltip("segment:N", title=dimension_title(dimension)),
            alt.Tooltip("rate_pct:Q", title="Rate (%)", format=".1f"),
            alt.Tooltip("numerator:Q", title="Numerator", format=","),
            alt.Tooltip("denominator:Q", title="Denominator", format=","),
        ],
    )
    layers = [bars]
    if not _missing(overall_rate):
        layers.append(
            alt.Chart(pd.DataFrame({"overall": [overall_rate]}))
            .mark_rule(color=ACCENT_COLOR, strokeDash=list(DASH), strokeWidth=1.5)
            .encode(x="overall:Q")
        )
    layers.append(base.mark_text(align="left", dx=3, fontSize=11).encode(x="rate:Q", text="label:N"))
    return alt.layer(*layers).properties(
        title=alt.TitleParams(f"By {dimension_title(dimension)}", subtitle=subtitle, anchor="start"),
        width=300,
        height=alt.Step(22),
    )


def funnel_chart(funnel: pd.DataFrame, default_quarter: str) -> alt.LayerChart:
    """The five steps of one quarter (a selector under the chart picks it): light bars the accounts at
    each stage, dark bars those also at every earlier stage."""
    frame = funnel.copy()
    frame["stage_title"] = frame["stage"].map(lambda s: STAGE_TITLES.get(s, s))
    frame["label"] = [
        f"{a:,} · {fmt_pct(p)} of scope"
        + ("" if step == 1 else f" · {fmt_int(t)} through every step")
        + ("" if _missing(c) else f" ({fmt_pct(c)} of the step before)")
        for a, p, step, t, c in zip(
            frame["accounts"], frame["pct_of_scope"].astype(object), frame["step"],
            frame["accounts_through"], frame["step_conversion_pct"].astype(object),
        )
    ]
    quarters = list(dict.fromkeys(frame["quarter"]))
    partial = set(frame.loc[frame["partial"], "quarter"])
    stage_order = list(dict.fromkeys(frame.sort_values("step")["stage_title"]))
    pick = alt.param(
        name="funnel_quarter",
        value=default_quarter,
        bind=alt.binding_select(
            options=quarters,
            labels=[f"{q} (partial)" if q in partial else q for q in quarters],
            name="Quarter: ",
        ),
    )
    series = alt.Color(
        "series:N",
        scale=alt.Scale(
            domain=["at this stage", "at this stage and every earlier one"], range=[PARTIAL_COLOR, CLOSED_COLOR]
        ),
        legend=alt.Legend(title=None, orient="top"),
    )
    tooltip = [
        alt.Tooltip("quarter:N", title="Quarter"),
        alt.Tooltip("stage_title:N", title="Stage"),
        alt.Tooltip("accounts:Q", title="Accounts at this stage", format=","),
        alt.Tooltip("pct_of_scope:Q", title="% of scope", format=".1f"),
        alt.Tooltip("accounts_through:Q", title="Accounts through every step so far", format=","),
        alt.Tooltip("step_conversion_pct:Q", title="% of the previous step", format=".1f"),
    ]
    base = (
        alt.Chart(frame)
        .transform_filter(alt.datum.quarter == pick)
        .encode(y=alt.Y("stage_title:N", sort=stage_order, title=None))
    )
    at_stage = base.transform_calculate(series="'at this stage'").mark_bar().encode(
        x=alt.X("accounts:Q", title="Accounts"), color=series, tooltip=tooltip
    )
    through = base.transform_calculate(series="'at this stage and every earlier one'").mark_bar(
        height=10
    ).encode(x="accounts_through:Q", color=series, tooltip=tooltip)
    labels = base.mark_text(align="left", dx=4, fontSize=11).encode(x="accounts:Q", text="label:N")
    return (
        alt.layer(at_stage, through, labels)
        .add_params(pick)
        .properties(
            title=alt.TitleParams("Referral funnel", subtitle="accounts in the warm-intro scope", anchor="start"),
            width=420,
            height=alt.Step(34),
        )
    )


def quality_chart(quality: pd.DataFrame, tolerance_pct: float | None) -> alt.LayerChart:
    """Quarantined share of each export's rows, with the tolerance as a dashed rule."""
    frame = quality[["title", "input_rows", "quarantined_rows"]].copy()
    frame["share"] = [100.0 * q / i if i else 0.0 for q, i in zip(frame["quarantined_rows"], frame["input_rows"])]
    frame["label"] = [
        f"{s:.2f}%  ({q:,} of {i:,} rows)"
        for s, q, i in zip(frame["share"], frame["quarantined_rows"], frame["input_rows"])
    ]
    base = alt.Chart(frame).encode(y=alt.Y("title:N", title=None, sort=list(frame["title"])))
    layers = [
        base.mark_bar(color=ACCENT_COLOR).encode(
            x=alt.X("share:Q", title="Quarantined rows (% of input rows)", scale=alt.Scale(domainMin=0)),
            tooltip=[
                alt.Tooltip("title:N", title="Export"),
                alt.Tooltip("input_rows:Q", title="Input rows", format=","),
                alt.Tooltip("quarantined_rows:Q", title="Quarantined rows", format=","),
                alt.Tooltip("share:Q", title="Quarantined (%)", format=".2f"),
            ],
        ),
        base.mark_text(align="left", dx=3, fontSize=11).encode(x="share:Q", text="label:N"),
    ]
    subtitle = "rows that broke a rule of the data contract"
    if tolerance_pct is not None:
        subtitle += f"; dashed line: tolerance {tolerance_pct:g}%"
        layers.append(
            alt.Chart(pd.DataFrame({"tolerance": [tolerance_pct]}))
            .mark_rule(color="#444", strokeDash=list(DASH))
            .encode(x="tolerance:Q")
        )
    return alt.layer(*layers).properties(
        title=alt.TitleParams("Quarantined share per export", subtitle=subtitle, anchor="start"),
        width=360,
        height=alt.Step(24),
    )


@functools.cache
def inline_bundle() -> str:
    """Vega, Vega-Lite and Vega-Embed as one script for the page, built by vl-convert offline
    (a few seconds) and kept in the user's cache folder, one file per vl-convert version."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "referral_pipeline"
    path = cache / f"vega-bundle-{vlc.__version__}-vl{VEGA_LITE_VERSION}.js"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    bundle = vlc.javascript_bundle(vl_version=VEGA_LITE_VERSION)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(bundle, encoding="utf-8")
        partial.replace(path)  # atomic: a concurrent reader sees the whole file or none
    except OSError:
        pass  # no cache folder: build it again next time
    return bundle


def _nice_top(value: float) -> tuple[float, float]:
    """An axis maximum at or above ``value`` and its tick step (1, 2 or 5 times a power of ten)."""
    value = max(value, 1.0)
    magnitude = 10 ** math.floor(math.log10(value / 4))
    step = next(m * magnitude for m in (1, 2, 5, 10) if value / (m * magnitude) <= 5)
    return math.ceil(value / step) * step, step


def trend_svg(trend: pd.DataFrame, title: str, step: int = 36, height: int = 200) -> str:
    """The trend chart (``trend_chart``'s bars, values and ``partial`` tag) drawn as plain SVG in
    Python, for the Dagster UI's markdown: no browser, no JavaScript engine to start in the step."""
    frame = _trend_frame(trend)
    left, top, bottom, right = 46, 48, 62, 12
    width = max(len(frame), 1) * step
    y_max, y_step = _nice_top(float(frame["label_y"].max()) if len(frame) else 0.0)
    y = lambda v: top + height - height * v / y_max  # noqa: E731
    esc = functools.partial(html.escape, quote=True)
    font = 'font-family="Helvetica, Arial, sans-serif"'
    text = f'{font} font-size="11" fill="#1f2933"'
    dashed = f'stroke="{PARTIAL_OUTLINE}" stroke-dasharray="{DASH[0]} {DASH[1]}"'
    canvas = max(left + width + right, left + 7 * len(title), left + 320)  # room for the title and legend
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{canvas}" height="{top + height + bottom}" '
        f'viewBox="0 0 {canvas} {top + height + bottom}">',
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        f'<text x="{left}" y="16" {font} font-size="13" fill="#1f2933" font-weight="bold">{esc(title)}</text>',
    ]
    for i, (label, colour, extra) in enumerate([(CLOSED, CLOSED_COLOR, ""), (PARTIAL, PARTIAL_COLOR, f" {dashed}")]):
        x = left + i * 110
        out.append(f'<rect x="{x}" y="25" width="10" height="10" fill="{colour}"{extra}/>')
        out.append(f'<text x="{x + 14}" y="34" {text}>{esc(label)}</text>')
    ticks = int(round(y_max / y_step))
    for t in range(ticks + 1):
        value = t * y_step
        out.append(f'<line x1="{left}" x2="{left + width}" y1="{y(value):.1f}" y2="{y(value):.1f}" stroke="#e4e7eb"/>')
        out.append(f'<text x="{left - 4}" y="{y(value) + 4:.1f}" {text} text-anchor="end">{value:g}</text>')
    out.append(f'<text transform="translate(12 {top + height / 2:.0f}) rotate(-90)" {text} '
               f'text-anchor="middle" font-weight="bold">Rate (%)</text>')
    for i, row in enumerate(frame.astype(object).itertuples()):
        x, bar = left + i * step + step * 0.1, step * 0.8
        partial = row.status == PARTIAL
        colour = PARTIAL_COLOR if partial else CLOSED_COLOR
        outline = f' {dashed} stroke-width="1.5"' if partial else ""
        tip = f"{row.quarter} ({row.status}): {row.rate_text}, {row.n_of_d}, change {row.change_text}"
        out.append(f'<rect x="{x:.1f}" y="{y(row.label_y):.1f}" width="{bar:.1f}" '
                   f'height="{top + height - y(row.label_y):.1f}" fill="{colour}"{outline}><title>{esc(tip)}</title></rect>')
        centre = x + bar / 2
        out.append(f'<text x="{centre:.1f}" y="{y(row.label_y) - 6:.1f}" {text} text-anchor="middle">{esc(row.rate_text)}</text>')
        if partial:
            out.append(f'<text x="{centre:.1f}" y="{y(row.label_y) - 20:.1f}" {font} font-size="11" text-anchor="middle" '
                       f'font-style="italic" font-weight="bold" fill="{PARTIAL_OUTLINE}">partial</text>')
        out.append(f'<text transform="translate({centre + 3:.1f} {top + height + 10}) rotate(-40)" {text} '
                   f'text-anchor="end">{esc(row.quarter)}</text>')
    out.append(f'<line x1="{left}" x2="{left + width}" y1="{top + height}" y2="{top + height}" stroke="#52606d"/>')
    out.append("</svg>")
    return "".join(out)


# --- the Dagster UI's view of one KPI ------------------------------------------------------------


def _trend_rows(trend: pd.DataFrame) -> list[dict]:
    return [
        {
            "quarter": row.quarter,
            "partial": bool(row.partial),
            "rate": fmt_pct(row.rate_pct),
            "numerator": fmt_int(row.numerator),
            "denominator": fmt_int(row.denominator),
            "change": fmt_pp(row.change_pp),
        }
        for row in trend.astype(object).itertuples()
    ]


def kpi_trend_markdown(con: duckdb.DuckDBPyConnection, kpi, current_quarter: str) -> str:
    """Markdown for the Dagster UI: the KPI's trend chart as an embedded SVG image (the UI renders
    ``data:`` images in markdown metadata) and the same numbers as a table."""
    if not table_exists(con, kpi.table):
        return f"**{kpi.title}**: `{kpi.table}` is not materialised yet."
    trend = kpi_trend(con, kpi.table, current_quarter)
    if trend.empty:
        return f"**{kpi.title}**: no quarter materialised yet."
    svg = trend_svg(trend, f"{kpi.title} by quarter")
    image = "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode()
    lines = [
        f"**{kpi.title}** = {kpi.formula}",
        "",
        f"![{kpi.title} by quarter; {current_quarter} is in progress (partial)]({image})",
        "",
        "| Quarter | Rate | Numerator | Denominator | Change vs previous quarter |",
        "|---|---:|---:|---:|---:|",
    ]
    for row in _trend_rows(trend):
        quarter = f"{row['quarter']} (partial: in progress)" if row["partial"] else row["quarter"]
        lines.append(
            f"| {quarter} | {row['rate']} | {row['numerator']} | {row['denominator']} | {row['change']} |"
        )
    return "\n".join(lines)


def kpi_latest_markdown(con: duckdb.DuckDBPyConnection, kpi, current_quarter: str) -> str:
    """One line for the Dagster UI (short markdown shows inline there): the latest closed quarter's
    rate with its change, and the quarter in progress marked partial."""
    if not table_exists(con, kpi.table):
        return f"`{kpi.table}` is not materialised yet."
    trend = kpi_trend(con, kpi.table, current_quarter)
    rows = {row["quarter"]: row for row in _trend_rows(trend)}
    closed = previous_quarter_label(current_quarter)
    parts = []
    if closed in rows:
        r = rows[closed]
        change = "no quarter before to compare" if r["change"] == "—" else f"{r['change']} vs the quarter before"
        parts.append(f"**{closed}** (latest closed): **{r['rate']}** ({r['numerator']} of {r['denominator']}), {change}")
    else:
        parts.append(f"**{closed}** (latest closed): not materialised")
    if current_quarter in rows:
        r = rows[current_quarter]
        parts.append(
            f"**{current_quarter}** so far (*partial*, in progress): {r['rate']} ({r['numerator']} of {r['denominator']})"
        )
    return " · ".join(parts)


# --- the page ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KpiHeadline:
    name: str
    title: str
    quarter: str | None  # the latest closed quarter, when materialised
    rate_pct: float | None
    numerator: int | None
    denominator: int | None
    change_pp: float | None


@dataclass(frozen=True)
class DashboardSummary:
    """What ``write_dashboard`` wrote."""

    path: Path
    size_bytes: int
    charts: int
    current_quarter: str
    latest_closed_quarter: str
    headlines: tuple[KpiHeadline, ...]
    missing_tables: tuple[str, ...]


class _Charts:
    """The page's charts: each gets a div id; its spec goes to one JSON block the page embeds."""

    def __init__(self) -> None:
        self.specs: dict[str, dict] = {}

    def add(self, chart: alt.TopLevelMixin) -> str:
        chart_id = f"chart-{len(self.specs) + 1}"
        self.specs[chart_id] = chart.to_dict()
        return chart_id


def _headline(kpi, trend: pd.DataFrame, quarter: str) -> KpiHeadline:
    row = trend[trend["quarter"] == quarter].astype(object)
    if row.empty:
        return KpiHeadline(kpi.name, kpi.title, None, None, None, None, None)
    r = row.iloc[0]
    value = lambda v: None if _missing(v) else v  # noqa: E731
    return KpiHeadline(
        kpi.name, kpi.title, quarter, value(r["rate_pct"]), int(r["numerator"]), int(r["denominator"]),
        value(r["change_pp"]),
    )


def _kpi_section(con, kpi, current_quarter: str, closed: str, charts: _Charts) -> dict:
    section = {"name": kpi.name, "title": kpi.title, "formula": kpi.formula, "table": kpi.table}
    if not table_exists(con, kpi.table):
        return {**section, "missing": True, "headline": KpiHeadline(kpi.name, kpi.title, *[None] * 5)}
    trend = kpi_trend(con, kpi.table, current_quarter)
    section.update(missing=False, headline=_headline(kpi, trend, closed), trend_rows=_trend_rows(trend))
    partial = trend[trend["partial"]].astype(object)
    section["partial"] = None if partial.empty else _trend_rows(partial)[0]
    section["trend_chart"] = charts.add(trend_chart(trend, f"{kpi.title} by quarter")) if len(trend) else None
    segments = kpi_segments(con, kpi.table, closed)
    present = list(dict.fromkeys(segments["dimension"]))
    dimensions = [d for d in kpi.dimensions if d in present] + [d for d in present if d not in kpi.dimensions]
    overall = section["headline"].rate_pct
    section["segment_charts"] = [
        charts.add(segment_chart(segments[segments["dimension"] == d], d, closed, overall)) for d in dimensions
    ]
    section["dimensions_without_rows"] = [dimension_title(d) for d in kpi.dimensions if d not in present]
    section["segment_rows"] = [
        {
            "dimension": dimension_title(row.dimension),
            "segment": row.segment,
            "rate": fmt_pct(row.rate_pct),
            "numerator": fmt_int(row.numerator),
            "denominator": fmt_int(row.denominator),
        }
        for d in dimensions
        for row in segments[segments["dimension"] == d].astype(object).itertuples()
    ]
    return section


def _funnel_section(con, current_quarter: str, closed: str, charts: _Charts) -> dict:
    if not table_exists(con, FUNNEL_TABLE):
        return {"missing": True}
    funnel = funnel_rows(con, current_quarter)
    if funnel.empty:
        return {"missing": False, "chart": None, "quarters": []}
    quarters = list(dict.fromkeys(funnel["quarter"]))
    default = closed if closed in quarters else quarters[-1]
    stages = funnel.drop_duplicates("step").sort_values("step")
    by_quarter = []
    for quarter in reversed(quarters):
        rows = funnel[funnel["quarter"] == quarter].sort_values("step").astype(object)
        by_quarter.append(
            {
                "quarter": quarter,
                "partial": bool(rows["partial"].iloc[0]),
                "cells": [
                    f"{fmt_int(r.accounts)} ({fmt_pct(r.pct_of_scope)})" for r in rows.itertuples()
                ],
            }
        )
    latest = funnel[funnel["quarter"] == default].sort_values("step").astype(object)
    return {
        "missing": False,
        "chart": charts.add(funnel_chart(funnel, default)),
        "default_quarter": default,
        "stages": [STAGE_TITLES.get(s, s) for s in stages["stage"]],
        "latest_rows": [
            {
                "stage": STAGE_TITLES.get(r.stage, r.stage),
                "accounts": fmt_int(r.accounts),
                "pct_of_scope": fmt_pct(r.pct_of_scope),
                "through": fmt_int(r.accounts_through),
                "conversion": fmt_pct(r.step_conversion_pct),
            }
            for r in latest.itertuples()
        ],
        "by_quarter": by_quarter,
    }


def _quality_section(
    con, exports: list[ExportFile], now: datetime, tolerance_pct: float | None, max_age_hours: float | None,
    charts: _Charts,
) -> dict:
    staged = staged_sources(con) if table_exists(con, LOADS_TABLE) else pd.DataFrame(columns=["source"])
    by_source = {row["source"]: row for row in staged.astype(object).to_dict("records")}
    rows = []
    for export in exports:
        s = by_source.get(export.source)
        age = None if export.modified_at is None else now - export.modified_at
        rows.append(
            {
                "title": export.title,
                "source": export.source,
                "file": str(export.path) if export.path else export.problem,
                "modified": "—" if export.modified_at is None else f"{export.modified_at:%Y-%m-%d %H:%M} UTC",
                "age": "missing" if age is None else fmt_age(age),
                "stale": age is None
                or (max_age_hours is not None and age > timedelta(hours=max_age_hours)),
                "staged": s is not None,
                "input_rows": fmt_int(s["input_rows"]) if s else "—",
                "staged_rows": fmt_int(s["staged_rows"]) if s else "—",
                "quarantined_rows": fmt_int(s["quarantined_rows"]) if s else "—",
                "quarantined_pct": (
                    f"{100.0 * s['quarantined_rows'] / s['input_rows']:.2f}%" if s and s["input_rows"] else "—"
                ),
                "reasons": [(r["reason"], fmt_int(r["rows"])) for r in s["top_reasons"]] if s else [],
                "more_reasons": int(s["more_reasons"]) if s else 0,
                "more_reasons_rows": fmt_int(s["more_reasons_rows"]) if s else "0",
                "staged_at": (
                    f"{pd.Timestamp(s['staged_at']).tz_convert('UTC'):%Y-%m-%d %H:%M}" if s else "not staged yet"
                ),
            }
        )
    chart_frame = pd.DataFrame(
        [
            {"title": e.title, "input_rows": by_source[e.source]["input_rows"],
             "quarantined_rows": by_source[e.source]["quarantined_rows"]}
            for e in exports
            if e.source in by_source
        ]
    )
    return {
        "rows": rows,
        "chart": charts.add(quality_chart(chart_frame, tolerance_pct)) if len(chart_frame) else None,
        "loads_missing": not table_exists(con, LOADS_TABLE),
        "top": TOP_REASONS,
        "max_age_hours": max_age_hours,
    }


def dashboard_html(
    con: duckdb.DuckDBPyConnection,
    current_quarter: str,
    exports: list[ExportFile],
    now: datetime,
    tolerance_pct: float | None = None,
    max_age_hours: float | None = None,
    source: str = "",
) -> tuple[str, DashboardSummary]:
    """The dashboard page (and its summary, ``path`` and size unset) for the quarter in progress."""
    closed = previous_quarter_label(current_quarter)
    charts = _Charts()
    kpis = [_kpi_section(con, kpi, current_quarter, closed, charts) for kpi in KPIS]
    funnel = _funnel_section(con, current_quarter, closed, charts)
    quality = _quality_section(con, exports, now, tolerance_pct, max_age_hours, charts)
    missing = tuple(k["table"] for k in kpis if k["missing"]) + ((FUNNEL_TABLE,) if funnel["missing"] else ())
    specs = json.dumps(charts.specs, separators=(",", ":"), default=str).replace("<", "\\u003c")
    bundle = inline_bundle()
    html = _TEMPLATE.render(
        now=f"{now:%Y-%m-%d %H:%M} UTC",
        source=source,
        current_quarter=current_quarter,
        closed=closed,
        kpis=kpis,
        funnel=funnel,
        quality=quality,
        missing=missing,
        specs=specs,
        bundle=bundle,
        versions=f"Vega {vlc.get_vega_version()}, Vega-Lite {VEGA_LITE_VERSION}, Vega-Embed {vlc.get_vega_embed_version()}",
    )
    summary = DashboardSummary(
        path=Path(),
        size_bytes=0,
        charts=len(charts.specs),
        current_quarter=current_quarter,
        latest_closed_quarter=closed,
        headlines=tuple(k["headline"] for k in kpis),
        missing_tables=missing,
    )
    return html, summary


def write_dashboard(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    current_quarter: str,
    data_dir: Path,
    now: datetime | None = None,
    tolerance_pct: float | None = None,
    max_age_hours: float | None = None,
) -> DashboardSummary:
    """Write the dashboard to ``path`` (replaced whole: a reader never sees half a file)."""
    now = now or datetime.now(timezone.utc)
    html, summary = dashboard_html(
        con, current_quarter, export_files(data_dir), now, tolerance_pct, max_age_hours, source=str(data_dir)
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(html, encoding="utf-8")
    os.replace(partial, path)
    return DashboardSummary(**{**summary.__dict__, "path": path, "size_bytes": path.stat().st_size})


_TEMPLATE = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True).from_string(
    """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy"
      content="default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; img-src data: blob:">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Referral KPIs — {{ closed }}</title>
<style>
  body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; margin: 0; color: #1f2933;
         background: #f7f9fb; }
  header { background: #1f3a5f; color: #fff; padding: 18px 28px; }
  header h1 { margin: 0 0 6px; font-size: 24px; }
  header p { margin: 2px 0; color: #dbe6f3; }
  nav { padding: 8px 28px; background: #e6edf5; position: sticky; top: 0; z-index: 2; }
  nav a { margin-right: 18px; color: #1f3a5f; text-decoration: none; font-weight: 600; }
  main { padding: 8px 28px 40px; max-width: 1280px; }
  section { background: #fff; border: 1px solid #dde3ea; border-radius: 8px; padding: 16px 20px; margin: 18px 0; }
  h2 { margin: 0 0 4px; font-size: 20px; }
  h3 { margin: 18px 0 6px; font-size: 16px; }
  .formula { color: #52606d; margin: 0 0 10px; }
  .formula code { background: #f0f4f8; padding: 1px 5px; border-radius: 4px; }
  .cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(260px, 1fr)); gap: 14px; }
  .card { background: #fff; border: 1px solid #dde3ea; border-radius: 8px; padding: 14px 16px; }
  .card .title { font-weight: 600; }
  .card .rate { font-size: 30px; font-weight: 700; color: #1f3a5f; margin: 6px 0 2px; }
  .card .sub { color: #52606d; font-size: 13px; }
  .up { color: #1b7f4c; } .down { color: #b42318; }
  .partial-badge { display: inline-block; font-size: 11px; font-weight: 700; color: #1a4d8f;
                   border: 1px dashed #1a4d8f; border-radius: 4px; padding: 0 5px; margin-left: 6px;
                   background: repeating-linear-gradient(45deg, #eef3fa, #eef3fa 4px, #dde7f4 4px, #dde7f4 8px); }
  tr.partial td { font-style: italic; color: #3e4c59;
                  background: repeating-linear-gradient(45deg, #fafcff, #fafcff 6px, #eef3fa 6px, #eef3fa 12px); }
  .charts { display: flex; flex-wrap: wrap; gap: 18px 28px; align-items: flex-start; }
  table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
  th, td { padding: 4px 10px; border-bottom: 1px solid #e4e7eb; text-align: left; vertical-align: top; }
  th { background: #f0f4f8; }
  td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
  .stale { color: #b42318; font-weight: 600; }
  ul.reasons { margin: 0; padding-left: 16px; }
  ul.reasons .count { font-weight: 600; font-variant-numeric: tabular-nums; }
  td.nowrap { white-space: nowrap; }
  .note { color: #52606d; font-size: 13px; }
  .missing { color: #b42318; }
  details summary { cursor: pointer; color: #1f3a5f; font-weight: 600; margin: 6px 0; }
  .chart-error { color: #b42318; font-weight: 600; }
</style>
</head>
<body>
<header>
  <h1>Referral KPIs</h1>
  <p>Latest closed quarter: <strong>{{ closed }}</strong>. Quarter in progress: <strong>{{ current_quarter }}</strong>
     <span class="partial-badge">partial</span> — its numbers keep growing until the quarter closes; do not read them
     as a drop.</p>
  <p>Generated {{ now }}{% if source %} from the exports in {{ source }}{% endif %}.
     Quarters are calendar quarters in UTC.</p>
</header>
<nav>
  <a href="#summary">Summary</a>
  {% for k in kpis %}<a href="#{{ k.name }}">{{ k.title }}</a>{% endfor %}
  <a href="#funnel">Referral funnel</a>
  <a href="#data-quality">Data quality</a>
</nav>
<main>
{% if missing %}
<p class="missing">Not materialised yet: {{ missing | join(', ') }}. Materialise the KPI assets to fill those sections.</p>
{% endif %}
<section id="summary">
  <h2>Summary — {{ closed }}</h2>
  <p class="note">Each KPI in the latest closed quarter, and its change in percentage points (pp) from the quarter before.</p>
  <div class="cards">
  {% for k in kpis %}
    {% set h = k.headline %}
    <div class="card" data-kpi="{{ k.name }}">
      <div class="title">{{ k.title }}</div>
      {% if h.quarter %}
      <div class="rate">{{ '%.1f%%' % h.rate_pct if h.rate_pct is not none else 'no data' }}</div>
      <div class="sub">{{ '{:,}'.format(h.numerator) }} of {{ '{:,}'.format(h.denominator) }} in {{ h.quarter }}</div>
      <div class="sub">
        {% if h.change_pp is not none %}
        <span class="{{ 'up' if h.change_pp >= 0 else 'down' }}">{{ '▲' if h.change_pp >= 0 else '▼' }}
          {{ ('+' if h.change_pp >= 0 else '−') ~ ('%.1f' % (h.change_pp | abs)) }} pp</span> vs the quarter before
        {% else %}no previous quarter to compare{% endif %}
      </div>
      {% else %}
      <div class="sub missing">{{ closed }} not materialised</div>
      {% endif %}
      {% if k.partial %}
      <div class="sub">{{ k.partial.quarter }} so far <span class="partial-badge">partial</span>: {{ k.partial.rate }}
        ({{ k.partial.numerator }} of {{ k.partial.denominator }})</div>
      {% endif %}
    </div>
  {% endfor %}
  </div>
</section>

{% for k in kpis %}
<section id="{{ k.name }}" class="kpi">
  <h2>{{ k.title }}</h2>
  <p class="formula">Rate = <code>{{ k.formula }}</code> · table <code>{{ k.table }}</code></p>
  {% if k.missing %}
  <p class="missing">{{ k.table }} is not materialised yet.</p>
  {% else %}
  <h3>Trend over quarters</h3>
  {% if k.trend_chart %}<div class="chart" id="{{ k.trend_chart }}" data-chart="trend" data-kpi="{{ k.name }}"></div>{% endif %}
  <table class="trend" data-kpi="{{ k.name }}">
    <thead><tr><th>Quarter</th><th class="num">Rate</th><th class="num">Numerator</th><th class="num">Denominator</th>
      <th class="num">Change vs previous quarter</th></tr></thead>
    <tbody>
    {% for r in k.trend_rows | reverse %}
      <tr{% if r.partial %} class="partial"{% endif %}><td>{{ r.quarter }}{% if r.partial %}<span class="partial-badge">partial</span>{% endif %}</td>
        <td class="num">{{ r.rate }}</td><td class="num">{{ r.numerator }}</td><td class="num">{{ r.denominator }}</td>
        <td class="num">{{ r.change }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  <h3>Segments in {{ closed }} (latest closed quarter)</h3>
  {% if k.segment_charts %}
  <div class="charts">
    {% for c in k.segment_charts %}<div class="chart" id="{{ c }}" data-chart="segments" data-kpi="{{ k.name }}"></div>{% endfor %}
  </div>
  {% else %}
  <p class="note">No segment rows for {{ closed }}{% if not k.headline.quarter %}: the quarter is not materialised{% else %}: its denominator is 0{% endif %}.</p>
  {% endif %}
  {% if k.dimensions_without_rows and k.segment_charts %}
  <p class="note">No rows in {{ closed }} for: {{ k.dimensions_without_rows | join(', ') }}.</p>
  {% endif %}
  {% if k.segment_rows %}
  <details><summary>Every segment's numbers</summary>
  <table class="segments" data-kpi="{{ k.name }}">
    <thead><tr><th>Dimension</th><th>Segment</th><th class="num">Rate</th><th class="num">Numerator</th><th class="num">Denominator</th></tr></thead>
    <tbody>
    {% for r in k.segment_rows %}
      <tr><td>{{ r.dimension }}</td><td>{{ r.segment }}</td><td class="num">{{ r.rate }}</td>
        <td class="num">{{ r.numerator }}</td><td class="num">{{ r.denominator }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  </details>
  {% endif %}
  {% endif %}
</section>
{% endfor %}

<section id="funnel">
  <h2>Referral funnel</h2>
  <p class="formula">The accounts in the warm-intro scope of a quarter, followed through five steps within that quarter.
    <em>Through every step</em> counts the accounts at a stage and at every stage before it; the step conversion is that
    count over the step before's. Pick another quarter under the chart, or read them all in the table.</p>
  {% if funnel.missing %}
  <p class="missing">kpi.referral_funnel is not materialised yet.</p>
  {% elif not funnel.chart %}
  <p class="note">No quarter in kpi.referral_funnel yet.</p>
  {% else %}
  <div class="chart" id="{{ funnel.chart }}" data-chart="funnel"></div>
  <table class="funnel-latest">
    <caption class="note">{{ funnel.default_quarter }}</caption>
    <thead><tr><th>Stage</th><th class="num">Accounts</th><th class="num">% of scope</th>
      <th class="num">Through every step so far</th><th class="num">% of the step before</th></tr></thead>
    <tbody>
    {% for r in funnel.latest_rows %}
      <tr><td>{{ r.stage }}</td><td class="num">{{ r.accounts }}</td><td class="num">{{ r.pct_of_scope }}</td>
        <td class="num">{{ r.through }}</td><td class="num">{{ r.conversion }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  <details><summary>Every quarter: accounts at each stage (% of scope)</summary>
  <table class="funnel-quarters">
    <thead><tr><th>Quarter</th>{% for s in funnel.stages %}<th class="num">{{ s }}</th>{% endfor %}</tr></thead>
    <tbody>
    {% for q in funnel.by_quarter %}
      <tr{% if q.partial %} class="partial"{% endif %}><td>{{ q.quarter }}{% if q.partial %}<span class="partial-badge">partial</span>{% endif %}</td>
        {% for c in q.cells %}<td class="num">{{ c }}</td>{% endfor %}</tr>
    {% endfor %}
    </tbody>
  </table>
  </details>
  {% endif %}
</section>

<section id="data-quality">
  <h2>Data quality</h2>
  <p class="formula">Every row of each export is staged or quarantined with its reason (table
    <code>quarantine.rejected_rows</code>); the counts are those of the export's last staging.
    {% if quality.max_age_hours is not none %}An export older than {{ quality.max_age_hours | round(1) }} h is marked stale.{% endif %}</p>
  {% if quality.loads_missing %}<p class="missing">meta.staged_files is not there yet: no source has been staged.</p>{% endif %}
  {% if quality.chart %}<div class="chart" id="{{ quality.chart }}" data-chart="quality"></div>{% endif %}
  <table class="quality">
    <thead><tr><th>Export</th><th>Last modified</th><th class="num">Age</th><th class="num">Input rows</th>
      <th class="num">Staged</th><th class="num">Quarantined</th><th class="num">Quarantined %</th>
      <th>Top reasons (rows)</th><th>Staged at (UTC)</th></tr></thead>
    <tbody>
    {% for r in quality.rows %}
      <tr data-source="{{ r.source }}"><td><strong>{{ r.title }}</strong><br><span class="note">{{ r.file }}</span></td>
        <td>{{ r.modified }}</td><td class="num nowrap{% if r.stale %} stale{% endif %}">{{ r.age }}{% if r.stale and r.modified != '—' %} (stale){% endif %}</td>
        <td class="num">{{ r.input_rows }}</td><td class="num">{{ r.staged_rows }}</td>
        <td class="num">{{ r.quarantined_rows }}</td><td class="num">{{ r.quarantined_pct }}</td>
        <td>{% if r.reasons %}<ul class="reasons">{% for reason, rows in r.reasons %}<li>{{ reason }} <span class="count">{{ rows }}</span></li>{% endfor %}</ul>{% elif r.staged %}none{% else %}—{% endif %}
          {% if r.more_reasons %}<span class="note more-reasons">and {{ r.more_reasons }} more reason{{ 's' if r.more_reasons > 1 }}
            ({{ r.more_reasons_rows }} rows) not shown</span>{% endif %}</td>
        <td style="white-space: nowrap">{{ r.staged_at }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  <p class="note">Top {{ quality.top }} reasons per export. The rejected rows themselves:
    <code>SELECT * FROM quarantine.rejected_rows WHERE source = '…'</code>.</p>
</section>
<p class="note">Charts: {{ versions }}, inlined in this file; it makes no network request. Hover a bar for its numbers;
  the ⋯ menu of a chart saves it as SVG or PNG.</p>
</main>
<script id="chart-specs" type="application/json">{{ specs | safe }}</script>
<script>
// Vega, Vega-Lite and Vega-Embed, bundled by vl-convert.
{{ bundle | safe }}
</script>
<script>
(function () {
  const body = document.body;
  const violations = [];
  document.addEventListener("securitypolicyviolation", (e) => {
    violations.push(e.blockedURI);
    body.dataset.blockedRequests = violations.join(" ");
  });
  const specs = JSON.parse(document.getElementById("chart-specs").textContent);
  const options = {renderer: "svg", actions: {export: true, source: false, compiled: false, editor: false}};
  const ids = Object.keys(specs);
  Promise.allSettled(ids.map((id) => vegaEmbed("#" + id, specs[id], options).catch((err) => {
    const box = document.getElementById(id);
    box.classList.add("chart-error");
    box.textContent = "This chart failed to draw: " + err;
    throw err;
  }))).then((results) => {
    body.dataset.chartsExpected = ids.length;
    body.dataset.chartsRendered = results.filter((r) => r.status === "fulfilled").length;
    body.dataset.chartsFailed = results.filter((r) => r.status === "rejected").length;
    body.dataset.ready = "true";
  });
})();
</script>
</body>
</html>
"""
)
