"""Numbered schema migrations. The store file is never deleted to change the schema.

A new store is created from the current table definitions and stamped with the latest
version. An existing store gets every migration above its version, in order, each in its
own transaction. To change the schema: edit tables.py, then append a migration here that
brings an existing store to the same shape (and re-create the views if they change).

Creating and migrating are serialised across processes (several services started at once
on an empty database): on PostgreSQL by a transaction-level advisory lock, on SQLite by an
immediate transaction (the write lock); inside it the version is read again, so the second
process finds the work done. A store already at the latest version is only read: opening
it never waits for another writer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection, Engine
from sqlmodel import SQLModel

from monitor.storage import tables

_AGG = {
    "sqlite": "(SELECT group_concat(code, ',') FROM (SELECT code FROM {table} x "
              "WHERE x.article_id = a.id ORDER BY code))",
    "postgresql": "(SELECT string_agg(code, ',' ORDER BY code) FROM {table} x "
                  "WHERE x.article_id = a.id)",
}
_TRUE = {"sqlite": "1", "postgresql": "true"}
_FALSE = {"sqlite": "0", "postgresql": "false"}
_NOW_MINUS_DAYS = {
    "sqlite": "datetime('now', '-' || ({days}) || ' days')",
    # timestamptz arithmetic: the same instant whatever the session's time zone (``now() at
    # time zone 'utc'`` is a bare timestamp, read in the session's zone when compared)
    "postgresql": "now() - make_interval(secs => ({days}) * 86400)",
}


def _flagged_view(dialect: str) -> str:
    return f"""
CREATE VIEW flagged AS
SELECT a.id, COALESCE(a.published_at, a.first_seen_at) AS published, f.name AS source,
       a.title, a.url, a.topics, a.score,
       {_AGG[dialect].format(table="article_country")} AS countries,
       {_AGG[dialect].format(table="article_mineral")} AS minerals,
       a.language, a.reasons, a.model_version, a.cluster_id, a.first_seen_at
FROM article a JOIN feed f ON f.id = a.feed_id
WHERE a.flagged = {_TRUE[dialect]}
"""


def _feed_health_view(dialect: str) -> str:
    silent_since = _NOW_MINUS_DAYS[dialect].format(days="f.silent_after_days")
    return f"""
CREATE VIEW feed_health AS
SELECT f.id, f.name, f.active, f.last_polled_at, f.last_status, f.error_count,
       f.last_error, f.next_check_at, f.last_new_at,
       (SELECT count(*) FROM article a WHERE a.feed_id = f.id) AS articles,
       CASE
         WHEN f.error_count >= 3 THEN 'broken'
         WHEN f.error_count > 0 THEN 'failing'
         WHEN f.last_polled_at IS NULL THEN 'new'
         WHEN COALESCE(f.last_new_at, f.created_at) < {silent_since} THEN 'silent'
         ELSE 'ok'
       END AS health
