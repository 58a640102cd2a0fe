"""The QBR signals step: progress lines while the detector judges many notes."""

from dagster import DagsterInstance

from referral_pipeline.defs.assets import intermediate
from referral_pipeline_tests.fixtures import SourceSet, account, qbr


def test_the_detector_logs_its_progress_by_tenths(pipeline, monkeypatch):
    # Our own thresholds made small, so ten notes give the progress lines 100,000 would.
    monkeypatch.setattr(intermediate, "_PROGRESS_FROM_NOTES", 1)
    monkeypatch.setattr(intermediate, "_NOTES_BATCH", 2)
    s = SourceSet()
    s.accounts.append(account("C1"))
    s.qbr_notes += [qbr(f"Q{i}", "C1", "2025-04-01", notes=f"Note {i}: they offered to refer us.") for i in range(10)]
    s.write(pipeline.data_dir)
    instance = DagsterInstance.ephemeral()
    result = pipeline.run("2025-04-01", instance=instance)
    messages = [e.user_message for e in instance.all_logs(result.run_id) if "texts judged" in e.user_message]
    assert [m.split(" in ")[0] for m in messages] == [
        f"detector: {n} of 10 texts judged ({n * 10}%)" for n in (2, 4, 6, 8)
    ]
