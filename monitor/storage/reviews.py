"""Analysts' reviews, the article queries of `monitor review`, and re-classification
writes (part of the storage package; every function takes an open Connection)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path

from sqlalchemy import and_, exists, func, literal, or_, select, update
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError

from monitor.exceptions import refuse_unknown_ids
from monitor.storage.ledger import _codes, stored_fields
from monitor.storage.tables import ARTICLE, DIGEST, FEED, COUNTRY, ITEM, MINERAL, REVIEW
from monitor.types import Analysis, ArticleDetail, ArticleView, Review, StoredVerdict


PUBLISHED = func.coalesce(ARTICLE.c.published_at, ARTICLE.c.first_seen_at)
_CURRENT = REVIEW.alias("current_review")


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL (None for another database or an in-memory one)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):          # a port that is no number
        return None
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def sqlite_file_identity(url: str) -> tuple[int, int] | None:
    """(device, inode) of an SQLite URL's file, None for another database or a file that
    is not there: it changes when the file is deleted or another put in its place, which a
    process holding the store open must notice (its connections go on with the old one)."""
    path = sqlite_file(url)
    try:
        info = path.stat() if path is not None else None
    except OSError:
        return None
    return (info.st_dev, info.st_ino) if info is not None else None


# -- reading articles ------------------------------------------------------------------

def _article_query():
    return (select(ARTICLE, FEED.c.name.label("source"), PUBLISHED.label("published"),
                   _CURRENT.c.id.label("r_id"), _CURRENT.c.verdict.label("r_verdict"),
                   _CURRENT.c.topics.label("r_topics"), _CURRENT.c.note.label("r_note"),
                   _CURRENT.c.reviewer.label("r_reviewer"),
                   _CURRENT.c.created_at.label("r_created_at"),
                   _CURRENT.c.content_hash.label("r_hash"))
            .join(FEED, FEED.c.id == ARTICLE.c.feed_id)
            .outerjoin(_CURRENT, and_(_CURRENT.c.article_id == ARTICLE.c.id,
                                      _CURRENT.c.current.is_(True))))


def _topics(value: str | None) -> tuple[str, ...]:
    return tuple(t for t in (value or "").split(",") if t)


def _views(conn: Connection, rows) -> list[ArticleView]:
    rows = list(rows)
    ids = [r.id for r in rows]
    countries, minerals = _codes(conn, COUNTRY, ids), _codes(conn, MINERAL, ids)
    return [_view(r, countries.get(r.id, ()), minerals.get(r.id, ())) for r in rows]


def _view(r, countries: tuple[str, ...], minerals: tuple[str, ...]) -> ArticleView:
    review = None
    if r.r_id is not None:
        review = Review(id=r.r_id, article_id=r.id, verdict=r.r_verdict,
                        topics=_topics(r.r_topics), note=r.r_note, reviewer=r.r_reviewer,
                        created_at=r.r_created_at, current=True,
                        text_changed=r.r_hash is not None and r.r_hash != r.content_hash)
    return ArticleView(
        **stored_fields(r, r.source), flagged=r.flagged, score=r.score, topics=_topics(r.topics),
        reasons=tuple(json.loads(r.reasons or "[]")), countries=countries, minerals=minerals,
        model_version=r.model_version, classified_at=r.classified_at,
        cluster_id=r.cluster_id, review=review)


def list_articles(conn: Connection, *, since: datetime | None = None, until: datetime | None = None,
                  topic: str | None = None, country: str | None = None,
                  mineral: str | None = None, language: str | None = None,
                  text: str | None = None, status: str | None = None,
                  include_unflagged: bool = False, limit: int | None = 50,
                  offset: int = 0, digest: str | None = None, below: float | None = None,
                  older_than: SortKey | None = None, newer_than: SortKey | None = None,
                  ) -> list[ArticleView]:
    """Articles for review, newest first (published, else first seen; then id).

    Flagged articles only, unless ``include_unflagged``, or ``status`` is relevant or
    irrelevant (a reviewed article is listed whatever its current flag). ``since`` is
    inclusive and ``until`` exclusive; ``text`` is found in the title or the text, case
    aside (a literal string: % and _ are not wildcards); ``digest``: only the articles
    the digest of that date (YYYY-MM-DD) took, shown or counted in its "and N more";
    ``below``: only articles whose model score (the highest of its topics) is below it.
    ``older_than`` / ``newer_than``: only articles after / before that ``sort_key`` in
    this order (the ``limit`` nearest to it, still listed newest first): pages that
    neither skip nor repeat articles while verdicts and polls change what matches.
    """
    query = _filtered(conn, _article_query(), since=since, until=until, topic=topic,
                      country=country, mineral=mineral, language=language, text=text,
                      status=status, include_unflagged=include_unflagged, digest=digest,
                      below=below)
    key = (PUBLISHED, ARTICLE.c.id)
    if older_than is not None:
        query = query.where(_beyond(key, older_than, older=True))
    if newer_than is not None:       # the nearest ones first, then turned round below
        query = query.where(_beyond(key, newer_than, older=False)).order_by(PUBLISHED, ARTICLE.c.id)
    else:
        query = query.order_by(PUBLISHED.desc(), ARTICLE.c.id.desc())
    if limit is not None:
        query = query.limit(limit)
    if offset:
        query = query.offset(offset)
    views = _views(conn, conn.execute(query))
    return views[::-1] if newer_than is not None else views


SortKey = tuple[datetime, int]


def sort_key(conn: Connection, article_id: int) -> SortKey | None:
    """Where an article stands in the review list's order (None for an unknown id)."""
    row = conn.execute(select(PUBLISHED, ARTICLE.c.id).where(ARTICLE.c.id == article_id)).first()
    return None if row is None else (row[0], row[1])


