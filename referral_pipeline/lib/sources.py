"""The six sources of the contract and how each file is read into DuckDB, record for record.

Every file is read into a temporary view ``raw_<source>`` (and ``raw_selected_<source>``, the same
for the rows listed in ``selected_<source>``) holding, per record the reader split into
cells, its ``parsed_row`` (1-based, in file order), the contract's columns as text (null where the
column is optional and absent), ``read_reason`` (why the record's cells cannot be used as text,
else null) and ``record``, the raw record as JSON (computed only for the rows that are selected).
Records that cannot even be split into cells (ragged or malformed CSV rows, bytes that are not
UTF-8, JSONL lines that are not JSON objects) go to ``unparsed_<source>`` with their ``source_row``
and reason: nothing is dropped. ``with_source_row`` gives parsed rows their ``source_row``, the
record's number in the file (for the few rows that need it: the rejected ones).

Records and their numbers, counted independently of the parser that splits them into cells:
- CSV (RFC 4180): a record ends at a line feed outside quotes (LF or CRLF); ``source_row`` is the
  record's number after the header, blank and white-space-only records included (they are skipped
  but keep their number, so without multi-line cells ``source_row`` is the line number minus one).
  A carriage return outside quotes that does not end a line makes its record malformed.
- JSON Lines: a line ends at LF only (a CR is JSON white space); ``source_row`` is the physical line
  number; blank lines (only JSON white space) are skipped.
- Parquet: ``source_row`` is the row's number in the file; the count is the file's metadata.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import mmap
import os
import re
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import BinaryIO, NamedTuple

import duckdb
import numpy as np
import pandera.pandas as pa
import pyarrow
import pyarrow.parquet

from referral_pipeline.lib import schemas

# Bumped whenever reading changes what a file yields, so unchanged files are staged again.
READER_VERSION = "3"
# DuckDB refuses CSV records longer than this; a record longer than this is rejected.
MAX_LINE_BYTES = 64 * 1024 * 1024
_CHUNK_BYTES = 8 * 1024 * 1024
_WINDOW_BYTES = 4 * 1024 * 1024
_BOM = b"\xef\xbb\xbf"
_WAREHOUSE_FAULT = re.compile("No space left on device|database has been invalidated|Corrupt database file")
_QUOTE, _LF, _CR, _COMMA, _SPACE, _TAB = 34, 10, 13, 44, 32, 9
MALFORMED_CR = "malformed CSV row: carriage return (CR) outside quotes not followed by a line feed"
NOT_AN_OBJECT = "line is not a JSON object"
NOT_STRICT_JSON = "line is not a JSON object: not strict JSON (a trailing comma, NaN or Infinity)"
INVALID_UTF8 = "invalid UTF-8 bytes"


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
        """The source's file in ``data_dir``: its text format or Parquet, never both; a regular file."""
        text = data_dir / f"{self.path_stem}.{self.text_format}"
        parquet = data_dir / f"{self.path_stem}.parquet"
        if text.exists() and parquet.exists():
            raise SourceFileError(
                f"{text} and {parquet} both exist: keep exactly one export of source '{self.name}'"
            )
        if not parquet.exists() and not text.exists():
            raise SourceFileError(f"{text}: file not found (nor {parquet.name}) for source '{self.name}'")
        path = parquet if parquet.exists() else text
        require_regular_file(path)
        return path


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


# --- files ---------------------------------------------------------------------------------------

_FILE_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def _not_regular(path: Path, mode: int) -> SourceFileError:
    kind = next((word for test, word in _FILE_KINDS if test(mode)), "not a file")
    return SourceFileError(f"{path}: not a regular file ({kind}); a source must be a regular file")


def require_regular_file(path: Path) -> None:
    """Raise unless ``path`` is a regular file (a FIFO or a device is never opened)."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise SourceFileError(f"{path}: file not found") from exc
    except OSError as exc:
        raise SourceFileError(f"{path}: cannot be read: {exc.strerror}") from exc
    if not stat.S_ISREG(mode):
        raise _not_regular(path, mode)


@contextmanager
def _open_regular(path: Path) -> Iterator[BinaryIO]:
    """``path`` opened for reading, refused without blocking if it is not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise SourceFileError(f"{path}: cannot be read: {exc.strerror}") from exc
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise _not_regular(path, mode)
    with os.fdopen(fd, "rb") as handle:
        yield handle


