"""Keyword rules: matching in several scripts, wildcards, regexes, mute, config errors."""

from __future__ import annotations

import subprocess
import sys

import pytest

from monitor.exceptions import ConfigError
from monitor.keywords import KeywordMatch, KeywordRules

CM, EC = "critical-minerals", "export-controls"


def rules(**lists: list[str]) -> KeywordRules:
    return KeywordRules.compile({k.replace("_", "-"): v for k, v in lists.items()})


def hits(r: KeywordRules, text: str, topic: str = CM) -> tuple[str, ...]:
    return r.match("", text).hits.get(topic, ())


def test_case_insensitive_phrase_on_word_boundaries() -> None:
    r = rules(critical_minerals=["rare earth", "tin"])
    assert hits(r, "China's RARE EARTH output rose") == ("rare earth",)
    assert hits(r, "a rare earthquake shook the town") == ()
    assert hits(r, "tinned tomatoes and a tinker") == ()
    assert hits(r, "Tin prices, tin.") == ("tin",)


def test_space_or_hyphen_inside_a_phrase() -> None:
    r = rules(critical_minerals=["rare earth", "dual-use goods"])
    assert hits(r, "new rare-earth magnet plant") == ("rare earth",)
    assert hits(r, "rare \n earth") == ("rare earth",)
    assert hits(r, "curbs on dual use goods") == ("dual-use goods",)


def test_star_lets_a_word_go_on() -> None:
    r = rules(export_controls=["Ausfuhrkontroll*"], critical_minerals=["seltene* Erden"])
    assert hits(r, "Peking verschärft die Ausfuhrkontrollen", EC) == ("Ausfuhrkontroll*",)
    assert hits(r, "die Lieferung seltener Erden") == ("seltene* Erden",)
    assert hits(r, "Seltene-Erden-Magnete") == ("seltene* Erden",)
    assert hits(r, "keine Ausfuhr-Kontrolle", EC) == ()
    assert hits(r, "Die Vorausfuhrkontrolle", EC) == ()  # word boundary before the stem


def test_cjk_thai_and_hangul_match_as_substrings() -> None:
    r = rules(critical_minerals=["稀土", "レアアース", "희토류", "แร่หายาก"],
              export_controls=["出口管制"])
    assert hits(r, "商务部宣布对稀土相关技术实施出口管制") == ("稀土",)
    assert hits(r, "商务部宣布对稀土相关技术实施出口管制", EC) == ("出口管制",)
    assert hits(r, "中国がレアアースの輸出規制を強化") == ("レアアース",)
    assert hits(r, "중국이 희토류를 무기화한다") == ("희토류",)
    assert hits(r, "ราคาแร่หายากพุ่งขึ้น") == ("แร่หายาก",)


def test_regex_entries_are_case_insensitive() -> None:
    r = rules(export_controls=[r"re:entity\s+list(ed)?", "re:\\bBIS\\b"])
    assert hits(r, "Firms were Entity Listed on Monday", EC) == (r"re:entity\s+list(ed)?",)
    assert hits(r, "bis rules; the bistro", EC) == ("re:\\bBIS\\b",)


def test_typographic_apostrophe_matches_ascii() -> None:
    r = rules(export_controls=["contrôle* à l'exportation"])
    assert hits(r, "Les contrôles à l’exportation de Pékin", EC) == ("contrôle* à l'exportation",)


def test_case_is_folded_fully_so_sharp_s_reads_ss() -> None:
    """`str.lower` had kept "ß": a phrase written with it missed the same word in capitals
    ("AUSSENWIRTSCHAFTSGESETZ") and in Swiss spelling ("Aussenhandel"), and the other way."""
    r = rules(export_controls=["Außenwirtschaftsgesetz", "Aussenhandelsstatistik", "Straße von Hormus",
                               "Außenhandels*"])
    assert hits(r, "Verstoß gegen das AUSSENWIRTSCHAFTSGESETZ", EC) == ("Außenwirtschaftsgesetz",)
    assert hits(r, "das Aussenwirtschaftsgesetz der Schweiz", EC) == ("Außenwirtschaftsgesetz",)
    assert hits(r, "die Außenhandelsstatistik", EC) == ("Aussenhandelsstatistik", "Außenhandels*")
    assert hits(r, "Tanker in der STRASSE VON HORMUS", EC) == ("Straße von Hormus",)
    assert hits(r, "ẞ-frei: AUẞENHANDELSBILANZ", EC) == ("Außenhandels*",)      # capital sharp s
    assert hits(r, "die Außenministerin", EC) == ()


