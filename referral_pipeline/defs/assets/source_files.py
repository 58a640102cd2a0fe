"""The source exports: observable assets at the root of the lineage, with their freshness.

Observing a file records its modification time and a fingerprint of its content as the data
version, so the UI shows when an export last changed and Dagster knows whether it did.
"""

import time
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetKey,
    AssetSpec,
    DataVersion,
    ObserveResult,
    multi_observable_source_asset,
)

from referral_pipeline.defs.resources import Freshness, SourceFolder
from referral_pipeline.lib.sources import SOURCES, Source, SourceFileError, content_fingerprint

FRESHNESS_CHECK = "export_is_fresh"


def source_file_key(source: Source) -> AssetKey:
    return AssetKey(["sources", source.name])


def export_age_check(
    key: AssetKey, path: Path | None, now: float, max_age_hours: float, problem: str = ""
) -> AssetCheckResult:
    """Passes while the export at ``path`` is at most ``max_age_hours`` old at ``now``."""
    key_note = f"max age {max_age_hours:g} h"
    if path is None:
        return AssetCheckResult(
            asset_key=key, check_name=FRESHNESS_CHECK, passed=False,
            severity=AssetCheckSeverity.WARN, description=f"{problem} ({key_note})",
        )
    age_hours = (now - path.stat().st_mtime) / 3600
    return AssetCheckResult(
        asset_key=key,
        check_name=FRESHNESS_CHECK,
        passed=age_hours <= max_age_hours,
        severity=AssetCheckSeverity.WARN,
        description=f"{path} was last modified {age_hours:.1f} h ago ({key_note})",
        metadata={"age_hours": round(age_hours, 2), "max_age_hours": max_age_hours},
    )


source_file_specs = [
    AssetSpec(
        key=source_file_key(source),
        group_name="sources",
        kinds={"csv" if source.text_format == "csv" else "json", "file"},
        description=(
            f"The {source.title} export: {source.path_stem}.{source.text_format} "
            f"(or .parquet) in the source folder. {source.model.__doc__.replace('`', '')}"
        ),
        metadata={"path": f"{source.path_stem}.{source.text_format}"},
    )
    for source in SOURCES
]


@multi_observable_source_asset(
    name="source_files",
    specs=source_file_specs,
    can_subset=True,
    required_resource_keys={"source_folder", "freshness"},
    check_specs=[
        AssetCheckSpec(
            FRESHNESS_CHECK,
            asset=source_file_key(source),
            description="The export was modified within the freshness bound (default 26 hours).",
        )
        for source in SOURCES
    ],
)
def source_files(context):
    """Observe each selected export: modification time, size, and content fingerprint."""
    folder: SourceFolder = context.resources.source_folder
    freshness: Freshness = context.resources.freshness
    now = time.time()
    for source in SOURCES:
        key = source_file_key(source)
        if key not in context.selected_asset_keys:
            continue
        try:
            path = source.locate(folder.resolve())
        except SourceFileError as exc:
            context.log.warning(str(exc))
            yield ObserveResult(
                asset_key=key,
                metadata={"problem": str(exc)},
                check_results=[export_age_check(key, None, now, freshness.source_max_age_hours, str(exc))],
            )
            continue
        stat = path.stat()
        yield ObserveResult(
            asset_key=key,
            data_version=DataVersion(content_fingerprint(path)),
            metadata={
                "path": str(path),
                "size_bytes": stat.st_size,
                "dagster/last_updated_timestamp": stat.st_mtime,
            },
            check_results=[export_age_check(key, path, now, freshness.source_max_age_hours)],
        )
