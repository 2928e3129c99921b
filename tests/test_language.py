"""Language of an article: normalised hints when plausible, else py3langid."""

from __future__ import annotations

import array

import pytest

from monitor.language import detect_language, normalise_hint

TEXTS = {
    "en": ("China tightens controls on rare earth exports",
           "The commerce ministry said companies will need a licence to ship magnets "
           "and the metals used to make them."),
    "de": ("China verschärft Ausfuhrkontrollen für seltene Erden",
           "Unternehmen brauchen künftig eine Genehmigung, um Magnete und die dafür "
           "nötigen Metalle ins Ausland zu liefern."),
    "fr": ("La Chine durcit le contrôle des exportations de terres rares",
           "Les entreprises devront obtenir une licence pour expédier des aimants et les "
           "métaux nécessaires à leur fabrication."),
    "es": ("China endurece el control de las exportaciones de tierras raras",
           "Las empresas necesitarán una licencia para enviar imanes y los metales que se "
           "usan para fabricarlos."),
    "pl": ("Chiny zaostrzają kontrolę eksportu metali ziem rzadkich",
           "Firmy będą potrzebować licencji, aby wysyłać za granicę magnesy i metale "
           "potrzebne do ich produkcji."),
    "zh": ("中国加强稀土出口管制", "商务部表示，企业出口磁体及其所需金属需要申请许可证。"),
    "ja": ("中国がレアアースの輸出規制を強化",
           "商務省は、磁石とその製造に必要な金属の輸出には許可が必要になると発表した。"),
    "ko": ("중국, 희토류 수출 통제 강화",
           "상무부는 자석과 그 제조에 필요한 금속을 수출하려면 허가가 필요하다고 밝혔다."),
}


@pytest.mark.parametrize(("hint", "code"), [
    ("en-US", "en"), ("de_DE", "de"), ("DE", "de"), ("German", "de"), ("deu", "de"),
    ("zh-Hans-CN", "zh"), ("pt-BR", "pt"), ("iw", "he"), ("fr.UTF-8", "fr"),
    ("xx-YY", None), ("", None), (None, None), ("e", None), ("english please", None),
])
def test_normalise_hint(hint: str | None, code: str | None) -> None:
    assert normalise_hint(hint) == code


@pytest.mark.parametrize("lang", sorted(TEXTS))
def test_detects_without_hint(lang: str) -> None:
    assert detect_language(*TEXTS[lang]) == lang


@pytest.mark.parametrize("lang", sorted(TEXTS))
def test_plausible_hint_is_used(lang: str) -> None:
    assert detect_language(*TEXTS[lang], hint=f"{lang}-XX") == lang


def test_implausible_hint_is_overruled() -> None:
    assert detect_language(*TEXTS["zh"], hint="en") == "zh"
    assert detect_language(*TEXTS["pl"], hint="en-GB") == "pl"
    assert detect_language(*TEXTS["de"], hint="ja") == "de"


def test_short_text_keeps_the_hint() -> None:
    assert detect_language("Lithium", "", hint="de-AT") == "de"
    assert detect_language("Rare earths", "", hint="en") == "en"


def test_invalid_hint_falls_back_to_detection() -> None:
    assert detect_language(*TEXTS["fr"], hint="not a language") == "fr"


def test_empty_text_has_no_language() -> None:
    assert detect_language("", "") is None
    assert detect_language("  ", "\n", hint="en") is None


def test_result_is_an_iso_639_1_code() -> None:
    code = detect_language("ok", "")
    assert code is not None and len(code) == 2


def test_scripts_decide_korean_japanese_and_chinese() -> None:
    # kana among Han characters: Japanese, however few
    assert detect_language("大阪の物価、3か月連続上昇", "") == "ja"
    assert detect_language("東京都で震度2", "") == "ja"
    assert detect_language("", "희토류 수출 통제, 반도체 업계 긴장") == "ko"
    long_han = "国务院常务会议研究部署加强关键矿产资源勘查开发和储备工作"
    assert detect_language(long_han, "") == "zh"
    assert detect_language(long_han, "", hint="ko") == "zh"       # the identifier overrules
    # a short Han-only headline is left to the identifier and the hint
    assert detect_language("首相動静 十日", "", hint="ja") == "ja"


def test_implausible_hint_loses_to_the_script() -> None:
    assert detect_language(*TEXTS["ko"], hint="zh") == "ko"
    assert detect_language(*TEXTS["ja"], hint="zh-CN") == "ja"


@pytest.fixture
def fresh_identifier():
    """The language identifier loaded anew in this test, the process's own put back after."""
    from monitor import language

    saved = list(language._loaded)
    language._loaded.clear()
    yield language
    language._loaded[:] = saved


def _cache_folders(root):
    return sorted(p for p in root.iterdir() if p.name.startswith("langid-") and "." not in p.name)


