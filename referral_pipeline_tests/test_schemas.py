"""The pandera models are real pandera models: the staged sample validates with them, and the
cross-column rules they hold flag the same rows in pandas as in the pipeline's SQL."""

from pathlib import Path

import duckdb
import pandas as pd
import pandera.pandas as pa
import pytest

from referral_pipeline.lib import schemas
from referral_pipeline.lib.sources import SOURCES
from referral_pipeline.lib.validation import stage_source

SAMPLE = Path(__file__).resolve().parent.parent / "data"


def test_the_staged_sample_data_satisfies_every_model(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("SET TimeZone = 'UTC'")
    for source in SOURCES:
        result = stage_source(con, source, source.locate(SAMPLE))
        assert result.staged_rows > 0
        source.model.validate(con.execute(f"SELECT * FROM {source.staging_table}").df(), lazy=True)


def test_a_cross_column_rule_fails_in_pandera_as_in_sql():
    frame = pd.DataFrame(
        {
            "opportunity_id": ["O1", "O2"], "account_id": ["A1", "A1"], "owner": [None, None],
            "stage": ["closed_won", "proposal"], "amount": [1.0, None],
            "created_at": pd.to_datetime(["2025-04-02", "2025-04-02"], utc=True),
            "closed_at": pd.to_datetime(["2025-04-01", None], utc=True),
            "lead_source": ["referral", "other"], "referral_source_type": [None, None],
            "referrer_id": [None, None], "vertical": [None, None],
        }
    )
    with pytest.raises(pa.errors.SchemaErrors, match="closed_at: before created_at"):
        schemas.Opportunities.validate(frame, lazy=True)
    frame.loc[0, "closed_at"] = pd.Timestamp("2025-04-03", tz="UTC")
    schemas.Opportunities.validate(frame, lazy=True)
