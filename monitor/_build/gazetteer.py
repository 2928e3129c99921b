"""Build the country gazetteer ``monitor/data/countries.json`` from CLDR and the alias table.

    python -m monitor._build.gazetteer           # rewrite the data file
    python -m monitor._build.gazetteer --check   # exit 1 when the shipped file is stale

``--check`` rebuilds and compares the whole file when the installed Babel is the one
recorded in the file's header. With another Babel version CLDR itself may differ, so it
compares the recipe hash instead (alias table, this builder, the runtime's tokenizer and
folding) and says that the CLDR part was not re-verified: editing the alias table or the
normalisation without rebuilding always fails the check.

Building from Babel costs about a second and 200 MB, so it happens here, ahead of time;
``monitor.countries`` only reads the result. Sources:

* CLDR territory names in every locale Babel carries. Kept: ISO 3166-1 alpha-2 codes
  only. Dropped: numeric macro-regions (001 World, 150 Europe, 419 Latin America ...);
  EU, EZ and UN (organisations, not countries); QO and ZZ (Outlying Oceania, Unknown
  Region); XA and XB (pseudo-locales); the exceptionally reserved AC, CP, CQ, DG, EA, IC
  and TA, which name parts of other countries (the Canary Islands are Spain's); AQ,
  Antarctica, a continent (LABELING.md: regions are not countries).
* Per name: "Myanmar (Burma)" gives "Myanmar" and, as a secondary name, "Burma"; a
  secondary name never overrides another country's primary name (so "SRA Hongkong
  (Chiny)" does not turn "Chiny" into Hong Kong). Dropped as unsafe: a name that two codes
  share across locales ("Kongo" is CD in one locale and CG in another; "Nigeri"); names
  shorter than 4 letters in scripts written with spaces (Russian "Чад", Turkish "Çin" are
  also ordinary syllables), shorter than 2 characters in CJK/Hangul or 3 in Thai and
  similar scripts; Korean names with spaces (the Korean scan works within one word);
  names led by a short lower-case article or preposition ("i Afghanistan", "ma Aja":
  the bare name is there too, and the article would make every "i" a candidate); and
  the ``@deny`` names of the alias table (common words such as German "Island").
* Morphology generated for CLDR names: German genitive -s ("Chinas", "Nordkoreas") and
  weak adjective endings in multi-word names ("Vereinigten Staaten"); Polish case forms
  of feminine -a names and masculine names ("Japonii", "Koreą Południową", "Iranie").
  One-word German names are also listed as heads of closed compounds ("Irankrieg",
  "Russlandsanktionen"); the runtime decides when a long word starts with one.
* A CLDR name written in lower case in its locale still needs a capital in the text
  (otherwise "salas", "laws" or "komora" would be countries in any text).
* ``monitor/data/country_aliases.tsv`` (format in its header) overrides CLDR: an alias
  with the same key replaces the CLDR entry.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from monitor import countries
from monitor.countries import (
    DATA_FILE,
    fold,
    is_substring_script,
    name_key,
    tokens,
)

ALIAS_FILE = Path(__file__).resolve().parents[1] / "data" / "country_aliases.tsv"
EXCLUDED_CODES = frozenset("EU EZ UN QO ZZ XA XB AC CP CQ DG EA IC TA AQ".split())
DISPLAY_LOCALES = ("en", "de", "fr", "es", "it", "pt", "pl", "nl", "zh", "zh_Hant", "ja", "ko")
_MODE_RANK = {"e": 0, "l": 1, "c": 1, "a": 2}
_PAREN_RE = re.compile(r"\s*[(（]\s*|\s*[)）]\s*")
_UNSPACED_SHORT = re.compile("[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff]")


class BuildError(Exception):
    """The alias table is inconsistent (one key, two countries)."""


@dataclass(frozen=True)
class Entry:
    code: str          # "" for a blocker
    mode: str          # e exact, c capitals as written, l lower case, a any case, s substring
    rule: str          # rule name, "cue:NAME" or ""
    case: str          # exact: the form's tokens; capitals: one 0/1 flag per token


# ---------------------------------------------------------------- CLDR

def cldr_names() -> dict[str, dict[str, str]]:
    """{locale: {code: name}} for every Babel locale, countries and territories only."""
    from babel import Locale, localedata

    result: dict[str, dict[str, str]] = {}
    for ident in sorted(localedata.locale_identifiers()):
        territories = Locale.parse(ident).territories
        result[ident] = {code: name for code, name in territories.items()
                         if _is_country_code(code)}
    return result


def _is_country_code(code: str) -> bool:
    return len(code) == 2 and code.isalpha() and code.isupper() and code not in EXCLUDED_CODES


def split_name(name: str) -> tuple[str, list[str]]:
    """("Myanmar (Burma)") -> ("Myanmar", ["Burma"])."""
    parts = [p for p in _PAREN_RE.split(name) if p.strip()]
    return parts[0].strip(), [p.strip() for p in parts[1:]]


def inflected_forms(locale: str, name: str) -> set[str]:
    """The name plus generated inflections for German and Polish locales."""
    language = locale.split("_")[0]
    if language == "de":
        return german_forms(name)
    if language == "pl":
        return polish_forms(name)
    return {name}


def german_forms(name: str) -> set[str]:
    """"China" -> Chinas; "Vereinigte Staaten" -> Vereinigten Staaten."""
    words = name.split(" ")
    forms = {name}
    if len(words) > 1:
        weak = [w[:-2] + "en" if w.endswith("es") else w + "n" if w.endswith("e") else w
                for w in words[:-1]]
        forms.add(" ".join(weak + words[-1:]))
    for form in list(forms):
        if form[-1].isalpha() and form[-1] not in "sßxzSXZ":
            forms.add(form + "s")
    return forms


# ---------------------------------------------------------------- Polish morphology

_PL_LOCATIVE = (("ch", "sze"), ("k", "ce"), ("g", "dze"), ("t", "cie"), ("d", "dzie"),
                ("r", "rze"), ("ł", "le"), ("n", "nie"), ("m", "mie"), ("w", "wie"),
                ("b", "bie"), ("p", "pie"), ("f", "fie"), ("s", "sie"), ("z", "zie"),
                ("l", "li"), ("ż", "y"))
_PL_HARD_END = ("k", "g", "ch", "l", "j", "sz", "cz", "rz", "ż", "c", "dz")
_PL_ADJ_ENDINGS = ("ska", "cka", "dzka", "owa", "wa", "na", "lka")
_PL_CASES = ("gen", "loc", "acc", "ins")


def _pl_soften(stem: str) -> str:
    for ending, replacement in _PL_LOCATIVE:
        if stem.endswith(ending):
            return stem[: -len(ending)] + replacement
    return stem + "e"


def pl_feminine_noun(word: str) -> dict[str, str]:
    """Case forms of a feminine noun in -a: Japonia, Rosja, Korea, Kanada, Polska."""
    stem = word[:-1]
    if word.endswith(("ia", "ja", "ea", "ua")):
        oblique = stem + "i"
        return {"gen": oblique, "loc": oblique, "acc": stem + "ę", "ins": stem + "ą"}
    genitive = stem + ("i" if stem.endswith(("k", "g", "j", "l")) else "y")
    return {"gen": genitive, "loc": _pl_soften(stem), "acc": stem + "ę", "ins": stem + "ą"}


def pl_feminine_adjective(word: str) -> dict[str, str]:
    """Południowa -> Południowej, Południową; Wielka -> Wielkiej."""
    stem = word[:-1]
    oblique = stem + ("iej" if stem.endswith(("k", "g")) else "ej")
    return {"gen": oblique, "loc": oblique, "acc": stem + "ą", "ins": stem + "ą"}


def pl_masculine_noun(word: str) -> list[str]:
    """Iran -> Iranu, Iranowi, Iranem, Iranie; Irak -> Iraku, Irakiem."""
    instrumental = word + ("iem" if word.endswith(("k", "g")) else "em")
    locative = word + "u" if word.endswith(_PL_HARD_END) else _pl_soften(word)
    return [word + "u", word + "a", word + "owi", instrumental, locative]


def _pl_is_adjective(word: str, position: int) -> bool:
    """In two-word names the adjective follows ("Korea Południowa") except Wielka, Nowa."""
    if position == 0:
        return word.endswith(("lka", "wa"))
    return word.endswith(_PL_ADJ_ENDINGS)


def polish_forms(name: str) -> set[str]:
    """Nominative plus generated case forms for one- and two-word Polish names."""
    words = name.split(" ")
    forms = {name}
    if len(words) == 1 and "-" not in name:
        if name.endswith("a"):
            forms.update(pl_feminine_noun(name).values())
        elif name[-1] not in "aeiouyó" and name[-1].isalpha():
            forms.update(pl_masculine_noun(name))
        elif name.endswith("ś"):
            forms.update({name[:-1] + "si", name[:-1] + "sią"})
    elif len(words) == 2 and all(w.endswith("a") for w in words):
        declined = [pl_feminine_adjective(w) if _pl_is_adjective(w, i) else pl_feminine_noun(w)
                    for i, w in enumerate(words)]
        for case in _PL_CASES:
            forms.add(" ".join(d[case] for d in declined))
    return forms


# ---------------------------------------------------------------- alias table flags

def expand_flagged(form: str, flags: set[str]) -> set[str]:
    """All spellings an alias line's flags generate from one form."""
    forms = {form}
    endings = {
        "en-dem": ("", "s"),
        "de-adj": ("", "e", "en", "er", "es", "em"),
        "de-dem": ("", "n", "in", "innen", "s"),
    }
    for flag, suffixes in endings.items():
        if flag in flags:
            forms.update(form + s for s in suffixes)
    if "de-adj" in flags and " " not in form:
        forms.update(p + f for p in ("pro", "anti") for f in list(forms))
    if "de-noun" in flags:
        forms.update(german_forms(form))
    if "pl-noun" in flags:
        forms.update(polish_forms(form))
    for flag, expand in _ROMANCE.items():
        if flag in flags:
            forms.update(expand(form))
    if "pl-adj" in flags and " " not in form:
        declined = polish_adjective(form) | {form[:-1] + "o"}   # chińsko-amerykański
        forms.update(declined)
        forms.update(p + f for p in ("pro", "anty") for f in declined)
    return forms


