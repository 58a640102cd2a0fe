"""The source exports, as external assets at the root of the lineage graph."""

from dagster import AssetKey, AssetSpec

from referral_pipeline.sources import SOURCES, Source


def source_file_key(source: Source) -> AssetKey:
    return AssetKey(["sources", source.name])


source_file_specs = [
    AssetSpec(
        key=source_file_key(source),
        group_name="sources",
        kinds={"csv" if source.text_format == "csv" else "json", "parquet"},
        description=(
            f"The {source.name.replace('_', ' ')} export: `{source.path_stem}.{source.text_format}` "
            f"(or `.parquet`) in the source folder. {source.model.__doc__}"
        ),
        metadata={"path": f"{source.path_stem}.{source.text_format}"},
    )
    for source in SOURCES
]
