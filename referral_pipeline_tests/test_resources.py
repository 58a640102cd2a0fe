"""The warehouse takes one writer at a time: concurrent runs wait for each other and both succeed."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pydantic
import pytest

from referral_pipeline.defs.resources import KpiConfig, Warehouse
from referral_pipeline_tests.fixtures import Pipeline
from referral_pipeline_tests.fixtures import worked_examples

DAGSTER = Path(sys.executable).parent / "dagster"


def test_connections_to_one_warehouse_are_serialised(tmp_path):
    warehouse = Warehouse(path=str(tmp_path / "w.duckdb"))
    events = []

    def writer(name: str, hold: float) -> None:
        with warehouse.connect() as con:
            events.append(f"{name} in")
            con.execute(f"CREATE OR REPLACE TABLE t_{name} AS SELECT 1")
            time.sleep(hold)
            events.append(f"{name} out")

    first = threading.Thread(target=writer, args=("a", 0.5))
    first.start()
    time.sleep(0.1)
    second = threading.Thread(target=writer, args=("b", 0))
    second.start()
    first.join()
    second.join()
    assert events == ["a in", "a out", "b in", "b out"]


def test_two_cli_runs_at_once_both_succeed(tmp_path):
    pipeline = Pipeline(data_dir=tmp_path / "data", warehouse=tmp_path / "w.duckdb")
    worked_examples().write(pipeline.data_dir)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(REFERRAL_DATA_DIR=str(pipeline.data_dir), REFERRAL_WAREHOUSE=str(pipeline.warehouse))
    command = [str(DAGSTER), "asset", "materialize", "-m", "referral_pipeline.definitions", "--select", "*"]
    runs = [
        subprocess.Popen([*command, "--partition", "2025-04-01"], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True),
        subprocess.Popen([*command, "--partition-range", "2024-10-01...2025-04-01"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True),
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=300)
        assert run.returncode == 0, stderr[-3000:]
        assert "Could not set lock" not in stderr
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (24, 40, 60.0)
    assert pipeline.kpi("qbr_referral_intent_rate", "2025-Q2") == (18, 60, 30.0)
    assert pipeline.query(
        "SELECT quarter, count(*) FROM kpi.strategic_referral_win_rate WHERE dimension = 'overall' GROUP BY 1 ORDER BY 1"
    ) == [("2024-Q4", 1), ("2025-Q1", 1), ("2025-Q2", 1)]


def test_config_values_outside_what_a_field_allows_name_the_field():
    for field, value in [("counted_triggers", []), ("referral_tags", []), ("warm_intro_scope", "all"),
                         ("max_rejected_fraction", -0.1), ("strategic_customer_tiers", ["gold"])]:
        try:
            KpiConfig(**{field: value})
        except pydantic.ValidationError as exc:
            assert field in str(exc)
        else:
            raise AssertionError(f"{field}={value!r} was accepted")


def test_the_warehouse_lock_timeout_is_a_setting(tmp_path):
    assert Warehouse(path=str(tmp_path / "w.duckdb")).lock_timeout_seconds == 120
    with pytest.raises(pydantic.ValidationError, match="lock_timeout_seconds"):
        Warehouse(path=str(tmp_path / "w.duckdb"), lock_timeout_seconds=-1)
