"""Countries an article names: ISO 3166-1 alpha-2 codes with counts and spans.

``extract_countries(title, text)`` follows LABELING.md (Countries). Names come from the
gazetteer ``monitor/data/countries.json``, built ahead of time by
``python -m monitor._build.gazetteer`` from CLDR territory names in every locale (via Babel)
and the reviewed alias table ``monitor/data/country_aliases.tsv``. It is loaded once, on
first use; Babel is never imported here.

How text is matched
  * Scripts written with spaces are cut into tokens: runs of letters with their combining
    marks. Tokens separated only by spaces, hyphens, apostrophes, dots or "&" join into
    multi-word names, so "Guinea-Bissau", "Guinea Bissau", "U.S." (the tokens U and S)
    and "japanisch-amerikanisch" (two names) all work. A name matches on
    whole tokens, case-folded and with Latin accents removed, the longest name from the
    leftmost token first: "Papua New Guinea" is PG, never GN.
  * Case: names written in capitals in the gazetteer need a capital in the text ("China",
    "CHINA" but not "china" the porcelain, "Turkey" but not "turkey"); adjectives written in
    lower case ("chinesische", "chiński") match in any case; short all-caps abbreviations
    match exactly: "US" and "U.S." are the United States, "us" never is. "IN" and "OR" are
    not in the gazetteer at all, so all-caps headlines do not give India or Oregon.
  * Chinese, Japanese, Korean, Thai and other scripts written without spaces are searched
    as substrings (Korean names must start a word). One-character abbreviations combine
    into compounds (中美, 日米豪印, 한미) only when what follows is a relation word,
    punctuation or the end, and not when the last one begins a blocker (中|美元, the
    dollar); ``@before``/``@after`` guards reject matches glued to a neighbouring word
    (其中国内, 美方案).
  * Blockers: some entries name no country and exist to swallow the shorter name inside
    them: "New Mexico", "New South Wales", "Inner Mongolia"/"内蒙古" (a region names no
    country), "Niger Delta", "Gulf of Guinea", "Paris Agreement", "Havana syndrome",
    "Indian Ocean", "Latin America", "美元".

Context rules (each tested in tests/test_countries.py)
  * person: "Jordan", "Chad", "Washington", "Lima", "Paris", ... directly followed by a
    capitalised word ("Chad Smith", "Washington Post") are read as names, not countries,
    except in Title Case headlines and before weekdays, months or "DC".
  * surname: "Holland" or "Montenegro" right after a capitalised word ("Tom Holland") is
    a name.
  * hollande: "Hollande" is the Netherlands only after "la", "en" or "de" (la Hollande);
    elsewhere it is the former French president ("Sarkozy, Hollande and Macron").
  * dateline: "Brussels"/"Brüssel" counts as Belgium only in a dateline ("BRÜSSEL (dpa) -");
    elsewhere it stands for the EU institutions (LABELING.md).
  * German closed compounds led by a country name count: "Irankrieg" -> IR, and so do
    directions before one: "Nordschweden" -> SE.
  * georgia: "Georgia" is the US state, not the country, when the text is about the US and
    nothing else (Tbilisi, Georgian, Georgien; its cities, regions and leaders: Chiatura,
    Batumi, Abkhazia, the Caucasus, Kobakhidze …) points to the country.
  * korea: a bare "Korea"/"Korean" is KR unless the text names North Korea and never South.
  * turkey: "Turkey" is the bird when the text speaks of Thanksgiving or poultry and
    nothing else (Türkiye, Turkish, Ankara) points to the country.
  * emirates: "at the Emirates" is Arsenal's ground (the Emirates Stadium, named after
    the airline) when the text speaks of football (Arsenal, Premier League, FA Cup …) and
    nothing else (UAE, Emirati, Abu Dhabi) points to the country. Elsewhere "the Emirates"
    is the UAE ("investors in the Emirates", in a football text too), and so is an
    organisation named with it (the airline, Emirates NBD), as LABELING.md counts
    "Deutsche Bank" as DE.
  * us-caps: in an all-caps line, "US" after "LET", "TELL", "JOIN", "WITH" ... is the
    pronoun; "US$" is a currency.
  * german: "Island" is Iceland only in German text (elsewhere it is the English word).
  * america: "America" is the US, the Spanish "América" is the continent.
  * georgia-cjk: ジョージア/조지아/喬治亞 count only when the text names the country
    otherwise too (in Japanese and Korean business news they are mostly the US state).
"""

from __future__ import annotations

import json
import re
import unicodedata
from bisect import bisect_right
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from pathlib import Path
from typing import NamedTuple

from monitor.types import Mention

DATA_FILE = Path(__file__).parent / "data" / "countries.json"

_MARKS = (
    "\u0300-\u036f\u0483-\u0489\u0591-\u05c7\u0610-\u061a\u064b-\u065f\u0670"
    "\u06d6-\u06ed\u0900-\u0dff\u0f00-\u0fff\u1b00-\u1b7f\u200c\u200d"
)
_SUBSTR_CHARS = (                 # Thai, Lao, Myanmar, Hangul, Khmer, kana, CJK, （）
    "\uff08\uff09\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff\u3040-\u30ff"
    "\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
)
# a letter that is not in an unspaced script, then letters and combining marks
_LETTER = f"[^\\W\\d_{_SUBSTR_CHARS}]"
TOKEN_RE = re.compile(f"{_LETTER}+(?:[{_MARKS}]+{_LETTER}*)*")
_SPLIT_RE = re.compile(f"({TOKEN_RE.pattern})")
SUBSTR_RE = re.compile(f"[{_SUBSTR_CHARS}]+")
_JOIN_RE = re.compile(r"[\s\-\u2010\u2011\u2013\u2014'\u2019.&\u00b7]{1,4}")
_LATIN_MARKS_RE = re.compile("[\u0300-\u036f]")
_HANGUL_RE = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_CJK_RE = re.compile(f"[{_SUBSTR_CHARS}]")
# katakana, without the middle dot "・" that separates names (ロシア・プーチン)
_KATAKANA_RE = re.compile("[\u30a0-\u30fa\u30fc-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_KATAKANA_COMPOUND_TAILS = ("メディア", "エネルギー", "フェア", "アニメ", "ドラマ", "メーカー",
                            "ワイン", "ビザ", "ツアー", "チーム", "リーグ", "ファンド", "ブランド")
_KANJI_RE = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_COMPANY_START_RE = re.compile("[\u30a0-\u30ffA-Za-z]")
# a lower-case letter glued to an upper-case one: "UkraineBerlin" (feeds that join a
# title to its text without a space), "PowerChina"
_CAMEL_RE = re.compile("[a-zß-öø-ÿąćęłńśźż][A-ZÀ-ÖØ-ÞĄĆĘŁŃŚŹŻ]")

