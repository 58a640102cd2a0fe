"""The six sources of the contract and how each file is read into DuckDB, row for row.

Every file is read into a temporary view ``raw_<source>`` holding, per row, its 1-based
``source_row`` (data row of a CSV, line of a JSONL file, row of a Parquet file), the contract's
columns as text (null where the column is optional and absent) and ``record``, the raw row as JSON
(computed only for the rows that are selected).
Rows that cannot even be split into cells (ragged CSV rows, bytes that are not UTF-8, JSONL lines
that are not JSON objects) go to ``unparsed_<source>`` with their reason: nothing is dropped.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import duckdb
import pandera.pandas as pa

from referral_pipeline.lib import schemas

# DuckDB refuses CSV lines longer than this; QBR notes may be several MB long.
MAX_LINE_BYTES = 64 * 1024 * 1024
_HEADER_BYTES = 1024 * 1024
_CHUNK_BYTES = 8 * 1024 * 1024
# CASE keeps json_type from seeing text that is not JSON.
_IS_JSON_OBJECT = "CASE WHEN json_valid(line) THEN json_type(line) = 'OBJECT' ELSE false END"


class SourceFileError(Exception):
    """A source file that cannot be used at all: missing, unreadable, or missing a required column."""


@dataclass(frozen=True)
class Column:
    """One contract column, as its pandera model declares it."""

    name: str
    sql_type: str
    required: bool
    in_header: bool
    free_text: bool
    enum: tuple[str, ...] | None
    min_value: float | None
    max_value: float | None


@dataclass(frozen=True)
class Source:
    """A source of the contract: where its file lives and the model that validates it."""

    name: str  # the staging table's name
    title: str  # what a person calls it
    path_stem: str  # relative to the data folder, without extension
    text_format: str  # "csv" or "jsonl"; Parquet of the same stem is the alternative
    model: type[pa.DataFrameModel]

    @cached_property
    def schema(self) -> pa.DataFrameSchema:
        return self.model.to_schema()

    @cached_property
    def columns(self) -> tuple[Column, ...]:
        return tuple(_column(name, col) for name, col in self.schema.columns.items())

    @cached_property
    def key(self) -> str:
        return next(name for name, col in self.schema.columns.items() if col.unique)

    @property
    def staging_table(self) -> str:
        return f"staging.{self.name}"

    def locate(self, data_dir: Path) -> Path:
        """The source's file in ``data_dir``: its text format or Parquet, never both."""
        text = data_dir / f"{self.path_stem}.{self.text_format}"
        parquet = data_dir / f"{self.path_stem}.parquet"
        if text.exists() and parquet.exists():
            raise SourceFileError(
                f"{text} and {parquet} both exist: keep exactly one export of source '{self.name}'"
            )
        if parquet.exists():
            return parquet
        if not text.exists():
            raise SourceFileError(f"{text}: file not found (nor {parquet.name}) for source '{self.name}'")
        return text


def _column(name: str, col: pa.Column) -> Column:
    dtype = str(col.dtype)
    meta = col.metadata or {}
    if meta.get("list_of_strings"):
        sql_type = "VARCHAR[]"
    else:
        sql_type = {
            "str": "VARCHAR",
            "date": "DATE",
            "datetime64[ns, UTC]": "TIMESTAMPTZ",
            "int64": "INTEGER",
            "float64": "DOUBLE",
        }[dtype]
    enum = min_value = max_value = None
    for check in col.checks:
        stats = check.statistics or {}
        if check.name == "isin":
            enum = tuple(stats["allowed_values"])
        elif check.name == "in_range":
            min_value, max_value = stats["min_value"], stats["max_value"]
        elif check.name == "greater_than_or_equal_to":
            min_value = stats["min_value"]
        else:
            raise ValueError(f"{name}: check {check.name!r} has no SQL translation")
    return Column(
        name=name,
        sql_type=sql_type,
        required=not col.nullable and sql_type != "VARCHAR[]",
        in_header=bool(meta.get("header")),
        free_text=bool(meta.get("free_text")),
        enum=enum,
        min_value=min_value,
        max_value=max_value,
    )


SOURCES: tuple[Source, ...] = (
    Source("accounts", "CRM accounts", "crm/accounts", "csv", schemas.Accounts),
    Source("partners", "CRM partners", "crm/partners", "csv", schemas.Partners),
    Source("opportunities", "CRM opportunities", "crm/opportunities", "csv", schemas.Opportunities),
    Source("warm_intro_asks", "CRM warm-intro asks", "crm/warm_intro_asks", "csv", schemas.WarmIntroAsks),
    Source("nps_responses", "NPS responses", "nps/responses", "csv", schemas.NpsResponses),
    Source("qbr_notes", "QBR notes", "qbr/notes", "jsonl", schemas.QbrNotes),
)
SOURCES_BY_NAME = {source.name: source for source in SOURCES}