def content_fingerprint(path: Path) -> str:
    """A fingerprint of the file's bytes (SHA-256, streamed; the fastest of hashlib's on CPUs with
    SHA extensions: 1.8 GB in about 1 s)."""
    digest = hashlib.sha256()
    with _open_regular(path) as handle:
        while chunk := handle.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _match_columns(source: Source, path: Path, present: list[str], exact: bool = False) -> dict[str, str | None]:
    """Contract column -> the file's column (matched case-insensitively unless ``exact``), None if absent."""
    by_name = {name if exact else name.strip().lower(): name for name in present}
    matched = {col.name: by_name.get(col.name) for col in source.columns}
    missing = [col.name for col in source.columns if col.in_header and matched[col.name] is None]
    if missing:
        raise SourceFileError(
            f"{path}: missing required column(s) {', '.join(missing)} "
            f"(the file has: {', '.join(present) or 'no columns'})"
        )
    return matched


def is_invalid_parquet_text(exc: BaseException) -> bool:
    """Whether ``exc`` is DuckDB refusing a Parquet string column that holds bytes that are not UTF-8."""
    return "Invalid string encoding found in Parquet file" in str(exc)


def read_raw(con: duckdb.DuckDBPyConnection, source: Source, path: Path, strings_as_bytes: bool = False) -> int:
    """Read ``path`` into ``raw_<source>`` and ``unparsed_<source>`` (see the module docstring).

    Returns the number of data records in the file, counted independently of the reader: every
    one of them must end up staged or quarantined. ``strings_as_bytes`` reads a Parquet file's
    string columns as bytes, so values that are not UTF-8 are rejected rows (see
    ``is_invalid_parquet_text``).
    """
    try:
        if path.suffix == ".parquet":
            return _read_parquet(con, source, path, strings_as_bytes)
        if path.suffix == ".jsonl":
            return _read_jsonl(con, source, path)
        return _read_csv(con, source, path)
    except duckdb.Error as exc:
        if _WAREHOUSE_FAULT.search(str(exc)):
            raise  # the warehouse's disk or file, not the source, is at fault
        raise SourceFileError(f"{path}: cannot be read: {exc}") from exc


def _text_columns(matched: dict[str, str | None], cell) -> str:
    return ", ".join(
        f"{cell(file_col)} AS {sql_identifier(name)}" if file_col else f"NULL::VARCHAR AS {sql_identifier(name)}"
        for name, file_col in matched.items()
    )


def _raw_views(con, source: Source, base: str, columns: str) -> None:
    """``raw_<source>``: ``columns`` over ``base`` (a relation with ``parsed_row``); and
    ``raw_selected_<source>``, the same for the rows listed in ``selected_<source>`` only (the
    filter is applied before the columns, so costly ones like ``record`` are built for those alone)."""
    name = source.name
    con.execute(f"CREATE OR REPLACE TEMP TABLE selected_{name} (parsed_row BIGINT)")
    con.execute(f"CREATE OR REPLACE TEMP VIEW raw_{name} AS SELECT parsed_row, {columns} FROM ({base})")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW raw_selected_{name} AS SELECT parsed_row, {columns} FROM ({base}) "
        f"WHERE parsed_row IN (SELECT parsed_row FROM selected_{name})"
    )


def _empty_unparsed(con, source: Source) -> None:
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE unparsed_{source.name} "
        "(source_row BIGINT, reason VARCHAR, record VARCHAR)"
    )


# --- CSV -----------------------------------------------------------------------------------------


class CsvLayout(NamedTuple):
    """A CSV file's records, found without parsing cells."""

    header: bytes  # the header record (without its line end)
    records: int  # data records after the header, blank ones included: source_row runs 1..records
    blank: np.ndarray  # numbers of the blank or white-space-only records
    malformed: tuple[tuple[int, bytes], ...]  # (number, raw bytes) of records with a CR outside quotes
    cut: tuple[tuple[int, int], ...]  # byte ranges a parser must not see: the malformed records
    strip_cr: np.ndarray  # byte offsets of the CRs of CRLF line ends, dropped when the file is copied
    needs_copy: bool  # mixed LF/CRLF line ends or malformed records: the parser reads a clean copy

    @property
    def data_records(self) -> int:
        return self.records - len(self.blank)


_FIELD_END = re.compile(rb"[,\n\r]")
_NO_OFFSETS = np.empty(0, np.int64)
_SLOW_SPAN = 64 * 1024


