"""Tests for referral_pipeline.generate_data: contract headers, determinism, validity, injected bad rows."""
from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import duckdb
import pytest

from referral_pipeline.generate_data import generate

HEADERS = {
    "crm/accounts.csv": ["account_id", "account_name", "account_tier", "vertical", "csm_owner", "lifecycle_stage",
                         "customer_since", "churned_on"],
    "crm/partners.csv": ["partner_id", "partner_name", "partner_type", "partner_tier"],
    "crm/opportunities.csv": ["opportunity_id", "account_id", "owner", "stage", "amount", "created_at", "closed_at",
                              "lead_source", "referral_source_type", "referrer_id", "vertical"],
    "crm/warm_intro_asks.csv": ["ask_id", "account_id", "asked_by", "trigger_event", "asked_at", "outcome"],
    "nps/responses.csv": ["response_id", "account_id", "respondent_id", "score", "comment", "responded_at"],
}
QBR_FIELDS = ["qbr_id", "account_id", "held_on", "csm", "format", "status", "tags", "notes"]
TINY = {"accounts": 300, "partners": 24, "opportunities": 2000, "nps": 1000, "qbrs": 400, "asks": 600}
ENUMS = {
    "stage": ["prospecting", "qualification", "proposal", "negotiation", "closed_won", "closed_lost"],
    "lead_source": ["referral", "inbound", "outbound", "event", "partner", "other"],
    "referral_source_type": ["customer", "partner", "employee"],
}


