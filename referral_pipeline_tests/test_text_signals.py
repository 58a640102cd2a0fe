"""Tests for the referral-intent detector in referral_pipeline.lib.text_signals."""

import pytest

from referral_pipeline.lib.text_signals import (
    PARALLEL_MIN_NOTES,
    ReferralVocabulary,
    detect_referral_evidence,
    detect_referral_evidence_in_batches,
    find_referral_evidence,
    load_vocabulary,
)
from bench.qbr_signal_eval.scoring import evaluate, score

SIGNALS = {
    "direct_offer": [
        "Priya said she'd be happy to refer us to other ops leaders.",
        "They wouldn't hesitate to recommend us.",
        "Can't recommend us highly enough, said the VP.",
        "champion keen on refering us to the new BU",
    ],
    "named_introduction": [
        "Offered to introduce us to Mark Chen, CTO at Brightline.",
        "Happy to put us in touch with the procurement lead at their parent company.",
        "Kelly will intro us to the head of RevOps at Fabrikam.",
    ],
    "conditional_offer": [
        "Happy to refer once the rollout is done.",
        "Will be a reference customer after go-live in September.",
        "Willing to refer us if we send the SOC2 report.",
    ],
    "referral_made": [
        "They already introduced us to their CFO.",
        "Brightwave referred Tailspin to us last month.",
        "Has already recommended us to two vendors in his supply chain.",
    ],
    "reference_offer": [
        "Offered to be a reference for prospects in insurance.",
        "Happy to serve as a reference, by phone or written.",
    ],
    "case_study": ["Agreed to do a case study on the automation results.", "Case study: approved by comms."],
    "peer_call": ["Happy to do a peer call with any prospect.", "Up for speaking to prospects."],
    "answered_question": [
        "Asked if they'd refer — yes, happy to.",
        "Would they be a reference? Yes, once the Q3 release ships.",
    ],
    "label": ["Referral: yes", "Health: Green | Referral: Y | Renewal: Nov"],
    "mixed_language": ["Sie würden uns gerne weiterempfehlen.", "Nos van a recomendar a otras filiales."],
}

NON_SIGNALS = {
    "negation": [
        "Not ready to refer yet.",
        "Declined to introduce us to the CFO.",
        "They won't be a reference this year.",
        "No appetite for a case study right now.",
        "isn't willing to recommend us",
        "Hasn't agreed to be a reference.",
        "Referral: no",
        "case study declined by their PR team",
        "Ils ne veulent pas nous recommander.",
    ],
    "hedge": [
        "They might refer us later.",
        "Maybe open to a case study down the line.",
        "Possibly willing to be a reference.",
        "Could consider a peer call in Q4.",
        "Not sure they'd refer us.",
        "She would think about introducing us to Globex.",
    ],
    "unanswered_question": [
        "Would they refer us?",
        "Asked if they'd be a reference. Will follow up next week.",
        "Plan to ask for a referral at the next QBR.",
        "Referral?",
    ],
    "praise_only": ["Loves the product, great QBR.", "NPS 10, best vendor they work with."],
    "vendor_referral": [
        "We referred them to our partner Acme for the migration.",
        "Recommended they upgrade to the Pro tier.",
        "Customer requested a reference call with another customer before expanding.",
    ],
    "other_sense": [
        "Please refer to ticket 123.",
        "Intro call with the new admin on Thursday.",
        "They recommended we add bulk edit.",
        "Reference architecture sent over.",
        "Their patient referral volume is up 18%.",
    ],
    "third_party": [
        "Their competitor said they'd refer us.",
        "Customer originally came to us via a referral from Globex.",
    ],
    "csm_opinion": ["Would make a great case study.", "Good reference candidate for enterprise."],
}


def _cases(groups):
    return [pytest.param(text, id=f"{name}-{i}") for name, texts in groups.items() for i, text in enumerate(texts)]


@pytest.mark.parametrize("text", _cases(SIGNALS))
def test_signals_are_detected(text):
    assert find_referral_evidence(text) is not None


@pytest.mark.parametrize("text", _cases(NON_SIGNALS))
def test_non_signals_are_rejected(text):
    assert find_referral_evidence(text) is None


def test_negation_scope_ends_at_clause():
    assert find_referral_evidence("Not ready to refer yet, but happy to introduce us to their CFO.") is not None
    assert find_referral_evidence("No issues this quarter and happy to refer us to peers.") is not None


def test_evidence_is_the_matched_sentence():
    notes = "Usage up 12%. Renewal in May.\nOffered to introduce us to their CFO!  Next QBR in Aug."
    assert find_referral_evidence(notes) == "Offered to introduce us to their CFO!"


def test_answer_in_next_sentence_is_part_of_evidence():
    assert find_referral_evidence("Would they refer us? Yes, absolutely. Renewal ok.") == (
        "Would they refer us? Yes, absolutely."
    )


@pytest.mark.parametrize("notes", [None, "", "   \n\t ", "n/a"])
def test_empty_notes(notes):
    assert find_referral_evidence(notes) is None


def test_non_latin_unicode():
    assert find_referral_evidence("顧客は満足している。更新は11月。") is None
    assert find_referral_evidence("İstanbul ekibi memnun. Happy to refer us to peers 🎉") == (
        "Happy to refer us to peers 🎉"
    )
    assert find_referral_evidence("Клиент доволен. \U0001f600 Offered to be a reference.") is not None


