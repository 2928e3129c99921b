"""One poll cycle: due feeds → fetch → parse → what is new → analyse → store.

This module only sequences calls; the decisions live in pure functions (scheduling,
parse, decide) and the I/O in fetch and storage. Fetches run concurrently; parsing,
analysis and writing run one feed at a time in a single worker thread, so each feed's
articles and its state are written in one transaction, state last.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import socket
import uuid
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from monitor.exceptions import FeedError, StorageError
from monitor.fetch import Fetcher, FetchResult, FetchSettings
from monitor.parse import parse_feed
from monitor.scheduling import next_check_after_error, next_check_after_success, plausible_published
from monitor.types import ArticleWrite, FeedOutcome, FeedState, ParsedArticle

log = logging.getLogger("monitor.poll")

Analyze = Callable[[Sequence[ParsedArticle], FeedState], list[ArticleWrite]]
Clock = Callable[[], datetime]


def release_free_memory() -> None:
    """Hand memory freed during the cycle back to the operating system (glibc only).

    A cycle allocates and frees many response bodies and parse trees in two threads; glibc
    keeps the freed pages in per-thread arenas, so a service running for months would keep
    the peak of its busiest cycle. malloc_trim returns them; elsewhere this does nothing."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def unclassified(articles: Sequence[ParsedArticle], feed: FeedState) -> list[ArticleWrite]:
    """The analysis seam when nothing is configured: store articles without a verdict."""
    return [ArticleWrite(parsed=a, language=a.language or feed.lang, verdict=None) for a in articles]


@dataclass(frozen=True)
class FeedReport:
    name: str
    url: str
    status: str                      # ok | not-modified | error | skipped
    http_status: int | None = None
    new: int = 0
    updated: int = 0
    flagged: int = 0
    error: str | None = None


@dataclass
class CycleReport:
    feeds: list[FeedReport] = field(default_factory=list)
    duration: float = 0.0

    def total(self, attr: str) -> int:
        return sum(getattr(f, attr) for f in self.feeds)

    def count(self, status: str) -> int:
        return sum(1 for f in self.feeds if f.status == status)

    def summary(self) -> str:
        return (f"{len(self.feeds)} feeds polled, {self.count('not-modified')} not modified, "
                f"{self.total('new')} new, {self.total('updated')} updated, "
                f"{self.total('flagged')} flagged, {self.count('error')} errors, "
                f"{self.duration:.1f} s")


