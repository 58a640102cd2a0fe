"""Pytest fixtures: a fresh source folder and warehouse per test."""

from pathlib import Path

import pytest

from referral_pipeline_tests.fixtures import Pipeline


@pytest.fixture
def pipeline(tmp_path: Path) -> Pipeline:
    return Pipeline(data_dir=tmp_path / "data", warehouse=tmp_path / "warehouse.duckdb")
