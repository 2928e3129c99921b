"""Store: the one object through which the rest of monitor reads and writes the database."""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlsplit
from typing import Any, NamedTuple

from sqlalchemy import bindparam, create_engine, event, func, select, text, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import (ArgumentError, IntegrityError, NoSuchModuleError, OperationalError,
                            SQLAlchemyError)
from sqlalchemy.engine import URL, make_url

from monitor.exceptions import StorageError
from monitor.parse import canonical_url, titled_key
from monitor.redact import masked_url
from monitor.storage import ledger, migrations, reviews
from monitor.storage.tables import ARTICLE, COUNTRY, DELIVERY, DIGEST, FEED, MINERAL, insert_ignore
from monitor.types import (
    Analysis,
    ArticleWrite,
    DigestArticle,
    DigestRecord,
    FeedHealth,
    FeedState,
    ParsedArticle,
)



def _wal(cur, busy_timeout_ms: int) -> None:
    """Put the database file in WAL mode. WAL is a property of the file, so only the first
    open of a new store converts it; SQLite does not run the busy handler for that
    conversion, so processes opening a new store together retry it here, within the busy
    timeout, instead of failing with "database is locked"."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    pause = 0.005
    while True:
        try:
            mode = cur.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() in ("wal", "memory"):
                return
            cur.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise
            if time.monotonic() + pause > deadline:
                raise
        time.sleep(pause * (0.5 + random.random()))
        pause = min(pause * 2, 0.2)


def _sqlite_pragmas(busy_timeout_ms: int):
    def on_connect(dbapi_conn, _record):
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        _wal(cur, busy_timeout_ms)
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA cache_size=-4000")           # at most ~4 MB of page cache each
        cur.close()
        # SQLite's lower() folds ASCII letters only: searches for "änderungen" use this
        dbapi_conn.create_function("monitor_fold", 1, _fold, deterministic=True)
    return on_connect


def _fold(value: str | None) -> str | None:
    return value.casefold() if isinstance(value, str) else value


# monitor is no package on the index: the extra installs from the repository's folder.
# Into a checkout's .venv (`make run` installs monitor editable) only with -e: a plain
# `pip install '.[postgres]'` there replaces the checkout with a copy in site-packages, which
# then uses its bundled model and templates, and no edit or pull of the checkout reaches it.
_POSTGRES_HINT = (" (install it into monitor's environment: pip install 'psycopg[binary]>=3.1,<4', "
                  "or from the repository's folder: pip install -e '.[postgres]' into a checkout's "
                  ".venv, pip install '.[postgres]' into another environment)")


def check_store_url(url: str) -> None:
    """What opening the store would say of its URL (not a URL, no driver for it), said
    without opening it (`monitor config check`)."""
    parsed = _parsed(url)
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except (NoSuchModuleError, ImportError) as exc:       # (NoSuchModuleError first: it is
        hint = _POSTGRES_HINT if "postgres" in url else ""
        raise StorageError(f"store.url: the database driver is missing: {exc}{hint}") from None
    except ArgumentError as exc:                          # an ArgumentError too)
        raise StorageError(f"store.url: not a database URL: {exc}") from None


def _parsed(url: str) -> URL:
    """The store URL parsed, or a StorageError that says why not (a port that is no number
    raised a bare ValueError, and a traceback)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StorageError(f"store.url: not a database URL: {exc}") from None
    except ValueError as exc:                 # int(port): "invalid literal for int() …: 'x'"
        raise StorageError(f"store.url: not a database URL: its port is not a number "
                           f"({exc})") from None
    return parsed


def _create_private(database: Path) -> None:
    """A new SQLite file made readable by the service's user only (SQLite gives its -wal and
    -shm files the same mode): the feed table holds feed URLs with their passwords and keys.
    An existing file keeps the mode it has (chmod it to share it)."""
    try:
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StorageError(f"store.url: cannot create the database {database}: "
                           f"{exc.strerror or exc}") from None


