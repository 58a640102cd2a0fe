"""Load the labelled QBR-notes evaluation set and score detector predictions."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EVAL_PATH = Path(__file__).with_name("notes.jsonl")
FRESH1_DIR = Path(__file__).with_name("fresh")
FRESH2_DIR = Path(__file__).with_name("fresh2")
FRESH3_DIR = Path(__file__).with_name("fresh3")
FRESH4_DIR = Path(__file__).with_name("fresh4")
FRESH5_DIR = Path(__file__).with_name("fresh5")

# The labelled sets by name, each one or more JSON-lines files read in order (each fresh set was
# split once by split_set.py, with the seed named there):
# - "old": notes.jsonl, the regression set the rules were first tuned on;
# - "fresh1": both halves of the first fresh set (fresh/, round 1); its held-out half has been
#   spent on its final score, so the whole set is now regression / tuning material;
# - "fresh2": both halves of the second fresh set (fresh2/, round 2), likewise spent;
# - "fresh3": the tuning half of the third fresh set (fresh3/, round 3), regression material;
# - "validation": the held-out half of the third set, scored once at the end of round 3. Its notes
#   and errors have never been read; it stays aggregate-only, a guard against rules that fit the
#   tuning notes alone (a change that helps "tuning" but not "validation" is suspect);
# - "tuning" and "heldout": the two halves of the fourth fresh set (fresh4/, round 4). The
#   held-out half is a benchmark: score it only in aggregate (per category), never read its notes
#   or errors.
# - "fresh5": 440 notes by four more writers (fresh5/, round 5), never split: the held-out set of
#   round 5, which fits no rule by hand. Aggregate scores only, never read its notes or errors.
# Every set is also training data of the detector's model (bench/train_signal_model.py): fresh5
# joined it after its one aggregate score, so the model's scores on all of them are in-sample.
EVAL_SETS: dict[str, tuple[Path, ...]] = {
    "old": (DEFAULT_EVAL_PATH,),
    "fresh1": (FRESH1_DIR / "tuning.jsonl", FRESH1_DIR / "heldout.jsonl"),
    "fresh2": (FRESH2_DIR / "tuning.jsonl", FRESH2_DIR / "heldout.jsonl"),
    "fresh3": (FRESH3_DIR / "tuning.jsonl",),
    "validation": (FRESH3_DIR / "heldout.jsonl",),
    "tuning": (FRESH4_DIR / "tuning.jsonl",),
    "heldout": (FRESH4_DIR / "heldout.jsonl",),
    "fresh5": tuple(FRESH5_DIR / f"writer_{writer}.jsonl" for writer in "qrst"),
}
# Never printed note by note (bench_text_signals.py --errors skips them).
HELD_OUT = frozenset({"validation", "heldout", "fresh5"})


@dataclass(frozen=True)
class EvalNote:
    id: str
    notes: str | None
    label: bool
    category: str
    judgement: str | None = None


@dataclass(frozen=True)
class Score:
    support: int
    positives: int
    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        predicted = self.true_positives + self.false_positives
        return self.true_positives / predicted if predicted else 1.0

    @property
    def recall(self) -> float:
        return self.true_positives / self.positives if self.positives else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    @property
    def accuracy(self) -> float:
        return 1 - (self.false_positives + self.false_negatives) / self.support if self.support else 1.0


def load_eval_set(path: str | os.PathLike | None = None) -> list[EvalNote]:
    """Read the JSON-lines evaluation set."""
    with open(path or DEFAULT_EVAL_PATH, encoding="utf-8") as handle:
        return [
            EvalNote(
                id=row["id"],
                notes=row["notes"],
                label=bool(row["label"]),
                category=row["category"],
                judgement=row.get("judgement"),
            )
            for row in map(json.loads, filter(str.strip, handle))
        ]


def load_named_set(name: str) -> list[EvalNote]:
    """One of EVAL_SETS by name ("old", "fresh1", "tuning", "heldout"), its files concatenated."""
    return [note for path in EVAL_SETS[name] for note in load_eval_set(path)]


def score(labels: list[bool], predictions: list[bool]) -> Score:
    """Confusion counts of boolean predictions against labels."""
    pairs = list(zip(labels, predictions, strict=True))
    return Score(
        support=len(pairs),
        positives=sum(label for label, _ in pairs),
        true_positives=sum(label and pred for label, pred in pairs),
        false_positives=sum(pred and not label for label, pred in pairs),
        false_negatives=sum(label and not pred for label, pred in pairs),
    )


def score_by_category(eval_set: list[EvalNote], predictions: list[bool]) -> dict[str, Score]:
    """`score` overall (key "ALL") and per category."""
    groups: dict[str, tuple[list[bool], list[bool]]] = defaultdict(lambda: ([], []))
    for note, prediction in zip(eval_set, predictions, strict=True):
        for key in ("ALL", note.category):
            groups[key][0].append(note.label)
            groups[key][1].append(prediction)
    return {key: score(labels, preds) for key, (labels, preds) in sorted(groups.items())}


def predict(eval_set: list[EvalNote], model=None) -> list[str | None]:
    """The detector's evidence (None: no signal) for each note of the set (`model`: the opt-in
    second opinion, `signal_model.SignalModel`)."""
    from referral_pipeline.lib.text_signals import detect_referral_evidence

    return detect_referral_evidence((note.notes for note in eval_set), model=model)


def evaluate(eval_set: list[EvalNote] | str | None = None) -> dict[str, Score]:
    """Run the detector on an evaluation set (a list, a name of EVAL_SETS, default "old") and score it."""
    if eval_set is None or isinstance(eval_set, str):
        eval_set = load_named_set(eval_set or "old")
    return score_by_category(eval_set, [found is not None for found in predict(eval_set)])


def format_table(scores: dict[str, Score]) -> str:
    """Per-category table of `score_by_category` output, "ALL" last."""
    header = (
        f"{'category':<30}{'n':>5}{'pos':>5}{'TP':>5}{'FP':>5}{'FN':>5}"
        f"{'prec':>8}{'recall':>8}{'F1':>8}{'acc':>8}"
    )
    lines = [header, "-" * len(header)]
    keys = [key for key in scores if key != "ALL"] + (["ALL"] if "ALL" in scores else [])
    for key in keys:
        s = scores[key]
        if key == "ALL":
            lines.append("-" * len(header))
        lines.append(
            f"{key:<30}{s.support:>5}{s.positives:>5}{s.true_positives:>5}{s.false_positives:>5}"
            f"{s.false_negatives:>5}{s.precision:>8.3f}{s.recall:>8.3f}{s.f1:>8.3f}{s.accuracy:>8.3f}"
        )
    return "\n".join(lines)


def errors(eval_set: list[EvalNote], evidence: list[str | None]) -> list[tuple[EvalNote, str | None]]:
    """The misclassified notes with the detector's evidence (for debugging "old", "fresh1" and
    "tuning"; never call it on the held-out half)."""
    return [
        (note, found)
        for note, found in zip(eval_set, evidence, strict=True)
        if (found is not None) != note.label
    ]
