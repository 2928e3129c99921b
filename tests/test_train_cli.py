"""`monitor train` end to end: corpus plus an analyst's review from a real store."""

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.storage import open_store
from monitor.feedstate import feed_outcome
from monitor.types import ArticleWrite, FeedOutcome, ParsedArticle

from conftest import utc
from storeview import due_feeds

FIXTURE = Path(__file__).parent / "fixtures"


def _corpus_and_config(tmp_path, db):
    """A corpus folder holding the fixture corpus, a config on store ``db``, the model path."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "fixture.jsonl").write_text((FIXTURE / "classifier_corpus.jsonl").read_text())
    config = tmp_path / "monitor.toml"
    model = tmp_path / "model" / "classifier.skops"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n[classifier]\nmodel = "{model}"\n')
    return corpus, config, model


class Feed:
    name, url, lang, interval_minutes, silent_after_days = "wire", "https://wire.example/rss", None, None, None


def test_train_uses_reviews_and_refuses_a_worse_model(tmp_path):
    db = tmp_path / "m.db"
    store = open_store(f"sqlite:///{db}")
    store.sync_feeds([Feed()], utc(2025, 6, 1))
    feed = due_feeds(store, utc(2025, 6, 1))[0]
    article = ParsedArticle(key="k", guid="k", url="https://wire.example/a", title="Smelter restarts tin line",
                            text="The plant in Bolivia resumed tin output after repairs.", published=None,
                            language="en", content_hash="h")
    polled = FeedOutcome(polled_at=utc(2025, 6, 1), next_check_at=utc(2025, 6, 1) + timedelta(hours=1))
    store.save_poll(feed.id, [ArticleWrite(article, "en", None)], feed_outcome(feed, polled, new=True))
    import sqlite3

    article_id = sqlite3.connect(db).execute("select id from article").fetchone()[0]
    store.add_reviews({article_id: ("critical-minerals",)}, "relevant", "tin counts", "ana", utc(2025, 6, 2))
    store.close()
    corpus, config, model = _corpus_and_config(tmp_path, db)
    labels = tmp_path / "labels"          # no labels of real items: the written corpus alone
    labels.mkdir()

    def run(*args):
        return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "train",
                               "--corpus", str(corpus), "--labels", str(labels), *args],
                              capture_output=True, text=True)

    first = run()
    assert first.returncode == 0, first.stderr
    assert "no real items (no labels)" in first.stdout
    card = json.loads(model.with_name("classifier.card.json").read_text())
    assert card["n_reviews"] == 1 and "1 reviews (1 trained on, 0 in the held-out part)" in first.stdout
    assert card["reviews"] == {"given": 1, "trained_on": 1, "held_out": 0, "superseded": 0}
    records = [json.loads(line) for line in (FIXTURE / "classifier_corpus.jsonl").read_text().splitlines()]
    shuffled = [{**r, "topics": records[(i + 7) % len(records)]["topics"]}   # labels from other items
                for i, r in enumerate(records)]
    (corpus / "fixture.jsonl").write_text("\n".join(json.dumps(r) for r in shuffled))
    worse = run()
    assert worse.returncode == 1 and "NOT written" in worse.stdout
    assert json.loads(model.with_name("classifier.card.json").read_text())["version"] == card["version"]
    assert run("--force").returncode == 0


def test_train_says_when_it_finds_no_store_for_the_reviews(tmp_path):
    """A relative store URL and another folder: every other store command refuses and names
    the file; train had said nothing and left the analysts' verdicts out ("0 reviews")."""
    corpus, config, model = _corpus_and_config(tmp_path, tmp_path / "elsewhere" / "m.db")
    labels = tmp_path / "labels"
    labels.mkdir()
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "train",
                           "--corpus", str(corpus), "--labels", str(labels)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (f"note: no store at {tmp_path / 'elsewhere' / 'm.db'} (store.url in {config}): "
            "trained without analysts' reviews") in done.stderr
    assert model.exists()


