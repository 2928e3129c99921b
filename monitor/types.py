"""Plain values passed between the parts of monitor (frozen dataclasses, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class Mention:
    """One country (ISO 3166-1 alpha-2) or mineral id named in an article.

    ``spans`` are character offsets into ``title + "\\n" + text``.
    """

    code: str
    count: int
    spans: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class Verdict:
    """What the classifier and the keyword rules decided about one article."""

    flagged: bool
    topics: tuple[str, ...]
    score: float
    reasons: tuple[str, ...]
    probabilities: dict[str, float] = field(default_factory=dict)
    model_version: str | None = None


@dataclass(frozen=True)
class ParsedArticle:
    """An entry of a feed as plain text, ready to be identified and stored."""

    key: str                       # identity within the feed: guid+url, url or content hash
    guid: str | None
    url: str | None
    title: str
    text: str
    published: datetime | None     # UTC, None when the feed gave no usable date
    language: str | None           # ISO 639-1 from feed or entry metadata
    content_hash: str
    publisher: str | None = None   # who published it, where the entry says (<source>, author)
    # language, countries and minerals when a parse process found them (monitor.extract)
    extracted: Extraction | None = None
    # the key other stories of the document share, when this one's key adds its title to it
    # (monitor.parse.titled_key): an older version may have stored the story under it
    shared_key: str | None = None


@dataclass(frozen=True)
class Extraction:
    """What an article's text names, found beside the parse: its language (the entry's or
    feed's hint checked against the text), the countries and the minerals."""

    language: str | None
    countries: tuple[Mention, ...]
    minerals: tuple[Mention, ...]


@dataclass(frozen=True)
class FeedState:
    """A feed as the poller sees it: where to fetch and what it remembers."""

    id: int
    name: str
    url: str
    lang: str | None
    interval_minutes: int
    etag: str | None
    last_modified: str | None
    error_count: int
    first_error_at: datetime | None
    has_articles: bool = True     # False: nothing stored yet, so no article is known
    # the address relative links and guids in its articles' keys are read against (None:
    # none yet, the next document read gives it; monitor.parse.read_feed)
    key_base: str | None = None


@dataclass(frozen=True)
class FeedOutcome:
    """What one poll did to one feed; stored after its articles, in the same transaction."""

    polled_at: datetime
    next_check_at: datetime
    status: int | None = None
    etag: str | None = None
    last_modified: str | None = None
    error: str | None = None           # None on success
    not_modified: bool = False
    key_base: str | None = None        # what this poll's keys were read against (the feed keeps the first)


@dataclass(frozen=True)
class ArticleWrite:
    """One new or changed article with everything derived from it, ready to store."""

    parsed: ParsedArticle
    language: str | None
    verdict: Verdict | None            # None: not classified (no model and no rule ran)
    countries: tuple[Mention, ...] = ()
    minerals: tuple[Mention, ...] = ()


@dataclass(frozen=True)
class FeedHealth:
    """One row of `monitor feeds`."""

    name: str
    url: str
    active: bool
    health: str                        # ok | new | failing | broken | silent
    last_polled_at: datetime | None
    last_status: int | None
    error_count: int
    last_error: str | None
    next_check_at: datetime | None
    last_new_at: datetime | None
    articles: int


@dataclass(frozen=True)
class StoredArticle:
    """What every view of a stored article starts with: identity, text and provenance
    (the digest's ``DigestArticle`` and the review commands' ``ArticleView`` add theirs)."""

    id: int
    title: str
    text: str
    url: str | None
    source: str                  # the feed's name
    published: datetime          # published, else first seen (UTC)
    first_seen: datetime
    language: str | None
    publisher: str | None = field(default=None, kw_only=True)   # from the entry, else None

    @property
    def outlet(self) -> str:
        """Who to credit: the publisher the entry names, else the feed's name."""
        return self.publisher or self.source

    @property
    def undated(self) -> bool:
        """The entry gave no (usable) publication time: ``published`` is when it was seen."""
        return self.published == self.first_seen


@dataclass(frozen=True)
class DigestArticle(StoredArticle):
    """A flagged article as the digest sees it."""

    topics: tuple[str, ...]
    score: float
    reasons: tuple[str, ...]
    countries: tuple[str, ...]
    minerals: tuple[str, ...]
    cluster_id: int | None = None


