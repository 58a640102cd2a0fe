"""Reading source files: exact records and row numbers, strict JSON, typed Parquet, files that are not files."""

import json
import os
import threading

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from referral_pipeline.lib import sources
from referral_pipeline.lib.sources import SOURCES_BY_NAME, SourceFileError, content_fingerprint, read_raw
from referral_pipeline_tests.fixtures import stage, write_bytes

ACCOUNTS_HEADER = "account_id,account_name,account_tier,lifecycle_stage"
QBR = {"account_id": "A1", "held_on": "2025-04-03", "format": "virtual", "status": "completed"}


def staged(con, table: str, column: str) -> list:
    return [row[0] for row in con.execute(f"SELECT {column} FROM staging.{table} ORDER BY 1").fetchall()]


def quarantine(con, name: str) -> list[tuple]:
    return con.execute(
        "SELECT source_row, record_key, reason FROM quarantine.rejected_rows WHERE source = ? ORDER BY 1",
        [name],
    ).fetchall()


def qbr_line(qbr_id: str, **fields) -> str:
    return json.dumps({"qbr_id": qbr_id, **QBR, **fields})


# --- CSV records ---------------------------------------------------------------------------------


def test_bare_cr_in_an_unquoted_cell_quarantines_that_row_only(con, tmp_path):
    """RFC 4180 allows CR only inside quotes or before LF: a bare CR elsewhere is a malformed row."""
    content = (
        f"{ACCOUNTS_HEADER}\n"
        "A1,Acme,smb,adoption\n"
        "A2,Acme\rCorp,smb,adoption\n"
        'A3,"Quoted\rCR",smb,adoption\n'
        "A4,Last,smb,adoption\r"  # a CR ending the file is a line end
    ).encode()
    write_bytes(tmp_path, "crm/accounts.csv", content)
    result = stage(con, tmp_path, "accounts")
    assert (result.input_rows, result.staged_rows, result.quarantined_rows) == (4, 3, 1)
    assert staged(con, "accounts", "account_name") == ["Acme", "Last", "Quoted\rCR"]
    assert quarantine(con, "accounts") == [
        (2, None, "malformed CSV row: carriage return (CR) outside quotes not followed by a line feed")
    ]
    (record,) = con.execute("SELECT record FROM quarantine.rejected_rows").fetchone()
    assert json.loads(record) == "A2,Acme\rCorp,smb,adoption"


def test_mixed_line_ends_and_stray_quotes_are_read_as_written(con, tmp_path):
    content = (
        f"{ACCOUNTS_HEADER}\r\n"
        'A1,"27"" screen",smb,adoption\n'
        'A2,5" screen,smb,adoption\r\n'  # a quote inside an unquoted cell is a character
        'A3,"multi\r\nline",smb,adoption\n'
        "A4,d,smb,adoption\r\n"
    ).encode()
    write_bytes(tmp_path, "crm/accounts.csv", content)
    result = stage(con, tmp_path, "accounts")
    assert (result.input_rows, result.staged_rows) == (4, 4)
    assert staged(con, "accounts", "account_name") == ['27" screen', '5" screen', "d", "multi\r\nline"]


def test_source_row_is_the_record_number_blank_lines_included(con, tmp_path):
    """Blank and spaces-only lines are skipped but keep their number, as JSONL lines do."""
    lines = [
        ACCOUNTS_HEADER,
        "A1,a,smb,adoption",  # 1
        "",  # 2: blank
        "A2,a,smb,adoption",  # 3
        "  \t ",  # 4: spaces only
        "A9,ragged",  # 5
        "A3,a,tin,adoption",  # 6: bad tier
        'A4,"two\nlines",smb,adoption',  # 7
        "A5,a,smb,unknown",  # 8
        "",
    ]
    write_bytes(tmp_path, "crm/accounts.csv", "\n".join(lines).encode())
    result = stage(con, tmp_path, "accounts")
    assert (result.input_rows, result.staged_rows) == (6, 3)
    assert [(row, reason.split(":")[0]) for row, _, reason in quarantine(con, "accounts")] == [
        (5, "ragged row"), (6, "account_tier"), (8, "lifecycle_stage")
    ]


def test_the_record_count_is_checked_independently_of_the_reader(con, tmp_path, monkeypatch):
    write_bytes(tmp_path, "crm/accounts.csv", f"{ACCOUNTS_HEADER}\nA1,a,smb,adoption\nA2,b,smb,adoption\n".encode())
    real = sources._csv_layout

    def one_more(path):
        layout = real(path)
        return layout._replace(records=layout.records + 1)

    monkeypatch.setattr(sources, "_csv_layout", one_more)
    with pytest.raises(SourceFileError, match=r"accounts\.csv: the file has 3 data records but 2 were read"):
        stage(con, tmp_path, "accounts")


