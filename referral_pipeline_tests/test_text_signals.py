"""Tests for the referral-intent detector in referral_pipeline.lib.text_signals."""

import re
import string

import duckdb
import pytest

from referral_pipeline.lib.text_signals import (
    PARALLEL_MIN_NOTES,
    FuzzyIndex,
    ReferralVocabulary,
    _osa_distance,
    detect_referral_evidence,
    detect_referral_evidence_in_batches,
    find_referral_evidence,
    load_vocabulary,
    screen_pattern,
)
from bench.qbr_signal_eval.scoring import evaluate, load_named_set, score

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


def test_old_eval_set_is_a_regression_set():
    """bench/qbr_signal_eval/notes.jsonl: the rules were first tuned on it (1.000 / 0.988 at d5bcc2c
    and after issue 11 round 2)."""
    overall = evaluate("old")["ALL"]
    assert overall.support == 577
    assert overall.precision >= 0.99, overall
    assert overall.recall >= 0.98, overall


def test_first_fresh_set_is_a_regression_set():
    """Both halves of bench/qbr_signal_eval/fresh/ (round 1; its held-out half is spent):
    0.892 / 0.919 at d5bcc2c, 1.000 / 1.000 after round 2."""
    overall = evaluate("fresh1")["ALL"]
    assert overall.support == 430
    assert overall.precision >= 0.99, overall
    assert overall.recall >= 0.99, overall


def test_second_fresh_set_is_a_regression_set():
    """Both halves of bench/qbr_signal_eval/fresh2/ (round 2; its held-out half is spent): tuning
    1.000 / 0.986 and held-out 0.850 / 0.850 after round 2, 0.929 / 0.922 together at fa5a7cc."""
    overall = evaluate("fresh2")["ALL"]
    assert overall.support == 540
    assert overall.precision >= 0.93, overall
    assert overall.recall >= 0.93, overall


def test_third_fresh_set_tuning_half():
    """bench/qbr_signal_eval/fresh3/tuning.jsonl (round 3): 0.798 / 0.813 at fa5a7cc. The held-out
    half (fresh3/heldout.jsonl, "validation") is never used in tests."""
    overall = evaluate("fresh3")["ALL"]
    assert overall.support == 220
    assert overall.precision >= 0.92, overall
    assert overall.recall >= 0.91, overall


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


# Issue 11: misspellings, introductions by shape, availability, our side, own staff, features.

VOCABULARY = load_vocabulary()


def test_misspelt_trigger_at_edit_distance_1_is_detected():
    assert VOCABULARY.fuzzy.lookup("refrence") == "reference"
    assert find_referral_evidence("they're happy to be a refrence customer for other biotechs") is not None
    assert find_referral_evidence("dr brennan will intoduce us to the practice owner at kilcool") is not None
    assert find_referral_evidence("agreed to be a case-studdy for the hospitality vertical") is not None


def test_misspelt_trigger_at_edit_distance_2_is_detected():
    assert _osa_distance("recomendtaion", "recommendation", 2) == 2
    assert VOCABULARY.fuzzy.lookup("recomendtaion") == "recommendation"
    assert find_referral_evidence("Happy to give a recomendtaion to her peers.") is not None


def test_a_typo_of_an_unrelated_word_does_not_trigger():
    for text in ["Happy to renwe the contract in May.", "Keen to reduse the seat count.", "happy to go into detial"]:
        assert find_referral_evidence(text) is None, text


@pytest.mark.parametrize(
    "word",
    ["into", "want", "agent", "haven", "reused", "recurring", "potential", "possible", "deciding", "touch",
     "deferred", "preferred", "record", "product", "produce", "reduce", "difference", "introducer",
     "recommender", "referenced", "voucher", "studio"],
)
def test_real_words_are_not_corrected(word):
    assert VOCABULARY.fuzzy.lookup(word) in (None, word)


@pytest.mark.parametrize(
    "text",
    ["He declned to intorduce us to anyone there.", "Marcus refussed to intro us to the parent co.",
     "he dosnt want to refer anyone untill the API limits are sorted", "customer is unwiling to act as a reference"],
)
def test_misspelt_negations_still_negate(text):
    assert find_referral_evidence(text) is None


def test_evidence_of_a_corrected_note_is_the_original_sentence():
    notes = "She refussed the discount. Usage ok.\nKev said he'd happily recommnd us to the guys at Tidewater. Renewal Oct."
    assert find_referral_evidence(notes) == "Kev said he'd happily recommnd us to the guys at Tidewater."


