"""Scale benchmark: the Dagster pipeline against a plain-DuckDB SQL baseline, on the same files.

    python bench/bench_scale.py --preset s                  # generate preset s into a temp dir
    python bench/bench_scale.py --data /tmp/gen_m           # use an existing source folder
    python bench/bench_scale.py --data /tmp/gen_xl --timeout 7200 --keep --with-detector-ratio

Every measured command runs as its own subprocess under ``/usr/bin/time -v`` (wall clock and
peak RSS of the process tree's largest process):

(a) full backfill   ``dagster asset materialize -m referral_pipeline.definitions --select '*'
                    --partition-range 2022-01-01...<current quarter>`` into a fresh warehouse and
                    a fresh DAGSTER_HOME (everything ``--select '*'`` materialises);
(d) re-run          ``--partition <past quarter>`` right after (a), same warehouse, same files;
(b) baseline        ``python bench/bench_scale.py --baseline-only ...``: bench/baseline_kpis.sql, plain
                    DuckDB SQL over the same files (no validation, no Python detector: the QBR text
                    rule is one ``regexp_matches``), writing the three KPI tables to its own file;
(c) fixed cost      ``--partition <current quarter>`` over a copy of the folder cut to a few rows
                    per source, fresh warehouse (the baseline is run on the same tiny copy too);
(e) detector alone  only with ``--with-detector-ratio``: the project's notes detector
                    (``detect_referral_evidence_in_batches``) over the notes of the completed QBRs
                    in range, for a second ratio against "plain SQL + this project's detector".

Then it checks the KPI rows: the win-rate and warm-intro rows must equal the baseline's (quarter,
dimension, segment, numerator, denominator; rate_pct within 1e-9); for the QBR KPI the rows and
denominators must be equal, and numerator differences (regex vs detector) are only reported.
It prints a markdown table with the ratios pipeline / baseline, the targets, and the per-step
durations Dagster logged with the time outside the steps.
KPI equality is only expected on clean data (bad_fraction 0): the baseline excludes nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
PROJECT_DIR = BENCH_DIR.parent
BASELINE_SQL = BENCH_DIR / "baseline_kpis.sql"
FIRST_QUARTER = "2022-01-01"
KPI_TABLES = ("strategic_referral_win_rate", "warm_intro_offer_rate", "qbr_referral_intent_rate")
TEXT_RULE_KPI = "qbr_referral_intent_rate"  # numerators may differ: SQL regex vs the project's detector
SOURCE_STEMS = {  # contract source -> file stem, text extension
    "accounts": ("crm/accounts", "csv"),
    "partners": ("crm/partners", "csv"),
    "opportunities": ("crm/opportunities", "csv"),
    "warm_intro_asks": ("crm/warm_intro_asks", "csv"),
    "nps_responses": ("nps/responses", "csv"),
    "qbr_notes": ("qbr/notes", "jsonl"),
}
RATE_TOLERANCE = 1e-9
TIME_BIN = "/usr/bin/time"


# ------------------------------------------------------------------------------------------------
# measuring
# ------------------------------------------------------------------------------------------------
@dataclass
class Measured:
    label: str
    command: list[str]
    returncode: int | None = None
    wall_s: float | None = None
    peak_rss_mb: float | None = None
    log: Path | None = None
    timed_out: bool = False
    steps: list[tuple[str, float]] = field(default_factory=list)
    code: str = ""  # fingerprint of the pipeline's code when the command started
    started_at: float = 0.0  # epoch seconds, when the command was started
    ended_at: float = 0.0
    load: tuple[float, float] | None = None  # 1-minute load average when it started / ended
    phases: list[tuple[str, float]] = field(default_factory=list)  # pipeline: time outside the steps

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def _parse_elapsed(text: str) -> float:
    """``1:02:03.45`` / ``2:03.45`` -> seconds."""
    seconds = 0.0
    for part in text.strip().split(":"):
        seconds = seconds * 60 + float(part)
    return seconds


def parse_time_v(text: str) -> tuple[float | None, float | None]:
    wall = rss = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("Elapsed (wall clock) time"):
            wall = _parse_elapsed(line.rsplit("): ", 1)[1] if "): " in line else line.rsplit(" ", 1)[1])
        elif line.startswith("Maximum resident set size"):
            rss = int(line.rsplit(":", 1)[1]) / 1024.0
    return wall, rss


_STEP_RE = re.compile(r'Finished execution of step "([^"]+)" in ([0-9.hms]+)\.')


def _duration_s(text: str) -> float:
    """Dagster's format_duration (``0.83ms``, ``533ms``, ``5.6s``, ``4m52s``, ``1h4m``) -> seconds."""
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    total = 0.0
    for value, unit in re.findall(r"([0-9.]+)([hms])", text):
        total += float(value) * {"h": 3600, "m": 60, "s": 1}[unit]
    return total


def parse_steps(log_text: str) -> list[tuple[str, float]]:
    return [(step, _duration_s(d)) for step, d in _STEP_RE.findall(log_text)]


