"""Text preparation, saving and safe loading of the model, batched prediction."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from monitor import TOPICS
from monitor.classify import (
    CONCEPTS, TRUSTED_TYPES, Classifier, SkopsClassifier, card_path, classify_articles,
    concept_tokens, linear_path, preparation_fingerprint, prepare_text, save_model, stories)
from monitor.exceptions import ClassifierError
from monitor.keywords import KeywordRules
from monitor.train import fit_pipeline, load_jsonl

FIXTURE = Path(__file__).parent / "fixtures" / "classifier_corpus.jsonl"
CM, EC = TOPICS


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import sklearn

    pipeline = fit_pipeline(load_jsonl(FIXTURE), seed=0)
    path = tmp_path_factory.mktemp("model") / "classifier.skops"
    save_model(pipeline, path, {"version": "test-1", "sklearn_version": sklearn.__version__,
                                "topics": list(TOPICS), "preparation": preparation_fingerprint()})
    return path


@pytest.fixture()
def model_copy(model_path: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "classifier.skops"
    copy.write_bytes(model_path.read_bytes())
    card_path(copy).write_bytes(card_path(model_path).read_bytes())
    return copy


# --- prepare_text -----------------------------------------------------------------------

def test_prepare_text_lowercases_and_repeats_the_title() -> None:
    assert prepare_text("Tin Prices", "Rose.") == "tin prices tin prices rose."


def test_prepare_text_appends_concept_tokens() -> None:
    assert prepare_text("", "Ausfuhrkontrollen verschärft") == (
        "ausfuhrkontrollen verschärft zzcexport zzccontrol")


def test_prepare_text_sets_cjk_characters_apart() -> None:
    assert prepare_text("", "中国稀土出口").split()[:6] == list("中国稀土出口")
    assert prepare_text("", "レアアース規制").split()[:7] == list("レアアース規制")
    assert prepare_text("", "희토류 수출").split()[:5] == list("희토류수출")


def test_prepare_text_normalises_full_width_forms() -> None:
    assert prepare_text("", "ＵＳＡ　２０２５").split() == ["usa", "2025", "zzcusa"]


def test_character_features_read_title_once_and_no_concept_tokens() -> None:
    from monitor.classify import model_input, prepare_chars

    assert prepare_chars("Tin Prices", "Export curbs.") == "tin prices export curbs."
    assert prepare_chars("", "中国稀土").split() == list("中国稀土")
    rows = model_input([("Tin Prices", "Export curbs.")])
    assert rows.shape == (1, 2)
    assert rows[0, 0] == prepare_text("Tin Prices", "Export curbs.")
    assert rows[0, 1] == "tin prices export curbs."


def test_model_input_prepares_each_part_once_as_if_prepared_whole() -> None:
    """Title and text are normalised, set apart and lower-cased one part at a time: the rows
    equal those of the whole joined text done in one go (a Greek final sigma, a dotted
    capital I, full-width forms, runs of Han and Hangul at the parts' edges, empty parts)."""
    import unicodedata

    from monitor.classify import TITLE_WEIGHT, _UNSPACED_RUN, _set_apart, model_input

    def whole(title: str, text: str, times: int) -> tuple[str, str, str]:
        title, text = (unicodedata.normalize("NFKC", p or "") for p in (title, text))
        doc = " ".join([title] * times + [text]) if title else text
        return _UNSPACED_RUN.sub(_set_apart, doc).lower(), title, text

    docs = [("ΟΔΟΣ ΣΑ", "ΚΑΛΟΣ σ"), ("İstanbul", "中国稀土 tin"), ("稀土", "출하 중단"),
            ("ＵＳＡ", "　２０２５ "), ("", "x"), ("T", ""), ("", ""), (" a ", " b "),
            (None, "Only text")]
    rows = model_input(docs)  # type: ignore[arg-type]
    for (title, text), row in zip(docs, rows):
        words, t, x = whole(title, text, TITLE_WEIGHT)
        assert row[0] == f"{words} {concept_tokens(t, x)}".strip()
        assert row[1] == whole(title, text, 1)[0].strip()


def test_prepare_text_without_title() -> None:
    assert prepare_text("", "Only text") == "only text"
    assert prepare_text(None, "Only text") == "only text"  # type: ignore[arg-type]
    assert prepare_text("", "") == ""


def test_concepts_are_shared_across_languages() -> None:
    for title in ("China tightens export controls", "China verschärft Exportkontrollen",
                  "Chiny zaostrzają kontrolę eksportu", "中国加强出口管制", "中国が輸出規制を強化"):
        tokens = concept_tokens(title, "").split()
        assert {"zzcexport", "zzccontrol", "zzcchina"} <= set(tokens), title


def test_title_concepts_count_twice() -> None:
    assert concept_tokens("Seltenerdmagnete", "") == "zzcree zzcmagnet zzcree zzcmagnet"
    assert concept_tokens("", "Seltenerdmagnete") == "zzcree zzcmagnet"


def test_concept_lists_compile_and_names_are_words() -> None:
    assert concept_tokens("rare earth lithium", "")  # builds the index
    assert all(name.isalnum() for name in CONCEPTS)


def test_fingerprint_follows_the_concepts(monkeypatch: pytest.MonkeyPatch) -> None:
    before = preparation_fingerprint()
    monkeypatch.setitem(CONCEPTS, "ree", [*CONCEPTS["ree"], "bastnäsit*"])
    assert preparation_fingerprint() != before


# --- save and load ------------------------------------------------------------------------

def test_save_writes_compressed_skops_and_card(model_path: Path) -> None:
    with zipfile.ZipFile(model_path) as archive:
        assert "schema.json" in archive.namelist()
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
    card = json.loads(card_path(model_path).read_text())
    assert card["version"] == "test-1"
    assert card_path(model_path).name == "classifier.card.json"


def test_vocabulary_is_saved_as_one_array_and_restored(model_path: Path) -> None:
    with zipfile.ZipFile(model_path) as archive:
        schema = archive.read("schema.json").decode()
    assert '"terms_"' in schema and '"vocabulary_"' not in schema
    columns = SkopsClassifier.load(model_path).pipeline.named_steps["features"]
    vectorisers = [v for _name, v, _column in columns.transformers_ if v != "drop"]
    assert len(vectorisers) == 2
    for vectoriser in vectorisers:
        vocabulary = vectoriser.vocabulary_
        assert vocabulary and all(type(v) is int for v in vocabulary.values())
        assert sorted(vocabulary.values()) == list(range(len(vocabulary)))


def test_save_leaves_the_pipeline_usable(tmp_path: Path) -> None:
    import sklearn

    pipeline = fit_pipeline(load_jsonl(FIXTURE), "word", seed=0)
    words = pipeline.named_steps["features"].named_transformers_["words"]
    vocabulary = dict(words.vocabulary_)
    save_model(pipeline, tmp_path / "m.skops", {"sklearn_version": sklearn.__version__})
    assert words.vocabulary_ == vocabulary
    assert not hasattr(words, "terms_")


# --- saving safely ----------------------------------------------------------------------

def _card_for(version: str) -> dict[str, Any]:
    import sklearn

    return {"version": version, "sklearn_version": sklearn.__version__,
            "topics": list(TOPICS), "preparation": preparation_fingerprint()}


def _still_the_old_model(path: Path) -> None:
    """The model at ``path`` loads, is the old one, classifies, and no temporary file is
    left beside it."""
    model = SkopsClassifier.load(path)
    assert model.version == "old"
    assert model.predict_proba([("China curbs rare earth exports", "")])[0][CM] > 0
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, card_path(path).name, linear_path(path).name])