_NOT_SURNAMES = frozenset(
    "monday tuesday wednesday thursday friday saturday sunday january february march "
    "april may june july august september october november december dc d "
    "montag dienstag mittwoch donnerstag freitag samstag sonntag".split()
)
_PRONOUN_VERBS = frozenset(
    "let lets tell tells told join joins give gives gave help helps show shows contact "
    "follow email call calls beat beats".split()
)
_PRONOUN_PREPOSITIONS = frozenset("about with among for to from against".split())
_AFTER_PRONOUN = frozenset(
    "to and the a an in on at for with now today all both again out up down off back "
    "here there this that know what how why when as be".split()
)


class Token(NamedTuple):
    start: int
    end: int
    text: str
    key: str


class Hit(NamedTuple):
    start: int
    end: int
    code: str      # "" for a blocker
    rule: str      # "", a rule name, or "cue:NAME" for a blocker that gives context


@dataclass(frozen=True)
class Gazetteer:
    """The loaded data file; see ``load_gazetteer``."""

    words: dict[str, str]                         # key -> "code|mode|rule|case data"
    stems: frozenset[str]                         # proper token prefixes of multi-word names
    heads: frozenset[str]                         # every token a name can start with
    subs: dict[str, tuple[str, ...]]              # CJK name -> (code, rule)
    sub_lengths: dict[str, tuple[int, ...]]       # first char -> name lengths, longest first
    sub_pairs: frozenset[str]                     # first two characters of every CJK name
    abbr: dict[str, str]                          # one-character CJK abbreviation -> code
    prefix: frozenset[str]                        # abbreviations that lead a company name
    follow: frozenset[str]
    before: dict[str, frozenset[str]]
    after: dict[str, frozenset[str]]
    names: dict[tuple[str, str], str]             # (code, locale) -> display name
    starts: re.Pattern[str]                       # any first character of a CJK name
    compounds: dict[str, str]                     # German compound head -> code
    compound_sizes: tuple[int, ...]               # head lengths, longest first
    compound_prefixes: frozenset[str]             # their first four letters


# ---------------------------------------------------------------- normalisation

def fold(token: str) -> str:
    """Lower-case a token and strip Latin accents ("Südkorea" -> "sudkorea")."""
    lowered = token.lower()
    return lowered if lowered.isascii() else _strip_accents(lowered)


def _strip_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", _LATIN_MARKS_RE.sub("", decomposed))


def tokens(text: str) -> list[Token]:
    """Word tokens of ``text`` (scripts written with spaces) with offsets and keys."""
    return [Token(m.start(), m.end(), m.group(), fold(m.group()))
            for m in TOKEN_RE.finditer(text)]


def name_key(name: str) -> str:
    """The lookup key of a name written with spaces: folded tokens joined by a space."""
    return " ".join(t.key for t in tokens(name))


def is_substring_script(name: str) -> bool:
    """True for names in scripts written without spaces (CJK, Thai, ...)."""
    return SUBSTR_RE.fullmatch(name) is not None


# ---------------------------------------------------------------- loading

def load_gazetteer(path: Path = DATA_FILE) -> Gazetteer:
    """Read the data file written by ``monitor._build.gazetteer`` (plain JSON)."""
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)
    subs = {name: tuple(value.split("|")) for name, value in data["subs"].items()}
    names = {(code, locale): name for code, by_locale in data["names"].items()
             for locale, name in by_locale.items()}
    lengths = _lengths_by_first_char(subs)
    starts = re.compile("[" + re.escape("".join(sorted(set(lengths) | set(data["abbr"]))))
                        + "]")
    return Gazetteer(
        words=data["words"],
        stems=frozenset(data["stems"]),
        heads=frozenset(k for k in data["words"] if " " not in k).union(
            k for k in data["stems"] if " " not in k),
        subs=subs,
        sub_lengths=lengths,
        sub_pairs=frozenset(name[:2] for name in subs),
        abbr=data["abbr"],
        prefix=frozenset(data["prefix"]),
        follow=frozenset(data["follow"]),
        before={char: frozenset(chars) for char, chars in data["before"].items()},
        after={char: frozenset(chars) for char, chars in data["after"].items()},
        names=names,
        starts=starts,
        compounds=data["compounds"],
        compound_sizes=tuple(sorted({len(k) for k in data["compounds"]}, reverse=True)),
        compound_prefixes=frozenset(k[:4] for k in data["compounds"]),
    )


def _lengths_by_first_char(subs: dict[str, tuple[str, ...]]) -> dict[str, tuple[int, ...]]:
    lengths: dict[str, set[int]] = {}
    for name in subs:
        lengths.setdefault(name[0], set()).add(len(name))
    return {char: tuple(sorted(sizes, reverse=True)) for char, sizes in lengths.items()}


@lru_cache(maxsize=1)
def gazetteer() -> Gazetteer:
    """The shipped gazetteer, loaded on first use."""
    return load_gazetteer()


# ---------------------------------------------------------------- public API

def extract_countries(title: str, text: str) -> list[Mention]:
    """Countries named in an article, sorted by code.

    Spans are offsets into ``title + "\\n" + text``; each country counts once per mention.
    """
    full = f"{title}\n{text}"
    gz = gazetteer()
    hits = _scan_words(full, gz)
    if not full.isascii():
        hits = _press_style(full, hits + _scan_unspaced(full, gz))
    spans: dict[str, list[tuple[int, int]]] = {}
    for hit in _doc_rules(hits):
        for code in hit.code.split("+") if hit.code else ():
            spans.setdefault(code, []).append((hit.start, hit.end))
    return [Mention(code, len(found), tuple(sorted(found)))
            for code, found in sorted(spans.items())]


# English display names where CLDR's default is a disambiguating phrase that news does not
# use ("Congo - Kinshasa", "Hong Kong SAR China"): the names the press and analysts write.
ENGLISH_NAMES = {"CD": "DR Congo", "CG": "Congo-Brazzaville", "HK": "Hong Kong", "MO": "Macao",
                 "MM": "Myanmar", "PS": "Palestine"}


def known_code(code: str) -> bool:
    """Whether ``code`` is an ISO 3166-1 alpha-2 code of a country or territory the
    extractor can name (with XK, Kosovo): "UK" and "EU" are not."""
    return code in _known_codes()


@lru_cache(maxsize=1)
def _known_codes() -> frozenset[str]:
    return frozenset(code for code, _ in gazetteer().names)


def country_name(code: str, locale: str = "en") -> str:
    """Display name of a country code ("CN" -> "China"); falls back to English, then code."""
    names = gazetteer().names
    wanted = locale.replace("-", "_")
    if wanted.split("_")[0] == "en" and code.upper() in ENGLISH_NAMES:
        return ENGLISH_NAMES[code.upper()]
    for candidate in (wanted, wanted.split("_")[0], "en"):
        name = names.get((code.upper(), candidate))
        if name:
            return name
    return code.upper()


# ---------------------------------------------------------------- scripts written with spaces

