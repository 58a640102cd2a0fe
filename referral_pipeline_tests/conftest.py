"""Pytest fixtures: a fresh source folder and warehouse per test."""

from pathlib import Path

import duckdb
import pytest

from referral_pipeline.defs.partitions import quarterly_partitions
from referral_pipeline.lib.quarters import FIRST_QUARTER
from referral_pipeline_tests.fixtures import Pipeline

SAMPLE_DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(data_dir=tmp_path / "data", warehouse=tmp_path / "warehouse.duckdb")


@pytest.fixture(scope="session")
def sample_pipeline(tmp_path_factory) -> Pipeline:
    """Every quarter of the committed sample data in data/, materialised once per test session."""
    sample = Pipeline(data_dir=SAMPLE_DATA, warehouse=tmp_path_factory.mktemp("sample") / "warehouse.duckdb")
    sample.run(partition_range=(FIRST_QUARTER, quarterly_partitions.get_last_partition_key()))
    return sample


@pytest.fixture
def con(tmp_path):
    """A fresh DuckDB file in UTC, as the warehouse connection sets it."""
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    connection.execute("SET TimeZone = 'UTC'")
    yield connection
    connection.close()