def french_adjective(word: str) -> set[str]:
    forms = {word, word + "s"}
    if not word.endswith("e"):
        forms.update({word + "e", word + "es"})
    if word.endswith("en"):
        forms.update({word + "ne", word + "nes"})
    return forms


def spanish_adjective(word: str) -> set[str]:
    if word.endswith("o"):
        return {word[:-1] + e for e in ("o", "a", "os", "as")}
    for accented, plain in (("és", "es"), ("án", "an"), ("ín", "in")):
        if word.endswith(accented):
            stem = word[: -len(accented)] + plain
            return {word, stem + "a", stem + "es", stem + "as"}
    if word.endswith(("e", "a")):
        return {word, word + "s"}
    if word.endswith("í"):
        return {word, word + "es", word + "s"}
    return {word, word + "a", word + "es", word + "as"}


def italian_adjective(word: str) -> set[str]:
    if word.endswith("o"):
        return {word[:-1] + e for e in ("o", "a", "i", "e")}
    return {word, word[:-1] + "i"} if word.endswith("e") else {word}


def portuguese_adjective(word: str) -> set[str]:
    if word.endswith("o") and not word.endswith("ão"):
        return {word[:-1] + e for e in ("o", "a", "os", "as")}
    if word.endswith("ês"):
        stem = word[:-2] + "es"
        return {word, stem + "a", stem + "es", stem + "as"}
    if word.endswith("ão"):
        stem = word[:-2]
        return {word, stem + "ã", stem + "ães", stem + "ãs"}
    return {word, word + "s"}