def test_the_models_concept_tokens_keep_lower_case_as_trained() -> None:
    """Only the keyword rules fold case fully: the model was trained on concept tokens of
    ``lower``-cased text, and its card's preparation fingerprint would not tell the two apart."""
    from monitor.keywords import normalise

    assert normalise("Außenhandel") == "außenhandel" and normalise("Außenhandel", fold=True) == "aussenhandel"
    assert normalise("ASCII Only", fold=True) == normalise("ASCII Only") == "ascii only"


def test_hits_are_phrases_as_written_in_config_order_without_duplicates() -> None:
    r = rules(critical_minerals=["Lithium price*", "rare earth", "re:lithium"])
    match = r.match("Rare earth and lithium prices", "lithium prices fell again")
    assert match.hits == {CM: ("Lithium price*", "rare earth", "re:lithium")}
    assert match.topics == (CM,)


def test_both_topics_and_topic_order() -> None:
    r = rules(export_controls=["export control*"], critical_minerals=["gallium"])
    match = r.match("Gallium export controls", "")
    assert match.topics == (CM, EC)
    assert list(match.hits) == [CM, EC]


def test_title_and_text_are_both_searched() -> None:
    r = rules(critical_minerals=["antimony"])
    assert r.match("Antimony surges", "").topics == (CM,)
    assert r.match("Metals", "antimony surges").topics == (CM,)
    assert r.match("", "").topics == ()


def test_mute_is_reported_separately() -> None:
    r = rules(critical_minerals=["lithium"], mute=["mineral water", "Mineralwasser"])
    match = r.match("Lithium-rich mineral water", "Mineralwasser")
    assert match.muted == ("mineral water", "Mineralwasser")
    assert match.hits == {CM: ("lithium",)}


def test_empty_rules_match_nothing() -> None:
    match = KeywordRules.empty().match("rare earth export controls", "稀土出口管制")
    assert match == KeywordMatch()
    assert len(KeywordRules.empty()) == 0


def test_missing_lists_are_empty() -> None:
    r = KeywordRules.compile({"mute": ["gold price"]})
    assert r.match("gold price", "").muted == ("gold price",)
    assert len(r) == 1