def code_fingerprint() -> str:
    """SHA-1 of the pipeline package's sources: runs of one benchmark should see the same code."""
    import hashlib

    digest = hashlib.sha1(usedforsecurity=False)
    for path in sorted((PROJECT_DIR / "referral_pipeline").rglob("*")):
        if path.suffix in (".py", ".toml") and path.is_file():
            digest.update(str(path.relative_to(PROJECT_DIR)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def run_measured(label: str, command: list[str], env: dict, workdir: Path, timeout: float | None) -> Measured:
    """Run ``command`` under /usr/bin/time -v; its stdout+stderr go to ``<workdir>/<label>.log``."""
    slug = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")
    log = workdir / f"{slug}.log"
    time_out = workdir / f"{slug}.time"
    m = Measured(label, command, log=log, code=code_fingerprint())
    load_before = os.getloadavg()[0]
    print(f"[bench] {label} (load {load_before:.2f}): {' '.join(command)}", file=sys.stderr, flush=True)
    m.started_at = time.time()
    started = time.monotonic()
    with log.open("w") as handle:
        proc = subprocess.Popen(
            [TIME_BIN, "-v", "-o", str(time_out), *command],
            stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=PROJECT_DIR, start_new_session=True,
        )
        try:
            m.returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            m.timed_out = True
            os.killpg(proc.pid, signal.SIGTERM)  # the group of the process we started, only
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            m.returncode = proc.returncode
    m.ended_at = time.time()
    m.load = (load_before, os.getloadavg()[0])
    if time_out.exists():
        m.wall_s, m.peak_rss_mb = parse_time_v(time_out.read_text())
    if m.wall_s is None:
        m.wall_s = time.monotonic() - started
    m.steps = parse_steps(log.read_text(errors="replace"))
    state = "timed out" if m.timed_out else f"exit {m.returncode}"
    rss = f"{m.peak_rss_mb:.0f} MB" if m.peak_rss_mb is not None else "? MB"
    print(f"[bench]   -> {state}, {m.wall_s:.1f} s, {rss}  (log {log})", file=sys.stderr, flush=True)
    return m


# ------------------------------------------------------------------------------------------------
# data
# ------------------------------------------------------------------------------------------------
def locate(data_dir: Path, source: str) -> Path:
    stem, ext = SOURCE_STEMS[source]
    text, parquet = data_dir / f"{stem}.{ext}", data_dir / f"{stem}.parquet"
    if parquet.exists() and not text.exists():
        return parquet
    return text


def tiny_copy(data_dir: Path, out: Path, rows: int) -> None:
    """The first ``rows`` records of every source (CSV records, JSONL lines, Parquet rows)."""
    for source in SOURCE_STEMS:
        src = locate(data_dir, source)
        dst = out / src.relative_to(data_dir)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            batch = next(pq.ParquetFile(src).iter_batches(batch_size=rows))
            pq.write_table(pa.Table.from_batches([batch]), dst)
        elif src.suffix == ".jsonl":
            with src.open("rb") as fin, dst.open("wb") as fout:
                kept = 0
                for line in fin:
                    if kept >= rows:
                        break
                    fout.write(line)
                    kept += bool(line.strip())
        else:
            bom = src.open("rb").read(3) == b"\xef\xbb\xbf"  # keep it, as the export wrote it
            with src.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as fin, \
                    dst.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8",
                             errors="surrogateescape") as fout:
                reader, writer = csv.reader(fin), csv.writer(fout, quoting=csv.QUOTE_MINIMAL)
                for i, record in enumerate(reader):
                    if i > rows:
                        break
                    writer.writerow(record)


def generate(preset: str, fmt: str, bad_fraction: float | None, out: Path) -> None:
    cmd = [sys.executable, "-m", "referral_pipeline.generate_data", "--preset", preset, "--out", str(out),
           "--format", fmt]
    if bad_fraction is not None:
        cmd += ["--bad-fraction", str(bad_fraction)]
    print(f"[bench] generating: {' '.join(cmd)}", file=sys.stderr, flush=True)
    started = time.monotonic()
    subprocess.run(cmd, check=True, cwd=PROJECT_DIR, stdout=sys.stderr)
    print(f"[bench]   -> generated in {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------
# baseline (runs in its own process: --baseline-only)
# ------------------------------------------------------------------------------------------------
def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def reader_sql(path: Path) -> str:
    if path.suffix == ".parquet":
        return f"read_parquet({_literal(str(path))})"
    if path.suffix == ".jsonl":
        columns = ("{'qbr_id': 'VARCHAR', 'account_id': 'VARCHAR', 'held_on': 'VARCHAR', 'csm': 'VARCHAR', "
                   "'format': 'VARCHAR', 'status': 'VARCHAR', 'tags': 'VARCHAR[]', 'notes': 'VARCHAR'}")
        return (f"read_json({_literal(str(path))}, format='newline_delimited', columns={columns}, "
                "ignore_errors=true, maximum_object_size=67108864)")
    return (f"read_csv({_literal(str(path))}, header=true, all_varchar=true, delim=',', quote='\"', "
            "escape='\"', ignore_errors=true)")


def baseline_script(data_dir: Path, last_quarter: str) -> str:
    values = {name: reader_sql(locate(data_dir, name)) for name in SOURCE_STEMS}
    values["last_quarter"] = last_quarter
    return re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), BASELINE_SQL.read_text())


def text_rule_sql() -> str:
    """The baseline's text rule (the ``referral_text`` macro statement of baseline_kpis.sql)."""
    found = re.search(r"^CREATE OR REPLACE TEMP MACRO referral_text\b.*?;[ \t]*$", BASELINE_SQL.read_text(),
                      flags=re.M | re.S)
    if not found:
        raise SystemExit(f"{BASELINE_SQL}: no `CREATE OR REPLACE TEMP MACRO referral_text` statement")
    return found.group(0)