def sql_identifier(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def content_fingerprint(path: Path) -> str:
    """A fingerprint of the file's bytes (SHA-1, streamed: fast, and collisions are not a concern)."""
    digest = hashlib.sha1(usedforsecurity=False)
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _match_columns(source: Source, path: Path, present: list[str]) -> dict[str, str | None]:
    """Contract column -> the file's column (matched case-insensitively), None if absent."""
    by_lower = {name.strip().lower(): name for name in present}
    matched = {col.name: by_lower.get(col.name) for col in source.columns}
    missing = [col.name for col in source.columns if col.in_header and matched[col.name] is None]
    if missing:
        raise SourceFileError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(the file has: {', '.join(present) or 'no columns'})"
        )
    return matched


def read_raw(con: duckdb.DuckDBPyConnection, source: Source, path: Path) -> None:
    """Read ``path`` into ``raw_<source>`` and ``unparsed_<source>`` (see the module docstring)."""
    try:
        if path.suffix == ".parquet":
            _read_parquet(con, source, path)
        elif path.suffix == ".jsonl":
            _read_jsonl(con, source, path)
        else:
            _read_csv(con, source, path)
    except duckdb.Error as exc:
        raise SourceFileError(f"{path}: cannot be read: {exc}") from exc


def _text_columns(matched: dict[str, str | None], cell) -> str:
    return ", ".join(
        f"{cell(file_col)} AS {sql_identifier(name)}" if file_col else f"NULL::VARCHAR AS {sql_identifier(name)}"
        for name, file_col in matched.items()
    )


def _numbered(table: str, rejects: str, columns: str) -> str:
    """A query giving the rows DuckDB parsed their position in the file, counting rejected rows.

    Parsed rows keep file order (``rowid``); a parsed row k sits after every rejected row r_j
    (sorted, j = 1..) with r_j - j < k, so its position is k + that count.
    """
    return f"""
        WITH gaps AS (
            SELECT source_row - row_number() OVER (ORDER BY source_row) AS parsed_before,
                   row_number() OVER (ORDER BY source_row) AS rejected_so_far
            FROM {rejects}
        ), steps AS (
            SELECT parsed_before, max(rejected_so_far) AS rejected_so_far FROM gaps GROUP BY ALL
        ), parsed AS (SELECT rowid + 1 AS parsed_row, * FROM {table})
        SELECT parsed.parsed_row + coalesce(steps.rejected_so_far, 0) AS source_row, {columns}
        FROM parsed ASOF LEFT JOIN steps ON parsed.parsed_row > steps.parsed_before
    """


def _rejects_of_scan(con, source: Source, rejects_table: str, row_offset: int) -> None:
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE unparsed_{source.name} AS
        SELECT line - {row_offset} AS source_row,
               CASE first(error_type ORDER BY column_idx)
                   WHEN 'INVALID ENCODING' THEN 'invalid UTF-8 bytes'
                   WHEN 'TOO MANY COLUMNS' THEN 'ragged row: ' || first(error_message)
                   WHEN 'MISSING COLUMNS' THEN 'ragged row: ' || first(error_message)
                   ELSE 'unparseable row: ' || lower(first(error_type)) || ': ' || first(error_message)
               END AS reason,
               to_json(ltrim(first(csv_line), e'\\r\\n')) AS record
        FROM {rejects_table}
        GROUP BY line
        """
    )


def _csv_header(path: Path) -> list[str]:
    """The header row's cell names (a byte-order mark is fine; the header must be UTF-8)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(_HEADER_BYTES).decode("utf-8-sig", errors="replace")
    except OSError as exc:
        raise SourceFileError(f"{path}: cannot be read: {exc.strerror}") from exc
    header = [name.strip() for name in next(csv.reader(io.StringIO(head, newline="")), [])]
    if any("\ufffd" in name for name in header):
        raise SourceFileError(f"{path}: the header row is not UTF-8")
    return header