def test_read_raw_reports_the_independent_record_count(con, tmp_path):
    path = write_bytes(tmp_path, "crm/accounts.csv", f'{ACCOUNTS_HEADER}\n\nA1,"x\ny",smb,adoption\nA2\n'.encode())
    assert read_raw(con, SOURCES_BY_NAME["accounts"], path) == 2


# --- JSON Lines ----------------------------------------------------------------------------------


def test_jsonl_lines_end_only_at_lf(con, tmp_path):
    lines = [
        '{"qbr_id": "Q1",\r "account_id": "A1", "held_on": "2025-04-03", "format": "virtual", "status": "completed"}',
        qbr_line("Q2") + "\r",  # CRLF line end
        qbr_line("Q3")[:-1] + ', "notes": "cut\x1fhere"}',  # a raw control byte in a string: not JSON
        "   \t",
        qbr_line("Q4"),
    ]
    write_bytes(tmp_path, "qbr/notes.jsonl", "\n".join(lines).encode())
    result = stage(con, tmp_path, "qbr_notes")
    assert (result.input_rows, result.staged_rows) == (4, 3)
    assert staged(con, "qbr_notes", "qbr_id") == ["Q1", "Q2", "Q4"]
    assert quarantine(con, "qbr_notes") == [(3, None, "line is not a JSON object")]


def test_jsonl_is_parsed_strictly(con, tmp_path):
    lines = [
        qbr_line("Q1")[:-1] + ",}",  # trailing comma
        qbr_line("Q2", tags=["a"])[:-2] + ",]}",  # trailing comma in a list
        qbr_line("Q3")[:-1] + ', "score": NaN}',
        qbr_line("Q4")[:-1] + ', "x": -Infinity}',
        qbr_line("Q5", notes="NaN, Infinity, [1,] and {a,} inside text are fine"),
        '{"qbr_id": "Q6", "qbr_id": "Q7", "account_id": "A1", "held_on": "2025-04-03", "format": "virtual", "status": "completed"}',
        "[]",
    ]
    write_bytes(tmp_path, "qbr/notes.jsonl", "\n".join(lines).encode())
    stage(con, tmp_path, "qbr_notes")
    assert staged(con, "qbr_notes", "qbr_id") == ["Q5"]
    not_strict = "line is not a JSON object: not strict JSON (a trailing comma, NaN or Infinity)"
    assert quarantine(con, "qbr_notes") == [
        (1, None, not_strict),
        (2, None, not_strict),
        (3, None, not_strict),
        (4, None, not_strict),
        (6, None, "ambiguous JSON object: field qbr_id appears more than once"),
        (7, None, "line is not a JSON object"),
    ]


def test_jsonl_fields_are_type_checked(con, tmp_path):
    lines = [
        qbr_line("Q1", account_id={"id": "A01"}),
        qbr_line("Q2", account_id=["A01"]),
        qbr_line("Q3", account_id=123),
        qbr_line("Q4", csm=True),
        qbr_line("Q5", held_on=20250403),
        qbr_line("Q6", notes=None, csm=None, tags=None),
        qbr_line("Q7", tags=["ok", 1]),
    ]
    write_bytes(tmp_path, "qbr/notes.jsonl", "\n".join(lines).encode())
    stage(con, tmp_path, "qbr_notes")
    assert staged(con, "qbr_notes", "qbr_id") == ["Q6"]
    assert quarantine(con, "qbr_notes") == [
        (1, "Q1", 'account_id: expected a JSON string, got an object ({"id":"A01"})'),
        (2, "Q2", 'account_id: expected a JSON string, got an array (["A01"])'),
        (3, "Q3", "account_id: expected a JSON string, got a number (123)"),
        (4, "Q4", "csm: expected a JSON string, got a boolean (true)"),
        (5, "Q5", "held_on: expected a JSON string, got a number (20250403)"),
        (7, "Q7", "tags: '[\"ok\",1]' is not a valid list of strings"),
    ]


def test_jsonl_invalid_utf8_and_byte_order_mark(con, tmp_path):
    latin1 = qbr_line("Q2", csm="cafX").encode().replace(b"cafX", b"caf\xe9")
    content = b"\xef\xbb\xbf" + qbr_line("Q1").encode() + b"\n" + latin1 + b"\n"
    write_bytes(tmp_path, "qbr/notes.jsonl", content)
    stage(con, tmp_path, "qbr_notes")
    assert staged(con, "qbr_notes", "qbr_id") == ["Q1"]
    assert quarantine(con, "qbr_notes") == [(2, None, "invalid UTF-8 bytes")]


