"""docs/kpis.md is the one generated from the KPI declarations, and names every table and dimension."""

from referral_pipeline.defs.resources import PROJECT_DIR
from referral_pipeline.lib.kpi_docs import kpi_docs_markdown
from referral_pipeline.lib.kpis import FACTS, KPIS


def test_the_committed_kpi_docs_are_the_generated_ones():
    docs = (PROJECT_DIR / "docs" / "kpis.md").read_text(encoding="utf-8")
    assert docs == kpi_docs_markdown()
    for kpi in KPIS:
        assert f"`{kpi.table}`" in docs and all(f"`{d}`" in docs for d in kpi.all_dimensions)
    assert all(f"### `{facts.table}`" in docs for facts in FACTS)
