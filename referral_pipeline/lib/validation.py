"""Validate a source where its data is: its pandera model compiled to one DuckDB query.

One pass types every row and tells whether it keeps each column's rules (required, type, enum,
range) and the model's cross-column rules; duplicate keys are found by one aggregate; reasons are
built only for the rows rejected: what the reader found, else the columns' broken rules, else (the
columns being sound) the broken cross-column rules, or the duplicate key. Valid rows replace
``staging.<source>``; the others replace the source's rows in ``quarantine.rejected_rows``; both in
one transaction, after staged + quarantined is checked against the file's own record count.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from referral_pipeline.lib.warehouse import transaction
from referral_pipeline.lib.sources import (
    READER_VERSION,
    Column,
    Source,
    SourceFileError,
    content_fingerprint,
    drop_csv_rejects,
    is_invalid_parquet_text,
    read_raw,
    sql_identifier,
    sql_literal,
    with_source_row,
)

QUARANTINE_TABLE = "quarantine.rejected_rows"
QUARANTINE_DDL = f"""
CREATE TABLE IF NOT EXISTS {QUARANTINE_TABLE} (
    source VARCHAR NOT NULL,      -- the staging table's name, e.g. opportunities
    source_row BIGINT NOT NULL,   -- 1-based data row (CSV, Parquet) or line (JSONL) in the file
    record_key VARCHAR,           -- the row's key, when it has one
    reason VARCHAR NOT NULL,
    record VARCHAR NOT NULL       -- the raw row as JSON text
)
"""
# What each staging table was built from: a file's content and the rules it was validated with.
LOADS_TABLE = "meta.staged_files"
LOADS_DDL = f"""
CREATE TABLE IF NOT EXISTS {LOADS_TABLE} (
    source VARCHAR PRIMARY KEY,
    path VARCHAR NOT NULL,
    fingerprint VARCHAR NOT NULL,  -- the file's content and the validation rules
    quick_key VARCHAR,             -- the file's size, modification time and inode, and the rules
    input_rows BIGINT NOT NULL,
    staged_rows BIGINT NOT NULL,
    quarantined_rows BIGINT NOT NULL,
    reasons JSON NOT NULL,
    staged_at TIMESTAMPTZ NOT NULL
)
"""
DUPLICATE = "duplicate"
CONFLICTING_DUPLICATE = "conflicting duplicate"
_SHOWN_VALUE_CHARS = 60


@dataclass(frozen=True)
class StagingResult:
    """What one staging run read, kept and rejected."""

    source: str
    path: Path
    input_rows: int
    staged_rows: int
    quarantined_rows: int
    reasons: Counter
    unchanged_since: datetime | None = None  # set when the file was staged before, unchanged

    @property
    def quarantined_fraction(self) -> float:
        return self.quarantined_rows / self.input_rows if self.input_rows else 0.0


# White space trimmed around ids, short text and enums: Unicode's White_Space property (tab, LF,
# VT, FF, CR, space, NEL, no-break space, ogham space, the en/em/thin/hair spaces, line and
# paragraph separators, narrow no-break, medium mathematical and ideographic space).
WHITE_SPACE = "".join(
    chr(c) for c in (*range(0x09, 0x0E), 0x20, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029,
                     0x202F, 0x205F, 0x3000)
)
_SPACE_CLASS = "[" + "".join(f"\\x{{{ord(c):X}}}" for c in WHITE_SPACE) + "]"
_WHITE_SPACE_LITERAL = sql_literal(WHITE_SPACE)
# ISO 8601 in its extended format: a date YYYY-MM-DD (year 0001 to 9999), optionally 'T' (or, as RFC
# 3339 allows, a space) and a time hh:mm[:ss[.fraction]] (00:00 to 23:59:59, fraction of up to 9
# digits, '.' or ','), optionally an offset 'Z' or +hh[:mm] / -hh[mm] with hh <= 23, mm <= 59.
_YEAR = "(?:[0-9]{3}[1-9]|[0-9]{2}[1-9][0-9]|[0-9][1-9][0-9]{2}|[1-9][0-9]{3})"
_DATE = _YEAR + "-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])"
_TIME = "(?:[01][0-9]|2[0-3]):[0-5][0-9](?::[0-5][0-9](?:[.,][0-9]{1,9})?)?"
_OFFSET = "(?:Z|[+-](?:[01][0-9]|2[0-3])(?::?[0-5][0-9])?)"
ISO_DATE = _DATE
ISO_TIMESTAMP = f"{_DATE}(?:[T ]{_TIME}{_OFFSET}?)?"
DECIMAL = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
WHOLE_NUMBER = r"[+-]?[0-9]+(?:\.[0-9]*)?"


def _text_name(col: Column) -> str:
    return sql_identifier(col.name + "__text")


def _text(col: Column) -> str:
    """The column's normalised text: empty is null, trimmed unless free text, enums lower-case."""
    raw = sql_identifier(col.name)
    if col.free_text:
        return f"nullif({raw}, '')"
    # A regular expression is faster here than trim() with a set of characters, and it runs only
    # where the first or last character is white space (most cells need no trimming).
    trimmed = (
        f"CASE WHEN contains({_WHITE_SPACE_LITERAL}, left({raw}, 1)) OR contains({_WHITE_SPACE_LITERAL}, right({raw}, 1)) "
        f"THEN regexp_replace({raw}, '^{_SPACE_CLASS}+|{_SPACE_CLASS}+$', '', 'g') ELSE {raw} END"
    )
    return f"lower(nullif({trimmed}, ''))" if col.enum else f"nullif({trimmed}, '')"


