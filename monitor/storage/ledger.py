"""Digest selection and the delivery ledger (part of the storage package)."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select, text, tuple_, update
from sqlalchemy.engine import Connection

from monitor.storage.tables import (
    ARTICLE, COUNTRY, DELIVERY, DIGEST, FEED, ITEM, MINERAL, REVIEW, insert_ignore)
from monitor.types import DigestArticle, DigestRecord, Delivery



def _codes(conn: Connection, table, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = defaultdict(list)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        query = select(table.c.article_id, table.c.code).where(
            table.c.article_id.in_(chunk)).order_by(table.c.article_id, table.c.code)
        for article_id, code in conn.execute(query):
            found[article_id].append(code)
    return {k: tuple(v) for k, v in found.items()}


def stored_fields(r, source: str) -> dict:
    """The ``StoredArticle`` fields of an article row (joined with its feed's name)."""
    return dict(id=r.id, title=r.title, text=r.text, url=r.url, source=source,
                published=r.published_at or r.first_seen_at, first_seen=r.first_seen_at,
                language=r.language, publisher=r.publisher)


_COLUMNS = (ARTICLE.c.id, ARTICLE.c.title, ARTICLE.c.text, ARTICLE.c.url, FEED.c.name,
            ARTICLE.c.published_at, ARTICLE.c.first_seen_at, ARTICLE.c.language,
            ARTICLE.c.topics, ARTICLE.c.score, ARTICLE.c.reasons, ARTICLE.c.cluster_id,
            ARTICLE.c.publisher)


def load_articles(conn: Connection, where) -> list[DigestArticle]:
    query = select(*_COLUMNS).join(FEED, FEED.c.id == ARTICLE.c.feed_id).where(where)
    rows = list(conn.execute(query))
    ids = [r.id for r in rows]
    countries, minerals = _codes(conn, COUNTRY, ids), _codes(conn, MINERAL, ids)
    return [DigestArticle(
        **stored_fields(r, r.name), topics=tuple(t for t in r.topics.split(",") if t),
        score=r.score or 0.0, reasons=tuple(json.loads(r.reasons or "[]")),
        countries=countries.get(r.id, ()), minerals=minerals.get(r.id, ()),
        cluster_id=r.cluster_id) for r in rows]


# A poll stamps an article "first seen" when its batch starts and commits it after the
# analysis: a digest made meanwhile (another process) cannot see it, and ends its period
# after the stamp. The next digest therefore looks this far back for articles no digest
# holds, so such an article goes out with the next one instead of with none.
LATE_COMMIT = timedelta(hours=1)


def candidates(conn: Connection, since: datetime, until: datetime) -> list[DigestArticle]:
    """Flagged articles in no digest yet, published, first seen or flagged by an edit in [since, until]
    (first seen up to ``LATE_COMMIT`` before ``since``: committed after the last digest was made),
    that are not a copy of an article an earlier digest carried: the same title and text,
    or the same link, title and publication time (the same wire story reaching another
    feed a day later is not news again; copies within one period are one story of the
    digest, ``monitor.cluster``). A link alone says nothing: many feeds give every item
    their home page, and a daily briefing keeps its title and link. An article whose
    current review says "irrelevant" is left out: an analyst has already judged it."""
    in_digest = select(ITEM.c.article_id)
    dismissed = select(REVIEW.c.article_id).where(REVIEW.c.current.is_(True),
                                                  REVIEW.c.verdict == "irrelevant")
    sent = ARTICLE.alias("sent")
    sent_rows = select(sent).join(ITEM, ITEM.c.article_id == sent.c.id).subquery()
    sent_hashes = select(sent_rows.c.content_hash).where(sent_rows.c.content_hash.is_not(None))
    sent_stamps = select(sent_rows.c.url, sent_rows.c.title, sent_rows.c.published_at).where(
        sent_rows.c.url.is_not(None), sent_rows.c.published_at.is_not(None))
    stamp = tuple_(ARTICLE.c.url, ARTICLE.c.title, ARTICLE.c.published_at)
    where = (ARTICLE.c.flagged.is_(True) & ARTICLE.c.id.not_in(in_digest)
             & ARTICLE.c.id.not_in(dismissed)
             & (ARTICLE.c.first_seen_at <= until)
             & or_(ARTICLE.c.first_seen_at >= since - LATE_COMMIT, ARTICLE.c.published_at >= since,
                   # flagged by its feed's edit in the period: its first times are the first
                   # version's, and no period would hold it otherwise (an edit of an article
                   # flagged already, a copy mailed or one reclassify flagged, is not news)
                   and_(ARTICLE.c.flagged_by_edit_at >= since,
                        ARTICLE.c.flagged_by_edit_at <= until))
             & or_(ARTICLE.c.content_hash.is_(None), ARTICLE.c.content_hash.not_in(sent_hashes))
             & or_(ARTICLE.c.url.is_(None), ARTICLE.c.published_at.is_(None),
                   stamp.not_in(sent_stamps)))
    return load_articles(conn, where)


def articles_seen(conn: Connection, since: datetime, until: datetime) -> int:
    """Articles first stored in [since, until]: what the period's polls read."""
    return conn.execute(select(func.count()).select_from(ARTICLE).where(
        ARTICLE.c.first_seen_at >= since, ARTICLE.c.first_seen_at <= until)).scalar_one()


def earlier_counts(conn: Connection, first: str, last: str
                   ) -> tuple[int, dict[str, float], dict[str, float]]:
    """(digests, average stories per topic, average stories per mineral) over the digests
    dated ``first`` to ``last``; a story is an article cluster."""
    digests = {i: 0 for (i,) in conn.execute(select(DIGEST.c.id).where(
        DIGEST.c.digest_date >= first, DIGEST.c.digest_date <= last))}
    if not digests:
        return 0, {}, {}
    story = func.coalesce(ARTICLE.c.cluster_id, ARTICLE.c.id)
    rows = conn.execute(select(ITEM.c.digest_id, story, ARTICLE.c.topics)
                        .join(ARTICLE, ARTICLE.c.id == ITEM.c.article_id)
                        .where(ITEM.c.digest_id.in_(list(digests))))
    topics: dict[tuple[int, str], set] = defaultdict(set)
    for digest_id, cluster_id, names in rows:
        for name in filter(None, (names or "").split(",")):
            topics[(digest_id, name)].add(cluster_id)
    rows = conn.execute(select(ITEM.c.digest_id, story, MINERAL.c.code)
                        .join(ARTICLE, ARTICLE.c.id == ITEM.c.article_id)
                        .join(MINERAL, MINERAL.c.article_id == ARTICLE.c.id)
                        .where(ITEM.c.digest_id.in_(list(digests))))
    minerals: dict[tuple[int, str], set] = defaultdict(set)
    for digest_id, cluster_id, code in rows:
        minerals[(digest_id, code)].add(cluster_id)

    def average(found: dict[tuple[int, str], set]) -> dict[str, float]:
        totals: dict[str, int] = defaultdict(int)
        for (_, name), stories in found.items():
            totals[name] += len(stories)
        return {name: n / len(digests) for name, n in totals.items()}

    return len(digests), average(topics), average(minerals)


def last_period_end(conn: Connection) -> datetime | None:
    return conn.execute(select(func.max(DIGEST.c.period_end))).scalar()


def before_last_digest(conn: Connection, ids: Sequence[int]
                       ) -> tuple[list[int], tuple[str, datetime] | None]:
    """Of the articles ``ids``, those that no digest will carry because the periods they
    fall in have been made already: in no digest, first seen more than ``LATE_COMMIT``
    before the last digest's period end and published (when known) before it; the next
    digest starts at that end (``candidates``). With the last digest (its date and period
    end), or None when no digest was made yet (and then no article)."""
    last = conn.execute(select(DIGEST.c.digest_date, DIGEST.c.period_end)
                        .order_by(DIGEST.c.period_end.desc(), DIGEST.c.id.desc()).limit(1)).first()
    if last is None:
        return [], None
    end = last.period_end
    found: list[int] = []
    for start in range(0, len(ids), 500):
        found += [i for (i,) in conn.execute(
            select(ARTICLE.c.id).where(
                ARTICLE.c.id.in_(list(ids[start:start + 500])),
                ARTICLE.c.id.not_in(select(ITEM.c.article_id)),
                ARTICLE.c.first_seen_at < end - LATE_COMMIT,
                or_(ARTICLE.c.published_at.is_(None), ARTICLE.c.published_at < end))
            .order_by(ARTICLE.c.id))]
    return found, (last.digest_date, end)


def _deliveries(conn: Connection, digest_id: int) -> tuple[Delivery, ...]:
    rows = conn.execute(select(DELIVERY).where(DELIVERY.c.digest_id == digest_id)
                        .order_by(DELIVERY.c.id))
    return tuple(Delivery(digest_id=r.digest_id, recipient=r.recipient, status=r.status,
                          attempts=r.attempts, last_error=r.last_error, message_id=r.message_id,
                          sent_at=r.sent_at, next_attempt_at=r.next_attempt_at) for r in rows)


def get_digest(conn: Connection, digest_date: str) -> DigestRecord | None:
    row = conn.execute(select(DIGEST).where(DIGEST.c.digest_date == digest_date)).first()
    if row is None:
        return None
    ids = tuple(i for (i,) in conn.execute(
        select(ITEM.c.article_id).where(ITEM.c.digest_id == row.id).order_by(ITEM.c.article_id)))
    return DigestRecord(id=row.id, digest_date=row.digest_date, period_start=row.period_start,
                        period_end=row.period_end, article_ids=ids,
                        deliveries=_deliveries(conn, row.id), total_flagged=row.total_flagged,
                        created_at=row.created_at)


DIGEST_LOCK = 7_246_117    # PostgreSQL advisory lock key for creating digests


def lock_digests(conn: Connection) -> None:
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": DIGEST_LOCK})


def insert_digest(conn: Connection, digest_date: str, start: datetime, end: datetime,
                  now: datetime) -> int:
    key = conn.execute(DIGEST.insert().values(
        digest_date=digest_date, period_start=start, period_end=end, created_at=now,
        item_count=0, total_flagged=0)).inserted_primary_key
    assert key is not None                   # an INSERT of one row always has one
    return key[0]


def fill_digest(conn: Connection, digest_id: int, article_ids: Sequence[int],
                recipients: Sequence[str], clusters: Mapping[int, int]) -> None:
    """Claim the articles for this digest and open a pending delivery per recipient."""
    if article_ids:
        conn.execute(ITEM.insert(), [dict(digest_id=digest_id, article_id=a) for a in article_ids])
    if recipients:
        conn.execute(DELIVERY.insert(), [dict(digest_id=digest_id, recipient=r, status="pending",
                                              attempts=0) for r in recipients])
    for article_id, cluster_id in clusters.items():
        conn.execute(update(ARTICLE).where(ARTICLE.c.id == article_id).values(cluster_id=cluster_id))
    conn.execute(update(DIGEST).where(DIGEST.c.id == digest_id).values(
        item_count=len(article_ids), total_flagged=len(article_ids)))


def claim_delivery(conn: Connection, digest_id: int, recipient: str, **values) -> bool:
    result = conn.execute(update(DELIVERY).where(
        DELIVERY.c.digest_id == digest_id, DELIVERY.c.recipient == recipient,
        DELIVERY.c.status.in_(("pending", "retry"))).values(status="sending", **values))
    return result.rowcount == 1


def add_recipients(conn: Connection, digest_id: int, recipients: Sequence[str]) -> None:
    """Pending deliveries for recipients the digest has none for; an address differing only
    in case is the same mailbox (as the config's duplicate check has it), mailed once."""
    known = {d.recipient.lower() for d in _deliveries(conn, digest_id)}
    new = [dict(digest_id=digest_id, recipient=r, status="pending", attempts=0)
           for r in recipients if r.lower() not in known]
    if new:     # another run adding the same recipient at this moment is no error
        conn.execute(insert_ignore(conn, DELIVERY, ["digest_id", "recipient"]), new)


def set_delivery(conn: Connection, digest_id: int, recipient: str, **values) -> None:
    conn.execute(update(DELIVERY).where(DELIVERY.c.digest_id == digest_id,
                                        DELIVERY.c.recipient == recipient).values(**values))
