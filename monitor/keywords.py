"""Analysts' keyword rules: phrases that flag a topic on their own, and phrases that mute.

The ``[keywords]`` section of the config has one list per topic (``critical-minerals``,
``export-controls``) and a ``mute`` list. Each entry is one of

- a phrase, matched case-insensitively. Where a phrase starts or ends with a letter of a
  script written with spaces (Latin, Cyrillic, Greek, ...), that end must sit on a word
  boundary: ``"tin"`` does not match "tinned". Letters of scripts written without spaces
  between words (Chinese, Japanese, Thai, ...) and Korean Hangul (whose particles attach
  to the word) match anywhere, as a substring. A space or hyphen inside a phrase matches any
  run of spaces and hyphens, so ``"rare earth"`` also finds "rare-earth".
- a phrase with ``*`` at the end of one or more of its words: that word may go on
  (``"Ausfuhrkontroll*"`` finds "Ausfuhrkontrollen", ``"seltene* Erden"`` finds
  "seltenen Erden").
- ``re:`` followed by a Python regular expression, searched case-insensitively as written.

Rules are compiled once (``KeywordRules.compile``); an invalid entry raises ``ConfigError``
whose message starts with the key path (``keywords.export-controls[3]: ...``, entries
counted from 0). This module imports no third-party library.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from monitor import TOPICS
from monitor.exceptions import ConfigError

MUTE = "mute"
KEYS = (*TOPICS, MUTE)
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
class _Rule:
    """One config entry and its compiled regex. Phrases are searched in the lower-cased
    article (a plain literal prefix: fast); ``re:`` entries case-insensitively in the
    article as it is."""

    entry: str
    pattern: re.Pattern[str]
    raw: bool

    def search(self, doc: str, lowered: str) -> bool:
        return self.pattern.search(doc if self.raw else lowered) is not None


@dataclass(frozen=True)
class _PhraseList:
    """The rules of one config list, in config order."""

    rules: tuple[_Rule, ...]

    def find(self, doc: str, lowered: str) -> tuple[str, ...]:
        found = (r.entry for r in self.rules if r.search(doc, lowered))
        return tuple(dict.fromkeys(found))


@dataclass(frozen=True)
class KeywordRules:
    """Compiled keyword rules; build with ``compile`` or ``empty``."""

    lists: dict[str, _PhraseList]

    @classmethod
    def compile(cls, spec: Mapping[str, Sequence[str]]) -> KeywordRules:
        if not isinstance(spec, Mapping):
            raise ConfigError(f"keywords: expected a table, got {_type_name(spec)}")
        for key in spec:
            if key not in KEYS:
                raise ConfigError(
                    f"keywords.{key}: unknown key (expected one of {', '.join(KEYS)})")
        return cls({key: _compile_list(key, spec.get(key, ())) for key in KEYS})

    @classmethod
    def empty(cls) -> KeywordRules:
        return cls.compile({})

    def match(self, title: str, text: str) -> KeywordMatch:
        doc = f"{title or ''}\n{text or ''}"
        lowered = normalise(doc)
        hits = {t: found for t in TOPICS if (found := self.lists[t].find(doc, lowered))}
        return KeywordMatch(hits=hits, muted=self.lists[MUTE].find(doc, lowered))

    def __len__(self) -> int:
        return sum(len(lst.rules) for lst in self.lists.values())


def normalise(text: str) -> str:
    """Lower case, typographic apostrophes as ASCII: what phrases are matched against."""
    return text.lower().replace("\u2019", "'")


def _compile_list(key: str, entries: object) -> _PhraseList:
    if isinstance(entries, (str, bytes)) or not isinstance(entries, Sequence):
        raise ConfigError(
            f"keywords.{key}: expected a list of strings, got {_type_name(entries)}")
    return _PhraseList(tuple(_rule(f"keywords.{key}[{i}]", e) for i, e in enumerate(entries)))


def _rule(path: str, entry: object) -> _Rule:
    """The compiled rule for one config entry; raises ConfigError naming ``path``."""
    if not isinstance(entry, str):
        raise ConfigError(f"{path}: expected a string, got {_type_name(entry)}")
    if not entry.strip():
        raise ConfigError(f"{path}: empty phrase")
    if entry.startswith("re:"):
        return _Rule(entry, _raw_regex(path, entry[3:]), raw=True)
    return _Rule(entry, re.compile(phrase_regex(path, entry)), raw=False)


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
    return compiled


def phrase_regex(path: str, phrase: str) -> str:
    """Translate a config phrase (words, ``*`` suffixes) into a regex source that is
    searched in ``normalise``d text. It starts with a literal (so ``re`` can scan for it
    quickly); the word boundary before it is a look-behind placed after that literal."""
    words = normalise(phrase).replace("-", " ").split()
    if not words:
        raise ConfigError(f"{path}: phrase {phrase!r} has no words")
    for word in words:
        _check_word(path, phrase, word)
    first = re.escape(words[0].rstrip("*"))
    head = f"{first}(?<!\\w{first})" if _spaced_letter(words[0][0]) else first
    rest = [_word_regex(w) for w in words[1:]]
    body = _SEPARATOR.join([head + ("\\w*" if words[0].endswith("*") else ""), *rest])
    last = words[-1]
    tail = "(?!\\w)" if not last.endswith("*") and _spaced_letter(last[-1]) else ""
    return body + tail


def _check_word(path: str, phrase: str, word: str) -> None:
    stem = word[:-1] if word.endswith("*") else word
    if not stem or "*" in stem:
        raise ConfigError(f"{path}: '*' may only end a word, as in 'Ausfuhrkontroll*' "
                          f"(got {phrase!r})")


def _word_regex(word: str) -> str:
    stem = word[:-1] if word.endswith("*") else word
    return re.escape(stem) + ("\\w*" if word.endswith("*") else "")


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
