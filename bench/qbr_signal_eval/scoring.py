"""Load the labelled QBR-notes evaluation set and score detector predictions."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EVAL_PATH = Path(__file__).with_name("notes.jsonl")


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


def evaluate(eval_set: list[EvalNote] | None = None) -> dict[str, Score]:
    """Run the detector on the evaluation set and score it."""
    from referral_pipeline.lib.text_signals import detect_referral_evidence

    eval_set = eval_set if eval_set is not None else load_eval_set()
    evidence = detect_referral_evidence(note.notes for note in eval_set)
    return score_by_category(eval_set, [found is not None for found in evidence])
