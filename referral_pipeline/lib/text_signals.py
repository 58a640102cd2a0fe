"""Detect referral intent in free-text QBR notes.

A note is first screened with one cheap regex over its lower-cased text; only
notes containing a candidate stem are examined further. The screen also holds
typo anchors derived from the fuzzy vocabulary (the two halves of each long
trigger word: a word within edit distance 1 keeps one half intact), so a note
whose only trigger is misspelt still passes. A note that passes has its
misspelt vocabulary words (triggers, negations, hedges) normalised to their
spelling through a symmetric-delete index, within edit distance 1 or 2
depending on the word's length; the rules below then run on the normalised
text and the evidence is sliced from the original.

Each trigger word ("refer", "intro", "recommend", "case study", ...) is then
judged inside its sentence: blockers (other senses, product features named like
referrals, the vendor referring the customer, our own staff, third parties, the
CSM's own opinion) veto it, as does a context (an inbound-referral story, a
product feature) in its segment; a negation in its clause or a hedge earlier
in its segment vetoes it; a question or a label ("Referral: yes") needs an
affirmative answer. Introductions without a trigger word are recognised by
their shape: a connection act ("looped X into our thread", "gave our AE's
number to", "forwarded our deck to ... saying") counts only with a third party
(someone at another company) in its sentence. The first sentence holding a
surviving trigger is returned as evidence. All vocabulary lives in
`referral_vocabulary.toml`; every pattern has bounded repetition and is
applied to a bounded window, so the cost is linear in the note length.

Whose statement it is also decides: a machine summary line, a transcript line
our side speaks (by role, or by a name our tags or attendee list give), an
e-mail our side wrote (its From: header or "(outbound)") are not the
customer's; "I" / "we" in a customer's quote, speaker line or e-mail is the
customer, while on the customer's own line "us" is the customer and "their"
someone else. A statement the speaker takes back ("no wait, scratch that",
"I'm mixing him up") is withdrawn and the corrected one judged. A field whose
value is on the next line ("## Advocacy:") is judged by that value; a field
saying how the customer came to us ("Lead source | Referral from ...") is
inbound. The long trigger and blocker alternations are guarded by a lookahead
derived from the vocabulary itself (the prefixes their alternatives can start
with), which rejects most word starts with a single test.

An opt-in second opinion, `signal_model` (a linear model of the words and word
pairs of a note, trained offline on the labelled notes), reads every screened
note of at least 20 words when passed to `detect_referral_evidence`: it vetoes
the rules' evidence when it finds the note very unlikely to be a signal, and
adds a signal, with the sentence it scores highest as evidence, when the rules
found no trigger or rejected every trigger by its sense and it finds the note
likely enough. It never overrules a rejection for whose statement it is. The
pipeline does not use it (see `signal_model`). `rule_verdicts` gives the rules'
reasons for no evidence.
"""

from __future__ import annotations

import bisect
import enum
import itertools
import multiprocessing
import os
import re
import tomllib
from re import _constants as _sre, _parser as _sre_parse
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from referral_pipeline.lib.signal_model import SignalModel

DEFAULT_VOCABULARY_PATH = Path(__file__).with_name("referral_vocabulary.toml")

_MACRO = re.compile(r"\{([a-z_]+)\}")
_WORD = re.compile(r"\w+")


