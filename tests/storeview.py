"""Reading a store in tests: what the program itself never needs to ask (the Store's
public surface is what monitor uses), through the store's engine and table definitions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from monitor.storage.store import _feed_state
from monitor.storage.tables import ARTICLE, FEED
from monitor.types import FeedState


def due_feeds(store, now: datetime, include_all: bool = False) -> list[FeedState]:
    """Active feeds due at ``now`` (all active ones with ``include_all``), soonest first."""
    query = select(FEED).where(FEED.c.active.is_(True)).order_by(FEED.c.next_check_at, FEED.c.id)
    if not include_all:
        query = query.where((FEED.c.next_check_at.is_(None)) | (FEED.c.next_check_at <= now))
    with store.engine.connect() as conn:
        return [_feed_state(r) for r in conn.execute(query)]


def count_articles(store) -> int:
    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ARTICLE)).scalar_one()


def article_keys(store) -> list[tuple[str, str]]:
    """(feed url, article key) of every stored article."""
    query = select(FEED.c.url, ARTICLE.c.key).join(FEED, FEED.c.id == ARTICLE.c.feed_id)
    with store.engine.connect() as conn:
        return [(u, k) for u, k in conn.execute(query)]