def _statement_name(sql: str) -> str:
    found = re.search(r"\b(?:TABLE|VIEW|MACRO|SCHEMA)\s+(?:IF NOT EXISTS\s+)?([\w.]+)", sql, flags=re.I)
    return found.group(1) if found else sql.strip().split("\n", 1)[0][:40]


def run_baseline(data_dir: Path, last_quarter: str, out: Path) -> None:
    """The plain-SQL baseline: baseline_kpis.sql, one statement after the other, one connection."""
    import duckdb

    out.unlink(missing_ok=True)
    timings = []
    t0 = time.monotonic()
    with duckdb.connect(str(out)) as con:
        for statement in con.extract_statements(baseline_script(data_dir, last_quarter)):
            t = time.monotonic()
            con.execute(statement)
            timings.append((_statement_name(statement.query), time.monotonic() - t))
    total = time.monotonic() - t0
    shown = "; ".join(f"{name} {sec:.2f} s" for name, sec in timings if sec >= 0.005)
    print(f"baseline: plain SQL {total:.2f} s in DuckDB ({shown})", flush=True)


def completed_notes_sql(data_dir: Path, last_quarter: str) -> str:
    """Notes of the completed QBRs held in 2022-Q1..last quarter: what the QBR KPI reads."""
    return f"""
        SELECT nullif(trim(qbr_id::VARCHAR), '') AS qbr_id, notes
        FROM {reader_sql(locate(data_dir, "qbr_notes"))}
        WHERE lower(nullif(trim(status::VARCHAR), '')) = 'completed'
          AND TRY_CAST(nullif(trim(held_on::VARCHAR), '') AS DATE) >= DATE '{FIRST_QUARTER}'
          AND TRY_CAST(nullif(trim(held_on::VARCHAR), '') AS DATE)
              < (DATE '{last_quarter}' + INTERVAL 3 MONTH)::DATE
          AND notes IS NOT NULL"""


def run_detector(data_dir: Path, last_quarter: str, batch_size: int = 5_000) -> None:
    """(e): the project's notes detector alone over the notes the QBR KPI reads."""
    import duckdb

    from referral_pipeline.lib.text_signals import detect_referral_evidence_in_batches

    t0 = time.monotonic()
    con = duckdb.connect()
    notes = con.sql(f"SELECT notes FROM ({completed_notes_sql(data_dir, last_quarter)})").to_arrow_table()
    total = notes.num_rows
    t1 = time.monotonic()
    batches = (batch.column(0).to_pylist() for batch in notes.to_batches(max_chunksize=batch_size))
    found = sum(sum(e is not None for e in result) for result in detect_referral_evidence_in_batches(batches, total))
    t2 = time.monotonic()
    print(f"detector: {total} notes of completed QBRs: read {t1 - t0:.2f} s; "
          f"detect_referral_evidence_in_batches {t2 - t1:.2f} s ({found} with evidence)", flush=True)
    print(f"detector_seconds={t2 - t1:.6f}", flush=True)


# ------------------------------------------------------------------------------------------------
# comparing
# ------------------------------------------------------------------------------------------------
def compare(warehouse: Path, baseline: Path) -> dict[str, dict]:
    """Per KPI table: rows only in one side, rows whose numbers differ, and a few examples.

    ``differs`` counts rows whose numerator, denominator or rate differ; for the QBR KPI (text
    rule: regex vs detector) ``denominator_differs`` is what must be 0, ``numerator_differs`` is
    only reported, with the sum of the overall rows' numerators on each side.
    """
    import duckdb

    result = {}
    with duckdb.connect() as con:
        con.execute(f"ATTACH {_literal(str(warehouse))} AS wh (READ_ONLY)")
        con.execute(f"ATTACH {_literal(str(baseline))} AS bl (READ_ONLY)")
        for table in KPI_TABLES:
            joined = f"""
                SELECT coalesce(p.quarter, b.quarter) AS quarter, coalesce(p.dimension, b.dimension) AS dimension,
                       coalesce(p.segment, b.segment) AS segment,
                       p.numerator AS p_num, b.numerator AS b_num, p.denominator AS p_den, b.denominator AS b_den,
                       p.rate_pct AS p_rate, b.rate_pct AS b_rate,
                       CASE WHEN b.quarter IS NULL THEN 'only_pipeline' WHEN p.quarter IS NULL THEN 'only_baseline'
                            WHEN p.numerator <> b.numerator OR p.denominator <> b.denominator
                              OR (p.rate_pct IS NULL) <> (b.rate_pct IS NULL)
                              OR abs(p.rate_pct - b.rate_pct) > {RATE_TOLERANCE} THEN 'differs' END AS kind,
                       p.denominator IS DISTINCT FROM b.denominator AS den_differs,
                       p.numerator IS DISTINCT FROM b.numerator AS num_differs
                FROM wh.kpi.{table} p FULL JOIN bl.kpi.{table} b USING (quarter, dimension, segment)
            """
            try:
                (rows_p,) = con.execute(f"SELECT count(*) FROM wh.kpi.{table}").fetchone()
                (rows_b,) = con.execute(f"SELECT count(*) FROM bl.kpi.{table}").fetchone()
                counts = dict(con.execute(
                    f"SELECT kind, count(*) FROM ({joined}) WHERE kind IS NOT NULL GROUP BY ALL").fetchall())
                res = {"pipeline_rows": rows_p, "baseline_rows": rows_b, **counts}
                if table == TEXT_RULE_KPI:
                    res["denominator_differs"], res["numerator_differs"] = con.execute(
                        f"SELECT count(*) FILTER (den_differs AND kind <> 'only_pipeline' AND kind <> 'only_baseline'),"
                        f" count(*) FILTER (num_differs AND NOT den_differs) FROM ({joined})").fetchone()
                    res["overall_numerators"] = con.execute(
                        f"SELECT sum(p_num), sum(b_num), sum(p_den), sum(b_den) FROM ({joined}) "
                        "WHERE dimension = 'overall'").fetchone()
                    strict = "kind IN ('only_pipeline', 'only_baseline') OR den_differs"
                else:
                    strict = "kind IS NOT NULL"
                res["strict_failures"] = con.execute(f"SELECT count(*) FROM ({joined}) WHERE {strict}").fetchone()[0]
                res["sample"] = con.execute(
                    f"SELECT * EXCLUDE (den_differs, num_differs) FROM ({joined}) WHERE {strict} "
                    "ORDER BY kind, quarter, dimension, segment LIMIT 5").fetchall()
                result[table] = res
            except duckdb.Error as exc:
                result[table] = {"error": str(exc).splitlines()[0], "strict_failures": 1}
    return result


