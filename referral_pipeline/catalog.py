"""The KPI catalog: the Cube data model and docs/kpis.md, and a copy of the facts for older readers.

    python -m referral_pipeline.catalog write
    python -m referral_pipeline.catalog export-facts --out DIR [--storage-version v1.0.0]

``write`` regenerates cube/model/*.yml and docs/kpis.md from the KPI declarations; ``export-facts`` copies the facts tables
of the warehouse ($REFERRAL_WAREHOUSE, else data/warehouse.duckdb) to Parquet files, and with
``--storage-version`` to a DuckDB file that DuckDB 1.x readers (Cube's DuckDB driver) can open.
"""

import argparse
from pathlib import Path

from referral_pipeline.defs.resources import PROJECT_DIR, Warehouse
from referral_pipeline.lib.cube_model import export_facts, write_model
from referral_pipeline.lib.kpi_docs import kpi_docs_markdown

MODEL_DIR = PROJECT_DIR / "cube" / "model"
KPI_DOCS = PROJECT_DIR / "docs" / "kpis.md"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("write", help="write the Cube model files and docs/kpis.md")
    export = commands.add_parser("export-facts", help="copy the facts tables to Parquet (and an older DuckDB file)")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--storage-version", help="also write DIR/referral_facts.duckdb in this DuckDB storage version")
    args = parser.parse_args()
    if args.command == "write":
        for path in write_model(MODEL_DIR):
            print(path)
        KPI_DOCS.parent.mkdir(exist_ok=True)
        KPI_DOCS.write_text(kpi_docs_markdown(), encoding="utf-8")
        print(KPI_DOCS)
        return
    warehouse = Warehouse()
    with warehouse.connect() as con:
        counts = export_facts(con, args.out, args.storage_version)
    for table, rows in counts.items():
        print(f"{table}: {rows} rows -> {args.out}")


if __name__ == "__main__":
    main()