class _Words:
    """Tokens of one text as parallel lists, cut and folded by C-level str and re calls.

    ``keys[i]`` is the folded token; ``ends`` holds the running offsets of the
    separator/token parts, so token i spans ``ends[2i]:ends[2i + 1]``.
    """

    def __init__(self, full: str) -> None:
        self.full = full
        folded = fold(full)
        if len(folded) == len(full) and not _CAMEL_RE.search(full):
            parts = _SPLIT_RE.split(folded)    # separator, token, separator, token, ...
            self.keys = parts[1::2]
            self.ends = list(accumulate(map(len, parts)))
            return
        parts = _SPLIT_RE.split(full)          # glued words, or folding changed the length
        if _CAMEL_RE.search(full):
            parts = _split_camel_case(full, parts)
        self.ends = list(accumulate(map(len, parts)))
        if len(folded) == len(full):
            slices = map(slice, self.ends[0:-1:2], self.ends[1::2])
            self.keys = list(map(folded.__getitem__, slices))
        else:
            self.keys = list(map(fold, parts[1::2]))

    def span(self, i: int) -> tuple[int, int]:
        return self.ends[2 * i], self.ends[2 * i + 1]

    def text(self, i: int) -> str:
        return self.full[self.ends[2 * i]:self.ends[2 * i + 1]]

    def texts(self, i: int, end: int) -> list[str]:
        return [self.text(k) for k in range(i, end)]

    def gap(self, i: int) -> str:
        """The characters between token i and token i + 1."""
        return self.full[self.ends[2 * i + 1]:self.ends[2 * i + 2]]


def _split_camel_case(full: str, parts: list[str]) -> list[str]:
    """Cut tokens such as "UkraineBerlin" in two, with an empty separator between."""
    ends = list(accumulate(map(len, parts)))
    marked = {bisect_right(ends, m.start()) for m in _CAMEL_RE.finditer(full)}
    for k in sorted((k for k in marked if k % 2), reverse=True):
        token = parts[k]
        cuts = [m.start() + 1 for m in _CAMEL_RE.finditer(token)]
        pieces: list[str] = []
        for start, end in zip([0] + cuts, cuts + [len(token)]):
            pieces += [token[start:end], ""]
        parts[k:k + 1] = pieces[:-1]
    return parts


def _scan_words(full: str, gz: Gazetteer) -> list[Hit]:
    words = _Words(full)
    hot = gz.heads.intersection(words.keys)
    if not hot:
        return _compound_hits(words, gz, set())
    hits: list[Hit] = []
    taken: set[int] = set()
    resume = 0
    for i in [i for i, key in enumerate(words.keys) if key in hot]:
        if i < resume:
            continue
        found = _longest_name(words, i, gz)
        if found is None:
            continue
        end, (code, _mode, rule, _case) = found
        if rule == "emirates" and not _after_at_the(words, i):
            rule = ""               # only "at the Emirates" may be the ground
        if not _local_rule_rejects(rule, words, i, end, gz):
            hits.append(Hit(words.span(i)[0], words.span(end - 1)[1], code, rule))
        taken.update(range(i, end))
        resume = end
    return hits + _compound_hits(words, gz, taken)


# the rest of a word that makes it an adjective or demonym, not a compound noun: "Iraker",
# "Nigerianerin", "iranischen" (the gazetteer's); "Ukraineinvasion", "Chinaerfolg" are compounds
_COMPOUND_TAIL_NOT_RE = re.compile("(?:isch|ianer|aner|ier|er|ese|in)(?:e|em|en|er|es|in|innen|nen|n|s)?")
_LONG_NOUN_RE = re.compile(r"[A-ZÄÖÜ](?<!\w.)[a-zäöüß]{7,}\b")    # \b first: slower


_DIRECTIONS = ("nord", "sud", "ost", "west", "zentral", "mittel")


def _directional_name(key: str, gz: Gazetteer) -> str | None:
    """"Nordschweden", "Südchinas", "Ostdeutschland": a direction before a country."""
    for direction in _DIRECTIONS:
        if key.startswith(direction):
            rest = key[len(direction):]
            return gz.compounds.get(rest) or gz.compounds.get(rest[:-1]) if rest else None
    return None


def _compound_hits(words: _Words, gz: Gazetteer, taken: set[int]) -> list[Hit]:
    """German closed compounds led by a country: "Irankrieg", "Chinageschäft".

    Only in text that looks German (two of und, der, die, das, ...). The rest must be a
    word of four letters or more that is not an adjective or demonym ending ("iranisch",
    "Iraner" are in the gazetteer already).
    """
    hits: list[Hit] = []
    if not _looks_german(words):
        return hits
    starts = {words.span(i)[0] for i in taken}
    for match in _LONG_NOUN_RE.finditer(words.full):
        key = fold(match.group())
        if match.start() in starts or key in gz.words:
            continue
        direction = _directional_name(key, gz) if key.startswith(_DIRECTIONS) else None
        if direction:
            hits.append(Hit(match.start(), match.end(), direction, ""))
            continue
        if key[:4] not in gz.compound_prefixes:
            continue
        for size in gz.compound_sizes:
            code = gz.compounds.get(key[:size]) if len(key) - size >= 4 else None
            if code and not _COMPOUND_TAIL_NOT_RE.fullmatch(key[size:]):
                hits.append(Hit(match.start(), match.start() + size, code, ""))
                break
    return hits


def _longest_name(words: _Words, i: int, gz: Gazetteer):
    """(end token index, entry fields) of the longest name starting at token i, or None."""
    key = words.keys[i]
    keys = [key]
    j = i
    while key in gz.stems and j + 1 < len(words.keys) and _joins(words, j):
        key = f"{key} {words.keys[j + 1]}"
        if key not in gz.stems and key not in gz.words:
            break
        keys.append(key)
        j += 1
    for n in range(len(keys), 0, -1):
        packed = gz.words.get(keys[n - 1])
        if packed:
            entry = packed.split("|")
            if _case_ok(entry, words.texts(i, i + n)) or _combining_form(entry, words, i, n, gz):
                return i + n, entry
    return None


def _combining_form(entry: list[str], words: _Words, i: int, n: int, gz: Gazetteer) -> bool:
    """"Franco-German", "Anglo-French": a Latin combining form, kept in lower case in the
    gazetteer (so that Franco the man is no France), in capitals before a hyphen and a name."""
    return (entry[1] == "l" and n == 1 and i + 1 < len(words.keys)
            and words.gap(i) in ("-", "\u2010", "\u2011")
            and _longest_name(words, i + 1, gz) is not None)


def _joins(words: _Words, j: int) -> bool:
    """Whether a name may run on from token j to token j + 1: over a short gap of spaces,
    dashes, dots or "&", but not over a sentence end ("… to the US. Dollar prices …"): a
    period and a space after a word of two letters or more, before a capital. One letter
    ("U.S. dollar", "R.D. Congo") or a short form that takes a period ("St. Lucia",
    "EE. UU.") runs on."""
    gap = words.gap(j)
    if not _JOIN_RE.fullmatch(gap):
        return False
    if "." not in gap or not gap[-1].isspace() or len(words.keys[j]) < 2:
        return True
    return words.keys[j] in _DOTTED_SHORT_FORMS or not words.text(j + 1)[:1].isupper()