def _slow_records(mm: mmap.mmap, start: int, until: int) -> tuple[int, list[int], list[int]]:
    """Record ends and stray CRs from ``start`` (a record's first byte), the careful way.

    A quote opens a quoted cell only at the start of a cell (after spaces); elsewhere it is a
    character. Returns where it stopped (a record start at or after ``until``), the LF offsets
    ending records and the offsets of CRs outside quotes that do not end a line.
    """
    size, i, ends, stray = len(mm), start, [], []
    at_cell_start = True
    while i < size:
        if at_cell_start:
            j = i
            while j < size and mm[j] == _SPACE:
                j += 1
            at_cell_start = False
            if j < size and mm[j] == _QUOTE:
                k = j + 1
                while True:
                    k = mm.find(b'"', k)
                    if k < 0:
                        return size, ends, stray  # an open quote runs to the end of the file
                    if k + 1 < size and mm[k + 1] == _QUOTE:
                        k += 2
                        continue
                    break
                i = k + 1
                continue
        found = _FIELD_END.search(mm, i)
        if found is None:
            break
        j = found.start()
        byte = mm[j]
        if byte == _COMMA:
            at_cell_start = True
        elif byte == _LF:
            ends.append(j)
            at_cell_start = True
            if j + 1 >= until:
                return j + 1, ends, stray
        elif j + 1 < size and mm[j + 1] != _LF:
            stray.append(j)
        i = j + 1
    return size, ends, stray


