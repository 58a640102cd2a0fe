"""A small linear model of referral intent in QBR notes, a second opinion beside the rules.

The rules in `text_signals` find evidence sentence by sentence; on notes by writers they were never
tuned on they miss phrasings nobody wrote a rule for and keep some false signals a writer's own
style brings. This model scores a whole note from the words and word pairs it holds (idf-weighted): a logistic
regression trained offline (`bench/train_signal_model.py`) on the project's labelled notes, its
weights in `qbr_signal_model.json`. It runs on the CPU in pure Python, with no dependency.

Opt-in: the pipeline does not use it. On the labelled notes of writers it never saw it lifts the
detector's F1 from 0.886 to 0.929 (leave-one-writer-out, bench/qbr_signal_eval/README.md), but on
templated notes unlike any it was trained on (the generator's sample data) it promotes notes of
filler and vetoes real signals: about 2 % of the generated QBRs change, with an evidence sentence
that states nothing. It stays out of the KPIs until it passes that test too.

How the detector uses it (`text_signals.detect_referral_evidence(..., model=default_model())`), on notes that pass the screen
and have at least `min_words` words (on shorter ones the rules decide alone):
- the rules found evidence, the model's probability is below `veto_below`: no signal;
- the note has no trigger, the probability is at least `promote_above`; or the rules rejected
  every trigger (a negation, a blocker, ...), the probability is at least `overrule_above`: a
  signal, and the evidence is the note's sentence (split as the rules split them) the model scores
  highest.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass
from functools import cache
from itertools import repeat
from pathlib import Path

DEFAULT_MODEL_PATH = Path(__file__).with_name("qbr_signal_model.json")

# Tokens: the text split at white space and punctuation; "?" and "!" (which change a sentence's
# sense) are tokens of their own. Everything else (letters and digits of any script) stays in words.
_PUNCTUATION = "\"#$%&'()*+,-./:;<=>@[\\]^`{|}~\u2018\u2019\u201c\u201d\u2013\u2014\u2026\u2022\u00b7\u00ab\u00bb\u3001\u3002\uff0c\uff1b\uff1a"
_SPLIT = str.maketrans({**dict.fromkeys(_PUNCTUATION, " "), "?": " ? ", "!": " ! ", "\uff1f": " ? ", "\uff01": " ! "})


def tokens(lower: str) -> list[str]:
    """The words of lower-cased text, in order."""
    return lower.translate(_SPLIT).split()


def ngrams(lower: str) -> list[str]:
    """Every word and pair of adjacent words of lower-cased text, in order, repeats kept (the model's
    features; a pair's words joined by a space). Triples of words scored alike in --cv, and cost more."""
    words = tokens(lower)
    return [*words, *map(" ".join, zip(words, words[1:]))]


def inverse_document_frequencies(texts: list[str], min_notes: int) -> tuple[dict[str, float], float]:
    """Smoothed idf, ln((1 + n) / (1 + notes holding the n-gram)) + 1, of the n-grams in at least
    `min_notes` of the lower-cased `texts`; and the one idf every rarer n-gram gets."""
    held: Counter[str] = Counter()
    for text in texts:
        held.update(set(ngrams(text)))
    n = len(texts)
    idf = {gram: math.log((1 + n) / (1 + k)) + 1 for gram, k in held.items() if k >= min_notes}
    return idf, math.log((1 + n) / min_notes) + 1


def features(lower: str, idf: dict[str, float], rare_idf: float) -> dict[str, float]:
    """Each n-gram the text holds, valued by its idf, the whole scaled to unit length (a repeated
    n-gram counts once): the model's input, in training and in `SignalModel.probability`."""
    values = {gram: idf.get(gram, rare_idf) for gram in set(ngrams(lower))}
    norm = math.sqrt(sum(v * v for v in values.values())) or 1.0
    return {gram: v / norm for gram, v in values.items()}


def _by_order(table: dict[str, float]) -> tuple[dict[str, float], dict[tuple[str, str], float]]:
    """A table keyed by n-grams as two: by word, and by pair of words (a tuple)."""
    words: dict[str, float] = {}
    pairs: dict[tuple[str, str], float] = {}
    for gram, value in table.items():
        first, _, second = gram.partition(" ")
        if second:
            pairs[first, second] = value
        else:
            words[first] = value
    return words, pairs


@dataclass(frozen=True)
class SignalModel:
    bias: float
    weights: dict[str, float]
    idf: dict[str, float]
    rare_idf: float
    veto_below: float
    promote_above: float
    overrule_above: float
    min_words: int

    def heard(self, notes: str) -> bool:
        """Whether the model has a say on `notes`: at least `min_words` words. On shorter notes
        (a line, a tag) its n-grams are too few to outvote the rules, which decide alone."""
        return len(notes.split(None, self.min_words - 1)) >= self.min_words

    def __post_init__(self) -> None:
        # Weight times idf, and idf squared, by word and by pair: the sums below then run in C, over
        # sets of the words and of the pairs zip() makes, without joining them.
        rare = self.rare_idf
        object.__setattr__(self, "_weighted", _by_order({g: w * self.idf.get(g, rare) for g, w in self.weights.items()}))
        object.__setattr__(self, "_squared_idf", _by_order({g: v * v for g, v in self.idf.items()}))

    def probability(self, lower: str) -> float:
        """P(referral intent) of lower-cased notes: `features` and the weights, without building them."""
        words = tokens(lower)
        if not words:
            return 1.0 / (1.0 + math.exp(-self.bias))
        (by_word, by_pair), (word_idf, pair_idf) = self._weighted, self._squared_idf
        distinct, pairs = set(words), set(zip(words, words[1:]))
        total = sum(map(by_word.get, distinct, repeat(0.0))) + sum(map(by_pair.get, pairs, repeat(0.0)))
        rare = self.rare_idf * self.rare_idf
        squares = sum(map(word_idf.get, distinct, repeat(rare))) + sum(map(pair_idf.get, pairs, repeat(rare)))
        z = self.bias + total / math.sqrt(squares)
        return 1.0 / (1.0 + math.exp(-z)) if z > -700 else 0.0


def load_model(path: str | Path | None = None) -> SignalModel:
    """Read a model file written by bench/train_signal_model.py."""
    data = json.loads(Path(path or DEFAULT_MODEL_PATH).read_text(encoding="utf-8"))
    return SignalModel(
        bias=float(data["bias"]),
        weights={gram: float(w) for gram, w in data["weights"].items()},
        idf={gram: float(v) for gram, v in data["idf"].items()},
        rare_idf=float(data["rare_idf"]),
        veto_below=float(data["veto_below"]),
        promote_above=float(data["promote_above"]),
        overrule_above=float(data["overrule_above"]),
        min_words=int(data["min_words"]),
    )


@cache
def default_model() -> SignalModel:
    return load_model()
