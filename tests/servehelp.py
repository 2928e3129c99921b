"""A real `monitor serve` in a subprocess on 127.0.0.1 (a free port), for the web tests."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from digest_data import Feed

from monitor.feedstate import feed_outcome
from monitor.storage import open_store
from monitor.types import ArticleWrite, FeedOutcome, Mention, ParsedArticle, Verdict
from storeview import due_feeds

KEY = "test-review-key-0123456789"


def write_config(path: Path, store_url: str, outbox: Path, *, review_url: str = "",
                 extra: str = "") -> Path:
    path.write_text(f'[store]\nurl = "{store_url}"\n'
                    f'[digest]\nrecipients = ["ana@example.org", "ben@example.org"]\n'
                    f'outbox_dir = "{outbox}"\nreview_url = "{review_url}"\n'
                    f'[serve]\npage_size = 5\n{extra}', encoding="utf-8")
    return path


class Served:
    """``with Served(config) as s: httpx.get(s.url + "/")``"""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.config, self.args = config, args
        self.env = {**os.environ, "MONITOR_REVIEW_KEY": KEY, "USER": "tester", **(env or {})}
        self.url = ""
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Served:
        self.proc = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(self.config),
                                      "serve", "--port", "0", *self.args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=self.env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        found = re.search(r"(http://\S+?)/ ", line)
        if not found:
            self.proc.kill()
            raise AssertionError(f"monitor serve did not start: {line!r} {self.proc.stderr.read()!r}")
        self.url = found.group(1)
        return self

    def __exit__(self, *exc) -> None:
        assert self.proc is not None
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.stderr = self.proc.stderr.read() if self.proc.stderr else ""


NOW = datetime.now(timezone.utc).replace(microsecond=0)


# (feed, key, title, text, language, topics, countries, minerals, hours ago); text written for the tests
ITEMS = [
    ("Metals Desk", "ga", "China tightens export licensing for gallium and germanium",
     "Exporters of gallium and germanium products must obtain licences for every shipment.",
     "en", ("critical-minerals", "export-controls"), ("CN",), ("gallium", "germanium"), 2),
    ("Metals Desk", "xss", "<script>alert('x')</script> Nickel ore",
     "Indonesia keeps its nickel ore export ban <b>in force</b>.", "en", ("critical-minerals",),
     ("ID",), ("nickel",), 3),
    ("Rohstoff-Ticker", "li", "Codelco unterzeichnet Lithium-Abnahmevertrag mit koreanischem Hersteller",
     "Die Vereinbarung umfasst 20.000 Tonnen Lithiumcarbonat pro Jahr.", "de", ("critical-minerals",),
     ("CL", "KR"), ("lithium",), 4),
    ("Asia Wire", "cjk", "稀土出口管制：商务部发布新规", "商务部宣布对部分中重稀土相关物项实施出口管制。",
     "zh", ("critical-minerals", "export-controls"), ("CN",), ("rare-earths",), 5),
    ("Trade Wire", "chips", "US adds chip firms to the Entity List", "The Commerce Department added "
     "companies to the Entity List over advanced computing chips.", "en", ("export-controls",),
     ("US", "CN"), (), 6),
    ("Trade Wire", "co", "Cobalt price slides as Congo output grows", "Cobalt hydroxide prices fell "
     "for a third week.", "en", ("critical-minerals",), ("CD",), ("cobalt",), 30),
    ("Trade Wire", "old", "Graphite anode plant opens in Poland", "A plant for synthetic graphite "
     "anodes opened near Katowice.", "en", ("critical-minerals",), ("PL",), ("graphite",), 24 * 40),
    ("Trade Wire", "plain", "Codelco quarterly results", "Copper giant Codelco reported results for the "
     "quarter; nothing about lithium.", "en", (), ("CL",), (), 7),
]


def fill(url: str) -> dict[str, int]:
    """The items in a real store; key → article id."""
    store = open_store(url)
    feeds = {name: Feed(name) for name, *_ in ITEMS}
    store.sync_feeds(feeds.values(), NOW - timedelta(days=60))
    states = {f.name: f for f in due_feeds(store, NOW + timedelta(days=1))}
    for name, key, title, text, lang, topics, countries, minerals, hours in ITEMS:
        when = NOW - timedelta(hours=hours)
        reasons = tuple(f"classifier {t} 0.90" for t in topics)
        verdict = Verdict(flagged=bool(topics), topics=topics, score=0.9 if topics else 0.1,
                          reasons=reasons, model_version="test")
        parsed = ParsedArticle(key=key, guid=key, url=f"https://{key}.example/a", title=title, text=text,
                               published=when, language=lang, content_hash=key)
        write = ArticleWrite(parsed, lang, verdict, countries=tuple(Mention(c, 1) for c in countries),
                             minerals=tuple(Mention(m, 1) for m in minerals))
        outcome = FeedOutcome(polled_at=NOW, next_check_at=NOW + timedelta(hours=1), status=200)
        store.save_poll(states[name].id, [write], feed_outcome(states[name], outcome, new=True))
    ids = {}
    for view in store.review_list(include_unflagged=True, limit=None):
        ids[next(k for _, k, t, *_ in ITEMS if t == view.title)] = view.id
    store.close()
    return ids