def test_train_names_verdicts_whose_article_was_deleted_by_hand(tmp_path):
    """An article deleted with the sqlite3 shell (foreign keys off there) leaves its verdict
    behind: training cannot read its text and had left it out without a word."""
    import sqlite3

    db = tmp_path / "m.db"
    store = open_store(f"sqlite:///{db}")
    store.sync_feeds([Feed()], utc(2025, 6, 1))
    feed = due_feeds(store, utc(2025, 6, 1))[0]
    writes = [ArticleWrite(ParsedArticle(key=k, guid=k, url=f"https://wire.example/{k}", title=f"Tin line {k}",
                                         text="The smelter resumed tin output.", published=None,
                                         language="en", content_hash=k), "en", None) for k in ("a", "b")]
    polled = FeedOutcome(polled_at=utc(2025, 6, 1), next_check_at=utc(2025, 6, 1) + timedelta(hours=1))
    store.save_poll(feed.id, writes, feed_outcome(feed, polled, new=True))
    kept, gone = [row[0] for row in sqlite3.connect(db).execute("select id from article order by id")]
    store.add_reviews({kept: ("critical-minerals",), gone: ("critical-minerals",)}, "relevant", "", "ana",
                      utc(2025, 6, 2))
    store.close()
    with sqlite3.connect(db) as shell:                     # the shell's default: foreign keys off
        shell.execute("delete from article where id = ?", (gone,))
    with open_store(f"sqlite:///{db}") as again:
        assert again.orphaned_verdicts() == [gone]
        assert [r["id"] for r in again.reviews_for_training()[0]] == [f"review:{kept}"]
    corpus, config, model = _corpus_and_config(tmp_path, db)
    labels = tmp_path / "labels"
    labels.mkdir()
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "train",
                           "--corpus", str(corpus), "--labels", str(labels)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (f"note: 1 verdict(s) left out: their article is no longer in the store (#{gone}), so there "
            "is no text to train on") in done.stderr
    assert "1 reviews (1 trained on" in done.stdout


def test_a_first_out_is_compared_with_the_model_in_use_and_says_so(tmp_path):
    """`monitor train --out NEW` with no NEW yet was compared with no model at all ("no
    current model with held-out metrics"), so a model far worse than the one the config
    uses was written without a word; now it is compared with classifier.model, refused
    like a worse replacement, and the output names the model it was compared with."""
    corpus, config, model = _corpus_and_config(tmp_path, tmp_path / "m.db")
    labels = tmp_path / "labels"
    labels.mkdir()
    new = tmp_path / "new" / "candidate.skops"

    def run(folder, *args):
        return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "train",
                               "--corpus", str(folder), "--labels", str(labels), *args],
                              capture_output=True, text=True)

    first = run(corpus)                                   # the model in use
    assert first.returncode == 0, first.stderr
    records = [json.loads(line) for line in (FIXTURE / "classifier_corpus.jsonl").read_text().splitlines()]
    worse = tmp_path / "worse"
    worse.mkdir()
    (worse / "fixture.jsonl").write_text("\n".join(
        json.dumps({**r, "topics": records[(i + 7) % len(records)]["topics"]})
        for i, r in enumerate(records)))
    refused = run(worse, "--out", str(new))
    assert refused.returncode == 1 and f"NOT written: {new} (refused: held-out flagged F1" in refused.stdout
    assert (f"compared with the model in use, {model} (classifier.model), as {new} does not "
            "exist yet") in refused.stdout
    assert not new.exists()
    written = run(worse, "--out", str(new), "--force")
    assert written.returncode == 0 and f"written to {new} (forced: " in written.stdout
    again = run(corpus, "--out", str(new))                # now NEW itself is the one replaced
    assert again.returncode == 0, again.stdout
    assert f"compared with the current model at {new}, which it replaces" in again.stdout
    assert f"compared with no model (none at {model} yet)" in first.stdout