@pytest.mark.parametrize(("spec", "message"), [
    ({"export-controls": ["export control*", "re:foo("]},
     "keywords.export-controls[1]: regex does not compile: "),
    ({"critical-minerals": ["ok", ""]}, "keywords.critical-minerals[1]: empty phrase"),
    ({"critical-minerals": ["   "]}, "keywords.critical-minerals[0]: empty phrase"),
    ({"mute": ["re:"]}, "keywords.mute[0]: empty regex"),
    ({"mute": ["re:x*"]}, "keywords.mute[0]: regex 'x*' matches the empty string"),
    ({"mute": ["re:\\b"]}, "keywords.mute[0]: regex '\\\\b' matches an empty span"),
    ({"export-controls": ["export licen*", "re:(?=.)"]},
     "keywords.export-controls[1]: regex '(?=.)' matches an empty span"),
    ({"mute": ["re:(?<=\\w)"]}, "keywords.mute[0]: regex '(?<=\\\\w)' matches an empty span"),
    ({"mute": ["re:gold(?=x)|(?<=中)"]}, "keywords.mute[0]: regex 'gold(?=x)|(?<=中)' matches an "
     "empty span (at 1 of '中国')"),
    ({"mute": [3]}, "keywords.mute[0]: expected a string, got int"),
    ({"mute": "mineral water"}, "keywords.mute: expected a list of strings, got str"),
    ({"mute": None}, "keywords.mute: expected a list of strings, got NoneType"),
    ({"minerals": ["x"]}, "keywords.minerals: unknown key"),
    ({"critical-minerals": ["*"]}, "keywords.critical-minerals[0]: '*' may only end a word"),
    ({"critical-minerals": ["ab*cd"]}, "keywords.critical-minerals[0]: '*' may only end"),
    # a regex prefix in capitals had been a phrase looking for the text "RE:lithium" itself
    ({"critical-minerals": ["gallium", "RE:lithium\\s+deal"]},
     "keywords.critical-minerals[1]: 'RE:lithium\\\\s+deal' starts with 'RE:': a regex starts with 're:'"),
    ({"mute": [" Re:gold"]}, "keywords.mute[0]: ' Re:gold' starts with 'Re:'"),
])
def test_invalid_entries_name_the_key(spec: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        KeywordRules.compile(spec)
    assert str(info.value).startswith(message)


def test_spec_must_be_a_table() -> None:
    with pytest.raises(ConfigError, match=r"^keywords: expected a table"):
        KeywordRules.compile(["rare earth"])  # type: ignore[arg-type]


def test_regex_error_is_chained() -> None:
    with pytest.raises(ConfigError) as info:
        KeywordRules.compile({"mute": ["re:[unclosed"]})
    assert info.value.__cause__ is not None


def test_import_is_cheap() -> None:
    code = ("import sys, monitor.keywords, monitor.decide; "
            "print(any(m.split('.')[0] in ('sklearn', 'skops', 'numpy') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


PHRASES = ["rare earth", "rare earth*", "tin", "lithium price*", "seltene* Erden",
           "Seltenerd*", "u.s.", "china's", "稀土", "稀土*", "镓、锗", "희토류", "export control*",
           "re2x", "5g", "dual-use", "chaîne* d'approvisionnement", "b", "Ausfuhr*",
           "Außenhandel*", "straße von hormus"]
TEXTS = ["Rare-earth exports; tin; tinned; the U.S. and China's lithium prices",
         "Seltenen Erden, Seltenerdmetalle und AUSFUHRKONTROLLEN", "中国稀土出口和镓、锗管制",
         "희토류를 수출", "5G chips, dual use goods; a b c", "les chaînes d’approvisionnement",
         "re2x re2xy", "", "rare\nearthquake", "export-controlled items; exportcontrol",
         "美国export control新规，稀土tin出口", "中国5g和u.s.的dual-use物项",
         "AUSSENHANDELSBILANZ in der Straße von Hormus; Strasse von Hormus"]


@pytest.mark.parametrize("fold", [False, True])
@pytest.mark.parametrize("text", TEXTS)
def test_index_finds_what_the_phrase_regexes_find(text: str, fold: bool) -> None:
    import re

    from monitor.keywords import PhraseIndex, normalise, phrase_regex

    index = PhraseIndex.build([(f"p[{i}]", p) for i, p in enumerate(PHRASES)], fold=fold)
    lowered = normalise(text, fold)
    expected = {i for i, p in enumerate(PHRASES) if re.search(phrase_regex("p", p, fold), lowered)}
    assert index.find(lowered) == expected
    assert index.find(lowered) == expected  # second time from the word cache


def test_index_infixes_find_parts_of_compounds() -> None:
    from monitor.keywords import PhraseIndex

    index = PhraseIndex.build([("a", "*lizenz*"), ("b", "lizenz")], infix=True)
    assert index.find("neue exportlizenzen") == {0}
    assert index.find("die lizenz") == {0, 1}
    with pytest.raises(ConfigError, match="c: an infix must be letters only"):
        PhraseIndex.build([("c", "*a b*")], infix=True)


def test_full_width_letters_match() -> None:
    r = rules(export_controls=["BIS rule*"])
    assert hits(r, "ＢＩＳ　ｒｕｌｅｓ", EC) == ("BIS rule*",)


def test_phrases_count_in_title_and_lede_only():
    from monitor.keywords import LEDE_CHARS, KeywordRules

    rules = KeywordRules.compile({"export-controls": ["export control*"], "mute": ["mineral water"]})
    filler = "The summit covered many subjects. " * (LEDE_CHARS // 30 + 1)
    assert rules.match("Tariff talks resume", "Export controls were raised. " + filler).topics == ("export-controls",)
    assert rules.match("Tariff talks resume", filler + "Export controls came up once.").topics == ()
    assert rules.match("Export controls tightened", filler).topics == ("export-controls",)
    assert rules.match("A spring", filler + "mineral water").muted == ()


def test_the_lede_is_exactly_the_first_400_characters() -> None:
    # a phrase whose last character is the text's 400th is in the lede; one that reaches the
    # 401st is not (substring scripts make the cut visible to the character)
    r = rules(critical_minerals=["稀土"])
    assert r.match("Briefing", "." * 398 + "稀土 rules").topics == (CM,)
    assert r.match("Briefing", "." * 399 + "稀土 rules").topics == ()


def test_hits_follow_config_order_across_regexes_and_phrases() -> None:
    r = rules(critical_minerals=["re:gallium|germanium", "rare earth", "re:antimon(y|ium)"])
    match = r.match("Antimony, rare earth and gallium curbs", "")
    assert match.hits == {CM: ("re:gallium|germanium", "rare earth", "re:antimon(y|ium)")}


def test_a_phrase_listed_twice_is_reported_once() -> None:
    r = rules(critical_minerals=["gallium", "gallium"], mute=["gold price", "gold price"])
    match = r.match("Gallium and the gold price", "")
    assert match.hits == {CM: ("gallium",)}
    assert match.muted == ("gold price",)


def test_a_regex_entry_is_a_regex_whatever_it_holds() -> None:
    # '*' in the middle and other regex syntax are fine after 're:' (only phrases forbid them)
    r = rules(critical_minerals=[r"re:rare.*earth", r"re:\bcobalt\b"])
    assert hits(r, "rare and precious earth metals") == (r"re:rare.*earth",)
    assert hits(r, "Cobalt output") == (r"re:\bcobalt\b",)


def test_a_regex_is_searched_in_the_article_as_it_is() -> None:
    # phrases are matched in the normalised text, 're:' entries in the text as written
    r = rules(export_controls=["re:contrôles? à l’exportation"])
    assert hits(r, "Les contrôles à l’exportation de Pékin", EC) == ("re:contrôles? à l’exportation",)
    assert hits(r, "Les contrôles à l'exportation de Pékin", EC) == ()


@pytest.mark.parametrize("regex", ["re: ", "re:   ", "re:\t"])
def test_a_regex_of_blanks_is_refused_as_empty(regex: str) -> None:
    # a blank regex would match every article that has a space
    with pytest.raises(ConfigError, match=r"^keywords.mute\[0\]: empty regex"):
        KeywordRules.compile({"mute": [regex]})



@pytest.mark.parametrize("regex", [r"(\w+\s?)+:", r"(\w+,?\s*)+ exports", r"(.*,)+ tonnes",
                                   r"(?:gallium|(\w+)*) curbs", r"(x{1,3})+y",
                                   # letters beyond the check's own sample, which \w matches
                                   r"(\w+광물\s?)+ 수출", r"(\w+ий\s?)+ экспорт",
                                   # a mark with the same kind of part on both sides of it,
                                   # which one round's end and the next one's start share
                                   r"(\w+-\w+)+ curbs", r"(\w*,\w*)+ tonnes", r"(\s*\w\s*)+:"])
def test_a_regex_that_would_backtrack_for_hours_is_refused_at_once(regex: str) -> None:
    # a repeat of a part that repeats itself, with nothing to tell its rounds apart, tries
    # every way of cutting a line it does not match: the check of the samples never ended
    # (`config check`, the start and a reload of `monitor run` hung), nor would the poll
    code = ("import sys; from monitor.keywords import KeywordRules\n"
            "try:\n    KeywordRules.compile({'export-controls': ['rare earth', sys.argv[1]]})\n"
            "except Exception as exc:\n    print(exc)")
    try:
        out = subprocess.run([sys.executable, "-c", code, "re:" + regex], capture_output=True,
                             text=True, check=True, timeout=20)
    except subprocess.TimeoutExpired:
        pytest.fail(f"compiling re:{regex} did not end")
    assert out.stdout.startswith(f"keywords.export-controls[1]: regex {regex!r} repeats a part "
                                 "that repeats itself")


def test_a_repeat_whose_rounds_are_marked_or_possessive_is_a_fine_regex() -> None:
    accepted = [r"re:export(\s+\w+){0,3}\s+ban", r"re:(\d+(\.\d+)?%\s*)+tariff",
                r"re:(\w+\s)+quota", r"re:(\w+\s?)++:", r"re:(?:\w+-)*\w+ curbs",
                "re:エンティティー?・?リスト", r"re:\b(?:Ga|Ge)\b(?:\s*[,/]\s*\b(?:Ga|Ge)\b)+ curbs",
                r"re:(\w+-\w+ )+export"]
    r = rules(export_controls=accepted)
    assert hits(r, "An export of rare earth ban was lifted", EC) == (accepted[0],)
    assert hits(r, "A 12.5% tariff and a 3 % 20% tariff", EC) == (accepted[1],)
    assert hits(r, "Gallium: a new quota", EC) == (accepted[2], accepted[3])
    assert hits(r, "Dual-use curbs", EC) == (accepted[4],)
    assert accepted[6] in hits(r, "New Ga, Ge curbs", EC)
    assert hits(r, "Dual-use state-owned export", EC) == (accepted[7],)


def test_a_repeat_of_whole_words_or_of_figures_with_their_unit_is_a_fine_regex() -> None:
    # "within N words" written with \b, and figures each with its unit: a \b next to a word's
    # letters ends them at the word's end, and a unit ("kt", "t") is a part of each round
    # that the figures around it cannot hold; both had been refused as if they backtracked
    # for hours (each takes well under a millisecond on a lede that does not match)
    accepted = [r"re:\b(?:\w+\b\W*){0,4}lithium mine",
                r"re:(?:\b\w+\b[\s,]*){1,5}sanctions",
                r"re:(?:\d+(?:\.\d+)?\s*(?:kt|t)\b[\s,]*)+of cobalt"]
    r = rules(export_controls=accepted)
    assert hits(r, "Plans for a new lithium mine", EC) == (accepted[0],)
    assert hits(r, "Steel, aluminium sanctions", EC) == (accepted[1],)
    assert hits(r, "Exports of 12.5 kt, 300 t of cobalt", EC) == (accepted[2],)
    with pytest.raises(ConfigError, match="repeats a part that repeats itself"):
        rules(export_controls=[r"re:(?:\s*\b\w+\b\s*)+:"])    # blanks on both sides still are


def test_a_regex_written_in_double_quotes_with_backslash_b_is_refused_not_silent() -> None:
    # TOML reads "\b" in double quotes as a backspace: the rule compiled, matched no article
    # ever (the poll drops control characters) and `config check` printed it as "\b"
    import tomllib

    spec = tomllib.loads('mute = ["gold price"]\nexport-controls = ["re:\\bgallium\\b"]\n')
    assert spec["export-controls"] == ["re:\x08gallium\x08"]
    with pytest.raises(ConfigError) as info:
        KeywordRules.compile(spec)
    assert str(info.value).startswith(
        "keywords.export-controls[0]: 're:\\x08gallium\\x08' holds the control character U+0008")
    assert "single quotes ('re:\\bgallium\\b')" in str(info.value)
    written = tomllib.loads("export-controls = ['re:\\bgallium\\b']\n")    # as it should be
    assert hits(KeywordRules.compile(written), "China curbs gallium exports", EC) == (
        "re:\\bgallium\\b",)


def test_blanks_before_re_or_around_a_phrase_are_no_part_of_the_entry() -> None:
    # " re:…" had been a phrase of the words "re:lithium\s+deal", which no article holds (and
    # the keywords page, which strips its lines, had run it as the regex): a rule failing
    # silently. A regex's own blanks after "re:" are kept as written.
    r = rules(critical_minerals=[" re:lithium\\s+deal", "gallium  ", "\trare earth"],
              export_controls=["re:ban "], mute=["  re:gold\\b"])
    assert r.entries["critical-minerals"] == ("re:lithium\\s+deal", "gallium", "rare earth")
    match = r.match("A lithium  deal for Gallium and rare-earth magnets", "")
    assert match.hits == {CM: ("re:lithium\\s+deal", "gallium", "rare earth")}
    assert hits(r, "An export ban", EC) == ()
    assert hits(r, "An export ban on gallium", EC) == ("re:ban ",)
    assert r.match("Gold prices", "").muted == ("re:gold\\b",)


def test_the_start_of_a_multi_word_phrase_sits_on_a_word_boundary() -> None:
    r = rules(critical_minerals=["dual-use goods"], export_controls=["export control*"])
    assert hits(r, "dual-use goods exports") == ("dual-use goods",)
    assert hits(r, "individual use goods") == ()
    assert hits(r, "reexport controls apply", EC) == ()


def test_a_star_word_matches_its_stem_alone_too() -> None:
    r = rules(export_controls=["sanction*"])
    assert hits(r, "A new sanction on chip exports", EC) == ("sanction*",)
    assert hits(r, "New sanctions", EC) == ("sanction*",)
    assert hits(r, "Unsanctioned trade", EC) == ()


def test_a_phrase_mixing_latin_and_cjk_keeps_the_boundary_at_its_latin_end() -> None:
    # the Latin start must sit on a word boundary, the CJK end matches as a substring
    r = rules(critical_minerals=["GPU芯片"])
    assert hits(r, "GPU芯片出口") == ("GPU芯片",)
    assert hits(r, "eGPU芯片出口") == ()


def test_a_latin_phrase_is_found_right_after_and_before_cjk_characters() -> None:
    # Chinese and Japanese text runs Latin words into the characters around them: the
    # boundary is where the Latin letters end, not where \w ends
    r = rules(critical_minerals=["AI芯片", "lithium"], export_controls=["ASML", "export control*"])
    assert hits(r, "限制AI芯片出口") == ("AI芯片",)
    assert hits(r, "中国对ASML光刻机出口", EC) == ("ASML",)
    assert hits(r, "澳洲lithium矿") == ("lithium",)
    assert hits(r, "美国export controls新规", EC) == ("export control*",)
    assert hits(r, "xAI芯片") == () and hits(r, "ASMLs", EC) == ()
    assert hits(r, "リチウムlithiumite") == ()


def test_cjk_ideographs_from_the_first_to_the_last_of_their_block_match_as_substrings() -> None:
    from monitor.keywords import is_unspaced

    r = rules(critical_minerals=["一带一路"])               # U+4E00 starts the block
    assert hits(r, "推进一带一路建设") == ("一带一路",)
    assert is_unspaced("\u4e00") and is_unspaced("\u9fff")
    assert is_unspaced("가") and is_unspaced("\u3040") and not is_unspaced("a")


def test_a_long_list_of_names_compiles_each_phrase_only_when_a_text_holds_its_first_word():
    """Each multi-word phrase is a regex that costs ~5 ms to compile: 1,500 firms' names
    took 8 s at every start and every `monitor keywords test`, most never searched for."""
    from monitor.keywords import KeywordRules

    names = [f"firm{i} holding group" for i in range(300)]
    rules = KeywordRules.compile({"export-controls": names, "critical-minerals": [], "mute": []})
    patterns = [p for group in rules.index._by_word.values() for p, _ in group]
    assert len(patterns) == 300 and not any(p._compiled for p in patterns)
    assert rules.match("Entity List adds Firm17 Holding Group", "").topics == ("export-controls",)
    assert sum(p._compiled is not None for p in patterns) == 1
    assert rules.match("Firm17 holdings rise", "").topics == ()