def count_listed(conn: Connection, newer_than: SortKey | None = None, **filters) -> int:
    """How many articles ``list_articles(**filters)`` would list (before ``newer_than``)."""
    query = _filtered(conn, select(func.count()).select_from(ARTICLE).outerjoin(
        _CURRENT, and_(_CURRENT.c.article_id == ARTICLE.c.id, _CURRENT.c.current.is_(True))),
        **filters)
    if newer_than is not None:
        query = query.where(_beyond((PUBLISHED, ARTICLE.c.id), newer_than, older=False))
    return conn.execute(query).scalar_one()


def _beyond(key, cursor: SortKey, older: bool):
    (published, article_id), (when, cursor_id) = key, cursor
    if older:
        return or_(published < when, and_(published == when, article_id < cursor_id))
    return or_(published > when, and_(published == when, article_id > cursor_id))


def _filtered(conn: Connection, query, *, since: datetime | None = None,
              until: datetime | None = None, topic: str | None = None, country: str | None = None,
              mineral: str | None = None, language: str | None = None, text: str | None = None,
              status: str | None = None, include_unflagged: bool = False,
              digest: str | None = None, below: float | None = None):
    """``query`` (over ARTICLE joined to its current review) narrowed by list_articles' filters."""
    if digest is not None:
        query = query.where(ARTICLE.c.id.in_(
            select(ITEM.c.article_id).join(DIGEST, DIGEST.c.id == ITEM.c.digest_id)
            .where(DIGEST.c.digest_date == digest)))
    if status in ("relevant", "irrelevant"):
        query = query.where(_CURRENT.c.verdict == status)
    else:
        if status == "unreviewed":
            query = query.where(_CURRENT.c.id.is_(None))
        if not include_unflagged:
            query = query.where(ARTICLE.c.flagged.is_(True))
    if below is not None:
        query = query.where(ARTICLE.c.score < below)
    if since is not None:
        query = query.where(PUBLISHED >= since)
    if until is not None:
        query = query.where(PUBLISHED < until)
    if language:
        query = query.where(ARTICLE.c.language == language)
    if text:
        query = query.where(_contains(conn, ARTICLE.c.title, text) | _contains(conn, ARTICLE.c.text, text))
    if topic:
        query = query.where((literal(",") + ARTICLE.c.topics + literal(",")).like(f"%,{topic},%"))
    for table, code in ((COUNTRY, country), (MINERAL, mineral)):
        if code:
            query = query.where(exists().where(table.c.article_id == ARTICLE.c.id,
                                               table.c.code == code))
    return query