def compare_text_rule(warehouse: Path, data_dir: Path, last_quarter: str, examples: int = 3) -> dict:
    """QBR by QBR: the pipeline's referral_signal (facts.completed_qbrs) against the baseline's rule
    (tag or the SQL regex), computed here from the source file, outside any timing."""
    import duckdb

    pattern = re.search(r"regexp_matches\(lower\(notes\), '((?:[^']|'')*)'\)", text_rule_sql())
    pattern = pattern.group(1).replace("''", "'") if pattern else None
    try:
        with duckdb.connect() as con:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(text_rule_sql())
            con.execute(f"ATTACH {_literal(str(warehouse))} AS wh (READ_ONLY)")
            qbr_reader = reader_sql(locate(data_dir, "qbr_notes"))
            con.execute(f"""
                CREATE TEMP TABLE judged AS
                SELECT f.qbr_id, f.referral_signal AS pipeline, f.signal_source, f.evidence,
                       coalesce(list_contains(list_transform(n.tags, lambda t: lower(trim(t))), 'referral_intent'),
                                false) AS tagged,
                       coalesce(referral_text(n.notes), false) AS regex, n.notes
                FROM wh.facts.completed_qbrs f
                LEFT JOIN (SELECT nullif(trim(qbr_id::VARCHAR), '') AS qbr_id, tags, notes FROM {qbr_reader}) n
                  USING (qbr_id)""")
            summary = con.execute("""
                SELECT count(*), count(*) FILTER (pipeline), count(*) FILTER (tagged OR regex),
                       count(*) FILTER (pipeline AND (tagged OR regex)),
                       count(*) FILTER (pipeline AND NOT (tagged OR regex)),
                       count(*) FILTER (NOT pipeline AND (tagged OR regex)),
                       count(*) FILTER (NOT pipeline AND NOT tagged AND regex)
                FROM judged""").fetchone()
            keys = ("qbrs", "pipeline_signal", "baseline_signal", "both", "pipeline_only", "baseline_only",
                    "baseline_only_by_regex")
            res = dict(zip(keys, summary))
            res["pipeline_only_by_source"] = dict(con.execute(
                "SELECT coalesce(signal_source, '?'), count(*) FROM judged WHERE pipeline AND NOT (tagged OR regex) "
                "GROUP BY ALL ORDER BY 2 DESC").fetchall())
            res["pipeline_only_examples"] = con.execute(
                f"SELECT left(evidence, 160) AS e, count(*) FROM judged WHERE pipeline AND NOT (tagged OR regex) "
                f"GROUP BY e ORDER BY 2 DESC, e LIMIT {examples}").fetchall()
            res["baseline_only_by_match"] = {}
            res["baseline_only_examples"] = []
            if pattern:
                only = "FROM judged WHERE NOT pipeline AND NOT tagged AND regex"
                res["baseline_only_by_match"] = dict(con.execute(
                    f"SELECT regexp_extract(lower(notes), {_literal(pattern)}) AS hit, count(*) {only} "
                    "GROUP BY hit ORDER BY 2 DESC, hit").fetchall())
                res["baseline_only_examples"] = con.execute(
                    f"""SELECT regexp_extract(lower(notes), '[^.!?]{{0,80}}' || {_literal(pattern)} || '[^.!?]{{0,60}}')
                               AS e, count(*) {only} GROUP BY e ORDER BY 2 DESC, e LIMIT {examples}""").fetchall()
            return res
    except duckdb.Error as exc:
        return {"error": str(exc).splitlines()[0]}