def _deletes(word: str, depth: int) -> set[str]:
    """`word` and every string made from it by deleting up to `depth` characters."""
    found, frontier = {word}, {word}
    for _ in range(depth):
        frontier = {w[:i] + w[i + 1 :] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


def _osa_distance(a: str, b: str, limit: int) -> int:
    """Optimal-string-alignment distance (Levenshtein + adjacent transposition), capped at limit + 1."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            value = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                value = min(value, previous2[j - 2] + 1)
            current[j] = value
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


class FuzzyIndex:
    """Misspelling tolerance for the vocabulary words of the [fuzzy] table.

    A token is corrected to a vocabulary word when it is not itself a vocabulary word nor a listed
    real word (`not_typos`), starts with the same letter, and is within the word's allowed edit
    distance (OSA: insert, delete, substitute, swap two neighbours): 1 from `distance_1_from`
    letters, 2 from `distance_2_from`. Candidates come from a symmetric-delete index (every
    vocabulary word with up to two letters deleted), so a lookup costs a few dozen dict probes;
    results are cached per token.
    """

    CACHE_LIMIT = 200_000

    def __init__(
        self,
        words: Iterable[str],
        not_typos: Iterable[str],
        derived_suffixes: Iterable[str],
        token: str,
        distance_1_from: int,
        distance_2_from: int,
    ) -> None:
        self.words = frozenset(word.lower() for word in words)
        self.distance_1_from, self.distance_2_from = distance_1_from, distance_2_from
        self.token = re.compile(token)
        self.derived_suffixes = frozenset(derived_suffixes)
        self.deletes: dict[str, list[str]] = {}
        for word in sorted(self.words):
            for deleted in _deletes(word, self.max_distance(word)):
                self.deletes.setdefault(deleted, []).append(word)
        # Tokens known to need no correction (vocabulary words, real words, and tokens looked up
        # before without a match) and tokens known to be misspellings.
        self._plain = set(self.words) | {word.lower() for word in not_typos}
        self._fixed_words = frozenset(self._plain)
        self.corrections: dict[str, str] = {}

    def _stems(self, key: str) -> Iterator[str]:
        """`key` less each derived suffix it ends with ("introducer" -> "introduce")."""
        return (key[: len(key) - len(suffix)] for suffix in self.derived_suffixes if key.endswith(suffix))

    def max_distance(self, word: str) -> int:
        return 2 if len(word) >= self.distance_2_from else 1 if len(word) >= self.distance_1_from else 0

    def lookup(self, token: str) -> str | None:
        """The vocabulary word `token` is a misspelling of, or None."""
        key = token.replace("'", "").replace("\u2019", "")
        if key in self._fixed_words:
            return None
        if any(stem in self.words for stem in self._stems(key)):
            return None  # a derived word ("introducer"), not a misspelling
        best: tuple[int, str] | None = None
        for deleted in _deletes(key, 2):
            for word in self.deletes.get(deleted, ()):
                if word[0] != key[0] or best and best[1] == word:
                    continue
                limit = self.max_distance(word)
                distance = _osa_distance(key, word, limit)
                if distance <= limit and (best is None or (distance, word) < best):
                    best = (distance, word)
        return best[1] if best else None

    @staticmethod
    def anchors(words: Iterable[str], min_length: int) -> set[str]:
        """Substrings of which every word within edit distance 1 of one of `words` holds one: the
        two halves of the word (one edit can break only one of them), split at "|" or else in the
        middle. Halves shorter than `min_length` are left out (too common to screen on); two edits
        are caught when they fall in the same half."""
        found = set()
        for word in words:
            head, _, tail = word.partition("|") if "|" in word else (word[: len(word) // 2], "", word[len(word) // 2 :])
            found.update(half for half in (head, tail) if len(half) >= min_length)
        return found

    def correct(self, lower: str) -> tuple[str, list[tuple[int, int, int, int]]]:
        """`lower` with misspelt vocabulary words replaced, and the replacements as
        (start in corrected text, end in corrected text, start in `lower`, end in `lower`)."""
        fresh = set(self.token.findall(lower)) - self._plain
        if not fresh:
            return lower, []
        wrong = {}
        for token in fresh:
            fixed = self.corrections.get(token)
            if fixed is None:
                fixed = self.lookup(token)
                if fixed is None:
                    if len(self._plain) > self.CACHE_LIMIT:
                        self._plain = set(self._fixed_words)
                    self._plain.add(token)
                    continue
                self.corrections[token] = fixed
            wrong[token] = fixed
        if not wrong:
            return lower, []
        pieces, spans, last, shift = [], [], 0, 0
        for match in self.token.finditer(lower):
            fixed = wrong.get(match.group())
            if fixed is None:
                continue
            start, end = match.span()
            pieces += [lower[last:start], fixed]
            spans.append((start + shift, start + shift + len(fixed), start, end))
            shift += len(fixed) - (end - start)
            last = end
        pieces.append(lower[last:])
        return "".join(pieces), spans


def _original_offset(position: int, spans: list[tuple[int, int, int, int]]) -> int:
    """Map an offset of the corrected text back to the original text."""
    index = bisect.bisect_right(spans, (position, float("inf"))) - 1
    if index < 0:
        return position
    c_start, c_end, o_start, o_end = spans[index]
    if position >= c_end:
        return o_end + position - c_end
    return min(o_start + position - c_start, o_end)


@dataclass(frozen=True)
class ReferralVocabulary:
    """Compiled patterns of a referral vocabulary file."""

    prefilter: re.Pattern[str]
    screen: re.Pattern[str]
    trigger: re.Pattern[str]
    outside_party: re.Pattern[str]
    outside_cased: re.Pattern[str]
    availability_act: re.Pattern[str]
    context: re.Pattern[str]
    product_context: re.Pattern[str]
    directed: re.Pattern[str]
    label_noun: re.Pattern[str]
    blocker: re.Pattern[str]
    negation_before: re.Pattern[str]
    negation_after: re.Pattern[str]
    negation_carry: re.Pattern[str]
    double_negation: re.Pattern[str]
    hedge: re.Pattern[str]
    noun: re.Pattern[str]
    commitment: re.Pattern[str]
    question_opener: re.Pattern[str]
    statement: re.Pattern[str]
    completed_after: re.Pattern[str]
    conditional_asker: re.Pattern[str]
    label_count: re.Pattern[str]
    affirmative: re.Pattern[str]
    state_word: re.Pattern[str]
    condition: re.Pattern[str]
    clause: re.Pattern[str]
    segment: re.Pattern[str]
    sentence: re.Pattern[str]
    sentence_unspaced: re.Pattern[str]
    unspaced_stops: str
    label_separator: re.Pattern[str]
    answer_start: re.Pattern[str]
    label_affirmative: re.Pattern[str]
    window_before: int
    context_before: int
    window_after: int
    label_max_words: int
    region_before: int
    region_after: int
    later_answer: re.Pattern[str]
    later_answer_sentences: int
    fuzzy: FuzzyIndex
    staff_after: tuple[re.Pattern[str], ...]
    staff_before: re.Pattern[str]
    outsider_stems: re.Pattern[str]
    outsider_after: tuple[re.Pattern[str], ...]
    outsider_lead: re.Pattern[str]
    outsider_before: re.Pattern[str]
    outsider_suffix: re.Pattern[str]
    outsider_first_word: re.Pattern[str]
    header_length: int
    domain: re.Pattern[str]
    handover_family: re.Pattern[str]
    handover: re.Pattern[str]
    domain_family: re.Pattern[str]
    names_us: re.Pattern[str]
    summary_line: re.Pattern[str]
    our_speaker: re.Pattern[str]
    our_speaker_name: re.Pattern[str]
    our_named_line: str
    our_tag_other: re.Pattern[str]
    customer_line_object: re.Pattern[str]
    customer_line_other: re.Pattern[str]
    names_us_ours: re.Pattern[str]
    label_line: re.Pattern[str]
    speaker: re.Pattern[str]
    inbound_field: re.Pattern[str]
    field_value_ours: re.Pattern[str]
    retraction: re.Pattern[str]
    email_header: re.Pattern[str]
    email_logger: re.Pattern[str]
    email_direction: re.Pattern[str]
    email_salutation: re.Pattern[str]
    staff_between: str
    staff_clause: re.Pattern[str]
    min_name_length: int


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


PREFIX_GUARD_LENGTH = 5
_PREFIX_LIMIT = 5000


class _Unbounded(Exception):
    """Too many prefixes to enumerate."""


def _prefixes(items: list, k: int) -> set[tuple[str, bool]]:
    """(prefix, done) for the parsed pattern `items`: every string of at most `k` characters a
    match can start with; done when the whole pattern can end right after it, else the prefix is
    truncated (at `k` characters, or where a character is not known: anything may follow)."""
    states, found = {("", True)}, set()
    for op, av in items:
        following = set()
        for text, _ in states:
            if len(text) >= k:
                found.add((text[:k], False))
                continue
            for tail, done in _item_prefixes(op, av, k - len(text)):
                (following if done else found).add((text + tail, done))
        states = following
        if len(states) + len(found) > _PREFIX_LIMIT:
            raise _Unbounded
        if not states:
            break
    return found | states


def _item_prefixes(op, av, k: int) -> set[tuple[str, bool]]:
    """`_prefixes` of one parsed item."""
    if op is _sre.LITERAL:
        return {(chr(av), True)}
    if op is _sre.IN:
        chars = set()
        for kind, value in av:
            if kind is _sre.LITERAL:
                chars.add(chr(value))
            elif kind is _sre.RANGE and value[1] - value[0] <= 64:
                chars.update(chr(c) for c in range(value[0], value[1] + 1))
            else:
                return {("", False)}  # a category, a negated or a wide set: anything
        return {(char, True) for char in chars}
    if op in (_sre.AT, _sre.ASSERT, _sre.ASSERT_NOT):
        return {("", True)}  # zero-width: ignoring a condition keeps a superset
    if op is _sre.SUBPATTERN:
        if av[1] & _sre.SRE_FLAG_IGNORECASE:
            return {("", False)}
        return _prefixes(list(av[-1]), k)
    if op is _sre.BRANCH:
        return set().union(*(_prefixes(list(alternative), k) for alternative in av[1]))
    if op in (_sre.MAX_REPEAT, _sre.MIN_REPEAT):
        low, high, sub = av
        once = _prefixes(list(sub), k)
        found = {("", True)} if low == 0 else set()
        states, count = {("", True)}, 0
        while states and (high is _sre.MAXREPEAT or count < high):
            count += 1
            following = set()
            for text, _ in states:
                for tail, done in once:
                    joined = text + tail
                    if len(joined) >= k:
                        found.add((joined[:k], False))
                    elif done:
                        following.add((joined, True))
                    else:
                        found.add((joined, False))
            states = following - {(text, True) for text, _ in states} if count > low + k else following
            if count >= low:
                found |= states
            if len(found) > _PREFIX_LIMIT:
                raise _Unbounded
        return found
    return {("", False)}


def _prefix_guard(pattern: str, k: int = PREFIX_GUARD_LENGTH) -> str:
    """A zero-width test that every match of `pattern` passes: a lookahead with a trie of the
    strings of up to `k` characters its matches can start with (or, for an alternative that opens
    with a one-character lookbehind, that lookbehind). Placed before a long alternation searched
    at every word start, it rejects the word starts none of the alternatives can match with one
    cheap test instead of dozens (same matches). Empty when a start cannot be bounded."""
    items = list(_sre_parse.parse(pattern))
    alternatives = items[0][1][1] if len(items) == 1 and items[0][0] is _sre.BRANCH else [items]
    found, behind = set(), set()
    try:
        for alternative in alternatives:
            for length in range(k, 0, -1):  # shorter prefixes where there are too many ("[0-9]+")
                try:
                    starts = {text for text, _ in _prefixes(list(alternative), length)}
                    break
                except _Unbounded:
                    if length == 1:
                        raise
            if "" not in starts:
                found |= starts
                continue
            first = list(alternative)[0] if len(alternative) else None
            if first is None or first[0] is not _sre.ASSERT or first[1][0] != -1:
                return ""
            chars = _item_prefixes(*list(first[1][1])[0], 1) if len(first[1][1]) == 1 else {("", False)}
            if any(not text for text, _ in chars):
                return ""
            behind |= {text for text, _ in chars}
    except (_Unbounded, RecursionError):
        return ""
    tests = [f"(?={_trie_pattern(sorted(found))})"] if found else []
    if behind:
        tests.append("(?<=[" + "".join(re.escape(char) for char in sorted(behind)) + "])")
    return tests[0] if len(tests) == 1 else "(?:" + "|".join(tests) + ")"


def _without_leading_boundaries(pattern: str) -> str:
    """`pattern` less the `\b` that starts any of its top-level alternatives."""
    pieces, depth, start, i = [], 0, 0, 0
    in_class = False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern[i + 1 : i + 2] == "^":
                i += 1
            if pattern[i + 1 : i + 2] == "]":
                i += 1
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "|" and depth == 0:
            pieces.append(pattern[start:i])
            start = i + 1
        i += 1
    pieces.append(pattern[start:])
    return "|".join(piece[2:] if piece.startswith("\\b") else piece for piece in pieces)


def load_vocabulary(path: str | os.PathLike | None = None) -> ReferralVocabulary:
    """Load and compile a vocabulary TOML file (default: the packaged one)."""
    with open(path or DEFAULT_VOCABULARY_PATH, "rb") as handle:
        data = tomllib.load(handle)
    macros: dict[str, str] = {}

    def expand(pattern: str) -> str:
        return _MACRO.sub(lambda m: macros.get(m.group(1), m.group(0)), pattern.strip())

    for name, value in data["macros"].items():
        macros[name] = expand(value)

    def alternation(pattern: str | list[str], guard: str = "") -> str:
        parts = [expand(part) for part in ([pattern] if isinstance(pattern, str) else pattern)]
        if guard:
            # The guard asserts the word boundary: a leading `\b` of its own would hide the
            # alternative's first letter from the engine's quick first-character check.
            parts = [_without_leading_boundaries(part) for part in parts]
        return "|".join(f"(?:{part})" for part in parts)

    def guarded(guard: str, body: str) -> re.Pattern[str]:
        """`body` behind `guard` and the prefix guard derived from it."""
        return re.compile(f"{guard}{_prefix_guard(body)}(?:{body})")

    def compile_(pattern: str | list[str], guard: str = "") -> re.Pattern[str]:
        return guarded(guard, alternation(pattern, guard)) if guard else re.compile(alternation(pattern))

    # Trigger and blocker patterns all start with `\b`: checking one word
    # boundary (followed by a word character or an apostrophe) before trying
    # dozens of alternatives keeps `finditer` over a region cheap.
    word_guard = r"\b(?=[\w'’`])"

    blockers = data["blockers"]
    limits = data["limits"]
    trigger_body = (
        f"{alternation(data['triggers']['patterns'], word_guard)}"
        f"|(?P<shape>{alternation(data['shapes']['connection'], word_guard)})"
        f"|(?P<avail>{alternation(data['shapes']['evaluator'], word_guard)})"
    )
    fuzzy_table = data["fuzzy"]
    fuzzy_triggers = [word.lower() for word in fuzzy_table["triggers"]]
    fuzzy = FuzzyIndex(
        fuzzy_triggers + fuzzy_table["negations"] + fuzzy_table["commitments"] + fuzzy_table["hedges"],
        fuzzy_table["not_typos"],
        fuzzy_table["derived_suffixes"],
        expand(fuzzy_table["token"]),
        int(fuzzy_table["distance_1_from"]),
        int(fuzzy_table["distance_2_from"]),
    )
    stems = [stem.lower() for stem in data["prefilter"]["stems"]]
    anchors = FuzzyIndex.anchors(
        [word.lower() for word in fuzzy_table["screened"]], int(fuzzy_table["min_anchor_length"])
    )
    return ReferralVocabulary(
        prefilter=re.compile(_trie_pattern(stems)),
        screen=re.compile(_trie_pattern(sorted(set(stems) | anchors))),
        # One pass finds all three: a shape match is the named group "shape", someone evaluating
        # us the group "avail".
        trigger=guarded(word_guard, trigger_body),
        outside_party=compile_(data["shapes"]["outside_party"]),
        outside_cased=re.compile(expand(data["shapes_cased"]["outside_party"])),
        availability_act=compile_(data["shapes"]["availability_act"]),
        context=compile_([p for name, group in data["context"].items() if name != "product" for p in group]),
        product_context=compile_(data["context"]["product"]),
        directed=compile_(data["directed"]["pattern"]),
        label_noun=compile_(data["triggers"]["label_nouns"]),
        blocker=compile_([p for group in blockers.values() for p in group], word_guard),
        negation_before=compile_(data["negation"]["before"]),
        negation_after=compile_(data["negation"]["after"]),
        negation_carry=compile_(data["negation"]["carry"]),
        double_negation=compile_(data["negation"]["double"]),
        hedge=compile_(data["hedge"]["cues"]),
        noun=compile_(data["commitment"]["nouns"]),
        commitment=compile_(data["commitment"]["cues"]),
        question_opener=compile_(data["questions"]["openers"]),
        statement=compile_(data["questions"]["statement"]),
        completed_after=compile_(data["questions"]["completed_after"]),
        conditional_asker=compile_(data["questions"]["conditional_asker"]),
        label_count=compile_(data["boundaries"]["label_count"]),
        affirmative=compile_(data["questions"]["affirmative"]),
        state_word=compile_(data["questions"]["state_word"]),
        condition=compile_(data["questions"]["condition"]),
        clause=compile_(data["boundaries"]["clause"]),
        segment=compile_(data["boundaries"]["segment"]),
        sentence=compile_(data["boundaries"]["sentence"]),
        sentence_unspaced=compile_([data["boundaries"]["sentence"], data["boundaries"]["sentence_unspaced"]]),
        unspaced_stops=data["boundaries"]["unspaced_stops"],
        label_separator=compile_(data["boundaries"]["label_separator"]),
        answer_start=compile_(data["boundaries"]["answer_start"]),
        label_affirmative=compile_(data["boundaries"]["label_affirmative"]),
        window_before=int(limits["window_before"]),
        context_before=int(limits["context_before"]),
        window_after=int(limits["window_after"]),
        label_max_words=int(limits["label_max_words"]),
        region_before=int(limits["region_before"]),
        region_after=int(limits["region_after"]),
        later_answer=compile_(data["questions"]["later_answer"]),
        later_answer_sentences=int(limits["later_answer_sentences"]),
        fuzzy=fuzzy,
        staff_after=tuple(re.compile(expand(pattern)) for pattern in data["staff"]["after"]),
        staff_before=compile_(data["staff"]["before"]),
        outsider_stems=re.compile(_trie_pattern(data["outsiders"]["stems"])),
        outsider_after=tuple(re.compile(expand(pattern)) for pattern in data["outsiders"]["after"]),
        outsider_lead=re.compile(expand(data["outsiders"]["after_lead"])),
        outsider_before=compile_(data["outsiders"]["before"]),
        outsider_suffix=re.compile(data["outsiders"]["suffix"]),
        outsider_first_word=re.compile(expand(data["outsiders"]["first_word"]) + "$"),
        header_length=int(data["outsiders"]["header_length"]),
        staff_between=expand(data["staff"]["between"]),
        staff_clause=re.compile(
            rf"(?:^[^a-z]*|\band\s+|\bthen\s+){expand('{staffname}')}\s+(?:{expand(data['staff']['between'])}\s+){{0,2}}$"
        ),
        min_name_length=int(data["staff"]["min_name_length"]),
        domain=compile_(data["domain"]["cues"]),
        handover_family=compile_(data["handover"]["family"]),
        handover=compile_(data["handover"]["cues"]),
        domain_family=compile_(data["domain"]["family"]),
        names_us=compile_(data["domain"]["names_us"]),
        summary_line=compile_(data["summary_line"]["pattern"]),
        our_speaker=compile_(data["summary_line"]["our_speaker"]),
        our_speaker_name=compile_(data["summary_line"]["our_speaker_name"]),
        our_named_line=expand(data["summary_line"]["our_named_line"]),
        our_tag_other=compile_(data["summary_line"]["our_tag_other"]),
        customer_line_object=compile_(data["summary_line"]["customer_line_object"]),
        customer_line_other=compile_(data["summary_line"]["customer_line_other"]),
        names_us_ours=compile_(data["domain"]["names_us_ours"]),
        label_line=compile_(data["boundaries"]["label_line"]),
        speaker=compile_(data["summary_line"]["speaker"]),
        inbound_field=compile_(data["summary_line"]["inbound_field"]),
        field_value_ours=compile_(data["summary_line"]["field_value_ours"]),
        retraction=compile_(data["summary_line"]["retraction"]),
        email_header=re.compile(expand(data["summary_line"]["email_header"]), re.M),
        email_logger=compile_(data["summary_line"]["email_logger"]),
        email_direction=compile_(data["summary_line"]["email_direction"]),
        email_salutation=compile_(data["summary_line"]["email_salutation"]),
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
    """An affirmative answer (or label value) without a hedge, and without a negation before it
    or in its own clause ("yes, no problem, just don't send me more than one a month" is a yes)."""
    found = None
    for pattern in (vocab.affirmative, vocab.label_affirmative) if label else (vocab.affirmative,):
        for m in pattern.finditer(answer):
            # "... at the next QBR once the assessment is scheduled": the state belongs to the condition
            if vocab.state_word.fullmatch(m.group()) and vocab.condition.search(_after_last(vocab.clause, answer[: m.start()])):
                continue
            found = m
            break
        if found:
            break
    if not found:
        return False
    scope = answer[: found.end()] + _before_first(vocab.clause, answer[found.end() :])
    return not (_has_cue(vocab.negation_before, scope, vocab) or vocab.hedge.search(answer))


def _next_sentence_answers(sentence: str, vocab: ReferralVocabulary) -> bool:
    """The following sentence opens with a yes ("Yes, once legal signs off.")."""
    return bool(vocab.answer_start.search(sentence)) and _answer_is_yes(sentence[: vocab.window_after], vocab)


def _sentence_before(text: str, position: int, sentence: re.Pattern[str]) -> tuple[int, int, int]:
    """(start of the sentence before, its end, start of the sentence) for the sentence holding
    `position`; the sentence before is (-1, -1) when there is none. Only the text just before
    `position` is scanned (wider when a sentence is longer), not the whole note."""
    reach = 200
    while True:
        low = max(0, position - reach)
        bounds = [(m.start(), m.end()) for m in sentence.finditer(text, low, position)]
        if len(bounds) >= 2 or low == 0:
            break
        reach *= 4
    s_start = bounds[-1][1] if bounds else 0
    if not bounds or (bounds[-1][0] == 0 and len(bounds) == 1):
        return -1, -1, s_start
    p_end = bounds[-1][0]
    p_start = bounds[-2][1] if len(bounds) >= 2 else 0
    return (p_start, p_end, s_start) if p_end > p_start else (-1, -1, s_start)


def _sentence_end(text: str, position: int, sentence: re.Pattern[str]) -> tuple[int, int]:
    """(end of the sentence holding `position`, start of the next one)."""
    m = sentence.search(text, position)
    return (m.start(), m.end()) if m else (len(text), len(text))


def _following(text: str, position: int, sentence: re.Pattern[str]) -> Iterator[tuple[int, int]]:
    """(start, end) of the non-empty sentences starting at or after `position` (a sentence start)."""
    while position < len(text):
        end, after = _sentence_end(text, position, sentence)
        if end > position:
            yield position, end
        if after <= position:
            break
        position = after


_FIRST_PERSON = re.compile(r"(?:i|we)\b")
_QUOTES = '"“”'


_SINGLE_OPEN = re.compile(r"(?<![\w'‘’])['‘](?=\w)")
_SINGLE_CLOSE = re.compile(r"(?<=[\w.,!?])['’](?![\w'’])")


def _quoted_first_person(
    notes: str, s_start: int, w_start: int, match: re.Match[str], vocab: ReferralVocabulary
) -> bool:
    """`match` (in the window starting at w_start) starts with "i" / "we" inside a quotation or
    after a customer's speaker tag: the customer speaking ("10:19 RM: \"I can introduce you to
    Gabriel\"", "Helena: 'If you ship it, I'll introduce you'", "Luis (cust): I'll introduce you
    to their group CIO"), not our side."""
    if not _FIRST_PERSON.match(match.group()):
        return False
    position = w_start + match.start()
    if sum(notes.count(quote, s_start, position) for quote in _QUOTES) % 2 == 1:
        return True
    opened = None
    for opened in _SINGLE_OPEN.finditer(notes, s_start, position):
        pass
    if opened is not None and not _SINGLE_CLOSE.search(notes, opened.end(), position):
        return True
    line_start = notes.rfind("\n", 0, position) + 1
    if vocab.speaker.match(notes, line_start, position) is not None:
        return True
    return _email_author(notes, line_start, vocab) == CUSTOMER


_EMAIL_HINT = re.compile(r"e-?mail|thread|wrote:|^[>\s]*from:", re.M)


CUSTOMER, OURS = 1, -1


def _email_author(notes: str, line_start: int, vocab: ReferralVocabulary) -> int:
    """Who wrote the e-mail pasted into the note that holds the line at `line_start`: CUSTOMER,
    OURS or 0 (not an e-mail, or not known). The nearest header or direction line above it
    decides: a header names the author ("From: Thomas Keller", "> On 30 Apr, Sam O'Connell
    wrote:"), ours when it is the note's logger or our staff named in the note; a direction line
    ("Email (outbound) to Mia", "Email (inbound) from Jonas") says whose it is. Without either, a
    body that opens by addressing our side ("Jake - I've looped in Sara ...") was written to us."""
    if not _EMAIL_HINT.search(notes):
        return 0
    header = direction = None
    for header in vocab.email_header.finditer(notes, 0, line_start):
        pass
    for direction in vocab.email_direction.finditer(notes, header.end() if header else 0, line_start):
        pass
    if direction is not None:
        return OURS if direction.group("ours") else CUSTOMER
    ours = {m.group("name") for m in vocab.email_logger.finditer(notes)}
    ours |= _staff_first_names(notes, vocab)
    if header is not None:
        author = header.group("from") or header.group("wrote")
        return OURS if author in ours or author in ("me", "i", "we", "us") else CUSTOMER
    greeting = vocab.email_salutation.match(notes, line_start)
    return CUSTOMER if greeting is not None and greeting.group("name") in ours else 0


# Verdicts of `_judge`.
NO, YES, YES_WITH_NEXT, UNANSWERED = 0, 1, 2, 3
# Kinds of trigger match: a trigger word, an introduction by its shape, someone evaluating us.
TRIGGER, SHAPE, AVAILABILITY = 0, 1, 2


def _judge(
    notes: str,
    start: int,
    end: int,
    s_start: int,
    s_end: int,
    next_sentence: str,
    vocab: ReferralVocabulary,
    kind: int = 0,
    p_start: int = -1,
    outside_known: bool = False,
) -> int:
    """Judge one trigger at notes[start:end] (lower-cased text) within sentence [s_start, s_end).

    Returns NO, YES, YES_WITH_NEXT (the answer is the next sentence) or UNANSWERED (a question
    whose answer, if any, comes later).
    """
    w_start = max(s_start, start - vocab.window_before)
    w_end = min(s_end, end + vocab.window_after)
    window = notes[w_start:w_end]
    t_start, t_end = start - w_start, end - w_start
    # Blockers may overlap one another ("we sent them our Halden case study": our side sending,
    # and a case study we sent), so the search resumes inside a match that missed the trigger.
    position = 0
    while True:
        m = vocab.blocker.search(window, position)
        if m is None or m.start() >= t_end:
            break
        if m.end() > t_start and not _quoted_first_person(notes, s_start, w_start, m, vocab):
            return NO
        position = m.start() + 1
    # A context that changes what every trigger around it means: an inbound-referral story
    # ("came to us via a referral from ..., who recommended us"), a product feature; it reaches
    # further back in the sentence than the window.
    c_start = max(s_start, start - vocab.context_before)
    for m in vocab.context.finditer(notes, c_start, w_end):
        if not _quoted_first_person(notes, s_start, 0, m, vocab):
            return NO
    if vocab.product_context.search(window) and not vocab.directed.match(notes, end, w_end):
        return NO
    # An introduction by its shape needs someone outside the customer in its sentence (or the
    # one before: "her old boss is now COO at Halcyon. She'll set up a dinner with him and our AE").
    if (
        kind == SHAPE
        and not outside_known
        and not vocab.outside_party.search(notes, s_start if p_start < 0 else p_start, s_end)
    ):
        return NO
    # Meeting someone new in a role: "Cormac introduced Ada, she joined last month".
    if (
        kind == TRIGGER
        and vocab.handover_family.match(notes, start)
        and vocab.handover.search(notes, s_start, s_end)
        and not vocab.outside_party.search(notes, s_start, s_end)
    ):
        return NO
    # Someone evaluating us counts only with a way to reach the customer in its sentence
    # ("any hotelier weighing us up can give her a bell").
    if kind == AVAILABILITY and not vocab.availability_act.search(notes, s_start, s_end):
        return NO
    before, after = window[:t_start], window[t_end:]

    # Label: "Referral: yes", "Case study - done", "Reference call? no".
    head = notes[max(s_start, start - 40) : start]
    if (
        start - s_start < 40
        and len(_WORD.findall(head)) <= vocab.label_max_words
        and not vocab.label_count.search(head)  # "two referrals this quarter from Kwabena: ..."
    ):
        noun = vocab.label_noun.match(notes, start)
        if noun:
            rest = notes[noun.end() : min(s_end, noun.end() + vocab.window_after)]
            separator = vocab.label_separator.match(rest)
            if separator or not _WORD.search(head) and len(_WORD.findall(rest)) <= 1:
                if rest[separator.end() if separator else 0 :].strip():
                    return YES if _answer_is_yes(rest, vocab, label=True) else NO
                if _next_sentence_answers(next_sentence, vocab):
                    return YES_WITH_NEXT
                heading = not separator and head.lstrip().startswith("#")  # "## Advocacy" on its own line
                if (heading or separator and separator.group().endswith(":")) and notes.startswith("\n", s_end):
                    # A field whose value is the next line ("## Advocacy:\nMaya will co-present with
                    # our PM at the summit"): a free-text value counts like an inline one, unless
                    # it is our side's plan or a question still to ask.
                    if _answer_is_yes(next_sentence, vocab, label=True) and not vocab.field_value_ours.match(
                        next_sentence
                    ):
                        return YES_WITH_NEXT
                return UNANSWERED

    segment_before = _after_last(vocab.segment, before)
    clause_before = _after_last(vocab.clause, before)
    clause_after = _before_first(vocab.clause, after)
    sentence_rest = notes[end:w_end]
    # (a "?" in an aside left open is not the sentence's: "putting us in touch w/ Marren (their 3PL's sister co?")
    is_question = notes[max(s_start, s_end - 20) : s_end].rstrip().endswith("?") and notes.count(
        "(", end, s_end
    ) <= notes.count(")", end, s_end)

    # Question: asked about, or the sentence is a question; needs an answer.
    opener = vocab.question_opener.search(segment_before)
    if opener and not is_question and (
        vocab.statement.search(segment_before, opener.end())
        or vocab.completed_after.match(sentence_rest)
        or vocab.conditional_asker.search(segment_before, 0, opener.start())
    ):
        # Reported, not asked: "brought up on her own that she wants to do a customer story",
        # "follow up on the referral Marguerite already made"; or someone else asking is the
        # condition of an offer: "if anyone in the forum asks what we use, I'm pointing them at you".
        opener = None
    if opener or is_question:
        answer = sentence_rest
        if opener and not vocab.question_opener.search(clause_before):
            answer = clause_before + answer
        if _answer_is_yes(answer, vocab):
            return YES
        return YES_WITH_NEXT if _next_sentence_answers(next_sentence, vocab) else UNANSWERED

    trigger = window[t_start:t_end]
    if _has_cue(vocab.negation_before, clause_before, vocab, trigger + clause_after):
        return NO
    if _has_cue(vocab.negation_after, clause_after, vocab):
        return NO
    if vocab.negation_carry.search(clause_before) and _has_cue(vocab.negation_before, segment_before, vocab):
        return NO
    if vocab.hedge.search(segment_before) or vocab.hedge.search(clause_after):
        return NO
    # A bare noun ("the referral program", "a case study") needs a commitment
    # or a completed act in its segment ("agreed to a case study", "intro made").
    noun = vocab.noun.match(notes, start, w_end)
    if noun and noun.end() == end:
        segment = segment_before + trigger + _before_first(vocab.segment, after)
        if not vocab.commitment.search(segment):
            return NO
    return YES


def _lower(notes: str) -> str:
    """Lower-case `notes` keeping every offset ("İ" is the one character whose
    lower case is longer)."""
    lower = notes.lower()
    return lower if len(lower) == len(notes) else notes.replace("\u0130", "i").lower()


def _kind(match: re.Match[str]) -> int:
    return SHAPE if match.start("shape") >= 0 else AVAILABILITY if match.start("avail") >= 0 else TRIGGER


def _triggers(lower: str, vocab: ReferralVocabulary, position: int = 0) -> Iterator[tuple[int, int, int]]:
    """(start, end, kind) of the trigger, shape and evaluator matches, searched only in regions
    around prefilter hits from `position` on, in order."""
    region_start = region_end = -1
    for hit in vocab.prefilter.finditer(lower, position):
        start, end = max(0, hit.start() - vocab.region_before), hit.end() + vocab.region_after
        if start > region_end:
            if region_end > 0:
                for m in vocab.trigger.finditer(lower, region_start, region_end):
                    yield m.start(), m.end(), _kind(m)
            region_start = start
        region_end = max(region_end, end)
    if region_end > 0:
        for m in vocab.trigger.finditer(lower, region_start, region_end):
            yield m.start(), m.end(), _kind(m)


def _later_answer(text: str, position: int, vocab: ReferralVocabulary, sentences: re.Pattern[str]) -> int:
    """End of a later sentence, among those from `position` on (the one after the next), that
    answers a question with an explicit marker ("A: yes ...", "came back to it: sí, he'll do it"),
    or -1."""
    for count, (start, end) in enumerate(_following(text, position, sentences)):
        if count >= vocab.later_answer_sentences:
            break
        sentence = text[start:end]
        marker = vocab.later_answer.search(sentence)
        if marker:
            # The answer may be the sentence after a marker that ends its own ("Your question
            # earlier. Yes, I'll introduce you to Tom."), within the line.
            after = start + marker.end()
            line_end = text.find("\n", after)
            answer = text[after : min(after + vocab.window_after, line_end if line_end >= 0 else len(text))]
            if _answer_is_yes(answer, vocab):
                return end if after < end - 1 else _sentence_end(text, end + 1, sentences)[0]
    return -1


_WORDS_BEFORE = re.compile(r"([A-Za-z][\w&'’-]*)(?:\s+([A-Za-z][\w&'’-]*))?\s*$")


def _names(text: str, after: Iterable[re.Pattern[str]], before: re.Pattern[str]) -> Iterator[list[str]]:
    """The names (each a list of one or two words) that `after` patterns capture and that precede a
    `before` match."""
    for pattern in after:
        for m in pattern.finditer(text):
            yield m.group("name").split()
    for m in before.finditer(text):
        words = _WORDS_BEFORE.search(text, max(0, m.start() - 40), m.start())
        if words:
            yield [word for word in words.groups() if word]
            if words.group(2):
                yield [words.group(2)]  # "a lab in Lyon (not a customer)": "Lyon"


def _staff_first_names(text: str, vocab: ReferralVocabulary) -> set[str]:
    """The first names of our staff that `text` names ("Fatima (our SE)", "our AE Jake")."""
    return {words[0] for words in _names(text, vocab.staff_after, vocab.staff_before)}


def _staff_subject(text: str, vocab: ReferralVocabulary) -> re.Pattern[str] | None:
    """A pattern matching the part of a clause before a trigger when it is one of our staff named
    in `text` ("Fatima recommended ...": the clause before the trigger is "fatima "), or None."""
    names = {
        name
        for name in _staff_first_names(text, vocab)
        if len(name) >= vocab.min_name_length and vocab.outsider_first_word.match(name)
    }
    if not names:
        return None
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    return re.compile(
        rf"(?:^[^a-z]*|\band\s+|\bthen\s+)(?:{alternatives})\s+(?:{vocab.staff_between}\s+){{0,2}}$"
    )


def _names_after_lead(notes: str, lower: str, vocab: ReferralVocabulary) -> Iterator[list[str]]:
    """`_names(notes, vocab.outsider_after, ...)` for the `after` patterns, found faster: each
    pattern is tried only where its case-insensitive start (`outsider_lead`) matches the
    lower-cased note, which a case-sensitive search finds quicker; same matches, same order."""
    starts = []
    m = vocab.outsider_lead.search(lower)
    while m is not None:
        starts.append(m.start())
        m = vocab.outsider_lead.search(lower, m.start() + 1)
    if not starts:
        return
    for pattern in vocab.outsider_after:
        last_end = 0
        for start in starts:
            if start < last_end:
                continue  # inside the previous match, as finditer would skip it
            full = pattern.match(notes, start)
            if full is not None:
                yield full.group("name").split()
                last_end = full.end()


def _outsider_before(notes: str, lower: str, vocab: ReferralVocabulary) -> re.Pattern[str] | None:
    """A pattern finding, in the part of a sentence before a trigger, an organisation or person the
    note names as someone other than the customer ("their consultant Meridian RCM"), or None."""
    header = lower[: vocab.header_length]
    names = set()
    found = _names(notes, (), vocab.outsider_before)
    if vocab.outsider_stems.search(lower):
        found = itertools.chain(_names_after_lead(notes, lower, vocab), found)
    for words in found:
        words = [word.lower() for word in words]
        if len(words[0]) < vocab.min_name_length or not vocab.outsider_first_word.match(words[0]):
            continue
        names.add(" ".join(words))
        if len(words) > 1 and words[0] not in header:
            names.add(words[0])
    first_line = None
    for m in vocab.outsider_suffix.finditer(notes):
        if m.start() < 2 or not notes[m.start() - 1].isspace() or not notes[m.start() - 2].isalpha():
            continue
        if first_line is None:
            first_line = notes.partition("\n")[0]
        words = _WORDS_BEFORE.search(notes, max(0, m.start() - 40), m.start())
        if words and notes[words.start() : m.end()].strip() not in first_line:  # not the customer's name
            name = words.group(2) or words.group(1)
            if len(name) >= vocab.min_name_length and vocab.outsider_first_word.match(name.lower()):
                names.add(name.lower())
    if not names:
        return None
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"\b(?:{alternatives})\b(?!.*(?:;|\bbut\b|\b(?:and|so)\s+(?:she|he)\s+(?!also\b)))")