def _rows(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("utf-8", errors="surrogateescape").lstrip("\ufeff")
    return list(csv.reader(io.StringIO(text, newline="")))


def _con() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    return con


def _csv(path: Path) -> str:
    return f"read_csv('{path}', all_varchar=true, header=true, strict_mode=true)"


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    out = tmp_path_factory.mktemp("sample")
    return out, generate(out, preset="sample", bad_fraction=0.003, seed=7)


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    out = tmp_path_factory.mktemp("clean")
    return out, generate(out, preset="s", sizes=TINY, bad_fraction=0.0, seed=11)


@pytest.fixture(scope="module")
def dirty(tmp_path_factory):
    out = tmp_path_factory.mktemp("dirty")
    return out, generate(out, preset="s", sizes=TINY, bad_fraction=0.05, seed=11)


def test_sample_files_headers_and_size(sample):
    out, rep = sample
    for rel, cols in HEADERS.items():
        header = _rows(out / rel)[0]
        assert set(cols) <= set(header), (rel, header)
    assert set(HEADERS) | {"qbr/notes.jsonl"} == set(rep)
    first = json.loads((out / "qbr/notes.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert {"qbr_id", "account_id", "held_on", "format", "status"} <= set(first)
    total = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert 600_000 < total < 2_000_000
    assert total == sum(r["bytes"] for r in rep.values())
    # extra CRM columns and a non-contract column order exist, as real exports have them
    assert "crm_internal_id" in _rows(out / "crm/accounts.csv")[0]
    assert _rows(out / "crm/opportunities.csv")[0][:3] == ["opportunity_id", "created_at", "stage"]


def test_sample_reported_rows_match_files(sample):
    out, rep = sample
    for rel in HEADERS:
        assert len(_rows(out / rel)) - 1 == rep[rel]["rows"], rel
    lines = (out / "qbr/notes.jsonl").read_bytes().splitlines()
    assert len([ln for ln in lines if ln.strip()]) == rep["qbr/notes.jsonl"]["rows"]


def test_sample_bad_share_small_but_present(sample):
    out, rep = sample
    for rel, r in rep.items():
        assert r["expected_rejected"] / r["rows"] < 0.01, rel
    opp = rep["crm/opportunities.csv"]["bad"]
    for kind in ("ragged_extra", "invalid_enum", "negative_amount", "closed_without_closed_at",
                 "identical_duplicate", "conflicting_duplicate", "bad_utf8"):
        assert opp.get(kind) == 1, kind
    assert rep["qbr/notes.jsonl"]["bad"].get("not_json") == 1
    raw = (out / "crm/opportunities.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


def test_sample_messiness_is_there(sample):
    out, _ = sample
    opp = (out / "crm/opportunities.csv").read_text(encoding="utf-8", errors="replace")
    assert "Closed_Won" in opp or "CLOSED_WON" in opp or " closed_won " in opp
    assert '00Z"' in opp and ("-02:00" in opp or "+05:30" in opp)
    acc = (out / "crm/accounts.csv").read_text(encoding="utf-8")
    assert '""' in acc and ", Inc." in acc  # doubled quotes and commas in quoted fields
    notes = (out / "qbr/notes.jsonl").read_text(encoding="utf-8", errors="replace")
    assert any(ord(ch) > 0x3000 for ch in notes)  # CJK
    assert "refer to ticket" in notes.lower() or "refer to the attached" in notes.lower()


def test_sample_qbr_signal_share(sample):
    _, rep = sample
    q = rep["qbr/notes.jsonl"]
    assert 0.25 <= q["completed_with_signal"] / q["completed"] <= 0.35


def test_same_seed_same_bytes(tmp_path, clean):
    out, _ = clean
    small = dict(TINY, opportunities=500, nps=300)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    generate(a, preset="s", sizes=small, bad_fraction=0.05, seed=3)
    generate(b, preset="s", sizes=small, bad_fraction=0.05, seed=3)
    generate(c, preset="s", sizes=small, bad_fraction=0.05, seed=4)

    def digest(d):
        return {p.relative_to(d).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(d.rglob("*")) if p.is_file()}
    assert digest(a) == digest(b)
    assert digest(a)["crm/opportunities.csv"] != digest(c)["crm/opportunities.csv"]


def test_clean_data_is_valid(clean):
    out, rep = clean
    assert all(r["bad_rows"] == 0 for r in rep.values())
    for p in out.rglob("*.*"):
        p.read_bytes().decode("utf-8")  # no bad bytes
    con = _con()
    opp = _csv(out / "crm/opportunities.csv")
    # every row parses with exactly the header's cells (strict mode raises otherwise)
    n = con.execute(f"select count(*) from {opp}").fetchone()[0]
    assert n == rep["crm/opportunities.csv"]["rows"] == TINY["opportunities"]
    for col, values in ENUMS.items():
        bad = con.execute(f"select count(*) from {opp} where {col} is not null and "
                          f"lower(trim({col})) not in {tuple(values)}").fetchone()[0]
        assert bad == 0, col
    assert con.execute(f"select count(*) from {opp} where stage is null or created_at is null "
                       f"or account_id is null").fetchone()[0] == 0
    closed = con.execute(f"""select count(*) filter (where lower(trim(stage)) like 'closed_%' and closed_at is null),
                                count(*) filter (where lower(trim(stage)) not like 'closed_%' and closed_at is not null),
                                count(*) filter (where closed_at::timestamptz < created_at::timestamptz),
                                count(*) filter (where amount::decimal(14,2) < 0),
                                count(*) filter (where (referral_source_type is null) <> (referrer_id is null)),
                                count(*) - count(distinct opportunity_id)
                         from {opp}""").fetchone()
    assert closed == (0, 0, 0, 0, 0, 0)
    acc = _csv(out / "crm/accounts.csv")
    assert con.execute(f"select count(*) from {acc} where churned_on::date < customer_since::date "
                       f"or (churned_on is not null and customer_since is null)").fetchone()[0] == 0
    assert con.execute(f"select count(*) - count(distinct account_id) from {acc}").fetchone()[0] == 0
    nps = _csv(out / "nps/responses.csv")
    assert con.execute(f"select count(*) from {nps} where score::int not between 0 and 10 "
                       f"or responded_at::timestamptz is null").fetchone()[0] == 0
    asks = _csv(out / "crm/warm_intro_asks.csv")
    assert con.execute(f"select count(*) - count(distinct ask_id) from {asks}").fetchone()[0] == 0
    lines = (out / "qbr/notes.jsonl").read_text(encoding="utf-8").splitlines()
    objs = [json.loads(ln) for ln in lines]
    assert all(isinstance(o, dict) for o in objs) and len({o["qbr_id"] for o in objs}) == len(objs)
    assert {o["status"].strip().lower() for o in objs} <= {"completed", "cancelled", "scheduled"}
    # orphans: ~1% of opportunities point at an unknown account (valid rows)
    orphans = con.execute(f"select count(*) from {opp} o anti join {acc} a using (account_id)").fetchone()[0]
    assert 0 < orphans < 0.03 * n


def test_bad_fraction_injects_and_reports(dirty):
    out, rep = dirty
    for rel, r in rep.items():
        share = r["bad_rows"] / r["rows"]
        assert 0.03 <= share <= 0.07, (rel, share)
        assert r["bad_rows"] == sum(r["bad"].values())
    con = _con()
    opp_path = out / "crm/opportunities.csv"
    r = rep["crm/opportunities.csv"]
    rows = _rows(opp_path)
    header, data = rows[0], rows[1:]
    assert len(data) == r["rows"]
    ragged = sum(1 for row in data if len(row) != len(header))
    assert ragged == r["bad"]["ragged_extra"] + r["bad"]["ragged_short"] > 0
    assert sum(1 for row in data if any("\udcfc" in c for c in row)) == r["bad"]["bad_utf8"] > 0
    # duplicates really are in the file (read the well-formed rows back with duckdb)
    good = out / "opp_good.csv"
    with open(good, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(row for row in data if len(row) == len(header) and not any("\udcfc" in c for c in row))
    tbl = f"read_csv('{good}', all_varchar=true, header=true)"
    identical = con.execute(f"select (select count(*) from {tbl}) - (select count(*) from "
                                f"(select distinct * from {tbl}))").fetchone()[0]
    assert identical == r["bad"]["identical_duplicate"] > 0
    conflicting = con.execute(f"select count(*) from (select opportunity_id from {tbl} group by 1 "
                              f"having count(distinct amount) > 1)").fetchone()[0]
    assert conflicting == r["bad"]["conflicting_duplicate"] > 0
    neg = con.execute(f"select count(*) from {tbl} where try_cast(amount as double) < 0").fetchone()[0]
    assert neg == r["bad"]["negative_amount"]
    lines = (out / "qbr/notes.jsonl").read_bytes().splitlines()
    not_obj = 0
    for ln in lines:
        try:
            not_obj += not isinstance(json.loads(ln), dict)
        except (ValueError, UnicodeDecodeError):
            not_obj += 1
    q = rep["qbr/notes.jsonl"]["bad"]
    assert not_obj == q["not_json"] + q["bad_utf8"] and q["not_json"] > 0


def test_parquet_output(tmp_path):
    rep = generate(tmp_path, preset="s", sizes=dict(TINY, opportunities=400, nps=200), fmt="parquet",
                   bad_fraction=0.05, seed=5)
    assert {Path(k).suffix for k in rep} == {".parquet"}
    assert not list(tmp_path.rglob("*.csv")) and not list(tmp_path.rglob("*.jsonl"))
    for r in rep.values():
        assert not {"ragged_extra", "ragged_short", "bad_utf8", "not_json"} & set(r["bad"])
    con = _con()
    n = con.execute(f"select count(*) from '{tmp_path}/crm/opportunities.parquet'").fetchone()[0]
    assert n == rep["crm/opportunities.parquet"]["rows"]
    cols = [d[0] for d in con.execute(f"select * from '{tmp_path}/qbr/notes.parquet'").description]
    assert set(QBR_FIELDS) <= set(cols)