def test_train_dev_and_evaluate_keywords_only_score_the_same_keywords_and_name_them(tmp_path):
    """`monitor train --dev` scored "keywords only" with the config's [keywords], `monitor
    evaluate --keywords-only` with the shipped config's: two different baselines under one
    name. Both now use the config's and say which file they came from."""
    corpus, config, _model = _corpus_and_config(tmp_path, tmp_path / "m.db")
    config.write_text(config.read_text() + '[keywords]\ncritical-minerals = ["rye bread"]\n')
    labels = tmp_path / "labels"
    labels.mkdir()
    dev = tmp_path / "dev.jsonl"
    dev.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": "a", "lang": "en", "title": "China tightens export controls on gallium and germanium",
         "text": "Exporters of the two metals now need a licence.", "topics": ["critical-minerals",
                                                                              "export-controls"]},
        {"id": "b", "lang": "en", "title": "Local bakery wins a prize for its rye bread", "text": "",
         "topics": []},
        {"id": "c", "lang": "de", "title": "Neue Lithiummine in Portugal genehmigt", "text": "",
         "topics": ["critical-minerals"]}]))

    def monitor(*args):
        done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    trained = monitor("train", "--corpus", str(corpus), "--labels", str(labels), "--dev", str(dev),
                      "--out", str(tmp_path / "m.skops"))
    card = json.loads((tmp_path / "m.card.json").read_text())
    evaluated = json.loads(monitor("evaluate", str(dev), "--keywords-only", "--json"))
    assert evaluated["flagged"] == card["dev"]["keywords_only"]["flagged"]
    assert evaluated["flagged"]["predicted"] == 1 and evaluated["flagged"]["f1"] == 0   # the rye bread
    assert evaluated["setup"] == f"keywords only ([keywords] of {config}, no model)"
    assert f"dev keywords_only: flagged F1 0.0 ([keywords] of {config})" in trained
    # which rules made the card's figures: the same fingerprint as evaluate's, and another
    # one once the config's keywords change
    assert card["dev"]["keywords"] == evaluated["keywords"]
    assert card["dev"]["keywords"]["critical-minerals"] == 1
    config.write_text(config.read_text().replace('["rye bread"]', '["rye bread", "lithium"]'))
    edited = json.loads(monitor("evaluate", str(dev), "--keywords-only", "--json"))
    assert edited["keywords"]["sha256"] != card["dev"]["keywords"]["sha256"]
    assert edited["keywords"]["critical-minerals"] == 2


