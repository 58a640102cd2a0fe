"""Reading and validating sources: every input row staged or quarantined, with its reason."""

import json
import os

import pandas as pd
import pytest

from referral_pipeline.lib.sources import SOURCES_BY_NAME, SourceFileError
from referral_pipeline_tests.fixtures import stage, write_bytes

OPP_HEADER = (
    "opportunity_id,account_id,owner,stage,amount,created_at,closed_at,lead_source,"
    "referral_source_type,referrer_id,vertical"
)


def quarantine(con, name: str) -> list[tuple]:
    return con.execute(
        "SELECT source_row, record_key, reason FROM quarantine.rejected_rows WHERE source = ? "
        "ORDER BY source_row",
        [name],
    ).fetchall()


def test_spreadsheet_csv_is_read_as_written(con, tmp_path):
    """BOM, CRLF, columns in another order, extra columns, quoted commas, quotes and line breaks."""
    content = (
        "\ufeffstage,opportunity_id,crm_extra,account_id,owner,amount,created_at,closed_at,lead_source,"
        "referral_source_type,referrer_id,vertical\r\n"
        ' Closed_Won ,O1,x,A1,"Lee, Sam",12.50,2025-04-01T01:00:00+02:00,2025-05-01,REFERRAL,Customer,A2,"multi\r\nline ""q"""\r\n'
        "prospecting,O2,,A1,NA,,2025-04-02,,inbound,,,null\r\n"
    ).encode()
    write_bytes(tmp_path, "crm/opportunities.csv", content)
    result = stage(con, tmp_path, "opportunities")
    assert (result.input_rows, result.staged_rows, result.quarantined_rows) == (2, 2, 0)
    rows = con.execute(
        "SELECT opportunity_id, stage, owner, amount, created_at::VARCHAR, closed_at::VARCHAR, "
        "lead_source, referral_source_type, vertical FROM staging.opportunities ORDER BY 1"
    ).fetchall()
    assert rows == [
        ("O1", "closed_won", "Lee, Sam", 12.5, "2025-03-31 23:00:00+00", "2025-05-01 00:00:00+00",
         "referral", "customer", 'multi\r\nline "q"'),
        ("O2", "prospecting", "NA", None, "2025-04-02 00:00:00+00", None, "inbound", None, "null"),
    ]


def test_each_broken_rule_is_quarantined_with_its_reason(con, tmp_path):
    lines = [
        "O1,A1,,closed_won,10,2025-04-01,,referral,,,",  # closed without closed_at
        "O2,A1,,prospecting,10,2025-04-01,2025-04-02,referral,,,",  # open with closed_at
        "O3,A1,,closed_lost,10,2025-04-02,2025-04-01,referral,,,",  # closed before created
        "O4,A1,,proposal,-1,2025-04-01,,referral,,,",  # negative amount
        "O5,A1,,won,10,2025-04-01,,referral,,,",  # unknown stage
        "O6,A1,,proposal,10,yesterday,,referral,,,",  # bad timestamp
        "O7,A1,,proposal,10,2025-04-01,,referral,,X1,",  # referrer without type
        "O8,A1,,proposal,10,2025-04-01,,referral,customer,,",  # type without referrer
        ",A1,,proposal,10,2025-04-01,,referral,,,",  # no key
        "O10,A1,,proposal,10,2025-04-01,,,,,",  # lead_source missing
        "O11,A1,,proposal,10,2025-04-01,,referral,,,",  # valid
    ]
    write_bytes(tmp_path, "crm/opportunities.csv", ("\n".join([OPP_HEADER, *lines]) + "\n").encode())
    result = stage(con, tmp_path, "opportunities")
    assert (result.staged_rows, result.quarantined_rows) == (1, 10)
    reasons = {row: reason for row, _, reason in quarantine(con, "opportunities")}
    assert reasons[1] == reasons[2] == "closed_at: required exactly when stage is closed_won or closed_lost"
    assert reasons[3] == "closed_at: before created_at"
    assert reasons[4] == "amount: -1.0 is below 0"
    assert reasons[5].startswith("stage: 'won' is not one of prospecting")
    assert reasons[6] == "created_at: 'yesterday' is not a valid ISO 8601 timestamp"
    assert reasons[7] == reasons[8] == "referrer_id: required exactly when referral_source_type is set"
    assert reasons[9] == "opportunity_id: required value missing"
    assert reasons[10] == "lead_source: required value missing"


