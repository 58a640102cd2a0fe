"""Observing the exports: data versions from their content, and freshness with the file's age."""

import os
import time

from dagster import AssetKey, DagsterInstance

from referral_pipeline.defs.assets.source_files import FRESHNESS_CHECK
from referral_pipeline.definitions import defs
from referral_pipeline_tests.fixtures import worked_examples


def observe(pipeline, instance, max_age_hours=26.0):
    run_config = {"resources": {"source_folder": {"config": {"path": str(pipeline.data_dir)}},
                                "freshness": {"config": {"source_max_age_hours": max_age_hours}}}}
    result = defs.resolve_job_def("observe_source_files").execute_in_process(
        run_config=run_config, instance=instance
    )
    checks = {e.asset_check_key.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}
    return {name: e for name, e in checks.items() if e.check_name == FRESHNESS_CHECK}


def data_version(instance, name: str) -> str | None:
    record = instance.get_latest_data_version_record(AssetKey(["sources", name]))
    return record.asset_observation.data_version if record else None


def test_data_version_follows_the_content_not_the_timestamp(pipeline):
    worked_examples().write(pipeline.data_dir)
    instance = DagsterInstance.ephemeral()
    observe(pipeline, instance)
    first = data_version(instance, "opportunities")
    path = pipeline.data_dir / "crm" / "opportunities.csv"
    os.utime(path, (time.time() + 5, time.time() + 5))
    observe(pipeline, instance)
    assert data_version(instance, "opportunities") == first
    path.write_text(path.read_text().replace("closed_lost", "closed_won", 1))
    observe(pipeline, instance)
    assert data_version(instance, "opportunities") not in (None, first)
    assert data_version(instance, "partners") is not None


def test_a_stale_export_fails_its_freshness_check_with_its_age(pipeline):
    worked_examples().write(pipeline.data_dir)
    stale = pipeline.data_dir / "nps" / "responses.csv"
    aged = time.time() - 27 * 3600
    os.utime(stale, (aged, aged))
    (pipeline.data_dir / "crm" / "partners.csv").unlink()
    checks = observe(pipeline, DagsterInstance.ephemeral())
    assert not checks["nps_responses"].passed
    assert checks["nps_responses"].description.endswith("responses.csv was last modified 27.0 h ago (max age 26 h)")
    assert checks["opportunities"].passed
    assert not checks["partners"].passed and "file not found" in checks["partners"].description
    assert observe(pipeline, DagsterInstance.ephemeral(), max_age_hours=28)["nps_responses"].passed