def test_every_single_edit_of_a_screened_word_passes_the_screen():
    """The halves of each screened word are in the screen: a word with one edit (delete, insert,
    substitute, or swap two neighbours on one side of the split) keeps the other half, so its note
    reaches the rules. A half shorter than min_anchor_length is not in the screen, so only edits on
    its side are guaranteed."""
    import tomllib

    with open(load_vocabulary.__globals__["DEFAULT_VOCABULARY_PATH"], "rb") as handle:
        table = tomllib.load(handle)["fuzzy"]
    letters = string.ascii_lowercase
    for entry in table["screened"]:
        word = entry.replace("|", "")
        split = entry.index("|") if "|" in entry else len(word) // 2
        kept = {side for side, half in (("head", word[:split]), ("tail", word[split:]))
                if len(half) >= table["min_anchor_length"]}
        edits = []  # (edited word, the side of the split it changes)
        for i in range(len(word)):
            side = "head" if i < split else "tail"
            edits += [(word[:i] + word[i + 1 :], side)] + [(word[:i] + c + word[i + 1 :], side) for c in letters]
            edits += [(word[:i] + c + word[i:], side) for c in letters]
            if i + 1 < len(word) and i != split - 1:
                edits.append((word[:i] + word[i + 1] + word[i] + word[i + 2 :], side))
        guaranteed = [edit for edit, side in edits if kept - {side}]
        assert len(guaranteed) > 100, entry
        missed = [edit for edit in guaranteed if not VOCABULARY.screen.search(f"notes: {edit} here")]
        assert not missed, (word, missed[:5])


def test_a_misspelt_stem_passes_the_screen_but_not_the_exact_prefilter():
    lower = "happy to be their refrence site for the vertical"
    assert VOCABULARY.prefilter.search(lower) is None
    assert VOCABULARY.screen.search(lower) is not None


def test_fuzzy_index_from_its_own_vocabulary():
    index = FuzzyIndex(["declined"], ["decline"], [], r"\b[a-z]{4,}\b", distance_1_from=5, distance_2_from=10)
    assert index.lookup("declned") == "declined"
    assert index.lookup("decline") is None  # listed as a real word
    assert index.lookup("reclined") is None  # another first letter
    assert index.correct("he declned it") == ("he declined it", [(3, 11, 3, 10)])


@pytest.mark.parametrize(
    "text",
    [
        "We introduced them to our implementation partner for the migration.",
        "I recommended they enable SSO before the audit.",
        "Our SE referred them to the API docs.",
        "our onboarding team recommended a phased rollout by grade, they agreed",
        "I put her in touch with Holly at Wainwright LLP, one of our reference customers.",
        "We offered to introduce them to a reference customer in logistics.",
    ],
)
def test_our_side_as_subject_is_not_a_signal(text):
    assert find_referral_evidence(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "Ops team were introduced to their new CSM (me, taking over from Ravi).",
        "Sven got introduced to our support lead and our SE, so he knows who to call.",
        "project mgrs intro'd to our new SE (priyanka) for the permitting work",
        "Introduced Priya, our new SE, to the team.",
    ],
)
def test_meeting_our_own_staff_is_not_a_signal(text):
    assert find_referral_evidence(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "growth: the 'refer-a-colleague' feature inside their app drove 11% of invites",
        "- patient referral module live in 3 of 5 clinics, GP referrals now come in via our intake forms",
        "Recommendations widget CTR up 5% since the redesign.",
        "Their 'Introductions' feature now sends 2.3M messages a month through our messaging API.",
        "They run candidate reference checks through our workflows now.",
    ],
)
def test_product_features_named_like_referrals_are_not_signals(text):
    assert find_referral_evidence(text) is None


def test_introduction_by_shape_keeps_its_evidence():
    notes = (
        "Renewal ok, 2 tickets.\nSam looped Marco Berti (Head of Ops @ Fintrex) into our email thread and told"
        " him to grab 30 min with our AE. Next QBR in May."
    )
    assert find_referral_evidence(notes) == (
        "Sam looped Marco Berti (Head of Ops @ Fintrex) into our email thread and told him to grab 30 min with our AE."
    )


@pytest.mark.parametrize(
    "text",
    [
        "bill gave nate's number to the ops lead at coastal comfort heating and told him to call",
        "Clara forwarded our proposal to the CIO of her sister company with a note saying it's worth a look.",
        "Lena's brother-in-law is CIO at Hanse Reederei; she's arranged a lunch for the two of them plus our AE.",
        "she added Kev to a group chat with 3 GMs from other hotel groups and told them to talk to him",
    ],
)
def test_introductions_by_shape(text):
    assert find_referral_evidence(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "Sam looped in their CFO on the renewal thread.",
        "She cc'd her boss on the renewal email.",
        "Forwarded our proposal to their CFO for sign-off.",
        "Told them to email support at help@example.com for the SSO issue.",
    ],
)
def test_a_connection_act_without_an_outside_party_is_not_a_signal(text):
    assert find_referral_evidence(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "Bartek happy to take a call from any prospect considering the Dynamics integration.",
        "dr lam is happy to hop on the phone w/ whoever's evaluating us, just email his office mgr",
        "she told me prospects can ring her anytime",
        "Simon said any asset manager who is evaluating us is welcome to speak to Tamsin.",
        "told rosa to just put prospects on her calendar, she'll take them",
        # round 3: the prospects described in more words
        "Ines is available to talk with any mid-size health-system prospect we bring her.",
        "Kofi said he'll make time for any water-board or utility prospect who wants the real story.",
        "Any prospect is welcome to come and see the depot running.",
        "Prospects in oil/gas can ring him any time.",
    ],
)
def test_availability_to_prospects(text):
    assert find_referral_evidence(text) is not None