@dataclass(frozen=True)
class Delivery:
    """One recipient's copy of one digest, as the ledger records it."""

    digest_id: int
    recipient: str
    status: str                  # pending | sending | sent | retry | failed | unknown
    attempts: int
    last_error: str | None
    message_id: str | None
    sent_at: datetime | None
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class DigestRecord:
    """A digest in the ledger: its period, its articles and its deliveries."""

    id: int
    digest_date: str
    period_start: datetime
    period_end: datetime
    article_ids: tuple[int, ...]
    deliveries: tuple[Delivery, ...]
    total_flagged: int = 0
    created_at: datetime | None = None    # when it was made (its first copies were sent)


@dataclass(frozen=True)
class FeedReport:
    """What one poll cycle did with one feed (a line of `monitor poll`)."""

    name: str
    url: str
    status: str                      # ok | not-modified | error | skipped
    http_status: int | None = None
    new: int = 0
    updated: int = 0
    flagged: int = 0
    error: str | None = None
    not_stored: bool = False         # the store refused this feed's articles: polled again


@dataclass
class CycleReport:
    """What one poll cycle did: a report per feed, its duration, what was not stored."""

    feeds: list[FeedReport] = field(default_factory=list)
    duration: float = 0.0
    unsaved_states: int = 0          # feeds whose new state the store refused

    def not_stored(self) -> list[FeedReport]:
        """Feeds whose articles the store refused (locked, disk full): polled again."""
        return [f for f in self.feeds if f.not_stored]

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.feeds)

    def count(self, status: str) -> int:
        return sum(1 for f in self.feeds if f.status == status)

    def summary(self) -> str:
        skipped = self.count("skipped")
        return (f"{len(self.feeds) - skipped} feeds polled" + (f" ({skipped} skipped: stopping)" if skipped else "")
                + f", {self.count('not-modified')} not modified, "
                f"{self.total('new')} new, {self.total('updated')} updated, "
                f"{self.total('flagged')} flagged, {self.count('error')} errors"
                + (f" ({len(self.not_stored())} not stored)" if self.not_stored() else "")
                + (f", state of {self.unsaved_states} feeds not stored" if self.unsaved_states else "")
                + f", {self.duration:.1f} s")


@dataclass(frozen=True)
class Analysis:
    """What analysing one stored article gives (``monitor reclassify`` writes it back)."""

    language: str | None
    verdict: Verdict
    countries: tuple[Mention, ...]
    minerals: tuple[Mention, ...]


@dataclass(frozen=True)
class Review:
    """One analyst's verdict on one article; ``current`` is False once superseded."""

    id: int
    article_id: int
    verdict: str                     # relevant | irrelevant
    topics: tuple[str, ...]
    note: str | None
    reviewer: str
    created_at: datetime
    current: bool
    text_changed: bool = False       # the feed rewrote the article since (not trained on)


@dataclass(frozen=True)
class ArticleView(StoredArticle):
    """A stored article as the review commands see it, with its current review."""

    flagged: bool | None             # None: never classified
    score: float | None
    topics: tuple[str, ...]
    reasons: tuple[str, ...]
    countries: tuple[str, ...]
    minerals: tuple[str, ...]
    model_version: str | None
    classified_at: datetime | None
    cluster_id: int | None
    review: Review | None = None

    @property
    def status(self) -> str:
        return self.review.verdict if self.review else "unreviewed"


@dataclass(frozen=True)
class ArticleDetail:
    """`monitor review show`: the article, its cluster siblings and its review history."""

    article: ArticleView
    siblings: tuple[ArticleView, ...]
    history: tuple[Review, ...]      # newest first


@dataclass(frozen=True)
class StoredVerdict:
    """What the store says about an article's classification (before a re-run)."""

    id: int
    title: str
    source: str
    published: datetime
    flagged: bool
    topics: tuple[str, ...]
    countries: tuple[str, ...] = ()
    minerals: tuple[str, ...] = ()
    # as read: a re-run's verdict is written back only while the article still has it (a
    # poll may rewrite the article meanwhile)
    content_hash: str | None = None