@pytest.mark.parametrize("name", ["classifier.skops", "model"])
@pytest.mark.parametrize("failing", [1, 2, 3])
@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_a_save_that_fails_between_its_steps_leaves_the_old_model(
        model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str,
        failing: int, error: type[BaseException]) -> None:
    """os.replace fails (a full disk) or is interrupted (Ctrl-C) at its first, second or
    third call: the old model, arrays and card are all there, nothing new half-way; a
    model file without an extension too (its card's temporary name was its card's)."""
    import os

    pipeline = SkopsClassifier.load(model_path).pipeline
    path = tmp_path / "m" / name
    save_model(pipeline, path, _card_for("old"))
    real_replace, calls = os.replace, []

    def replace(source: Any, target: Any) -> None:
        calls.append(target)
        if len(calls) == failing:
            raise error(28, "No space left on device") if error is OSError else error()
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(ClassifierError if error is OSError else KeyboardInterrupt):
        save_model(pipeline, path, _card_for("new"))
    monkeypatch.undo()
    _still_the_old_model(path)
    save_model(pipeline, path, _card_for("new"))          # and the next save goes through
    assert SkopsClassifier.load(path).version == "new"


@pytest.mark.parametrize("error", [OSError, KeyboardInterrupt])
def test_a_save_that_fails_while_writing_leaves_no_temporary_file(
        model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        error: type[BaseException]) -> None:
    import monitor.classify

    pipeline = SkopsClassifier.load(model_path).pipeline
    path = tmp_path / "classifier.skops"
    save_model(pipeline, path, _card_for("old"))

    def broken(_pipeline: Any, tmp: Path) -> None:
        tmp.write_bytes(b"half an array")
        raise error()

    monkeypatch.setattr(monitor.classify, "write_linear", broken)
    with pytest.raises(ClassifierError if error is OSError else KeyboardInterrupt):
        save_model(pipeline, path, _card_for("new"))
    _still_the_old_model(path)


