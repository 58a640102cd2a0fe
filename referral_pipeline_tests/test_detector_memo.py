"""The detector memo: each note text is judged once per detector version, and the memo stays bounded."""

import duckdb

from referral_pipeline.lib.detector_memo import detector_version, MEMO_TABLE
from referral_pipeline_tests.fixtures import SourceSet, account, qbr

Q2 = "2025-04-01"
OFFER = "Reviewed usage. They offered to introduce us to their CFO."
PLAIN = "Reviewed the roadmap and the renewal; intro call with their new admin next week."


def _signals(pipeline):
    return pipeline.query("SELECT qbr_id, evidence FROM intermediate.qbr_referral_signals ORDER BY 1")


def _edit_memo(pipeline, sql: str, params: list) -> None:
    with duckdb.connect(str(pipeline.warehouse)) as con:
        con.execute(sql, params)


def test_a_note_text_is_judged_once_and_its_verdict_reused(pipeline):
    s = SourceSet()
    s.accounts.append(account("C1"))
    s.qbr_notes += [
        qbr("Q1", "C1", "2025-04-01", notes=OFFER),
        qbr("Q2", "C1", "2025-04-02", notes=OFFER),  # the same text: one verdict
        qbr("Q3", "C1", "2025-04-03", notes=PLAIN),
        qbr("Q4", "C1", "2025-04-04", notes="Usage up 12%."),  # no candidate word: never judged
    ]
    s.write(pipeline.data_dir)
    pipeline.run(Q2)
    evidence = "They offered to introduce us to their CFO."
    assert _signals(pipeline) == [("Q1", evidence), ("Q2", evidence), ("Q3", None), ("Q4", None)]
    assert pipeline.query(f"SELECT notes_md5, detector_version, evidence FROM {MEMO_TABLE} ORDER BY evidence") == [
        (pipeline.query("SELECT md5(?)", [OFFER])[0][0], detector_version(), evidence),
        (pipeline.query("SELECT md5(?)", [PLAIN])[0][0], detector_version(), None),
    ]

    # A verdict in the memo is used as it stands: the text is not judged again.
    _edit_memo(pipeline, f"UPDATE {MEMO_TABLE} SET evidence = ? WHERE evidence IS NULL", ["(remembered)"])
    pipeline.run(Q2)
    assert _signals(pipeline) == [("Q1", evidence), ("Q2", evidence), ("Q3", "(remembered)"), ("Q4", None)]

    # Verdicts of another detector version are dropped and the texts judged again.
    _edit_memo(pipeline, f"UPDATE {MEMO_TABLE} SET detector_version = ?", ["an older detector"])
    pipeline.run(Q2)
    assert _signals(pipeline) == [("Q1", evidence), ("Q2", evidence), ("Q3", None), ("Q4", None)]
    assert pipeline.query(f"SELECT DISTINCT detector_version FROM {MEMO_TABLE}") == [(detector_version(),)]


def test_verdicts_of_texts_no_longer_staged_are_dropped(pipeline):
    s = SourceSet()
    s.accounts.append(account("C1"))
    s.qbr_notes.append(qbr("Q1", "C1", "2025-04-01", notes=OFFER))
    s.write(pipeline.data_dir)
    pipeline.run(Q2)
    s.qbr_notes[0]["notes"] = PLAIN  # the note was edited in the CRM
    s.write(pipeline.data_dir)
    pipeline.run(Q2)
    assert pipeline.query(f"SELECT notes_md5, evidence FROM {MEMO_TABLE}") == [
        (pipeline.query("SELECT md5(?)", [PLAIN])[0][0], None)
    ]
    assert _signals(pipeline) == [("Q1", None)]