_NO_STAFF = re.compile(r"(?!)")


def _our_speaker_names(text: str, vocab: ReferralVocabulary) -> re.Pattern[str] | None:
    """A pattern matching, at the start of a line, a speaker tag naming one of our speakers: the
    names our role tags carry ("CSM (Dana):") and our staff named in the note."""
    names = {m.group("name") for m in vocab.our_speaker_name.finditer(text)}
    names.update(name for name in _staff_first_names(text, vocab) if len(name) >= vocab.min_name_length)
    if not names:
        return None
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    return re.compile(vocab.our_named_line.replace("{names}", alternatives))


def _evidence(notes: str, lower: str, vocab: ReferralVocabulary, first_hit: int = 0) -> str | Rejection | None:
    """Judge triggers on the lower-cased, typo-corrected text; slice the evidence from `notes`.
    NOT_THEIRS or REJECTED when triggers were judged and none survived, None when the note has none.

    No prefilter stem occurs before `first_hit` (the screen's first match) other than a word
    the correction changed."""
    text, corrections = vocab.fuzzy.correct(lower)
    if corrections:
        first_hit = min(first_hit, corrections[0][0])
    staff: re.Pattern[str] | None = None
    outsiders: re.Pattern[str] | None = None
    domain: bool | None = None
    our_names: re.Pattern[str] | None = None
    sentence: tuple[int, int, int, int, int, int, int] = (-1, -1, -1, -1, -1, -1, 0)
    boundary: re.Pattern[str] | None = None  # the sentence boundaries
    judged = False  # a trigger reached the rules (and, so far, every one was rejected)
    attributed = False  # one was rejected as not the customer's statement (ours, a third party's)
    for start, end, kind in _triggers(text, vocab, max(0, first_hit - vocab.region_before)):
        judged = True
        if not sentence[2] <= start < sentence[3]:
            # The sentence holding the trigger, the one before it and the one after it.
            if boundary is None:
                unspaced = any(stop in text for stop in vocab.unspaced_stops)
                boundary = vocab.sentence_unspaced if unspaced else vocab.sentence
            p_start, p_end, s_start = _sentence_before(text, start, boundary)
            s_end, n_start = _sentence_end(text, start, boundary)
            n_end = n_start
            for n_start, n_end in _following(text, n_start, boundary):
                break
            sentence = (p_start, p_end, s_start, s_end, n_start, n_end, text.rfind("\n", 0, s_start) + 1)
        p_start, p_end, s_start, s_end, n_start, n_end, line_start = sentence
        if start >= s_end:
            continue
        next_sentence = text[n_start : min(n_end, n_start + vocab.window_after)]
        if kind != SHAPE or p_start < 0 or "\n" in text[p_end:s_start]:
            p_start = -1  # the sentence before counts only in the same paragraph
        outside_known = False
        if kind == SHAPE:  # an outside party named with capitals in the original sentence
            o_start, o_end = (p_start if p_start >= 0 else s_start), s_end
            if corrections:
                o_start, o_end = _original_offset(o_start, corrections), _original_offset(o_end, corrections)
            outside_known = vocab.outside_cased.search(notes, o_start, o_end) is not None
        verdict = _judge(text, start, end, s_start, s_end, next_sentence, vocab, kind, p_start, outside_known)
        if verdict != NO and kind == TRIGGER and vocab.domain_family.match(text, start):
            # A note about the customer's own referral / recommendation workflow: the word must
            # name us ("referred two clinics to us").
            if domain is None:
                domain = vocab.domain.search(text) is not None
            # (a label line, "Referral: yes", is about us)
            if domain and not (vocab.label_line.match(text, s_start, start) and vocab.label_separator.match(text, end)):
                clause = _after_last(vocab.clause, text[max(s_start, start - 60) : start])
                clause += _before_first(vocab.clause, text[start : min(s_end, end + 60)])
                # On our side's transcript line "you" is the customer ("CSM: So you want referrals routed ...?")
                names_us = vocab.names_us_ours if vocab.our_speaker.match(text, line_start) else vocab.names_us
                if not names_us.search(clause):
                    continue
        if verdict != NO:
            attributed = True  # from here on a rejection is about whose statement it is
            if vocab.summary_line.match(text, line_start):
                continue  # a machine-written summary line ("AI SUMMARY: customer agreed to ..."), not a statement
            if verdict == YES and vocab.our_speaker.match(text, line_start):
                continue  # our side speaking in a transcript ("CSM: I'll introduce you to Corvane")
            if verdict == YES and text.find(":", line_start, start) >= 0:
                # A line tagged with the name of one of our speakers ("CSM (Dana): ..." then
                # "EDIT (Dana): intro to Corvane sent", "Dana: I'll send the intro")
                if our_names is None:
                    our_names = _our_speaker_names(text, vocab) or _NO_STAFF
                tag = our_names.match(text, line_start, start)
                if tag and not vocab.our_tag_other.match(text, tag.end(), start):
                    continue  # ours unless the entry reports someone else ("Lena: Henrik is arranging a dinner")
            if verdict == YES and _email_author(text, line_start, vocab) == OURS:
                continue  # an e-mail our side wrote ("Email (outbound) to Mia: happy to introduce you to ...")
            if kind == TRIGGER and vocab.speaker.match(text, line_start, start):
                # On the customer's own transcript line, "us" is the customer and "their" someone
                # else: "Dr. Patel (cust): Siobhan Keane referred us" (how they came to us),
                # "Callum (cust): Our parent liked the demo. Their CTO wants to recommend you".
                if vocab.customer_line_object.match(text, start):
                    continue
                clause_start = max(s_start, start - vocab.window_before)
                if vocab.customer_line_other.match(_after_last(vocab.clause, text[clause_start:start])):
                    continue
            if vocab.inbound_field.match(text, line_start, start):
                continue  # the value of a field saying how they came to us ("Lead source | Referral from Osprey")
            if vocab.retraction.search(text, end, min(s_end, end + vocab.window_after)) or vocab.retraction.search(
                next_sentence, 0, 40
            ):
                continue  # taken back: "he said he'd be a reference, no hang on, I'm mixing him up"
        if verdict != NO:
            # Our own staff as the subject: "Fatima (our SE) recommended the arrears model".
            clause_before = _after_last(vocab.clause, text[max(s_start, start - vocab.window_before) : start])
            if vocab.staff_clause.search(clause_before):  # a name could be the subject
                if staff is None:
                    staff = _staff_subject(text, vocab) or _NO_STAFF
                if staff.search(clause_before):
                    continue
            # Someone the note names as another party before it: "Parkline is planning to recommend us".
            if outsiders is None:
                outsiders = _outsider_before(notes, lower, vocab) or _NO_STAFF
            if outsiders is not _NO_STAFF and outsiders.search(text, max(s_start, start - vocab.window_before), start):
                continue
        last = s_end
        if verdict == YES_WITH_NEXT:
            last = n_end
        elif verdict == UNANSWERED:
            last = _later_answer(text, n_end, vocab, boundary)
            if last < 0:
                continue
        elif verdict == NO:
            continue
        if corrections:
            s_start, last = _original_offset(s_start, corrections), _original_offset(last, corrections)
        return notes[s_start:last].strip()
    return NOT_THEIRS if attributed else REJECTED if judged else None