def _read_csv(con, source: Source, path: Path) -> None:
    present = _csv_header(path)
    matched = _match_columns(source, path, present)
    positional = {name: f"c{i}" for i, name in enumerate(present)}
    cells = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(present))) + "}"
    record = "json_object(" + ", ".join(f"{sql_literal(n)}, c{i}" for i, n in enumerate(present)) + ")"
    rejects = f"csv_rejects_{source.name}"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE parsed_{source.name} AS
        SELECT * FROM read_csv({sql_literal(str(path))}, columns={cells}, header=true, auto_detect=false,
                      delim=',', quote='"', escape='"', strict_mode=true,
                      store_rejects=true, rejects_table='{rejects}', rejects_scan='{rejects}_scan',
                      max_line_size={MAX_LINE_BYTES}, buffer_size={2 * MAX_LINE_BYTES})
        """
    )
    _rejects_of_scan(con, source, rejects, row_offset=1)  # line 1 is the header
    columns = f"{_text_columns(matched, positional.get)}, {record}::VARCHAR AS record"
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW raw_{source.name} AS "
        + _numbered(f"parsed_{source.name}", f"unparsed_{source.name}", columns)
    )


def _read_jsonl(con, source: Source, path: Path) -> None:
    rejects = f"jsonl_rejects_{source.name}"
    # One cell per physical line: no quoting, and a delimiter that valid JSON never holds raw.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE lines_{source.name} AS
        SELECT line FROM read_csv({sql_literal(str(path))}, columns={{'line': 'VARCHAR'}}, header=false,
                                  delim=e'\\x1f', quote='', escape='', auto_detect=false,
                                  strict_mode=false, store_rejects=true, rejects_table='{rejects}',
                                  rejects_scan='{rejects}_scan', max_line_size={MAX_LINE_BYTES},
                                  buffer_size={2 * MAX_LINE_BYTES})
        """
    )
    _rejects_of_scan(con, source, rejects, row_offset=0)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE numbered_{source.name} AS "
        + _numbered(f"lines_{source.name}", f"unparsed_{source.name}", "line")
    )
    # Blank lines are skipped; lines that are not JSON objects are rejected rows.
    con.execute(
        f"""
        INSERT INTO unparsed_{source.name}
        SELECT source_row, 'line is not a JSON object', to_json(line)
        FROM numbered_{source.name}
        WHERE trim(line) <> '' AND NOT {_IS_JSON_OBJECT}
        """
    )
    con.execute(
        f"""
        DELETE FROM numbered_{source.name}
        WHERE line IS NULL OR trim(line) = '' OR NOT {_IS_JSON_OBJECT}
        """
    )
    present_counts = con.execute(
        "SELECT "
        + ", ".join(
            f"count(*) FILTER (WHERE json_exists(line, {sql_literal('$.' + sql_identifier(c.name))}))"
            for c in source.columns
        )
        + f", count(*) FROM numbered_{source.name}"
    ).fetchone()
    rows = present_counts[-1]
    present = [c.name for c, n in zip(source.columns, present_counts) if n > 0 or rows == 0]
    matched = _match_columns(source, path, present)

    def field(name: str) -> str:
        path_literal = sql_literal("$." + sql_identifier(name))
        column = next(c for c in source.columns if c.name == name)
        if column.sql_type == "VARCHAR[]":
            return f"json_extract(line, {path_literal})::VARCHAR"
        return f"json_extract_string(line, {path_literal})"

    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW raw_{source.name} AS
        SELECT source_row, {_text_columns(matched, field)}, line AS record
        FROM numbered_{source.name}
        """
    )


def _read_parquet(con, source: Source, path: Path) -> None:
    described = con.execute(
        f"DESCRIBE SELECT * FROM read_parquet({sql_literal(str(path))})"
    ).fetchall()
    present = [row[0] for row in described]
    types = {row[0]: row[1] for row in described}
    matched = _match_columns(source, path, present)

    def cell(file_col: str) -> str:
        if types[file_col].endswith("[]"):
            return f"to_json({sql_identifier(file_col)})::VARCHAR"
        return f"{sql_identifier(file_col)}::VARCHAR"

    record = "to_json(struct_pack(" + ", ".join(f"{sql_identifier(c)} := {sql_identifier(c)}" for c in present) + "))"
    con.execute(
        f"""
        CREATE OR REPLACE TEMP VIEW raw_{source.name} AS
        SELECT file_row_number + 1 AS source_row, {_text_columns(matched, cell)}, {record}::VARCHAR AS record
        FROM read_parquet({sql_literal(str(path))}, file_row_number=true)
        """
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE unparsed_{source.name} "
        "(source_row BIGINT, reason VARCHAR, record VARCHAR)"
    )
