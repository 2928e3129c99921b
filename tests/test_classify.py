"""Text preparation, saving and safe loading of the model, batched prediction."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from monitor import TOPICS
from monitor.classify import (
    TRUSTED_TYPES, Classifier, SkopsClassifier, card_path, classify_articles,
    prepare_text, save_model)
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
                                "topics": list(TOPICS)})
    return path


@pytest.fixture()
def model_copy(model_path: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "classifier.skops"
    copy.write_bytes(model_path.read_bytes())
    card_path(copy).write_bytes(card_path(model_path).read_bytes())
    return copy


# --- prepare_text -----------------------------------------------------------------------

def test_prepare_text_lowercases_and_repeats_the_title() -> None:
    assert prepare_text("Rare Earths", "Prices ROSE.") == "rare earths rare earths prices rose."


def test_prepare_text_sets_cjk_characters_apart() -> None:
    assert prepare_text("", "中国稀土出口") == "中 国 稀 土 出 口"
    assert prepare_text("", "レアアース規制") == "レ ア ア ー ス 規 制"
    assert prepare_text("", "희토류 수출") == "희 토 류 수 출"


def test_prepare_text_normalises_full_width_forms() -> None:
    assert prepare_text("", "ＵＳＡ　２０２５") == "usa 2025"


def test_prepare_text_without_title() -> None:
    assert prepare_text("", "Only text") == prepare_text(None, "Only text") == "only text"  # type: ignore[arg-type]


# --- save and load ------------------------------------------------------------------------

def test_save_writes_compressed_skops_and_card(model_path: Path) -> None:
    with zipfile.ZipFile(model_path) as archive:
        assert "schema.json" in archive.namelist()
        assert all(i.compress_type == zipfile.ZIP_DEFLATED for i in archive.infolist())
    card = json.loads(card_path(model_path).read_text())
    assert card["version"] == "test-1"
    assert card_path(model_path).name == "classifier.card.json"


def test_saved_vocabulary_values_are_plain_ints(model_path: Path) -> None:
    model = SkopsClassifier.load(model_path)
    vocabulary = model.pipeline.named_steps["tfidf"].vocabulary_
    assert vocabulary and all(type(v) is int for v in vocabulary.values())


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
    with pytest.raises(ClassifierError, match="cannot load model"):
        SkopsClassifier.load(model_copy)


def test_other_sklearn_major_version_in_card(model_copy: Path) -> None:
    card = json.loads(card_path(model_copy).read_text())
    card["sklearn_version"] = "0.24.2"
    card_path(model_copy).write_text(json.dumps(card))
    with pytest.raises(ClassifierError, match=r"trained with scikit-learn 0\.24\.2"):
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


def _rewrite_schema(path: Path, change: Any) -> None:
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    schema = json.loads(members["schema.json"])
    change(schema)
    members["schema.json"] = json.dumps(schema).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)


# --- classify_articles ----------------------------------------------------------------

class FakeClassifier:
    version = "fake-1"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict_proba(self, docs: Any) -> list[dict[str, float]]:
        self.calls.append(len(docs))
        return [{CM: 0.9 if "lithium" in text else 0.1, EC: 0.2} for _t, text in docs]


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