_KILLED_SAVE = """
import sys, time
from pathlib import Path
import skops.io
from monitor.classify import SkopsClassifier, save_model

model, target, ready = map(Path, sys.argv[1:4])
pipeline = SkopsClassifier.load(model).pipeline

def slow_dump(_obj, file, **_kw):      # half an archive written, then killed mid-write
    Path(file).write_bytes(b"PK half an archive")
    ready.write_text("writing")
    time.sleep(120)

skops.io.dump = slow_dump
save_model(pipeline, target, {"version": "killed"})
"""


def test_a_save_killed_while_writing_leaves_the_old_model_and_the_next_save_clears_up(
        model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL (the OOM killer, a power cut) in the middle of writing the new model: the old
    model, arrays and card are untouched and load; the half-written temporary file cannot
    be removed by the killed process, so the next save removes it once it is stale (a
    younger one may be another save's, still running, and stays)."""
    import time

    import monitor.classify
    from conftest import kill_when_ready

    pipeline = SkopsClassifier.load(model_path).pipeline
    path = tmp_path / "classifier.skops"
    save_model(pipeline, path, _card_for("old"))
    ready = tmp_path / "ready"
    kill_when_ready(_KILLED_SAVE, str(model_path), str(path), str(ready), ready=ready,
                    doing="writing the model")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".classifier.skops.")]
    assert len(leftovers) == 1 and leftovers[0].endswith(".new-model"), leftovers
    model = SkopsClassifier.load(path)               # the old model, whole
    assert model.version == "old"
    assert model.predict_proba([("China curbs rare earth exports", "")])[0][CM] > 0

    save_model(pipeline, path, _card_for("new"))     # seconds old: perhaps another save's
    assert (tmp_path / leftovers[0]).exists()
    assert SkopsClassifier.load(path).version == "new"
    monkeypatch.setattr(monitor.classify, "STALE_SAVE_SECONDS", 0)
    time.sleep(0.01)
    save_model(pipeline, path, _card_for("newer"))   # now stale: removed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [path.name, card_path(path).name, linear_path(path).name])
    assert SkopsClassifier.load(path).version == "newer"


def test_only_a_saves_own_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    """Leftovers of killed saves of this model (its file, arrays and card, new or kept
    copies) go once stale; another model's, a user's own backups and young ones stay."""
    import time

    from monitor.classify import STALE_SAVE_SECONDS, _remove_stale_saves

    path = tmp_path / "classifier.skops"
    ours = [".classifier.skops.0a1b2c3d.new-model", ".classifier.skops.0a1b2c3d.new-linear",
            ".classifier.skops.0a1b2c3d.new-card", ".classifier.skops.0a1b2c3d.old",
            ".classifier.linear.npz.0a1b2c3d.old", ".classifier.card.json.0a1b2c3d.old"]
    others = [".other.skops.0a1b2c3d.new-model", ".classifier.skops.backup",
              ".classifier.skops.0A1B2C3D.old", ".classifier.skops.0a1b2c3d.new-model.keep",
              "classifier.skops.0a1b2c3d.old"]
    for name in ours + others:
        (tmp_path / name).write_bytes(b"x")
    _remove_stale_saves(path, time.time())                       # young: all stay
    assert len(list(tmp_path.iterdir())) == len(ours + others)
    _remove_stale_saves(path, time.time() + STALE_SAVE_SECONDS + 5)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(others)