_ROMANCE = {"fr-adj": french_adjective, "es-adj": spanish_adjective,
            "it-adj": italian_adjective, "pt-adj": portuguese_adjective}


def _polish_virile(word: str) -> str:
    """Masculine personal plural: chiński -> chińscy, niemiecki -> niemieccy."""
    for ending, replacement in (("ski", "scy"), ("cki", "ccy"), ("dzki", "dzcy"),
                                ("ki", "cy"), ("gi", "dzy")):
        if word.endswith(ending):
            return word[: -len(ending)] + replacement
    return word


def polish_adjective(word: str) -> set[str]:
    """chiński -> chińska, chińskie, chińskiego, chińskiej, ..., chińską."""
    stem = word[:-1]
    if word.endswith("i"):
        return {stem + e for e in ("i", "a", "ie", "iego", "iej", "iemu", "im", "ich",
                                   "imi", "ą")} | {_polish_virile(word)}
    return {stem + e for e in ("y", "a", "e", "ego", "ej", "emu", "ym", "ych", "ymi", "ą")}


# ---------------------------------------------------------------- entries

def default_mode(form: str) -> str:
    letters = [c for c in form if c.isalpha()]
    if letters and all(c.isupper() for c in letters) and len(letters) <= 5:
        return "e"
    return "c" if letters and letters[0].isupper() else "a"


