"""Accuracy and speed of the referral-intent detector.

Prints precision / recall / F1 overall and per category on the labelled set in
bench/qbr_signal_eval/notes.jsonl, then times the detector on N synthetic
~500-character notes next to one plain regular-expression pass over the same
notes.

    python bench/bench_text_signals.py [--notes N] [--seed S]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from referral_pipeline.lib.text_signals import detect_referral_evidence  # noqa: E402
from bench.qbr_signal_eval.scoring import evaluate  # noqa: E402

FILLER = [
    "Usage up 12% QoQ across the finance team.",
    "Renewal is due in November and pricing stays flat.",
    "They raised the CSV import limit again; logged with product.",
    "Champion is moving to a new role in January.",
    "Support tickets down from 40 to 18 since the routing change.",
    "Asked for the SOC2 Type II report and the DPA.",
    "Exec sponsor joined for the last 15 minutes.",
    "Training for new hires scheduled for the 14th.",
    "Adoption of the mobile app is still low in the warehouses.",
    "Budget for next year pending their board approval.",
    "SSO migration planned for Q3, blocked on their IdP team.",
    "They want write-back to Snowflake on the roadmap.",
    "Overall sentiment positive, no escalations this quarter.",
    "Two P2 incidents in March, RCA shared and accepted.",
    "Discussed seat true-up and the invoice format issue.",
]
CANDIDATES = [
    "Happy to refer us to peers once the rollout is done.",
    "Not ready to refer yet, want to see Q3 numbers.",
    "Please refer to ticket 4411 for details.",
    "Intro call with the new admin next week.",
    "Might be open to a case study later in the year.",
    "Offered to introduce us to their CFO.",
    "We recommended they upgrade to the Pro tier.",
    "Would they be a reference? Didn't ask.",
]


def synthetic_notes(count: int, seed: int, candidate_share: float = 0.15) -> list[str]:
    """~500-character notes; `candidate_share` of them mention a trigger word."""
    rng = random.Random(seed)
    notes = []
    for _ in range(count):
        sentences = rng.sample(FILLER, 9)
        if rng.random() < candidate_share:
            sentences[rng.randrange(9)] = rng.choice(CANDIDATES)
        notes.append(" ".join(sentences)[:500])
    return notes


def print_accuracy() -> None:
    header = f"{'category':<22}{'n':>5}{'pos':>5}{'TP':>5}{'FP':>5}{'FN':>5}{'prec':>8}{'recall':>8}{'F1':>8}{'acc':>8}"
    print(header)
    print("-" * len(header))
    for category, s in evaluate().items():
        print(
            f"{category:<22}{s.support:>5}{s.positives:>5}{s.true_positives:>5}{s.false_positives:>5}"
            f"{s.false_negatives:>5}{s.precision:>8.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.accuracy:>8.3f}"
        )


def print_speed(count: int, seed: int) -> None:
    notes = synthetic_notes(count, seed)
    plain = re.compile(r"refer|introduc|recommend", re.I).search

    start = time.perf_counter()
    plain_hits = sum(1 for note in notes if plain(note))
    plain_seconds = time.perf_counter() - start

    start = time.perf_counter()
    found = sum(evidence is not None for evidence in detect_referral_evidence(notes))
    detector_seconds = time.perf_counter() - start

    print(
        f"\n{count:,} synthetic notes (~500 chars): plain regex {plain_seconds:.2f}s ({plain_hits:,} hits), "
        f"detector {detector_seconds:.2f}s ({found:,} signals), ratio {detector_seconds / plain_seconds:.2f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=1_000_000, help="synthetic notes to time (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print_accuracy()
    print_speed(args.notes, args.seed)


if __name__ == "__main__":
    main()