def test_five_megabyte_note_completes():
    filler = "Usage up, renewal fine, please refer to ticket 12 and intro call next week. " * 65_000
    notes = filler + "Happy to refer us to peers. " + filler
    assert len(notes) > 5_000_000
    assert find_referral_evidence(notes) == "Happy to refer us to peers."
    assert find_referral_evidence("a" * 5_000_000) is None


def test_batch_matches_single():
    notes = ["Happy to refer.", None, "Would they refer us?", "", "Offered a case study."]
    assert detect_referral_evidence(notes) == [find_referral_evidence(n) for n in notes]
    assert detect_referral_evidence(iter(notes)) == ["Happy to refer.", None, None, None, "Offered a case study."]


def test_vocabulary_is_loaded_from_file(tmp_path):
    vocabulary = load_vocabulary()
    assert isinstance(vocabulary, ReferralVocabulary)
    custom = tmp_path / "vocab.toml"
    default_text = (load_vocabulary.__globals__["DEFAULT_VOCABULARY_PATH"]).read_text(encoding="utf-8")
    custom.write_text(default_text.replace('"vouch", ', ""), encoding="utf-8")
    assert find_referral_evidence("Happy to vouch for us.", vocabulary) is not None
    assert find_referral_evidence("Happy to vouch for us.", load_vocabulary(custom)) is None


def test_score():
    s = score([True, True, False, False], [True, False, True, False])
    assert (s.true_positives, s.false_positives, s.false_negatives) == (1, 1, 1)
    assert s.precision == 0.5 and s.recall == 0.5 and s.f1 == 0.5


def test_eval_set_meets_targets():
    scores = evaluate()
    overall = scores["ALL"]
    assert overall.support >= 300
    assert overall.precision >= 0.95, overall
    assert overall.recall >= 0.90, overall


# Regression cases for the generalisation fixes (notes written by a second writer,
# bench/qbr_signal_eval/notes.jsonl qbr-339 onwards).
GENERALISATION_SIGNALS = [
    # a noun trigger with a commitment or completed act
    "Reference call w/ Initech prospect done on Tues, went well per our AE.",
    "They've referred three practices to us since January.",
    "Jenna is open to peer calls with other CS leaders evaluating us.",
    # joining / using the referral programme
    "Submitted two leads through our referral programme this quarter.",
    # no classic trigger word
    'Champion\'s words: "If anyone asks, I\'m sending them your way."',
    "Jo said she'd put us in front of the regional directors at the next leadership offsite.",
    "Mentioned that she'd already passed our details to two other heads of finance in her network.",
    # public advocacy
    "Agreed to speak at our customer webinar in June about their onboarding results.",
    "Left us a 5-star review on G2 after the QBR.",
    "Will give a quote for the press release.",
    # typos, British usage, other languages
    "happy to refere us to the other depts once budgets reset",
    "Khalid confirmed he's happy for us to use him as a referee for the council tender.",
    "Ils nous ont déjà présenté à deux autres hôpitaux de la région.",
    # "go-live" is not a label separator nor a "live" answer
    "Will be a reference customer after go-live in September.",
    "Raj is setting up an intro between our AE and the ops team at Fabrikam Logistics.",
]

GENERALISATION_NON_SIGNALS = [
    # a bare mention is not an offer
    "The referral program was mentioned but they showed no interest.",
    "Introductions to their sister company are a no-go for now.",
    "Goal for next QBR: secure an intro to their parent company.",
    "Should push for a case study after go-live.",
    # programme, fees, traffic
    "Asked about referral fees for partners — sent them the partner terms.",
    "Referral traffic from their partner sites grew 12% using our tracking.",
    # case studies we published
    "Sent them our Globex case study as inspiration for the rollout.",
    "Mentioned the case study we published on Fabrikam; they'd read it.",
    # wider negations and hedges
    "Policy at their bank forbids them from acting as a reference for any vendor.",
    "Dana has stopped recommending us since the March outage.",
    "Their CISO vetoed any public reference or case study.",
    "Said a referral isn't out of the question.",
    "He'll mull over the reference request and get back to me.",
    # CSM opinion, third parties, other senses
    "They'd make a brilliant case study if we can get legal on side.",
    "Their parent company wants to recommend us to other subsidiaries.",
    "Their implementation partner said they'd happily refer us to other clients.",
    "They happily referred their support team to our knowledge base.",
    "Introduced our new CSM, Priya, who takes over in March.",
    "Attended our webinar on the new API, asked good questions.",
]


@pytest.mark.parametrize("text", GENERALISATION_SIGNALS)
def test_generalisation_signals(text):
    assert find_referral_evidence(text) is not None


@pytest.mark.parametrize("text", GENERALISATION_NON_SIGNALS)
def test_generalisation_non_signals(text):
    assert find_referral_evidence(text) is None


def test_batches_over_worker_processes_give_the_same_evidence_in_order():
    notes = ["Happy to refer us once the rollout is done.", "Not ready to refer.", None, ""] * (
        PARALLEL_MIN_NOTES // 4 + 1
    )
    notes[-5] = "They already introduced us to their CFO."
    batches = [notes[start : start + 7_000] for start in range(0, len(notes), 7_000)]
    evidence = detect_referral_evidence_in_batches(batches, total=len(notes), workers=2)
    assert [e for batch in evidence for e in batch] == detect_referral_evidence(notes)