def test_a_question_answered_later_with_an_explicit_marker():
    notes = (
        "Q: would Ingrid take a call from a telco prospect evaluating us? Didn't answer in the meeting. "
        "A (her email the day after): yes, fine, she'll do 30 min. Other: 2 tickets."
    )
    assert find_referral_evidence(notes) == (
        "Q: would Ingrid take a call from a telco prospect evaluating us? Didn't answer in the meeting. "
        "A (her email the day after): yes, fine, she'll do 30 min."
    )
    assert find_referral_evidence("Would she take a call from a prospect? Didn't ask. Renewal: yes.") is None


def test_inbound_story_is_not_a_signal():
    assert find_referral_evidence(
        "Penrose came to us via a referral from their accountants (Whitlock & Co), who use us themselves and"
        " recommended us to Sam in 2022."
    ) is None


def test_the_screen_run_in_duckdb_passes_every_note_python_would_examine():
    """The pipeline screens notes in DuckDB; no note the detector finds evidence in may be lost."""
    pattern = screen_pattern()
    assert not re.search(r"\\[^ \-]|\(\?[=!<]|\[", pattern), "only literal stems, so RE2 matches as Python"
    labelled = [n for name in ("old", "fresh1", "fresh2", "fresh3") for n in load_named_set(name)]
    notes = [n.notes for n in labelled] + ["Happy to REFER us", "nothing here", "Zürich: happy to refer"]
    con = duckdb.connect()
    passed = con.execute(
        "SELECT list(n ORDER BY i) FROM (SELECT unnest(?) AS n, generate_subscripts(?, 1) AS i) "
        "WHERE n IS NOT NULL AND (strlen(n) <> length(n) OR regexp_matches(lower(n), ?))",
        [notes, notes, pattern],
    ).fetchone()[0]
    examined = [n for n, found in zip(notes, detect_referral_evidence(notes)) if found]
    assert examined and set(examined) <= set(passed)
    assert "nothing here" not in passed


# Issue 11, round 2: mechanisms for the kinds of sentence the second fresh set showed (the
# sentences below are written for the tests, not copied from the labelled notes).


@pytest.mark.parametrize(
    "notes",
    [
        "Asked if she'd refer us to other practices. OB: \"of course, I'll send names\"",
        "Q: would he be a reference for other dealers? AK: yes, no problem, just not more than one a month",
        "Would they refer us to other clinics? Dr. Patel said yes, she'll send two names.",
        "I asked whether he'd refer us to the other owners. His answer: \"absolutely, send me a one-pager\"",
        "I asked Ana whether they'd be a reference. Yes - she'd be glad to, though she'd rather not do calls in Q4.",
    ],
)
def test_answers_after_a_speaker_tag_or_someone_saying_it(notes):
    assert find_referral_evidence(notes) is not None


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("Any hotelier who's weighing us up can give her a bell.", True),
        ("- joan said agencies looking at us can call her, no prep needed", True),
        ("Happy to hop on a call with any of the firms you're talking to.", True),
        ("If a school is on the fence, they can ring him.", True),
        ("anyone thinking of buying can dm her on linkedin", True),
        ("Prospects evaluating us asked for pricing.", False),  # nobody to reach
        ("He won't take calls from anyone evaluating us.", False),
    ],
)
def test_someone_evaluating_us_needs_a_way_to_reach_the_customer(text, found):
    assert (find_referral_evidence(text) is not None) is found


def test_our_staff_named_in_the_attendee_list_as_subject():
    header = "Attendees: Lena Ortiz (Head of Ops), Phil Okoro (our SE), Rebecca Stone (AE), me\n"
    assert find_referral_evidence(header + "- Phil recommended the sensor pilot before a fleet rollout.") is None
    assert find_referral_evidence(header + "- Rebecca put Lena in touch with the ops lead at Harwood Rail.") is None
    assert find_referral_evidence(header + "- Lena said she'll introduce us to the ops lead at Harwood Rail.")
    assert find_referral_evidence(header + "- Lena told Rebecca she'll introduce us to the COO at Harwood Rail.")


def test_i_and_we_inside_a_quotation_are_the_customer():
    assert find_referral_evidence('10:19 RM: "I can introduce you to Gabriel, he runs revenue at Miramar"')
    assert find_referral_evidence("I can introduce them to our partner in Leeds.") is None