_DOTTED_SHORT_FORMS = frozenset({"st", "ste", "mt", "ee", "uu"})


def _case_ok(entry: list[str], texts: list[str]) -> bool:
    mode, case = entry[1], entry[3]
    if mode == "a":
        return True
    if mode == "e":
        return " ".join(texts) == case
    if mode == "l":
        return all(t.islower() for t in texts)
    return all(_capitalised(t) for t, flag in zip(texts, case) if flag == "1")


def _capitalised(token: str) -> bool:
    """"China" or "CHINA", not "china" nor odd casing such as "ROMs"."""
    return token[0].isupper() and (token.isupper() or not any(c.isupper() for c in token[1:]))


# ---------------------------------------------------------------- CJK and other unspaced scripts

def _scan_unspaced(full: str, gz: Gazetteer) -> list[Hit]:
    hits: list[Hit] = []
    resume = 0
    pairs, abbr = gz.sub_pairs, gz.abbr
    for candidate in gz.starts.finditer(full):
        pos = candidate.start()
        if pos < resume or (full[pos:pos + 2] not in pairs and full[pos] not in abbr):
            continue
        found = (_substring_at(full, pos, gz) or _compound_at(full, pos, gz)
                 or _prefix_at(full, pos, gz))
        if found:
            hits.extend(found)
            resume = found[-1].end
    return hits


def _substring_at(full: str, pos: int, gz: Gazetteer) -> list[Hit] | None:
    for length in gz.sub_lengths.get(full[pos], ()):
        end = pos + length
        if end > len(full):
            continue
        entry = gz.subs.get(full[pos:end])
        if entry and _guards_ok(full, pos, end, gz):
            return [Hit(pos, end, entry[0], entry[1])]
    return None


def _guards_ok(full: str, start: int, end: int, gz: Gazetteer) -> bool:
    """Reject a CJK name glued to a neighbouring word: a Korean name must start a word, a
    katakana name must be a whole katakana word ("タイ" is not in "タイトル"), and the
    ``@before``/``@after`` characters of the alias table."""
    prev = full[start - 1] if start > 0 else ""
    nxt = full[end] if end < len(full) else ""
    if _HANGUL_RE.match(full[start]):
        return not (prev and _HANGUL_RE.match(prev))
    if _KATAKANA_RE.match(full[start]) and prev and _KATAKANA_RE.match(prev):
        return False
    if _KATAKANA_RE.match(full[end - 1]) and nxt and _KATAKANA_RE.match(nxt):
        # a name of three or more katakana glued to one of a few common words is a compound
        # (イタリアフェア, イランエネルギー, ロシアアニメ); elsewhere the name is part of a word
        # (タイトル, アルバイト, ソウルフード) or a currency (メキシコペソ)
        if end - start < 3 or not full.startswith(_KATAKANA_COMPOUND_TAILS, end):
            return False
    if prev and prev in gz.before.get(full[start], ()):
        return False
    return not (nxt and nxt in gz.after.get(full[end - 1], ()))


def _compound_at(full: str, pos: int, gz: Gazetteer) -> list[Hit] | None:
    """Two to four one-character abbreviations in a row: 中美, 日米豪印, 한미."""
    if full[pos] not in gz.abbr:
        return None
    hangul = bool(_HANGUL_RE.match(full[pos]))
    end = pos
    while (end < len(full) and end - pos < 4 and full[end] in gz.abbr
           and bool(_HANGUL_RE.match(full[end])) == hangul):
        end += 1
    while (end - pos >= 2 and not hangul and pos > 0
           and full[pos - 1] in gz.before.get(full[pos], ())):
        pos += 1
    if end - pos < 2 or not _compound_follow_ok(full, pos, end, hangul, gz):
        return None
    if any(full[i] == full[i + 1] for i in range(pos, end - 1)):
        return None         # a doubled syllable is a word: 미미 "slight", 일일 "daily", 美美
    return [Hit(i, i + 1, gz.abbr[full[i]], "") for i in range(pos, end)]


def _prefix_at(full: str, pos: int, gz: Gazetteer) -> list[Hit] | None:
    """Japanese 米アップル, 豪BHP: an abbreviation right before a company name."""
    if full[pos] not in gz.prefix or pos + 1 >= len(full):
        return None
    if not _COMPANY_START_RE.match(full[pos + 1]):
        return None
    if pos > 0 and _KANJI_RE.match(full[pos - 1]):
        return None
    return [Hit(pos, pos + 1, gz.abbr[full[pos]], "")]


def _compound_follow_ok(full: str, pos: int, end: int, hangul: bool, gz: Gazetteer) -> bool:
    prev = full[pos - 1] if pos > 0 else ""
    if hangul and prev and _HANGUL_RE.match(prev):
        return False
    nxt = full[end] if end < len(full) else ""
    if gz.subs.get(full[end - 1:end + 1], ("-",))[0] == "" and not full.startswith("元首", end):
        return False        # 中|美元, the dollar (a blocker); but 中美|元首, the two heads of state
    # the @after guards of a lone name do not cut a pair: a date's 5日在, 中共 (the party),
    # 日均 (daily) cannot follow another country's abbreviation (中日在…, 美中共同声明)
    return not nxt or not _CJK_RE.match(nxt) or nxt in gz.follow


# ---------------------------------------------------------------- press style (LABELING.md)

# One character for a country, standing alone in Korean and Japanese headlines and flash
# news: "美 희토류 자립", "中희토류 통제", "日제약사", "北 당대회", "米上院", "英首相", "露に".
_SINGLE = {"美": "US", "中": "CN", "日": "JP", "韓": "KR", "韩": "KR", "英": "GB",
           "獨": "DE", "独": "DE", "佛": "FR", "仏": "FR", "露": "RU", "濠": "AU", "豪": "AU",
           "印": "IN", "臺": "TW", "台": "TW", "伊": "IT", "越": "VN"}
_SINGLE_KO = {**_SINGLE, "北": "KP"}
_SINGLE_JA = {**_SINGLE, "米": "US", "加": "CA", "ロ": "RU"}
# the kanji that may follow a lone abbreviation in Japanese headlines (米上院, 英首相, 露産,
# 独高級車, 中印, 米雇用, 米景気, 米金利): government, military, market, economy and origin
# words; 米価, 英語, 独自, 中古,
# 日程 stay words of their own
_JA_FOLLOW = frozenset("上下首大政軍国外財商当企株半制憲高産製議紙誌社側閣統司最連空陸経民損先海保"
                       "市主長両新与野元前次副務系発版中韓露英独仏豪印台伊米加朝雇景金")
