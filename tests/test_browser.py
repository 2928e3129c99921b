"""The review loop in a real browser: headless Chromium (Debian's package) driven by
Playwright against a real `monitor serve` on 127.0.0.1 and a real store.

Open the "not relevant" link of a delivered digest, confirm with one click, see the
verdict in `monitor review list --status irrelevant` and in the next `monitor train`.
Skipped with a message where Chromium or Playwright is missing (.ci/run installs both).
"""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from servehelp import KEY, Served, fill, write_config

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FIXTURE = Path(__file__).parent / "fixtures"
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def monitor(config: Path, *args: str, env=None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "monitor", "--config", str(config), *args],
                          capture_output=True, text=True, env={**os.environ, **(env or {})})


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_a_digest_link_marks_an_item_not_relevant_and_training_picks_it_up(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    db = tmp_path / "m.db"
    ids = fill(f"sqlite:///{db}")
    model = tmp_path / "model" / "classifier.skops"
    config = write_config(tmp_path / "monitor.toml", f"sqlite:///{db}", tmp_path / "outbox",
                          extra=f'[classifier]\nmodel = "{model}"\n')
    with Served(config) as served:
        write_config(config, f"sqlite:///{db}", tmp_path / "outbox", review_url=served.url,
                     extra=f'[classifier]\nmodel = "{model}"\n')
        sent = monitor(config, "digest", env={"MONITOR_REVIEW_KEY": KEY})
        assert sent.returncode == 0, sent.stderr
        eml = next(p for p in (tmp_path / "outbox").glob("*.eml") if "ana" in p.name)
        message = message_from_bytes(eml.read_bytes(), policy=policy.default)
        text = message.get_body(("plain",)).get_content()
        link = re.search(r"Not relevant: (http://\S+/items/(\d+)\?t=\S+)", text)
        assert link, text
        item = int(link.group(2))

        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(link.group(1))
                assert page.url == f"{served.url}/items/{item}?v=irrelevant"       # the token left the address
                assert "reviewing as ana@example.org" in page.inner_text("header")
                assert "You chose not relevant" in page.inner_text("form.verdict")
                page.fill("textarea[name=note]", "not about supply")
                page.click("button[value=irrelevant]")
                assert "Saved: not relevant" in page.inner_text("p.saved")
                assert "ana@example.org: not relevant — not about supply" in page.inner_text("ul.history")
                for width, name in ((1200, "desktop"), (390, "phone")):
                    page.set_viewport_size({"width": width, "height": 900})
                    for path in ("/", f"/items/{item}"):
                        page.goto(served.url + path)
                        shot = tmp_path / f"{name}{path.replace('/', '-')}.png"
                        page.screenshot(path=str(shot), full_page=True)
                        assert png_size(shot)[0] == width and shot.stat().st_size > 10_000
                page.goto(served.url + "/?status=irrelevant")
                assert page.locator("table.items a.title").count() == 1
            finally:
                browser.close()

    listed = monitor(config, "review", "list", "--status", "irrelevant", "--json")
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == [item]
    assert item in ids.values()
    corpus, labels = tmp_path / "corpus", tmp_path / "labels"
    corpus.mkdir()
    labels.mkdir()
    shutil.copy(FIXTURE / "classifier_corpus.jsonl", corpus / "fixture.jsonl")
    trained = monitor(config, "train", "--corpus", str(corpus), "--labels", str(labels))
    assert trained.returncode == 0, trained.stderr
    assert "1 reviews" in trained.stdout
    reviews = json.loads(model.with_name("classifier.card.json").read_text())["reviews"]
    assert reviews["given"] == 1 and reviews["trained_on"] + reviews["held_out"] == 1


def _add_long_words(store_url: str) -> int:
    """An item whose title holds a word longer than a phone's line, and a feed whose error
    names a long address (text written for the test); the item's id."""
    from datetime import datetime, timedelta, timezone

    from monitor.feedstate import feed_outcome
    from monitor.storage import open_store
    from monitor.types import ArticleWrite, FeedOutcome, ParsedArticle, Verdict
    from storeview import due_feeds

    now = datetime.now(timezone.utc)
    title = "Refinery update " + "GalliumGermaniumAntimonyExportLicenceRegime" * 3 + " announced"
    store = open_store(store_url)
    try:
        first, second = due_feeds(store, now + timedelta(days=1), include_all=True)[:2]
        parsed = ParsedArticle(key="long", guid="long", url="https://long.example/a", title=title,
                               text="Gallium exporters need a licence.", published=now, language="en",
                               content_hash="long")
        verdict = Verdict(flagged=True, topics=("export-controls",), score=0.9,
                          reasons=("classifier export-controls 0.90",), model_version="test")
        store.save_poll(first.id, [ArticleWrite(parsed, "en", verdict)], feed_outcome(
            first, FeedOutcome(polled_at=now, next_check_at=now + timedelta(hours=1), status=200), new=True))
        error = ("HTTP 404 from https://feeds.publisher-with-a-long-name.example/markets/commodities/"
                 "critical-minerals/all-items.xml?format=rss2&region=worldwide")
        store.save_poll(second.id, [], feed_outcome(second, FeedOutcome(
            polled_at=now, next_check_at=now + timedelta(hours=1), status=404, error=error), new=False))
        return next(v.id for v in store.review_list(limit=None) if v.title == title)
    finally:
        store.close()


def test_on_a_phone_a_long_word_wraps_instead_of_widening_the_pages(tmp_path):
    """One title holding a word longer than the line (a compound, a link pasted into a
    headline) made the flagged list wider than a phone's screen: every row's title and its
    review status were cut off at the right edge, and so were that item's heading and the
    feed page's columns beside a feed error naming a long address."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    db = tmp_path / "m.db"
    fill(f"sqlite:///{db}")
    item = _add_long_words(f"sqlite:///{db}")
    config = write_config(tmp_path / "monitor.toml", f"sqlite:///{db}", tmp_path / "outbox")
    with Served(config) as served, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = browser.new_page(viewport={"width": 375, "height": 812}, is_mobile=True)
            for path in ("/", f"/items/{item}", "/feeds"):
                page.goto(served.url + path)
                assert "GalliumGermanium" in page.inner_text("main") or path == "/feeds"
                wide = page.evaluate("document.documentElement.scrollWidth")
                assert wide <= 375, f"{path} is {wide} px wide on a 375 px screen"
        finally:
            browser.close()


def _contrast(fg: str, bg: str) -> float:
    """WCAG contrast ratio of two computed colours ("rgb(r, g, b)")."""
    def luminance(css: str) -> float:
        channels = [int(c) / 255 for c in re.findall(r"\d+", css)[:3]]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b

    high, low = sorted((luminance(fg), luminance(bg)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_verdict_a_digest_link_chose_is_readable_in_light_and_dark_mode(tmp_path):
    """The button of the verdict chosen in the digest is filled with the scheme's green or
    red; its text was white, which on the dark scheme's light green read 1.9:1 ("Relevant")
    and on its light red 2.5:1 ("Not relevant"), below the 4.5:1 that text needs."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    db = tmp_path / "m.db"
    item = fill(f"sqlite:///{db}")["ga"]
    config = write_config(tmp_path / "monitor.toml", f"sqlite:///{db}", tmp_path / "outbox")
    with Served(config) as served, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for scheme in ("light", "dark"):
                page = browser.new_page(viewport={"width": 375, "height": 812}, color_scheme=scheme)
                for verdict in ("relevant", "irrelevant"):
                    page.goto(f"{served.url}/items/{item}?v={verdict}")
                    fg, bg = page.eval_on_selector(
                        f"button.primary[value={verdict}]",
                        "b => [getComputedStyle(b).color, getComputedStyle(b).backgroundColor]")
                    assert _contrast(fg, bg) >= 4.5, (scheme, verdict, fg, bg)
                page.close()
        finally:
            browser.close()


def test_form_fields_stand_out_from_the_page_in_light_and_dark_mode(tmp_path):
    """The edges of the note box, the filters and the keyword lists were drawn in the
    table rules' colour, 1.5:1 on the light page: on a phone in daylight the fields could
    not be told from the page. A field's edge needs 3:1."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (pip install playwright)")
    db = tmp_path / "m.db"
    item = fill(f"sqlite:///{db}")["ga"]
    config = write_config(tmp_path / "monitor.toml", f"sqlite:///{db}", tmp_path / "outbox")
    fields = {"/": ("input[name=country]", "select[name=topic]", "input[name=q]"),
              f"/items/{item}": ("textarea[name=note]", "button[value=relevant]"),
              "/keywords": ("textarea[name=mute]", "input[name=days]")}
    with Served(config) as served, sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            for scheme in ("light", "dark"):
                page = browser.new_page(viewport={"width": 375, "height": 812}, color_scheme=scheme)
                for path, selectors in fields.items():
                    page.goto(served.url + path)
                    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
                    for selector in selectors:
                        edge = page.eval_on_selector(selector, "e => getComputedStyle(e).borderTopColor")
                        assert _contrast(edge, background) >= 3, (scheme, path, selector, edge, background)
                page.close()
        finally:
            browser.close()