def test_a_note_about_the_customers_own_referral_workflow():
    notes = (
        "Patient referral module: 2,300 referrals processed in Q2, triage time down 40%.\n"
        "- Steve wants referral rejection reasons reportable\n"
        "- Dr. Marsh happy to refer us to the other trusts in the region"
    )
    assert find_referral_evidence(notes) == "- Dr. Marsh happy to refer us to the other trusts in the region"
    assert find_referral_evidence(notes.rsplit("\n", 1)[0]) is None


@pytest.mark.parametrize(
    "text",
    [
        "Cormac introduced Ada, she joined from Diageo last month.",
        "Intros: Laura was introduced to the account team - she's taking over budget ownership.",
        "Intro'd Nikhil to the team as the new AE.",
        "Paul introduced us to his successor, Ines, who takes over in March.",
    ],
)
def test_introductions_of_someone_new_in_a_role_are_meeting_people(text):
    assert find_referral_evidence(text) is None


def test_an_introduction_with_a_handover_word_and_an_outside_party_is_still_a_signal():
    assert find_referral_evidence("Sam will introduce us to the CFO at Brightline, who has just joined there.")


@pytest.mark.parametrize(
    "notes",
    [
        "QBR - Halcyon Retail Group, quarterly review with the eCommerce and IT leadership team\n"
        "Attendees: Victor (CIO), Nikhil Joshi (their consultant from Parkline Advisory)\n"
        "13:10 NJ: Parkline is planning to recommend us to two other retail clients.",
        "QBR Alderbank Clinics - Rhiannon Price (ops), scheduling and billing review for Q3\n"
        "Their billing consultant Meridian RCM uses us everywhere. Meridian's founder offered to be a reference.",
        "TRELAWNEY FOODS - Q1\nMariana from Trelawney Iberia (their sister company) was there.\n"
        "Mariana said Trelawney Iberia wants to recommend us to the other companies in the cluster.",
        "- their impl partner (Brightline Consulting) told us in the mtg they'd recommend us to other clients",
    ],
)
def test_third_parties_named_in_the_note(notes):
    assert find_referral_evidence(notes) is None


def test_the_customer_named_like_a_third_party_is_still_the_customer():
    notes = (
        "TRELAWNEY FOODS - Q1\nMariana from Trelawney Iberia (their sister company) was there.\n"
        "Hugh said Trelawney will happily recommend us to the cluster."
    )
    assert find_referral_evidence(notes) == "Hugh said Trelawney will happily recommend us to the cluster."


def test_a_count_before_a_label_noun_is_a_statement():
    assert find_referral_evidence("- two referrals this quarter from Kwabena: Tarn Design and Brevik Marine")
    assert find_referral_evidence("Referrals: none this quarter") is None


@pytest.mark.parametrize(
    "text",
    [
        "Brought up on her own that she wants to do a customer story with us.",
        "Sales: follow up on the referral Marguerite already made to Bellhaven Radiology.",
        "referral_intent: Y - Kevin will send names this week",
    ],
)
def test_reported_statements_and_the_contract_tag(text):
    assert find_referral_evidence(text) is not None


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("He cc'd Tom Ashby from Ashby Cellars on the thread and told him to talk to our AE.", True),
        ("Priya shared our proposal with Dr. Tom Iveson of Iveson Orthodontics.", True),
        ("She cc'd Mark from IT on the thread.", False),
        ("Forwarded our proposal to Priya from Procurement for sign-off.", False),
    ],
)
def test_an_outside_party_named_with_capitals(text, found):
    assert (find_referral_evidence(text) is not None) is found


@pytest.mark.parametrize(
    "text",
    [
        "- rui sent them to us directly, AE has a demo booked",
        "Sent us 2 warm leads this quarter.",
        "already sent our way 2 leads this qtr",
        "\"I tell every vet I meet to switch to you\"",
        "She's bringing Henrik Sand, COO at Sandvik Marine, as her guest to our customer day.",
        "set up a 3-way call w/ Ravi (VP at Lakemont) and our AE",
        "kofi agreed to co-present w/ us at our summit in Nov",
        "agred to a case study on the rollout",
    ],
)
def test_referrals_and_introductions_in_other_words(text):
    assert find_referral_evidence(text) is not None


def test_the_sentence_of_a_trigger_is_found_without_splitting_the_whole_note():
    filler = "Usage is up. Renewal is in May! Tickets are down? " * 40
    notes = filler + "Would they refer us? Yes, gladly. " + filler
    assert find_referral_evidence(notes) == "Would they refer us? Yes, gladly."
    cjk = "顧客は満足している。紹介の件。Would they refer us? Yes, gladly."
    assert find_referral_evidence(cjk) == "Would they refer us? Yes, gladly."


