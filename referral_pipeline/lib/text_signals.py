"""Detect referral intent in free-text QBR notes.

A note is first screened with one cheap regex over its lower-cased text; only
notes containing a candidate stem are examined further. Each trigger word
("refer", "intro", "recommend", "case study", ...) is then judged inside its
sentence: blockers (other senses, the vendor referring the customer, third
parties, the CSM's own opinion) veto it; a negation in its clause or a hedge
earlier in its segment vetoes it; a question or a label ("Referral: yes")
needs an affirmative answer. The first sentence holding a surviving trigger is
returned as evidence. All vocabulary lives in `referral_vocabulary.toml`;
every pattern has bounded repetition and is applied to a bounded window, so
the cost is linear in the note length.
"""

from __future__ import annotations

import bisect
import multiprocessing
import os
import re
import tomllib
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

DEFAULT_VOCABULARY_PATH = Path(__file__).with_name("referral_vocabulary.toml")

_MACRO = re.compile(r"\{([a-z_]+)\}")
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class ReferralVocabulary:
    """Compiled patterns of a referral vocabulary file."""

    prefilter: re.Pattern[str]
    trigger: re.Pattern[str]
    label_noun: re.Pattern[str]
    blocker: re.Pattern[str]
    negation_before: re.Pattern[str]
    negation_after: re.Pattern[str]
    double_negation: re.Pattern[str]
    hedge: re.Pattern[str]
    noun: re.Pattern[str]
    commitment: re.Pattern[str]
    question_opener: re.Pattern[str]
    affirmative: re.Pattern[str]
    clause: re.Pattern[str]
    segment: re.Pattern[str]
    sentence: re.Pattern[str]
    label_separator: re.Pattern[str]
    answer_start: re.Pattern[str]
    label_affirmative: re.Pattern[str]
    window_before: int
    window_after: int
    label_max_words: int
    region_before: int
    region_after: int


def _trie_pattern(words: Iterable[str]) -> str:
    """Alternation of literal words factored by common prefix (fast in `re`)."""
    trie: dict = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def build(node: dict) -> str:
        alternatives = [re.escape(char) + build(child) for char, child in sorted(node.items()) if char]
        if not alternatives:
            return ""
        group = alternatives[0] if len(alternatives) == 1 else "(?:" + "|".join(alternatives) + ")"
        if "" in node:
            return "(?:" + group + ")?" if len(alternatives) == 1 else group[:-1] + ")?"
        return group

    return build(trie)


def load_vocabulary(path: str | os.PathLike | None = None) -> ReferralVocabulary:
    """Load and compile a vocabulary TOML file (default: the packaged one)."""
    with open(path or DEFAULT_VOCABULARY_PATH, "rb") as handle:
        data = tomllib.load(handle)
    macros: dict[str, str] = {}

    def expand(pattern: str) -> str:
        return _MACRO.sub(lambda m: macros.get(m.group(1), m.group(0)), pattern.strip())

    for name, value in data["macros"].items():
        macros[name] = expand(value)

    def compile_(pattern: str | list[str], guard: str = "") -> re.Pattern[str]:
        parts = [pattern] if isinstance(pattern, str) else pattern
        alternation = "|".join(f"(?:{expand(part)})" for part in parts)
        return re.compile(f"{guard}(?:{alternation})" if guard else alternation)

    # Trigger and blocker patterns all start with `\b`: checking one word
    # boundary (followed by a word character or an apostrophe) before trying
    # dozens of alternatives keeps `finditer` over a region cheap.
    word_guard = r"\b(?=[\w'’`])"

    blockers = data["blockers"]
    limits = data["limits"]
    return ReferralVocabulary(
        prefilter=re.compile(_trie_pattern(stem.lower() for stem in data["prefilter"]["stems"])),
        trigger=compile_(data["triggers"]["patterns"], word_guard),
        label_noun=compile_(data["triggers"]["label_nouns"]),
        blocker=compile_([p for group in blockers.values() for p in group], word_guard),
        negation_before=compile_(data["negation"]["before"]),
        negation_after=compile_(data["negation"]["after"]),
        double_negation=compile_(data["negation"]["double"]),
        hedge=compile_(data["hedge"]["cues"]),
        noun=compile_(data["commitment"]["nouns"]),
        commitment=compile_(data["commitment"]["cues"]),
        question_opener=compile_(data["questions"]["openers"]),
        affirmative=compile_(data["questions"]["affirmative"]),
        clause=compile_(data["boundaries"]["clause"]),
        segment=compile_(data["boundaries"]["segment"]),
        sentence=compile_(data["boundaries"]["sentence"]),
        label_separator=compile_(data["boundaries"]["label_separator"]),
        answer_start=compile_(data["boundaries"]["answer_start"]),
        label_affirmative=compile_(data["boundaries"]["label_affirmative"]),
        window_before=int(limits["window_before"]),
        window_after=int(limits["window_after"]),
        label_max_words=int(limits["label_max_words"]),
        region_before=int(limits["region_before"]),
        region_after=int(limits["region_after"]),
    )