def _contains(conn: Connection, column, text: str):
    """``column`` holds ``text``, case aside, as a literal string. SQLite's lower() folds
    ASCII letters only, so a search with other letters ("änderungen", "états-unis") folds
    both sides with Python's casefold there (a function the store registers): a Python call
    per row, ~6 times slower. A search whose other characters have no case (Chinese,
    Japanese, Korean: "稀土", "export 稀土") does not need it."""
    if conn.dialect.name == "sqlite" and not all(map(_caseless, text)):
        return func.monitor_fold(column).contains(text.casefold(), autoescape=True)
    # "strasse" is the case folding of "Straße", which lower() (SQLite's, PostgreSQL's in any
    # locale) leaves as it is: the search also looks for the forms with ß, and on
    # PostgreSQL a search with ß for its form with "ss" (each a LIKE in the database;
    # folding every row in Python made a search holding "ss" several times slower)
    lowered = text.lower()
    forms = _eszett_forms(lowered) if "ss" in lowered else []
    if "ß" in lowered:          # (on SQLite such a search was folded above)
        forms.append(lowered.replace("ß", "ss"))
    if forms:
        return or_(*(column.icontains(form, autoescape=True) for form in [text, *forms]))
    return column.icontains(text, autoescape=True)


def _eszett_forms(text: str, most: int = 3) -> list[str]:
    """``text`` with one or more of its first ``most`` "ss" written "ß" (never two
    overlapping: "sss" gives "ßs" and "sß")."""
    at = [i for i in range(len(text) - 1) if text.startswith("ss", i)][:most]
    forms = set()
    for mask in range(1, 2 ** len(at)):
        chosen = [i for n, i in enumerate(at) if mask >> n & 1]
        if all(b - a >= 2 for a, b in zip(chosen, chosen[1:])):
            form = text
            for i in reversed(chosen):
                form = form[:i] + "ß" + form[i + 2:]
            forms.add(form)
    return sorted(forms)


def _caseless(character: str) -> bool:
    """An ASCII character (SQLite's lower() folds it), or a letter of a script without case
    (Chinese, Japanese, Korean …), a digit, punctuation, a symbol or a space that no case
    mapping changes and that no other character folds into (combining marks and modifier
    letters do: "İ" folds to "i" and a combining dot, "ŉ" to "ʼn")."""
    if character.isascii():
        return True
    kind = unicodedata.category(character)
    return ((kind == "Lo" or kind[0] in "NPSZ" or kind == "Lm" and character >= "\u3000")  # ー, 々
            and character.casefold() == character == character.upper() == character.lower())


def get_detail(conn: Connection, article_id: int) -> ArticleDetail | None:
    """One article with its cluster siblings and its whole review history."""
    found = _views(conn, conn.execute(_article_query().where(ARTICLE.c.id == article_id)))
    if not found:
        return None
    article = found[0]
    siblings: list[ArticleView] = []
    if article.cluster_id is not None:
        query = (_article_query().where(ARTICLE.c.cluster_id == article.cluster_id,
                                        ARTICLE.c.id != article_id)
                 .order_by(PUBLISHED, ARTICLE.c.id))
        siblings = _views(conn, conn.execute(query))
    return ArticleDetail(article, tuple(siblings), history(conn, article_id))


def history(conn: Connection, article_id: int) -> tuple[Review, ...]:
    """Every review of an article, newest first."""
    query = (select(REVIEW).where(REVIEW.c.article_id == article_id)
             .order_by(REVIEW.c.created_at.desc(), REVIEW.c.id.desc()))
    return tuple(Review(id=r.id, article_id=r.article_id, verdict=r.verdict,
                        topics=_topics(r.topics), note=r.note, reviewer=r.reviewer,
                        created_at=r.created_at, current=bool(r.current))
                 for r in conn.execute(query))