# ------------------------------------------------------------------------------------------------
# reporting
# ------------------------------------------------------------------------------------------------
def run_phases(dagster_home: Path, m: Measured) -> list[tuple[str, float]]:
    """Time outside the steps of the run(s) ``m`` started, from the event log in DAGSTER_HOME.

    Default sqlite storage: ``history/runs/<run_id>.db``, table event_logs (event JSON with an
    epoch ``timestamp``). Phases: process start -> first event (interpreter, imports, definitions,
    instance), first event -> RUN_START (planning events), RUN_START -> first STEP_START, gaps
    between steps, last step -> RUN_SUCCESS/FAILURE, run end -> process exit.
    """
    import sqlite3

    events = []
    for db in (dagster_home / "history" / "runs").glob("*.db"):
        if db.name == "index.db":
            continue
        try:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
                rows = con.execute("SELECT dagster_event_type, CAST(json_extract(event, '$.timestamp') AS REAL) "
                                   "FROM event_logs ORDER BY id").fetchall()
        except sqlite3.Error:
            continue
        if rows and m.started_at <= min(t for _, t in rows if t) <= m.ended_at:
            events.extend(rows)
    events = [(kind or "", t) for kind, t in events if t]
    if not events:
        return []
    events.sort(key=lambda e: e[1])
    first = events[0][1]
    run_start = next((t for kind, t in events if kind in ("PIPELINE_START", "RUN_START")), None)
    run_end = next((t for kind, t in reversed(events)
                    if kind in ("PIPELINE_SUCCESS", "PIPELINE_FAILURE", "RUN_SUCCESS", "RUN_FAILURE")), events[-1][1])
    spans, open_at = [], None
    for kind, t in events:
        if kind == "STEP_START":
            open_at = t
        elif kind in ("STEP_SUCCESS", "STEP_FAILURE", "STEP_SKIPPED") and open_at is not None:
            spans.append((open_at, t))
            open_at = None
    planned = sum(kind.endswith("_PLANNED") for kind, _ in events)
    phases = [("start-up: process start → first Dagster event (interpreter, imports, definitions, instance)",
               first - m.started_at)]
    if run_start is not None:
        phases.append((f"planning: first event → run start ({planned} *_PLANNED events written)", run_start - first))
        if spans:
            phases.append(("run start → first step (executor, resources)", spans[0][0] - run_start))
    if spans:
        phases.append((f"between steps ({len(spans)} steps)",
                       sum(max(0.0, b[0] - a[1]) for a, b in zip(spans, spans[1:]))))
        phases.append(("last step → run end", run_end - spans[-1][1]))
    phases.append(("run end → process exit", m.ended_at - run_end))
    return phases


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}×"


def status(m: Measured) -> str:
    return "" if m.ok else (" (TIMED OUT)" if m.timed_out else f" (FAILED, exit {m.returncode})")


def load_note(m: Measured | None) -> str:
    return "" if not m or not m.load else f"{m.load[0]:.2f} → {m.load[1]:.2f}"