def word_entry(form: str, code: str, mode: str, rule: str) -> Entry:
    toks = tokens(form)
    if mode == "e":
        case = " ".join(t.text for t in toks)
    elif mode == "c":
        case = "".join("1" if t.text[0].isupper() else "0" for t in toks)
    else:
        case = ""
    return Entry(code, mode, rule, case)


def _too_short(name: str) -> bool:
    if is_substring_script(name):
        return len(name) < (3 if _UNSPACED_SHORT.match(name) else 2)
    return sum(len(t.text) for t in tokens(name)) < 4


def _usable_cldr_name(name: str) -> bool:
    if not name or _too_short(name):
        return False
    first = tokens(name)[0].text if tokens(name) else ""
    if " " in name and first.islower() and len(first) <= 3:
        return False           # "i Afghanistan", "ma Aja": an article or preposition
    has_unspaced = re.search(r"[\u0e00-\u0eff\u1000-\u109f\u1100-\u11ff\u1780-\u17ff"
                             r"\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]", name)
    return not has_unspaced or is_substring_script(name)


def cldr_entries(names: dict[str, dict[str, str]], deny: set[str]) -> dict[str, Entry]:
    """Unambiguous CLDR names (and their inflections) keyed like the runtime looks up."""
    primary: dict[str, set[str]] = {}
    secondary: dict[str, set[str]] = {}
    spelling: dict[str, str] = {}
    for locale, territories in names.items():
        for code, full_name in sorted(territories.items()):
            main, extra = split_name(full_name)
            for bucket, name in [(primary, main)] + [(secondary, e) for e in extra]:
                if fold(name) in deny or not _usable_cldr_name(name):
                    continue
                for form in sorted(inflected_forms(locale, name)):
                    if fold(form) in deny:      # Polish "Grenadę" folds to "grenade"
                        continue
                    key = form if is_substring_script(form) else name_key(form)
                    bucket.setdefault(key, set()).add(code)
                    spelling.setdefault(key, form)
    for key, codes in secondary.items():
        if key not in primary:
            primary[key] = codes
    _drop_article_forms(primary)
    entries = {}
    for key, codes in primary.items():
        if len(codes) != 1:
            continue
        form = spelling[key]
        code = next(iter(codes))
        if is_substring_script(form):
            entries[key] = Entry(code, "s", "", "")
        else:
            # a capital is required even where a locale writes the name in lower case
            entries[key] = word_entry(form[0].upper() + form[1:], code,
                                      default_mode(form[0].upper() + form[1:]), "")
    return entries


_ARTICLE_HEADS = frozenset("an is it na in on are den ist not man the der die das les los "
                           "las del van von dem".split())


def _drop_article_forms(keys: dict[str, set[str]]) -> None:
    """Drop CLDR names led by an article or a one- or two-letter word ("I Afghanistan",
    "An Ailgeir", "Is Senegal"): minor locales' forms whose first word would make every
    "I", "An" or "Is" in a text a candidate. "El Salvador" and "St. Lucia" stay."""
    for key in list(keys):
        head, _, rest = key.partition(" ")
        if rest and head not in ("el", "st") and (len(head) <= 2 or head in _ARTICLE_HEADS):
            del keys[key]