def _typed(col: Column) -> str:
    """The column's staging value, from its normalised text; NULL where the text does not parse.

    Strict patterns gate DuckDB's lenient casts (which take 'infinity', 'epoch', '1_000', ...).
    """
    text = _text_name(col)
    iso = f"CASE WHEN contains({text}, ',') THEN replace({text}, ',', '.') ELSE {text} END"
    return {
        "VARCHAR": text,
        "DATE": f"CASE WHEN regexp_full_match({text}, '{ISO_DATE}') THEN TRY_CAST({text} AS DATE) END",
        # Without an offset the session's time zone applies: stage_source sets it to UTC.
        "TIMESTAMPTZ": f"CASE WHEN regexp_full_match({text}, '{ISO_TIMESTAMP}') THEN TRY_CAST({iso} AS TIMESTAMPTZ) END",
        "DOUBLE": (
            f"CASE WHEN regexp_full_match({text}, '{DECIMAL}') AND isfinite(TRY_CAST({text} AS DOUBLE)) "
            f"THEN TRY_CAST({text} AS DOUBLE) END"
        ),
        "INTEGER": (
            f"CASE WHEN regexp_full_match({text}, '{WHOLE_NUMBER}') "
            f"AND TRY_CAST({text} AS DOUBLE) = trunc(TRY_CAST({text} AS DOUBLE)) "
            f"AND abs(TRY_CAST({text} AS DOUBLE)) < 2147483648 THEN TRY_CAST({text} AS DOUBLE)::INTEGER END"
        ),
        "VARCHAR[]": (
            f"CASE WHEN {text} IS NULL OR json_type({text}) = 'NULL' THEN []::VARCHAR[] "
            f"WHEN json_type({text}) = 'ARRAY' AND coalesce(list_bool_and(list_transform("
            f"json_extract({text}, '$[*]'), lambda t: json_type(t) = 'VARCHAR')), true) "
            f"THEN json_extract_string({text}, '$[*]') END"
        ),
    }[col.sql_type]


_TYPE_WORDS = {
    "DATE": "date (YYYY-MM-DD)",
    "TIMESTAMPTZ": "ISO 8601 timestamp",
    "DOUBLE": "number",
    "INTEGER": "integer",
    "VARCHAR[]": "list of strings",
}