# --- Parquet -------------------------------------------------------------------------------------


def test_parquet_column_of_the_wrong_type_names_file_and_column(con, tmp_path):
    path = tmp_path / "qbr" / "notes.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"qbr_id": ["Q1"], "account_id": ["A1"], "held_on": ["2025-04-03"],
                             "format": ["virtual"], "status": ["completed"], "tags": ["referral_intent"]}), path)
    with pytest.raises(SourceFileError, match=r"notes\.parquet: column tags is VARCHAR, expected a list of strings"):
        stage(con, tmp_path, "qbr_notes")


def test_parquet_binary_that_is_not_utf8_is_a_quarantined_row(con, tmp_path):
    path = tmp_path / "crm" / "partners.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({
        "partner_id": pa.array([b"P1", b"P\xe9"], pa.binary()), "partner_name": ["a", "b"],
        "partner_type": ["agency", "agency"], "partner_tier": ["gold", "gold"],
    }), path)
    result = stage(con, tmp_path, "partners")
    assert (result.input_rows, result.staged_rows) == (2, 1)
    assert staged(con, "partners", "partner_id") == ["P1"]
    assert quarantine(con, "partners") == [(2, None, "partner_id: invalid UTF-8 bytes")]


# --- files that are not regular files ------------------------------------------------------------


def test_a_fifo_is_refused_without_being_opened(tmp_path):
    fifo = tmp_path / "crm" / "partners.csv"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    outcome = {}

    def attempt():
        try:
            SOURCES_BY_NAME["partners"].locate(tmp_path)
        except SourceFileError as exc:
            outcome["error"] = str(exc)
        try:
            content_fingerprint(fifo)
        except SourceFileError as exc:
            outcome["fingerprint"] = str(exc)

    worker = threading.Thread(target=attempt, daemon=True)
    worker.start()
    worker.join(timeout=10)
    if worker.is_alive():  # unblock the thread stuck opening the FIFO, then fail
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("reading a FIFO blocked")
    assert outcome["error"] == f"{fifo}: not a regular file (a FIFO); a source must be a regular file"
    assert outcome["fingerprint"] == outcome["error"]


def test_a_directory_in_place_of_a_file_is_refused(tmp_path):
    (tmp_path / "crm" / "partners.csv").mkdir(parents=True)
    with pytest.raises(SourceFileError, match=r"partners\.csv: not a regular file \(a directory\)"):
        SOURCES_BY_NAME["partners"].locate(tmp_path)


@pytest.mark.parametrize("copied", [False, True], ids=["read in place", "copied for parallel validation"])
def test_parquet_strings_that_are_not_utf8_are_quarantined_rows(con, tmp_path, monkeypatch, copied):
    con.execute("SET threads = 2")
    monkeypatch.setattr(sources, "_COPY_ROWS_PER_GROUP", 1 if copied else 10**9)
    path = tmp_path / "crm" / "partners.parquet"
    path.parent.mkdir(parents=True)
    offsets = pa.py_buffer(bytes([0, 0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0]))
    not_utf8 = pa.Array.from_buffers(pa.string(), 2, [None, offsets, pa.py_buffer(b"P1P\xe9")])
    pq.write_table(pa.table({"partner_id": not_utf8, "partner_name": ["a", "b"], "partner_type": ["agency"] * 2,
                             "partner_tier": ["gold"] * 2}), path)
    result = stage(con, tmp_path, "partners")
    assert (result.input_rows, result.staged_rows) == (2, 1)
    assert quarantine(con, "partners") == [(2, None, "partner_id: invalid UTF-8 bytes")]


def test_restaging_on_one_connection_forgets_the_last_files_rejects(con, tmp_path):
    write_bytes(tmp_path, "crm/accounts.csv", f"{ACCOUNTS_HEADER}\nA1,a,smb,adoption\nA2,ragged\n".encode())
    assert stage(con, tmp_path, "accounts").quarantined_rows == 1
    write_bytes(tmp_path, "crm/accounts.csv", f"{ACCOUNTS_HEADER}\nA1,a,smb,adoption\nA2,b,smb,adoption\n".encode())
    result = stage(con, tmp_path, "accounts")
    assert (result.input_rows, result.staged_rows, result.quarantined_rows) == (2, 2, 0)
