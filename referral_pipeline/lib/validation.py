"""Validate a source where its data is: its pandera model compiled to one DuckDB query.

Every row gets its reasons in a single pass: each column's rules (required, type, enum, range),
then, for rows whose columns are sound, the model's cross-column rules, then duplicate keys.
Valid rows replace ``staging.<source>``; the others replace the source's rows in
``quarantine.rejected_rows``; both in one transaction, after the counts reconcile.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from referral_pipeline.lib.warehouse import transaction
from referral_pipeline.lib.sources import Column, Source, content_fingerprint, read_raw, sql_identifier, sql_literal

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


def _text_name(col: Column) -> str:
    return sql_identifier(col.name + "__text")


def _text(col: Column) -> str:
    """The column's normalised text: empty is null, trimmed unless free text, enums lower-case."""
    raw = sql_identifier(col.name)
    text = f"nullif({raw}, '')" if col.free_text else f"nullif(trim({raw}), '')"
    return f"lower({text})" if col.enum else text


def _typed(col: Column) -> str:
    """The column's staging value, from its normalised text; NULL where the text does not parse."""
    text = _text_name(col)
    return {
        "VARCHAR": text,
        "DATE": rf"CASE WHEN regexp_full_match({text}, '\d{{4}}-\d{{2}}-\d{{2}}') THEN TRY_CAST({text} AS DATE) END",
        "TIMESTAMPTZ": f"TRY_CAST({text} AS TIMESTAMPTZ)",
        "DOUBLE": f"CASE WHEN isfinite(TRY_CAST({text} AS DOUBLE)) THEN TRY_CAST({text} AS DOUBLE) END",
        "INTEGER": (
            f"CASE WHEN TRY_CAST({text} AS DOUBLE) = trunc(TRY_CAST({text} AS DOUBLE)) "
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


def _column_reasons(col: Column) -> list[str]:
    """SQL expressions, each the reason a rule of ``col`` is broken, or NULL."""
    text = _text_name(col)
    name = sql_identifier(col.name)
    shown = f"left({text}, {_SHOWN_VALUE_CHARS})"
    reasons = []
    if col.required:
        reasons.append(f"CASE WHEN {text} IS NULL THEN {sql_literal(col.name + ': required value missing')} END")
    if col.sql_type in _TYPE_WORDS:
        reasons.append(
            f"CASE WHEN {text} IS NOT NULL AND {name} IS NULL THEN "
            f"format('{col.name}: ''{{}}'' is not a valid {_TYPE_WORDS[col.sql_type]}', {shown}) END"
        )
    if col.enum:
        allowed = ", ".join(col.enum)
        reasons.append(
            f"CASE WHEN {name} NOT IN ({', '.join(sql_literal(v) for v in col.enum)}) THEN "
            f"format('{col.name}: ''{{}}'' is not one of {allowed}', {shown}) END"
        )
    if col.min_value is not None:
        reasons.append(
            f"CASE WHEN {name} < {col.min_value} THEN format('{col.name}: {{}} is below {col.min_value}', {name}) END"
        )
    if col.max_value is not None:
        reasons.append(
            f"CASE WHEN {name} > {col.max_value} THEN format('{col.name}: {{}} is above {col.max_value}', {name}) END"
        )
    return reasons


def validation_sql(source: Source) -> str:
    """The query over ``raw_<source>`` that types every row and gives it the rules it breaks."""
    text_cols = ", ".join(f"{_text(c)} AS {_text_name(c)}" for c in source.columns)
    typed_cols = ", ".join(f"{_typed(c)} AS {sql_identifier(c.name)}" for c in source.columns)
    column_reasons = ", ".join(r for c in source.columns for r in _column_reasons(c))
    row_rules = [
        f"CASE WHEN coalesce(({check.statistics['violation_sql']}), false) THEN {sql_literal(check.error)} END"
        for check in source.schema.checks
    ]
    row_reasons = f"concat_ws('; ', {', '.join(row_rules)})" if row_rules else "''"
    names = ", ".join(sql_identifier(c.name) for c in source.columns)
    return f"""
    WITH texts AS (
        SELECT source_row, {text_cols} FROM raw_{source.name}
    ), typed AS (
        SELECT *, {typed_cols} FROM texts
    ), checked AS (
        SELECT source_row, {names}, concat_ws('; ', {column_reasons}) AS column_reasons FROM typed
    )
    SELECT source_row, {names},
           CASE WHEN column_reasons = '' THEN {row_reasons} ELSE column_reasons END AS rule_reasons
    FROM checked
    """


def duplicates_sql(source: Source, checked: str) -> str:
    """Keys held by several rows: the first of them, and whether all copies are identical."""
    names = ", ".join(sql_identifier(c.name) for c in source.columns)
    key = sql_identifier(source.key)
    return f"""
    SELECT {key}, min(source_row) AS first_row,
           min(hash({names}, rule_reasons)) = max(hash({names}, rule_reasons)) AS identical
    FROM {checked} WHERE {key} IS NOT NULL
    GROUP BY {key} HAVING count(*) > 1
    """


def verdicts_sql(source: Source, checked: str, duplicates: str) -> str:
    """Every checked row with its final reason: NULL to stage it, else why it is quarantined."""
    key = sql_identifier(source.key)
    return f"""
    SELECT c.*,
           CASE WHEN d.identical = false THEN '{CONFLICTING_DUPLICATE}'
                WHEN c.source_row > d.first_row THEN '{DUPLICATE}'
                ELSE nullif(c.rule_reasons, '')
           END AS reason
    FROM {checked} c LEFT JOIN {duplicates} d ON c.{key} = d.{key}
    """


def staging_ddl(source: Source) -> str:
    columns = ",\n    ".join(f"{sql_identifier(c.name)} {c.sql_type}" for c in source.columns)
    return f"CREATE OR REPLACE TABLE {source.staging_table} (\n    {columns}\n)"


def _previous_load(con, source: Source, path: Path, fingerprint: str) -> StagingResult | None:
    """The last staging of this very file content with these rules, if its tables are still there."""
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    con.execute(LOADS_DDL)
    row = con.execute(
        f"""
        SELECT input_rows, staged_rows, quarantined_rows, reasons, staged_at FROM {LOADS_TABLE}
        WHERE source = ? AND path = ? AND fingerprint = ?
          AND EXISTS (SELECT 1 FROM duckdb_tables() WHERE schema_name = 'staging' AND table_name = ?)
        """,
        [source.name, str(path), fingerprint, source.name],
    ).fetchone()
    if row is None:
        return None
    input_rows, staged, quarantined, reasons, staged_at = row
    return StagingResult(
        source.name, path, input_rows, staged, quarantined, Counter(json.loads(reasons)), staged_at
    )


def stage_source(con: duckdb.DuckDBPyConnection, source: Source, path: Path) -> StagingResult:
    """Read, validate and write one source: staging and quarantine replaced in one transaction.

    A file whose content and rules are those of the last staging is not read again.
    """
    fingerprint = hashlib.sha1(
        f"{content_fingerprint(path)}:{validation_sql(source)}".encode(), usedforsecurity=False
    ).hexdigest()
    if (previous := _previous_load(con, source, path, fingerprint)) is not None:
        return previous
    read_raw(con, source, path)
    checked, duplicates, verdicts = (f"{t}_{source.name}" for t in ("checked", "duplicates", "verdicts"))
    con.execute(f"CREATE OR REPLACE TEMP TABLE {checked} AS {validation_sql(source)}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE {duplicates} AS {duplicates_sql(source, checked)}")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {verdicts} AS {verdicts_sql(source, checked, duplicates)}")
    (parsed_rows,) = con.execute(f"SELECT count(*) FROM {checked}").fetchone()
    (unparsed_rows,) = con.execute(f"SELECT count(*) FROM unparsed_{source.name}").fetchone()
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE rejected_{source.name} AS
        SELECT v.source_row, v.{sql_identifier(source.key)} AS record_key, v.reason, r.record
        FROM (SELECT * FROM {verdicts} WHERE reason IS NOT NULL) v
        JOIN (SELECT source_row, record FROM raw_{source.name}
              WHERE source_row IN (SELECT source_row FROM {verdicts} WHERE reason IS NOT NULL)) r
        USING (source_row)
        UNION ALL
        SELECT source_row, NULL, reason, record FROM unparsed_{source.name}
        """
    )
    reasons = Counter(
        dict(con.execute(f"SELECT reason, count(*) FROM rejected_{source.name} GROUP BY reason").fetchall())
    )
    names = ", ".join(sql_identifier(c.name) for c in source.columns)
    try:
        with transaction(con):
            con.execute("CREATE SCHEMA IF NOT EXISTS staging")
            con.execute("CREATE SCHEMA IF NOT EXISTS quarantine")
            con.execute(QUARANTINE_DDL)
            con.execute(staging_ddl(source))
            con.execute(
                f"INSERT INTO {source.staging_table} ({names}) SELECT {names} FROM {verdicts} WHERE reason IS NULL"
            )
            con.execute(f"DELETE FROM {QUARANTINE_TABLE} WHERE source = ?", [source.name])
            con.execute(
                f"INSERT INTO {QUARANTINE_TABLE} "
                f"SELECT ?, source_row, record_key, reason, record FROM rejected_{source.name} ORDER BY source_row",
                [source.name],
            )
            (staged,) = con.execute(f"SELECT count(*) FROM {source.staging_table}").fetchone()
            (quarantined,) = con.execute(
                f"SELECT count(*) FROM {QUARANTINE_TABLE} WHERE source = ?", [source.name]
            ).fetchone()
            input_rows = parsed_rows + unparsed_rows
            if staged + quarantined != input_rows:
                raise AssertionError(
                    f"{path}: {input_rows} input rows but {staged} staged + {quarantined} quarantined"
                )
            con.execute(
                f"INSERT OR REPLACE INTO {LOADS_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, now())",
                [source.name, str(path), fingerprint, input_rows, staged, quarantined, json.dumps(reasons)],
            )
    finally:
        for view in ("verdicts", "raw"):
            con.execute(f"DROP VIEW IF EXISTS {view}_{source.name}")
        for table in ("rejected", "duplicates", "checked", "unparsed", "parsed", "lines", "numbered"):
            con.execute(f"DROP TABLE IF EXISTS {table}_{source.name}")
    return StagingResult(source.name, path, input_rows, staged, quarantined, reasons)
