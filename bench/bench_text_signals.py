"""Accuracy and speed of the referral-intent detector.

Prints precision / recall / F1 overall and per category on each labelled set
(bench/qbr_signal_eval/scoring.py EVAL_SETS: "old" = notes.jsonl, "fresh1" and
"fresh2" = both halves of fresh/ and fresh2/, "fresh3" = fresh3/tuning.jsonl, the
regression sets; "validation" = fresh3/heldout.jsonl, aggregate only; "tuning" and
"heldout" = the two halves of fresh4/, round 4; "fresh5" = round 5's held-out set,
aggregate only), then times the detector on N synthetic ~500-character notes next
to one plain regular-expression pass over the same notes, and with the opt-in
model's second opinion (`--model` scores the sets with it too).

    python bench/bench_text_signals.py [--sets old,fresh1,fresh2,fresh3,validation,tuning,heldout] [--errors] [--notes N] [--seed S]

The held-out halves are scored only when named in --sets (default: old,fresh1,fresh2,fresh3,tuning).

`--errors` lists the misclassified notes with their evidence, for every set but
the held-out sets ("validation", "heldout", "fresh5"): those are reported in aggregate
per category and their notes and errors are never printed. `--notes 0` skips the timing.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from referral_pipeline.lib.signal_model import default_model  # noqa: E402
from referral_pipeline.lib.text_signals import detect_referral_evidence  # noqa: E402
from bench.qbr_signal_eval.scoring import (  # noqa: E402
    EVAL_SETS,
    HELD_OUT,
    errors,
    format_table,
    load_named_set,
    predict,
    score_by_category,
)

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


def print_accuracy(name: str, show_errors: bool = False, model=None) -> None:
    eval_set = load_named_set(name)
    evidence = predict(eval_set, model)
    root = Path(__file__).resolve().parent.parent
    files = " + ".join(str(path.relative_to(root)) for path in EVAL_SETS[name])
    print(f"== {name}{' (rules + model)' if model else ''}: {files} ({len(eval_set)} notes)")
    print(format_table(score_by_category(eval_set, [found is not None for found in evidence])))
    if show_errors and name not in HELD_OUT:
        for note, found in errors(eval_set, evidence):
            kind = "FN" if note.label else "FP"
            print(f"\n{kind} {note.id} [{note.category}] evidence={found!r}\n    {note.notes!r}")
    print()


def print_speed(count: int, seed: int) -> None:
    notes = synthetic_notes(count, seed)
    plain = re.compile(r"refer|introduc|recommend", re.I).search

    start = time.perf_counter()
    plain_hits = sum(1 for note in notes if plain(note))
    plain_seconds = time.perf_counter() - start

    start = time.perf_counter()
    found = sum(evidence is not None for evidence in detect_referral_evidence(notes))
    detector_seconds = time.perf_counter() - start

    start = time.perf_counter()
    found_with_model = sum(evidence is not None for evidence in detect_referral_evidence(notes, model=default_model()))
    model_seconds = time.perf_counter() - start

    print(
        f"\n{count:,} synthetic notes (~500 chars): plain regex {plain_seconds:.2f}s ({plain_hits:,} hits), "
        f"detector {detector_seconds:.2f}s ({found:,} signals), ratio {detector_seconds / plain_seconds:.2f}x; "
        f"with the opt-in model {model_seconds:.2f}s ({found_with_model:,} signals)"
    )


def print_typo_collisions(word_list: str) -> None:
    """Real words (one a line in `word_list`) that the fuzzy index would correct: candidates for
    the vocabulary's [fuzzy] not_typos."""
    from referral_pipeline.lib.text_signals import load_vocabulary

    fuzzy = load_vocabulary().fuzzy
    seen = set()
    for line in open(word_list, encoding="utf-8", errors="replace"):
        word = line.strip().lower()
        if word in seen or not (word.isascii() and word.isalpha() and len(word) >= 4):
            continue
        seen.add(word)
        fixed = fuzzy.lookup(word)
        if fixed and fixed != word:
            print(f"{word} -> {fixed}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notes", type=int, default=1_000_000, help="synthetic notes to time (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--sets",
        default="old,fresh1,fresh2,fresh3,tuning",
        help="labelled sets to score, of " + ", ".join(EVAL_SETS) + " (default: old,fresh1,fresh2,fresh3,tuning; the held-out"
        " halves only when named, in aggregate)",
    )
    parser.add_argument(
        "--errors", action="store_true", help="list misclassified notes (never for the held-out halves)"
    )
    parser.add_argument("--model", action="store_true", help="score with the opt-in model's second opinion")
    parser.add_argument(
        "--typo-collisions",
        metavar="WORD_LIST",
        help="only list the real words of WORD_LIST (one a line) that the fuzzy index would correct",
    )
    args = parser.parse_args()
    if args.typo_collisions:
        print_typo_collisions(args.typo_collisions)
        return
    for name in filter(None, args.sets.split(",")):
        if name not in EVAL_SETS:
            parser.error(f"unknown set {name!r}; choose from {', '.join(EVAL_SETS)}")
        print_accuracy(name, args.errors, default_model() if args.model else None)
    if args.notes:
        print_speed(args.notes, args.seed)


if __name__ == "__main__":
    main()
