"""Quarters: labels, and replacing a run's quarters (exactly those rows, all or nothing)."""

from datetime import datetime

import duckdb
import pytest

from referral_pipeline.defs.partitions import quarter_window
from referral_pipeline.lib.quarters import (
    load_run_quarters,
    previous_quarter_label,
    quarter_label,
    quarter_start,
    replace_quarters,
)

DDL = "quarter VARCHAR, value INTEGER"


def test_replace_touches_only_the_runs_quarters_and_rolls_back_on_failure(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    con.execute("CREATE SCHEMA kpi")
    con.execute(f"CREATE TABLE kpi.t ({DDL})")
    con.execute("INSERT INTO kpi.t VALUES ('2025-Q1', 1), ('2025-Q2', 2), ('2025-Q3', 3)")
    assert load_run_quarters(con, *quarter_window("2025-04-01")) == ["2025-Q2"]

    written = replace_quarters(con, "kpi.t", DDL, "SELECT quarter, 20 FROM run_quarters", {})
    assert written == 1
    assert con.execute("SELECT * FROM kpi.t ORDER BY 1").fetchall() == [
        ("2025-Q1", 1), ("2025-Q2", 20), ("2025-Q3", 3)
    ]
    with pytest.raises(duckdb.Error):  # fails after the delete: nothing changes
        replace_quarters(con, "kpi.t", DDL, "SELECT quarter, error('mid-run failure') FROM run_quarters", {})
    assert con.execute("SELECT * FROM kpi.t ORDER BY 1").fetchall() == [
        ("2025-Q1", 1), ("2025-Q2", 20), ("2025-Q3", 3)
    ]


def test_quarter_labels():
    assert previous_quarter_label("2026-Q1") == "2025-Q4"
    assert previous_quarter_label("2026-Q4") == "2026-Q3"
    assert quarter_label(quarter_start("2026-Q3")) == "2026-Q3"
    assert quarter_label(datetime(2026, 12, 31).date()) == "2026-Q4"
    with pytest.raises(ValueError, match="2026-Q5"):
        quarter_start("2026-Q5")