def test_duplicates_identical_keep_first_and_conflicting_lose_all(con, tmp_path):
    lines = [
        "O1,A1,,proposal,10,2025-04-01T00:00:00Z,,referral,,,",
        "O2,A1,,proposal,10,2025-04-01,,referral,,,",
        " O1 ,A1,,Proposal,10.0,2025-04-01T02:00:00+02:00,,referral,,,",  # same after normalising
        "O2,A1,,proposal,20,2025-04-01,,referral,,,",  # differs
        "O1,A1,,proposal,10,2025-04-01,,referral,,,",
    ]
    write_bytes(tmp_path, "crm/opportunities.csv", ("\n".join([OPP_HEADER, *lines]) + "\n").encode())
    stage(con, tmp_path, "opportunities")
    assert con.execute("SELECT opportunity_id FROM staging.opportunities").fetchall() == [("O1",)]
    assert quarantine(con, "opportunities") == [
        (2, "O2", "conflicting duplicate"),
        (3, "O1", "duplicate"),
        (4, "O2", "conflicting duplicate"),
        (5, "O1", "duplicate"),
    ]


def test_ragged_rows_and_bad_bytes_are_rows_not_fatal(con, tmp_path):
    content = (
        OPP_HEADER + "\n"
        "O1,A1,,proposal,10,2025-04-01,,referral,,,\n"
        "O2,A1,,proposal,10\n"
        '"O3\nstill O3",A1,,proposal,10,2025-04-01,,referral,,,\n'
        "O4,A1,,proposal,10,2025-04-01,,referral,,,,extra\n"
    ).encode() + b"O5,A1,caf\xe9,proposal,10,2025-04-01,,referral,,,\n" + (
        "O6,A1,,proposal,10,2025-04-01,,referral,,,\n"
    ).encode()
    write_bytes(tmp_path, "crm/opportunities.csv", content)
    result = stage(con, tmp_path, "opportunities")
    assert (result.input_rows, result.staged_rows, result.quarantined_rows) == (6, 3, 3)
    staged = con.execute("SELECT opportunity_id FROM staging.opportunities ORDER BY 1").fetchall()
    assert staged == [("O1",), ("O3\nstill O3",), ("O6",)]
    rejects = quarantine(con, "opportunities")
    assert [(row, reason.split(":")[0]) for row, _, reason in rejects] == [
        (2, "ragged row"), (4, "ragged row"), (5, "invalid UTF-8 bytes")
    ]
    records = con.execute("SELECT record FROM quarantine.rejected_rows ORDER BY source_row").fetchall()
    assert json.loads(records[0][0]) == "O2,A1,,proposal,10"


def test_jsonl_lines_blank_broken_and_tags(con, tmp_path):
    lines = [
        '{"qbr_id": "Q1", "account_id": "A1", "held_on": "2025-04-03", "format": "Virtual", '
        '"status": "completed", "tags": [" Referral_Intent "], "notes": "Happy to refer \\u2764"}',
        "",
        "[1, 2]",
        '{"qbr_id": "Q2", "account_id": "A1", "held_on": "2025-04-03", "format": "virtual", "status": "completed"}',
        '{"qbr_id": "Q3", "account_id": "A1", "held_on": "2025-04-03", "format": "virtual", '
        '"status": "completed", "tags": "referral_intent"}',
        "not json at all",
        '{"qbr_id": "Q4", "account_id": "A1", "held_on": "2025-04-03", "format": "virtual", '
        '"status": "completed", "tags": null}',
    ]
    write_bytes(tmp_path, "qbr/notes.jsonl", ("\n".join(lines) + "\n").encode())
    result = stage(con, tmp_path, "qbr_notes")
    assert (result.input_rows, result.staged_rows) == (6, 3)
    assert con.execute("SELECT qbr_id, tags, notes FROM staging.qbr_notes ORDER BY 1").fetchall() == [
        ("Q1", [" Referral_Intent "], "Happy to refer \u2764"),
        ("Q2", [], None),
        ("Q4", [], None),
    ]
    assert quarantine(con, "qbr_notes") == [
        (3, None, "line is not a JSON object"),
        (5, "Q3", "tags: '\"referral_intent\"' is not a valid list of strings"),
        (6, None, "line is not a JSON object"),
    ]


