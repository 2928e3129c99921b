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


def test_the_unpacked_model_is_written_once_then_mapped(fresh_identifier, tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    first = {lang: detect_language(*TEXTS[lang]) for lang in TEXTS}
    assert first == {lang: lang for lang in TEXTS}
    [folder] = _cache_folders(tmp_path)
    assert (folder / "meta.json").is_file() and (folder / "nextmove.bin").stat().st_size > 10**7
    fresh_identifier._loaded.clear()
    again = {lang: detect_language(*TEXTS[lang]) for lang in TEXTS}
    assert again == first
    assert isinstance(fresh_identifier._identifier().tk_nextmove, memoryview)   # mapped


def test_a_damaged_cache_is_said_and_unpacked_again(fresh_identifier, tmp_path, monkeypatch,
                                                     caplog):
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    detect_language(*TEXTS["de"])
    [folder] = _cache_folders(tmp_path)
    table = folder / "nextmove.bin"
    table.write_bytes(table.read_bytes()[:4096])            # truncated
    fresh_identifier._loaded.clear()
    with caplog.at_level("WARNING", logger="monitor.language"):
        assert {lang: detect_language(*TEXTS[lang]) for lang in TEXTS} == {x: x for x in TEXTS}
    assert any("nextmove.bin" in r.getMessage() for r in caplog.records)
    assert not isinstance(fresh_identifier._identifier().tk_nextmove, memoryview)
    [folder] = _cache_folders(tmp_path)                      # written again, whole
    fresh_identifier._loaded.clear()
    assert detect_language(*TEXTS["pl"]) == "pl"
    assert isinstance(fresh_identifier._identifier().tk_nextmove, memoryview)


def test_an_empty_cache_setting_turns_the_cache_off(fresh_identifier, tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert detect_language(*TEXTS["fr"]) == "fr"          # read by the identifier itself
    assert not any(tmp_path.iterdir())


ODD_TEXTS = ["", "a", "12345 678", "ABC DEF GHI JKL", "\ud800 lone surrogate", "ÀÉÎ õü", "x" * 300,
             "Полиция задержала двух человек", "Ελλάδα και Κύπρος", "מדינת ישראל", "नई दिल्ली में बैठक",
             "中国", "한국", "Lithium\n\n\nKobalt", "e-mail: someone@example.org"]


def test_texts_identified_together_get_the_answers_they_get_one_by_one(fresh_identifier, tmp_path,
                                                                     monkeypatch):
    """The batch walk (every position's state from the bytes before it) gives py3langid's
    own answer for every text, and detect_languages the answers of detect_language."""
    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    identifier = fresh_identifier._identifier()
    depth = fresh_identifier._loaded[1]
    assert isinstance(depth, int) and depth >= 1          # found when the model was cached
    meta = (_cache_folders(tmp_path)[0] / "meta.json").read_text()
    assert f'"depth": {depth}' in meta
    texts = [f"{title}\n{text}" for title, text in TEXTS.values()] + ODD_TEXTS
    texts += [text[: 7 + i] for i, text in enumerate(texts)]         # cut at odd places
    assert fresh_identifier._identify(texts) == [identifier.classify(t)[0] for t in texts]
    fresh_identifier._loaded.clear()                     # read back from the cache
    assert fresh_identifier._identify(texts) == [identifier.classify(t)[0] for t in texts]
    docs = [(title, text, hint) for (title, text) in TEXTS.values() for hint in (None, "en", "de-AT")]
    docs += [(t, "", hint) for t in ODD_TEXTS for hint in (None, "pl")]
    assert fresh_identifier.detect_languages(docs) == [detect_language(*doc) for doc in docs]
    monkeypatch.setattr(fresh_identifier, "IDENTIFY_CHUNK", 5)          # a batch in parts
    assert fresh_identifier.detect_languages(docs) == [detect_language(*doc) for doc in docs]


def test_without_a_cache_texts_are_identified_together_too(fresh_identifier, tmp_path, monkeypatch):
    monkeypatch.setenv("MONITOR_CACHE_DIR", "")
    docs = [(title, text, None) for title, text in TEXTS.values()]
    assert fresh_identifier.detect_languages(docs) == list(TEXTS)
    identifier = fresh_identifier._identifier()
    assert isinstance(identifier.tk_nextmove, array.array)      # unpacked here, not mapped
    assert fresh_identifier._loaded[1] == fresh_identifier._automaton_depth(identifier) >= 1
    texts = [f"{title}\n{text}" for title, text in TEXTS.values()] + ODD_TEXTS
    assert fresh_identifier._identify(texts) == [identifier.classify(t)[0] for t in texts]


def test_a_cache_without_the_automatons_depth_is_unpacked_again(fresh_identifier, tmp_path,
                                                                monkeypatch, caplog):
    import json

    monkeypatch.setenv("MONITOR_CACHE_DIR", str(tmp_path))
    detect_language(*TEXTS["de"])
    [folder] = _cache_folders(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    del meta["depth"]
    (folder / "meta.json").write_text(json.dumps(meta))
    fresh_identifier._loaded.clear()
    with caplog.at_level("WARNING", logger="monitor.language"):
        assert detect_language(*TEXTS["pl"]) == "pl"
    assert any("do not fit together" in r.getMessage() for r in caplog.records)
    assert isinstance(fresh_identifier._loaded[1], int)