def test_a_save_flushes_each_file_and_the_folder_before_it_returns(
        model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A power cut after the rename must not find an empty model: every file is fsynced
    before it is put in place, and the folder after."""
    import os

    pipeline = SkopsClassifier.load(model_path).pipeline
    path = tmp_path / "classifier.skops"
    real_fsync, flushed = os.fsync, []

    def fsync(fd: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to name the flushed files")
    monkeypatch.setattr(os, "fsync", fsync)
    save_model(pipeline, path, _card_for("new"))
    names = [Path(f).name for f in flushed]
    assert [n.rsplit(".", 1)[-1] for n in names[:3]] == ["new-model", "new-linear", "new-card"]
    assert names[3:] == [tmp_path.name]


def test_a_save_that_cannot_write_names_the_path(model_path: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    pipeline = SkopsClassifier.load(model_path).pipeline
    with pytest.raises(ClassifierError, match=f"{blocker / 'm.skops'}: cannot write the model"):
        save_model(pipeline, blocker / "m.skops", _card_for("new"))


def test_loaded_model_predicts_like_the_saved_one(model_path: Path) -> None:
    model = SkopsClassifier.load(model_path)
    fresh = SkopsClassifier(fit_pipeline(load_jsonl(FIXTURE), seed=0))
    docs = [(r["title"], r["text"]) for r in load_jsonl(FIXTURE)[:10]]
    assert model.linear is not None                    # classified with the exported arrays
    for loaded, trained in zip(model.predict_proba(docs), fresh.predict_proba(docs), strict=True):
        assert loaded == pytest.approx(trained, abs=1e-6)


def test_load_and_predict_batched(model_path: Path) -> None:
    model = SkopsClassifier.load(model_path)
    assert model.version == "test-1"
    docs = [("China restricts rare earth magnet exports",
             "Beijing requires export licences for magnets and rare earth metals."),
            ("Football club signs striker", "The club confirmed the transfer on Tuesday."),
            ("", "")]
    probabilities = model.predict_proba(docs)
    assert len(probabilities) == 3
    assert all(set(p) == set(TOPICS) for p in probabilities)
    assert all(0.0 <= v <= 1.0 for p in probabilities for v in p.values())
    assert probabilities[0][CM] > probabilities[1][CM]
    assert model.predict_proba([]) == []


BULLETIN = (
    "Good evening, here are the main stories.\n"
    "Storm warning for the coast\n"
    "The weather service expects gusts of up to 120 km/h overnight. Ferries to the islands "
    "are cancelled until Thursday.\n"
    "Rare earth magnets\n"
    "China will require export licences for seven rare earth elements and magnets from "
    "next month. Carmakers in Japan and Germany fear shortages of dysprosium.\n"
    "Cup final: the home side won 2-1 after extra time. Fans celebrated in the old town "
    "until the early morning.")


def test_stories_split_a_bulletin_into_headline_and_body() -> None:
    found = stories(BULLETIN)
    assert [h for h, _ in found] == ["Storm warning for the coast", "Rare earth magnets", ""]
    assert found[1][1].startswith("China will require export licences")
    # the greeting is one sentence: not a story, and not anybody's headline (it ends in ".")


def test_one_story_items_and_passing_sentences_have_no_stories() -> None:
    assert stories("China curbs gallium exports. Licences are needed from August.") == []
    one_story = "Headline\nFirst sentence. Second sentence.\nA closing remark."
    assert stories(one_story) == []          # a single paragraph of two sentences
    section_marks = ("俄罗斯国防部称击落多架无人机。乌方称前线局势紧张。【国际快讯】"
                     "澳大利亚与日本签署稀土合作协议。日本企业将追加投资。")
    assert len(stories(section_marks)) == 2   # 【…】 ends a story like a line break


def test_a_one_line_chinese_bulletin_is_split_at_the_headlines_its_spaces_set_apart() -> None:
    # paragraphs and sub-headlines run together with spaces, as a state-TV site gives them
    war = ("俄方称前线多处交火。乌方称击退多次进攻。 欧盟官员称将继续支持乌克兰。援助计划下月公布。"
           " 乌总统称愿与美签署协议 美敦促乌方签署矿产资源协议 "
           "20日，乌克兰总统在会谈时称愿与美方签署互利协议。美方称协议涉及乌克兰的矿产资源。")
    found = stories(war)
    assert [h for h, _ in found] == ["", "乌总统称愿与美签署协议 美敦促乌方签署矿产资源协议"]
    assert found[0][1] == "俄方称前线多处交火。乌方称击退多次进攻。 欧盟官员称将继续支持乌克兰。援助计划下月公布。"
    assert found[1][1].startswith("20日，乌克兰总统")
    # one story told in paragraphs (no sub-headline) and a numbered list stay one item
    feature = ("江西加快推动产业升级。全省经济稳中向好。 这里是一家铜箔生产车间。设备高效运转。"
               " 今年江西还将实施一批新项目。涉及多个领域。")
    assert stories(feature) == []
    numbered = "【早间新闻精选】 1、美伊签署备忘录。文本稍后公布。 2、铜箔订单排至明年。价格上涨。"
    assert stories(numbered) == []
    # spaces between words of other scripts are no such gaps
    assert stories("Storm warning. Rain all day. Rare earth magnets China will license "
                   "exports. Carmakers fear shortages.") == []
    assert stories("희토류 수출 통제 강화. 업계 비상. 정부 대책 발표. 비축 확대.") == []


def test_an_article_scores_as_its_best_story(model_path: Path) -> None:
    model = SkopsClassifier.load(model_path)
    title = "Evening news"
    whole = model._proba([(title, BULLETIN)])[0]
    magnets = stories(BULLETIN)[1]             # the only story naming a topic word
    expected = [max(a, b) for a, b in zip(whole, model._proba([magnets])[0])]
    assert list(model.predict_proba([(title, BULLETIN)])[0].values()) == expected
    assert expected[0] > whole[0]              # the magnets story beats the diluted whole
    scored = []
    model._proba = lambda prepared: scored.extend(prepared) or type(model)._proba(model, prepared)
    model.predict_proba([(title, BULLETIN)])
    assert scored[1:] == [magnets]             # storm and football are not scored
    del model._proba
    single = ("China restricts magnet exports", "Licences are needed from August.")
    assert list(model.predict_proba([single])[0].values()) == model._proba([single])[0]


def test_the_reasons_name_the_story_that_raised_the_probability(model_path: Path) -> None:
    model = SkopsClassifier.load(model_path)
    (probs, label), (_, none) = model.predict_with_stories(
        [("Evening news", BULLETIN), ("China restricts magnet exports", "Licences from August.")])
    assert label == "Rare earth magnets" and none is None
    verdict, = classify_articles([("Evening news", BULLETIN)], model, KeywordRules.empty(), 0.5)
    assert 'from story "Rare earth magnets"' in verdict.reasons
    assert verdict.probabilities == probs


def test_story_labels_are_headlines_or_a_short_start() -> None:
    from monitor.classify import story_label

    assert story_label("Rare earth magnets", "China will require licences.") == "Rare earth magnets"
    long_start = "China will require export licences for seven rare earth elements from May."
    assert story_label("", long_start) == long_start[:59].rstrip() + "…"


def test_skops_classifier_is_a_classifier(model_path: Path) -> None:
    model: Classifier = SkopsClassifier.load(model_path)
    assert isinstance(model.version, str)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.skops"
    with pytest.raises(ClassifierError, match=r"nope\.skops: model file is missing"):
        SkopsClassifier.load(path)


def test_missing_card(model_copy: Path) -> None:
    card_path(model_copy).unlink()
    with pytest.raises(ClassifierError, match="model card .* is missing"):
        SkopsClassifier.load(model_copy)


def test_truncated_file(model_copy: Path) -> None:
    data = model_copy.read_bytes()
    model_copy.write_bytes(data[: len(data) // 2])
    with pytest.raises(ClassifierError, match=str(model_copy)):
        SkopsClassifier.load(model_copy)


def test_garbage_file(model_copy: Path) -> None:
    model_copy.write_bytes(b"PK\x03\x04 this is not a model" * 10)
    with pytest.raises(ClassifierError, match="classifier.skops: does not match its model card"):
        SkopsClassifier.load(model_copy)
    _recard(model_copy)                       # the card rewritten too: the archive is read
    with pytest.raises(ClassifierError, match="classifier.skops: cannot load model"):
        SkopsClassifier.load(model_copy)


def test_a_changed_archive_is_refused_without_the_arrays(model_copy: Path) -> None:
    def unchanged(schema: dict[str, Any]) -> None:
        """The archive is written again: the same schema, other bytes."""

    _rewrite_schema(model_copy, unchanged, recard=False)
    with pytest.raises(ClassifierError, match=r"does not match its model card \(SHA-256"):
        SkopsClassifier.load(model_copy)


def test_other_sklearn_major_version_in_card(model_copy: Path) -> None:
    card = json.loads(card_path(model_copy).read_text())
    card["sklearn_version"] = "0.24.2"
    card_path(model_copy).write_text(json.dumps(card))
    with pytest.raises(ClassifierError, match=r"trained with scikit-learn 0\.24\.2"):
        SkopsClassifier.load(model_copy)


def test_other_text_preparation(model_copy: Path) -> None:
    card = json.loads(card_path(model_copy).read_text())
    card["preparation"] = "0123456789abcdef"
    card_path(model_copy).write_text(json.dumps(card))
    with pytest.raises(ClassifierError, match="text prepared differently"):
        SkopsClassifier.load(model_copy)


def test_card_without_sklearn_version(model_copy: Path) -> None:
    card_path(model_copy).write_text(json.dumps({"version": "x"}))
    with pytest.raises(ClassifierError, match="does not say its scikit-learn version"):
        SkopsClassifier.load(model_copy)


def test_other_sklearn_major_version_in_archive(model_copy: Path) -> None:
    def older(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["_sklearn_version"]["content"] = '"0.23.1"'

    _rewrite_schema(model_copy, older)
    with pytest.raises(ClassifierError, match=r"0\.23\.1 \(the archive\)"):
        SkopsClassifier.load(model_copy)


def test_tampered_file_with_a_function_is_refused(model_copy: Path) -> None:
    def evil(schema: dict[str, Any]) -> None:
        schema["content"]["content"]["memory"] = {
            "__class__": "system", "__module__": "os", "__loader__": "FunctionNode",
            "content": {"module_path": "os", "function": "system"}, "__id__": 1}

    _rewrite_schema(model_copy, evil)
    with pytest.raises(ClassifierError, match=r"unexpected types: os\.system"):
        SkopsClassifier.load(model_copy)


def test_tampered_file_with_another_estimator_is_refused(model_copy: Path) -> None:
    def swap(schema: dict[str, Any]) -> None:
        schema["__class__"], schema["__module__"] = "SVC", "sklearn.svm._classes"

    _rewrite_schema(model_copy, swap)
    with pytest.raises(ClassifierError, match=r"unexpected types: sklearn\.svm\._classes\.SVC"):
        SkopsClassifier.load(model_copy)


def test_trusted_types_are_explicit_names() -> None:
    assert all(isinstance(t, str) and "." in t for t in TRUSTED_TYPES)


# --- the card and the archive are what training writes ----------------------------------

def _edit_card(path: Path, change: Any) -> None:
    card = json.loads(card_path(path).read_text())
    change(card)
    card_path(path).write_text(json.dumps(card))


def _set_thresholds(default: Any, languages: Any = None) -> Any:
    def change(card: dict[str, Any]) -> None:
        card["thresholds"] = {"default": default, "languages": languages or {}}
    return change


BAD_CARDS = {
    "a word": (_set_thresholds({CM: "abc", EC: 0.5}), r"thresholds\.default\.critical-minerals: 'abc'"),
    "a list": (_set_thresholds([0.5]), r"thresholds\.default: must be an object"),
    "above 1": (_set_thresholds({CM: 2.0, EC: 0.5}), r"thresholds\.default\.critical-minerals: 2\.0"),
    "negative": (_set_thresholds({CM: 0.5, EC: -1}), r"thresholds\.default\.export-controls: -1"),
    "a topic missing": (_set_thresholds({CM: 0.5}), r"thresholds\.default\.export-controls: missing"),
    "an unknown topic": (_set_thresholds({CM: 0.5, EC: 0.5, "gold": 0.5}),
                         r"thresholds\.default\.gold: not a topic"),
    "a language's": (_set_thresholds({CM: 0.5, EC: 0.5}, {"zh": {EC: 1.5}}),
                     r"thresholds\.languages\.zh\.export-controls: 1\.5"),
    "topics reversed": (lambda card: card.update(topics=list(reversed(TOPICS))), "topics .* are not"),
    "topics renamed": (lambda card: card.update(topics=["minerals", "controls"]), "topics .* are not"),
}


@pytest.mark.parametrize("case", list(BAD_CARDS))
def test_a_card_with_bad_topics_or_thresholds_is_refused_naming_the_field(
        model_path: Path, tmp_path: Path, case: str) -> None:
    from monitor.classify import check_model_file

    path = tmp_path / "classifier.skops"
    save_model(SkopsClassifier.load(model_path).pipeline, path, _card_for("edited"))
    change, field = BAD_CARDS[case]
    _edit_card(path, change)
    message = f"{path}: model card {card_path(path)}: {field}"
    with pytest.raises(ClassifierError, match=message):
        SkopsClassifier.load(path)
    with pytest.raises(ClassifierError, match=message):       # what `config check` warns of
        check_model_file(path)


def test_a_card_with_good_thresholds_loads(model_path: Path, tmp_path: Path) -> None:
    path = tmp_path / "classifier.skops"
    save_model(SkopsClassifier.load(model_path).pipeline, path, _card_for("edited"))
    _edit_card(path, _set_thresholds({CM: 0.3, EC: 0.6}, {"zh": {EC: 0.7}}))
    limits = SkopsClassifier.load(path).thresholds
    assert limits.for_language("zh") == {CM: 0.3, EC: 0.7}


def _dump_with_card(estimator: Any, path: Path) -> None:
    import sklearn
    import skops.io

    skops.io.dump(estimator, path)
    card_path(path).write_text(json.dumps({
        "version": "elsewhere", "sklearn_version": sklearn.__version__,
        "preparation": preparation_fingerprint(), "topics": list(TOPICS)}))


def test_a_bare_regression_from_elsewhere_is_refused_at_load(tmp_path: Path) -> None:
    """Every type is on the allow-list, the card has no SHA-256 and no arrays: the object is
    not what training builds, and loading says so (it used to crash when classifying)."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    path = tmp_path / "classifier.skops"
    _dump_with_card(LogisticRegression().fit(np.array([[0.0], [1.0]]), [0, 1]), path)
    with pytest.raises(ClassifierError, match=r"classifier\.skops: not a model monitor trained "
                                              r"\(it holds a LogisticRegression"):
        SkopsClassifier.load(path)


def test_a_pipeline_of_other_steps_is_refused_at_load(tmp_path: Path) -> None:
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    path = tmp_path / "classifier.skops"
    pipeline = Pipeline([("tfidf", TfidfVectorizer()), ("lr", LogisticRegression())])
    pipeline.fit(["rare earth exports", "football results"], np.array([1, 0]))
    _dump_with_card(pipeline, path)
    with pytest.raises(ClassifierError, match=r"its steps are \['tfidf', 'lr'\]"):
        SkopsClassifier.load(path)


def _rewrite_schema(path: Path, change: Any, recard: bool = True) -> None:
    """Change the archive's schema; with ``recard`` the card's SHA-256 follows, as if
    whoever changed the file had rewritten the card as well (the deeper checks then
    refuse it)."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    change(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    if recard:
        _recard(path)


def _recard(path: Path) -> None:
    card = json.loads(card_path(path).read_text())
    card["model_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    card_path(path).write_text(json.dumps(card))


# --- classify_articles ----------------------------------------------------------------

class FakeClassifier:
    version = "fake-1"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_with_stories(self, docs: Any) -> list[tuple[dict[str, float], str | None]]:
        self.calls.append(len(docs))
        return [({CM: 0.9 if "lithium" in text else 0.1, EC: 0.2}, None) for _t, text in docs]


def test_classify_articles_is_one_batched_call() -> None:
    fake = FakeClassifier()
    rules = KeywordRules.compile({"export-controls": ["entity list"]})
    verdicts = classify_articles([("a", "lithium mine"), ("b", "entity list"), ("c", "")],
                                 fake, rules, 0.5)
    assert fake.calls == [3]
    assert [v.topics for v in verdicts] == [(CM,), (EC,), ()]
    assert all(v.model_version == "fake-1" for v in verdicts)


def test_classify_articles_without_model_uses_keywords() -> None:
    rules = KeywordRules.compile({"critical-minerals": ["稀土"]})
    verdicts = classify_articles([("稀土价格上涨", ""), ("金价", "")], None, rules, 0.5)
    assert [v.flagged for v in verdicts] == [True, False]
    assert verdicts[0].reasons == ("classifier unavailable", 'keyword "稀土"')
