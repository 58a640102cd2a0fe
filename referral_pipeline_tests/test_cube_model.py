"""The Cube model: generated from the KPI declarations, and its measures give the KPI tables' rows."""

import re

import yaml

from referral_pipeline.defs.resources import PROJECT_DIR
from referral_pipeline.lib.cube_model import export_facts, model_files
from referral_pipeline.lib.kpis import KPIS
from referral_pipeline.lib.warehouse import connect

MODEL_DIR = PROJECT_DIR / "cube" / "model"


def test_the_committed_model_is_the_generated_one():
    assert {p.name: p.read_text(encoding="utf-8") for p in MODEL_DIR.glob("*.yml")} == model_files()


def _cubes() -> dict[str, dict]:
    cubes = [c for text in model_files().values() for c in yaml.safe_load(text)["cubes"]]
    return {c["sql_table"]: c for c in cubes}


def measure_sql(cube: dict, name: str) -> str:
    """A measure's SQL as Cube would compile it over ``cube``'s table aliased ``f``."""
    measure = next(m for m in cube["measures"] if m["name"] == name)
    sql = measure.get("sql", "").replace("{CUBE}", "f")
    if measure["type"] == "number":  # references to other measures
        return re.sub(r"\{(\w+)\}", lambda m: f"({measure_sql(cube, m.group(1))})", sql)
    return {"count": "count(*)", "sum": f"sum({sql})", "count_distinct": f"count(DISTINCT {sql})"}[measure["type"]]


def dimension_sql(cube: dict, name: str) -> str:
    return next(d for d in cube["dimensions"] if d["name"] == name)["sql"].replace("{CUBE}", "f")


def test_the_measures_give_every_kpi_row_of_the_sample(sample_pipeline):
    cubes = _cubes()
    with connect(sample_pipeline.warehouse) as con:
        for kpi in KPIS:
            cube = cubes[kpi.facts.table]
            measures = ", ".join(measure_sql(cube, m) for m in (kpi.numerator.name, kpi.denominator.name, kpi.rate))
            quarter = dimension_sql(cube, "quarter")
            cube_rows = con.execute(
                f"SELECT {quarter}, 'overall', 'all', {measures} FROM {cube['sql_table']} f GROUP BY ALL"
            ).fetchall()
            for d in kpi.dimensions:
                cube_rows += con.execute(
                    f"SELECT {quarter}, '{d}', coalesce({dimension_sql(cube, d)}::VARCHAR, '(none)'), {measures} "
                    f"FROM {cube['sql_table']} f GROUP BY ALL"
                ).fetchall()
            for b in kpi.breakdowns:  # distinct accounts asked, over the whole scope
                asks = cubes[b.facts.table]
                cube_rows += con.execute(
                    f"""SELECT x.quarter, '{b.dimension}', x.segment, x.n, s.d, 100.0 * x.n / NULLIF(s.d, 0)
                        FROM (SELECT {dimension_sql(asks, 'quarter')} AS quarter,
                                     coalesce({dimension_sql(asks, b.dimension)}, '(none)') AS segment,
                                     {measure_sql(asks, b.numerator.name)} AS n
                              FROM {asks['sql_table']} f GROUP BY ALL) x
                        JOIN (SELECT {quarter} AS quarter, {measure_sql(cube, kpi.denominator.name)} AS d
                              FROM {cube['sql_table']} f GROUP BY ALL) s USING (quarter)"""
                ).fetchall()
            kpi_rows = con.execute(
                f"SELECT quarter, dimension, segment, numerator, denominator, rate_pct FROM {kpi.table} "
                "WHERE denominator > 0 AND (numerator > 0 OR dimension <> 'trigger_event')"
            ).fetchall()
            # Cube has no row for a counted trigger nobody was asked through, nor for an empty quarter
            assert sorted(cube_rows) == sorted(kpi_rows), kpi.name
            assert len(kpi_rows) > 50


def test_facts_export_for_older_readers(sample_pipeline, tmp_path):
    with connect(sample_pipeline.warehouse) as con:
        counts = export_facts(con, tmp_path, storage_version="v1.0.0")
        for table, rows in counts.items():
            name = table.split(".")[1]
            assert con.execute(f"SELECT count(*) FROM read_parquet('{tmp_path / name}.parquet')").fetchone() == (rows,)
            assert rows > 0
        con.execute(f"ATTACH '{tmp_path / 'referral_facts.duckdb'}' AS copy (READ_ONLY)")
        assert con.execute(
            "SELECT count(*) FROM (FROM copy.facts.completed_qbrs EXCEPT ALL FROM facts.completed_qbrs)"
        ).fetchone() == (0,)