def find_referral_evidence(
    notes: str | None, vocabulary: ReferralVocabulary | None = None, model: SignalModel | None = None
) -> str | None:
    """Return the first sentence of `notes` showing referral intent, or None (`model`: as in
    `detect_referral_evidence`)."""
    return detect_referral_evidence([notes], vocabulary, model)[0]


def screen_pattern(vocabulary: ReferralVocabulary | None = None) -> str:
    """The first screen as a regular expression over lower-cased notes: a note it does not match
    has no evidence. It is an alternation of literal stems only, so RE2 (DuckDB) matches it exactly
    as Python does."""
    return (vocabulary or _default()).screen.pattern


# The rules' verdicts on a note without evidence, besides None (no trigger at all): every trigger
# rejected by its sense (a negation, a hedge, a blocker, ...), which the model may overrule; or one
# rejected as not the customer's statement (our side's, a third party's, taken back), which it may
# not: who speaks is beyond word n-grams.
class Rejection(enum.Enum):
    BY_SENSE = "rejected by its sense"
    NOT_THEIRS = "not the customer's statement"

    def __bool__(self) -> bool:
        return False  # no evidence


REJECTED, NOT_THEIRS = Rejection.BY_SENSE, Rejection.NOT_THEIRS


def _judged(
    notes: Iterable[str | None], vocab: ReferralVocabulary
) -> Iterator[tuple[str, str, bool, str | Rejection | None]]:
    """Each note, lower-cased, whether it passed the screen, and the rules' verdict on it."""
    screen = vocab.screen.search
    for note in notes:
        if not note:
            yield "", "", False, None
            continue
        lower = note.lower()  # _lower, inlined: this loop runs for every note
        if len(lower) != len(note):
            lower = note.replace("\u0130", "i").lower()
        hit = screen(lower)
        yield note, lower, hit is not None, _evidence(note, lower, vocab, hit.start()) if hit else None