FROM feed f
"""


def create_views(conn: Connection) -> None:
    dialect = conn.dialect.name
    for name, build in (("flagged", _flagged_view), ("feed_health", _feed_health_view)):
        conn.execute(text(f"DROP VIEW IF EXISTS {name}"))
        conn.execute(text(build(dialect)))


def _add_publisher(conn: Connection) -> None:
    conn.execute(text("ALTER TABLE article ADD COLUMN publisher TEXT"))


def _index_flagged_by_date(conn: Connection) -> None:
    conn.execute(text("CREATE INDEX IF NOT EXISTS ix_article_flagged_published ON article "
                      "(flagged, coalesce(published_at, first_seen_at), id)"))


def _add_missing_columns(conn: Connection) -> None:
    """Tables and columns the current definitions have and the store lacks: stores made by
    the first releases, still at version 1, were made before the feed leases
    (feed.claimed_until, claimed_by), the digest's total and the delivery's retry time
    were added without a migration of their own. A missing column is added as defined
    (nullable, or with its default for the rows there)."""
    SQLModel.metadata.create_all(conn, tables=_our_tables(), checkfirst=True)
    inspector = inspect(conn)
    for table in _our_tables():
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=conn.dialect)
            clause = f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"
            default = getattr(column.default, "arg", None)
            if not column.nullable:
                if isinstance(default, bool):
                    literal = _TRUE[conn.dialect.name] if default else _FALSE[conn.dialect.name]
                    clause += f" NOT NULL DEFAULT {literal}"
                elif isinstance(default, (int, float)):
                    clause += f" NOT NULL DEFAULT {default!r}"
                elif isinstance(default, str):
                    clause += " NOT NULL DEFAULT '" + default.replace("'", "''") + "'"
                else:
                    raise RuntimeError(f"cannot add {table.name}.{column.name}: not nullable "
                                       "and no default for the rows there")
            conn.execute(text(clause))


# (version, what it does, function). Version 1 is the initial schema.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "initial schema", lambda conn: None),
    (2, "article.publisher: the outlet an entry names (<source>, author)", _add_publisher),
    (3, "index of flagged articles by date (the review list: 65 ms → 2 ms on 200,000)",
     _index_flagged_by_date),
    (4, "feed_health without the feed URL, which may hold a password or an API key (the "
        "views are made again after every step)", lambda conn: None),
    (5, "columns that stores of the first releases lack (feed leases, the digest's total, "
        "the delivery's retry time); feed_health's silence the same in every session time "
        "zone (PostgreSQL)", _add_missing_columns),
    (6, "feed.key_base: the address relative links and guids in article keys are read "
        "against, kept across redirects and URL edits (set by the next poll that reads the "
        "feed: the address its stored keys were read against)", _add_missing_columns),
    (7, "review.content_hash: the text a verdict was given on (a feed may rewrite an item "
        "under the same link; training leaves out a verdict on a text that changed since); "
        "article.flagged_by_edit_at: when an edit made an article flagged (the next digest "
        "takes it)", _add_missing_columns),
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int | None:
    if not inspect(conn).has_table("schema_version"):
        return None
    return conn.execute(text("SELECT max(version) FROM schema_version")).scalar()


def _stamp(conn: Connection, version: int) -> None:
    conn.execute(SQLModel.metadata.tables["schema_version"].insert().values(
        version=version, applied_at=datetime.now(timezone.utc)))


SCHEMA_LOCK = 7_246_118    # PostgreSQL advisory lock key for creating and migrating


def migrate(engine: Engine) -> int:
    """Bring the store to the latest schema; returns the version it is at. A store newer
    than this code is a StorageError naming the store."""
    with engine.connect() as conn:
        version = current_version(conn)
    if version == LATEST:
        return LATEST
    with _serialised(engine) as conn:
        version = current_version(conn)          # another process may have done it meanwhile
        if version is None:
            SQLModel.metadata.create_all(conn, tables=_our_tables())
            create_views(conn)
            _stamp(conn, LATEST)
            return LATEST
    if version > LATEST:
        from monitor.exceptions import StorageError

        from monitor.redact import masked_url

        where = masked_url(engine.url.render_as_string(hide_password=True))
        raise StorageError(f"the store {where} has schema version {version}, newer than this "
                           f"monitor knows ({LATEST}); upgrade monitor")
    for number, _doc, step in MIGRATIONS:
        if number > version:
            with _serialised(engine) as conn:
                if (current_version(conn) or 0) >= number:
                    continue
                step(conn)
                create_views(conn)
                _stamp(conn, number)
    return LATEST


@contextmanager
def _serialised(engine: Engine) -> Iterator[Connection]:
    """A transaction no other process's schema work runs beside."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        elif conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def _our_tables():
    names = ("schema_version", "feed", "article", "article_country", "article_mineral",
             "review", "digest", "digest_item", "digest_delivery")
    _ = tables  # the table classes register themselves on SQLModel.metadata
    return [SQLModel.metadata.tables[n] for n in names]