def _reference():
    """py3langid's own identifier, restricted as monitor restricts it."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    from monitor.language import _DETECTABLE

    reference = LanguageIdentifier.from_model_file(MODEL_DIR / MODEL_FILE, norm_probs=True)
    reference.set_languages(sorted(_DETECTABLE.intersection(reference.nb_classes)))
    return reference


def test_the_unpacked_model_is_written_once_then_mapped(fresh_identifier, tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    first = {lang: detect_language(*TEXTS[lang]) for lang in TEXTS}
    assert first == {lang: lang for lang in TEXTS}
    [folder] = _cache_folders(tmp_path)
    assert (folder / "meta.json").is_file() and (folder / "keys.npy").stat().st_size > 10**6
    assert not _mapped(fresh_identifier._identifier().table.keys)   # built here
    fresh_identifier._loaded.clear()
    again = {lang: detect_language(*TEXTS[lang]) for lang in TEXTS}
    assert again == first
    identifier = fresh_identifier._identifier()
    assert _mapped(identifier.table.keys) and _mapped(identifier.ptc)
    assert not isinstance(identifier.table.keys, np.memmap)     # indexed as a plain array


def test_a_damaged_cache_is_said_and_unpacked_again(fresh_identifier, tmp_path, monkeypatch,
                                                     caplog):

    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    detect_language(*TEXTS["de"])
    [folder] = _cache_folders(tmp_path)
    table = folder / "keys.npy"
    table.write_bytes(table.read_bytes()[:4096])            # truncated
    fresh_identifier._loaded.clear()
    with caplog.at_level("WARNING", logger="monitor.language"):
        assert {lang: detect_language(*TEXTS[lang]) for lang in TEXTS} == {x: x for x in TEXTS}
    assert any("keys.npy" in r.getMessage() for r in caplog.records)
    assert not _mapped(fresh_identifier._identifier().table.keys)
    [folder] = _cache_folders(tmp_path)                      # written again, whole
    fresh_identifier._loaded.clear()
    assert detect_language(*TEXTS["pl"]) == "pl"
    assert _mapped(fresh_identifier._identifier().table.keys)


def _mapped(array) -> bool:
    """The cache file's pages, not a copy: the identifier holds plain views of the maps."""
    import numpy as np

    return isinstance(array, np.memmap) or isinstance(array.base, np.memmap)


def test_an_empty_cache_setting_turns_the_cache_off(fresh_identifier, tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert detect_language(*TEXTS["fr"]) == "fr"          # unpacked in this process
    assert not any(tmp_path.iterdir())


ODD_TEXTS = ["", "a", "12345 678", "ABC DEF GHI JKL", "\ud800 lone surrogate", "ÀÉÎ õü", "x" * 300,
             "Полиция задержала двух человек", "Ελλάδα και Κύπρος", "מדינת ישראל", "नई दिल्ली में बैठक",
             "中国", "한국", "Lithium\n\n\nKobalt", "e-mail: someone@example.org", "\x00\x00 NUL",
             "\U0001f600 emoji \U0001f4c8", "ĳ ŉ ﬁ ligatures", "ＡＢＣ full width"]


def test_texts_identified_together_get_py3langids_answers(fresh_identifier, tmp_path, monkeypatch):
    """The index of the automaton's nodes gives py3langid's own answer and probabilities
    for every text, identified together or alone, from the cache or built anew; and
    detect_languages gives the answers of detect_language."""
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    reference = _reference()
    texts = [f"{title}\n{text}" for title, text in TEXTS.values()] + ODD_TEXTS
    texts += [text[: 7 + i] for i, text in enumerate(texts)]         # cut at odd places
    want = [reference.classify(t)[0] for t in texts]
    for _ in ("built", "from the cache"):
        identifier = fresh_identifier._identifier()
        assert identifier.identify(texts) == want
        assert [identifier.identify([t])[0] for t in texts] == want
        for text, row in zip(texts, identifier.probabilities(texts), strict=True):
            for code, probability in reference.rank(text):
                assert identifier.probability(row, code) == pytest.approx(probability, abs=1e-5)
        assert identifier.probability(row, "xx") == 0.0
        fresh_identifier._loaded.clear()
    docs = [(title, text, hint) for (title, text) in TEXTS.values() for hint in (None, "en", "de-AT")]
    docs += [(t, "", hint) for t in ODD_TEXTS for hint in (None, "pl")]
    assert fresh_identifier.detect_languages(docs) == [detect_language(*doc) for doc in docs]
    monkeypatch.setattr(fresh_identifier, "IDENTIFY_CHUNK", 5)          # a batch in parts
    assert fresh_identifier.detect_languages(docs) == [detect_language(*doc) for doc in docs]


def test_every_transition_of_the_automaton_leads_to_its_longest_suffix_node():
    """What the index rests on, checked for all of py3langid's states and bytes (when the
    model is unpacked, only every 61st state is)."""
    from monitor.language import _index

    arrays, depth = _index(_reference(), check_every=1)
    assert depth == 6 and len(arrays["keys"]) == 1 << 19


def test_a_model_whose_automaton_is_not_its_suffixes_is_refused():
    from monitor.language import _index

    reference = _reference()
    nextmove = array.array(reference.tk_nextmove.typecode, reference.tk_nextmove)
    row = reference._rowbase[5] + ord("q")
    nextmove[row] = (nextmove[row] + 1) % (len(reference._rowbase))     # one wrong transition
    reference.tk_nextmove = nextmove
    with pytest.raises(RuntimeError, match="not the one of its nodes' suffixes"):
        _index(reference, check_every=1)


def test_a_cache_of_another_format_is_unpacked_again(fresh_identifier, tmp_path, monkeypatch,
                                                     caplog):
    import json

    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    detect_language(*TEXTS["de"])
    [folder] = _cache_folders(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    meta["format"] = 2
    (folder / "meta.json").write_text(json.dumps(meta))
    fresh_identifier._loaded.clear()
    with caplog.at_level("WARNING", logger="monitor.language"):
        assert detect_language(*TEXTS["pl"]) == "pl"
    assert any("do not fit together" in r.getMessage() for r in caplog.records)
    assert json.loads((folder / "meta.json").read_text())["format"] == 3        # written anew
