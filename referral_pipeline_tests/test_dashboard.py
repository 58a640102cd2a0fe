"""The KPI dashboard: a hand-built warehouse, the HTML written from it opened in real headless
Chromium (every chart drawn with the fixture's numbers, the partial quarter marked, no request
leaving the machine), the Dagster asset that writes it, and the chart for the Dagster UI."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
import tempfile
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path
from xml.etree import ElementTree

import duckdb
import pytest

from referral_pipeline.defs.resources import DASHBOARD_ENV, Dashboard
from referral_pipeline.lib import dashboard
from referral_pipeline.lib.kpis import KPIS
from referral_pipeline.lib.sources import SOURCES_BY_NAME

CURRENT = "2026-Q4"  # the quarter in progress: partial
CLOSED = "2026-Q3"  # the latest closed quarter
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
needs_chromium = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"), reason="no chromium")

# (quarter, numerator, denominator) of each KPI's overall rows; 2025-Q3 is absent (not materialised),
# 2025-Q2 has no data yet (left out of the trend).
OVERALL = {
    "strategic_referral_win_rate": [
        ("2025-Q2", 0, 0), ("2025-Q4", 3, 10), ("2026-Q1", 4, 10), ("2026-Q2", 5, 20), ("2026-Q3", 9, 24), ("2026-Q4", 1, 8),
    ],
    "warm_intro_offer_rate": [("2026-Q2", 24, 100), ("2026-Q3", 30, 120), ("2026-Q4", 6, 118)],
    "qbr_referral_intent_rate": [("2026-Q1", 3, 12), ("2026-Q2", 0, 0), ("2026-Q3", 11, 44), ("2026-Q4", 2, 10)],
}
OWNER_WITH_MARKUP = 'Zoë "Z" <O\'Neil> & Co'
# Segments of the latest closed quarter: (dimension, segment, numerator, denominator).
SEGMENTS = {
    "strategic_referral_win_rate": [
        ("referral_source_type", "customer", 6, 14), ("referral_source_type", "partner", 3, 10),
        ("referrer_tier", "strategic", 6, 14), ("referrer_tier", "gold", 2, 6), ("referrer_tier", "advisor", 1, 4),
        ("vertical", "fintech", 5, 12), ("vertical", "health", 4, 12),
        ("owner", "Dana Rivera", 7, 15), ("owner", OWNER_WITH_MARKUP, 2, 9),
    ],
    "warm_intro_offer_rate": [
        ("trigger_event", "qbr", 18, 120), ("trigger_event", "nps", 14, 120),
        ("asked_by", "Sam Okafor", 17, 120), ("asked_by", "(none)", 13, 120),
        ("csm_owner", "Ana Lima", 20, 70), ("csm_owner", "Ben Cho", 10, 50),
        ("lifecycle_stage", "adoption", 21, 80), ("lifecycle_stage", "renewal", 9, 40),
        ("nps_band", "promoter", 15, 40), ("nps_band", "passive", 10, 50), ("nps_band", "detractor", 3, 20),
        ("nps_band", "no_response", 2, 10),
        ("account_tier", "strategic", 12, 30), ("account_tier", "enterprise", 18, 90),
    ],
    "qbr_referral_intent_rate": [
        ("account_tier", "strategic", 7, 20), ("account_tier", "smb", 4, 24),
        ("csm", "Ana Lima", 8, 26), ("csm", "Ben Cho", 3, 18),
        ("format", "in_person", 6, 20), ("format", "virtual", 5, 24),
    ],
}
# kpi.referral_funnel: quarter -> [(accounts, accounts_through)] for steps 1..5.
FUNNEL = {
    "2026-Q2": [(100, 100), (10, 10), (24, 5), (8, 2), (3, 1)],
    "2026-Q3": [(120, 120), (18, 18), (30, 9), (12, 4), (5, 2)],
    "2026-Q4": [(118, 118), (3, 3), (6, 1), (1, 0), (0, 0)],
}
STAGES = ["in_scope", "referral_intent", "asked", "referred", "referral_won"]
OPPORTUNITY_REASONS = {
    "duplicate": 8, "conflicting duplicate": 5, "stage: not an allowed value": 4,
    "closed_at: required when closed": 2, "amount: negative": 1,
}
# source -> (input, staged, quarantined, reasons)
STAGED = {
    "accounts": (100, 98, 2, {"account_tier: not an allowed value": 2}),
    "partners": (12, 12, 0, {}),
    "opportunities": (500, 480, 20, OPPORTUNITY_REASONS),
    "warm_intro_asks": (300, 300, 0, {}),
    "nps_responses": (250, 249, 1, {"score: out of range": 1}),
    "qbr_notes": (90, 90, 0, {}),
}
# Ages of the exports at NOW; nps responses has no export in the folder.
EXPORT_AGES = {"accounts": timedelta(hours=2), "partners": timedelta(hours=5),
               "opportunities": timedelta(days=3), "warm_intro_asks": timedelta(minutes=30),
               "qbr_notes": timedelta(hours=20)}


def rate(n: int, d: int) -> float | None:
    return 100.0 * n / d if d else None


def build_warehouse(con: duckdb.DuckDBPyConnection) -> None:
    """The KPI, funnel, meta and quarantine tables of the contract, filled with the rows above."""
    for schema in ("kpi", "meta", "quarantine"):
        con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    for kpi in KPIS:
        con.execute(
            f"""CREATE TABLE {kpi.table} (quarter VARCHAR NOT NULL, dimension VARCHAR NOT NULL,
                segment VARCHAR NOT NULL, numerator BIGINT NOT NULL, denominator BIGINT NOT NULL, rate_pct DOUBLE)"""
        )
        rows = [(q, "overall", "all", n, d) for q, n, d in OVERALL[kpi.name]]
        rows += [(CLOSED, dim, seg, n, d) for dim, seg, n, d in SEGMENTS[kpi.name]]
        rows += [(CURRENT, dim, seg, max(n - 5, 0), d) for dim, seg, n, d in SEGMENTS[kpi.name][:2]]
        con.executemany(
            f"INSERT INTO {kpi.table} VALUES (?, ?, ?, ?, ?, CASE WHEN ? > 0 THEN 100.0 * ? / ? END)",
            [(*r, r[4], r[3], r[4]) for r in rows],
        )
    con.execute(
        """CREATE TABLE kpi.referral_funnel (quarter VARCHAR, step INTEGER, stage VARCHAR, accounts BIGINT,
           pct_of_scope DOUBLE, accounts_through BIGINT, step_conversion_pct DOUBLE)"""
    )
    funnel_rows = []
    for quarter, steps in FUNNEL.items():
        scope = steps[0][0]
        for i, (accounts, through) in enumerate(steps):
            previous = steps[i - 1][1] if i else None
            conversion = rate(through, previous) if previous else None
            funnel_rows.append((quarter, i + 1, STAGES[i], accounts, rate(accounts, scope), through, conversion))
    con.executemany("INSERT INTO kpi.referral_funnel VALUES (?, ?, ?, ?, ?, ?, ?)", funnel_rows)
    con.execute(
        """CREATE TABLE meta.staged_files (source VARCHAR PRIMARY KEY, path VARCHAR NOT NULL,
           fingerprint VARCHAR NOT NULL, input_rows BIGINT NOT NULL, staged_rows BIGINT NOT NULL,
           quarantined_rows BIGINT NOT NULL, reasons JSON NOT NULL, staged_at TIMESTAMPTZ NOT NULL)"""
    )
    con.executemany(
        "INSERT INTO meta.staged_files VALUES (?, ?, 'f', ?, ?, ?, ?, ?)",
        [
            (source, f"/exports/{source}", i, s, q, json.dumps(reasons), NOW - timedelta(hours=1))
            for source, (i, s, q, reasons) in STAGED.items()
        ],
    )
    con.execute(
        """CREATE TABLE quarantine.rejected_rows (source VARCHAR NOT NULL, source_row BIGINT NOT NULL,
           record_key VARCHAR, reason VARCHAR NOT NULL, record VARCHAR NOT NULL)"""
    )
    con.execute(
        """INSERT INTO quarantine.rejected_rows
           SELECT s.source, row_number() OVER (), NULL, r.reason, '{}'
           FROM meta.staged_files s,
                LATERAL (SELECT unnest(map_keys(m)) AS reason, unnest(map_values(m)) AS n
                         FROM (SELECT s.reasons::MAP(VARCHAR, BIGINT) AS m)) r,
                range(r.n)"""
    )


def build_exports(folder: Path) -> Path:
    """The source folder: every export but the NPS responses, modified EXPORT_AGES before NOW."""
    for name, age in EXPORT_AGES.items():
        source = SOURCES_BY_NAME[name]
        path = folder / f"{source.path_stem}.{source.text_format}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
        stamp = (NOW - age).timestamp()
        os.utime(path, (stamp, stamp))
    return folder


@pytest.fixture
def warehouse_path(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse" / "warehouse.duckdb"
    path.parent.mkdir()
    con = duckdb.connect(str(path))
    try:
        build_warehouse(con)
    finally:
        con.close()
    return path


@pytest.fixture
def con(warehouse_path: Path):
    con = duckdb.connect(str(warehouse_path), read_only=True)
    yield con
    con.close()


@pytest.fixture
def written(con, tmp_path: Path) -> dashboard.DashboardSummary:
    return dashboard.write_dashboard(
        con, tmp_path / "out" / "dashboard.html", CURRENT, build_exports(tmp_path / "data"),
        now=NOW, tolerance_pct=1.0, max_age_hours=26.0,
    )


KPI = {kpi.name: kpi for kpi in KPIS}


# --- a small DOM of Chromium's output, and what its network log says ---------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: "Node | None"):
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def iter(self):
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs) -> list["Node"]:
        def matches(node: Node) -> bool:
            if tag and node.tag != tag:
                return False
            for key, value in attrs.items():
                have = node.attrs.get(key.rstrip("_").replace("_", "-"))
                if key == "class_":
                    if value not in (have or "").split():
                        return False
                elif have != value:
                    return False
            return True

        return [node for node in self.iter() if matches(node)]

    @property
    def text(self) -> str:
        return "".join(c if isinstance(c, str) else c.text for c in self.children)

    def texts(self, tag: str) -> list[str]:
        return [node.text for node in self.find_all(tag)]


class TreeBuilder(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {}, None)
        self.current = self.root

    def handle_starttag(self, tag, attrs):
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, {k: v or "" for k, v in attrs}, self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data):
        self.current.children.append(data)


def parse(html: str) -> Node:
    builder = TreeBuilder()
    builder.feed(html)
    return builder.root


LEAVING_SCHEMES = ("http:", "https:", "ws:", "wss:", "ftp:")


def page_requests(netlog: dict) -> list[str]:
    """URLs the page (not the browser's own services, whose initiator is "not an origin") asked
    the network for."""
    types = {v: k for k, v in netlog["constants"]["logEventTypes"].items()}
    return [
        e["params"]["url"]
        for e in netlog["events"]
        if types.get(e["type"]) == "URL_REQUEST_START_JOB"
        and "url" in (e.get("params") or {})
        and e["params"].get("initiator") != "not an origin"
        and e["params"]["url"].startswith(LEAVING_SCHEMES)
    ]


def connections_off_machine(netlog: dict) -> list[str]:
    """Addresses any TCP connection of the whole browser was attempted to, off the loopback."""
    types = {v: k for k, v in netlog["constants"]["logEventTypes"].items()}
    addresses = [
        e["params"]["address"]
        for e in netlog["events"]
        if types.get(e["type"]) == "TCP_CONNECT_ATTEMPT" and "address" in (e.get("params") or {})
    ]
    return [a for a in addresses if not re.match(r"^(127\.|\[::1\])", a)]


def run_chromium(url: str, workdir: Path) -> tuple[Node, dict]:
    """Open ``url`` in headless Chromium, let its scripts run, return the DOM and the network log.

    Every host name resolves to nothing (--host-resolver-rules), so not even the browser's own
    background services reach the network; the log still records every request attempted."""
    assert CHROMIUM, "chromium is not installed (.ci/run installs Debian's)"
    netlog = workdir / "netlog.json"
    command = [
        CHROMIUM, *CHROMIUM_FLAGS,
        f"--user-data-dir={workdir / 'profile'}",
        f"--log-net-log={netlog}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=30000",
        "--dump-dom",
        url,
    ]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        out, err = process.communicate(timeout=180)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        out, err = process.communicate()
        raise AssertionError(f"chromium timed out on {url}:\n{err[-3000:]}")
    assert process.returncode == 0, f"chromium exited {process.returncode}:\n{err[-3000:]}"
    return parse(out), json.loads(netlog.read_text())


# --- quarters and the warehouse's numbers ------------------------------------------------------


def test_trend_marks_the_quarter_in_progress_and_compares_with_the_calendar_quarter_before(con):
    trend = dashboard.kpi_trend(con, KPI["strategic_referral_win_rate"].table, CURRENT).set_index("quarter")
    assert list(trend.index) == ["2025-Q4", "2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]
    assert list(trend["partial"]) == [False, False, False, False, True]
    # 2025-Q2 (0 / 0, before any data) is left out; 2025-Q3 was never materialised: 2025-Q4 has
    # nothing to compare with.
    assert trend["change_pp"].isna().tolist() == [True, False, False, False, False]
    assert trend.loc["2026-Q3", "change_pp"] == pytest.approx(37.5 - 25.0)
    assert trend.loc["2026-Q4", "change_pp"] == pytest.approx(12.5 - 37.5)
    # A quarter whose denominator is 0 has no rate, so the next one has no change either.
    qbr = dashboard.kpi_trend(con, KPI["qbr_referral_intent_rate"].table, CURRENT).set_index("quarter")
    assert list(qbr.index) == ["2026-Q1", "2026-Q2", "2026-Q3", "2026-Q4"]  # 0 / 0 inside the range stays
    assert qbr["rate_pct"].isna()["2026-Q2"] and qbr["change_pp"].isna()[["2026-Q2", "2026-Q3"]].all()
    # Asked for an earlier "current" quarter, later quarters are left out and that one is partial.
    earlier = dashboard.kpi_trend(con, KPI["strategic_referral_win_rate"].table, "2026-Q2")
    assert list(earlier["quarter"]) == ["2025-Q4", "2026-Q1", "2026-Q2"] and earlier["partial"].iloc[-1]


def test_staged_sources_name_the_top_reasons_and_count_the_rest(con):
    staged = dashboard.staged_sources(con).set_index("source")
    opportunities = staged.loc["opportunities"]
    assert [(r["reason"], r["rows"]) for r in opportunities["top_reasons"]] == [
        ("duplicate", 8), ("conflicting duplicate", 5), ("stage: not an allowed value", 4),
    ]
    assert (opportunities["more_reasons"], opportunities["more_reasons_rows"]) == (2, 3)
    assert len(staged.loc["partners", "top_reasons"]) == 0 and staged.loc["partners", "more_reasons"] == 0


def test_export_files_give_each_export_its_modification_time(tmp_path):
    exports = {e.source: e for e in dashboard.export_files(build_exports(tmp_path))}
    assert exports["opportunities"].modified_at == NOW - timedelta(days=3)
    assert exports["nps_responses"].path is None and "not found" in exports["nps_responses"].problem


# --- the dashboard file ------------------------------------------------------------------------


def test_dashboard_is_one_offline_file(written):
    html = written.path.read_text(encoding="utf-8")
    assert written.size_bytes == written.path.stat().st_size
    assert 300_000 < written.size_bytes < 5_000_000  # the inlined Vega bundle is most of it
    assert not list(written.path.parent.glob(".*.tmp"))
    # Nothing to fetch: no script, style, image or frame from anywhere (outside the scripts' own
    # text, where the bundle builds its export links), and a CSP forbidding requests.
    markup = re.sub(r"(<script[^>]*>).*?</script>", r"\1", html, flags=re.S | re.I)
    assert markup.count("<script") == 3
    assert not re.search(r"<(script|link|img|iframe|source|object)\b[^>]*\b(src|href|data)\s*=", markup, re.I)
    assert "default-src 'none'" in html
    # 3 trends, a chart per dimension of the closed quarter (4 + 6 + 3), the funnel, data quality.
    assert written.charts == 3 + 4 + 6 + 3 + 1 + 1
    assert written.latest_closed_quarter == CLOSED and written.missing_tables == ()
    win = written.headlines[0]
    assert (win.quarter, win.numerator, win.denominator, win.rate_pct) == (CLOSED, 9, 24, 37.5)
    assert win.change_pp == pytest.approx(12.5)


def test_an_empty_warehouse_gives_a_page_that_says_what_is_missing(tmp_path):
    con = duckdb.connect()
    summary = dashboard.write_dashboard(con, tmp_path / "d.html", CURRENT, tmp_path / "no-exports", now=NOW)
    html = summary.path.read_text(encoding="utf-8")
    assert summary.charts == 0
    assert set(summary.missing_tables) == {k.table for k in KPIS} | {"kpi.referral_funnel"}
    assert "kpi.referral_funnel is not materialised yet" in html
    assert "meta.staged_files is not there yet" in html


@needs_chromium
def test_every_chart_renders_in_chromium_with_the_numbers_and_no_request(written, tmp_path):
    dom, netlog = run_chromium(written.path.as_uri(), tmp_path / "chromium")

    assert page_requests(netlog) == []
    assert connections_off_machine(netlog) == []
    body = dom.find_all("body")[0]
    assert body.attrs.get("data-ready") == "true", "the charts never finished drawing"
    assert "data-blocked-requests" not in body.attrs  # no Content-Security-Policy violation
    assert body.attrs["data-charts-failed"] == "0"
    assert body.attrs["data-charts-rendered"] == body.attrs["data-charts-expected"] == str(written.charts)

    charts = dom.find_all("div", class_="chart")
    assert len(charts) == written.charts
    for chart in charts:
        svgs = chart.find_all("svg", class_="marks")
        assert len(svgs) == 1, f"{chart.attrs['id']} ({chart.attrs['data-chart']}) has no Vega SVG"
        assert chart.find_all(role="graphics-symbol"), f"{chart.attrs['id']} drew no mark"

    def of(kind: str, kpi: str | None = None) -> list[Node]:
        return [c for c in charts if c.attrs["data-chart"] == kind and (kpi is None or c.attrs.get("data-kpi") == kpi)]

    # Trend: one bar per quarter, numerator and denominator in each bar's hover text, the quarter in
    # progress drawn apart and tagged "partial".
    for name, rows in OVERALL.items():
        (trend,) = of("trend", name)
        bars = {
            re.search(r"Quarter: (\S+);", b.attrs["aria-label"])[1]: b
            for b in trend.find_all(aria_roledescription="bar")
        }
        shown = [r for r in rows if r[0] != "2025-Q2"]  # no data before: left out
        assert sorted(bars) == [q for q, _, d in shown if d]  # no bar where the rate is undefined (0 / 0)
        for quarter, n, d in (r for r in shown if r[2]):
            label = bars[quarter].attrs["aria-label"]
            assert f"Numerator: {n};" in label and f"Denominator: {d};" in label
            status = dashboard.PARTIAL if quarter == CURRENT else dashboard.CLOSED
            assert f"Status: {status};" in label
        assert bars[CURRENT].attrs["fill"] != bars[CLOSED].attrs["fill"]
        assert bars[CURRENT].attrs.get("stroke-dasharray") not in (None, "", "1,0")
        assert "partial" in trend.texts("text")
    win_texts = of("trend", "strategic_referral_win_rate")[0].texts("text")
    assert {"30.0%", "40.0%", "25.0%", "37.5%", "12.5%"} <= set(win_texts)
    assert "no data" in of("trend", "qbr_referral_intent_rate")[0].texts("text")  # 0 / 0 in 2026-Q2

    # Segments of the latest closed quarter: a chart per dimension, each bar labelled rate (n/d).
    for name, rows in SEGMENTS.items():
        segment_charts = of("segments", name)
        assert len(segment_charts) == len({dim for dim, *_ in rows})
        labels = {t for c in segment_charts for t in c.texts("text")}
        for _, segment, n, d in rows:
            assert f"{100 * n / d:.1f}%  ({n}/{d})" in labels
            assert segment in labels  # the axis label, markup in a CRM value shown as text
    assert OWNER_WITH_MARKUP in {t for c in of("segments") for t in c.texts("text")}
    assert OWNER_WITH_MARKUP in dom.texts("td")  # escaped in the segment table too, not parsed as a tag

    # The funnel: the latest closed quarter's five steps, a selector for the other quarters.
    (funnel,) = of("funnel")
    texts = funnel.texts("text")
    assert "120 · 100.0% of scope" in texts
    assert "30 · 25.0% of scope · 9 through every step (50.0% of the step before)" in texts
    assert "5 · 4.2% of scope · 2 through every step (50.0% of the step before)" in texts
    assert not any(t.startswith("118 ") for t in texts)  # 2026-Q4 is not the one shown
    (select,) = funnel.find_all("select")
    options = select.find_all("option")
    assert [o.text for o in options] == ["2026-Q2", "2026-Q3", "2026-Q4 (partial)"]

    # Data quality: the quarantined share per export, and the table with top reasons and ages.
    (quality,) = of("quality")
    assert "4.00%  (20 of 500 rows)" in quality.texts("text")
    trs = {tr.attrs["data-source"]: tr for tr in dom.find_all("tr") if "data-source" in tr.attrs}
    rows = {source: tr.text for source, tr in trs.items()}
    assert [li.text for li in trs["opportunities"].find_all("li")] == [
        "duplicate 8", "conflicting duplicate 5", "stage: not an allowed value 4",
    ]
    assert "20" in rows["opportunities"] and "4.00%" in rows["opportunities"]
    assert "and 2 more reasons (3 rows) not shown" in " ".join(rows["opportunities"].split())
    assert "3.0 days (stale)" in rows["opportunities"] and "2.0 h" in rows["accounts"]
    assert "missing" in rows["nps_responses"]

    # Tables: the quarter in progress carries its mark there too.
    for table in dom.find_all("table", class_="trend"):
        partial_rows = table.find_all("tr", class_="partial")
        assert len(partial_rows) == 1 and partial_rows[0].text.startswith(CURRENT + "partial")


@needs_chromium
def test_the_network_check_sees_requests_a_page_makes(tmp_path):
    """The check above could pass by seeing nothing: a page that does request is caught."""
    probe = tmp_path / "probe.html"
    probe.write_text(
        '<html><body><img src="http://127.0.0.1:9/pixel.png"><script>'
        'fetch("https://cdn.example.invalid/vega.js").catch(() => {});'
        'new WebSocket("ws://127.0.0.1:9/live");'
        "</script></body></html>"
    )
    _, netlog = run_chromium(probe.as_uri(), tmp_path / "chromium")
    assert sorted(page_requests(netlog)) == [
        "http://127.0.0.1:9/pixel.png", "https://cdn.example.invalid/vega.js", "ws://127.0.0.1:9/live",
    ]
    assert connections_off_machine(netlog) == []


# --- the Dagster UI's chart of a KPI, and the asset ---------------------------------------------


def test_kpi_chart_metadata_embeds_the_trend_chart_as_svg(con):
    from referral_pipeline.defs.assets.reports import kpi_chart_metadata

    metadata = kpi_chart_metadata(con, KPI["strategic_referral_win_rate"], CURRENT)
    chart = metadata["trend_chart"].value
    match = re.search(r"!\[[^\]]*\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", chart)
    svg = base64.b64decode(match[1]).decode()
    assert svg.startswith("<svg") and ">partial</text>" in svg and ">37.5%</text>" in svg
    drawn = ElementTree.fromstring(svg)  # well-formed XML, or a browser shows a broken image
    bars = [r for r in drawn.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
    tips = [bar.find("{http://www.w3.org/2000/svg}title").text for bar in bars]
    assert tips[-2:] == ["2026-Q3 (closed quarter): 37.5%, 9 of 24, change +12.5 pp",
                         "2026-Q4 (quarter in progress (partial)): 12.5%, 1 of 8, change −25.0 pp"]
    heights = {tip.split()[0]: float(bar.get("height")) for tip, bar in zip(tips, bars)}
    assert heights["2026-Q3"] == pytest.approx(3 * heights["2026-Q4"])  # 37.5% is three times 12.5%
    assert "| 2026-Q4 (partial: in progress) | 12.5% | 1 | 8 | −25.0 pp |" in chart
    assert "| 2026-Q3 | 37.5% | 9 | 24 | +12.5 pp |" in chart
    latest = metadata["latest"].value
    assert len(latest) < 1000  # the UI shows markdown inline only below 1,000 characters
    assert "**2026-Q3** (latest closed): **37.5%** (9 of 24), +12.5 pp" in latest
    assert "**2026-Q4** so far (*partial*, in progress): 12.5% (1 of 8)" in latest


def test_dashboard_resource_path(monkeypatch, tmp_path):
    from referral_pipeline.defs.resources import Warehouse

    warehouse = Warehouse(path=str(tmp_path / "wh" / "w.duckdb"))
    monkeypatch.delenv(DASHBOARD_ENV, raising=False)
    assert Dashboard().resolve(warehouse) == tmp_path / "wh" / "dashboard.html"
    monkeypatch.setenv(DASHBOARD_ENV, str(tmp_path / "env.html"))
    assert Dashboard().resolve(warehouse) == tmp_path / "env.html"
    assert Dashboard(path=str(tmp_path / "cfg.html")).resolve(warehouse) == tmp_path / "cfg.html"


def test_the_asset_writes_the_dashboard_at_the_configured_path(monkeypatch, warehouse_path, tmp_path):
    from dagster import AssetKey, materialize

    from referral_pipeline.defs.assets import reports
    from referral_pipeline.defs.resources import Freshness, KpiConfig, SourceFolder, Warehouse

    monkeypatch.setattr(reports, "current_quarter", lambda at=None: CURRENT)
    target = tmp_path / "reports" / "kpis.html"
    result = materialize(
        [reports.kpi_dashboard],
        resources={
            "warehouse": Warehouse(path=str(warehouse_path)),
            "source_folder": SourceFolder(path=str(build_exports(tmp_path / "data"))),
            "dashboard": Dashboard(path=str(target)),
            "kpi_config": KpiConfig(max_rejected_fraction=0.02),
            "freshness": Freshness(),
        },
    )
    assert result.success
    assert reports.kpi_dashboard.group_names_by_key[reports.DASHBOARD_KEY] == "reports"
    assert set(reports.kpi_dashboard.asset_deps[reports.DASHBOARD_KEY]) == {
        *(AssetKey(["kpi", k.name]) for k in KPIS), AssetKey(["kpi", "referral_funnel"])
    }
    (event,) = result.asset_materializations_for_node("reports__kpi_dashboard")
    metadata = event.metadata
    assert metadata["path"].value == str(target) and target.exists()
    assert metadata["size_bytes"].value == target.stat().st_size
    assert metadata["charts"].value == 18
    assert metadata["latest_closed_quarter"].value == CLOSED
    assert metadata["quarter_in_progress"].value == CURRENT
    assert "| Strategic Referral Win Rate | 37.5% | 9 | 24 | +12.5 pp |" in metadata["summary"].value
    html = target.read_text(encoding="utf-8")
    assert "tolerance 2%" in html  # the run's kpi_config reached the page
