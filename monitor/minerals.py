"""Minerals an article names: canonical ids with counts and spans.

``extract_minerals(title, text)`` finds the names listed in ``monitor/data/minerals.tsv``
(EN, DE, FR, ES, PL, IT, PT, NL, JA, ZH, KO) and returns one ``Mention`` per canonical id
(``rare-earths``, ``lithium``, ``platinum-group-metals``, ``critical-minerals`` ...), sorted
by id, with spans into ``title + "\\n" + text``. Matching is case-insensitive on word
boundaries for scripts written with spaces (a space in a name also matches a hyphen:
"rare-earth"), case-sensitive for abbreviations (REE, PGM, NdFeB), and by substring for
Chinese, Japanese and Korean. German compounds are found from their first part
("Lithiumabbau", "Seltenerdmetalle"). Where names overlap, the longest wins.

False friends: the rule
  A name counts when it names the material or its supply chain. It does not count when
  the word names something else made of or named after it:
  1. a colour: "graphite grey", "gris graphite", "Graphitgrau", "cobalt blue",
     "copper-coloured";
  2. the battery chemistry of a product: "lithium-ion", "Lithium-Ionen", "iones de litio",
     "锂电池", "リチウムイオン電池" (a gadget with a lithium-ion battery is not lithium
     news; lithium carbonate, a lithium mine or the lithium price are);
  3. a grade, award or finish: "platinum album", "went platinum", "platinum card",
     "titanium frame", "titanium grey", an iPhone in titanium;
  4. a dietary supplement: "magnesium supplement", "zinc tablets";
  5. a household object: "tin can", "tin foil"; "TIN" in capitals is a tax number;
  6. a place, brand or person: 无锡 (Wuxi) and 铜陵 are cities, "Silicon Valley",
     "Nickelodeon", "Wolfram Research", "Wolfram" followed by a surname;
  7. a bronze medal (铜牌, 銅メダル);
  8. a compound or product named after it: 钙钛矿 (perovskite), 铌酸锂 (lithium niobate
     crystals), 奥沙利铂 (a drug), "80 Plus Platinum" power supplies, "Xeon Platinum";
  9. a German name read in English: "Titan" (the submersible, a giant), "Mangan" and "Uran"
     capitalised (a surname) do not count in English text; and the German "Platine" (a
     circuit board), which is the French word for platinum: capitalised, it counts only in
     text that looks French.
  Plain "magnet(s)" never counts (fridge magnets, "a magnet for investors"); only named
  kinds do: permanent, rare-earth or neodymium magnets, NdFeB, "Seltenerdmagnete".
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from monitor.types import Mention

TABLE_FILE = Path(__file__).parent / "data" / "minerals.tsv"

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff"
_SEPARATOR = r"[\s\-\u2010\u2011]+"
_LETTER_CLASS = r"[^\W\d_]"            # a letter: a word character, not a digit or "_"
_WORD_BEFORE = f"(?<!{_LETTER_CLASS})"
_WORD_AFTER = f"(?!{_LETTER_CLASS})"

# (ids, text right after the name, text right before it): a match of either pattern
# means the name is a false friend here (see the module docstring).
_FALSE_FRIENDS: tuple[tuple[frozenset[str], str | None, str | None], ...] = (
    (frozenset({"graphite"}), r"[\s-]*(?:gr[ae]y|colou?rs?|finish|black|metallic|case|accents?)\b",
     r"\b(?:gris|colou?r)\s+$"),
    (frozenset({"lithium"}), r"[\s-]*(?:ion|ionen|polymer|polym[eè]re|iones|jon)",
     r"\b(?:iones|ions?|íons)\s+(?:de\s+)?$"),
    (frozenset({"cobalt"}), r"[\s-]*(?:blue|blau|bleu|azul|blu|sky|skies)\b", r"\b(?:bleu|azul|blu)\s+$"),
    (frozenset({"copper"}), r"[\s-]*(?:colou?red|tones?|toned|hair(?:ed)?)\b", None),
    (frozenset({"platinum-group-metals"}),
     r"[\s-]*(?:records?|albums?|discs?|status|cards?|members?|membership|editions?|blonde|"
     r"jubilee|certif\w*|sponsors?|tier|plan|package|level|award|singles?|(?<=-)selling|"
     r"troph(?:y|ies)|voiced|stimme|bombshell|games|collection|earner|trim|heart|party|style|"
     r"psus?|power\s+suppl(?:y|ies)|fully\s+modular|rgb|\d+\s?(?:gb|tb|w))\b",
     r"\b(?:went|goes|go|gone|got|turned|certified|triple|double|multi)[\s-]+$"
     r"|(?:80\s?(?:\+|plus)|\b\d+\s?w|\bultra|\bdominator|\bxeon|\bpok[eé]mon|\binland)\s+$"),
    (frozenset({"magnesium", "zinc"}),
     r"[\s-]*(?:supplements?|tablets?|citrate|glycinate|deficiency|mangel|tabletten|pills?)",
     None),
    (frozenset({"titanium"}),
     r"[\s-]*(?:frames?|case|body|finish|design|edition|gr[ae]y|colou?r|bezel|chassis|"
     r"shell|black|white|blue|natural|watch|build|psus?|power\s+suppl(?:y|ies)|fully\s+modular|"
     r"\d+\s?w)\b",
     r"\b(?:iphone|pixel|galaxy|watch)\b[^.\n]{0,40}$"
     r"|(?:80\s?(?:\+|plus)|\b\d+\s?w|\bultra)\s+$"),
    (frozenset({"tin"}), r"[\s-]*(?:cans?|foil|hats?|roofs?|man|whistle|soldiers?|eared)\b",
     r"\b(?:says\s+on\s+the|roasting|baking|cake|loaf|muffin|biscuit)\s+$"),
)
# German (and Polish) names that are other words in English text: "Titan" (the submersible,
# a graphics card; "titan", a giant), "Mangan" and "Uran" capitalised (a surname, the planet).
# In English-looking text they are not the metal; elsewhere they are, short headlines too
# ("China beschränkt Export von Titan", "Uran drożeje"), except "Titan" after a hyphen
# ("Pop-Titan", "Saturn-Mond Titan") or a guillemet ("»Titan«", the submersible).
_NOT_IN_ENGLISH = {"titan": "any case", "mangan": "capitalised", "uran": "capitalised"}
_ENGLISH_FUNCTION_WORDS = frozenset("the of and to is for with was are that from by has have "
                                    "its this were will".split())
_WORDS = re.compile(r"[^\W\d_]+")
# French "platine" is the metal; German "Platine" (capitalised, as German writes every noun)
# is a circuit board. A capitalised "Platine" counts only in text that looks French.
_FRENCH_FUNCTION_WORDS = frozenset("le la les du et est pour dans une sur au aux avec par "
                                   "qui que selon".split())


def _names_the_metal(full: str, start: int, surface: str) -> bool:
    """Whether ``surface`` (one of ``_NOT_IN_ENGLISH``) names the metal here."""
    if _NOT_IN_ENGLISH[surface.casefold()] == "capitalised" and not surface[0].isupper():
        return True                         # Polish "uran", "mangan"
    if surface.casefold() == "titan" and (full[start - 1:start] in ("-", "»", "«")
                                          or full[max(0, start - 11):start] == "Saturn-Mond "):
        return False
    found = _ENGLISH_FUNCTION_WORDS.intersection(_WORDS.findall(full.lower()))
    return len(found) < 2


_COMPILED_FRIENDS = tuple(
    (ids, re.compile(after, re.I) if after else None,
     re.compile(before, re.I) if before else None)
    for ids, after, before in _FALSE_FRIENDS
)
_SURNAME_AFTER = re.compile(r" [A-Z][a-z]")


@dataclass(frozen=True)
class _Table:
    """The parsed name table and the patterns built from it."""

    by_form: dict[str, str]          # folded form -> ids ("rare-earths+magnets", "-")
    prefixes: dict[str, str]         # compound first part as written -> ids
    names: dict[str, str]            # id -> English display name
    patterns: _Patterns


@dataclass(frozen=True)
class _Patterns:
    """The forms as regular expressions, in the order their matches are collected.

    Python's engine finds no first character to skip ahead to when a pattern starts with a
    look-behind (or matches any case), so it tries the whole pattern at every position:
    the forms written in any case are matched in the lower-cased text (``spaced``; the
    text as it is, any case, only where lower-casing changes its length), and the exact and
    compound-prefix forms without the word-start look-behind, which ``_at_word_starts``
    checks on each match instead (a third of the time on news text, same matches)."""

    spaced: re.Pattern[str]          # forms in lower case, word start and end; lowered text
    spaced_any_case: re.Pattern[str]  # the same, any case, for the text as it is
    exact: re.Pattern[str]           # case-sensitive forms ("REE", "PGM"); word end only
    prefix: re.Pattern[str]          # compound first parts with a letter after; no start
    cjk: re.Pattern[str]             # forms in scripts without spaces, as substrings


# ---------------------------------------------------------------- public API

def extract_minerals(title: str, text: str) -> list[Mention]:
    """Minerals named in an article, sorted by id; spans index ``title + "\\n" + text``."""
    full = f"{title}\n{text}"
    spans: dict[str, list[tuple[int, int]]] = {}
    for start, end, ids in _resolve(_candidates(full, _table())):
        if ids == "-" or _false_friend(full, start, end, ids):
            continue
        for mineral in ids.split("+"):
            spans.setdefault(mineral, []).append((start, end))
    _drop_vague_general(full, spans)
    return [Mention(mineral, len(found), tuple(found)) for mineral, found in sorted(spans.items())]


_VAGUE_GENERAL = re.compile(
    r"(?:blut)?rohstoff(?!-?(?:deal|abkommen|partnerschaft|strategie|liste|politik|sicherung))"
    r"|광물(?!\s?(?:공급망|협력|동맹|협정|안보))",
    re.IGNORECASE)


def _drop_vague_general(full: str, spans: dict[str, list[tuple[int, int]]]) -> None:
    """German "Rohstoff(e)" and Korean bare 광물 beside a named mineral are that mineral
    ("Begehrter Rohstoff: Lithium ...", "Knappe Rohstoffe: ... Seltene Erden", "희토류 …
    금속·광물株"), so the general id then keeps only its unambiguous forms (핵심광물,
    kritische Rohstoffe) and the policy compounds (Rohstoff-Deal, Rohstoffabkommen,
    Rohstoffpartnerschaft, Rohstoffstrategie, 광물 공급망, 광물 협력): those name raw
    materials as a set."""
    general = spans.get("critical-minerals")
    if not general or len(spans) == 1:
        return
    kept = [(a, b) for a, b in general if not _VAGUE_GENERAL.match(full, a)]
    if kept:
        spans["critical-minerals"] = kept
    else:
        del spans["critical-minerals"]


def mineral_name(mineral_id: str) -> str:
    """English display name of a canonical id ("rare-earths" -> "rare earths")."""
    return _table().names.get(mineral_id, mineral_id)


def mineral_ids() -> tuple[str, ...]:
    """Every canonical id the table knows, sorted."""
    return tuple(sorted(_table().names))


# ---------------------------------------------------------------- table

@lru_cache(maxsize=1)
def _table() -> _Table:
    return parse_table(TABLE_FILE.read_text(encoding="utf-8"))


def parse_table(text: str) -> _Table:
    """Build the lookup dictionaries and patterns from the TSV text."""
    by_form: dict[str, str] = {}
    prefixes: dict[str, str] = {}
    names: dict[str, str] = {}
    exact: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.startswith("#"):
            continue
        fields = raw.split("\t")
        if fields[0] == "@name":
            if len(fields) != 3 or "|" in fields[2]:
                raise ValueError(f"minerals.tsv line {number}: a display name line is "
                                 "@name <TAB> id <TAB> one English name")
            names[fields[1]] = fields[2]
            continue
        ids, forms = fields[0], fields[1].split("|")
        flags = set(fields[2].split(",")) if len(fields) > 2 else set()
        for form in forms:
            if "prefix" in flags:
                prefixes[form] = ids
                continue
            _add_form(by_form, _fold(form), ids, number)
            if "exact" in flags:
                exact.append(form)
    return _Table(by_form, prefixes, names, _patterns(by_form, prefixes, exact))


def _add_form(by_form: dict[str, str], key: str, ids: str, number: int) -> None:
    if by_form.get(key, ids) != ids:
        raise ValueError(f"minerals.tsv line {number}: {key!r} is already {by_form[key]}")
    by_form[key] = ids


def _fold(form: str) -> str:
    return re.sub(_SEPARATOR, " ", form.strip()).casefold()


def _alternation(forms: list[str]) -> str:
    """One regular expression matching any of ``forms`` (a space or hyphen in a form matches
    any run of separators), the longest where several match at one place.

    Written as a trie (``lith(?:ium(?:…)?|…)``), not as a flat list of alternatives: Python's
    engine tries a flat list's alternatives one by one at every position of the text, a
    trie fails after the first character that no form continues with (ten times faster on
    news text with ~400 forms)."""
    trie: dict = {}
    for form in set(forms):
        node = trie
        for char in form:
            node = node.setdefault(_SEPARATOR if char in " -" else re.escape(char), {})
        node[""] = {}                                   # a form ends here
    return _trie_pattern(trie)


def _trie_pattern(node: dict) -> str:
    ends = "" in node
    branches = [atom + _trie_pattern(child) for atom, child in sorted(node.items()) if atom]
    if not branches:
        return ""
    body = branches[0] if len(branches) == 1 and not ends else f"(?:{'|'.join(branches)})"
    return f"{body}?" if ends else body


def _patterns(by_form: dict[str, str], prefixes: dict[str, str],
              exact: list[str]) -> _Patterns:
    cjk = [f for f in by_form if re.match(f"[{_CJK}]", f)]
    exact_keys = {_fold(f) for f in exact}
    forms = [f for f in by_form if f not in exact_keys and f not in cjk]
    spaced = f"{_WORD_BEFORE}(?:{_alternation(forms)}){_WORD_AFTER}"
    return _Patterns(
        spaced=re.compile(spaced),
        spaced_any_case=re.compile(spaced, re.I),
        exact=re.compile(f"(?:{_alternation(exact)}){_WORD_AFTER}"),
        prefix=re.compile(f"(?P<prefix>{_alternation(list(prefixes))}){_LETTER_CLASS}+"),
        cjk=re.compile(_alternation(cjk)),
    )


# ---------------------------------------------------------------- matching

def _candidates(full: str, table: _Table) -> list[tuple[int, int, str]]:
    patterns = table.patterns
    lowered = full.lower()
    spaced = (patterns.spaced.finditer(lowered) if len(lowered) == len(full)
              else patterns.spaced_any_case.finditer(full))
    by_form = table.by_form
    found = [(m.start(), m.end(), by_form[_fold(m.group())]) for m in spaced]
    found += [(m.start(), m.end(), by_form[_fold(m.group())])
              for m in _at_word_starts(patterns.exact, full)]
    found += [(m.start(), m.end(), table.prefixes[m.group("prefix")])
              for m in _at_word_starts(patterns.prefix, full)]
    found += [(m.start(), m.end(), by_form[_fold(m.group())])
              for m in patterns.cjk.finditer(full)]
    return found


_LETTER = re.compile(_LETTER_CLASS)


def _at_word_starts(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """``pattern``'s matches that start a word (as ``_WORD_BEFORE`` would require),
    found like ``finditer``: a match inside a word is dropped and the search goes on from
    the next character."""
    pos = 0
    while (match := pattern.search(text, pos)) is not None:
        start = match.start()
        if start and _LETTER.match(text, start - 1):
            pos = start + 1
            continue
        yield match
        pos = max(match.end(), start + 1)


def _resolve(found: list[tuple[int, int, str]]) -> list[tuple[int, int, str]]:
    """Keep the longest of overlapping matches, leftmost first."""
    kept: list[tuple[int, int, str]] = []
    for start, end, ids in sorted(found, key=lambda m: (m[0], -(m[1] - m[0]))):
        if kept and start < kept[-1][1]:
            continue
        kept.append((start, end, ids))
    return kept


def _false_friend(full: str, start: int, end: int, ids: str) -> bool:
    surface = full[start:end]
    if ids == "tin" and surface.isupper():
        return True
    if surface == "Platine" and len(_FRENCH_FUNCTION_WORDS.intersection(
            _WORDS.findall(full.lower()))) < 2:
        return True
    if surface.casefold() in _NOT_IN_ENGLISH and not _names_the_metal(full, start, surface):
        return True
    if ids == "tungsten" and surface[0].isupper() and _SURNAME_AFTER.match(full, end):
        return True
    after, before = full[end:end + 40], full[max(0, start - 60):start]
    for mineral_ids, after_re, before_re in _COMPILED_FRIENDS:
        if ids not in mineral_ids:
            continue
        if (after_re and after_re.match(after)) or (before_re and before_re.search(before)):
            return True
    return False