def _make_engine(url: str, busy_timeout: float) -> Engine:
    parsed = _parsed(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            folder = Path(parsed.database).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StorageError(f"store.url: cannot make the database's folder {folder}: "
                                   f"{exc.strerror or exc}") from None
            if not parsed.query.get("uri"):          # (a file: URI names its own options)
                _create_private(Path(parsed.database))
        # Few connections, each with a small page cache: memory stays flat over months.
        engine = create_engine(parsed, connect_args={"timeout": busy_timeout},
                               pool_size=2, max_overflow=4)
        event.listen(engine, "connect", _sqlite_pragmas(int(busy_timeout * 1000)))
        return engine
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except (NoSuchModuleError, ImportError) as exc:
        hint = _POSTGRES_HINT if "postgres" in url else ""
        raise StorageError(f"store.url: the database driver is missing: {exc}{hint}") from None


def database_tables(url: str) -> list[str] | None:
    """The names of the tables in the database at ``url``, asked without making anything
    (no SQLite file, no tables, no WAL mode); None when it cannot be asked now (an SQLite
    file that is not there, a server that refuses, a missing driver: opening the store
    then says why)."""
    from sqlalchemy import inspect

    from monitor.storage.reviews import sqlite_file

    path = sqlite_file(url)
    if path is not None and not path.exists():
        return None
    try:
        engine = create_engine(make_url(url))
    except Exception:                          # (a missing driver, a URL it cannot read)
        return None
    try:
        with engine.connect() as conn:
            return sorted(inspect(conn).get_table_names())
    except SQLAlchemyError:
        return None
    finally:
        engine.dispose()


def empty_database(url: str) -> str | None:
    """For a database server's URL (PostgreSQL …, not SQLite): the database, its password
    masked, when it holds no store yet (no schema_version table), so that the commands that
    only read the store refuse it as they refuse a missing SQLite file instead of making
    the tables there (and mailing an empty digest from them). None when it holds a store,
    for SQLite, and when it cannot be asked (opening the store then says why)."""
    from monitor.storage.reviews import sqlite_file

    try:
        if make_url(url).get_backend_name() == "sqlite" or sqlite_file(url) is not None:
            return None
    except (ArgumentError, ValueError):
        return None
    tables = database_tables(url)
    return _safe(url) if tables is not None and "schema_version" not in tables else None


def open_store(url: str, busy_timeout: float = 30.0) -> Store:
    """Open (creating and migrating if needed) the store at ``url``."""
    engine = _make_engine(url, busy_timeout)
    try:
        migrations.migrate(engine)
    except SQLAlchemyError as exc:
        engine.dispose()
        raise StorageError(f"cannot open the store {_safe(url)}: {reason(exc)}{_hint(exc, engine)}"
                           ) from exc
    return Store(engine, url)


def _hint(exc: SQLAlchemyError, engine: Engine) -> str:
    """Why SQLite "cannot open" a file that is there: its folder is not writable, and a
    store in WAL mode needs its -wal and -shm files beside it, even to read."""
    database = engine.url.database if engine.dialect.name == "sqlite" else None
    if not database or "unable to open database file" not in str(exc):
        return ""
    folder = Path(database).resolve().parent
    if Path(database).exists() and not os.access(folder, os.W_OK | os.X_OK):
        return (f" (the folder {folder} is not writable: SQLite keeps its -wal and -shm files "
                "beside the store, even to read it; make the folder writable or copy the "
                "store where it is)")
    return ""


def _safe(url: str) -> str:
    """The store's URL as errors show it: SQLAlchemy hides the password of the user info
    only; one given as a query parameter (``?password=…``, libpq's ``sslpassword`` …) is
    masked as every other URL monitor prints is."""
    try:
        return masked_url(make_url(url).render_as_string(hide_password=True))
    except (ArgumentError, ValueError):
        return "<invalid url>"


def _feed_state(row) -> FeedState:
    return FeedState(id=row.id, name=row.name, url=row.url, lang=row.lang,
                     interval_minutes=row.interval_minutes, etag=row.etag,
                     last_modified=row.last_modified, error_count=row.error_count,
                     first_error_at=row.first_error_at, key_base=row.key_base,
                     # last_new_at is set in the transaction that stores a feed's articles
                     has_articles=row.last_new_at is not None)


class Store:
    """Reads and writes the store. Every public method is one transaction."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        # the largest article id the database's column can hold: an id above is unknown,
        # never a query (PostgreSQL refuses one past its integer with an error)
        self._max_id = MAX_PG_ID if engine.dialect.name == "postgresql" else MAX_ID

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """One transaction; SQLAlchemy's errors become StorageError here and only here."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise _storage_error(exc, self.url) from exc

    # -- feeds ---------------------------------------------------------------------------
    def sync_feeds(self, feeds: Iterable, now: datetime, default_interval: int = 60,
                   default_silent_days: float = 3.0) -> None:
        """Make the feed table match the config: add new feeds, update names and intervals,
        deactivate feeds no longer configured (their articles stay). A configured feed with a
        new URL and the name of a stored feed whose URL is no longer configured is that feed,
        moved (a new address, a rotated password in the URL): the row takes the new URL and
        forgets the old one's validators, and its articles stay its own, so the items it
        carries already are not stored and mailed again. Writes nothing when they already
        match, so read-only commands never wait for another writer."""
        wanted = {f.url: f for f in feeds}
        with self._begin() as conn:
            existing: dict[str, Any] = {r.url: r for r in conn.execute(select(FEED))}
            moved: dict[int, str] = {}
            for url, feed in wanted.items():
                if url not in existing:
                    old = [r for r in existing.values()
                           if r.name == feed.name and r.url not in wanted and r.id not in moved]
                    if old:
                        row = max(old, key=lambda r: (r.active, r.id))
                        moved[row.id] = url
                        conn.execute(update(FEED).where(FEED.c.id == row.id).values(
                            url=url, etag=None, last_modified=None, next_check_at=now))
                        del existing[row.url]
                        existing[url] = SimpleNamespace(**{**row._asdict(), "url": url})
            for url, feed in wanted.items():
                values = dict(name=feed.name, lang=feed.lang, active=True,
                              interval_minutes=feed.interval_minutes or default_interval,
                              silent_after_days=feed.silent_after_days or default_silent_days)
                if url in existing:
                    row = existing[url]
                    if any(getattr(row, k) != v for k, v in values.items()):
                        conn.execute(update(FEED).where(FEED.c.url == url).values(**values))
                else:
                    conn.execute(insert_ignore(conn, FEED, ["url"]).values(
                        url=url, created_at=now, next_check_at=now, **values))
            gone = [u for u, r in existing.items() if u not in wanted and r.active]
            if gone:
                conn.execute(update(FEED).where(FEED.c.url.in_(gone)).values(active=False))

    def claim_due_feeds(self, now: datetime, owner: str, lease_seconds: float, limit: int,
                        include_all: bool = False, exclude: Iterable[int] = ()) -> list[FeedState]:
        """Lease up to ``limit`` due feeds to ``owner`` in one atomic statement.

        A feed leased to another poller (claimed_until in the future) is skipped; on
        PostgreSQL rows locked by a concurrent claim are skipped too (FOR UPDATE SKIP
        LOCKED). Storing the feed's poll releases the lease; a poller that dies leaves it
        to expire, after which another poller takes the feed.
        """
        free = FEED.c.active.is_(True) & (FEED.c.claimed_until.is_(None) | (FEED.c.claimed_until < now))
        if not include_all:
            free &= FEED.c.next_check_at.is_(None) | (FEED.c.next_check_at <= now)
        exclude = list(exclude)
        if exclude:
            free &= FEED.c.id.not_in(exclude)
        pick = (select(FEED.c.id).where(free).order_by(FEED.c.next_check_at, FEED.c.id)
                .limit(limit).with_for_update(skip_locked=True))
        claim = (update(FEED).where(FEED.c.id.in_(pick.scalar_subquery()))
                 .values(claimed_until=now + timedelta(seconds=lease_seconds), claimed_by=owner)
                 .returning(*FEED.c))
        with self._begin() as conn:
            rows = sorted(conn.execute(claim), key=lambda r: (r.next_check_at or now, r.id))
        return [_feed_state(r) for r in rows]

    def renew_claims(self, owner: str, until: datetime) -> int:
        """Extend every lease ``owner`` still holds to ``until`` (its feeds are queued or
        being fetched); a lease another poller took over is not touched. The number of
        feeds renewed."""
        with self._begin() as conn:
            return conn.execute(update(FEED).where(FEED.c.claimed_by == owner)
                                .values(claimed_until=until)).rowcount

    def release_claims(self, owner: str) -> None:
        """Give back every lease ``owner`` still holds (feeds skipped on shutdown)."""
        with self._begin() as conn:
            conn.execute(update(FEED).where(FEED.c.claimed_by == owner)
                         .values(claimed_until=None, claimed_by=None))

    def leased_elsewhere(self, now: datetime, owner: str, polled: Iterable[str] = ()) -> int:
        """Active feeds another poller holds a lease on now (a poll leaves them to it), not
        counting the feeds (by URL) this poller polled itself: another poll may have claimed
        them again once this one was done with them."""
        query = select(func.count()).select_from(FEED).where(
            FEED.c.active.is_(True), FEED.c.claimed_until > now,
            FEED.c.claimed_by.is_not(None), FEED.c.claimed_by != owner)
        polled = list(polled)
        if polled:
            query = query.where(FEED.c.url.not_in(polled))
        with self._begin() as conn:
            return conn.execute(query).scalar() or 0

    def claim_owners(self) -> list[str]:
        with self._begin() as conn:
            query = select(FEED.c.claimed_by).where(FEED.c.claimed_by.is_not(None)).distinct()
            return [owner for (owner,) in conn.execute(query)]

    def began_at(self) -> datetime | None:
        """When the store got its first feed (None without one): no digest can be missed
        before then."""
        with self._begin() as conn:
            return conn.execute(select(func.min(FEED.c.created_at))).scalar()

    def schema_version(self) -> int | None:
        """The store's schema version now (a newer monitor elsewhere may have migrated it
        since this one opened it)."""
        with self._begin() as conn:
            return conn.execute(text("SELECT max(version) FROM schema_version")).scalar()

    def feed_health(self, now: datetime, broken_after: int = 3) -> list[FeedHealth]:
        counts = (select(ARTICLE.c.feed_id, func.count().label("n"))
                  .group_by(ARTICLE.c.feed_id).subquery())
        query = (select(FEED, func.coalesce(counts.c.n, 0).label("articles"))
                 .outerjoin(counts, counts.c.feed_id == FEED.c.id))
        with self._begin() as conn:
            rows = list(conn.execute(query))
        result = [_health(r, now, broken_after) for r in rows]
        order = {"broken": 0, "failing": 1, "silent": 2, "new": 3, "ok": 4}
        return sorted(result, key=lambda h: (not h.active, order[h.health], h.name))

    # -- articles ------------------------------------------------------------------------
    def known_articles(self, feed_id: int, articles: Sequence[ParsedArticle]) -> dict[str, str]:
        """key → content hash of the articles of this feed already stored: under their key,
        or under the other key one story of a reused guid and link may have (see
        :func:`_placed`). An article whose row is still to take its key maps to "" (it is
        then stored once more, and the row moved to its key), and so does one whose link
        now reads otherwise (the site moved, the feed's address changed: relative links lead
        elsewhere): its row is updated, so that the stored link leads to the story."""
        with self._begin() as conn:
            places = _placed(conn, feed_id, articles)
        links = {a.key: a.url for a in articles}
        return {key: "" if place.moves or _relinked(links.get(key), place)
                else place.content_hash or ""
                for key, place in places.items() if place.id is not None}

    def save_poll(self, feed_id: int, articles: Sequence[ArticleWrite],
                  state: Mapping[str, Any], owner: str | None = None) -> tuple[int, int]:
        """Store a feed's new and changed articles, then its state (the columns
        ``monitor.feedstate.feed_outcome`` gave), in one transaction; storing releases the
        feed's claim.

        Returns (new, updated). An article already stored under the same key is updated
        in place (never duplicated); a crash before commit loses nothing that was stored.
        """
        with self._begin() as conn:
            new, updated = _write_articles(conn, feed_id, articles, state["last_polled_at"])
            _write_feed_states(conn, [(feed_id, state)], owner)
        return new, updated

    def save_states(self, states: Sequence[tuple[int, Mapping[str, Any]]],
                    owner: str | None = None) -> None:
        """Record many feeds' states (feed id, columns) after polls that stored no article
        (not modified, errors) in one transaction: a cycle where most feeds answer 304
        costs one commit."""
        if not states:
            return
        with self._begin() as conn:
            _write_feed_states(conn, states, owner)

    # -- digest ledger -------------------------------------------------------------------
    def digest_candidates(self, since: datetime, until: datetime) -> list[DigestArticle]:
        with self._begin() as conn:
            return ledger.candidates(conn, since, until)

    def earlier_counts(self, first: str, last: str) -> tuple[int, dict[str, float], dict[str, float]]:
        """Average stories per topic and per mineral over the digests dated first..last."""
        with self._begin() as conn:
            return ledger.earlier_counts(conn, first, last)

    def articles_seen(self, since: datetime, until: datetime) -> int:
        with self._begin() as conn:
            return ledger.articles_seen(conn, since, until)

    def digests_left_sending(self, now: datetime) -> list[str]:
        """Dates of the digests with a copy still ``sending`` past its lease (its sender
        died), however old."""
        query = (select(DIGEST.c.digest_date).distinct()
                 .join(DELIVERY, DELIVERY.c.digest_id == DIGEST.c.id)
                 .where(DELIVERY.c.status == "sending",
                        DELIVERY.c.next_attempt_at.is_(None) | (DELIVERY.c.next_attempt_at <= now))
                 .order_by(DIGEST.c.digest_date))
        with self._begin() as conn:
            return [d for (d,) in conn.execute(query)]

    def digests_with_open_copies(self) -> list[str]:
        """Dates of the digests with a copy still to send (``pending``: a stop came before
        it; ``retry``: a temporary failure), however old."""
        query = (select(DIGEST.c.digest_date).distinct()
                 .join(DELIVERY, DELIVERY.c.digest_id == DIGEST.c.id)
                 .where(DELIVERY.c.status.in_(("pending", "retry")))
                 .order_by(DIGEST.c.digest_date))
        with self._begin() as conn:
            return [d for (d,) in conn.execute(query)]

    def last_digest_end(self) -> datetime | None:
        with self._begin() as conn:
            return ledger.last_period_end(conn)

    def before_last_digest(self, ids: Sequence[int]
                           ) -> tuple[list[int], tuple[str, datetime] | None]:
        """Of the flagged articles ``ids``, those falling in periods already made into
        digests (so never mailed), and the last digest's (date, period end)."""
        with self._begin() as conn:
            return ledger.before_last_digest(conn, ids)

    def get_digest(self, digest_date: str) -> DigestRecord | None:
        with self._begin() as conn:
            return ledger.get_digest(conn, digest_date)

    def open_digest(self, digest_date: str, end: datetime, default_start: datetime,
                    recipients: Sequence[str], send_when_empty: bool, clusterer,
                    now: datetime) -> tuple[DigestRecord, bool]:
        """(the digest of ``digest_date``, whether this call made it): the existing one, or
        a new one that claims the flagged articles of its period, in one transaction.

        Serialised across processes (PostgreSQL: a transaction-level advisory lock; SQLite:
        the digest row is written first, which takes the database's write lock), so N
        services still make one digest per date and put each article in one digest.
        ``clusterer(articles) -> {article id: cluster id}`` is pure.
        """
        try:
            with self._begin() as conn:
                ledger.lock_digests(conn)
                found = ledger.get_digest(conn, digest_date)
                if found is not None:
                    return found, False
                start = ledger.last_period_end(conn) or default_start
                digest_id = ledger.insert_digest(conn, digest_date, start, end, now)
                articles = ledger.candidates(conn, start, end)
                send = bool(articles) or send_when_empty
                ledger.fill_digest(conn, digest_id, [a.id for a in articles],
                                   recipients if send else (), clusterer(articles))
                return _written(ledger.get_digest(conn, digest_date)), True
        except StorageError as exc:
            # SQLite: another process made this digest between our read and our write (its
            # row is unique per date; WAL refuses to write over a stale read): use its digest
            if isinstance(exc.__cause__, (IntegrityError, OperationalError)):
                found = self.get_digest(digest_date)
                if found is not None:
                    return found, False
            raise

    def claim_delivery(self, digest: DigestRecord, recipient: str, **values) -> bool:
        """Mark an open delivery as being sent by us; False if another process has it."""
        with self._begin() as conn:
            return ledger.claim_delivery(conn, digest.id, recipient, **values)

    def add_recipients(self, digest: DigestRecord, recipients: Sequence[str]) -> DigestRecord:
        with self._begin() as conn:
            ledger.add_recipients(conn, digest.id, recipients)
            return _written(ledger.get_digest(conn, digest.digest_date))

    def digest_articles(self, digest: DigestRecord) -> list[DigestArticle]:
        with self._begin() as conn:
            return ledger.load_articles(conn, ARTICLE.c.id.in_(digest.article_ids or (-1,)))

    def set_delivery(self, digest: DigestRecord, recipient: str, **values) -> None:
        with self._begin() as conn:
            ledger.set_delivery(conn, digest.id, recipient, **values)

    # -- reviews (monitor review, keywords test, reclassify) -----------------------------
    # Thin wrappers over monitor/storage/reviews.py; each is one transaction.
    def review_list(self, **filters) -> list:
        """Articles for `monitor review list` (see reviews.list_articles for the filters)."""
        if filters.get("limit") is not None:
            filters["limit"] = min(filters["limit"], MAX_ID)
        with self._begin() as conn:
            return reviews.list_articles(conn, **filters)

    def sort_key(self, article_id: int):
        """Where an article stands in the review list (None for an unknown id, one that no
        database integer can hold too: PostgreSQL refuses it with an error)."""
        if not 0 < article_id <= self._max_id:
            return None
        with self._begin() as conn:
            return reviews.sort_key(conn, article_id)

    def count_listed(self, **filters) -> int:
        """How many articles review_list(**filters) would list, ``newer_than`` a sort key."""
        for key in ("limit", "offset", "older_than"):
            filters.pop(key, None)
        with self._begin() as conn:
            return reviews.count_listed(conn, **filters)

    def review_detail(self, article_id: int):
        """`monitor review show`: ArticleDetail, or None for an unknown id."""
        if not 0 < article_id <= self._max_id:
            return None
        with self._begin() as conn:
            return reviews.get_detail(conn, article_id)

    def article_topics(self, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """Topics of the articles of ``ids`` that exist (an id no database integer can
        hold is one that does not)."""
        with self._begin() as conn:
            return reviews.article_topics(conn, [i for i in ids if 0 < i <= self._max_id])

    def add_reviews(self, topics: dict[int, tuple[str, ...]], verdict: str, note: str | None,
                    reviewer: str, now: datetime) -> list[int]:
        """Record a verdict on each article, all or nothing; earlier reviews become history.
        Returns the ids whose earlier verdict was replaced."""
        with self._begin() as conn:
            return reviews.add_reviews(conn, topics, verdict, note, reviewer, now)

    def reviews_for_training(self) -> tuple[list[dict], list[int]]:
        """Current reviews as training records, oldest verdict first: {id: "review:<article
        id>", url, lang, title, text, topics} (topics empty for irrelevant); and the ids of
        articles whose text changed since their verdict (left out)."""
        with self._begin() as conn:
            return reviews.training_records(conn)

    def orphaned_verdicts(self) -> list[int]:
        """Article ids of current verdicts whose article was deleted (by hand): left out of
        training, as their text is gone."""
        with self._begin() as conn:
            return reviews.orphaned_verdicts(conn)

    def count_articles_since(self, since: datetime | None) -> int:
        with self._begin() as conn:
            return reviews.count_since(conn, since)

    def verdict_batch(self, since: datetime | None, after_id: int, size: int) -> list:
        """The next batch of stored articles to re-classify (id order, id > after_id)."""
        with self._begin() as conn:
            return reviews.verdict_batch(conn, since, after_id, size)

    def write_verdicts(self, updates: Sequence[tuple[int, str | None, Analysis]],
                       now: datetime) -> list[int]:
        """Store a batch of fresh analyses (verdict, language, countries, minerals):
        (article id, content hash as read, Analysis). An article rewritten since it was
        read is left as it is; the ids written."""
        with self._begin() as conn:
            return reviews.write_verdicts(conn, updates, now)
    # -- end of reviews ------------------------------------------------------------------


MAX_ID = 2**63 - 1      # the largest integer SQLite and PostgreSQL store; no article id above
MAX_PG_ID = 2**31 - 1   # PostgreSQL's integer, the type of article.id there


def reason(exc: SQLAlchemyError) -> str:
    """What the database said, and its driver's error class, without the statement, its
    parameters (an article's whole text, a feed's URL) and SQLAlchemy's web link, which
    ``str(exc)`` appends: an operator's log line names the problem, not the SQL."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        # (SQLAlchemy's own errors, a pool's timeout, append the link after a space)
        said = re.split(r"\s\(Background on this error", str(exc), maxsplit=1)[0]
        return said.split("\n[SQL:", 1)[0]
    said = _first_line(orig) or "(no message)"
    return f"{said} ({type(orig).__module__.split('.')[0]}.{type(orig).__name__})"


def _first_line(orig: BaseException) -> str:
    """The first line of what the database said: PostgreSQL's DETAIL lines can hold a
    row's values ("Failing row contains (…)": an article's whole text)."""
    return " ".join(next((line for line in str(orig).splitlines() if line.strip()), "").split())


def _storage_error(exc: SQLAlchemyError, url: str) -> StorageError:
    # what the database said (its first line, the word "locked"), not str(exc): that holds
    # the statement's parameters, and an article "blocked" by an export ban made a read-only
    # store's refusal a "lock"; so did PostgreSQL's deadlock, whose DETAIL says "blocked by
    # process …" (and was printed whole)
    orig = getattr(exc, "orig", None)
    said = _first_line(orig) if orig is not None else ""
    if isinstance(exc, OperationalError) and re.search(r"\blocked\b", said, re.IGNORECASE):
        return StorageError(f"the store {_safe(url)} is locked by another writer "
                            f"(waited for the busy timeout): {said}")
    return StorageError(f"store {_safe(url)}: {reason(exc)}")


def _written(record: DigestRecord | None) -> DigestRecord:
    """A digest read back in the transaction that wrote it (so it is there)."""
    if record is None:
        raise StorageError("a digest just written could not be read back")
    return record


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _article_values(write: ArticleWrite, now: datetime) -> dict[str, Any]:
    p, v = write.parsed, write.verdict
    values: dict[str, Any] = dict(guid=p.guid, url=p.url, title=p.title, text=p.text,
                                  content_hash=p.content_hash, published_at=p.published,
                                  language=write.language, publisher=p.publisher)
    if v is None:
        values.update(flagged=None, score=None, topics="", reasons="[]", model_version=None,
                      classified_at=None)
    else:
        values.update(flagged=v.flagged, score=v.score, topics=",".join(v.topics),
                      reasons=json.dumps(list(v.reasons), ensure_ascii=False),
                      model_version=v.model_version, classified_at=now)
    return values


def _relinked(url: str | None, place: _Place) -> bool:
    """Whether an article stored at ``place`` now has another link (never one it lost)."""
    return url is not None and url != place.url


def _ids_by_key(conn: Connection, feed_id: int, keys: list[str]) -> dict[str, int]:
    return {k: row.id for k, row in _rows_by_key(conn, feed_id, keys).items()}


def _rows_by_key(conn: Connection, feed_id: int, keys: list[str]) -> dict[str, Any]:
    """key → (id, key, title, content_hash, url) of this feed's articles stored under ``keys``."""
    found: dict[str, Any] = {}
    for chunk in _chunks(keys, 500):
        query = select(ARTICLE.c.id, ARTICLE.c.key, ARTICLE.c.title, ARTICLE.c.content_hash,
                       ARTICLE.c.url).where(
            ARTICLE.c.feed_id == feed_id, ARTICLE.c.key.in_(chunk))
        found.update((row.key, row) for row in conn.execute(query))
    return found


class _Place(NamedTuple):
    """Where an article is stored: its row (None: a new one) and the key that row is to
    have; ``moves`` when the row has another key now."""
    id: int | None
    key: str
    content_hash: str | None = None
    moves: bool = False
    url: str | None = None          # the row's link


def _placed(conn: Connection, feed_id: int, articles: Sequence[ParsedArticle]) -> dict[str, _Place]:
    """The stored rows of the articles that are stored already (by article key), and the
    key of a new article that cannot take its own; an article not here is new, under its
    key (unless its link moved, see :func:`_moved_links`).

    An article is the row under its key; else, as stories under a guid and link that other
    stories of the feed share are known by their title too (``monitor.parse.titled_key``),
    the row under the other key the same story may have, with the same title:
    - a story whose key adds its title (the document has others under that guid and link):
      its row under the plain key, which an older version gave the first such story; the row
      takes the story's key (a row under the plain key with another title is another story);
    - a story alone under its key in this document: its row under the key with its title,
      stored when the document had others (that row keeps its key). Its row under its key
      with another title is the same story with an edited title, unless the feed has stories
      under that key with their titles: then it is another story, new under its titled key.
    """
    exact = _rows_by_key(conn, feed_id, [a.key for a in articles])
    places: dict[str, _Place] = {}
    pending: list[ParsedArticle] = []
    for a in articles:
        row = exact.get(a.key)
        if row is not None and (a.shared_key is not None or row.title == a.title):
            places[a.key] = _Place(row.id, a.key, row.content_hash, url=row.url)
        else:
            pending.append(a)
    if not pending:
        return places
    other = {a.key: a.shared_key or titled_key(a.key, a.title) for a in pending}
    rows = _rows_by_key(conn, feed_id, list(set(other.values())))
    edited: list[ParsedArticle] = []
    for a in pending:
        row = rows.get(other[a.key])
        if a.shared_key is not None:
            if row is not None and row.title == a.title:            # stored by an older version
                places[a.key] = _Place(row.id, a.key, row.content_hash, moves=True, url=row.url)
        elif row is not None:
            places[a.key] = _Place(row.id, row.key, row.content_hash, url=row.url)
        elif a.key in exact:
            edited.append(a)
    shared = _shared_keys(conn, feed_id, [a.key for a in edited])
    for a in edited:
        if a.key in shared:
            places[a.key] = _Place(None, other[a.key])
        else:
            places[a.key] = _Place(exact[a.key].id, a.key, exact[a.key].content_hash,
                                   url=exact[a.key].url)
    return places


def _shared_keys(conn: Connection, feed_id: int, keys: list[str]) -> set[str]:
    """Those of ``keys`` under which this feed has stories known by their titles."""
    shared = set()
    for key in keys:
        prefix = titled_key(key, "")[:-32]
        query = select(ARTICLE.c.id).where(
            ARTICLE.c.feed_id == feed_id,
            func.substr(ARTICLE.c.key, 1, len(prefix)) == prefix).limit(1)
        if conn.execute(query).first() is not None:
            shared.add(key)
    return shared


def _write_articles(conn: Connection, feed_id: int, writes: Sequence[ArticleWrite],
                    now: datetime) -> tuple[int, int]:
    """Insert new articles in one batch and update changed ones in place; (new, updated).

    An article already stored (see :func:`_placed`) is updated, never duplicated."""
    if not writes:
        return 0, 0
    places = _placed(conn, feed_id, [w.parsed for w in writes])
    unknown = [w for w in writes if w.parsed.key not in places]
    taken = {p.id for p in places.values() if p.id is not None}
    for key, row_id in _moved_links(conn, feed_id, unknown, {w.parsed.key for w in writes},
                                    taken).items():
        places[key] = _Place(row_id, key)
    key_of = {w.parsed.key: places[w.parsed.key].key if w.parsed.key in places else w.parsed.key
              for w in writes}
    existing = {k: p.id for k, p in places.items() if p.id is not None}
    fresh = [w for w in writes if w.parsed.key not in existing]
    changed = [w for w in writes if w.parsed.key in existing]
    if fresh:
        conn.execute(ARTICLE.insert(), [dict(feed_id=feed_id, key=key_of[w.parsed.key],
                                             first_seen_at=now, **_article_values(w, now))
                                        for w in fresh])
    was_flagged = {row.id: row.flagged for row in conn.execute(
        select(ARTICLE.c.id, ARTICLE.c.flagged).where(
            ARTICLE.c.id.in_([existing[w.parsed.key] for w in changed])))} if changed else {}
    for w in changed:
        row = existing[w.parsed.key]
        newly = w.verdict is not None and w.verdict.flagged and not was_flagged.get(row)
        conn.execute(update(ARTICLE).where(ARTICLE.c.id == row)
                     .values(key=key_of[w.parsed.key], updated_at=now,
                             **({"flagged_by_edit_at": now} if newly else {}),
                             **_article_values(w, now)))
    if changed:
        ids = [existing[w.parsed.key] for w in changed]
        conn.execute(COUNTRY.delete().where(COUNTRY.c.article_id.in_(ids)))
        conn.execute(MINERAL.delete().where(MINERAL.c.article_id.in_(ids)))
    with_mentions = [w for w in writes if w.countries or w.minerals]
    if with_mentions:
        inserted = _ids_by_key(conn, feed_id, [key_of[w.parsed.key] for w in fresh
                                               if w.countries or w.minerals])
        ids_of = {**existing, **{w.parsed.key: inserted[key_of[w.parsed.key]] for w in fresh
                                 if key_of[w.parsed.key] in inserted}}
        _insert_mentions(conn, COUNTRY, [(ids_of[w.parsed.key], m) for w in with_mentions for m in w.countries])
        _insert_mentions(conn, MINERAL, [(ids_of[w.parsed.key], m) for w in with_mentions for m in w.minerals])
    return len(fresh), len(changed)


def _moved_links(conn: Connection, feed_id: int, unknown: Sequence[ArticleWrite],
                 keys: set[str], taken: set[int]) -> dict[str, int]:
    """Items whose link moved to another scheme or host under the same guid and title (a
    site moved to https or to a new domain; the path stays): their new key -> the id of
    the article stored under the old link, which is then updated, not stored again. An
    article's key is its guid and link together (``monitor.parse.article_key``: some feeds
    give one guid to different stories, even under one title, such as a daily briefing
    whose link changes by day: another path, so a new article). A stored article still in
    the feed under its own key, or ``taken`` (another article's row), is not moved."""
    by_guid: dict[str, list[ArticleWrite]] = {}
    for w in unknown:
        if w.parsed.guid and w.parsed.url:
            by_guid.setdefault(w.parsed.guid, []).append(w)
    found: dict[str, int] = {}
    for chunk in _chunks(list(by_guid), 500):
        rows = conn.execute(select(ARTICLE.c.id, ARTICLE.c.key, ARTICLE.c.guid, ARTICLE.c.title,
                                   ARTICLE.c.url)
                            .where(ARTICLE.c.feed_id == feed_id, ARTICLE.c.guid.in_(chunk))
                            .order_by(ARTICLE.c.id))
        for row in rows:
            if row.key in keys or row.id in taken or row.id in found.values():
                continue
            same = [w for w in by_guid[row.guid]
                    if w.parsed.title == row.title and w.parsed.key not in found
                    and _path(w.parsed.url) == _path(row.url)]
            if same:
                found[same[0].parsed.key] = row.id
    return found


def _path(url: str | None) -> tuple[str, str]:
    """A link without its scheme and host: what stays when a site moves (canonicalised:
    links stored before they kept their query as sent had it re-encoded)."""
    parts = urlsplit(canonical_url(url) or url or "")
    return parts.path.rstrip("/") or "/", parts.query


def _insert_mentions(conn: Connection, table, mentions) -> None:
    rows = [dict(article_id=article_id, code=m.code, count=m.count) for article_id, m in mentions]
    if rows:
        conn.execute(table.insert(), rows)


def _write_feed_states(conn: Connection, states: Sequence[tuple[int, Mapping[str, Any]]],
                       owner: str | None = None) -> None:
    """One UPDATE per feed, sent as one executemany per shape of the values; the feeds'
    claims released — with ``owner``, only those still its own (a lease another poller
    took over after this one's ran out stays that poller's)."""
    if owner is not None and states:
        conn.execute(update(FEED).where(FEED.c.id.in_([f for f, _ in states]),
                                        FEED.c.claimed_by == owner)
                     .values(claimed_until=None, claimed_by=None))
    shapes: dict[tuple[str, ...], list[dict]] = {}
    for feed_id, state in states:
        values = dict(state) if owner is not None else {**state, "claimed_until": None,
                                                          "claimed_by": None}
        # bound under other names than the columns (SQLAlchemy reserves those in SET)
        row = {"p_feed_id": feed_id, **{f"p_{k}": v for k, v in values.items()}}
        shapes.setdefault(tuple(sorted(values)), []).append(row)
    for columns, rows in shapes.items():
        statement = (update(FEED).where(FEED.c.id == bindparam("p_feed_id"))
                     .values({c: bindparam(f"p_{c}") for c in columns}))
        conn.execute(statement, rows)


def _health(row, now: datetime, broken_after: int) -> FeedHealth:
    if row.error_count >= broken_after:
        health = "broken"
    elif row.error_count > 0:
        health = "failing"
    elif row.last_polled_at is None:
        health = "new"
    elif (row.last_new_at or row.created_at) < now - timedelta(days=row.silent_after_days):
        health = "silent"
    else:
        health = "ok"
    return FeedHealth(name=row.name, url=row.url, active=bool(row.active), health=health,
                      last_polled_at=row.last_polled_at, last_status=row.last_status,
                      error_count=row.error_count,
                      # masked again when shown: an error stored by an older version
                      last_error=row.last_error and masked_url(row.last_error),
                      next_check_at=row.next_check_at, last_new_at=row.last_new_at,
                      articles=row.articles)