def rule_verdicts(
    notes: Iterable[str | None], vocabulary: ReferralVocabulary | None = None
) -> list[str | Rejection | None]:
    """The rules' verdict on each note: its evidence, REJECTED, NOT_THEIRS or None (no trigger)."""
    return [verdict for _, _, _, verdict in _judged(notes, vocabulary or _default())]


def _best_sentence(notes: str, lower: str, vocab: ReferralVocabulary, model: SignalModel) -> str:
    """The sentence of `notes` (split as the rules split them) the model scores highest: the
    evidence of a signal the model adds."""
    unspaced = any(stop in lower for stop in vocab.unspaced_stops)
    bounds = _following(lower, 0, vocab.sentence_unspaced if unspaced else vocab.sentence)
    sentences = [notes[start:end].strip() for start, end in bounds] or [notes.strip()]
    return max(sentences, key=lambda sentence: model.probability(sentence.lower()))


# The model (trained on notes of up to about 2,000 characters) judges the rules' evidence with this
# many characters on each side of it, and a note without a trigger by its first MODEL_MAX_CHARS.
MODEL_CONTEXT = 1_000
MODEL_MAX_CHARS = 20_000


def detect_referral_evidence(
    notes: Iterable[str | None], vocabulary: ReferralVocabulary | None = None, model: SignalModel | None = None
) -> list[str | None]:
    """Batch version of `find_referral_evidence`, one result per note: the rules' evidence. With a
    `model` (`signal_model.default_model()`, opt-in: see `signal_model`), the rules' evidence unless
    the model vetoes it; else the sentence the model scores highest where the
    note's probability reaches the promotion threshold (a note with no trigger) or the higher
    overruling one (a note whose triggers the rules all rejected by their sense; never one they
    found was not the customer's statement). On a note shorter than the
    model's `min_words` the rules decide alone; a note the screen drops is never a signal."""
    if model is None:
        return [verdict or None for verdict in rule_verdicts(notes, vocabulary)]
    vocab = vocabulary or _default()
    veto_below, promote_above, overrule_above = model.veto_below, model.promote_above, model.overrule_above
    results: list[str | None] = []
    for note, lower, screened, evidence in _judged(notes, vocab):
        if not screened:
            results.append(None)
            continue
        if not model.heard(note):
            results.append(evidence or None)
        elif evidence:
            # The model reads the evidence with a training note's worth of text around it.
            at = note.find(evidence)
            window = lower[max(0, at - MODEL_CONTEXT) : at + len(evidence) + MODEL_CONTEXT]
            results.append(evidence if model.probability(window) >= veto_below else None)
        elif evidence is not NOT_THEIRS and model.probability(lower[:MODEL_MAX_CHARS]) >= (
            promote_above if evidence is None else overrule_above
        ):
            results.append(_best_sentence(note[:MODEL_MAX_CHARS], lower[:MODEL_MAX_CHARS], vocab, model))
        else:
            results.append(None)
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
