"""The referral-intent model beside the rules: its file, its arithmetic, and how the detector uses it."""

import json
import math
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pytest

from bench.qbr_signal_eval.scoring import EVAL_SETS, load_eval_set
from referral_pipeline.lib.signal_model import DEFAULT_MODEL_PATH, SignalModel, default_model, features, ngrams
from referral_pipeline.lib.text_signals import (
    NOT_THEIRS,
    REJECTED,
    detect_referral_evidence,
    rule_verdicts,
    screen_pattern,
)

ROOT = Path(__file__).resolve().parents[1]

# Notes of at least 20 words (the model's say), each passing the screen.
NO_TRIGGER = (
    "Renewal is on track and usage grew again this quarter. They asked about the webinar series and "
    "the new reporting module. Pricing stays flat for next year."
)
NEGATED = (
    "Renewal is on track and usage grew again this quarter across the whole team. "
    "She is not willing to refer us to anyone this year. Pricing stays flat."
)
OURS = (
    "Attendees: Lena Ortiz (Head of Ops), Phil Okoro (our SE), Rebecca Stone (AE), me\n"
    "Usage grew again, renewal on track, pricing flat for next year and the roadmap call went fine.\n"
    "- Phil recommended the sensor pilot before a fleet rollout."
)
SIGNAL = (
    "Renewal is on track and usage grew again this quarter across the whole team. "
    "Happy to refer us to two peers in their network. Pricing stays flat."
)


def constant(probability: float) -> SignalModel:
    """A model that gives every note the same probability, with the shipped thresholds."""
    return replace(default_model(), bias=math.log(probability / (1 - probability)), weights={})


def test_the_model_file_names_its_training_notes_every_labelled_set():
    data = json.loads(DEFAULT_MODEL_PATH.read_text(encoding="utf-8"))
    labelled = {str(path.relative_to(ROOT)) for paths in EVAL_SETS.values() for path in paths}
    assert set(data["trained_on"]) == labelled
    assert data["notes"] == sum(len(load_eval_set(ROOT / path)) for path in data["trained_on"]) == 2867
    model = default_model()
    assert 0 < model.veto_below < model.promote_above < model.overrule_above < 1
    assert len(model.weights) == len(data["weights"]) > 1000


def test_ngrams_are_words_and_pairs():
    assert ngrams("we'd refer—gladly!") == ["we", "d", "refer", "gladly", "!", "we d", "d refer", "refer gladly", "gladly !"]
    counts = Counter(ngrams("happy to refer, happy to help?"))
    assert counts["happy"] == 2 and counts["happy to"] == 2 and counts["refer happy"] == 1
    assert counts["?"] == 1 and counts["help ?"] == 1
    assert sum(counts.values()) == 7 + 6


def test_probability_is_the_logistic_of_the_features():
    model = default_model()
    text = SIGNAL.lower()
    values = features(text, model.idf, model.rare_idf)
    assert max(Counter(ngrams(text)).values()) > 1  # "to" twice, valued once
    assert values.keys() == set(ngrams(text)) and math.isclose(sum(v * v for v in values.values()), 1.0)
    z = model.bias + sum(model.weights.get(gram, 0.0) * v for gram, v in values.items())
    assert math.isclose(model.probability(text), 1 / (1 + math.exp(-z)), rel_tol=1e-9)
    assert model.probability(SIGNAL.lower()) > 0.9 > model.probability(NEGATED.lower())


def test_the_model_has_a_say_from_twenty_words():
    model = default_model()
    assert model.min_words == 20
    assert model.heard(" ".join(["word"] * 20)) and not model.heard(" ".join(["word"] * 19) + "  \n")


def test_the_fixtures_are_what_the_rules_make_of_them():
    screen = re.compile(screen_pattern())
    assert all(screen.search(n.lower()) for n in (NO_TRIGGER, NEGATED, OURS, SIGNAL))
    assert rule_verdicts([NO_TRIGGER, NEGATED, OURS]) == [None, REJECTED, NOT_THEIRS]
    assert detect_referral_evidence([SIGNAL]) == ["Happy to refer us to two peers in their network."]


def test_a_model_sure_of_no_signal_vetoes_the_rules_evidence_on_long_notes_only():
    never = constant(0.01)
    assert detect_referral_evidence([SIGNAL], model=never) == [None]
    assert detect_referral_evidence(["Happy to refer us to two peers."], model=never) == ["Happy to refer us to two peers."]


def test_a_model_sure_of_a_signal_promotes_notes_without_trigger_or_rejected_by_sense():
    sure = constant(0.99)
    promoted = detect_referral_evidence([NO_TRIGGER, NEGATED, OURS], model=sure)
    # its evidence is a sentence of the note (here all score alike: the first)
    assert promoted[0] == "Renewal is on track and usage grew again this quarter."
    assert promoted[1] == "Renewal is on track and usage grew again this quarter across the whole team."
    assert promoted[2] is None  # our own SE recommending: not the customer's statement, never overruled


@pytest.mark.parametrize(
    "probability, expected",
    [(0.45, [None, None]), (0.55, ["promoted", None]), (0.75, ["promoted", "promoted"])],
)
def test_promoting_takes_less_than_overruling(probability, expected):
    model = constant(probability)
    assert (model.promote_above, model.overrule_above) == (0.5, 0.7)
    results = detect_referral_evidence([NO_TRIGGER, NEGATED], model=model)
    assert [r and "promoted" for r in results] == expected


def test_the_evidence_of_a_promotion_is_the_sentence_the_model_scores_highest():
    model = replace(constant(0.99), weights={"webinar": 50.0})
    assert detect_referral_evidence([NO_TRIGGER], model=model) == [
        "They asked about the webinar series and the new reporting module."
    ]


def test_the_shipped_model_leaves_short_notes_to_the_rules():
    notes = ["Happy to refer.", "Not ready to refer.", "Refer to ticket 123.", "Offered a case study."]
    assert detect_referral_evidence(notes, model=default_model()) == detect_referral_evidence(notes)


def test_without_a_model_the_detector_is_the_rules():
    never, sure = constant(0.01), constant(0.99)
    assert detect_referral_evidence([SIGNAL, NO_TRIGGER, NEGATED]) == [
        "Happy to refer us to two peers in their network.",
        None,
        None,
    ]
    assert detect_referral_evidence([SIGNAL], model=never) == [None]
    assert detect_referral_evidence([NO_TRIGGER], model=sure) != [None]