_default_vocabulary: ReferralVocabulary | None = None


def _default() -> ReferralVocabulary:
    global _default_vocabulary
    if _default_vocabulary is None:
        _default_vocabulary = load_vocabulary()
    return _default_vocabulary


def _after_last(pattern: re.Pattern[str], text: str) -> str:
    """The part of `text` after the last boundary match."""
    end = 0
    for match in pattern.finditer(text):
        end = match.end()
    return text[end:]


def _before_first(pattern: re.Pattern[str], text: str) -> str:
    match = pattern.search(text)
    return text[: match.start()] if match else text


def _has_cue(cue: re.Pattern[str], text: str, vocab: ReferralVocabulary, context: str = "") -> bool:
    """True if `cue` occurs in `text` outside any double negation.

    `context` is appended when looking for double negations so that phrases
    spanning the trigger ("can't recommend them enough") are recognised.
    """
    covered = [m.span() for m in vocab.double_negation.finditer(text + context)]
    return any(
        not any(start <= m.start() and m.end() <= end for start, end in covered) for m in cue.finditer(text)
    )


def _answer_is_yes(answer: str, vocab: ReferralVocabulary, label: bool = False) -> bool:
    """An affirmative answer (or label value) without negation or hedge."""
    if not (vocab.affirmative.search(answer) or label and vocab.label_affirmative.search(answer)):
        return False
    return not (_has_cue(vocab.negation_before, answer, vocab) or vocab.hedge.search(answer))


def _next_sentence_answers(sentence: str, vocab: ReferralVocabulary) -> bool:
    """The following sentence opens with a yes ("Yes, once legal signs off.")."""
    return bool(vocab.answer_start.search(sentence)) and _answer_is_yes(sentence[: vocab.window_after], vocab)


def _sentence_spans(notes: str, vocab: ReferralVocabulary) -> tuple[list[int], list[int]]:
    starts, ends, position = [], [], 0
    for match in vocab.sentence.finditer(notes):
        if match.start() > position:
            starts.append(position)
            ends.append(match.start())
        position = match.end()
    if position < len(notes):
        starts.append(position)
        ends.append(len(notes))
    return starts, ends


def _judge(
    notes: str, start: int, end: int, s_start: int, s_end: int, next_sentence: str, vocab: ReferralVocabulary
) -> tuple[bool, bool]:
    """Judge one trigger at notes[start:end] (lower-cased text) within sentence [s_start, s_end).

    Returns (is_signal, answer_in_next_sentence).
    """
    w_start = max(s_start, start - vocab.window_before)
    w_end = min(s_end, end + vocab.window_after)
    window = notes[w_start:w_end]
    t_start, t_end = start - w_start, end - w_start
    if any(m.start() < t_end and m.end() > t_start for m in vocab.blocker.finditer(window)):
        return False, False
    before, after = window[:t_start], window[t_end:]

    # Label: "Referral: yes", "Case study - done", "Reference call? no".
    head = notes[max(s_start, start - 40) : start]
    if start - s_start < 40 and len(_WORD.findall(head)) <= vocab.label_max_words:
        noun = vocab.label_noun.match(notes, start)
        if noun:
            rest = notes[noun.end() : min(s_end, noun.end() + vocab.window_after)]
            separator = vocab.label_separator.match(rest)
            if separator or not _WORD.search(head) and len(_WORD.findall(rest)) <= 1:
                if rest[separator.end() if separator else 0 :].strip():
                    return _answer_is_yes(rest, vocab, label=True), False
                return _next_sentence_answers(next_sentence, vocab), True

    segment_before = _after_last(vocab.segment, before)
    clause_before = _after_last(vocab.clause, before)
    clause_after = _before_first(vocab.clause, after)
    sentence_rest = notes[end:w_end]
    is_question = notes[max(s_start, s_end - 20) : s_end].rstrip().endswith("?")

    # Question: asked about, or the sentence is a question; needs an answer.
    opener = vocab.question_opener.search(segment_before)
    if opener or is_question:
        answer = sentence_rest
        if opener and not vocab.question_opener.search(clause_before):
            answer = clause_before + answer
        if _answer_is_yes(answer, vocab):
            return True, False
        return _next_sentence_answers(next_sentence, vocab), True

    trigger = window[t_start:t_end]
    if _has_cue(vocab.negation_before, clause_before, vocab, trigger + clause_after):
        return False, False
    if _has_cue(vocab.negation_after, clause_after, vocab):
        return False, False
    if vocab.hedge.search(segment_before) or vocab.hedge.search(clause_after):
        return False, False
    # A bare noun ("the referral program", "a case study") needs a commitment
    # or a completed act in its segment ("agreed to a case study", "intro made").
    noun = vocab.noun.match(notes, start, w_end)
    if noun and noun.end() == end:
        segment = segment_before + trigger + _before_first(vocab.segment, after)
        if not vocab.commitment.search(segment):
            return False, False
    return True, False