def compound_heads(names: dict[str, dict[str, str]], entries: dict[str, Entry]) -> dict:
    """German one-word country names that start closed compounds ("Irankrieg")."""
    heads = {}
    for name in names.get("de", {}).values():
        key = name_key(name)
        entry = entries.get(key)
        if " " not in key and len(key) >= 4 and entry and entry.code and not entry.rule:
            heads[key] = entry.code
    return heads


# ---------------------------------------------------------------- alias table

@dataclass
class AliasTable:
    entries: dict[str, Entry]
    abbr: dict[str, str]
    prefix: str
    follow: str
    before: dict[str, str]
    after: dict[str, str]
    deny: set[str]


def parse_aliases(text: str) -> AliasTable:
    table = AliasTable({}, {}, "", "", {}, {}, set())
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip()
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if line.startswith("@"):
            _directive(table, fields, number)
        else:
            _alias_line(table, fields, number)
    return table


def _directive(table: AliasTable, fields: list[str], number: int) -> None:
    name = fields[0]
    if name == "@abbr":
        table.abbr[fields[1]] = "" if fields[2] == "-" else fields[2]
    elif name == "@follow":
        table.follow = fields[1]
    elif name == "@prefix":
        table.prefix = fields[1]
    elif name == "@before":
        table.before[fields[1]] = table.before.get(fields[1], "") + fields[2]
    elif name == "@after":
        table.after[fields[1]] = table.after.get(fields[1], "") + fields[2]
    elif name == "@deny":
        table.deny.add(fold(fields[1]))
    else:
        raise BuildError(f"line {number}: unknown directive {name}")


def _alias_line(table: AliasTable, fields: list[str], number: int) -> None:
    if len(fields) < 2:
        raise BuildError(f"line {number}: expected forms<TAB>code[<TAB>flags]")
    code = "" if fields[1] == "-" else fields[1]
    flags = {f.strip() for f in fields[2].split(",")} if len(fields) > 2 else set()
    rule = next((f[5:] for f in flags if f.startswith("rule=")), "")
    cue = next((f[4:] for f in flags if f.startswith("cue=")), "")
    rule = f"cue:{cue}" if cue else rule
    forced = next((m for m, f in (("e", "exact"), ("c", "cap"), ("a", "any"), ("l", "lower"))
                   if f in flags), None)
    for base in fields[0].split("|"):
        for form in sorted(expand_flagged(base, flags)):
            _add_alias(table, form, code, forced or default_mode(form), rule, number)


def _add_alias(table: AliasTable, form: str, code: str, mode: str, rule: str,
               number: int) -> None:
    if is_substring_script(form):
        key, entry = form, Entry(code, "s", rule, "")
    else:
        key, entry = name_key(form), word_entry(form, code, mode, rule)
    if not key:
        raise BuildError(f"line {number}: {form!r} mixes scripts or has no letters")
    old = table.entries.get(key)
    if old is None:
        table.entries[key] = entry
    elif (old.code, old.rule) != (entry.code, entry.rule):
        raise BuildError(f"line {number}: {form!r} is already {old.code or '-'} "
                         f"{old.rule}".rstrip())
    elif {old.mode, entry.mode} == {"c", "l"}:     # capitalised in one language, lower
        table.entries[key] = Entry(old.code, "a", old.rule, "")   # case in another: any
    elif _MODE_RANK.get(entry.mode, 0) > _MODE_RANK.get(old.mode, 0):
        table.entries[key] = entry


# ---------------------------------------------------------------- output

def _check_case_conflicts(cldr: dict[str, Entry], aliases: dict[str, Entry]) -> None:
    """An alias for lower case only must not hide a capitalised CLDR name with the same
    key (Spanish "chinas" would turn off German "Chinas"): of the same country, the two
    make a name of any case; of another country, it is an error."""
    for key, alias in list(aliases.items()):
        old = cldr.get(key)
        if old and {old.mode, alias.mode} == {"c", "l"}:
            if old.code != alias.code:
                raise BuildError(f"{key!r}: lower-case alias hides the CLDR name of {old.code}")
            aliases[key] = Entry(alias.code, "a", alias.rule, "")


