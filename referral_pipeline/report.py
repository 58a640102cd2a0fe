"""Print the latest overall KPI rows from the warehouse, and where the dashboard is:
``python -m referral_pipeline.report``.

``--current-quarter`` prints the key of the quarter in progress instead (for backfill commands).
"""

import argparse

from referral_pipeline.defs.assets.reports import current_quarter
from referral_pipeline.defs.partitions import quarterly_partitions
from referral_pipeline.defs.resources import Dashboard, Warehouse
from referral_pipeline.lib.kpis import KPIS


def latest_overall_rows(warehouse: Warehouse, quarters: int = 4) -> list[tuple]:
    """(kpi title, quarter, numerator, denominator, rate_pct) of each KPI's latest quarters."""
    with warehouse.connect() as con:
        return [
            (kpi.title, *row)
            for kpi in KPIS
            for row in con.execute(
                f"SELECT quarter, numerator, denominator, rate_pct FROM {kpi.table} "
                "WHERE dimension = 'overall' ORDER BY quarter DESC LIMIT ?",
                [quarters],
            ).fetchall()[::-1]
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--current-quarter", action="store_true", help="print the quarter in progress")
    parser.add_argument("--quarters", type=int, default=4, help="how many latest quarters per KPI")
    args = parser.parse_args()
    if args.current_quarter:
        print(quarterly_partitions.get_last_partition_key())
        return
    warehouse = Warehouse()
    print(f"Overall KPI rows in {warehouse.resolve()}")
    in_progress = current_quarter()
    print(f"{'KPI':<36} {'quarter':<8} {'numerator':>9} {'denominator':>11} {'rate_pct':>8}")
    for title, quarter, numerator, denominator, rate in latest_overall_rows(warehouse, args.quarters):
        shown = "NULL" if rate is None else f"{rate:.1f}"
        mark = "  (in progress: partial quarter)" if quarter == in_progress else ""
        print(f"{title:<36} {quarter:<8} {numerator:>9} {denominator:>11} {shown:>8}{mark}")
    dashboard = Dashboard().resolve(warehouse)
    print(f"Dashboard: {dashboard}" if dashboard.exists() else f"No dashboard at {dashboard} yet")


if __name__ == "__main__":
    main()