def _column_checks(col: Column) -> list[tuple[str, str]]:
    """(condition that breaks the rule, SQL expression of the reason) for each rule of ``col``."""
    text = _text_name(col)
    name = sql_identifier(col.name)
    shown = f"left({text}, {_SHOWN_VALUE_CHARS})"
    checks = []
    if col.required:
        checks.append((f"{text} IS NULL", sql_literal(col.name + ": required value missing")))
    if col.sql_type in _TYPE_WORDS:
        checks.append((
            f"{text} IS NOT NULL AND {name} IS NULL",
            f"format('{col.name}: ''{{}}'' is not a valid {_TYPE_WORDS[col.sql_type]}', {shown})",
        ))
    if col.enum:
        allowed = ", ".join(col.enum)
        checks.append((
            f"{name} NOT IN ({', '.join(sql_literal(v) for v in col.enum)})",
            f"format('{col.name}: ''{{}}'' is not one of {allowed}', {shown})",
        ))
    if col.min_value is not None:
        checks.append((f"{name} < {col.min_value}", f"format('{col.name}: {{}} is below {col.min_value}', {name})"))
    if col.max_value is not None:
        checks.append((f"{name} > {col.max_value}", f"format('{col.name}: {{}} is above {col.max_value}', {name})"))
    return checks


def _row_rules(source: Source) -> list[tuple[str, str]]:
    return [(f"coalesce(({c.statistics['violation_sql']}), false)", sql_literal(c.error)) for c in source.schema.checks]


def _typed_rows(source: Source, raw: str, keep: str = "parsed_row, read_reason") -> str:
    text_cols = ", ".join(f"{_text(c)} AS {_text_name(c)}" for c in source.columns)
    typed_cols = ", ".join(f"{_typed(c)} AS {sql_identifier(c.name)}" for c in source.columns)
    return f"""
        SELECT *, {typed_cols} FROM (SELECT {keep}, {text_cols} FROM {raw})
    """


def validation_sql(source: Source) -> str:
    """The query over ``raw_<source>`` that types every row and says whether it keeps every rule.

    ``ok`` is a plain boolean: the reasons are built later, for the rejected rows only.
    ``row_hash`` identifies the row's normalised values (its text where a value does not parse).
    """
    breaks = [cond for c in source.columns for cond, _ in _column_checks(c)] + [c for c, _ in _row_rules(source)]
    ok = "read_reason IS NULL AND NOT coalesce(" + " OR ".join(f"({b})" for b in breaks) + ", false)"
    names = ", ".join(sql_identifier(c.name) for c in source.columns)
    identity = ", ".join(
        f"{sql_identifier(c.name)}, CASE WHEN {sql_identifier(c.name)} IS NULL THEN {_text_name(c)} END"
        for c in source.columns
    )
    return f"""
    SELECT parsed_row, {names}, {ok} AS ok, hash({identity}, read_reason) AS row_hash
    FROM ({_typed_rows(source, f"raw_{source.name}")})
    """


def reasons_sql(source: Source, raw: str) -> str:
    """Each row of ``raw`` with its ``record`` and the reasons it is rejected: what the reader found,
    else its columns' broken rules, else (its columns being sound) its broken cross-column rules."""
    column_reasons = ", ".join(f"CASE WHEN {c} THEN {r} END" for col in source.columns for c, r in _column_checks(col))
    rules = _row_rules(source)
    row_reasons = f"concat_ws('; ', {', '.join(f'CASE WHEN {c} THEN {r} END' for c, r in rules)})" if rules else "''"
    return f"""
    SELECT parsed_row, record,
           coalesce(read_reason, nullif(concat_ws('; ', {column_reasons}), ''), {row_reasons}) AS reason
    FROM ({_typed_rows(source, raw, keep="parsed_row, read_reason, record")})
    """


