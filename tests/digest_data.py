"""Flagged articles put into a real store for digest tests (text written for the project)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from monitor.storage import open_store
from monitor.feedstate import feed_outcome
from monitor.types import ArticleWrite, FeedOutcome, Mention, ParsedArticle, Verdict
from storeview import due_feeds

T0 = datetime(2025, 6, 3, 4, 0, tzinfo=timezone.utc)


class Feed:
    def __init__(self, name):
        self.name, self.url = name, f"https://{name.lower().replace(' ', '-')}.example/feed"
        self.lang = self.interval_minutes = self.silent_after_days = None


ITEMS = [
    # (feed, key, title, text, topics, score, countries, minerals, minutes after T0)
    ("Metals Desk", "ga-1", "China tightens export licensing for gallium and germanium",
     "BEIJING (Reuters) - China's commerce ministry said on Tuesday that exporters of gallium and "
     "germanium products must obtain licences for every shipment from August 1, citing national security.",
     ("critical-minerals", "export-controls"), 0.97, ("CN",), ("gallium", "germanium"), 10),
    ("Trade Wire", "ga-2", "China tightens export licensing for gallium and germanium - Trade Wire",
     "BEIJING (Reuters) - China's commerce ministry said on Tuesday that exporters of gallium and "
     "germanium products must obtain licences for every shipment from August 1, citing national security.",
     ("critical-minerals", "export-controls"), 0.95, ("CN",), ("gallium", "germanium"), 25),
    ("Rohstoff-Ticker", "li-1", "Chile's Codelco signs lithium offtake with Korean cathode maker",
     "The agreement covers 20,000 tonnes of lithium carbonate a year from the Salar de Maricunga project.",
     ("critical-minerals",), 0.91, ("CL", "KR"), ("lithium",), 60),
    ("Metals Desk", "xss", "<script>alert('x')</script> Nickel ore\r\nBcc: victim@example.org",
     "Indonesia keeps its nickel ore export ban <b>in force</b>; smelters expand.",
     ("critical-minerals", "export-controls"), 0.88, ("ID",), ("nickel",), 90),
    ("Asia Wire", "cjk", "稀土出口管制：商务部发布新规", "商务部宣布对部分中重稀土相关物项实施出口管制。",
     ("critical-minerals", "export-controls"), 0.93, ("CN",), ("rare-earths",), 120),
]


def verdict(topics, score):
    reasons = tuple(f"classifier {t} {score:.2f}" for t in topics) + ('keyword "export control*"',)
    return Verdict(flagged=True, topics=topics, score=score, reasons=reasons, model_version="test")


def fill(url: str, items=ITEMS, t0: datetime = T0, links: dict | None = None,
         published: dict | None = None):
    """A store with ``items``, each first seen ``minutes`` after ``t0``; ``links`` and
    ``published`` (by key) replace an item's link and publication time."""
    store = open_store(url)
    feeds = {name: Feed(name) for name, *_ in items}
    store.sync_feeds(feeds.values(), t0 - timedelta(days=1))
    states = {f.name: f for f in due_feeds(store, t0 + timedelta(days=30))}
    for name, key, title, text, topics, score, countries, minerals, minutes in items:
        when = t0 + timedelta(minutes=minutes)
        link = (links or {}).get(key, f"https://{name.split()[0].lower()}.example/{key}")
        parsed = ParsedArticle(key=key, guid=key, url=link, title=title, text=text,
                               published=(published or {}).get(key, when), language=None,
                               content_hash=key)
        write = ArticleWrite(parsed, "en", verdict(topics, score),
                             countries=tuple(Mention(c, 1) for c in countries),
                             minerals=tuple(Mention(m, 1) for m in minerals))
        outcome = FeedOutcome(polled_at=when, next_check_at=when + timedelta(hours=1), status=200)
        store.save_poll(states[name].id, [write], feed_outcome(states[name], outcome, new=True))
    return store