# Round 3 (issue 11): the mechanisms, each with sentences written for it.
@pytest.mark.parametrize(
    "notes",
    [
        # an internal escalation is not an introduction, even after an outside party
        "Maybe they could refer us to their parent company, maybe not. Action: loop in support leadership on the P2 backlog.",
        "Their sister company had the same outage. Looped in our engineering leads on the RCA.",
        "Competitor pricing came up again. Next: cc their finance team on the renewal quote.",
        # a machine-written summary line is not the customer's statement
        "Kestrel Foods QBR\nAI SUMMARY: Customer agreed to be a reference. Referral intent: yes.\n---\nCSM: Renewal?",
        "Summary (AI): customer offered to introduce us to the CFO of Marlin Group.\nNothing like that was said.",
        # our side speaking in a transcript
        "[00:04:10] CSM (Rhea): I'll introduce you to Tallis Data, our migration partner.",
        "CSM: Marketing would love to feature the rollout as a customer story.",
        # launching something new is another sense of "introduce"
        "They introduced a new shift rota template for the night crew.",
        "Anika introduced the new cross-dock scheduling process her team designed.",
        # an organisation named as an adviser or investor is a third party
        "QBR Halden Foods\nOla: Brightwater Capital are recommending you to their portfolio companies.",
        "QBR Halden Foods\nTheir law firm, Pryce & Moss LLP, says its partners want to recommend our platform.",
        # how the customer came to us
        "Signed in 2023 because their distributor's buyer recommended us to them.",
        # the named third party itself
        "QBR Halden Foods\nTomas said the parent company, Ardent Holdings in Leeds, liked the demo and wants to"
        " recommend us to the other brands.",
        # our support contact is not our details passed on
        "She gave her our support email for the tickets.",
        # a wish overruled after "but", "too early" after the trigger
        "Anouk wanted to be a reference but their general counsel vetoed it.",
        "Happy to refer us, but the board said no to any vendor endorsements.",
        "A peer call is still too early for them.",
        # negations: nothing on it, non-referenceable
        "Nothing from Tomas on introducing us to anyone yet.",
        "- flag the account as non-referenceable in the CRM",
    ],
)
def test_round3_non_signals(notes):
    assert find_referral_evidence(notes) is None


@pytest.mark.parametrize(
    "notes, evidence",
    [
        # the customer speaking after a "(cust)" tag, and in single quotes
        (
            "Rowan Mills QBR\n[00:12:02] Idris (cust): I'll introduce you to their group COO, Mara Pell.",
            "[00:12:02] Idris (cust): I'll introduce you to their group COO, Mara Pell.",
        ),
        (
            "Oksana: 'Once the API is stable I'll introduce you to the two labs we work with.'",
            "Oksana: 'Once the API is stable I'll introduce you to the two labs we work with.'",
        ),
        # the customer named with an adviser-like suffix on the first line is the customer
        (
            "QBR Ellsworth & Park LLP (law firm)\nPark LLP is happy to be a reference for other firms.",
            "Park LLP is happy to be a reference for other firms.",
        ),
        # a new subject after a named third party: the customer introducing us to it
        (
            "QBR Halden Foods\nTomas said the parent company, Ardent Holdings in Leeds, is about to consolidate"
            " its tooling, and he will introduce us to the group CIO next month.",
            "Tomas said the parent company, Ardent Holdings in Leeds, is about to consolidate its tooling, and he"
            " will introduce us to the group CIO next month.",
        ),
        # our details passed to someone, double-object form
        (
            "Kestrel QBR\n[00:12:20] Priya (cust): I gave him your details last week.",
            "[00:12:20] Priya (cust): I gave him your details last week.",
        ),
        ("She gave him Omar's number, he is expecting a call.", "She gave him Omar's number, he is expecting a call."),
        # an answer after a named speaker tag
        (
            "I asked whether they'd refer us to other co-ops. Brigid: yes, she has three in mind.",
            "I asked whether they'd refer us to other co-ops. Brigid: yes, she has three in mind.",
        ),
    ],
)
def test_round3_signals(notes, evidence):
    assert find_referral_evidence(notes) == evidence


def test_a_question_answered_lines_later_with_a_back_reference():
    notes = (
        "[00:10:00] CSM: Would you be a reference for us with other hospices?\n"
        "[00:10:05] Greta (cust): Which module?\n"
        "[00:10:09] CSM: Rostering.\n"
        "[00:10:12] Greta (cust): Let me think.\n"
        "[00:11:00] CSM: Sure.\n"
        "[00:15:00] Greta (cust): The exports still time out.\n"
        "[00:16:00] CSM: Logged.\n"
        "[00:21:30] Greta (cust): Okay. Your question earlier. Yes, happy to, for rostering.\n"
    )
    assert find_referral_evidence(notes) is not None
    # an answer by our side is not the customer's yes
    assert find_referral_evidence("[00:03:00] Ode (cust): Can you recommend an SSO consultant?\n[00:03:05] CSM: Sure, two names.") is None


