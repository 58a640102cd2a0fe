"""The Cube data model of the facts, and a copy of the facts for readers of older DuckDB files.

    python -m referral_pipeline.cube write [--out cube/model]
    python -m referral_pipeline.cube export-facts --out DIR [--storage-version v1.0.0]

``write`` regenerates the model from the KPI declarations; ``export-facts`` copies the facts tables
of the warehouse ($REFERRAL_WAREHOUSE, else data/warehouse.duckdb) to Parquet files, and with
``--storage-version`` to a DuckDB file that DuckDB 1.x readers (Cube's DuckDB driver) can open.
"""

import argparse
from pathlib import Path

from referral_pipeline.defs.resources import PROJECT_DIR, Warehouse
from referral_pipeline.lib.cube_model import export_facts, write_model

MODEL_DIR = PROJECT_DIR / "cube" / "model"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="write the Cube model files")
    write.add_argument("--out", type=Path, default=MODEL_DIR)
    export = commands.add_parser("export-facts", help="copy the facts tables to Parquet (and an older DuckDB file)")
    export.add_argument("--out", type=Path, required=True)
    export.add_argument("--storage-version", help="also write DIR/referral_facts.duckdb in this DuckDB storage version")
    args = parser.parse_args()
    if args.command == "write":
        for path in write_model(args.out):
            print(path)
        return
    warehouse = Warehouse()
    with warehouse.connect() as con:
        counts = export_facts(con, args.out, args.storage_version)
    for table, rows in counts.items():
        print(f"{table}: {rows} rows -> {args.out}")


if __name__ == "__main__":
    main()