def test_parquet_source_is_read_like_csv(con, tmp_path):
    path = tmp_path / "crm" / "partners.parquet"
    path.parent.mkdir(parents=True)
    pd.DataFrame(
        {"partner_tier": ["Gold", "tin"], "partner_id": ["P1", "P2"], "partner_name": ["a", "b"],
         "partner_type": ["advisor", "agency"]}
    ).to_parquet(path)
    stage(con, tmp_path, "partners")
    assert con.execute("SELECT * FROM staging.partners").fetchall() == [("P1", "a", "advisor", "gold")]
    assert quarantine(con, "partners")[0][:2] == (2, "P2")


def test_csv_and_parquet_of_one_source_is_an_error(tmp_path):
    write_bytes(tmp_path, "crm/partners.csv", b"partner_id\n")
    write_bytes(tmp_path, "crm/partners.parquet", b"")
    with pytest.raises(SourceFileError, match="partners.csv and .*partners.parquet both exist"):
        SOURCES_BY_NAME["partners"].locate(tmp_path)


def test_missing_file_and_missing_column_name_the_file_and_column(con, tmp_path):
    with pytest.raises(SourceFileError, match=r"crm/partners\.csv: file not found"):
        stage(con, tmp_path, "partners")
    write_bytes(tmp_path, "crm/partners.csv", b"partner_id,partner_name,partner_type\nP1,a,agency\n")
    with pytest.raises(SourceFileError, match=r"partners\.csv: missing required column\(s\) partner_tier"):
        stage(con, tmp_path, "partners")


def test_dates_are_strict_and_timestamps_follow_iso_8601(con, tmp_path):
    header = "account_id,account_name,account_tier,lifecycle_stage,customer_since,churned_on"
    lines = [
        "A1,a,smb,adoption,2024-01-31,",
        "A2,a,smb,adoption,31/01/2024,",
        "A3,a,smb,churned,2024-02-01,2024-01-31",  # churned before customer_since
        "A4,a,smb,churned,2024-02-01,2024-02-01",
    ]
    write_bytes(tmp_path, "crm/accounts.csv", ("\n".join([header, *lines]) + "\n").encode())
    stage(con, tmp_path, "accounts")
    assert [r[0] for r in con.execute("SELECT account_id FROM staging.accounts ORDER BY 1").fetchall()] == ["A1", "A4"]
    assert [r[2] for r in quarantine(con, "accounts")] == [
        "customer_since: '31/01/2024' is not a valid date (YYYY-MM-DD)",
        "churned_on: before customer_since",
    ]


def test_nps_score_must_be_an_integer_from_0_to_10(con, tmp_path):
    header = "response_id,account_id,score,responded_at"
    lines = ["R1,A1,10,2025-01-01", "R2,A1,11,2025-01-01", "R3,A1,7.5,2025-01-01", "R4,A1,0,2025-01-01"]
    write_bytes(tmp_path, "nps/responses.csv", ("\n".join([header, *lines]) + "\n").encode())
    stage(con, tmp_path, "nps_responses")
    assert con.execute("SELECT response_id, score FROM staging.nps_responses ORDER BY 1").fetchall() == [
        ("R1", 10), ("R4", 0)
    ]
    assert [r[2] for r in quarantine(con, "nps_responses")] == [
        "score: 11 is above 10", "score: '7.5' is not a valid integer"
    ]


def test_restaging_replaces_only_its_own_quarantine_rows(con, tmp_path):
    write_bytes(tmp_path, "crm/partners.csv", b"partner_id,partner_name,partner_type,partner_tier\nP1,a,x,gold\n")
    write_bytes(tmp_path, "nps/responses.csv", b"response_id,account_id,score,responded_at\nR1,A1,99,2025-01-01\n")
    stage(con, tmp_path, "partners")
    stage(con, tmp_path, "nps_responses")
    stage(con, tmp_path, "partners")
    counts = con.execute(
        "SELECT source, count(*) FROM quarantine.rejected_rows GROUP BY ALL ORDER BY 1"
    ).fetchall()
    assert counts == [("nps_responses", 1), ("partners", 1)]


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(con, tmp_path):
    write_bytes(tmp_path, "crm/partners.csv", b"partner_id,partner_name,partner_type,partner_tier\nP1,a,agency,gold\nP2,b,x,gold\n")
    first = stage(con, tmp_path, "partners")
    again = stage(con, tmp_path, "partners")
    assert first.unchanged_since is None and again.unchanged_since is not None
    assert (again.input_rows, again.staged_rows, again.quarantined_rows) == (2, 1, 1)
    assert again.reasons == first.reasons
    write_bytes(tmp_path, "crm/partners.csv", b"partner_id,partner_name,partner_type,partner_tier\nP1,a,agency,gold\n")
    changed = stage(con, tmp_path, "partners")
    assert changed.unchanged_since is None and (changed.staged_rows, changed.quarantined_rows) == (1, 0)
    assert quarantine(con, "partners") == []
    con.execute("DROP TABLE staging.partners")
    assert stage(con, tmp_path, "partners").unchanged_since is None  # a lost table is rebuilt