def _lower(notes: str) -> str:
    """Lower-case `notes` keeping every offset ("İ" is the one character whose
    lower case is longer)."""
    lower = notes.lower()
    return lower if len(lower) == len(notes) else notes.replace("\u0130", "i").lower()


def _triggers(lower: str, vocab: ReferralVocabulary) -> Iterator[re.Match[str]]:
    """Trigger matches, searched only in regions around prefilter hits."""
    region_start = region_end = -1
    for hit in vocab.prefilter.finditer(lower):
        start, end = max(0, hit.start() - vocab.region_before), hit.end() + vocab.region_after
        if start > region_end:
            if region_end > 0:
                yield from vocab.trigger.finditer(lower, region_start, region_end)
            region_start = start
        region_end = max(region_end, end)
    if region_end > 0:
        yield from vocab.trigger.finditer(lower, region_start, region_end)


def _evidence(notes: str, lower: str, vocab: ReferralVocabulary) -> str | None:
    """Judge triggers on the lower-cased text; slice the evidence from `notes`."""
    spans: tuple[list[int], list[int]] | None = None
    for match in _triggers(lower, vocab):
        if spans is None:
            spans = _sentence_spans(lower, vocab)
        starts, ends = spans
        index = bisect.bisect_right(starts, match.start()) - 1
        if index < 0 or match.start() >= ends[index]:
            continue
        s_start, s_end = starts[index], ends[index]
        next_sentence = ""
        if index + 1 < len(starts):
            next_start = starts[index + 1]
            next_sentence = lower[next_start : min(ends[index + 1], next_start + vocab.window_after)]
        is_signal, uses_next = _judge(lower, match.start(), match.end(), s_start, s_end, next_sentence, vocab)
        if is_signal:
            last = ends[index + 1] if uses_next else s_end
            return notes[s_start:last].strip()
    return None


def find_referral_evidence(notes: str | None, vocabulary: ReferralVocabulary | None = None) -> str | None:
    """Return the first sentence of `notes` showing referral intent, or None."""
    return detect_referral_evidence([notes], vocabulary)[0]


def detect_referral_evidence(
    notes: Iterable[str | None], vocabulary: ReferralVocabulary | None = None
) -> list[str | None]:
    """Batch version of `find_referral_evidence`, one result per note."""
    vocab = vocabulary or _default()
    prefilter = vocab.prefilter.search
    results: list[str | None] = []
    for note in notes:
        lower = _lower(note) if note else ""
        results.append(_evidence(note, lower, vocab) if lower and prefilter(lower) else None)
    return results


# Below this many notes, starting worker processes costs more than it saves.
PARALLEL_MIN_NOTES = 50_000


def detect_referral_evidence_in_batches(
    batches: Iterable[list[str | None]], total: int, workers: int | None = None
) -> Iterator[list[str | None]]:
    """`detect_referral_evidence` with the default vocabulary for each batch of notes, in order.

    With ``total`` notes or more than PARALLEL_MIN_NOTES, the batches are spread over worker
    processes, a few at a time, so memory stays bounded by the batches in flight.
    """
    workers = workers or os.cpu_count() or 1
    if workers < 2 or total < PARALLEL_MIN_NOTES:
        yield from (detect_referral_evidence(batch) for batch in batches)
        return
    context = multiprocessing.get_context("spawn")  # the caller may hold threads: never fork
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        in_flight: deque = deque()
        for batch in batches:
            in_flight.append(pool.submit(detect_referral_evidence, batch))
            if len(in_flight) > 2 * workers:
                yield in_flight.popleft().result()
        while in_flight:
            yield in_flight.popleft().result()