def test_fourth_fresh_set_tuning_half():
    """bench/qbr_signal_eval/fresh4/tuning.jsonl (round 4): 0.933 / 0.851 at dd7035b. Its held-out
    half (fresh4/heldout.jsonl) is never used in tests."""
    overall = evaluate("tuning")["ALL"]
    assert overall.support == 220
    assert overall.precision >= 0.99, overall
    assert overall.recall >= 0.98, overall


# Round 4 (issue 11): the mechanisms, each with sentences written for it.
@pytest.mark.parametrize(
    "notes, evidence",
    [
        # a self-correction: the corrected statement counts
        (
            "voice memo Harlow Joinery, um, Bea said she won't, no wait, scratch that, she said she will refer us"
            " to the guild",
            "voice memo Harlow Joinery, um, Bea said she won't, no wait, scratch that, she said she will refer us"
            " to the guild",
        ),
        # e-mails pasted into a note: "I" in a block the customer wrote is the customer
        (
            "Email pasted by Lucia Marin (CSM)\n\n> From: Ola Berg <ola@fjordtrans.no>\n> To: Lucia Marin\n>\n"
            "> Lucia, invoices look right now. I can introduce you to the CFO of our sister company next month.\n> Ola",
            "I can introduce you to the CFO of our sister company next month.",
        ),
        (
            "Email thread (logged by Marcus Reid)\n\nMarcus - I've looped in Petra Novak from Halden Logistics here,"
            " she's looking at scheduling tools. - Ines",
            "Marcus - I've looped in Petra Novak from Halden Logistics here, she's looking at scheduling tools.",
        ),
        # a field whose value is the next line
        (
            "## Reference status:\nConfirmed by Tomasz for the logistics segment.",
            "## Reference status:\nConfirmed by Tomasz for the logistics segment.",
        ),
        # a field named like a product's status field ("referral status") is still a field
        ("Reference status: Tomasz will do it", "Reference status: Tomasz will do it"),
        (
            "### Advocacy:\nDr Imai will co-present the rollout with our PM at the Osaka user day.",
            "### Advocacy:\nDr Imai will co-present the rollout with our PM at the Osaka user day.",
        ),
    ],
)
def test_round4_signals_with_evidence(notes, evidence):
    assert find_referral_evidence(notes) == evidence


@pytest.mark.parametrize(
    "text",
    [
        # the corrected statement after a correction marker
        "Denis said no to a case study, sorry no, hang on, that was the other account, Denis actually agreed to the"
        " case study",
        # customer e-mails: details passed on, "From:" names the author
        "Email (inbound) logged by Priya Shah\nFrom: Greg Otte <greg@otte.com>\nSubject: RE: QBR\n\nHi Priya,\n"
        "I mentioned you to Carla Diaz at Seabright Foods and gave her your number. Expect a call.\nGreg",
        # connection acts by their shape, with an outside party
        "Farah (COO) is connecting Jonah with Eli Brandt, CFO at Corvid Tools (not a customer), next week.",
        "Wen looped Mr. Ashok Patel from Ridgeway Cold Chain Ltd into the thread so our AE can follow up.",
        "Sol looped in her former manager who now runs ops at Brightmoor Foods, our AE is on the thread.",
        "Ruairi: Imke Lenz runs e-comm at Dovecote Home and is evaluating tools. I'll get her on a call with you next week.",
        "Sean: I'm having lunch with Dr. Hal Breen from Breen Orthodontics on Friday, come along.",
        "Odile is meeting the COO of Harbour Lane Hotels at the expo and is bringing Tom to the meeting.",
        "Nell sent the finance lead at Pryor Freight our AE's way, demo on Monday.",
        "Greta forwarded our business case to the COO of their sister company with a note saying it paid back in a year.",
        # availability to prospects, in more words
        "Ruth says her door is open to any clinic owner considering us.",
        "Dr Vance said whenever a prospect wants to talk to a real practice owner about it they can call her.",
        "If any other housing associations are weighing us up they can ping her any time.",
        "Anyone considering you can reach out to me directly, said Ama.",
        "If you've got anyone evaluating who wants to hear from a real ops team, put them on my calendar.",
        # sending or pointing people at us, after a condition
        "If anybody in his chamber of commerce group is shopping around he's sending them straight our way.",
        "Gus: if anyone at the trade show asks what we run, I'm pointing them straight at you guys.",
        "Asked Jo whether she'd put our name forward to the other practices in her network - yes, gladly.",
        # public advocacy, reviews, referral programmes
        "Hana provided a quote for our Q3 product launch press release.",
        "Devi said she posted her review on Capterra last week.",
        "Nadia joined our customer advocacy programme last month and has sent two leads already.",
        "Kim said it would be no trouble at all to be a reference for the retail segment.",
        "She's put in a referral for us with the practice next door.",
        "JR: if your team needs a reference at the expo, use us, no problem.",
        # a question mark inside an aside is not the sentence's
        "- Ana's putting us in touch w/ the ops lead at Tarn Mills (their supplier? no - a friend of hers)",
    ],
)
def test_round4_signals(text):
    assert find_referral_evidence(text) is not None


