"""The digest HTML as a mail client would show it: a headless Chromium screenshot.

Skipped with a message where Chromium is not installed (.ci/run installs Debian's
chromium), at a desktop and a phone width. The README's picture is made by
docs/screenshot.py from a realistic day.
"""

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "tests" / "golden" / "digest.html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
@pytest.mark.parametrize("width", [800, 390], ids=["desktop", "phone"])
def test_digest_screenshot(tmp_path, width):
    out = tmp_path / "digest.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking", "--disable-component-update",
                    "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--hide-scrollbars",
                    f"--window-size={width},1400", f"--screenshot={out}", GOLDEN.as_uri()],
                   check=True, capture_output=True, timeout=120)
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (width, 1400)
    assert len(data) > 20_000                                          # a rendered page, not blank


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_a_long_unbroken_title_or_feed_error_stays_within_a_phone_screen(tmp_path):
    """A title with no space to break at (a link used as the title, a run of joined tags)
    and a feed error naming a long address are wrapped within the page: they had widened
    it to 2,000 px, so on a phone every line of the digest scrolled sideways."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from monitor.digest import build_digest, render
    from monitor.types import DigestArticle, FeedHealth

    when = datetime(2025, 6, 3, 4, tzinfo=timezone.utc)
    long_word = "https://metals.example/story?ref=" + "GalliumGermaniumExportLicensing" * 8
    article = DigestArticle(id=1, title=long_word, text="Exporters of gallium need a licence for "
                            "every shipment, the ministry said.", url="https://metals.example/1",
                            source="Metals Desk", published=when, first_seen=when, language="en",
                            topics=("export-controls",), score=0.9,
                            reasons=("classifier export-controls 0.90",), countries=(), minerals=())
    feed = FeedHealth(name="Wire", url="https://wire.example/feed", active=True, health="broken",
                      last_polled_at=when, last_status=404, error_count=3,
                      last_error="HTTP 404 for " + long_word, next_check_at=when,
                      last_new_at=None, articles=0)
    digest = build_digest([article], {}, digest_date="2025-06-03", period_start=when,
                          period_end=when, zone=ZoneInfo("UTC"), max_items=40,
                          unhealthy_feeds=[feed])
    page_file = tmp_path / "digest.html"
    page_file.write_text(render(digest, "subject")[0], encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            for width in (375, 1280):
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.goto(page_file.as_uri())
                assert page.evaluate("document.documentElement.scrollWidth") <= width
                page.close()
        finally:
            browser.close()


@pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")
def test_the_country_table_fits_a_phone_screen(tmp_path):
    """The country table at its widest (export controls and four minerals, long country and
    mineral names) fits the page on a 375 px phone: its last column had run 24 px past the
    right edge, cut off."""
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed")
    from datetime import datetime, timezone
    from zoneinfo import ZoneInfo

    from monitor.digest import build_digest, render
    from monitor.types import DigestArticle

    when = datetime(2025, 6, 3, 4, tzinfo=timezone.utc)
    minerals = ("platinum-group-metals", "rare-earths", "graphite", "lithium", "nickel")
    countries = ("CD", "US", "KR", "CN", "DE", "GB", "AE")
    articles = [DigestArticle(id=n + 1, title=f"Story {n} on mineral supply and export licences",
                              text="The ministry said exporters need a licence.",
                              url=f"https://metals.example/{n}", source="Metals Desk",
                              published=when, first_seen=when, language="en",
                              topics=("export-controls", "critical-minerals"), score=0.9,
                              reasons=("classifier export-controls 0.90",),
                              countries=countries[n % 4:n % 4 + 4], minerals=minerals[n % 2:n % 2 + 4])
                for n in range(12)]
    digest = build_digest(articles, {}, digest_date="2025-06-03", period_start=when,
                          period_end=when, zone=ZoneInfo("UTC"), max_items=40)
    assert len(digest.table_columns) == 5
    page_file = tmp_path / "digest.html"
    page_file.write_text(render(digest, "subject")[0], encoding="utf-8")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 375, "height": 800})
            page.goto(page_file.as_uri())
            assert page.evaluate("document.documentElement.scrollWidth") <= 375
            right = page.evaluate("document.querySelector('table.summary').getBoundingClientRect().right")
            assert right <= 375
        finally:
            browser.close()