def _scan_csv(mm: mmap.mmap) -> tuple[np.ndarray, np.ndarray, bool]:
    """LF offsets ending records, offsets of stray CRs, and whether a CR outside quotes ends the file.

    Windows of the file are scanned with numpy, quote parity telling what is inside quotes. A
    quote where RFC 4180 allows none (an opening one not at a cell's start, a closing one not
    followed by a comma, a quote or a line end) sends the record it is in, and those after it up
    to ``_SLOW_SPAN`` bytes, through ``_slow_records``, which reads quotes as DuckDB does.
    """
    buf = np.frombuffer(mm, np.uint8)
    size = len(buf)
    bom = len(_BOM) if mm[: len(_BOM)] == _BOM else 0
    scratch = np.empty(min(_WINDOW_BYTES, size), bool)
    ends, stray = [], []
    pos, inside, last_end, final_cr, window_bytes = 0, 0, -1, False, _WINDOW_BYTES
    while pos < size:
        stop = min(pos + window_bytes, size)
        window, mask = buf[pos:stop], scratch[: stop - pos]
        quotes = np.flatnonzero(np.equal(window, _QUOTE, out=mask)) + pos
        lfs = np.flatnonzero(np.equal(window, _LF, out=mask)) + pos
        crs = np.flatnonzero(mask) + pos if np.equal(window, _CR, out=mask).any() else _NO_OFFSETS
        opening = (np.arange(len(quotes)) & 1) == inside
        before = buf[np.maximum(quotes - 1, 0)]
        before[(quotes == 0) | (quotes == bom)] = _LF
        after = buf[np.minimum(quotes + 1, size - 1)]
        after[quotes == size - 1] = _LF
        regular = np.where(
            opening,
            (before == _COMMA) | (before == _LF) | (before == _QUOTE),
            (after == _COMMA) | (after == _LF) | (after == _CR) | (after == _QUOTE),
        )
        irregular = np.flatnonzero(~regular)
        limit = int(quotes[irregular[0]]) if len(irregular) else stop
        quotes = quotes[: np.searchsorted(quotes, limit)]
        lfs, crs = lfs[lfs < limit], crs[crs < limit]
        found = lfs[((np.searchsorted(quotes, lfs) + inside) & 1) == 0]
        outside_crs = crs[((np.searchsorted(quotes, crs) + inside) & 1) == 0]
        next_bytes = buf[np.minimum(outside_crs + 1, size - 1)]
        stray.append(outside_crs[(next_bytes != _LF) & (outside_crs != size - 1)])
        final_cr = final_cr or (len(outside_crs) > 0 and outside_crs[-1] == size - 1)
        ends.append(found)
        if len(found):
            last_end = int(found[-1])
        if len(irregular):
            pos, slow_ends, slow_stray = _slow_records(mm, last_end + 1, limit + _SLOW_SPAN)
            final_cr = pos == size and mm[size - 1] == _CR and (size - 1) not in slow_stray
            ends.append(np.array(slow_ends, np.int64))
            stray.append(np.array(slow_stray, np.int64))
            if slow_ends:
                last_end = slow_ends[-1]
            inside = 0
            window_bytes = max(window_bytes // 4, _SLOW_SPAN)  # irregular quotes come in bunches
        else:
            inside = (inside + len(quotes)) & 1
            pos = stop
            window_bytes = min(window_bytes * 2, _WINDOW_BYTES)
    del buf, window, mask
    return np.concatenate(ends).astype(np.int64), np.unique(np.concatenate(stray)).astype(np.int64), final_cr


def _csv_layout(path: Path) -> CsvLayout:
    """The records of the CSV file at ``path`` (see ``CsvLayout``)."""
    empty = np.empty(0, np.int64)
    with _open_regular(path) as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return CsvLayout(b"", 0, empty, (), (), empty, False)
        mm = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        try:
            return _layout_of(path, mm)
        finally:
            with suppress(BufferError):  # views still held by a traceback: closed when collected
                mm.close()


def _layout_of(path: Path, mm: mmap.mmap) -> CsvLayout:
    size, buf = len(mm), np.frombuffer(mm, np.uint8)
    line_ends, stray, final_cr = _scan_csv(mm)
    ends = line_ends if len(line_ends) and line_ends[-1] == size - 1 else np.append(line_ends, size)
    starts = np.concatenate([[0], line_ends + 1])[: len(ends)]
    record_of_stray = np.searchsorted(ends, stray)
    if len(stray) and record_of_stray[0] == 0:
        raise SourceFileError(
            f"{path}: the header row holds a carriage return (CR) not followed by a line feed; "
            "line ends must be LF or CRLF (RFC 4180)"
        )
    # CRs ending lines (CRLF, or a CR ending the file); DuckDB wants one kind of line end per file.
    crs_ending_lines = line_ends[(line_ends > 0) & (buf[np.maximum(line_ends - 1, 0)] == _CR)] - 1
    if final_cr:
        crs_ending_lines = np.append(crs_ending_lines, size - 1)
    mixed = 0 < len(crs_ending_lines) < len(line_ends) + final_cr
    # Blank records: empty, or only spaces, tabs and CRs (checked one by one only if they start so).
    lengths = ends - starts
    first = buf[np.minimum(starts, size - 1)]
    maybe_blank = np.flatnonzero((lengths == 0) | (first == _SPACE) | (first == _TAB) | (first == _CR))
    blank = np.array(
        [r for r in maybe_blank[maybe_blank > 0] if not mm[starts[r] : ends[r]].strip(b" \t\r")], np.int64
    )
    del buf, first
    with_stray = np.unique(record_of_stray)
    broken = np.setdiff1d(with_stray, blank)
    cut = tuple((int(starts[r]), int(ends[r])) for r in with_stray)
    needs_copy = bool(cut) or mixed
    return CsvLayout(
        header=mm[: ends[0]].rstrip(b"\r"),
        records=len(ends) - 1,
        blank=blank,
        malformed=tuple((int(r), mm[starts[r] : ends[r]]) for r in broken),
        cut=cut,
        strip_cr=crs_ending_lines if needs_copy else np.empty(0, np.int64),
        needs_copy=needs_copy,
    )


def _write_clean_copy(path: Path, layout: CsvLayout, target: BinaryIO) -> None:
    """``path`` without the CRs of its CRLF line ends and with its malformed records emptied."""
    cut = np.array(sorted(layout.cut), np.int64).reshape(-1, 2)
    with _open_regular(path) as handle:
        offset = 0
        while chunk := handle.read(_CHUNK_BYTES):
            data = np.frombuffer(chunk, np.uint8)
            end = offset + len(data)
            keep = np.ones(len(data), bool)
            keep[layout.strip_cr[(layout.strip_cr >= offset) & (layout.strip_cr < end)] - offset] = False
            for first, last in cut[(cut[:, 0] < end) & (cut[:, 1] > offset)]:
                keep[max(first - offset, 0) : min(last - offset, len(data))] = False
            target.write(data[keep].tobytes())
            offset = end


def _csv_header(path: Path, header: bytes) -> list[str]:
    """The header row's cell names (a byte-order mark is fine; the header must be UTF-8)."""
    try:
        text = header.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SourceFileError(f"{path}: the header row is not UTF-8") from exc
    return [name.strip() for name in next(csv.reader(io.StringIO(text, newline="")), [])]


def with_source_row(source: Source, relation: str) -> str:
    """A query adding ``source_row`` to ``relation``, whose rows have the reader's ``parsed_row``.

    ``skipped_<source>`` holds the numbers of the records that were not parsed (blank, unparsed);
    a parsed row k sits after every skipped record r_j (sorted, j = 1..) with r_j - j < k, so its
    number is k + that count.
    """
    return f"""
        WITH gaps AS (
            SELECT source_row - row_number() OVER (ORDER BY source_row) AS parsed_before,
                   row_number() OVER (ORDER BY source_row) AS skipped_so_far
            FROM skipped_{source.name}
        ), steps AS (
            SELECT parsed_before, max(skipped_so_far) AS skipped_so_far FROM gaps GROUP BY ALL
        )
        SELECT r.parsed_row + coalesce(steps.skipped_so_far, 0) AS source_row, r.*
        FROM ({relation}) r ASOF LEFT JOIN steps ON r.parsed_row > steps.parsed_before
    """


def drop_csv_rejects(con, source: Source) -> None:
    """Drop the tables DuckDB's CSV reader wrote the rejected lines of ``source`` to."""
    con.execute(f"DROP TABLE IF EXISTS csv_rejects_{source.name}")
    con.execute(f"DROP TABLE IF EXISTS csv_rejects_{source.name}_scan")


def _no_skipped_records(con, source: Source) -> None:
    """JSONL and Parquet rows are numbered by the reader itself: ``parsed_row`` is ``source_row``."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE skipped_{source.name} (source_row BIGINT)")


def _read_csv(con, source: Source, path: Path) -> int:
    layout = _csv_layout(path)
    present = _csv_header(path, layout.header)
    matched = _match_columns(source, path, present)
    if layout.needs_copy:
        with tempfile.NamedTemporaryFile(prefix=f"{source.name}_", suffix=".csv") as copy:
            _write_clean_copy(path, layout, copy)
            copy.flush()
            _parse_csv(con, source, Path(copy.name), len(present))
    else:
        _parse_csv(con, source, path, len(present))
    unparsed, skipped = f"unparsed_{source.name}", f"skipped_{source.name}"
    con.register("blank_records", pyarrow.table({"source_row": layout.blank}))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {skipped} AS SELECT source_row FROM blank_records")
    finally:
        con.unregister("blank_records")
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {unparsed} AS
        SELECT line - 1 AS source_row,
               CASE first(error_type ORDER BY column_idx)
                   WHEN 'INVALID ENCODING' THEN '{INVALID_UTF8}'
                   WHEN 'TOO MANY COLUMNS' THEN 'ragged row: ' || first(error_message)
                   WHEN 'MISSING COLUMNS' THEN 'ragged row: ' || first(error_message)
                   ELSE 'unparseable row: ' || lower(first(error_type)) || ': ' || first(error_message)
               END AS reason,
               to_json(ltrim(first(csv_line), e'\\r\\n')) AS record
        FROM csv_rejects_{source.name}
        WHERE line - 1 NOT IN (SELECT source_row FROM {skipped})
        GROUP BY line
        """
    )
    if layout.malformed:
        con.executemany(
            f"INSERT INTO {unparsed} VALUES (?, ?, to_json(?::VARCHAR))",
            [[row, MALFORMED_CR, raw.decode("utf-8", "replace")] for row, raw in layout.malformed],
        )
    con.execute(f"INSERT INTO {skipped} SELECT source_row FROM {unparsed}")
    positional = {name: f"c{i}" for i, name in enumerate(present)}
    record = "json_object(" + ", ".join(f"{sql_literal(n)}, c{i}" for i, n in enumerate(present)) + ")"
    _raw_views(
        con,
        source,
        f"SELECT rowid + 1 AS parsed_row, * FROM parsed_{source.name}",
        f"{_text_columns(matched, positional.get)}, NULL::VARCHAR AS read_reason, {record}::VARCHAR AS record",
    )
    return layout.data_records


