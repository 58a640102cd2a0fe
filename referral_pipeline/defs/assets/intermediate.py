"""Intermediate: the referral signal of every QBR, from its tags and its notes, with evidence."""

import time
from collections.abc import Iterator

import pyarrow as pa
from dagster import (
    AssetCheckResult,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from referral_pipeline.defs.assets.staging import STAGING_KEYS
from referral_pipeline.defs.partitions import quarterly_partitions
from referral_pipeline.defs.quarterly import QUARTERLY, record_per_quarter, rows_per_quarter, start_run
from referral_pipeline.lib.detector_memo import detector_version, prune_memo, remember_sql, unjudged_sql, verdicts_sql
from referral_pipeline.lib.fingerprints import signals_fingerprints
from referral_pipeline.lib.kpis import QBRS_IN_RUN
from referral_pipeline.lib.quarters import IN_RUN, replace_quarters
from referral_pipeline.lib.sources import sql_literal
from referral_pipeline.defs.resources import KpiConfig, Warehouse
from referral_pipeline.lib.text_signals import detect_referral_evidence_in_batches, screen_pattern
from referral_pipeline.lib.validation import WHITE_SPACE

SIGNALS = "qbr_referral_signals"
SIGNALS_TABLE = f"intermediate.{SIGNALS}"
SIGNALS_DDL = """
    qbr_id VARCHAR NOT NULL,
    referral_signal BOOLEAN NOT NULL,
    signal_source VARCHAR,         -- tag, text, tag+text, or NULL without a signal
    evidence VARCHAR,              -- the matched sentence of the notes, else the matched tag
    quarter VARCHAR NOT NULL       -- the quarter the QBR was held in
"""
SIGNALS_SQL = f"""
    WITH qbrs AS ({QBRS_IN_RUN}),
    tagged AS (
        SELECT qbr_id, quarter,
               list_filter(tags, lambda t: list_contains($referral_tags, lower(trim(t, {sql_literal(WHITE_SPACE)}))))[1]
                   AS tag_evidence
        FROM qbrs
    )
    SELECT qbr_id,
           tag_evidence IS NOT NULL OR text_evidence IS NOT NULL AS referral_signal,
           CASE WHEN tag_evidence IS NOT NULL AND text_evidence IS NOT NULL THEN 'tag+text'
                WHEN tag_evidence IS NOT NULL THEN 'tag'
                WHEN text_evidence IS NOT NULL THEN 'text' END AS signal_source,
           coalesce(text_evidence, tag_evidence) AS evidence,
           quarter
    FROM tagged LEFT JOIN text_signals USING (qbr_id)
    ORDER BY quarter, qbr_id
"""
# The detector's cheap first screen, run in DuckDB (multi-threaded) so only candidate notes reach
# Python. The screen is a plain alternation of literal stems, which RE2 matches as Python does; a note
# with non-ASCII text always goes to Python, whose lower-casing may differ from DuckDB's there.
_CANDIDATE = "notes IS NOT NULL AND (strlen(notes) <> length(notes) OR regexp_matches(lower(notes), $screen))"
_EVIDENCE_SAMPLE = 10
_NOTES_BATCH = 20_000
_VERDICTS = pa.schema([("notes_md5", pa.string()), ("evidence", pa.string())])
ONE_ROW_PER_QBR = "one_row_per_qbr"
_PROGRESS_FROM_NOTES = 100_000  # below this many texts to judge, no progress lines
_PROGRESS_STEPS = 10


def _with_progress(context: AssetExecutionContext, judged: Iterator[tuple[pa.RecordBatch, list]], total: int):
    """Yield the detector's (batch, verdicts) pairs, logging every tenth of ``total`` texts judged."""
    done, reported, started = 0, 0, time.monotonic()
    for batch, found in judged:
        yield batch, found
        done += batch.num_rows
        if total >= _PROGRESS_FROM_NOTES and done < total and done * _PROGRESS_STEPS // total > reported:
            reported = done * _PROGRESS_STEPS // total
            elapsed = time.monotonic() - started
            context.log.info(
                f"detector: {done:,} of {total:,} texts judged ({done / total:.0%}) in {elapsed:.0f} s, "
                f"about {elapsed * (total - done) / done:.0f} s left"
            )


@asset(
    key=["intermediate", SIGNALS],
    deps=[STAGING_KEYS["qbr_notes"]],
    partitions_def=quarterly_partitions,
    group_name="intermediate",
    kinds={"duckdb", "python"},
    description=(
        "One row per QBR held in the quarter: whether the customer showed willingness to refer, "
        "introduce or recommend (referral_signal), found through a referral tag, the notes' text, "
        "or both (signal_source), and the sentence or tag that shows it (evidence)."
    ),
    metadata={"dagster/table_name": SIGNALS_TABLE},
    check_specs=[
        AssetCheckSpec(
            ONE_ROW_PER_QBR,
            asset=["intermediate", SIGNALS],
            description="Exactly one row per QBR held in each quarter written.",
        )
    ],
    **QUARTERLY,
)
def qbr_referral_signals(
    context: AssetExecutionContext, kpi_config: KpiConfig, warehouse: Warehouse
) -> MaterializeResult:
    with warehouse.connect() as con:
        quarters = start_run(context, con)
        prune_memo(con)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE candidate_notes AS SELECT qbr_id, notes, md5(notes) AS notes_md5 "
            f"FROM ({QBRS_IN_RUN}) WHERE {_CANDIDATE}",
            {"screen": screen_pattern()},
        )
        batches = list(con.sql(unjudged_sql("candidate_notes")).to_arrow_reader(_NOTES_BATCH))
        unjudged = sum(batch.num_rows for batch in batches)
        [(notes, candidates)] = con.execute(
            f"SELECT (SELECT count(notes) FROM ({QBRS_IN_RUN})), (SELECT count(*) FROM candidate_notes)"
        ).fetchall()
        context.log.info(
            f"{notes} QBRs held in {min(quarters.values())}..{max(quarters.values())} have notes; "
            f"{candidates} hold a candidate word; {unjudged} distinct texts of them go to the detector "
            f"(the others were judged before by detector version {detector_version()})"
        )
        evidence = detect_referral_evidence_in_batches(
            (batch["notes"].to_pylist() for batch in batches), unjudged
        )
        verdicts = pa.Table.from_batches(
            [
                pa.record_batch([batch["notes_md5"], pa.array(found, pa.string())], schema=_VERDICTS)
                for batch, found in _with_progress(context, zip(batches, evidence), unjudged)
            ],
            schema=_VERDICTS,
        )
        con.register("verdicts", verdicts)
        con.execute(remember_sql("verdicts"), {"version": detector_version()})
        con.unregister("verdicts")
        con.execute(f"CREATE OR REPLACE TEMP VIEW text_signals AS {verdicts_sql('candidate_notes')}")
        written = replace_quarters(
            con, SIGNALS_TABLE, SIGNALS_DDL, SIGNALS_SQL, {"referral_tags": kpi_config.referral_tags}
        )
        by_source = dict(
            con.execute(
                f"SELECT coalesce(signal_source, 'none'), count(*) FROM {SIGNALS_TABLE} "
                f"WHERE {IN_RUN} GROUP BY ALL ORDER BY 1"
            ).fetchall()
        )
        (qbrs, distinct) = con.execute(
            f"SELECT (SELECT count(*) FROM ({QBRS_IN_RUN})), (SELECT count(DISTINCT qbr_id) FROM "
            f"{SIGNALS_TABLE} WHERE {IN_RUN})"
        ).fetchone()
        fingerprints = signals_fingerprints(con, kpi_config.referral_tags)
        rows = rows_per_quarter(con, SIGNALS_TABLE)
        sample = con.execute(
            f"SELECT quarter, qbr_id, signal_source, evidence FROM {SIGNALS_TABLE} "
            f"WHERE {IN_RUN} AND signal_source LIKE '%text' "
            f"ORDER BY hash(qbr_id) LIMIT {_EVIDENCE_SAMPLE}"
        ).df()
    context.log.info(f"{SIGNALS_TABLE}: {written} QBRs, by signal source {by_source}")
    return MaterializeResult(
        data_version=record_per_quarter(context, quarters, rows, fingerprints),
        metadata={
            "qbrs_by_signal_source": MetadataValue.json(by_source),
            "evidence_sample": MetadataValue.md(sample.to_markdown(index=False)),
        },
        check_results=[
            AssetCheckResult(
                check_name=ONE_ROW_PER_QBR,
                passed=written == qbrs == distinct,
                metadata={"rows": written, "qbrs_held": qbrs, "distinct_qbr_ids": distinct},
            )
        ],
    )
