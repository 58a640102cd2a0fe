"""The detector's verdicts, remembered by note text: a note is judged once per detector version.

The notes detector is a pure function of a note's text, the vocabulary and the detector's code
(and of Python's Unicode tables, through lower-casing). ``intermediate.detector_memo`` keeps its
verdict (the evidence, NULL for none) for every note text it has judged, keyed by the text's MD5,
under ``detector_version()``; a run judges only the texts it has no verdict for. Re-running a quarter
whose notes did not change, or the daily refresh of the quarter in progress, then costs a lookup,
not the detector. Verdicts of another detector version, and of texts no staged note holds any more,
are deleted at the start of each run.
"""

from __future__ import annotations

import functools
import hashlib
import sys
import unicodedata
from pathlib import Path

from referral_pipeline.lib import text_signals

MEMO_TABLE = "intermediate.detector_memo"
MEMO_DDL = f"""
CREATE TABLE IF NOT EXISTS {MEMO_TABLE} (
    notes_md5 VARCHAR NOT NULL,         -- md5 of the note's text
    detector_version VARCHAR NOT NULL,  -- detector_version() of the verdict
    evidence VARCHAR                    -- the detector's evidence; NULL: no signal in the text
)
"""


@functools.cache
def detector_version() -> str:
    """What a verdict depends on besides the text: the detector's code, its vocabulary, Python's
    Unicode (read once per process, when first asked, not when the definitions are imported)."""
    digest = hashlib.sha256()
    for path in (Path(text_signals.__file__), text_signals.DEFAULT_VOCABULARY_PATH):
        digest.update(path.read_bytes())
    digest.update(f"{sys.version_info[:2]}:{unicodedata.unidata_version}".encode())
    return digest.hexdigest()[:16]


def prune_memo(con) -> None:
    """Create the memo if missing; drop verdicts of another version or of texts no longer staged."""
    con.execute("CREATE SCHEMA IF NOT EXISTS intermediate")
    con.execute(MEMO_DDL)
    con.execute(
        f"""
        DELETE FROM {MEMO_TABLE}
        WHERE detector_version <> $version
           OR notes_md5 NOT IN (SELECT md5(notes) FROM staging.qbr_notes WHERE notes IS NOT NULL)
        """,
        {"version": detector_version()},
    )


def unjudged_sql(candidates: str) -> str:
    """The distinct texts of ``candidates`` (a table with ``notes`` and ``notes_md5``) the memo has
    no verdict for."""
    return f"""
        SELECT notes_md5, any_value(notes) AS notes
        FROM {candidates} c
        WHERE NOT EXISTS (SELECT 1 FROM {MEMO_TABLE} m WHERE m.notes_md5 = c.notes_md5)
        GROUP BY notes_md5
    """


def remember_sql(verdicts: str) -> str:
    """Insert ``verdicts`` (notes_md5, evidence) into the memo under this detector version."""
    return f"INSERT INTO {MEMO_TABLE} SELECT notes_md5, $version, evidence FROM {verdicts}"


def verdicts_sql(candidates: str) -> str:
    """Each QBR of ``candidates`` with its text's verdict: qbr_id, text_evidence."""
    return f"""
        SELECT c.qbr_id, m.evidence AS text_evidence
        FROM {candidates} c JOIN {MEMO_TABLE} m USING (notes_md5)
    """