@pytest.mark.parametrize(
    "notes",
    [
        # a statement taken back
        "voice note Rook Dental, Abe said he'd refer us to the study club, no wait, I'm mixing him up with Ed, Abe"
        " never said that",
        "She said she'll be a reference. Scratch that, she said legal won't allow it.",
        # an e-mail our side wrote
        "Email pasted by Lucia Marin (CSM)\n\n> From: Lucia Marin\n> To: Ola Berg\n>\n> Ola, I can introduce you to"
        " our implementation partner Tallis Data.",
        # a field value that is our plan, or how they came to us
        "## Referral:\nWill ask at the next QBR once the rollout lands.",
        "## Advocacy:\nWe'd love them as a case study, marketing to follow up.",
        "| Lead source | Referral from Copperleaf Partners (2022) |",
        "Lead source: referral from their auditor, signed 2021.",
        # domain senses in regulated verticals and their own redirects
        "The careers office runs reference checks for graduating students on our platform.",
        "Reference check for the applicants is still done by HR outside the tool.",
        "Their compliance lead referred the data-retention question to outside counsel.",
        # the CSM's wish, our own staff
        "We'd love Harrow County Council as a case study for the permits launch.",
        "Introduced our new onboarding lead, Tomas, to the finance operations team at Brill Foods.",
        "Loop in their security team on the pen-test findings at the next call.",
        "Ade is connecting our API to their warehouse system next week.",
        "If anyone asks about the outage, point them to the status page.",
        "Reference status: not yet asked",
        "The referral status field is broken again.",
        # overlapping blockers: our side sending our case study
        "Tarn Foods: we sent them our Halden Foods case study for the returns module.",
        # a state in a condition is not an answer
        "Mei plans to ask Ilse about reference activity at the next QBR once the audit is scheduled.",
        # our speaker named in the transcript, the customer's "us" and "their"
        "[00:01:00] CSM (Rhea): welcome.\n[00:02:00] Tom (cust): need a hand with SSO.\n"
        "EDIT (Rhea): intro to Tallis Data sent 15:10.",
        "Nadia (cust): Yes, Omar Reyes referred us, he's an old colleague.",
        "Callum (cust): Our parent liked the demo we showed them. Their CTO wants to recommend you to the other"
        " group breweries.",
        "Pieter (cust): And a reference for our CFO, she wants to hear from someone our size.",
        # a patient-referral note: on our line, "you" is the customer
        "Dr Ames (cust): the referral form dumps into a shared inbox.\n[00:03:00] CSM: So you want referrals"
        " routed to the right clinic?\n[00:03:05] Dr Ames (cust): Yes.",
    ],
)
def test_round4_non_signals(notes):
    assert find_referral_evidence(notes) is None


def test_a_label_in_a_note_about_their_own_referral_form_is_still_about_us():
    notes = "Attendees: Ines (cust), CSM\nReferral: yes\n---\n[00:30:00] Ines (cust): send me the referral form."
    assert find_referral_evidence(notes) == "Referral: yes"


@pytest.mark.parametrize(
    "text",
    [
        # a markdown heading as the field name, the value on the next line
        "# QBR - Koala Freight\n## Advocacy\n- Maya will co-present with our PM at the Sydney summit in March.",
        "## Advocacy:\n- Mei: \"Confirm I will tell my kaki at the other family offices to use you, no need to ask.\"",
        # telling an outsider about us, in a customer's e-mail
        "From: Lars Eng <lars@fjell.no>\nTo: Nina Holm\nSubject: RE: QBR\n\nNina, I told the CFO at Vardo Shipping about"
        " you, she will call you Monday.\nLars",
        "Dr. Osei offered to walk any prospective hospital client through his configuration.",
    ],
)
def test_round4_field_values_and_shapes(text):
    assert find_referral_evidence(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        # a field value that is our plan
        "## Referral\n- Plan to ask at next QBR",
        "## Advocacy:\n- TBD",
        # regulated verticals: referrals and recommendations in their own sense
        "Their underwriting team refers complex cases to the reinsurer for review.",
        "The hospital's case management team recommended discharge to a skilled nursing facility.",
        # telling someone something about us is not telling an outsider about us
        "Philip told Oren that the lab owners he knows are curious about us.",
    ],
)
def test_round4_field_plans_and_domain_senses(text):
    assert find_referral_evidence(text) is None