def duplicates_sql(source: Source, checked: str) -> str:
    """Keys held by several rows: the first of them, and whether all copies are identical."""
    key = sql_identifier(source.key)
    return f"""
    SELECT {key}, min(parsed_row) AS first_row, min(row_hash) = max(row_hash) AS identical
    FROM {checked} WHERE {key} IS NOT NULL
    GROUP BY {key} HAVING count(*) > 1
    """


def flagged_sql(source: Source, checked: str, duplicates: str) -> str:
    """The rows to quarantine: broken rules or a duplicate key (with its reason, if that is why)."""
    key = sql_identifier(source.key)
    return f"""
    SELECT c.parsed_row, c.{key} AS record_key,
           CASE WHEN d.identical = false THEN '{CONFLICTING_DUPLICATE}'
                WHEN c.parsed_row > d.first_row THEN '{DUPLICATE}'
           END AS duplicate_reason,
           c.ok
    FROM {checked} c LEFT JOIN {duplicates} d ON c.{key} = d.{key}
    WHERE NOT c.ok OR d.identical = false OR c.parsed_row > d.first_row
    """


def staging_ddl(source: Source) -> str:
    columns = ",\n    ".join(f"{sql_identifier(c.name)} {c.sql_type}" for c in source.columns)
    return f"CREATE OR REPLACE TABLE {source.staging_table} (\n    {columns}\n)"


def _previous_load(con, source: Source, path: Path, column: str, key: str) -> StagingResult | None:
    """The last staging of this file with these rules (``column`` = ``key``: its content
    fingerprint or its quick key), if its tables are still there."""
    row = con.execute(
        f"""
        SELECT input_rows, staged_rows, quarantined_rows, reasons, staged_at FROM {LOADS_TABLE}
        WHERE source = ? AND path = ? AND {column} = ?
          AND EXISTS (SELECT 1 FROM duckdb_tables() WHERE schema_name = 'staging' AND table_name = ?)
        """,
        [source.name, str(path), key, source.name],
    ).fetchone()
    if row is None:
        return None
    input_rows, staged, quarantined, reasons, staged_at = row
    return StagingResult(
        source.name, path, input_rows, staged, quarantined, Counter(json.loads(reasons)), staged_at
    )