def step_table(m: Measured, top: int = 3) -> str:
    if not m.steps:
        return f"_no step durations in {m.log}_\n"
    ranked = sorted(m.steps, key=lambda s: -s[1])
    total = sum(s for _, s in m.steps)
    lines = [f"Slowest: " + ", ".join(f"`{step}` {sec:.1f} s" for step, sec in ranked[:top]) + "\n",
             "| step | s | % of wall |", "|---|---:|---:|"]
    for step, seconds in ranked:
        lines.append(f"| {step} | {seconds:.2f} | {100 * seconds / m.wall_s:.1f} |")
    lines.append(f"| _sum of steps_ | {total:.2f} | {100 * total / m.wall_s:.1f} |")
    lines.append(f"| _outside the steps: process wall − sum of steps_ | {m.wall_s - total:.2f} | "
                 f"{100 * (m.wall_s - total) / m.wall_s:.1f} |")
    for name, seconds in m.phases:
        lines.append(f"| _  of which {name}_ | {seconds:.2f} | {100 * seconds / m.wall_s:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="existing source folder (used as is)")
    src.add_argument("--preset", choices=["sample", "s", "m", "xl"], help="generate this preset into a temp dir")
    ap.add_argument("--format", choices=["csv", "parquet"], default="csv", help="with --preset")
    ap.add_argument("--bad-fraction", type=float, default=None, help="with --preset (default: the preset's)")
    ap.add_argument("--size", choices=["s", "m", "xl"], help="size of --data for the targets (default: from the name)")
    ap.add_argument("--rerun-partition", help="past quarter to re-run in (d) (default: the previous quarter)")
    ap.add_argument("--tiny-rows", type=int, default=5, help="rows per source for the fixed-cost run (c)")
    ap.add_argument("--timeout", type=float, default=None, help="seconds before a measured command is stopped")
    ap.add_argument("--skip", action="append", default=[], choices=["rerun", "fixed"], help="skip a step")
    ap.add_argument("--with-detector-ratio", action="store_true",
                    help="also time the project's notes detector alone (e) and print a second ratio against "
                         "'plain SQL + this project's detector'")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, warehouses)")
    ap.add_argument("--workdir", type=Path, help="work dir (default: a new temp dir)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    # internal: the baseline / the detector in their own process
    ap.add_argument("--baseline-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--detector-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--last-quarter", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.baseline_only:
        run_baseline(args.data.resolve(), args.last_quarter, args.out)
        return 0
    if args.detector_only:
        sys.path.insert(0, str(PROJECT_DIR))
        run_detector(args.data.resolve(), args.last_quarter)
        return 0
    sys.path.insert(0, str(PROJECT_DIR))

    if not Path(TIME_BIN).exists():
        sys.exit(f"{TIME_BIN} is missing: apt-get install time")
    workdir = (args.workdir or Path(tempfile.mkdtemp(prefix="bench_scale_"))).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    print(f"[bench] work dir {workdir}", file=sys.stderr, flush=True)

    clean_expected = True
    if args.preset:
        data_dir = workdir / f"data_{args.preset}"
        generate(args.preset, args.format, args.bad_fraction, data_dir)
        from referral_pipeline.generate_data import PRESETS

        bad = args.bad_fraction if args.bad_fraction is not None else PRESETS[args.preset].default_bad_fraction
        clean_expected = bad == 0
        label = f"preset {args.preset} ({args.format}, bad_fraction {bad})"
    else:
        data_dir = args.data.resolve()
        label = str(data_dir)
    size_mb = sum(p.stat().st_size for p in data_dir.rglob("*") if p.is_file()) / 2**20

    bindir = Path(sys.executable).parent
    dagster = str(bindir / "dagster") if (bindir / "dagster").exists() else "dagster"
    current = subprocess.run([sys.executable, "-m", "referral_pipeline.report", "--current-quarter"],
                             cwd=PROJECT_DIR, check=True, capture_output=True, text=True).stdout.strip()
    if args.rerun_partition:
        past = args.rerun_partition
    else:
        y, mth = int(current[:4]), int(current[5:7])
        y, mth = (y - 1, 10) if mth == 1 else (y, mth - 3)
        past = f"{y:04d}-{mth:02d}-01"

    dagster_home = workdir / "dagster_home"
    shutil.rmtree(dagster_home, ignore_errors=True)  # fresh: no runs, no asset history
    dagster_home.mkdir()
    warehouse = workdir / "warehouse.duckdb"
    for stale in (warehouse, workdir / "warehouse.duckdb.wal"):
        stale.unlink(missing_ok=True)
    env = {**os.environ, "REFERRAL_DATA_DIR": str(data_dir), "REFERRAL_WAREHOUSE": str(warehouse),
           "DAGSTER_HOME": str(dagster_home)}
    materialize = [dagster, "asset", "materialize", "-m", "referral_pipeline.definitions", "--select", "*"]
    this = str(Path(__file__).resolve())

    # (a) full backfill, then (d) re-run of one past quarter, same warehouse, nothing changed
    full = run_measured("pipeline full backfill",
                        [*materialize, "--partition-range", f"{FIRST_QUARTER}...{current}"], env, workdir, args.timeout)
    full.phases = run_phases(dagster_home, full)
    rerun = None
    if "rerun" not in args.skip and full.ok:
        rerun = run_measured(f"pipeline re-run {past}", [*materialize, "--partition", past], env, workdir, args.timeout)
        rerun.phases = run_phases(dagster_home, rerun)

    # (b) baseline, own process: plain SQL only
    baseline_db = workdir / "baseline.duckdb"
    base = run_measured("baseline (plain DuckDB SQL)",
                        [sys.executable, this, "--baseline-only", "--data", str(data_dir),
                         "--last-quarter", current, "--out", str(baseline_db)], env, workdir, args.timeout)
    base_note = next((ln for ln in base.log.read_text(errors="replace").splitlines()
                      if ln.startswith("baseline:")), "")

    # (e) the project's detector alone over the same notes, own process (only for the second ratio)
    detector = None
    detector_s = None
    detector_note = ""
    if args.with_detector_ratio:
        detector = run_measured("project's notes detector alone",
                                [sys.executable, this, "--detector-only", "--data", str(data_dir),
                                 "--last-quarter", current], env, workdir, args.timeout)
        text = detector.log.read_text(errors="replace")
        detector_note = next((ln for ln in text.splitlines() if ln.startswith("detector:")), "")
        found = re.search(r"^detector_seconds=([0-9.]+)$", text, flags=re.M)
        detector_s = float(found.group(1)) if found and detector.ok else None

    comparison = compare(warehouse, baseline_db) if full.ok and base.ok else {}
    text_rule = compare_text_rule(warehouse, data_dir, current) if full.ok else {}

    # (c) fixed cost: almost empty folder, one partition, fresh warehouse
    fixed = fixed_base = None
    if "fixed" not in args.skip:
        tiny = workdir / "tiny_data"
        shutil.rmtree(tiny, ignore_errors=True)
        tiny_copy(data_dir, tiny, args.tiny_rows)
        tiny_wh = workdir / "tiny_warehouse.duckdb"
        tiny_wh.unlink(missing_ok=True)
        # same (already initialised) DAGSTER_HOME: the steady-state cost of a run, not first-use setup
        tiny_env = {**env, "REFERRAL_DATA_DIR": str(tiny), "REFERRAL_WAREHOUSE": str(tiny_wh)}
        fixed = run_measured(f"pipeline fixed cost ({args.tiny_rows} rows/source, --partition {current})",
                             [*materialize, "--partition", current], tiny_env, workdir, args.timeout)
        fixed.phases = run_phases(dagster_home, fixed)
        fixed_base = run_measured("baseline on the tiny folder",
                                  [sys.executable, this, "--baseline-only", "--data", str(tiny),
                                   "--last-quarter", current, "--out", str(workdir / "tiny_baseline.duckdb")],
                                  tiny_env, workdir, args.timeout)

    # ---------------------------------------------------------------------------------------------
    out = []
    out.append(f"## Scale benchmark: {label}\n")
    out.append(f"- source folder `{data_dir}` ({size_mb:.0f} MB); quarters {FIRST_QUARTER}...{current}; "
               f"re-run partition {past}; {os.cpu_count()} CPUs; load average (1 min) at the start → end "
               "of each command in the table")
    out.append("- baseline = bench/baseline_kpis.sql: plain DuckDB SQL over the same files, no validation, "
               "the QBR text rule as one `regexp_matches(lower(notes), …)`, no Python detector. " + base_note)
    if detector_note:
        out.append(f"- (e) {detector_note}")
    out.append(f"- work dir `{workdir}`{'' if args.keep or args.workdir else ' (removed at the end; --keep to keep logs)'}\n")
    codes = {m.label: m.code for m in (full, rerun, base, detector, fixed, fixed_base) if m}
    if len(set(codes.values())) > 1:
        out.append("**Warning:** the pipeline's code changed during the benchmark (code fingerprint per step: "
                   + ", ".join(f"{k}: {v}" for k, v in codes.items()) + "); the steps are not comparable.\n")
    else:
        out.append(f"- pipeline code fingerprint {next(iter(codes.values()))} (same for every step)\n")

    out.append("| step | wall s | peak RSS MB | ratio to plain-SQL baseline (wall / RSS) | load |")
    out.append("|---|---:|---:|---|---|")
    out.append(f"| (a) pipeline full backfill{status(full)} | {fmt(full.wall_s)} | {fmt(full.peak_rss_mb, 0)} | "
               f"**{ratio(full.wall_s, base.wall_s)} / {ratio(full.peak_rss_mb, base.peak_rss_mb)}** | "
               f"{load_note(full)} |")
    out.append(f"| (b) baseline: plain DuckDB SQL{status(base)} | {fmt(base.wall_s)} | "
               f"{fmt(base.peak_rss_mb, 0)} | 1.00× / 1.00× | {load_note(base)} |")
    if fixed:
        out.append(f"| (c) pipeline fixed cost, {args.tiny_rows} rows/source, --partition {current}{status(fixed)} | "
                   f"{fmt(fixed.wall_s)} | {fmt(fixed.peak_rss_mb, 0)} | {ratio(fixed.wall_s, fixed_base.wall_s)} / "
                   f"{ratio(fixed.peak_rss_mb, fixed_base.peak_rss_mb)} (vs (c') on the same tiny folder) | "
                   f"{load_note(fixed)} |")
        out.append(f"| (c') baseline on the tiny folder{status(fixed_base)} | {fmt(fixed_base.wall_s)} | "
                   f"{fmt(fixed_base.peak_rss_mb, 0)} | | {load_note(fixed_base)} |")
    if rerun:
        out.append(f"| (d) pipeline re-run {past}, unchanged{status(rerun)} | {fmt(rerun.wall_s)} | "
                   f"{fmt(rerun.peak_rss_mb, 0)} | {ratio(rerun.wall_s, base.wall_s)} / "
                   f"{ratio(rerun.peak_rss_mb, base.peak_rss_mb)} (= {ratio(rerun.wall_s, full.wall_s)} of (a)'s "
                   f"wall) | {load_note(rerun)} |")
    combined_wall = combined_rss = None
    if detector:
        out.append(f"| (e) the project's detector alone, same notes{status(detector)} | {fmt(detector.wall_s)} | "
                   f"{fmt(detector.peak_rss_mb, 0)} | (detection only: {fmt(detector_s, 2)} s) | "
                   f"{load_note(detector)} |")
        if base.ok and detector_s is not None:
            combined_wall = base.wall_s + detector_s
            combined_rss = max(base.peak_rss_mb or 0, detector.peak_rss_mb or 0) or None
            out.append(f"| (b+e) plain SQL + this project's detector: (b) wall + (e)'s detection time; RSS the "
                       f"larger of the two | {fmt(combined_wall)} | {fmt(combined_rss, 0)} | "
                       f"(a) ÷ this: {ratio(full.wall_s, combined_wall)} / {ratio(full.peak_rss_mb, combined_rss)} "
                       "(second ratio, not the headline) | |")

    out.append("\n### Targets (report only)\n")

    def target(name: str, value: float | None, limit: float, unit: str) -> str:
        if value is None:
            return f"- {name}: n/a"
        return f"- {name}: {value:.3f}{unit} (target ≤ {limit}{unit}) → {'PASS' if value <= limit else 'FAIL'}"

    both = full.ok and base.ok
    wr = full.wall_s / base.wall_s if both else None
    rr = full.peak_rss_mb / base.peak_rss_mb if both and base.peak_rss_mb and full.peak_rss_mb else None
    size = args.preset or args.size or next(
        (p for p in ("xl", "m", "s") if re.search(rf"(^|[_-]){p}$", data_dir.name)), None)
    is_csv = locate(data_dir, "opportunities").suffix == ".csv"
    out.append(f"_size: {size or 'unknown (pass --size)'}, {'CSV' if is_csv else 'Parquet'}; ratios against the "
               "plain-SQL baseline (b); the wall and RSS targets are stated for xl CSV and m, the fixed-cost "
               "target for any size, the re-run target for xl_\n")
    ref = "" if size == "xl" else " (xl target, for reference)"
    if size == "m":
        out.append(target("m: full backfill wall ÷ baseline", wr, 3.0, "×"))
    else:
        out.append(target(f"xl CSV: full backfill wall ÷ baseline{ref}", wr, 2.0, "×"))
        if size != "xl":
            out.append(target("m: full backfill wall ÷ baseline (m target, for reference)", wr, 3.0, "×"))
    out.append(target(f"xl CSV: full backfill peak RSS ÷ baseline{ref if size != 'm' else ' (xl target, for reference)'}",
                      rr, 1.5, "×"))
    if fixed:
        out.append(target("fixed cost wall", fixed.wall_s if fixed.ok else None, 5, " s"))
    if rerun:
        out.append(target(f"xl: re-run one unchanged quarter ÷ full backfill{ref}",
                          rerun.wall_s / full.wall_s * 100 if rerun.ok and full.ok else None, 15, " %"))

    out.append("\n### KPI rows: pipeline vs plain-SQL baseline\n")
    out.append("_win rate and warm intro: every row equal (quarter, dimension, segment, numerator, denominator, "
               f"rate within {RATE_TOLERANCE:g}); QBR intent: the rows and denominators equal, numerators "
               "reported only (SQL regex vs the project's detector)_\n")
    if not comparison:
        out.append("_not compared: a run failed_")
    all_equal = bool(comparison)
    for table, res in comparison.items():
        if "error" in res:
            all_equal = False
            out.append(f"- `{table}`: cannot compare: {res['error']}")
            continue
        bad = {k: res.get(k, 0) for k in ("only_pipeline", "only_baseline", "differs")}
        if res["strict_failures"]:
            all_equal = False
            what = (f"only in pipeline {bad['only_pipeline']}, only in baseline {bad['only_baseline']}, "
                    + (f"denominators differ {res['denominator_differs']}" if table == TEXT_RULE_KPI
                       else f"numbers differ {bad['differs']}"))
            out.append(f"- `{table}`: DIFFERENT — pipeline {res['pipeline_rows']} rows, baseline "
                       f"{res['baseline_rows']}; {what}. First rows "
                       "(quarter, dimension, segment, p_num, b_num, p_den, b_den, p_rate, b_rate, kind):")
            out.extend(f"    - {row}" for row in res["sample"])
        elif table == TEXT_RULE_KPI:
            p_num, b_num, p_den, _ = res["overall_numerators"]
            out.append(f"- `{table}`: rows and denominators EQUAL ({res['pipeline_rows']} rows); numerators differ "
                       f"in {res['numerator_differs']} of {res['pipeline_rows']} rows (reported, not a failure); "
                       f"overall rows, all quarters: pipeline {p_num} of {p_den} completed QBRs, baseline {b_num}")
        else:
            out.append(f"- `{table}`: EQUAL ({res['pipeline_rows']} rows)")
    if text_rule:
        if "error" in text_rule:
            out.append(f"- QBR by QBR (facts.completed_qbrs vs tag-or-regex): cannot compare: {text_rule['error']}")
        else:
            t = text_rule
            out.append(f"- QBR by QBR, {t['qbrs']} completed QBRs in range (facts.completed_qbrs vs the baseline's "
                       f"tag-or-regex, computed after the runs): signal in both {t['both']}; pipeline only "
                       f"{t['pipeline_only']} (by signal_source: {t['pipeline_only_by_source']}); baseline only "
                       f"{t['baseline_only']} (all by the regex: {t['baseline_only_by_regex']})")
            out.append(f"    - baseline only, by the regex's match: {t['baseline_only_by_match']}")
            for e, n in t["pipeline_only_examples"]:
                out.append(f"    - pipeline only ({n}×), evidence: {e.strip()!r}")
            for e, n in t["baseline_only_examples"]:
                out.append(f"    - baseline only ({n}×), regex hit in: {e.strip()!r}")
    if comparison and not all_equal:
        out.append("\n**Note:** KPI equality is only expected on clean data (bad_fraction 0): the baseline "
                   "quarantines nothing, the pipeline does." + ("" if clean_expected else
                   " This folder was generated with bad rows, so differences are expected."))

    out.append("\n### Per-step durations logged by Dagster (`Finished execution of step … in X`)\n")
    for m in (full, rerun, fixed):
        if m:
            out.append(f"**{m.label}** (wall {fmt(m.wall_s)} s)\n")
            out.append(step_table(m))
    report = "\n".join(out)
    print(report)

    if args.json:
        args.json.write_text(json.dumps({
            "label": label, "data": str(data_dir), "current_quarter": current, "rerun_partition": past,
            "runs": {m.label: {"wall_s": m.wall_s, "peak_rss_mb": m.peak_rss_mb, "returncode": m.returncode,
                               "timed_out": m.timed_out, "load": m.load, "steps": m.steps, "phases": m.phases}
                     for m in (full, rerun, base, detector, fixed, fixed_base) if m},
            "ratios": {"wall": wr, "rss": rr,
                       "wall_vs_sql_plus_detector": full.wall_s / combined_wall if combined_wall and full.ok else None,
                       "rss_vs_sql_plus_detector": (full.peak_rss_mb / combined_rss
                                                    if combined_rss and full.ok and full.peak_rss_mb else None)},
            "comparison": {t: {k: v for k, v in r.items() if k != "sample"} for t, r in comparison.items()},
            "text_rule": text_rule,
        }, indent=2, default=str))
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if full.ok and base.ok and all_equal else 1


if __name__ == "__main__":
    sys.exit(main())