def _parse_csv(con, source: Source, path: Path, cells: int) -> None:
    types = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(cells)) + "}"
    rejects = f"csv_rejects_{source.name}"
    drop_csv_rejects(con, source)  # DuckDB appends to existing rejects tables
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE parsed_{source.name} AS
        SELECT * FROM read_csv({sql_literal(str(path))}, columns={types}, header=true, auto_detect=false,
                      delim=',', quote='"', escape='"', strict_mode=true,
                      store_rejects=true, rejects_table='{rejects}', rejects_scan='{rejects}_scan',
                      max_line_size={MAX_LINE_BYTES}, buffer_size={2 * MAX_LINE_BYTES})
        """
    )


# --- JSON Lines ----------------------------------------------------------------------------------

# Lenient JSON DuckDB accepts and strict JSON does not: a value NaN/Infinity, a trailing comma.
_MAYBE_LENIENT = r"[:,\[][ \t\r\n]*[+-]?(?i:nan|inf)|,[ \t\r\n]*[\]}]"
_STRINGS_AND_WORDS = r'"(?:[^"\\]|\\.)*"|true|false|null'
_LENIENT = r",[ \t\r\n]*[\]}]|[^ \t\r\n{}\[\]:,0-9eE+.\-]"
_JSON_TYPE_WORDS = {"OBJECT": "an object", "ARRAY": "an array", "BOOLEAN": "a boolean"}


@contextmanager
def _jsonl_lines(path: Path) -> Iterator[tuple[pyarrow.Table, int]]:
    """The file's lines, split at LF only, as (source_row, bytes); and its line count by ``count``.

    The bytes are those of a memory map of the file (no copy), valid inside the block; each line
    keeps its LF (Arrow offsets are contiguous), which SQL trims.
    """
    with _open_regular(path) as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            yield pyarrow.table({"source_row": pyarrow.array([], pyarrow.int64()),
                                 "bytes": pyarrow.array([], pyarrow.large_binary())}), 0
            return
        mm = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    try:
        buf = np.frombuffer(mm, np.uint8)
        scratch = np.empty(min(_WINDOW_BYTES, len(buf)), bool)
        lfs = [_NO_OFFSETS]
        for at in range(0, len(buf), _WINDOW_BYTES):
            window = buf[at : at + _WINDOW_BYTES]
            lfs.append(np.flatnonzero(np.equal(window, _LF, out=scratch[: len(window)])) + at)
        ends = np.concatenate(lfs).astype(np.int64) + 1
        if mm[len(mm) - 1] != _LF:
            ends = np.append(ends, len(mm))
        first = len(_BOM) if mm[: len(_BOM)] == _BOM else 0
        offsets = np.concatenate([[first], ends]).astype(np.int64)
        counted = sum(mm[at : at + _CHUNK_BYTES].count(b"\n") for at in range(0, len(mm), _CHUNK_BYTES))
        counted += mm[len(mm) - 1] != _LF
        lines = pyarrow.Array.from_buffers(
            pyarrow.large_binary(), len(ends), [None, pyarrow.py_buffer(offsets), pyarrow.py_buffer(mm)]
        )
        del buf, scratch, window
        yield pyarrow.table({"source_row": np.arange(1, len(ends) + 1, dtype=np.int64), "bytes": lines}), counted
    finally:
        lines = None
        with suppress(BufferError):  # views still held by a traceback: closed when collected
            mm.close()


def _read_jsonl(con, source: Source, path: Path) -> int:
    with _jsonl_lines(path) as (lines, physical_lines):
        if len(lines) != physical_lines:
            raise SourceFileError(f"{path}: {physical_lines} lines counted but {len(lines)} split")
        _classify_jsonl(con, source, lines)
        del lines
    return _jsonl_fields(con, source, path, physical_lines)


def _classify_jsonl(con, source: Source, lines: pyarrow.Table) -> None:
    """``classified_<source>``: every line decoded, with the field names of a sound JSON object or
    the ``problem`` that makes it blank or rejected."""
    name, arrow = source.name, f"jsonl_lines_{source.name}"
    duplicated = "list_filter(list_distinct(keys), lambda k: len(list_filter(keys, lambda x: x = k)) > 1)[1]"
    con.register(arrow, lines)
    try:
        # One pass: decode, classify, and keep the field names of every sound object.
        con.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE classified_{name} AS
            SELECT source_row, line, undecoded, keys,
                   CASE WHEN line IS NULL THEN '{INVALID_UTF8}'
                        WHEN regexp_full_match(line, '[ \t\r]*') THEN 'blank'
                        WHEN keys IS NULL THEN '{NOT_AN_OBJECT}'
                        WHEN regexp_matches(line, {sql_literal(_MAYBE_LENIENT)})
                             AND regexp_matches(regexp_replace(line, {sql_literal(_STRINGS_AND_WORDS)}, '0', 'g'),
                                                {sql_literal(_LENIENT)})
                            THEN '{NOT_STRICT_JSON}'
                        WHEN len(keys) <> len(list_distinct(keys))
                            THEN 'ambiguous JSON object: field ' || {duplicated} || ' appears more than once'
                   END AS problem
            FROM (
                SELECT source_row, line,
                       CASE WHEN line IS NULL THEN regexp_replace(bytes::VARCHAR, '\\\\x0A$', '') END AS undecoded,
                       CASE WHEN json_valid(line) AND json_type(line) = 'OBJECT' THEN json_keys(line) END AS keys
                FROM (SELECT source_row, bytes, rtrim(try(decode(bytes)), e'\\n') AS line FROM {arrow})
            )
            """
        )
    finally:
        con.unregister(arrow)