# alone, 中, 日 and 加 name a country in a Japanese headline only before such a word (中外相,
# 日政府, 加首相); before kana, a digit or punctuation they are words of their own ("inside",
# "during", a school year; "day", "sun"; "to add"), and 中高 is a school
_JA_WORDS_ALONE = frozenset("中日加")
_JA_FOLLOW_ALONE = _JA_FOLLOW - frozenset("高大中下上金野")     # not 中野, 日野 (names)
# 米 is the US before these too (米戦艦, 米南部, 米地裁, 米少年, 米兵, 米女優, 米報道, 米裁判所,
# 米関税, 米小売, 米石油); not 作 or 研 (米作り, 米研ぎ: rice), and not for the other
# abbreviations (中南米, 中東, 伊東)
_JA_FOLLOW_US = frozenset("戦艦兵南北東西地少女男俳歌報裁関小石")
# a direction or 航 (aviation) after 英, 独, 仏, 豪, 韓, 露 (英南部, 仏北部, 英航空機); not after
# 中 (中南米, 中東), 日 (日南), 伊 (伊東) or 印 (印西, a city)
_JA_FOLLOW_DIRECTION = frozenset("南北東西航")
_JA_WITH_DIRECTION = frozenset("英独仏豪韓露")
_JA_FOLLOW_GB = frozenset("裁")        # 英裁判所 (not 独裁, a dictatorship)
# the verb stems before 越 in 乗り越え, 追い越し, 引っ越し, 勝ち越し, 飛び越え (to cross)
_JA_VERB_BEFORE_KOSU = frozenset("りいっちび")
# 米 alone before kana is rice in a text about sake, rice fields or cooking (日本酒 … 米の甘み)
_RICE_RE = re.compile("日本酒|酒蔵|酒造|稲|田んぼ|水田|農家|精米|新米|米粉|炊|ご飯|ごはん|麹|醸|おにぎり|お米|コメ")
_KANA_RE = re.compile("[\u3040-\u30ff]")
_DIGIT_OR_KANJI_RE = re.compile("[0-9０-９\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
# Korean shorthand for two or three countries with middle dots: 한·미, 미·중, 러·우, 한·미·일
_HANGUL_PAIR_RE = re.compile("(?<![\uac00-\ud7af])[한미중일러북우](?:[·ㆍ・][한미중일러북우])+"
                             "(?![\uac00-\ud7af])")
_HANGUL_ABBR = {"한": "KR", "미": "US", "중": "CN", "일": "JP", "러": "RU", "북": "KP",
                "우": "UA"}
# 한, 중 or 일 dotted to a country's full name (한·필리핀, 일·호주, 호주·한) or to a group of
# countries (한·아세안, 중·EU, 한·중앙아시아); not 중·고교, 일·가정 (work and family), 중·장기
_HANGUL_DOT = "[·ㆍ・]"
_HANGUL_BEFORE_DOT_RE = re.compile(f"(?<![\uac00-\ud7af])([한중일]){_HANGUL_DOT}")
_HANGUL_AFTER_DOT_RE = re.compile(f"{_HANGUL_DOT}([한중일])(?![\uac00-\ud7af])")
_HANGUL_GROUPS_RE = re.compile("아세안|EU|유럽연합|중앙아시아|중앙아|아프리카|중남미|중동|아랍|걸프|"
                               "태평양|아태|메콩|나토|NATO|유엔|G7|G20")
# Korean headlines' one-syllable 러 (Russia), 북 (North Korea) and 미 (US) standing alone
# ("러 공습에 …", "[속보] 북 “…”", "러軍", "미 상호관세"; not 북 콘서트, a book event), the
# Russia–Ukraine war as 러우/러-우 (전쟁, 종전, 戰), and the hanja 對中 / 對北 ("toward China /
# the North": 對中 수출; not 對中小企業)
_HANGUL_ALONE_RE = re.compile(r"(?<![\uac00-\ud7af\w-])([러북미])(?=[\s,.:;!?'\"‘’“”…·)\]>]|軍|$)"
                              r"(?!\s?(?:콘서트|카페|토크|페어|클럽|리뷰|펀딩|큐레이션))")
_HANGUL_RU_UA_RE = re.compile(r"(?<![\uac00-\ud7af])(러)-?(우)(?=\s?(?:전쟁|종전|휴전|전|사태|협상)|戰)")
_TOWARD_RE = re.compile("對(?:(中)(?!小)|(北))")
_TOWARD = {"中": "CN", "北": "KP"}
# 주한 "stationed in Korea" (주한미군, 주한 중국대사): 한 is Korea; not inside a name (김주한)
_STATIONED_IN_KOREA_RE = re.compile("(?<![\uac00-\ud7af])주(한)(?=\\s?[\uac00-\ud7af])")
# a visit to a country: 방일 (訪日), 방미, 방중, 방북, 방러 ("방일 일정", "방미길", "방중 기간");
# 방한 (also 防寒, protection from the cold: 방한복, 방한 대책) only before punctuation or the
# end ("17일 방한…"); nothing inside a word (지방일, 방중술)
_VISIT_RE = re.compile("(?<![\uac00-\ud7af])방(?:([일미중북러])"
                       "(?=[^\uac00-\ud7af]|$|길|단|을|은|이|에|중|한|해|했|하|설|과|의|도)"
                       "|(한)(?=[^\\s\uac00-\ud7af]|$|길|단|을|은|이|에|중|하|해|했))")
# an envoy or force stationed in a country: 주중대사, 주일 대사관, 주미 특파원, 주일미군
# (주중 and 주일 alone are "on weekdays" and "this week")
_STATIONED_RE = re.compile("(?<![\uac00-\ud7af])주([미중일러])(?=\\s?(?:대사|공사|총영사|영사관|"
                           "특파원|미군|무관|상공회의소|한국))")
# 대남 "toward the South" in North Korea news: South Korea (대남 도발, '대남통')
_TOWARD_SOUTH_RE = re.compile("(?<![\uac00-\ud7af])대(남)(?=[^\uac00-\ud7af]|$|통|도발|"
                              "전략|공작|정책|방송|전단|비난|위협|메시지|사업|기구)")
# 대한 glued to a word is Korea's name in a company's or body's (대한전선, CJ대한통운, 대한상의);
# "에 대한" (about) stands apart, 대한다 is a verb
_DAEHAN_RE = re.compile("(?<![\uac00-\ud7af])(대한)(?=[\uac00-\ud7af])(?![다데가민])")
# the home and US stock markets in market slang (국장, 미장: [이런국장 저런주식], 국장 복귀),
# in a text about shares
_MARKET_SLANG_RE = re.compile("(?:(?<![\uac00-\ud7af])|(?<=이런))([국미])장"
                              "(?=[^\uac00-\ud7af]|$|[은는이을에도과와의]|에서|으로)")
_SHARES_RE = re.compile("주식|증시|코스피|코스닥|종목|주가|개미|투자")
# "K-" for Korean in Korean text: K배터리, K-반도체, K뷰티, K-AI, K-POP; not K자 (K-shaped)
_K_PREFIX_RE = re.compile("(?<![A-Za-z])K(?:-?(?=[\uac00-\ud7af])(?!자(?:형|[^\uac00-\ud7af]|$))"
                          "|-(?=[A-Z]))")
# "Korea" inside a company name counts (LABELING.md): 잡코리아, 코퍼스코리아
_KOREA_IN_NAME_RE = re.compile("(?<=[\uac00-\ud7af])코리아")
# "our country" words count as the outlet's country (LABELING.md): 국내 in Korean,
# 国内 / 我が国 in Japanese, 国内 / 境内 in Chinese; not after another country's name
# (``_foreign_home``). Korean 국내 only as a word of its own (the look-behind sits after the
# first character, so that the engine can skip ahead to where that character occurs)
_HOME = {"ko": (re.compile("국(?<![\uac00-\ud7af].)내"), "KR"),
         "ja": (re.compile("国内|我が国|わが国"), "JP"),
         "zh": (re.compile("国内|境[内內]|國內"), "CN")}


def _press_style(full: str, found: list[Hit]) -> list[Hit]:
    """``found`` with the press styles of LABELING.md the gazetteer cannot express: lone
    one-character abbreviations (Korean and Japanese text), Korean dotted pairs, "K-",
    and "our country" words, each by the script of the text; in Korean, 中企 (small and
    medium firms) is no Chinese firm."""
    script = _script(full)
    if script == "ko":
        found = [hit for hit in found if full[hit.start:hit.end] != "中企"]
    if script == "ja":          # 伊 is Italy in Japanese compounds (日伊), Iran in Chinese
        found = [hit._replace(code="IT") if full[hit.start:hit.end] == "伊" else hit
                 for hit in found if not _japanese_false_friend(full, hit)]
    taken = {i for hit in found for i in range(hit.start, hit.end)}
    hits: list[Hit] = []
    if script in ("ko", "ja"):
        hits += _single_abbreviations(full, script, taken)
    if script == "ko":
        for match in _HANGUL_PAIR_RE.finditer(full):
            hits += [Hit(i, i + 1, _HANGUL_ABBR[full[i]], "")
                     for i in range(match.start(), match.end(), 2) if i not in taken]
        taken.update(hit.start for hit in hits)     # 미 of 한·미 is no lone 미 as well
        hits += _dotted_to_names(full, found, taken)
        taken.update(hit.start for hit in hits)
        hits += [Hit(m.start(1), m.end(1), _HANGUL_ABBR[m.group(1)], "")
                 for m in _HANGUL_ALONE_RE.finditer(full) if m.start(1) not in taken]
        for match in _HANGUL_RU_UA_RE.finditer(full):
            hits += [Hit(match.start(i), match.end(i), code, "")
                     for i, code in ((1, "RU"), (2, "UA")) if match.start(i) not in taken]
        for match in _TOWARD_RE.finditer(full):
            i = 1 if match.group(1) else 2
            if match.start(i) not in taken:
                hits.append(Hit(match.start(i), match.end(i), _TOWARD[match.group(i)], ""))
        hits += [Hit(m.start(), m.end(), "KR", "") for m in _K_PREFIX_RE.finditer(full)]
        hits += [Hit(m.start(1), m.end(1), "KR", "")
                 for m in _STATIONED_IN_KOREA_RE.finditer(full) if m.start(1) not in taken]
        for match in _VISIT_RE.finditer(full):
            i = 1 if match.group(1) else 2
            if match.start(i) not in taken:
                hits.append(Hit(match.start(i), match.end(i), _HANGUL_ABBR[match.group(i)], ""))
        hits += [Hit(m.start(1), m.end(1), _HANGUL_ABBR[m.group(1)], "")
                 for m in _STATIONED_RE.finditer(full) if m.start(1) not in taken]
        hits += [Hit(m.start(1), m.end(1), "KR", "")
                 for m in _TOWARD_SOUTH_RE.finditer(full) if m.start(1) not in taken]
        hits += [Hit(m.start(1), m.end(1), "KR", "")
                 for m in _DAEHAN_RE.finditer(full) if m.start(1) not in taken]
        if _SHARES_RE.search(full):
            hits += [Hit(m.start(1), m.end(1), "KR" if m.group(1) == "국" else "US", "")
                     for m in _MARKET_SLANG_RE.finditer(full) if m.start(1) not in taken]
        hits += [Hit(m.start(), m.end(), "KR", "") for m in _KOREA_IN_NAME_RE.finditer(full)
                 if m.start() not in taken]
    pattern, code = _HOME[script]
    hits += [Hit(m.start(), m.end(), code, "") for m in pattern.finditer(full)
             if m.start() not in taken and not _foreign_home(full, m.start(), taken)]
    return found + hits


def _japanese_false_friend(full: str, hit: Hit) -> bool:
    """In Japanese text: 中日 is the Chunichi Dragons or the Chunichi Shimbun (China and
    Japan are 日中 in Japanese), 米中間選 the US midterms, タイ after 最多 or before 記録 or
    に戻す is a tie (最多タイ, タイ記録, タイに戻す), FC東京 a football club,
    and 河内 is the Kawachi region (河内長野), not Hanoi (ハノイ)."""
    name = full[hit.start:hit.end]
    if name == "中":            # and 米中間選: the US midterm elections (中間, "middle")
        return full.startswith(("日", "間選"), hit.end)
    if name == "日":
        return hit.start > 0 and full[hit.start - 1] == "中"
    if name == "タイ":          # and タイに戻す: to level a series
        return (hit.start > 0 and full[hit.start - 1] in "多高少録界") or full.startswith(
            ("記録", "に戻"), hit.end)
    if name == "東京":          # FC東京, a football club
        return full[:hit.start].endswith("FC")
    return name == "河内"


def _dotted_to_names(full: str, found: list[Hit], taken: set[int]) -> list[Hit]:
    """한·필리핀, 호주·한, 한·아세안: 한, 중 or 일 joined by a middle dot to a country the
    gazetteer found, or to a group of countries."""
    starts = {hit.start for hit in found}
    ends = {hit.end for hit in found}
    hits = []
    for match in _HANGUL_BEFORE_DOT_RE.finditer(full):
        after = match.end()
        if match.start(1) not in taken and (after in starts
                                            or _HANGUL_GROUPS_RE.match(full, after)):
            hits.append(Hit(match.start(1), match.end(1), _HANGUL_ABBR[match.group(1)], ""))
    for match in _HANGUL_AFTER_DOT_RE.finditer(full):
        if match.start() in ends and match.start(1) not in taken:
            hits.append(Hit(match.start(1), match.end(1), _HANGUL_ABBR[match.group(1)], ""))
    return hits


# what makes a following 国内 / 境内 someone else's: the one-character names of other
# countries (俄境内), 双方/各方, 其 ("its"), 国 itself (美国国内, 各国国内, 全国境内), and a
# county's, province's or city's (会泽县境内, 省境内: "within the county", not the country),
# 成员国内政部长 (member states' interior ministers), and 国家 (在这些国家境内, "in these
# countries"; not 家 alone: 25家国内外企业 are domestic);
# 日 and 以 stay out (a date's 5日国内, the preposition 以国内)
_OTHER_BEFORE_HOME = frozenset("国國其俄美乌烏德韩韓英澳印伊朝越泰菲方县縣省市区區州镇鎮乡鄉员員")


def _foreign_home(full: str, start: int, taken: set[int]) -> bool:
    """An "our country" word right after another country's name (日本境内, 叙利亚境内,
    俄境内), after 双方/各方 or 其, or inside a longer 国 word: not the outlet's country."""
    return start > 0 and (start - 1 in taken or full[start - 1] in _OTHER_BEFORE_HOME
                          or full.startswith(("国家", "國家"), start - 2))


def _script(full: str) -> str:
    if _HANGUL_RE.search(full):
        return "ko"
    return "ja" if _KANA_RE.search(full) else "zh"


_SINGLE_RE = {"ko": re.compile(f"[{''.join(_SINGLE_KO)}]"),
              "ja": re.compile(f"[{''.join(_SINGLE_JA)}]")}


_DASHES = frozenset("-‐‑–—―－ｰ")


def _single_abbreviations(full: str, script: str, taken: set[int]) -> list[Hit]:
    table = _SINGLE_KO if script == "ko" else _SINGLE_JA
    hits = []
    accepted: set[int] = set()
    for match in _SINGLE_RE[script].finditer(full):
        pos, char = match.start(), match.group()
        code = table[char]
        if pos in taken:
            continue
        prev = full[pos - 1] if pos else ""
        nxt = full[pos + 1] if pos + 1 < len(full) else ""
        if char == "ロ":    # Russia in Japanese headlines (駐ロ大使, ロ、, ロ軍) as a word of
            # its own: not in a katakana word (ゼロ, ロボット), not Lotte in a baseball score
            # (ロ-楽, 楽－ロ); ロ朝 is Russia and North Korea
            if not (_KATAKANA_RE.match(prev or " ") or _KATAKANA_RE.match(nxt or " ")
                    or prev in _DASHES or nxt in _DASHES):
                accepted.add(pos)
                hits.append(Hit(pos, pos + 1, code, ""))
                if nxt == "朝" and pos + 1 not in taken:
                    hits.append(Hit(pos + 1, pos + 2, "KP", ""))
            continue
        # the second of two abbreviations before a headline word (英仏高速鉄道, 日米金利差)
        # counts as the first did, and so does one after 元 or 前 (元米海兵隊員, 前英首相: a
        # former official of the country)
        in_run = pos - 1 in accepted
        former = script == "ja" and prev in ("元", "前") and char in _JA_WITH_DIRECTION | {"米"}
        if not (in_run or former) and ((prev and _DIGIT_OR_KANJI_RE.match(prev))
                                       or (char == "日" and prev == "の")):
            continue
        if script == "ja" and pos + 1 in taken and _KATAKANA_RE.match(nxt or " "):
            accepted.add(pos)       # before a country in katakana: 日トルコ首脳, 米イラン協議
            hits.append(Hit(pos, pos + 1, code, ""))
            continue
        if char == "台" and prev and _KATAKANA_RE.match(prev):
            continue        # パチンコ台 (a machine), 82ドル台 (a price range): not Taiwan
        if nxt and _KANJI_RE.match(nxt) and (script == "ko" or nxt not in _JA_FOLLOW) and not (
                script == "ja" and ((char == "米" and nxt in _JA_FOLLOW_US)
                                    or (char == "英" and nxt in _JA_FOLLOW_GB)
                                    or (char in _JA_WITH_DIRECTION
                                        and nxt in _JA_FOLLOW_DIRECTION))):
            continue
        if script == "ja" and char == "越" and (prev in _JA_VERB_BEFORE_KOSU
                                                 or nxt in ("え", "し", "す", "せ", "さ")):
            continue        # 乗り越え, 勝ち越し, 引っ越し, 越える: to cross, not Vietnam
        if (script == "ja" and char == "米" and nxt and _KANA_RE.match(nxt)
                and _RICE_RE.search(full)):
            continue
        if script == "ja" and char in _JA_WORDS_ALONE and nxt not in _JA_FOLLOW_ALONE:
            continue        # 猛暑の中, 釣り中, 中3, 島に渡る日も, 加わった
        if script == "ja" and char == "日" and nxt in ("経", "産"):
            continue        # 日経 (Nikkei), 日産 (Nissan): company names
        accepted.add(pos)
        hits.append(Hit(pos, pos + 1, code, ""))
    return hits


# ---------------------------------------------------------------- context rules

def _local_rule_rejects(rule: str, words: _Words, i: int, end: int, gz: Gazetteer) -> bool:
    if rule in ("person", "georgia"):
        return _looks_like_person(words, i, end, gz)
    if rule == "surname":
        return _after_first_name(words, i)
    if rule == "hollande":
        return i == 0 or words.keys[i - 1] not in _FRENCH_BEFORE_COUNTRY
    if rule == "dateline":
        return not _is_dateline(words, i, end)
    if rule == "us-caps":
        return _pronoun_us(words, i) or words.full.startswith("$", words.span(i)[1])
    if rule == "german":
        return len(_GERMAN_WORDS.intersection(words.keys)) < 3
    if rule == "polish":
        return not _reads_polish(words, i)
    if rule == "given-name":
        return _looks_like_person(words, i, end, gz) or _named_person(words, i, end, gz)
    if rule == "america":
        return not words.text(i).isascii()
    return False


# Common German words, folded as the tokens' keys are ("für" -> "fur"; not "uber", the
# company, nor "am" or "an", which English has): two of them make a text German for the
# compound rule, three for "Island".
_GERMAN_WORDS = frozenset("und der die das nicht mit von fur ist ein eine den dem auf im beim "
                          "zum zur sich auch nach bei einen wird sind keinen vom".split())
_GERMAN_PLACE_PREPOSITIONS = frozenset(("in", "nach", "aus"))


def _looks_german(words: _Words) -> bool:
    return len(_GERMAN_WORDS.intersection(words.keys)) >= 2


_POLISH_LETTERS = re.compile("[ąćęłńśźżĄĆĘŁŃŚŹŻ]")
# Polish words that English and German text does not use (not "do", "na", "w"; not "ich"
# nor "sie", German words, the latter "się" without its letter)
_POLISH_WORDS = frozenset("z ze dla od przez wobec oraz jest nie jak po".split())
_POLISH_BEFORE = frozenset("z ze do od dla przez wobec".split())


def _reads_polish(words: _Words, i: int) -> bool:
    """Polish letters, a Polish preposition right before ("z Chin", "do Chin"), or two
    Polish function words: a headline may have no letter with a diacritic."""
    if _POLISH_LETTERS.search(words.full) or (i and words.keys[i - 1] in _POLISH_BEFORE):
        return True
    return len(_POLISH_WORDS.intersection(words.keys)) >= 2


_TITLES = frozenset(("rep", "sen", "dr", "gov", "mr", "mrs", "ms", "coach", "ceo"))
# capitalised words before a country name that are no first name ("Lake Chad")
_PLACE_WORDS = frozenset("lake north south east west northern southern eastern western central "
                         "upper lower greater kingdom republic hashemite "
                         # the last words of countries of two or more words ("Saudi Arabia")
                         "arabia africa zealand states emirates leone lanka rica salvador timor "
                         "guinea islands coast verde faso herzegovina marino".split())


def _named_person(words: _Words, i: int, end: int, gz: Gazetteer) -> bool:
    """"Jim Jordan", "Rep. Jordan", "Jordan B. Peterson": a first name or a title right
    before (outside title-case lines, where every word is capitalised), or an initial
    right after. Not after another country or place ("Egypt Jordan and Iraq", "Libya Chad
    border", "Lake Chad")."""
    if end < len(words.keys) and words.gap(end - 1) == " ":
        initial = words.text(end)
        if len(initial) == 1 and initial.isupper() and words.full.startswith(".", words.span(end)[1]):
            return True
    if i and words.keys[i - 1] in _TITLES and words.gap(i - 1) in (" ", ". "):
        return True
    if not _after_first_name(words, i):
        return False
    before = words.keys[i - 1]
    if before in gz.words or before in _PLACE_WORDS:
        return False
    return not _title_case_line(words, i, min(end, len(words.keys) - 1))


# "la Hollande", "en Hollande", "de Hollande", "vers la Hollande"; without one of these
# before it, "Hollande" is the former French president ("Sarkozy, Hollande and Macron")
_FRENCH_BEFORE_COUNTRY = frozenset(("la", "en", "de"))
_LOWER_FUNCTION_WORDS = frozenset("la le les l en de du des the in and et und a".split())
_DATELINE_AFTER = re.compile(r"\s*(?:\([^)\n]{0,40}\)\s*)?(?:[-\u2013\u2014,:]|\()")


def _after_first_name(words: _Words, i: int) -> bool:
    """"Francois Hollande": a capitalised word right before, not an article."""
    if i == 0 or words.gap(i - 1) != " ":
        return False
    before = words.text(i - 1)
    return (before[0].isupper() and not before.isupper()
            and words.keys[i - 1] not in _LOWER_FUNCTION_WORDS)


def _is_dateline(words: _Words, i: int, end: int) -> bool:
    """"BRÜSSEL (dpa) -", "Brussels, Oct 3": at the start of a line or sentence, then a
    dash, comma, colon or bracket. Elsewhere "Brussels" means the EU institutions."""
    begin = words.span(i)[0]
    if _DATELINE_AFTER.match(words.full, words.span(end - 1)[1]) is None:
        return False
    start, _stop = _line_bounds(words.full, begin)
    before = words.full[start:begin]
    if len(before) <= 40 and not any(c.isupper() for c in before):
        return True
    return before.rstrip().endswith((".", "|", "!", "?"))


def _looks_like_person(words: _Words, i: int, end: int, gz: Gazetteer) -> bool:
    """"Chad Smith", "Washington Post": a capitalised word follows after one space.

    Not in German text after "in", "nach" or "aus", where every noun is capitalised: "in
    Washington Gespräche" is the place.
    """
    if end >= len(words.keys) or words.gap(end - 1) != " ":
        return False
    if i and words.keys[i - 1] in _GERMAN_PLACE_PREPOSITIONS and _looks_german(words):
        return False
    nxt, key = words.text(end), words.keys[end]
    if not nxt[0].isupper() or nxt.isupper() or key in _NOT_SURNAMES or key in gz.words:
        return False
    return not _title_case_line(words, i, end)


def _line_bounds(full: str, pos: int) -> tuple[int, int]:
    start = full.rfind("\n", 0, pos) + 1
    stop = full.find("\n", pos)
    return start, len(full) if stop < 0 else stop


def _title_case_line(words: _Words, i: int, end: int) -> bool:
    """Most other words of four letters or more in this line are capitalised."""
    start, stop = _line_bounds(words.full, words.span(i)[0])
    skip = range(words.span(i)[0], words.span(end)[1])
    others = [m.group() for m in TOKEN_RE.finditer(words.full, start, stop)
              if len(m.group()) >= 4 and m.start() not in skip]
    capitalised = sum(1 for w in others if w[0].isupper())
    return len(others) >= 3 and capitalised >= 0.8 * len(others)


def _after_at_the(words: _Words, i: int) -> bool:
    """"at the Emirates": the two words before token i are "at the", one space apart."""
    return (i >= 2 and words.keys[i - 1] == "the" and words.keys[i - 2] == "at"
            and words.gap(i - 2) == " " and words.gap(i - 1) == " ")


def _pronoun_us(words: _Words, i: int) -> bool:
    """"LET US", "JOIN US TODAY" in an all-caps line: the pronoun, not the country.

    After a verb such as LET or JOIN it is always the pronoun; after a preposition
    (ABOUT, WITH) only when no noun follows ("ABOUT US TARIFFS" is the country).
    """
    start, stop = _line_bounds(words.full, words.span(i)[0])
    if i == 0 or not words.full[start:stop].isupper():
        return False
    before = words.keys[i - 1]
    if before in _PRONOUN_VERBS:
        return True
    after = words.keys[i + 1] if i + 1 < len(words.keys) else ""
    return before in _PRONOUN_PREPOSITIONS and (not after or after in _AFTER_PRONOUN)


_DOC_RULES = frozenset(("georgia", "georgia-cjk", "korea", "turkey", "emirates"))


def _doc_rules(hits: list[Hit]) -> list[Hit]:
    """Rules that need the whole text: georgia, korea, turkey, emirates."""
    rules = {h.rule for h in hits if h.rule}
    if not rules & _DOC_RULES:
        return hits
    plain = {h.code for h in hits if h.code and h.rule not in _DOC_RULES}
    drop: set[str] = set()
    if "georgia-cjk" in rules and "GE" not in plain:
        drop.add("georgia-cjk")
    if "georgia" in rules and ("US" in plain or "cue:us" in rules) and "GE" not in plain \
            and "cue:ge" not in rules:
        drop.add("georgia")
    if "korea" in rules and "KP" in plain and "KR" not in plain:
        drop.add("korea")
    if "turkey" in rules and "cue:turkey" in rules and "TR" not in plain:
        drop.add("turkey")
    if "emirates" in rules and "cue:emirates" in rules and "AE" not in plain:
        drop.add("emirates")
    return [h for h in hits if h.rule not in drop]