def test_a_touched_file_is_hashed_and_an_untouched_one_is_not(con, tmp_path):
    header = b"partner_id,partner_name,partner_type,partner_tier\n"
    path = write_bytes(tmp_path, "crm/partners.csv", header + b"P1,a,agency,gold\n")
    stage(con, tmp_path, "partners")
    quick = lambda: con.execute("SELECT quick_key FROM meta.staged_files WHERE source = 'partners'").fetchone()[0]
    before = quick()
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))  # touched, same bytes
    assert stage(con, tmp_path, "partners").unchanged_since is not None  # its content decided
    assert quick() != before  # and the new stat is remembered for the next run
    stat = path.stat()
    path.write_bytes(header + b"P2,b,agency,gold\n")  # same size: only the modification time tells
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert stage(con, tmp_path, "partners").unchanged_since is None
    assert con.execute("SELECT partner_id FROM staging.partners").fetchall() == [("P2",)]


ASKS_HEADER = "ask_id,account_id,trigger_event,asked_at"


def test_timestamps_are_iso_8601_only(con, tmp_path):
    """Offsets are converted to UTC, none means UTC, a bare date is midnight UTC; the rest is rejected."""
    accepted = {
        "2025-04-01T10:00:00Z": "2025-04-01 10:00:00+00",
        "2025-04-01 10:00:00": "2025-04-01 10:00:00+00",
        "2025-04-01T10:00": "2025-04-01 10:00:00+00",
        "2025-04-01": "2025-04-01 00:00:00+00",
        "2025-04-01T10:00:00.250+02:00": "2025-04-01 08:00:00.25+00",
        "2025-04-01T10:00:00,5-0130": "2025-04-01 11:30:00.5+00",
        "2025-04-01T10:00:00+05": "2025-04-01 05:00:00+00",
        "2025-04-01T10:00:00-00:00": "2025-04-01 10:00:00+00",
        "2025-04-01T01:00:00+23:59": "2025-03-31 01:01:00+00",
    }
    rejected = [
        "infinity", "-infinity", "epoch", "now", "today", "2025-04-01 (BC)", "2025-04-01T10:00:00 (BC)",
        "2025-04-01T10:00:00+25:00", "2025-04-01T10:00:00+00:00:30", "2025-04-01T10:00:00+01:60",
        "2025-04-01T24:00:00", "2025-04-01T10:60:00", "2025-04-01T23:59:60", "2025-02-30T10:00:00",
        "2025-04-01+02:00", "2025-04-01T10Z", "20250401T100000Z", "2025-4-1", "2025-04-01T10:00:00 +02:00",
        "0000-01-01", "12025-04-01", "2025-04-01T10:00:00.1234567890Z", "2025-04-01t10:00:00z",
        "Tue, 01 Apr 2025 10:00:00 GMT", "04/01/2025", "1743501600", "2025-04-01T10:00:00 Europe/Berlin",
        "٢٠٢٥-٠٤-٠١",
    ]
    values = [*accepted, *rejected]
    lines = [ASKS_HEADER, *(f'K{i},A1,qbr,"{v}"' for i, v in enumerate(values))]
    write_bytes(tmp_path, "crm/warm_intro_asks.csv", ("\n".join(lines) + "\n").encode())
    stage(con, tmp_path, "warm_intro_asks")
    rows = dict(con.execute("SELECT ask_id, asked_at::VARCHAR FROM staging.warm_intro_asks").fetchall())
    assert rows == {f"K{i}": utc for i, utc in enumerate(accepted.values())}
    reasons = [reason for _, _, reason in quarantine(con, "warm_intro_asks")]
    assert reasons == [f"asked_at: '{v}' is not a valid ISO 8601 timestamp" for v in rejected]


def test_a_closed_won_deal_closed_at_infinity_is_no_win(con, tmp_path):
    lines = [OPP_HEADER, "O1,A1,,closed_won,10,2025-04-01,infinity,referral,,,"]
    write_bytes(tmp_path, "crm/opportunities.csv", ("\n".join(lines) + "\n").encode())
    result = stage(con, tmp_path, "opportunities")
    assert result.staged_rows == 0
    assert quarantine(con, "opportunities") == [
        (1, "O1", "closed_at: 'infinity' is not a valid ISO 8601 timestamp")
    ]


