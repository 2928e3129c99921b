"""Analysts' keyword rules: phrases that flag a topic on their own, and phrases that mute.

The ``[keywords]`` section of the config has one list per topic (``critical-minerals``,
``export-controls``) and a ``mute`` list. Each entry is one of

- a phrase, matched case-insensitively. Where a phrase starts or ends with a letter of a
  script written with spaces (Latin, Cyrillic, Greek, ...), that end must sit on a word
  boundary: ``"tin"`` does not match "tinned"; a character of a script without spaces
  beside it is a boundary (``"AI芯片"`` matches "限制AI芯片出口"). Letters of scripts written without spaces
  between words (Chinese, Japanese, Thai, ...) and Korean Hangul (whose particles attach
  to the word) match anywhere, as a substring. A space or hyphen inside a phrase matches any
  run of spaces and hyphens, so ``"rare earth"`` also finds "rare-earth".
- a phrase with ``*`` at the end of one or more of its words: that word may go on
  (``"Ausfuhrkontroll*"`` finds "Ausfuhrkontrollen", ``"seltene* Erden"`` finds
  "seltenen Erden").
- ``re:`` (in lower case) followed by a Python regular expression, searched
  case-insensitively as written.
  One that repeats a part that repeats itself, with nothing to tell the rounds apart
  (``(\\w+\\s?)+``), is refused: it would backtrack for hours on a line it does not match.

Where: the title and the lede, i.e. the first ``LEDE_CHARS`` (400) characters of the text.
What an article is about is said at its top; a phrase that first turns up deep in a long
text is, by LABELING.md's rule, a passing mention in an article about something else, which
the classifier judges on the whole text. Mute phrases are matched in the same place.

Rules are compiled once (``KeywordRules.compile``); an invalid entry raises ``ConfigError``
whose message starts with the key path (``keywords.export-controls[3]: ...``, entries
counted from 0). This module imports no third-party library.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
import string
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor import TOPICS
from monitor.exceptions import ConfigError

MUTE = "mute"
KEYS = (*TOPICS, MUTE)
LEDE_CHARS = 400
_SEPARATOR = r"[\s\-\u00ad\u2010-\u2015]+"
_RAW_FLAGS = re.IGNORECASE


@dataclass(frozen=True)
class KeywordMatch:
    """The phrases (as written in the config) that matched one article."""

    hits: dict[str, tuple[str, ...]] = field(default_factory=dict)
    muted: tuple[str, ...] = ()

    @property
    def topics(self) -> tuple[str, ...]:
        """Topics with at least one hit, in the order of ``monitor.TOPICS``."""
        return tuple(t for t in TOPICS if self.hits.get(t))


@dataclass(frozen=True)
class KeywordRules:
    """Compiled keyword rules; build with ``compile`` or ``empty``.

    Phrases of all lists share one ``PhraseIndex``; ``re:`` entries are searched one by
    one, case-insensitively, in the article as it is.
    """

    entries: dict[str, tuple[str, ...]]
    index: PhraseIndex
    owners: tuple[tuple[str, int], ...]                      # phrase number -> (list, position)
    raw: dict[str, tuple[tuple[int, re.Pattern[str]], ...]]  # per list: (position, regex)

    @classmethod
    def compile(cls, spec: Mapping[str, Sequence[str]]) -> KeywordRules:
        if not isinstance(spec, Mapping):
            raise ConfigError(f"keywords: expected a table, got {_type_name(spec)}")
        for key in spec:
            if key not in KEYS:
                raise ConfigError(
                    f"keywords.{key}: unknown key (expected one of {', '.join(KEYS)})")
        entries = {key: _entries(key, spec.get(key, ())) for key in KEYS}
        owners = tuple((key, i) for key in KEYS for i, e in enumerate(entries[key])
                       if not e.startswith("re:"))
        phrases = [(f"keywords.{key}[{i}]", entries[key][i]) for key, i in owners]
        raw = {key: tuple((i, _raw_regex(f"keywords.{key}[{i}]", e[3:]))
                          for i, e in enumerate(entries[key]) if e.startswith("re:"))
               for key in KEYS}
        return cls(entries, PhraseIndex.build(phrases, fold=True), owners, raw)

    @classmethod
    def empty(cls) -> KeywordRules:
        return cls.compile({})

    def match(self, title: str, text: str) -> KeywordMatch:
        """The phrases found in the title and the lede (first LEDE_CHARS of the text)."""
        doc = f"{title or ''}\n{(text or '')[:LEDE_CHARS]}"
        positions: dict[str, list[int]] = {key: [] for key in KEYS}
        for number in self.index.find(normalise(doc, fold=True)):
            key, position = self.owners[number]
            positions[key].append(position)
        for key, regexes in self.raw.items():
            positions[key] += [i for i, pattern in regexes if pattern.search(doc)]
        hits = {t: self._phrases(t, positions[t]) for t in TOPICS if positions[t]}
        return KeywordMatch(hits=hits, muted=self._phrases(MUTE, positions[MUTE]))

    def _phrases(self, key: str, positions: list[int]) -> tuple[str, ...]:
        """Matched entries of one list, in config order, each once."""
        return tuple(dict.fromkeys(self.entries[key][i] for i in sorted(positions)))

    def __len__(self) -> int:
        return sum(map(len, self.entries.values()))

    def fingerprint(self) -> dict[str, int | str]:
        """Which rules these are, in a form a card or a report can hold: the number of
        entries per list and a short hash of them all (the same lists, in the same order,
        give the same hash, whichever file they came from)."""
        blob = json.dumps({key: list(self.entries[key]) for key in KEYS}, ensure_ascii=False)
        return {**{key: len(self.entries[key]) for key in KEYS},
                "sha256": hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]}


def normalise(text: str, fold: bool = False) -> str:
    """What phrases are matched against: NFKC (full-width letters and digits become
    ASCII), lower case, typographic apostrophes as ASCII. ``fold`` folds case fully
    (``str.casefold``: "ß" and "ẞ" read "ss", so "Außenhandel" matches "AUSSENHANDEL" and
    the Swiss "Aussenhandel"): the keyword rules fold; the model's concept tokens keep
    ``lower`` as the model was trained on it."""
    if text.isascii():
        return text.lower()
    text = unicodedata.normalize("NFKC", text).replace("\u2019", "'")
    return text.casefold() if fold else text.lower()


def _entries(key: str, entries: object) -> tuple[str, ...]:
    """The entries of one list after checking their types (phrases and regexes are
    checked when they are compiled), without the blanks around a phrase or before ``re:``
    (a regex is kept as written after it): " re:…" is a regex, as on the keywords page."""
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise ConfigError(
            f"keywords.{key}: expected a list of strings, got {_type_name(entries)}")
    for i, entry in enumerate(entries):
        path = f"keywords.{key}[{i}]"
        if not isinstance(entry, str):
            raise ConfigError(f"{path}: expected a string, got {_type_name(entry)}")
        if not entry.strip():
            raise ConfigError(f"{path}: empty phrase")
        control = _CONTROL.search(entry)
        if control is not None:     # "re:\bgallium\b" in TOML's double quotes: backspaces
            raise ConfigError(
                f"{path}: {entry!r} holds the control character U+{ord(control.group()):04X}, "
                "which the poll drops from every article; in a TOML string in double quotes "
                "\\b is a backspace and \\f a form feed: write a regex in single quotes "
                "('re:\\bgallium\\b') or double its backslashes (\"re:\\\\bgallium\\\\b\")")
        prefix = entry.lstrip()[:3]
        if prefix.lower() == "re:" and prefix != "re:":
            raise ConfigError(f"{path}: {entry!r} starts with {prefix!r}: a regex starts with 're:' "
                              f"in lower case (as a phrase it would look for the text {prefix!r})")
    return tuple(e.lstrip() if e.lstrip().startswith("re:") else e.strip() for e in entries)


# the control characters that the poll drops from titles and texts (``monitor.parse``)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _raw_regex(path: str, source: str) -> re.Pattern[str]:
    if not source.strip():
        raise ConfigError(f"{path}: empty regex after 're:'")
    try:
        compiled = re.compile(source, _RAW_FLAGS)
    except re.error as exc:
        raise ConfigError(f"{path}: regex does not compile: {exc} in {source!r}") from exc
    if compiled.search("") is not None:
        raise ConfigError(f"{path}: regex {source!r} matches the empty string "
                          "(it would match every article)")
    if _nested_repeat(source):     # before the samples below, which it would never finish
        raise ConfigError(f"{path}: regex {source!r} repeats a part that repeats itself, with "
                          "nothing to tell one round from the next: on a line it does not "
                          "match, such a regex tries every way of cutting the line into "
                          "rounds (milliseconds an article for five rounds, hours without a "
                          "limit), and polls slow down or stop; give each "
                          "round a part of its own, as in '(\\w+\\s)+', or make the outer "
                          "repeat possessive with one more '+', as in '(\\w+\\s?)++'")
    for sample in _ORDINARY_TEXT:
        empty = next((m for m in compiled.finditer(sample) if m.end() == m.start()), None)
        if empty is not None:
            raise ConfigError(f"{path}: regex {source!r} matches an empty span (at "
                              f"{empty.start()} of {sample!r}); a rule must match at least one "
                              "character (\\b, (?=…) or x* alone match nearly every article)")
    return compiled


def _nested_repeat(source: str) -> bool:
    """Whether ``source`` repeats a part that holds a repeat of variable length with
    nothing in that part to tell where one round ends: ``(\\w+\\s?)+``, ``(x{1,3})*``,
    ``(.*,)+``. On a line it does not match, ``re`` then tries every way of cutting the
    line into rounds, for hours. A round is told apart by a part that must occur in it and
    shares no character with the rest of it, and either has a fixed length or is followed
    by another such part, when what follows that part in a round shares no character with
    what leads up to it: ``(\\s+\\w+){0,3}``, ``(\\d+%)+``, ``(a*b)*`` are fine,
    ``(\\w+-\\w+)+`` is not. A
    possessive repeat (``++``, ``*+``) is never backtracked into. False too when this
    Python's regex parser (private modules of ``re``) is not the one this reads."""
    import importlib

    try:
        parser = importlib.import_module("re._parser")
        compiler = importlib.import_module("re._compiler")
        tree = parser.parse(source, _RAW_FLAGS)
    except Exception:  # noqa: BLE001 - it compiled; only this check is left out
        return False

    def parts(av: object) -> list:
        """The sub-patterns of an item: a repeat's, a group's, an alternative's."""
        found = []
        for part in av if isinstance(av, (tuple, list)) else (av,):
            if isinstance(part, parser.SubPattern):
                found.append(part)
            elif isinstance(part, list):            # the alternatives of a branch
                found += [p for p in part if isinstance(p, parser.SubPattern)]
        return found

    def written(items) -> set[str]:
        """The characters the regex names (its literals, its classes' letters and the ends
        and middle of their ranges), in both cases: "금속" in ``(\\w+금속\\s?)+`` is a
        letter that ``\\w`` matches too, which the fixed sample does not hold."""
        found: set[str] = set()
        for op, av in items:
            if str(op) in ("LITERAL", "NOT_LITERAL"):
                found.add(chr(av))
            elif str(op) == "IN":
                for kind, value in av:
                    if str(kind) in ("LITERAL", "NOT_LITERAL"):
                        found.add(chr(value))
                    elif str(kind) == "RANGE":
                        found.update(map(chr, (value[0], (value[0] + value[1]) // 2, value[1])))
            else:
                found.update(*(written(part) for part in parts(av)))
        return found | {c.swapcase() for c in found if len(c.swapcase()) == 1}

    sample = frozenset(_SAMPLE_CHARS) | written(tree)
    word = frozenset(c for c in sample if c.isalnum() or c == "_")      # what \w matches

    def chars(item) -> frozenset[str]:
        """The sample characters that an item's matches may hold."""
        op, av = str(item[0]), item[1]
        if op in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
            one = compiler.compile(parser.SubPattern(tree.state, [item]), _RAW_FLAGS)
            return frozenset(c for c in sample if one.fullmatch(c))
        if op == "GROUPREF":
            return sample
        if op in ("ASSERT", "ASSERT_NOT", "AT"):
            return frozenset()
        return frozenset().union(*(chars(i) for part in parts(av) for i in part))

    def variable(items) -> bool:
        """Whether a repeat of variable length is among ``items`` (a possessive one aside)."""
        return any((str(op) in ("MAX_REPEAT", "MIN_REPEAT") and 1 < av[1] != av[0])
                   or (str(op) != "POSSESSIVE_REPEAT" and any(variable(p) for p in parts(av)))
                   for op, av in items)

    def marked(body) -> bool:
        """Whether one round of a repeat ends where a part of it says."""
        items = list(body)
        while len(items) == 1 and str(items[0][0]) == "SUBPATTERN":    # (…) around it all
            items = list(items[0][1][3])
        sets = [chars(i) for i in items]
        for n, (op, av) in enumerate(items):
            if str(op) in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                if av[0] < 1 or len(av[2]) != 1 or str(av[2][0][0]) not in ("LITERAL", "IN", "ANY",
                                                                             "NOT_LITERAL"):
                    continue
                fixed = av[0] == av[1]
            elif str(op) in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
                fixed = True
            elif str(op) in ("SUBPATTERN", "BRANCH") and _mandatory(items[n]):   # (kt|t), (?:%|pc)
                low, high = parser.SubPattern(tree.state, [items[n]]).getwidth()
                fixed = low == high
            else:
                continue
            # a word's letters next to a \b (\b\w+\b) run to the word's end: as a part of
            # fixed length, two rounds' letters never meet
            fixed = fixed or (sets[n] <= word and any(
                0 <= m < len(items) and str(items[m][0]) == "AT" and str(items[m][1]) == "AT_BOUNDARY"
                for m in (n - 1, n + 1)))
            others = [s for m, s in enumerate(sets) if m != n]
            if sets[n] and not any(sets[n] & s for s in others) and (
                    fixed or any(_mandatory(i) for m, i in enumerate(items) if m != n)) \
                    and not edge(reversed(items[n + 1:])) & edge(items[:n]):
                return True
        return False

    def edge(items) -> frozenset[str]:
        """What the parts at one end of a round may hold, up to the first that must match:
        between two rounds' marks the end of one meets the start of the next, and where
        both may hold the same characters (``(\\w+-\\w+)+``: "aa-aaa-aa") the text between
        the marks is cut between the rounds in as many ways, round after round."""
        found: frozenset[str] = frozenset()
        for item in items:
            found |= chars(item)
            if _mandatory(item):
                break
        return found

    def nested(items) -> bool:
        for op, av in items:
            if str(op) in ("MAX_REPEAT", "MIN_REPEAT") and av[1] > 1 and variable(av[2]) \
                    and not marked(av[2]):
                return True
            if any(nested(part) for part in parts(av)):
                return True
        return False

    return nested(tree)


def _mandatory(item) -> bool:
    """Whether a parsed regex item matches at least one character every time."""
    op, av = str(item[0]), item[1]
    if op in ("LITERAL", "NOT_LITERAL", "IN", "ANY"):
        return True
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return av[0] >= 1 and any(map(_mandatory, av[2]))
    if op == "SUBPATTERN":
        return any(map(_mandatory, av[3]))
    if op == "BRANCH":          # (Li|Co|Ni): every alternative
        return all(any(map(_mandatory, alternative)) for alternative in av[1])
    return False


# characters of the kinds a rule's classes tell apart: the characters of ASCII, a few letters
# of other alphabets and scripts, and spaces (with the characters a regex names itself); what
# each part of a regex may match among them
_SAMPLE_CHARS = (string.printable + "\u00a0\u3000éßüłŁЖж中国アあ한٣’–")


# ordinary text a rule's regex must not match with an empty span (``\b``, ``(?=.)``, ``x*``
# match an empty span of nearly every article; a real rule matches words)
_ORDINARY_TEXT = ("a", "Lithium prices", "中国", "1", " ",
                  "China restricts gallium exports\nExporters need export licences, 2025.")


def phrase_regex(path: str, phrase: str, fold: bool = False) -> str:
    """Translate a config phrase (words, ``*`` suffixes) into a regex source that is
    searched in ``normalise``d text (``fold`` as the text was normalised). It starts with a
    literal (so ``re`` can scan for it quickly); the word boundary before it is a
    look-behind placed after that literal."""
    words = normalise(phrase, fold).replace("-", " ").split()
    if not words:
        raise ConfigError(f"{path}: phrase {phrase!r} has no words")
    for word in words:
        _check_word(path, phrase, word)
    first = re.escape(words[0].rstrip("*"))
    head = f"{first}(?<!{_LETTER}{first})" if _spaced_letter(words[0][0]) else first
    rest = [_word_regex(w) for w in words[1:]]
    body = _SEPARATOR.join([head + ("\\w*" if words[0].endswith("*") else ""), *rest])
    last = words[-1]
    tail = f"(?!{_LETTER})" if not last.endswith("*") and _spaced_letter(last[-1]) else ""
    return body + tail


def _check_word(path: str, phrase: str, word: str) -> None:
    stem = word[:-1] if word.endswith("*") else word
    if not stem or "*" in stem:
        raise ConfigError(f"{path}: '*' may only end a word, as in 'Ausfuhrkontroll*' "
                          f"(got {phrase!r})")


def _word_regex(word: str) -> str:
    stem = word[:-1] if word.endswith("*") else word
    return re.escape(stem) + ("\\w*" if word.endswith("*") else "")


class PhraseIndex:
    """Finds which of many phrases occur in a ``normalise``d text, with the same result as
    searching each ``phrase_regex`` but several times faster.

    The text is split into words once; each distinct word is looked up once (then cached)
    against the single-word phrases (exact words and ``stem*``s). Phrases in scripts
    without spaces are substring checks, made only when the text has such characters.
    Multi-word phrases and words with other characters ("u.s.") are searched as regexes,
    only when their first word is in the text. ``*part*`` entries (only when ``build`` is
    given ``infix=True``) find that part anywhere inside a word.
    """

    CACHE_SIZE = 50_000     # words remembered (emptied when full): ~120 B each; a poll
                            # of 6,000 real news items meets ~45,000 distinct words

    def __init__(self) -> None:
        self.exact: dict[str, list[int]] = {}
        self.stems: dict[str, list[int]] = {}
        self.infixes: list[tuple[str, int]] = []
        self.unspaced: list[tuple[str, int]] = []
        self.stem_lengths: tuple[int, ...] = ()
        self._cache: dict[str, tuple[int, ...]] = {}   # words that name phrases
        self._plain: set[str] = set()                  # words seen to name none
        # regexes, by the word (or the part of a word) a text must contain for them to match
        self._by_word: dict[str, list[tuple[_Lazy, int]]] = {}
        self._by_part: dict[str, list[tuple[_Lazy, int]]] = {}
        self._any_infix: re.Pattern[str] | None = None
        self.fold = False       # phrases normalised with ``fold``: texts must be too

    @classmethod
    def build(cls, phrases: Sequence[tuple[str, str]], *, infix: bool = False,
              fold: bool = False) -> PhraseIndex:
        """An index of ``(path, phrase)`` pairs; phrase ``i`` is reported as ``i``. With
        ``fold`` the phrases are ``normalise``d with full case folding, and the texts
        searched must be normalised the same way."""
        index = cls()
        index.fold = fold
        for number, (path, phrase) in enumerate(phrases):
            index._add(number, path, phrase, infix)
        index.stem_lengths = tuple(sorted({len(stem) for stem in index.stems}))
        if index.infixes:       # one search says whether a word holds any part at all
            index._any_infix = re.compile("|".join(re.escape(part) for part, _ in index.infixes))
        return index

    def _add(self, number: int, path: str, phrase: str, infix: bool) -> None:
        lowered = normalise(phrase, self.fold).strip()
        if infix and len(lowered) > 2 and lowered[0] == lowered[-1] == "*":
            self.infixes.append((_checked_part(path, lowered[1:-1]), number))
            return
        words = lowered.replace("-", " ").split()
        stem = words[0].rstrip("*") if len(words) == 1 else ""
        if stem and _WORD.fullmatch(stem) and words[0].count("*") <= 1:
            self._add_word(number, stem, words[0].endswith("*"))
        else:
            self._add_regex(_Lazy(phrase_regex(path, phrase, self.fold)), number, *_needle(words))

    def _add_word(self, number: int, stem: str, star: bool) -> None:
        if all(map(is_unspaced, stem)):
            self.unspaced.append((stem, number))
        elif any(map(is_unspaced, stem)):
            self._add_regex(_Lazy(phrase_regex("", stem + "*" * star, self.fold)), number, "", False)
        else:
            (self.stems if star else self.exact).setdefault(stem, []).append(number)

    def _add_regex(self, pattern: _Lazy, number: int, needle: str, whole: bool) -> None:
        group = self._by_word if whole else self._by_part
        group.setdefault(needle, []).append((pattern, number))

    def find(self, lowered: str) -> set[int]:
        """Numbers of the phrases that occur in ``lowered`` (a ``normalise``d text)."""
        found: set[int] = set()
        cache = self._cache
        words = words_of(lowered)
        for word in words.difference(self._plain):    # most words name no phrase: skip
            numbers = cache.get(word)                 # them in one set operation
            if numbers is None:
                numbers = self._word_numbers(word)
            found.update(numbers)
        if self.unspaced and _UNSPACED_SEARCH.search(lowered):
            found.update(n for part, n in self.unspaced if part in lowered)
        for needle in words.intersection(self._by_word):
            for pattern, number in self._by_word[needle]:
                if number not in found and pattern.search(lowered):
                    found.add(number)
        for part, patterns in self._by_part.items():
            if part in lowered:
                for pattern, number in patterns:
                    if number not in found and pattern.search(lowered):
                        found.add(number)
        return found

    def _word_numbers(self, word: str) -> tuple[int, ...]:
        numbers = list(self.exact.get(word, ()))
        for length in self.stem_lengths:
            if length > len(word):
                break
            numbers.extend(self.stems.get(word[:length], ()))
        if self._any_infix is not None and self._any_infix.search(word):
            numbers.extend(n for part, n in self.infixes if part in word)
        if len(self._cache) + len(self._plain) >= self.CACHE_SIZE:
            self._cache.clear()
            self._plain.clear()
        if numbers:
            self._cache[word] = result = tuple(numbers)
        else:
            self._plain.add(word)
            result = ()
        return result


class _Lazy:
    """A phrase's regex, compiled when a text first holds its first word: each costs ~5 ms
    to compile (its word boundaries name every script without spaces), so 1,500 names of
    firms took 8 s at every start and every `monitor keywords test`; most are never
    searched for. Only phrases made here are lazy: a ``re:`` rule is compiled at once, and
    its errors said then."""

    __slots__ = ("source", "_compiled")

    def __init__(self, source: str) -> None:
        self.source = source
        self._compiled: re.Pattern[str] | None = None

    def search(self, text: str) -> re.Match[str] | None:
        if self._compiled is None:
            self._compiled = re.compile(self.source)
        return self._compiled.search(text)


def _needle(words: Sequence[str]) -> tuple[str, bool]:
    """What must be in a text for a multi-word phrase to match: its first word, as one of
    the text's words (True) when it is made of word characters only, else its part before
    any ``*`` as a substring (False)."""
    first = words[0] if words else ""
    return first.split("*", 1)[0], bool(_WORD.fullmatch(first))


def _checked_part(path: str, part: str) -> str:
    if not _WORD.fullmatch(part):
        raise ConfigError(f"{path}: an infix must be letters only, got {part!r}")
    return part


_RECENT_SIZE = 1024        # texts remembered by each ``remembered_per_text`` function: a
                           # feed's batch needs a few hundred; 4096 held ~11 MB more at the
                           # peak of a 6,000-item poll
_RECENT_MEMOS: list[dict] = []


def remembered_per_text(function):
    """``function(text)`` with its result remembered for the last ``_RECENT_SIZE`` texts:
    the concept index, the keyword rules and the story check look at the same article, so
    it is split and searched once. ``forget_recent_texts`` empties every such memory."""
    memo: dict = {}
    _RECENT_MEMOS.append(memo)

    @functools.wraps(function)
    def remembered(text: str):
        found = memo.get(text)
        if found is None:
            if len(memo) >= _RECENT_SIZE:
                memo.clear()
            found = memo[text] = function(text)
        return found
    return remembered


def forget_recent_texts() -> None:
    """Empty the memory of every ``remembered_per_text`` function (benchmarks: each run
    must do its work on its texts again)."""
    for memo in _RECENT_MEMOS:
        memo.clear()


@remembered_per_text
def words_of(lowered: str) -> frozenset[str]:
    """The distinct words of a normalised text: runs of letters and digits of scripts
    written with spaces, and runs of characters of scripts without (a Latin word inside
    Chinese text, "限制ai芯片出口", is a word of its own: "ai")."""
    return frozenset(_WORD.findall(lowered))


# Scripts whose words are not separated by spaces, plus Hangul (particles attach to the
# word): their phrases match as substrings.
_UNSPACED_RANGES = (
    (0x0E00, 0x0EFF),    # Thai, Lao
    (0x1000, 0x109F),    # Myanmar
    (0x1100, 0x11FF),    # Hangul Jamo
    (0x1780, 0x17FF),    # Khmer
    (0x2E80, 0x2FDF),    # CJK radicals
    (0x3000, 0x303F),    # CJK symbols and punctuation
    (0x3040, 0x30FF),    # Hiragana, Katakana
    (0x3100, 0x31FF),    # Bopomofo, Hangul compatibility Jamo, Katakana extension
    (0x3400, 0x4DBF),    # CJK extension A
    (0x4E00, 0x9FFF),    # CJK unified ideographs
    (0xAC00, 0xD7AF),    # Hangul syllables
    (0xF900, 0xFAFF),    # CJK compatibility ideographs
    (0xFF66, 0xFF9F),    # half-width Katakana
    (0x20000, 0x3FFFF),  # CJK extensions B and later
)


def is_unspaced(char: str) -> bool:
    """True for a character of a script written without spaces between words."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _UNSPACED_RANGES)


def _spaced_letter(char: str) -> bool:
    return (char.isalnum() or char == "_") and not is_unspaced(char)


def _type_name(value: object) -> str:
    return type(value).__name__


UNSPACED_CHARS = "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _UNSPACED_RANGES)
_UNSPACED_SEARCH = re.compile(f"[{UNSPACED_CHARS}]")
# one letter or digit of a script written with spaces: a phrase's word boundary is where
# such letters end, so "AI芯片" and "export" are found right after Chinese characters too
_LETTER = f"[^\\W{UNSPACED_CHARS}]"
_WORD = re.compile(f"{_LETTER}+|[{UNSPACED_CHARS}]+")
