"""Scale benchmark: the Dagster pipeline against a plain-DuckDB baseline, on the same files.

    python bench/bench_scale.py --preset s                  # generate preset s into a temp dir
    python bench/bench_scale.py --data /tmp/gen_m           # use an existing source folder
    python bench/bench_scale.py --data /tmp/gen_xl --timeout 7200 --keep

Every measured command runs as its own subprocess under ``/usr/bin/time -v`` (wall clock and
peak RSS of the process tree's largest process):

(a) full backfill   ``dagster asset materialize -m referral_pipeline.definitions --select '*'
                    --partition-range 2022-01-01...<current quarter>`` into a fresh warehouse;
(d) re-run          ``--partition <past quarter>`` right after (a), same warehouse, same files;
(b) baseline        ``python bench/bench_scale.py --baseline-only ...``: bench/baseline_kpis.sql
                    (plain DuckDB over the same files, no validation) + the project's Python notes
                    detector for the QBR text signal, writing the three KPI tables to its own file;
(c) fixed cost      ``--partition <current quarter>`` over a copy of the folder cut to a few rows
                    per source, fresh warehouse (the baseline is run on the same tiny copy too).

Then it checks that the pipeline's KPI rows equal the baseline's (quarter, dimension, segment,
numerator, denominator; rate_pct within 1e-9) and prints a markdown table with the ratios
pipeline / baseline, the per-step durations Dagster logged, and the targets.
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
    print(f"[bench] {label}: {' '.join(command)}", file=sys.stderr, flush=True)
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


def baseline_parts(data_dir: Path, last_quarter: str) -> dict[str, str]:
    text = BASELINE_SQL.read_text()
    values = {name: reader_sql(locate(data_dir, name)) for name in SOURCE_STEMS}
    values["last_quarter"] = last_quarter
    text = re.sub(r"\{([a-z_]+)\}", lambda m: values.get(m.group(1), m.group(0)), text)
    parts = re.split(r"^-- @part (\w+)\s*$", text, flags=re.M)
    return {parts[i]: parts[i + 1] for i in range(1, len(parts), 2)}


def run_baseline(data_dir: Path, last_quarter: str, out: Path) -> None:
    import duckdb
    import pyarrow as pa

    from referral_pipeline.lib.text_signals import detect_referral_evidence

    parts = baseline_parts(data_dir, last_quarter)
    out.unlink(missing_ok=True)
    t0 = time.monotonic()
    with duckdb.connect(str(out)) as con:
        con.execute(parts["load"])
        t1 = time.monotonic()
        notes = con.sql("SELECT qbr_id, notes FROM qbrs_to_scan").to_arrow_table()
        evidence = detect_referral_evidence(notes["notes"].to_pylist())
        text_signals = pa.table({"qbr_id": notes["qbr_id"], "text_evidence": pa.array(evidence, pa.string())})
        con.register("text_signals", text_signals)
        t2 = time.monotonic()
        con.execute(parts["kpis"])
        con.unregister("text_signals")
        t3 = time.monotonic()
    print(f"baseline: load {t1 - t0:.2f} s; Python notes detector over {notes.num_rows} completed QBRs "
          f"{t2 - t1:.2f} s; KPI SQL {t3 - t2:.2f} s", flush=True)


# ------------------------------------------------------------------------------------------------
# comparing
# ------------------------------------------------------------------------------------------------
def compare(warehouse: Path, baseline: Path) -> dict[str, dict]:
    """Per KPI table: rows only in one side, rows whose numbers differ, and a few examples."""
    import duckdb

    result = {}
    with duckdb.connect(str(baseline), read_only=True) as con:
        con.execute(f"ATTACH {_literal(str(warehouse))} AS wh (READ_ONLY)")
        for table in KPI_TABLES:
            diff = f"""
                SELECT coalesce(p.quarter, b.quarter) AS quarter, coalesce(p.dimension, b.dimension) AS dimension,
                       coalesce(p.segment, b.segment) AS segment,
                       p.numerator AS p_num, b.numerator AS b_num, p.denominator AS p_den, b.denominator AS b_den,
                       p.rate_pct AS p_rate, b.rate_pct AS b_rate,
                       CASE WHEN b.quarter IS NULL THEN 'only_pipeline' WHEN p.quarter IS NULL THEN 'only_baseline'
                            ELSE 'differs' END AS kind
                FROM wh.kpi.{table} p FULL JOIN kpi.{table} b USING (quarter, dimension, segment)
                WHERE b.quarter IS NULL OR p.quarter IS NULL
                   OR p.numerator <> b.numerator OR p.denominator <> b.denominator
                   OR (p.rate_pct IS NULL) <> (b.rate_pct IS NULL)
                   OR abs(p.rate_pct - b.rate_pct) > {RATE_TOLERANCE}
            """
            try:
                counts = dict(con.execute(f"SELECT kind, count(*) FROM ({diff}) GROUP BY ALL").fetchall())
                sample = con.execute(f"FROM ({diff}) ORDER BY kind, quarter, dimension, segment LIMIT 5").fetchall()
                (rows_p,) = con.execute(f"SELECT count(*) FROM wh.kpi.{table}").fetchone()
                (rows_b,) = con.execute(f"SELECT count(*) FROM kpi.{table}").fetchone()
                result[table] = {"pipeline_rows": rows_p, "baseline_rows": rows_b, **counts, "sample": sample}
            except duckdb.Error as exc:
                result[table] = {"error": str(exc).splitlines()[0]}
    return result


# ------------------------------------------------------------------------------------------------
# reporting
# ------------------------------------------------------------------------------------------------
def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or not b else f"{a / b:.2f}×"


def status(m: Measured) -> str:
    return "" if m.ok else (" (TIMED OUT)" if m.timed_out else f" (FAILED, exit {m.returncode})")


def step_table(m: Measured) -> str:
    if not m.steps:
        return f"_no step durations in {m.log}_\n"
    lines = ["| step | s |", "|---|---:|"]
    for step, seconds in sorted(m.steps, key=lambda s: -s[1]):
        lines.append(f"| {step} | {seconds:.2f} |")
    total = sum(s for _, s in m.steps)
    lines.append(f"| _sum of steps_ | {total:.2f} |")
    lines.append(f"| _process wall − sum of steps (startup, planning, serial overhead)_ | {m.wall_s - total:.2f} |")
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
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs, warehouses)")
    ap.add_argument("--workdir", type=Path, help="work dir (default: a new temp dir)")
    ap.add_argument("--json", type=Path, help="also write the results as JSON here")
    # internal: the baseline in its own process
    ap.add_argument("--baseline-only", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--last-quarter", help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()

    sys.path.insert(0, str(PROJECT_DIR))
    if args.baseline_only:
        run_baseline(args.data.resolve(), args.last_quarter, args.out)
        return 0

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
    dagster_home.mkdir(exist_ok=True)
    warehouse = workdir / "warehouse.duckdb"
    for stale in (warehouse, workdir / "warehouse.duckdb.wal"):
        stale.unlink(missing_ok=True)
    env = {**os.environ, "REFERRAL_DATA_DIR": str(data_dir), "REFERRAL_WAREHOUSE": str(warehouse),
           "DAGSTER_HOME": str(dagster_home)}
    materialize = [dagster, "asset", "materialize", "-m", "referral_pipeline.definitions", "--select", "*"]

    # (a) full backfill, then (d) re-run of one past quarter, same warehouse, nothing changed
    full = run_measured("pipeline full backfill",
                        [*materialize, "--partition-range", f"{FIRST_QUARTER}...{current}"], env, workdir, args.timeout)
    rerun = None
    if "rerun" not in args.skip and full.ok:
        rerun = run_measured(f"pipeline re-run {past}", [*materialize, "--partition", past], env, workdir, args.timeout)

    # (b) baseline, own process
    baseline_db = workdir / "baseline.duckdb"
    base = run_measured("baseline (DuckDB SQL + Python detector)",
                        [sys.executable, str(Path(__file__).resolve()), "--baseline-only", "--data", str(data_dir),
                         "--last-quarter", current, "--out", str(baseline_db)], env, workdir, args.timeout)
    base_note = next((ln for ln in base.log.read_text(errors="replace").splitlines()
                      if ln.startswith("baseline:")), "")

    comparison = compare(warehouse, baseline_db) if full.ok and base.ok else {}

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
        fixed_base = run_measured("baseline on the tiny folder",
                                  [sys.executable, str(Path(__file__).resolve()), "--baseline-only", "--data",
                                   str(tiny), "--last-quarter", current, "--out", str(workdir / "tiny_baseline.duckdb")],
                                  tiny_env, workdir, args.timeout)

    # ---------------------------------------------------------------------------------------------
    out = []
    out.append(f"## Scale benchmark: {label}\n")
    out.append(f"- source folder `{data_dir}` ({size_mb:.0f} MB); quarters {FIRST_QUARTER}...{current}; "
               f"re-run partition {past}; {os.cpu_count()} CPUs")
    out.append(f"- baseline = bench/baseline_kpis.sql (plain DuckDB, no validation) + the project's Python "
               f"detector `referral_pipeline.lib.text_signals.detect_referral_evidence` for the QBR text signal "
               f"(plain SQL cannot reproduce it). {base_note}")
    out.append(f"- work dir `{workdir}`{'' if args.keep else ' (removed at the end; --keep to keep logs)'}\n")
    codes = {m.label: m.code for m in (full, rerun, base, fixed, fixed_base) if m}
    if len(set(codes.values())) > 1:
        out.append("**Warning:** the pipeline's code changed during the benchmark (code fingerprint per step: "
                   + ", ".join(f"{k}: {v}" for k, v in codes.items()) + "); the steps are not comparable.\n")
    else:
        out.append(f"- pipeline code fingerprint {next(iter(codes.values()))} (same for every step)\n")
    out.append("| step | wall s | peak RSS MB | ratio to baseline (wall / RSS) |")
    out.append("|---|---:|---:|---|")
    out.append(f"| (b) baseline: DuckDB SQL + Python detector{status(base)} | {fmt(base.wall_s)} | "
               f"{fmt(base.peak_rss_mb, 0)} | 1.00× / 1.00× |")
    out.append(f"| (a) pipeline full backfill{status(full)} | {fmt(full.wall_s)} | {fmt(full.peak_rss_mb, 0)} | "
               f"{ratio(full.wall_s, base.wall_s)} / {ratio(full.peak_rss_mb, base.peak_rss_mb)} |")
    if rerun:
        out.append(f"| (d) pipeline re-run {past}, unchanged{status(rerun)} | {fmt(rerun.wall_s)} | "
                   f"{fmt(rerun.peak_rss_mb, 0)} | {ratio(rerun.wall_s, base.wall_s)} / "
                   f"{ratio(rerun.peak_rss_mb, base.peak_rss_mb)} (= {ratio(rerun.wall_s, full.wall_s)} of the "
                   f"full backfill's wall) |")
    if fixed:
        out.append(f"| (c) pipeline fixed cost, {args.tiny_rows} rows/source, --partition {current}{status(fixed)} | "
                   f"{fmt(fixed.wall_s)} | {fmt(fixed.peak_rss_mb, 0)} | {ratio(fixed.wall_s, fixed_base.wall_s)} / "
                   f"{ratio(fixed.peak_rss_mb, fixed_base.peak_rss_mb)} (vs baseline on the same tiny folder) |")
        out.append(f"| (c') baseline on the tiny folder{status(fixed_base)} | {fmt(fixed_base.wall_s)} | "
                   f"{fmt(fixed_base.peak_rss_mb, 0)} | |")

    out.append("\n### Targets (report only)\n")

    def target(name: str, value: float | None, limit: float, unit: str) -> str:
        if value is None:
            return f"- {name}: n/a"
        return f"- {name}: {value:.3f}{unit} (target ≤ {limit}{unit}) → {'PASS' if value <= limit else 'FAIL'}"

    wr = full.wall_s / base.wall_s if full.ok and base.ok else None
    rr = full.peak_rss_mb / base.peak_rss_mb if full.ok and base.ok and base.peak_rss_mb else None
    size = args.preset or args.size or next(
        (p for p in ("xl", "m", "s") if re.search(rf"(^|[_-]){p}$", data_dir.name)), None)
    out.append(f"_size: {size or 'unknown (pass --size)'}; the wall and RSS targets are stated for xl (CSV) "
               "and m; the fixed-cost target for any size_\n")
    if size == "m":
        out.append(target("m: full backfill wall ÷ baseline", wr, 3.0, "×"))
    else:
        out.append(target(f"{'xl' if size == 'xl' else 'xl target, for reference'}: full backfill wall ÷ baseline",
                          wr, 2.0, "×"))
        if size != "xl":
            out.append(target("m target, for reference: full backfill wall ÷ baseline", wr, 3.0, "×"))
    out.append(target(f"{'xl' if size == 'xl' else 'xl target, for reference'}: full backfill peak RSS ÷ baseline",
                      rr, 1.5, "×"))
    if fixed:
        out.append(target("fixed cost wall", fixed.wall_s if fixed.ok else None, 10, " s"))
    if rerun:
        out.append(target(f"{'xl' if size == 'xl' else 'xl target, for reference'}: re-run one unchanged quarter ÷ full backfill",
                          rerun.wall_s / full.wall_s * 100 if rerun.ok else None, 25, " %"))

    out.append("\n### KPI rows: pipeline vs baseline\n")
    if not comparison:
        out.append("_not compared: a run failed_")
    all_equal = bool(comparison)
    for table, res in comparison.items():
        if "error" in res:
            all_equal = False
            out.append(f"- `{table}`: cannot compare: {res['error']}")
            continue
        bad = {k: res.get(k, 0) for k in ("only_pipeline", "only_baseline", "differs")}
        if not any(bad.values()):
            out.append(f"- `{table}`: EQUAL ({res['pipeline_rows']} rows)")
        else:
            all_equal = False
            out.append(f"- `{table}`: DIFFERENT — pipeline {res['pipeline_rows']} rows, baseline "
                       f"{res['baseline_rows']}; only in pipeline {bad['only_pipeline']}, only in baseline "
                       f"{bad['only_baseline']}, numbers differ {bad['differs']}. First rows "
                       "(quarter, dimension, segment, p_num, b_num, p_den, b_den, p_rate, b_rate, kind):")
            out.extend(f"    - {row}" for row in res["sample"])
    if comparison and not all_equal:
        out.append("\n**Note:** KPI equality is only expected on clean data (bad_fraction 0): the baseline "
                   "quarantines nothing, the pipeline does." + ("" if clean_expected else
                   " This folder was generated with bad rows, so differences are expected."))

    out.append("\n### Per-step durations logged by Dagster\n")
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
                               "timed_out": m.timed_out, "steps": m.steps}
                     for m in (full, rerun, base, fixed, fixed_base) if m},
            "comparison": {t: {k: v for k, v in r.items() if k != "sample"} for t, r in comparison.items()},
        }, indent=2, default=str))
    if not args.keep and not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if full.ok and base.ok and all_equal else 1


if __name__ == "__main__":
    sys.exit(main())