def test_dates_are_valid_calendar_days_as_yyyy_mm_dd(con, tmp_path):
    header = "account_id,account_name,account_tier,lifecycle_stage,customer_since"
    good = ["0001-01-01", "2024-02-29", "9999-12-31"]
    bad = ["2023-02-29", "2024-13-01", "2024-1-5", "2024-01-05T00:00:00", "infinity", "epoch", "0000-01-01",
           "2024-01-05 (BC)", "20240105", "2024/01/05", "+2024-01-05"]
    lines = [header, *(f"A{i},a,smb,adoption,{v}" for i, v in enumerate(good + bad))]
    write_bytes(tmp_path, "crm/accounts.csv", ("\n".join(lines) + "\n").encode())
    stage(con, tmp_path, "accounts")
    assert con.execute("SELECT customer_since::VARCHAR FROM staging.accounts ORDER BY 1").fetchall() == [
        (v,) for v in good
    ]
    assert [r[2] for r in quarantine(con, "accounts")] == [
        f"customer_since: '{v}' is not a valid date (YYYY-MM-DD)" for v in bad
    ]


def test_numbers_are_plain_decimals(con, tmp_path):
    header = "response_id,account_id,score,responded_at"
    lines = [header, "R1,A1,+9,2025-01-01", "R2,A1,1_0,2025-01-01", "R3,A1,0x9,2025-01-01", "R4,A1,9.0,2025-01-01"]
    write_bytes(tmp_path, "nps/responses.csv", ("\n".join(lines) + "\n").encode())
    stage(con, tmp_path, "nps_responses")
    assert con.execute("SELECT response_id, score FROM staging.nps_responses ORDER BY 1").fetchall() == [
        ("R1", 9), ("R4", 9)
    ]
    assert [r[2] for r in quarantine(con, "nps_responses")] == [
        "score: '1_0' is not a valid integer", "score: '0x9' is not a valid integer"
    ]
    lines = [OPP_HEADER, "O1,A1,,proposal,1_000,2025-04-01,,referral,,,", "O2,A1,,proposal,1e3,2025-04-01,,referral,,,"]
    write_bytes(tmp_path, "crm/opportunities.csv", ("\n".join(lines) + "\n").encode())
    stage(con, tmp_path, "opportunities")
    assert con.execute("SELECT opportunity_id, amount FROM staging.opportunities").fetchall() == [("O2", 1000.0)]
    assert [r[2] for r in quarantine(con, "opportunities")] == ["amount: '1_000' is not a valid number"]


def test_all_white_space_around_ids_short_text_and_enums_is_trimmed(con, tmp_path):
    """Tab, CR, LF, no-break and other Unicode spaces; free text stays verbatim."""
    content = (
        "ask_id,account_id,asked_by,trigger_event,asked_at,outcome\n"
        'K1,"\tA1\r\n",\u00a0Sam\u3000,"qbr\t",\t2025-04-01\t,"\nAccepted\u2003"\n'
        "K2\t,A1,,nps,2025-04-02,\n"
        "K2,A1,,nps,2025-04-02,\n"
    ).encode()
    write_bytes(tmp_path, "crm/warm_intro_asks.csv", content)
    result = stage(con, tmp_path, "warm_intro_asks")
    assert (result.staged_rows, result.quarantined_rows) == (2, 1)
    assert con.execute(
        "SELECT ask_id, account_id, asked_by, trigger_event, asked_at::VARCHAR, outcome "
        "FROM staging.warm_intro_asks ORDER BY 1"
    ).fetchall() == [
        ("K1", "A1", "Sam", "qbr", "2025-04-01 00:00:00+00", "accepted"),
        ("K2", "A1", None, "nps", "2025-04-02 00:00:00+00", None),
    ]
    assert quarantine(con, "warm_intro_asks") == [(3, "K2", "duplicate")]
    header = "response_id,account_id,score,responded_at,comment"
    write_bytes(tmp_path, "nps/responses.csv", f'{header}\nR1,A1,\t9\t,2025-01-01,"\t kept \r\n"\n'.encode())
    stage(con, tmp_path, "nps_responses")
    assert con.execute("SELECT score, comment FROM staging.nps_responses").fetchall() == [(9, "\t kept \r\n")]
