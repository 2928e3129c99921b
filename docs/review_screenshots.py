"""The README's pictures of `monitor serve`: the flagged list (desktop) and one item (phone).

    .venv/bin/python docs/review_screenshots.py    # writes docs/review-list.png, docs/review-item.png

The items are the realistic day of docs/screenshot.py (written for the project), stored in
a throwaway SQLite store through the store's own API; a real `monitor serve` serves them
and headless Chromium (Debian's package, driven by Playwright) takes the pictures.
Needs chromium and playwright.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))

from monitor.feedstate import feed_outcome  # noqa: E402
from monitor.storage import open_store  # noqa: E402
from monitor.types import ArticleWrite, FeedOutcome, Mention, ParsedArticle, Verdict  # noqa: E402
from screenshot import START, articles  # noqa: E402


class _Feed:
    def __init__(self, name: str) -> None:
        self.name, self.url = name, f"https://{name.lower().replace(' ', '-')}.example/feed"
        self.lang = self.interval_minutes = self.silent_after_days = None


def fill(url: str) -> None:
    day, _ = articles()
    store = open_store(url)
    store.sync_feeds([_Feed(n) for n in dict.fromkeys(a.source for a in day)], START - timedelta(days=1))
    ids = {f.name: f.id for f in store.claim_due_feeds(START + timedelta(days=1), "docs", 60, 100)}
    for a in day:
        parsed = ParsedArticle(key=str(a.id), guid=str(a.id), url=a.url, title=a.title, text=a.text,
                               published=a.published, language=a.language, content_hash=str(a.id))
        verdict = Verdict(flagged=True, topics=a.topics, score=a.score, reasons=a.reasons,
                          model_version="2026.03.1")
        write = ArticleWrite(parsed, a.language, verdict, countries=tuple(Mention(c, 1) for c in a.countries),
                             minerals=tuple(Mention(m, 1) for m in a.minerals))
        outcome = FeedOutcome(polled_at=a.published, next_check_at=a.published + timedelta(hours=1), status=200)
        store.save_poll(ids[a.source], [write], feed_outcome(None, outcome, new=True))  # type: ignore[arg-type]
    store.close()


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if chromium is None or sync_playwright is None:
        print("needs chromium and playwright: pictures not refreshed")
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "m.db"
        fill(f"sqlite:///{db}")
        config = Path(tmp) / "monitor.toml"
        config.write_text(f'[store]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
        serve = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "serve", "--port", "0"],
                                 stdout=subprocess.PIPE, text=True, env={**os.environ, "USER": "ana"})
        try:
            url = re.search(r"(http://\S+?)/ ", serve.stdout.readline()).group(1)   # type: ignore[union-attr]
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium, args=[
                    "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--hide-scrollbars"])
                page = browser.new_page(viewport={"width": 1100, "height": 760})
                page.goto(url + "/?topic=critical-minerals")
                page.screenshot(path=str(ROOT / "docs" / "review-list.png"))
                page.set_viewport_size({"width": 390, "height": 1000})
                polish = page.locator("a.title", has_text="KGHM").get_attribute("href")
                page.goto(f"{url}{polish}?v=irrelevant")
                page.screenshot(path=str(ROOT / "docs" / "review-item.png"))
                browser.close()
        finally:
            serve.terminate()
            serve.wait(10)
    print("wrote docs/review-list.png and docs/review-item.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