def test_train_joins_labels_to_the_pool_and_names_what_is_missing(tmp_path):
    from test_labels import pool_and_labels

    pool, labels = pool_and_labels(tmp_path, n=120)
    corpus, config, model = _corpus_and_config(tmp_path, tmp_path / "m.db")
    base = [sys.executable, "-m", "monitor", "--config", str(config), "train", "--corpus", str(corpus),
            "--labels", str(labels)]
    done = subprocess.run([*base, "--pool", str(pool)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "real items: 120 of 121 labels found in pool.jsonl" in done.stdout
    assert "1 not in the pool" in done.stdout
    card = json.loads(model.with_name("classifier.card.json").read_text())
    assert card["pool"]["joined"] == 120 and len(card["pool"]["sha256"]) == 64
    assert card["sizes"]["real"] == 120 and card["cv"]["on"].startswith("1")   # real items tested
    assert set(card["thresholds"]["default"]) == {"critical-minerals", "export-controls"}
    missing = subprocess.run([*base, "--pool", str(tmp_path / "nope.jsonl")], capture_output=True, text=True)
    assert missing.returncode == 2 and "nope.jsonl: no such pool file" in missing.stderr
    no_corpus = subprocess.run([*base[:-4], "--corpus", str(tmp_path / "none")], capture_output=True, text=True)
    assert no_corpus.returncode == 2 and "name one with --corpus DIR" in no_corpus.stderr


def test_the_printed_review_count_says_how_many_were_trained_on(capsys):
    from types import SimpleNamespace

    from monitor.cli.model import _report_training

    card = {"version": "v", "sizes": {}, "n_reviews": 2, "pool": {"used": False},
            "reviews": {"given": 3, "trained_on": 2, "held_out": 1}}
    _report_training(SimpleNamespace(card=card, replaced=True, path="m", reason="r", compared_with=""), "k")
    assert "3 reviews (2 trained on, 1 in the held-out part)" in capsys.readouterr().out
    del card["reviews"]                         # a card written before the split was counted
    _report_training(SimpleNamespace(card=card, replaced=True, path="m", reason="r", compared_with=""), "k")
    assert ", 2 reviews\n" in capsys.readouterr().out


def test_train_refuses_an_out_that_is_another_models_arrays_or_card(tmp_path):
    """`monitor train --out DIR/m1.linear.npz` (or m1.card.json) beside DIR/m1.skops wrote a
    skops archive over m1's arrays (or card) and said "written to": now refused before
    training, m1 as it was; retraining into DIR/m1.skops itself still works."""
    from monitor.classify import SkopsClassifier

    corpus, config, _model = _corpus_and_config(tmp_path, tmp_path / "m.db")
    labels = tmp_path / "labels"
    labels.mkdir()
    m1 = tmp_path / "dir" / "m1.skops"

    def run(out):
        return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "train",
                               "--corpus", str(corpus), "--labels", str(labels), "--out", str(out),
                               "--force"], capture_output=True, text=True)

    first = run(m1)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in m1.parent.iterdir()}
    assert sorted(before) == ["m1.card.json", "m1.linear.npz", "m1.skops"]
    for name, kind in (("m1.linear.npz", "arrays"), ("m1.card.json", "card")):
        refused = run(m1.with_name(name))
        assert refused.returncode != 0 and "written to" not in refused.stdout
        assert f"{m1.with_name(name)}: it is the {kind} of the model {m1}" in refused.stderr
        assert {p.name: p.read_bytes() for p in m1.parent.iterdir()} == before
    assert SkopsClassifier.load(m1).linear is not None
    again = run(m1)
    assert again.returncode == 0, again.stderr
    assert SkopsClassifier.load(m1).linear is not None


def test_the_help_says_the_corpus_and_labels_are_monitors_own_not_the_current_folders():
    """`--corpus` and `--labels` said "(default: models/corpus)", "(default: models/labels)":
    read from the current folder, an installed package's analyst took it, whereas the
    defaults are the copies that come with monitor (resource_dir)."""
    from click.testing import CliRunner

    from monitor.cli import cli

    text = " ".join(CliRunner().invoke(cli, ["train", "--help"]).output.split())
    assert "(default: models/corpus)" not in text and "(default: models/labels)" not in text
    assert "the one that comes with monitor" in text and "installed package" in text
    assert "the ones that come with monitor" in text


def test_train_makes_no_tables_in_a_database_without_a_store(tmp_path, store_url, monkeypatch):
    """Only `poll` and `run` create the store: `monitor train` on a PostgreSQL database that
    holds none trains without reviews and leaves it empty (a `monitor digest` from cron would
    otherwise find a store there and mail an empty digest from it)."""
    if store_url.startswith("sqlite"):
        pytest.skip("an empty database of a server (a missing SQLite file: the test above)")
    from sqlalchemy import create_engine, inspect

    monkeypatch.delenv("MONITOR_STORE_URL", raising=False)
    config = tmp_path / "monitor.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n')
    # a target named like a card is refused before any training: the reviews are read first
    done = subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "train",
                           "--out", str(tmp_path / "x.card.json")], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "no store in the database" in done.stderr and "trained without analysts' reviews" in done.stderr
    engine = create_engine(store_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