def article_topics(conn: Connection, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    """id → current topics of the articles that exist among ``ids``."""
    found: dict[int, tuple[str, ...]] = {}
    for start in range(0, len(ids), 500):
        query = select(ARTICLE.c.id, ARTICLE.c.topics).where(ARTICLE.c.id.in_(ids[start:start + 500]))
        found.update((i, _topics(t)) for i, t in conn.execute(query))
    return found


# -- writing reviews -------------------------------------------------------------------

def add_reviews(conn: Connection, topics: dict[int, tuple[str, ...]], verdict: str,
                note: str | None, reviewer: str, now: datetime) -> list[int]:
    """A new current review per article; the previous current one is kept as history.

    Returns the ids whose earlier verdict was replaced. Raises UsageError (before writing
    anything) when an article does not exist.

    Verdicts on one article are serialised: on PostgreSQL (READ COMMITTED) the articles'
    rows are locked first, in id order (no deadlock between two batches), so a verdict given
    at the same moment waits and then replaces this one instead of both staying current;
    SQLite serialises the writes themselves.
    """
    ids = list(topics)
    _lock_articles(conn, ids)
    refuse_unknown_ids(ids, article_topics(conn, ids))
    replaced = sorted(set(conn.execute(
        update(REVIEW).where(REVIEW.c.article_id.in_(ids), REVIEW.c.current.is_(True))
        .values(current=False).returning(REVIEW.c.article_id)).scalars()))
    hashes = dict(conn.execute(select(ARTICLE.c.id, ARTICLE.c.content_hash)
                               .where(ARTICLE.c.id.in_(ids))).all())
    rows = [dict(article_id=a, verdict=verdict, topics=",".join(t), note=note,
                 reviewer=reviewer, created_at=now, current=True, content_hash=hashes.get(a))
            for a, t in topics.items()]
    conn.execute(REVIEW.insert(), rows)
    return replaced


def _lock_articles(conn: Connection, ids: Sequence[int]) -> None:
    """PostgreSQL: lock the rows of these articles until the transaction ends, in id order.
    FOR NO KEY UPDATE: rows that only refer to an article (reviews, mentions, digest items)
    can still be written meanwhile. Nothing on SQLite, whose writers take the database's
    one write lock."""
    if conn.dialect.name != "postgresql":
        return
    ordered = sorted(set(ids))
    for start in range(0, len(ordered), 500):
        conn.execute(select(ARTICLE.c.id).where(ARTICLE.c.id.in_(ordered[start:start + 500]))
                     .order_by(ARTICLE.c.id).with_for_update(key_share=True)).all()


def training_records(conn: Connection) -> tuple[list[dict], list[int]]:
    """The current review of every reviewed article as a training record, oldest verdict
    first (of two copies of one story, the newer verdict is applied last and wins); and the
    ids of the articles whose text changed since their verdict was given (a feed rewrote the
    item): their verdicts are left out, as they were given on another text."""
    query = (select(ARTICLE.c.id, ARTICLE.c.url, ARTICLE.c.language, ARTICLE.c.title,
                    ARTICLE.c.text, ARTICLE.c.content_hash, REVIEW.c.verdict, REVIEW.c.topics,
                    REVIEW.c.content_hash.label("judged"))
             .join(REVIEW, REVIEW.c.article_id == ARTICLE.c.id)
             .where(REVIEW.c.current.is_(True)).order_by(REVIEW.c.created_at, REVIEW.c.id))
    records, changed = [], []
    for r in conn.execute(query):
        if r.judged is not None and r.judged != r.content_hash:
            changed.append(r.id)
            continue
        records.append({"id": f"review:{r.id}", "url": r.url, "lang": r.language,
                        "title": r.title, "text": r.text,
                        "topics": list(_topics(r.topics)) if r.verdict == "relevant" else []})
    return records, sorted(changed)


def orphaned_verdicts(conn: Connection) -> list[int]:
    """The article ids of current verdicts whose article is no longer in the store (deleted
    by hand with foreign keys off, as the ``sqlite3`` shell has them): training cannot read
    their text."""
    query = (select(REVIEW.c.article_id).where(REVIEW.c.current.is_(True))
             .where(~select(ARTICLE.c.id).where(ARTICLE.c.id == REVIEW.c.article_id).exists())
             .order_by(REVIEW.c.article_id))
    return list(conn.execute(query).scalars())


# -- re-classification -----------------------------------------------------------------

def count_since(conn: Connection, since: datetime | None) -> int:
    query = select(func.count()).select_from(ARTICLE)
    if since is not None:
        query = query.where(PUBLISHED >= since)
    return conn.execute(query).scalar_one()


def verdict_batch(conn: Connection, since: datetime | None, after_id: int,
                  size: int) -> list[tuple[StoredVerdict, str, str, str | None]]:
    """The next ``size`` articles with id > ``after_id``: (stored verdict, title, text,
    language hint), in id order."""
    query = (select(ARTICLE.c.id, ARTICLE.c.title, ARTICLE.c.text, ARTICLE.c.content_hash,
                    ARTICLE.c.language, ARTICLE.c.flagged, ARTICLE.c.topics, FEED.c.name, FEED.c.lang,
                    PUBLISHED.label("published"), ARTICLE.c.published_at,
                    ARTICLE.c.first_seen_at)
             .join(FEED, FEED.c.id == ARTICLE.c.feed_id)
             .where(ARTICLE.c.id > after_id).order_by(ARTICLE.c.id).limit(size))
    if since is not None:
        query = query.where(PUBLISHED >= since)
    rows = list(conn.execute(query))
    ids = [r.id for r in rows]
    countries, minerals = _codes(conn, COUNTRY, ids), _codes(conn, MINERAL, ids)
    return [(StoredVerdict(id=r.id, title=r.title, source=r.name,
                           published=r.published_at or r.first_seen_at,
                           flagged=bool(r.flagged), topics=_topics(r.topics),
                           countries=countries.get(r.id, ()), minerals=minerals.get(r.id, ()),
                           content_hash=r.content_hash),
             r.title, r.text, r.language or r.lang) for r in rows]


def write_verdicts(conn: Connection, updates: Iterable[tuple[int, str | None, Analysis]],
                   now: datetime) -> list[int]:
    """Store fresh analyses: ``(article id, content hash when it was read, Analysis)``.

    An article is written only while it still has that content hash: one a poll rewrote
    since it was read (new title or text, and a verdict, countries and minerals of the new
    text, with the current rules) or that is gone keeps what it has — an analysis of its old
    text must not replace them. The ids written, in order."""
    written: list[int] = []
    for article_id, read_hash, analysis in updates:
        v = analysis.verdict
        matched = conn.execute(
            update(ARTICLE)
            .where(ARTICLE.c.id == article_id, ARTICLE.c.content_hash.is_not_distinct_from(read_hash))
            .values(flagged=v.flagged, score=v.score, topics=",".join(v.topics),
                    reasons=json.dumps(list(v.reasons), ensure_ascii=False),
                    model_version=v.model_version, classified_at=now,
                    language=analysis.language)).rowcount
        if matched != 1:
            continue
        # the article's row is locked (PostgreSQL) or the database is (SQLite) until commit:
        # no poll rewrites its mentions between here and then
        for table, mentions in ((COUNTRY, analysis.countries), (MINERAL, analysis.minerals)):
            conn.execute(table.delete().where(table.c.article_id == article_id))
            rows = [dict(article_id=article_id, code=m.code, count=m.count) for m in mentions]
            if rows:
                conn.execute(table.insert(), rows)
        written.append(article_id)
    return written