def _jsonl_fields(con, source: Source, path: Path, physical_lines: int) -> int:
    """``unparsed_<source>`` and the raw views over the sound objects of ``classified_<source>``."""
    name = source.name
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE unparsed_{name} AS
        SELECT source_row, problem AS reason, to_json(coalesce(line, undecoded)) AS record
        FROM classified_{name} WHERE problem <> 'blank'
        """
    )
    (blank,) = con.execute(f"SELECT count(*) FROM classified_{name} WHERE problem = 'blank'").fetchone()
    con.execute(f"DELETE FROM classified_{name} WHERE problem IS NOT NULL")
    present = {k for (k,) in con.execute(f"SELECT DISTINCT unnest(keys) FROM classified_{name}").fetchall()}
    (objects,) = con.execute(f"SELECT count(*) FROM classified_{name}").fetchone()
    if not objects:  # no sound object at all: no field is missing
        present = {c.name for c in source.columns}
    matched = _match_columns(source, path, [c.name for c in source.columns if c.name in present], exact=True)
    fields = [c for c in source.columns if matched[c.name]]
    values = {c.name: f"v[{i}]" for i, c in enumerate(fields, start=1)}
    paths = "[" + ", ".join(sql_literal("$." + sql_identifier(c.name)) for c in fields) + "]"

    def text(col: Column) -> str:
        value = values.get(col.name)
        if value is None:
            return f"NULL::VARCHAR AS {sql_identifier(col.name)}"
        if col.sql_type == "VARCHAR[]":
            return f"{value}::VARCHAR AS {sql_identifier(col.name)}"
        return f"CASE WHEN json_type({value}) = 'VARCHAR' THEN {value} ->> '$' END AS {sql_identifier(col.name)}"

    def type_error(col: Column) -> str:
        value = values[col.name]
        kind = " ".join(f"WHEN '{t}' THEN '{w}'" for t, w in _JSON_TYPE_WORDS.items())
        return (
            f"CASE WHEN json_type({value}) NOT IN ('VARCHAR', 'NULL') THEN "
            f"format('{col.name}: expected a JSON string, got {{}} ({{}})', "
            f"CASE json_type({value}) {kind} ELSE 'a number' END, left({value}::VARCHAR, 60)) END"
        )

    checks = ", ".join(type_error(c) for c in fields if c.sql_type != "VARCHAR[]") or "NULL"
    _raw_views(
        con,
        source,
        f"SELECT source_row AS parsed_row, line, json_extract(line, {paths}) AS v FROM classified_{name}",
        f"{', '.join(text(c) for c in source.columns)}, nullif(concat_ws('; ', {checks}), '') AS read_reason, "
        "line AS record",
    )
    _no_skipped_records(con, source)
    return physical_lines - blank


# --- Parquet -------------------------------------------------------------------------------------

_NUMERIC = re.compile(r"(U?(TINY|SMALL|BIG|HUGE)?INT(EGER)?|FLOAT|DOUBLE|REAL|DECIMAL\(\d+,\d+\))")
_TIMESTAMP = re.compile(r"TIMESTAMP(_S|_MS|_NS)?|TIMESTAMP WITH TIME ZONE|DATE")
_EXPECTED = {
    "VARCHAR": "text",
    "DATE": "a date or text",
    "TIMESTAMPTZ": "a timestamp, a date or text",
    "DOUBLE": "a number or text",
    "INTEGER": "a number or text",
    "VARCHAR[]": "a list of strings",
}


def _parquet_accepts(col: Column, file_type: str) -> bool:
    if col.sql_type == "VARCHAR[]":
        return file_type == "VARCHAR[]"
    if file_type in ("VARCHAR", "BLOB"):
        return True
    if col.sql_type == "DATE":
        return file_type == "DATE"
    if col.sql_type == "TIMESTAMPTZ":
        return bool(_TIMESTAMP.fullmatch(file_type))
    if col.sql_type in ("DOUBLE", "INTEGER"):
        return bool(_NUMERIC.fullmatch(file_type))
    return False


def _parquet_as_bytes(con, source: Source, path: Path) -> str:
    """The Parquet file read by pyarrow, its string columns cast to bytes (no UTF-8 check), as a
    registered relation with ``file_row_number`` like DuckDB's reader."""
    table = pyarrow.parquet.read_table(path)
    fields = [
        pyarrow.field(f.name, pyarrow.binary() if pyarrow.types.is_string(f.type) else
                      pyarrow.large_binary() if pyarrow.types.is_large_string(f.type) else f.type)
        for f in table.schema
    ]
    table = table.cast(pyarrow.schema(fields)).append_column(
        "file_row_number", pyarrow.array(np.arange(table.num_rows, dtype=np.int64))
    )
    con.register(f"parquet_bytes_{source.name}", table)
    return f"parquet_bytes_{source.name}"