def build(names: dict[str, dict[str, str]], alias_text: str, header: str) -> str:
    """The data file's text: JSON, sorted, one record per line (diffs stay readable)."""
    table = parse_aliases(alias_text)
    merged = cldr_entries(names, table.deny)
    _check_case_conflicts(merged, table.entries)
    merged.update(table.entries)
    words: dict[str, str] = {}
    stems: set[str] = set()
    subs: dict[str, str] = {}
    for key, e in merged.items():
        if e.mode == "s":
            subs[key] = f"{e.code}|{e.rule}"
            continue
        words[key] = f"{e.code}|{e.mode}|{e.rule}|{e.case}"
        parts = key.split(" ")
        stems.update(" ".join(parts[:n]) for n in range(1, len(parts)))
    display: dict[str, dict[str, str]] = {}
    for locale in DISPLAY_LOCALES:
        for code, name in names.get(locale, {}).items():
            display.setdefault(code, {})[locale] = name
    data = {"header": header, "words": words, "stems": sorted(stems), "subs": subs,
            "compounds": compound_heads(names, merged),
            "abbr": table.abbr, "prefix": table.prefix, "follow": table.follow,
            "before": table.before,
            "after": table.after, "names": display}
    return json.dumps(data, ensure_ascii=False, indent=0, sort_keys=True) + "\n"


def recipe_hash(alias_text: str) -> str:
    """Hash of everything besides CLDR that shapes the file: the alias table, this
    builder and the runtime's normalisation (tokenizer and key folding)."""
    parts = [alias_text, inspect.getsource(sys.modules[__name__]), countries.TOKEN_RE.pattern,
             inspect.getsource(countries.fold), inspect.getsource(countries._strip_accents)]
    return hashlib.sha256("\x00".join(parts).encode("utf-8")).hexdigest()[:16]


def header_for(babel_version: str, recipe: str) -> str:
    return (f"generated by python -m monitor._build.gazetteer from CLDR territory names "
            f"(Babel {babel_version}) and country_aliases.tsv (recipe {recipe}); do not edit")


def current_text() -> str:
    """What the build produces now from the installed Babel and the alias table."""
    import babel

    alias_text = ALIAS_FILE.read_text(encoding="utf-8")
    return build(cldr_names(), alias_text, header_for(babel.__version__,
                                                      recipe_hash(alias_text)))


def check(path: Path) -> tuple[bool, str]:
    """Is the shipped file what a build would produce now?

    With the Babel version the file was built from, the whole file is compared. With
    another version CLDR itself may differ, so only the recipe (alias table, builder,
    normalisation) is compared, and the message says so.
    """
    import babel

    shipped = path.read_text(encoding="utf-8") if path.exists() else ""
    header = json.loads(shipped).get("header", "") if shipped else ""
    built_with = re.search(r"\(Babel ([^)]+)\)", header)
    if built_with and built_with.group(1) != babel.__version__:
        recipe = recipe_hash(ALIAS_FILE.read_text(encoding="utf-8"))
        if f"(recipe {recipe})" in header:
            return True, (f"{path}: recipe current; built with Babel {built_with.group(1)}, "
                          f"installed {babel.__version__}, CLDR part not re-verified")
        return False, f"{path} is stale: run python -m monitor._build.gazetteer"
    if shipped != current_text():
        return False, f"{path} is stale: run python -m monitor._build.gazetteer"
    return True, f"{path} is current"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m monitor._build.gazetteer",
        description="Build monitor/data/countries.json from CLDR (Babel) and the alias table.",
        epilog="example: python -m monitor._build.gazetteer --check",
    )
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the shipped file differs from a fresh build")
    parser.add_argument("--output", type=Path, default=DATA_FILE, help="file to write")
    args = parser.parse_args(argv)
    try:
        if args.check:
            ok, message = check(args.output)
            print(message, file=sys.stdout if ok else sys.stderr)
            return 0 if ok else 1
        text = current_text()
    except BuildError as exc:
        print(f"country_aliases.tsv: {exc}", file=sys.stderr)
        return 2
    args.output.write_text(text, encoding="utf-8")
    print(f"wrote {args.output}: {text.count(chr(10))} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