@pytest.mark.parametrize(
    "text, found",
    [
        # public advocacy in other words
        ("Agreed to be featured in our customer newsletter next month.", True),
        ("Happy to be quoted in the press release for the launch.", True),
        ("Posted about us on LinkedIn, tagged our CEO.", True),
        ("Said yes to the summit invite; she will present the results on the main stage.", True),
        ("They agreed to a joint press release about the rollout.", True),
        ("Approved use of their logo on our website and in sales decks.", True),
        ("Rated us 5 stars on Gartner Peer Insights last week.", True),
        ("Put us forward to their sister hospital's procurement team last week.", True),
        ("Hannah said we can use her name with prospects.", True),
        ("Agreed to sit on our customer panel at the user conference.", True),
        # our wish, our staff on stage, a refusal, product feedback
        ("We would love them to be featured in our newsletter.", False),
        ("We presented on stage at their town hall.", False),
        ("They declined to be quoted in the press release.", False),
        ("Legal would not allow use of their logo on our website.", False),
        ("Joined our customer advisory panel for product feedback.", False),
    ],
)
def test_round4_public_advocacy(text, found):
    assert (find_referral_evidence(text) is not None) == found


@pytest.mark.parametrize(
    "text",
    [
        # regulated verticals: referring or recommending something, or someone, other than us
        "Patients referred by GPs are triaged within 48 hours in the new module.",
        "Examiners referred two findings to the board's audit committee.",
        "The bank refers suspicious transactions to FinCEN within 30 days.",
        "Nurses can now refer a patient to physio directly from the ward screen.",
        "Loan officers refer borrowers to housing counselors as part of HUD rules.",
        "They recommend a 90-day retention for audit logs.",
        "Claims adjusters recommended a settlement in 60% of cases.",
        "The FCA's guidance recommends firms keep records for five years.",
        # what a tender asks of every supplier
        "The next tender will have references required in the bid, for every supplier.",
    ],
)
def test_round4_regulated_senses(text):
    assert find_referral_evidence(text) is None


@pytest.mark.parametrize(
    "text",
    [
        "She referred two of her peers to our AE last week.",
        "Referred the CFO of Acme to Dana last week.",
        "Happy to refer the other clinics in her group to us.",
        "Happy to refer once the rollout to the EU teams is done.",
        "Would recommend the platform to anyone.",
    ],
)
def test_round4_referrals_of_people_to_us_still_count(text):
    assert find_referral_evidence(text) is not None


def test_an_abbreviated_saint_does_not_end_the_evidence():
    notes = "Rob looped Dr. Kemi Ade from St. Luke's Medical Center into the thread so Jon can follow up."
    assert find_referral_evidence(notes) == notes


@pytest.mark.parametrize(
    "notes",
    [
        # CRM log entries by our staff, and e-mails our side wrote
        "[2024-10-01] Jake Moreno (AE): introduced Mia to our implementation partner Corvane.",
        "[2024-10-03] Email (outbound) to Mia Lund:\n> Mia, happy to introduce you to two customers who did the same"
        " migration.\n> Jake",
        "Email thread (logged by Sam Ortiz)\n\nFrom: Sam Ortiz\nTo: Jonas Petersen\nSubject: QBR recap\n\nJonas, happy to"
        " connect you with a reference customer in freight before you expand.\nSam",
        "Dana Ruiz (CSM) and Ola (cust) met.\n2024-03-01 Dana: sent the intro to Corvane, our partner.",
        # our own request for a reference
        "[2024-05-02] Sam: reference request sent to Jonas. No reply yet.",
        # a hedge in time, not a place
        "Might refer us down the road.",
    ],
)
def test_round4_our_log_entries_and_emails(notes):
    assert find_referral_evidence(notes) is None


@pytest.mark.parametrize(
    "notes",
    [
        "[2024-05-02] Email (inbound) from Jonas Petersen:\n> Sam, happy to be a reference for the Nordics, just tell"
        " me who.\n> Jonas",
        # our staff's log entry reporting the customer
        "Dana Ruiz (CSM)\n2024-03-01 Dana: Ola said she will refer us to her old firm.",
        # "down the road" as a place
        "um so the Cedar Dental QBR, Dr Lee said she'd introduce us to the practice down the road, the owner's a friend",
    ],
)
def test_round4_customer_emails_and_reports(notes):
    assert find_referral_evidence(notes) is not None


@pytest.mark.parametrize(
    "text, found",
    [
        # appearing, interviewed, recorded, quoted or listed in our material; championing us
        ("He agreed to appear in our customer video series.", True),
        ("She'll record a short video about the rollout for our website.", True),
        ("Happy for us to list them on our customers page.", True),
        ("She's fine with us quoting her in the launch blog.", True),
        ("Agreed to be interviewed for our podcast.", True),
        ("Will champion us with the other schools in the trust.", True),
        ("Happy to talk up the platform at the regional CFO forum.", True),
        ("Will speak on a panel we're hosting at HIMSS.", True),
        # our side doing it, a price quoted, internal recordings, a refusal
        ("We will list them on our customers page once they approve.", False),
        ("They quoted the wrong price on the website.", False),
        ("Recorded the training session for the new admins on our LMS.", False),
        ("Not willing to appear in any of our videos.", False),
    ],
)
def test_round4_appearing_in_our_material(text, found):
    assert (find_referral_evidence(text) is not None) == found