def staged_inputs_key(con: duckdb.DuckDBPyConnection, sources: list[str]) -> str | None:
    """A key of what the staging tables of ``sources`` were built from (each one's file content and
    rules, from ``meta.staged_files``): equal keys mean identical tables. None if one is not recorded."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(LOADS_DDL)
    rows = con.execute(
        f"SELECT source, fingerprint FROM {LOADS_TABLE} WHERE list_contains(?, source) ORDER BY source", [sources]
    ).fetchall()
    return _sha1(json.dumps(rows)) if len(rows) == len(set(sources)) else None


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def stage_source(con: duckdb.DuckDBPyConnection, source: Source, path: Path) -> StagingResult:
    """Read, validate and write one source: staging and quarantine replaced in one transaction.

    Every record the file holds (counted apart from the reader) is staged or quarantined, else
    nothing is written. A file whose content and rules are those of the last staging is not read again.
    """
    con.execute("SET TimeZone = 'UTC'")  # timestamps without an offset are UTC
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(LOADS_DDL)
    con.execute(f"ALTER TABLE {LOADS_TABLE} ADD COLUMN IF NOT EXISTS quick_key VARCHAR")
    rules = f"{READER_VERSION}:{validation_sql(source)}"
    # As git's index does: a file whose size, modification time (ns) and inode are those of its
    # last staging is not hashed again; otherwise its content decides.
    stat = path.stat()
    quick_key = _sha1(f"{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ino}:{rules}")
    if (previous := _previous_load(con, source, path, "quick_key", quick_key)) is not None:
        return previous
    fingerprint = _sha1(f"{content_fingerprint(path)}:{rules}")
    if (previous := _previous_load(con, source, path, "fingerprint", fingerprint)) is not None:
        con.execute(f"UPDATE {LOADS_TABLE} SET quick_key = ? WHERE source = ?", [quick_key, source.name])
        return previous
    tables = ("checked", "duplicates", "flagged", "rejected", "unparsed", "parsed", "skipped", "classified", "selected")
    checked, duplicates, flagged, rejected = (f"{t}_{source.name}" for t in tables[:4])
    try:
        records = read_raw(con, source, path)
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {checked} AS {validation_sql(source)}")
        except duckdb.InvalidInputException as exc:
            if not is_invalid_parquet_text(exc):
                raise
            records = read_raw(con, source, path, strings_as_bytes=True)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {checked} AS {validation_sql(source)}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {duplicates} AS {duplicates_sql(source, checked)}")
        con.execute(f"CREATE OR REPLACE TEMP TABLE {flagged} AS {flagged_sql(source, checked, duplicates)}")
        con.execute(f"INSERT INTO selected_{source.name} SELECT parsed_row FROM {flagged}")
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {rejected} AS
            WITH details AS (
                SELECT f.parsed_row, f.record_key, coalesce(f.duplicate_reason, r.reason) AS reason, r.record
                FROM {flagged} f JOIN ({reasons_sql(source, f"raw_selected_{source.name}")}) r USING (parsed_row)
            )
            SELECT source_row, record_key, reason, record FROM ({with_source_row(source, "FROM details")})
            UNION ALL
            SELECT source_row, NULL, reason, record FROM unparsed_{source.name}
            """
        )
        reasons = Counter(
            dict(con.execute(f"SELECT reason, count(*) FROM {rejected} GROUP BY reason").fetchall())
        )
        names = ", ".join(sql_identifier(c.name) for c in source.columns)
        with transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS staging")
            con.execute("CREATE SCHEMA IF NOT EXISTS quarantine")
            con.execute(QUARANTINE_DDL)
            con.execute(staging_ddl(source))
            (staged,) = con.execute(
                # NOT EXISTS, not NOT IN: parsed_row is never NULL, so the rows are the same without
                # DuckDB's NULL-aware anti join (nps_responses at xl, DuckDB's default memory limit:
                # 8.0 s against 3.8 s; at the warehouse's 4 GB limit both take about 4 s).
                f"INSERT INTO {source.staging_table} ({names}) SELECT {names} FROM {checked} c "
                f"WHERE ok AND NOT EXISTS (SELECT 1 FROM {flagged} f WHERE f.parsed_row = c.parsed_row)"
            ).fetchone()
            con.execute(f"DELETE FROM {QUARANTINE_TABLE} WHERE source = ?", [source.name])
            (quarantined,) = con.execute(
                f"INSERT INTO {QUARANTINE_TABLE} "
                f"SELECT ?, source_row, record_key, reason, record FROM {rejected} ORDER BY source_row",
                [source.name],
            ).fetchone()
            if staged + quarantined != records:
                raise SourceFileError(
                    f"{path}: the file has {records} data records but {staged + quarantined} were read "
                    f"({staged} staged, {quarantined} quarantined); nothing was written"
                )
            con.execute(
                f"INSERT OR REPLACE INTO {LOADS_TABLE} (source, path, fingerprint, quick_key, input_rows, "
                "staged_rows, quarantined_rows, reasons, staged_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, now())",
                [source.name, str(path), fingerprint, quick_key, records, staged, quarantined, json.dumps(reasons)],
            )
    except BaseException:
        with suppress(duckdb.Error):  # the connection may be unusable: keep the error that says why
            _drop_temporaries(con, source, tables)
        raise
    _drop_temporaries(con, source, tables)
    return StagingResult(source.name, path, records, staged, quarantined, reasons)


def _drop_temporaries(con, source: Source, tables: tuple[str, ...]) -> None:
    drop_csv_rejects(con, source)
    con.execute(f"DROP VIEW IF EXISTS raw_{source.name}")
    con.execute(f"DROP VIEW IF EXISTS raw_selected_{source.name}")
    con.unregister(f"parquet_bytes_{source.name}")
    for table in tables:
        con.execute(f"DROP TABLE IF EXISTS {table}_{source.name}")