class Poller:
    """Runs poll cycles against one store with one analysis function."""

    def __init__(self, store, config, analyze: Analyze = unclassified, clock: Clock = utcnow,
                 stop: threading.Event | None = None) -> None:
        self.store = store
        self.config = config
        self.analyze = analyze
        self.clock = clock
        self.stop = stop or threading.Event()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    def run_cycle(self, include_all: bool = False) -> CycleReport:
        started = time.monotonic()
        report = CycleReport(feeds=asyncio.run(self._poll_all(include_all)))
        report.duration = time.monotonic() - started
        release_free_memory()
        return report

    def _claim(self, count: int, include_all: bool, seen: list[int]) -> list[FeedState]:
        poll = self.config.poll
        return self.store.claim_due_feeds(self.clock(), self.owner, poll.lease_seconds, count,
                                          include_all=include_all, exclude=seen)

    async def _poll_all(self, include_all: bool) -> list[FeedReport]:
        """Claim due feeds in batches and keep up to ``batch`` of them in flight; when half
        are done, claim more. Several pollers on one database share the work this way."""
        settings = FetchSettings.from_config(self.config.poll)
        batch = max(16, settings.concurrency * 4)
        loop = asyncio.get_running_loop()
        reports: list[FeedReport] = []
        seen: list[int] = []
        pending: set[asyncio.Task] = set()
        exhausted = False
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-store") as writer:
            async with Fetcher(settings) as fetcher:
                while True:
                    if not exhausted and not self.stop.is_set() and len(pending) <= batch // 2:
                        feeds = await loop.run_in_executor(
                            writer, self._claim, batch - len(pending), include_all, seen)
                        exhausted = not feeds
                        seen.extend(f.id for f in feeds)
                        pending.update(asyncio.create_task(self._poll_one(fetcher, writer, f))
                                       for f in feeds)
                    if not pending:
                        break
                    done, pending = await asyncio.wait(pending, timeout=0.2,
                                                       return_when=asyncio.FIRST_COMPLETED)
                    reports.extend(task.result() for task in done)
                    if self.stop.is_set():
                        reports.extend(await self._abandon(pending))
                        pending = set()
        self._release()
        return reports

    def _release(self) -> None:
        """Give back leases of feeds not stored (skipped on stop, or the store was locked)."""
        try:
            self.store.release_claims(self.owner)
        except StorageError as exc:
            log.warning("could not release feed claims (they expire by themselves): %s", exc)

    async def _abandon(self, tasks: set[asyncio.Task]) -> list[FeedReport]:
        """On stop, fetches in flight are cancelled; a feed being stored finishes first."""
        for task in tasks:
            task.cancel()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        return [r for r in results if isinstance(r, FeedReport)]

    async def _poll_one(self, fetcher: Fetcher, writer, feed: FeedState) -> FeedReport:
        if self.stop.is_set():
            return FeedReport(feed.name, feed.url, "skipped")
        try:
            result: FetchResult | FeedError = await fetcher.fetch(feed.url, feed.etag, feed.last_modified)
        except FeedError as exc:
            result = exc
        except Exception as exc:  # a bug in fetching must not end the other feeds' cycle
            log.exception("feed %s: unexpected error while fetching", feed.name)
            result = FeedError(f"{type(exc).__name__}: {exc}", kind="internal")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(writer, self.process, feed, result)

    def process(self, feed: FeedState, result: FetchResult | FeedError) -> FeedReport:
        """Parse, analyse and store one fetched feed (runs in the writer thread)."""
        if self.stop.is_set():
            return FeedReport(feed.name, feed.url, "skipped")
        now = self.clock()
        try:
            return self._store(feed, result, now)
        except StorageError as exc:
            log.error("feed %s: not stored, will retry next cycle: %s", feed.name, exc)
            return FeedReport(feed.name, feed.url, "error", error=str(exc))
        except Exception as exc:  # a bug must not stop the other feeds: record it, back off
            log.exception("feed %s: unexpected error", feed.name)
            error = FeedError(f"{type(exc).__name__}: {exc}", kind="internal")
            return self._store_error(feed, error, now)

    def _store(self, feed: FeedState, result: FetchResult | FeedError, now: datetime) -> FeedReport:
        if isinstance(result, FeedError):
            return self._store_error(feed, result, now)
        interval = self._interval(feed)
        outcome = FeedOutcome(polled_at=now, status=result.status, etag=result.etag,
                              last_modified=result.last_modified,
                              next_check_at=next_check_after_success(now, interval, result.max_age),
                              not_modified=result.content is None)
        if result.content is None:
            self.store.save_poll(feed, [], outcome)
            return FeedReport(feed.name, feed.url, "not-modified", http_status=304)
        try:
            articles = parse_feed(result.content, result.headers, result.url)
        except FeedError as exc:
            exc.status = result.status
            return self._store_error(feed, exc, now)
        fresh = self._changed(feed, articles, now)
        writes = self.analyze(fresh, feed) if fresh else []
        new, updated = self.store.save_poll(feed, writes, outcome)
        flagged = sum(1 for w in writes if w.verdict is not None and w.verdict.flagged)
        return FeedReport(feed.name, feed.url, "ok", http_status=result.status, new=new,
                          updated=updated, flagged=flagged)

    def _changed(self, feed: FeedState, articles: list[ParsedArticle], now: datetime) -> list[ParsedArticle]:
        known = self.store.known_articles(feed.id, [a.key for a in articles])
        fresh = [a for a in articles if known.get(a.key) != a.content_hash]
        return [replace(a, published=plausible_published(a.published, now)) for a in fresh]

    def _store_error(self, feed: FeedState, error: FeedError, now: datetime) -> FeedReport:
        next_check = next_check_after_error(now, self._interval(feed), feed.error_count + 1,
                                            error.retry_after, self.config.poll.max_backoff_hours)
        outcome = FeedOutcome(polled_at=now, next_check_at=next_check, status=error.status,
                              error=f"{error.kind}: {error}")
        self.store.save_poll(feed, [], outcome)
        log.warning("feed %s (%s): %s: %s", feed.name, feed.url, error.kind, error)
        return FeedReport(feed.name, feed.url, "error", http_status=error.status,
                          error=f"{error.kind}: {error}")

    def _interval(self, feed: FeedState) -> int:
        return feed.interval_minutes or self.config.poll.interval_minutes
