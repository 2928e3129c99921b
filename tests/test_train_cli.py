"""`monitor train` end to end: corpus plus an analyst's review from a real store."""

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

from monitor.storage import open_store
from monitor.types import ArticleWrite, FeedOutcome, ParsedArticle

from conftest import utc

FIXTURE = Path(__file__).parent / "fixtures"


class Feed:
    name, url, lang, interval_minutes, silent_after_days = "wire", "https://wire.example/rss", None, None, None


def test_train_uses_reviews_and_refuses_a_worse_model(tmp_path):
    db = tmp_path / "m.db"
    store = open_store(f"sqlite:///{db}")
    store.sync_feeds([Feed()], utc(2025, 6, 1))
    feed = store.due_feeds(utc(2025, 6, 1))[0]
    article = ParsedArticle(key="k", guid="k", url="https://wire.example/a", title="Smelter restarts tin line",
                            text="The plant in Bolivia resumed tin output after repairs.", published=None,
                            language="en", content_hash="h")
    store.save_poll(feed, [ArticleWrite(article, "en", None)],
                    FeedOutcome(polled_at=utc(2025, 6, 1), next_check_at=utc(2025, 6, 1) + timedelta(hours=1)))
    import sqlite3

    article_id = sqlite3.connect(db).execute("select id from article").fetchone()[0]
    store.add_reviews({article_id: ("critical-minerals",)}, "relevant", "tin counts", "ana", utc(2025, 6, 2))
    store.close()
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "fixture.jsonl").write_text((FIXTURE / "classifier_corpus.jsonl").read_text())
    config = tmp_path / "monitor.toml"
    model = tmp_path / "model" / "classifier.skops"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n[classifier]\nmodel = "{model}"\n')
    run = lambda *args: subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), "train",
                                        "--corpus", str(corpus), *args], capture_output=True, text=True)
    first = run()
    assert first.returncode == 0, first.stderr
    card = json.loads(model.with_name("classifier.card.json").read_text())
    assert card["n_reviews"] == 1 and "1 reviews" in first.stdout
    records = [json.loads(line) for line in (FIXTURE / "classifier_corpus.jsonl").read_text().splitlines()]
    shuffled = [{**r, "topics": records[(i + 7) % len(records)]["topics"]}   # labels from other items
                for i, r in enumerate(records)]
    (corpus / "fixture.jsonl").write_text("\n".join(json.dumps(r) for r in shuffled))
    worse = run()
    assert worse.returncode == 1 and "NOT written" in worse.stdout
    assert json.loads(model.with_name("classifier.card.json").read_text())["version"] == card["version"]
    assert run("--force").returncode == 0
