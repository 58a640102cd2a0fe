"""The definitions as users meet them: the lineage graph, and the contract's CLI commands."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from dagster import AssetKey

from referral_pipeline.definitions import defs
from referral_pipeline_tests.fixtures import Pipeline
from referral_pipeline_tests.fixtures import worked_examples

DAGSTER = Path(sys.executable).parent / "dagster"


def test_lineage_runs_sources_to_staging_to_intermediate_to_facts_to_kpi():
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    assert groups["sources/opportunities"] == "sources"
    assert groups["staging/opportunities"] == "staging"
    assert groups["intermediate/qbr_referral_signals"] == "intermediate"
    assert groups["facts/completed_qbrs"] == "facts"
    assert groups["kpi/strategic_referral_win_rate"] == "kpi"
    assert groups["kpi/referral_funnel"] == "kpi"
    parents = lambda name: {k.to_user_string() for k in graph.get(AssetKey.from_user_string(name)).parent_keys}
    assert parents("staging/qbr_notes") == {"sources/qbr_notes"}
    # derived from the tables each facts query reads
    assert parents("facts/completed_qbrs") == {
        "intermediate/qbr_referral_signals", "staging/qbr_notes", "staging/accounts"
    }
    assert parents("facts/active_customers") == {
        "staging/accounts", "staging/warm_intro_asks", "staging/nps_responses"
    }
    assert parents("facts/warm_introduction_offers") == {"staging/warm_intro_asks", "facts/active_customers"}
    assert parents("kpi/qbr_referral_intent_rate") == {"facts/completed_qbrs"}
    assert parents("kpi/warm_intro_offer_rate") == {"facts/active_customers", "facts/warm_introduction_offers"}
    assert parents("kpi/referral_funnel") == {
        "facts/active_customers", "facts/completed_qbrs", "staging/opportunities"
    }
    assert graph.get(AssetKey.from_user_string("staging/nps_responses")).kinds == {"duckdb", "pandera"}
    schema = graph.get(AssetKey.from_user_string("staging/nps_responses")).metadata["dagster/column_schema"]
    score = next(c for c in schema.columns if c.name == "score")
    assert (score.type, score.constraints.other) == ("INTEGER", [">= 0", "<= 10"])


def run_cli(args: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(DAGSTER), "asset", "materialize", "-m", "referral_pipeline.definitions", "--select", "*", *args],
        env=env, capture_output=True, text=True, timeout=300,
    )


@pytest.mark.parametrize("dagster_home", [False, True], ids=["no DAGSTER_HOME", "DAGSTER_HOME"])
def test_contract_commands(tmp_path, dagster_home):
    pipeline = Pipeline(data_dir=tmp_path / "exports", warehouse=tmp_path / "wh" / "kpis.duckdb")
    worked_examples().write(pipeline.data_dir)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(REFERRAL_DATA_DIR=str(pipeline.data_dir), REFERRAL_WAREHOUSE=str(pipeline.warehouse))
    if dagster_home:
        (tmp_path / "home").mkdir()
        env["DAGSTER_HOME"] = str(tmp_path / "home")

    single = run_cli(["--partition", "2025-04-01"], env)
    assert single.returncode == 0, single.stderr[-3000:]
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (24, 40, 60.0)
    assert pipeline.query("SELECT DISTINCT quarter FROM kpi.qbr_referral_intent_rate") == [("2025-Q2",)]

    ranged = run_cli(
        ["--partition-range", "2024-01-01...2025-04-01", "--config-json",
         '{"resources": {"kpi_config": {"config": {"warm_intro_scope": "promoters"}}}}'],
        env,
    )
    assert ranged.returncode == 0, ranged.stderr[-3000:]
    quarters = pipeline.query("SELECT quarter FROM kpi.warm_intro_offer_rate WHERE dimension = 'overall' ORDER BY 1")
    assert [q for (q,) in quarters] == ["2024-Q1", "2024-Q2", "2024-Q3", "2024-Q4", "2025-Q1", "2025-Q2"]
    assert pipeline.kpi("warm_intro_offer_rate", "2025-Q2") == (38, 200, 19.0)
    assert pipeline.kpi("qbr_referral_intent_rate", "2025-Q2") == (18, 60, 30.0)
    assert pipeline.kpi("strategic_referral_win_rate", "2024-Q3") == (0, 0, None)


def test_the_plain_logic_imports_no_dagster():
    """referral_pipeline.lib (models, readers, validation, KPI and facts SQL, the detector) stands alone."""
    modules = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "referral_pipeline" / "lib").glob("*.py"))
    assert {"kpis", "sources", "validation", "text_signals"} <= set(modules)
    code = (
        "import sys\n"
        + "".join(f"import referral_pipeline.lib.{m}\n" for m in modules if m != "__init__")
        + "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('dagster')}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_dg_launch_runs_the_same_definitions(tmp_path):
    """`dg launch` (dagster-dg-cli, configured in [tool.dg]) materialises a quarter like the contract's command."""
    pipeline = Pipeline(data_dir=tmp_path / "exports", warehouse=tmp_path / "wh" / "kpis.duckdb")
    worked_examples().write(pipeline.data_dir)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    env.update(REFERRAL_DATA_DIR=str(pipeline.data_dir), REFERRAL_WAREHOUSE=str(pipeline.warehouse))
    done = subprocess.run(
        [str(DAGSTER.with_name("dg")), "launch", "--assets", "*", "--partition", "2025-04-01"],
        env=env, capture_output=True, text=True, timeout=300, cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert pipeline.kpi("strategic_referral_win_rate", "2025-Q2") == (24, 40, 60.0)
    assert pipeline.kpi("qbr_referral_intent_rate", "2025-Q2") == (18, 60, 30.0)