_COPY_ROWS_PER_GROUP = 250_000  # below this, validating in place is as fast as copying first


def _few_big_row_groups(con, path: Path) -> bool:
    """Fewer row groups than threads, and big enough that validation outweighs a copy."""
    groups, rows = con.execute(
        f"SELECT count(DISTINCT row_group_id), coalesce(max(row_group_num_rows), 0) "
        f"FROM parquet_metadata({sql_literal(str(path))})"
    ).fetchone()
    threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])
    return groups < threads and rows >= _COPY_ROWS_PER_GROUP


def _read_parquet(con, source: Source, path: Path, strings_as_bytes: bool) -> int:
    require_regular_file(path)
    scan = (
        _parquet_as_bytes(con, source, path)
        if strings_as_bytes
        else f"read_parquet({sql_literal(str(path))}, file_row_number=true)"
    )
    described = con.execute(f"DESCRIBE SELECT * EXCLUDE (file_row_number) FROM {scan}").fetchall()
    present = [row[0] for row in described]
    types = {row[0]: row[1] for row in described}
    matched = _match_columns(source, path, present)
    for col in source.columns:
        file_col = matched[col.name]
        if file_col and not _parquet_accepts(col, types[file_col]):
            raise SourceFileError(
                f"{path}: column {file_col} is {types[file_col]}, expected {_EXPECTED[col.sql_type]}"
            )

    def cell(file_col: str) -> str:
        ident, file_type = sql_identifier(file_col), types[file_col]
        if file_type.endswith("[]"):
            return f"to_json({ident})::VARCHAR"
        if file_type == "BLOB":
            return f"try(decode({ident}))"
        if file_type == "TIMESTAMP WITH TIME ZONE":
            return f"timezone('UTC', {ident})::VARCHAR"
        return f"{ident}::VARCHAR"

    undecodable = [
        f"CASE WHEN {sql_identifier(f)} IS NOT NULL AND try(decode({sql_identifier(f)})) IS NULL "
        f"THEN {sql_literal(f + ': ' + INVALID_UTF8)} END"
        for f in matched.values()
        if f and types[f] == "BLOB"
    ]
    read_reason = f"nullif(concat_ws('; ', {', '.join(undecodable)}), '')" if undecodable else "NULL::VARCHAR"
    record = "to_json(struct_pack(" + ", ".join(f"{sql_identifier(c)} := {sql_identifier(c)}" for c in present) + "))"
    base = f"SELECT file_row_number + 1 AS parsed_row, * EXCLUDE (file_row_number) FROM {scan}"
    if not strings_as_bytes and _few_big_row_groups(con, path):
        # DuckDB reads a row group on one thread, and runs all that is above it on that thread:
        # a copy (a quick scan) lets validation use every thread.
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE parsed_{source.name} AS {base}")
        except duckdb.InvalidInputException as exc:
            if not is_invalid_parquet_text(exc):
                raise
            return _read_parquet(con, source, path, strings_as_bytes=True)
        base = f"FROM parsed_{source.name}"
    _raw_views(
        con,
        source,
        base,
        f"{_text_columns(matched, cell)}, {read_reason} AS read_reason, {record}::VARCHAR AS record",
    )
    _empty_unparsed(con, source)
    _no_skipped_records(con, source)
    (rows,) = con.execute(
        f"SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata({sql_literal(str(path))})"
    ).fetchone()
    return int(rows)
