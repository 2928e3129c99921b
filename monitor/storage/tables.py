"""The store's tables (SQLModel). These rows never leave the storage package."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import Column, DateTime, Index, Table, Text, TypeDecorator, UniqueConstraint, text
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every engine.

    SQLite hands back naive datetimes; this is the one place that fixes it: values are
    converted to UTC on the way in and come back tagged as UTC.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the store; pass UTC")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def _ts(nullable: bool = True, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class SchemaVersion(SQLModel, table=True):
    __tablename__ = "schema_version"
    version: int = Field(primary_key=True)
    applied_at: datetime = Field(sa_column=_ts(nullable=False))


class FeedRow(SQLModel, table=True):
    __tablename__ = "feed"
    id: int | None = Field(default=None, primary_key=True)
    url: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    name: str = Field(sa_column=Column(Text, nullable=False))
    lang: str | None = None
    interval_minutes: int = 60
    silent_after_days: float = 3.0
    active: bool = Field(default=True, index=True)
    etag: str | None = None
    last_modified: str | None = None
    next_check_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    last_polled_at: datetime | None = Field(default=None, sa_column=_ts())
    last_success_at: datetime | None = Field(default=None, sa_column=_ts())
    last_new_at: datetime | None = Field(default=None, sa_column=_ts())
    first_error_at: datetime | None = Field(default=None, sa_column=_ts())
    last_status: int | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    error_count: int = 0
    claimed_until: datetime | None = Field(default=None, sa_column=_ts())   # lease of a poller
    claimed_by: str | None = None
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    # the address relative links and guids in its articles' keys are read against: where its
    # first document came from (monitor.parse.read_feed); kept when the server redirects the
    # feed or its configured URL changes, so its articles keep their keys (schema version 6)
    key_base: str | None = Field(default=None, sa_column=Column(Text))


class ArticleRow(SQLModel, table=True):
    __tablename__ = "article"
    __table_args__ = (
        UniqueConstraint("feed_id", "key", name="uq_article_feed_key"),
        Index("ix_article_flagged_seen", "flagged", "first_seen_at"),
        # the review list and `monitor serve`: flagged articles newest first (schema version 3)
        Index("ix_article_flagged_published", "flagged",
              text("coalesce(published_at, first_seen_at)"), "id"),
    )
    id: int | None = Field(default=None, primary_key=True)
    feed_id: int = Field(foreign_key="feed.id", index=True)
    key: str = Field(sa_column=Column(Text, nullable=False))
    guid: str | None = Field(default=None, sa_column=Column(Text))
    url: str | None = Field(default=None, sa_column=Column(Text, index=True))
    title: str = Field(sa_column=Column(Text, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    content_hash: str
    published_at: datetime | None = Field(default=None, sa_column=_ts(index=True))
    first_seen_at: datetime = Field(sa_column=_ts(nullable=False))
    updated_at: datetime | None = Field(default=None, sa_column=_ts())
    # when an edit by its feed made an unflagged article flagged: the next digest takes it
    # (its first-seen and publication times are the first version's)
    flagged_by_edit_at: datetime | None = Field(default=None, sa_column=_ts())
    language: str | None = None
    flagged: bool | None = None          # None: not classified (model unavailable)
    score: float | None = None
    topics: str = ""                     # comma-separated topic names
    reasons: str = Field(default="[]", sa_column=Column(Text, nullable=False, default="[]"))
    model_version: str | None = None
    classified_at: datetime | None = Field(default=None, sa_column=_ts())
    cluster_id: int | None = Field(default=None, index=True)
    publisher: str | None = Field(default=None, sa_column=Column(Text))   # schema version 2


class ArticleCountryRow(SQLModel, table=True):
    __tablename__ = "article_country"
    article_id: int = Field(foreign_key="article.id", primary_key=True)
    code: str = Field(primary_key=True, index=True)
    count: int = 1


class ArticleMineralRow(SQLModel, table=True):
    __tablename__ = "article_mineral"
    article_id: int = Field(foreign_key="article.id", primary_key=True)
    code: str = Field(primary_key=True, index=True)
    count: int = 1


class ReviewRow(SQLModel, table=True):
    __tablename__ = "review"
    id: int | None = Field(default=None, primary_key=True)
    article_id: int = Field(foreign_key="article.id", index=True)
    verdict: str                          # relevant | irrelevant
    topics: str = ""
    note: str | None = Field(default=None, sa_column=Column(Text))
    reviewer: str
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    current: bool = True
    # the article's content_hash when the verdict was given: a verdict belongs to the text
    # judged, not to what the feed rewrote the item into later (None: given before v7)
    content_hash: str | None = Field(default=None, sa_column=Column(Text))


class DigestRow(SQLModel, table=True):
    __tablename__ = "digest"
    id: int | None = Field(default=None, primary_key=True)
    digest_date: str = Field(sa_column=Column(Text, nullable=False, unique=True))
    period_start: datetime = Field(sa_column=_ts(nullable=False))
    period_end: datetime = Field(sa_column=_ts(nullable=False))
    created_at: datetime = Field(sa_column=_ts(nullable=False))
    item_count: int = 0
    total_flagged: int = 0


class DigestItemRow(SQLModel, table=True):
    __tablename__ = "digest_item"
    digest_id: int = Field(foreign_key="digest.id", primary_key=True)
    article_id: int = Field(foreign_key="article.id", primary_key=True, unique=True)


class DigestDeliveryRow(SQLModel, table=True):
    __tablename__ = "digest_delivery"
    __table_args__ = (UniqueConstraint("digest_id", "recipient", name="uq_delivery"),)
    id: int | None = Field(default=None, primary_key=True)
    digest_id: int = Field(foreign_key="digest.id", index=True)
    recipient: str
    status: str = "pending"               # pending | sending | sent | retry | failed | unknown
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_column=_ts())
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    message_id: str | None = None
    sent_at: datetime | None = Field(default=None, sa_column=_ts())


# The Core tables, for the storage modules' queries.
FEED: Table = FeedRow.__table__                         # type: ignore[attr-defined]
ARTICLE: Table = ArticleRow.__table__                   # type: ignore[attr-defined]
COUNTRY: Table = ArticleCountryRow.__table__            # type: ignore[attr-defined]
MINERAL: Table = ArticleMineralRow.__table__            # type: ignore[attr-defined]
REVIEW: Table = ReviewRow.__table__                     # type: ignore[attr-defined]
DIGEST: Table = DigestRow.__table__                     # type: ignore[attr-defined]
ITEM: Table = DigestItemRow.__table__                   # type: ignore[attr-defined]
DELIVERY: Table = DigestDeliveryRow.__table__           # type: ignore[attr-defined]


def insert_ignore(conn, table, keys: list[str]):
    """INSERT … ON CONFLICT DO NOTHING, for the dialects the store supports."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing(index_elements=keys)
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing(index_elements=keys)
    return table.insert()
