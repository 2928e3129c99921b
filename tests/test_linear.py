"""The exported arrays (monitor.linear) give the scikit-learn pipeline's probabilities,
for every feature set `monitor train` can build, and are refused when changed."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor import TOPICS
from monitor.classify import SkopsClassifier, card_path, linear_path, model_input, preparation_fingerprint, save_model
from monitor.exceptions import ClassifierError
from monitor.linear import LinearModel, _char_wb, export
from monitor.train import FEATURES, fit_pipeline, load_jsonl

FIXTURE = Path(__file__).parent / "fixtures" / "classifier_corpus.jsonl"
ROOT = Path(__file__).resolve().parents[1]
ODD = [("", ""), ("A", "b"), ("Zn", "  x  \n\t y   "),
       ("稀土出口管制", "商务部宣布对部分中重稀土相关物项实施出口管制。"),
       ("Exportkontrollen für Gallium", "Die Bundesregierung prüft Ausfuhrkontrollen; Lithium-Akkus nicht."),
       ("U.S. adds 12 firms to the Entity List", "BIS said the rule takes effect at once " * 40)]


def _card() -> dict:
    import sklearn

    return {"version": "lin-1", "sklearn_version": sklearn.__version__, "topics": list(TOPICS),
            "preparation": preparation_fingerprint()}


@pytest.fixture(scope="module")
def corpus() -> list:
    return load_jsonl(FIXTURE)


@pytest.mark.parametrize("features", sorted(FEATURES))
def test_the_arrays_give_the_pipelines_probabilities(features, corpus, tmp_path):
    pipeline = fit_pipeline(corpus, features, seed=0)
    path = tmp_path / "classifier.skops"
    save_model(pipeline, path, _card())
    model = SkopsClassifier.load(path)
    assert model.linear is not None and linear_path(path).is_file()
    docs = [(r["title"], r["text"]) for r in corpus] + ODD
    expected = pipeline.predict_proba(model_input(docs)).tolist()
    for got, want in zip(model._proba(docs), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)


def test_char_ngrams_are_cut_as_scikit_learn_cuts_them():
    from sklearn.feature_extraction.text import TfidfVectorizer

    for low, high in ((4, 4), (2, 5)):
        analyse = TfidfVectorizer(analyzer="char_wb", ngram_range=(low, high), lowercase=False).build_analyzer()
        for text in ("a", "ab", "abc", "abcd", "abcde", " x  y\tzz \n", "稀 土 出 口", "Lithium-Akkus 2026"):
            assert _char_wb(text, low, high) == analyse(text), (text, low, high)


def test_changed_arrays_or_archive_are_refused_and_a_missing_arrays_file_falls_back(corpus, tmp_path):
    path = tmp_path / "classifier.skops"
    save_model(fit_pipeline(corpus, seed=0), path, _card())
    arrays = linear_path(path)
    original = arrays.read_bytes()
    arrays.write_bytes(original[:-10] + b"0123456789")
    with pytest.raises(ClassifierError, match=r"linear\.npz: does not match its model card"):
        SkopsClassifier.load(path)
    arrays.write_bytes(original)
    archive = path.read_bytes()
    path.write_bytes(archive + b"\0")
    with pytest.raises(ClassifierError, match=r"classifier\.skops: does not match its model card"):
        SkopsClassifier.load(path)
    path.write_bytes(archive)
    arrays.unlink()
    fallback = SkopsClassifier.load(path)                 # the pipeline, as before the arrays
    assert fallback.linear is None and fallback.predict_proba([ODD[3]])
    card = json.loads(card_path(path).read_text())
    assert card["linear"]["file"] == "classifier.linear.npz" and len(card["model_sha256"]) == 64
    # without the arrays the archive is still checked against its card
    path.write_bytes(archive + b"\0")
    with pytest.raises(ClassifierError, match=r"classifier\.skops: does not match its model card"):
        SkopsClassifier.load(path)


def test_a_damaged_archive_is_named_not_the_arrays_beside_it(corpus, tmp_path):
    path = tmp_path / "classifier.skops"
    save_model(fit_pipeline(corpus, seed=0), path, _card())
    card = json.loads(card_path(path).read_text())
    path.write_bytes(path.read_bytes()[:1000])
    card["model_sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
    card_path(path).write_text(json.dumps(card))
    with pytest.raises(ClassifierError, match=r"classifier\.skops: cannot load model: BadZipFile"):
        SkopsClassifier.load(path)


def test_a_pipeline_of_another_shape_is_not_exported(corpus):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline

    pipeline = fit_pipeline(corpus, seed=0)
    other = Pipeline([("features", pipeline.named_steps["features"]), ("clf", LogisticRegression())])
    assert export(other) is None


def test_a_file_that_is_not_an_export_is_a_clear_error(tmp_path):
    import numpy as np

    bad = tmp_path / "x.npz"
    np.savez(bad, spec=np.array(json.dumps({"format": 99})))
    with pytest.raises(ValueError, match="format 99"):
        LinearModel.load(bad)


@pytest.mark.skipif(not (ROOT / "models" / "classifier.linear.npz").is_file(), reason="no shipped arrays")
def test_the_shipped_model_classifies_without_importing_scikit_learn(corpus):
    code = ("import sys, json; from monitor.classify import SkopsClassifier; "
            "m = SkopsClassifier.load(sys.argv[1]); "
            "print(json.dumps([m.linear is not None, 'sklearn' in sys.modules, "
            "m.predict_proba([('China curbs gallium exports', 'Licences for gallium and germanium.')])]))")
    out = subprocess.run([sys.executable, "-c", code, str(ROOT / "models" / "classifier.skops")],
                         capture_output=True, text=True, check=True)
    linear, imported, [probs] = json.loads(out.stdout)
    assert linear and not imported
    shipped = SkopsClassifier.load(ROOT / "models" / "classifier.skops")
    docs = [(r["title"], r["text"]) for r in corpus[:200]]
    expected = shipped.pipeline.predict_proba(model_input(docs)).tolist()
    for got, want in zip(shipped._proba(docs), expected, strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    assert probs["critical-minerals"] > 0.5


HARD = ODD + [("\ud800 lone surrogate", "a \x00 b\x00c \U0010ffff x"), ("中 美 日", "稀 土 出 口 管 制 a b"),
              ("x", "y " * 300), ("  ", "\n\n"), ("Ü", "ü ß")]


@pytest.mark.parametrize("features", sorted(FEATURES))
def test_the_term_index_counts_what_the_terms_count(features, corpus, tmp_path):
    """A block with a term index (read from the file) counts each row's known terms as
    cutting the row into terms in Python does, in batches of several sizes."""
    import numpy as np

    path = tmp_path / "classifier.skops"
    save_model(fit_pipeline(corpus, features, seed=0), path, _card())
    indexed = LinearModel.load(linear_path(path))
    with np.load(linear_path(path)) as data:
        plain = {name: data[name] for name in data.files if not name.startswith(("units_", "slots_", "slot_"))}
        assert "units_0" in data.files                # every feature set's word block is indexed
    older = tmp_path / "older.npz"
    np.savez(older, **plain)                        # an export from before the index
    python = LinearModel.load(older)
    assert all(b.index is None and b.vocabulary for b in python.blocks)
    docs = [(r["title"], r["text"]) for r in corpus[:90]] + HARD
    rows = model_input(docs)
    for size in (1, 7, len(rows)):
        for start in range(0, len(rows), size):
            batch = rows[start:start + size]
            for fast, slow in zip(indexed.blocks, python.blocks, strict=True):
                want = slow._count(batch)
                got = fast.index.count(batch, fast.column) if fast.index else fast._count(batch)
                if want is None:
                    assert got is None
                    continue
                assert got is not None
                assert sorted(zip(*(a.tolist() for a in got))) == sorted(zip(*(a.tolist() for a in want)))
            for got_row, want_row in zip(indexed.predict_proba(batch), python.predict_proba(batch), strict=True):
                assert got_row == pytest.approx(want_row, abs=1e-12)


def test_the_key_table_finds_every_key_and_nothing_else():
    import numpy as np

    from monitor.keytable import KeyTable

    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(0, 1 << 62, size=5000))
    table = KeyTable(keys, np.arange(len(keys)))
    assert table.get(keys).tolist() == list(range(len(keys)))
    others = np.setdiff1d(rng.integers(0, 1 << 62, size=5000), keys)
    assert (table.get(others) == -1).all()
    crowded = np.arange(0, 3000 * 1024, 1024)        # keys alike in their low bits
    assert KeyTable(crowded, crowded).get(crowded).tolist() == crowded.tolist()


def test_a_term_index_that_does_not_fit_its_block_is_refused(corpus, tmp_path):
    import numpy as np

    path = tmp_path / "classifier.skops"
    save_model(fit_pipeline(corpus, seed=0), path, _card())
    with np.load(linear_path(path)) as data:
        arrays = {name: data[name] for name in data.files}
    arrays["slot_columns_0"] = arrays["slot_columns_0"] + 10 ** 9
    bad = tmp_path / "bad.npz"
    np.savez(bad, **arrays)
    with pytest.raises(ValueError, match="block 0: its term index does not fit"):
        LinearModel.load(bad)


def test_a_large_batch_is_taken_in_parts_with_the_same_results(corpus, tmp_path, monkeypatch):
    path = tmp_path / "classifier.skops"
    save_model(fit_pipeline(corpus, seed=0), path, _card())
    model = LinearModel.load(linear_path(path))
    rows = model_input([(r["title"], r["text"]) for r in corpus[:40]] + HARD)
    one_by_one = [model.predict_proba(rows[i:i + 1])[0] for i in range(len(rows))]
    monkeypatch.setattr(LinearModel, "CHUNK", 6)
    for got, want in zip(model.predict_proba(rows), one_by_one, strict=True):
        assert got == pytest.approx(want, abs=1e-12)
