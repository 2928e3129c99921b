"""One poll cycle: due feeds → fetch → parse → what is new → analyse → store.

This module only sequences calls; the decisions live in pure functions (scheduling,
parse, decide) and the I/O in fetch and storage. Fetches run concurrently in an asyncio
loop; fetched bodies are parsed in a small pool of worker processes (``poll.parse_processes``;
feedparser is pure Python, so threads would not use the other cores); analysis and writing
run one feed at a time in a single writer thread, so each feed's articles and its state
are written in one transaction, state last. Feeds that stored no article (304, errors) have
their state written in batches, one transaction for many feeds.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import multiprocessing
import os
import socket
import uuid
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone

from monitor.exceptions import FeedError, StorageError
from monitor.redact import masked_url
from monitor.fetch import Fetcher, FetchResult, FetchSettings
from monitor.parse import ParsedFeed, parse_job, read_feed, watch_service
from monitor.scheduling import next_check_after_error, next_check_after_success, plausible_published
from monitor.types import ArticleWrite, FeedOutcome, FeedState, ParsedArticle

log = logging.getLogger("monitor.poll")

Analyze = Callable[[Sequence[ParsedArticle], FeedState], list[ArticleWrite]]
Clock = Callable[[], datetime]


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:               # not glibc: the allocator's defaults stay
        return None


def release_free_memory() -> None:
    """Hand memory freed during the cycle back to the operating system (glibc only).

    A cycle allocates and frees many response bodies in several threads; glibc keeps the
    freed pages in per-thread arenas, so a service running for months would keep the peak
    of its busiest cycle. malloc_trim returns them; elsewhere this does nothing."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


_M_ARENA_MAX = -8                 # glibc's mallopt parameter number


def limit_malloc_arenas(arenas: int = 2) -> None:
    """At most ``arenas`` malloc arenas (glibc only; $MALLOC_ARENA_MAX still wins).

    glibc gives threads their own arenas, up to 8 per core; each new cycle's threads may
    land in a fresh one, and the service's memory then creeps up for many cycles before it
    levels off (bench/soak.py, 1,000 feeds: +11.5 % after 20 cycles with glibc's default,
    +8.9 % with two arenas). The service has few threads; two arenas cost no measurable
    speed there."""
    libc = _libc()
    if libc is not None and hasattr(libc, "mallopt") and "MALLOC_ARENA_MAX" not in os.environ:
        libc.mallopt(_M_ARENA_MAX, arenas)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def unclassified(articles: Sequence[ParsedArticle], feed: FeedState) -> list[ArticleWrite]:
    """The analysis seam when nothing is configured: store articles without a verdict."""
    return [ArticleWrite(parsed=a, language=a.language or feed.lang, verdict=None) for a in articles]


def parse_processes(configured: int | str) -> int:
    """Parse processes to start: as configured, or for "auto" one per core (at most 4; none
    on one core, where a process would only add the cost of sending the bodies over)."""
    if configured != "auto":
        return int(configured)
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                       # not on Linux
        cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 4)


class ParsePool:
    """Worker processes that parse fetched feeds for one cycle.

    Started on the first body of a cycle and stopped at its end, so a long-running
    service never accumulates what a parser leaves behind. Workers are forked from a
    fork server that has the parser imported (``spawn`` where there is none), never from
    the threaded service process itself. If a worker dies (a crash in a C extension, the
    OOM killer), the pool is replaced and that feed is parsed once more; a second death
    is recorded as that feed's error."""

    def __init__(self, processes: int, job=None) -> None:
        self.processes = processes
        self.job = job or parse_job      # a module-level function (it is pickled by name)
        self._executor: ProcessPoolExecutor | None = None

    @staticmethod
    def _context():
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            # the main module too: each worker would otherwise import it again on start;
            # feedparser as well (~60 ms a worker, once per cycle otherwise)
            context.set_forkserver_preload(["__main__", "monitor.parse", "feedparser"])
            return context
        return multiprocessing.get_context("spawn")

    @classmethod
    def prepare(cls) -> None:
        """Start the fork server now (it imports the parser once, ~0.2 s), so that the
        first cycle's workers fork from it at once instead of waiting for it."""
        try:
            context = cls._context()
            if context.get_start_method() == "forkserver":
                from multiprocessing import forkserver

                forkserver.ensure_running()
        except (OSError, RuntimeError, ValueError):
            pass            # the first cycle says so, and parses in the service process

    def _current(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(self.processes, mp_context=self._context(),
                                                 initializer=watch_service,
                                                 initargs=(os.getpid(),))
        return self._executor

    async def parse(self, result: FetchResult) -> ParsedFeed | None:
        """The feed's articles and notes; raises FeedError. None when no worker process can be
        started here: the caller parses in its own process (and so does every later feed)."""
        loop = asyncio.get_running_loop()
        for attempt in (1, 2):
            if not self.processes:
                return None
            try:
                executor = self._current()
                future = loop.run_in_executor(
                    executor, self.job, result.content, result.headers, result.url)
            except (OSError, RuntimeError, ValueError) as exc:
                log.warning("cannot start parse processes (%s: %s); parsing in this process "
                            "instead (set poll.parse_processes = 0 to say so)",
                            type(exc).__name__, exc)
                self.processes = 0
                self._executor = None
                return None
            try:
                articles, error = await future
            except BrokenProcessPool:
                if self._executor is executor:
                    self._executor = None
                    executor.shutdown(wait=False, cancel_futures=True)
                if attempt == 2:
                    raise FeedError("the parser process died while reading this feed "
                                    "(crash or out of memory)", kind="parse",
                                    status=result.status) from None
                continue
            if error is not None:
                message, kind = error
                raise FeedError(message, kind=kind, status=result.status)
            return articles
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None


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
    not_stored: bool = False         # the store refused this feed's articles: polled again


@dataclass
class CycleReport:
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
        return (f"{len(self.feeds)} feeds polled, {self.count('not-modified')} not modified, "
                f"{self.total('new')} new, {self.total('updated')} updated, "
                f"{self.total('flagged')} flagged, {self.count('error')} errors"
                + (f" ({len(self.not_stored())} not stored)" if self.not_stored() else "")
                + (f", state of {self.unsaved_states} feeds not stored" if self.unsaved_states else "")
                + f", {self.duration:.1f} s")


class Poller:
    """Runs poll cycles against one store with one analysis function."""

    def __init__(self, store, config, analyze: Analyze = unclassified, clock: Clock = utcnow,
                 stop: threading.Event | None = None) -> None:
        limit_malloc_arenas()
        self.store = store
        self.config = config
        if parse_processes(config.poll.parse_processes):
            ParsePool.prepare()
        self.analyze = analyze
        self.clock = clock
        self.stop = stop or threading.Event()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._states: list[tuple[FeedState, FeedOutcome]] = []   # written in batches
        self._states_lock = threading.Lock()
        self._unsaved_states = 0                # this cycle's feeds whose state was refused
        self.parse_job = parse_job          # what a parse process runs (tests replace it)

    def run_cycle(self, include_all: bool = False) -> CycleReport:
        started = time.monotonic()
        self._unsaved_states = 0
        report = CycleReport(feeds=asyncio.run(self._poll_all(include_all)))
        report.duration = time.monotonic() - started
        report.unsaved_states = self._unsaved_states
        if report.count("error"):
            # a failed feed leaves reference cycles (exception → traceback → frame → the
            # partly read body) that would wait for a later GC pass: collect them now
            # (~25 ms; not on cycles without failures, such as all-304 ones)
            gc.collect()
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
        batch = max(64, settings.concurrency * 16)
        loop = asyncio.get_running_loop()
        reports: list[FeedReport] = []
        seen: list[int] = []
        pending: set[asyncio.Task] = set()
        finished = asyncio.Event()

        def collect(task: asyncio.Task) -> None:
            pending.discard(task)
            if not pending or (not exhausted and len(pending) <= batch // 2):
                finished.set()                  # time to claim more, or to finish
            if task.cancelled():
                return
            if task.exception() is not None:      # _poll_one records every expected failure
                log.error("poll task failed", exc_info=task.exception())
            else:
                reports.append(task.result())

        exhausted = False
        parser = ParsePool(parse_processes(self.config.poll.parse_processes), self.parse_job)
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-store") as writer:
                async with Fetcher(settings) as fetcher:
                    while True:
                        finished.clear()
                        if not exhausted and not self.stop.is_set() and len(pending) <= batch // 2:
                            want = batch - len(pending)
                            feeds = await loop.run_in_executor(
                                writer, self._claim, want, include_all, seen)
                            exhausted = len(feeds) < want      # nothing more is due
                            seen.extend(f.id for f in feeds)
                            for feed in feeds:
                                task = asyncio.create_task(self._poll_one(fetcher, parser, writer, feed))
                                task.add_done_callback(collect)
                                pending.add(task)
                        if not pending:
                            break
                        if finished.is_set():  # feeds finished during the claim: claim again
                            continue
                        try:                   # wake when more can be claimed, or to check stop
                            async with asyncio.timeout(0.2):
                                await finished.wait()
                        except TimeoutError:
                            pass
                        if self.stop.is_set():
                            await self._abandon(set(pending))
                    await loop.run_in_executor(writer, self._flush_states)
        finally:
            parser.close()
        self._release()
        return reports

    def _release(self) -> None:
        """Give back leases of feeds not stored (skipped on stop, or the store was locked)."""
        try:
            self.store.release_claims(self.owner)
        except StorageError as exc:
            log.warning("could not release feed claims (they expire by themselves): %s", exc)

    async def _abandon(self, tasks: set[asyncio.Task]) -> None:
        """On stop, fetches in flight are cancelled; a feed being stored finishes first
        (the writer thread cannot be interrupted; its report is still collected)."""
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _poll_one(self, fetcher: Fetcher, parser: ParsePool, writer,
                        feed: FeedState) -> FeedReport:
        if self.stop.is_set():
            return FeedReport(feed.name, feed.url, "skipped")
        parsed: ParsedFeed | FeedError | None = None
        try:
            result: FetchResult | FeedError = await fetcher.fetch(feed.url, feed.etag, feed.last_modified)
            if result.content is not None and parser.processes:
                try:
                    parsed = await parser.parse(result)     # None: parse in the writer
                except FeedError as exc:
                    parsed = exc
        except FeedError as exc:
            result = exc
        except Exception as exc:  # a bug in fetching must not end the other feeds' cycle
            log.exception("feed %s: unexpected error while fetching", feed.name)
            result = FeedError(f"{type(exc).__name__}: {exc}", kind="internal")
        if isinstance(result, FeedError) or result.content is None:
            # nothing to store but the feed's state: batched, no trip to the writer thread
            report = self._outcome_only(feed, result, self.clock())
            states = self._take_states(at_least=100)
            if states:              # the writer thread runs one job at a time, in order
                writer.submit(self._flush_states, states)
            return report
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(writer, self.process, feed, result, parsed)

    def process(self, feed: FeedState, result: FetchResult,
                parsed: ParsedFeed | FeedError | None = None) -> FeedReport:
        """Parse (unless a parse process did), analyse and store one feed fetched with a
        body (runs in the writer thread; 304s and fetch errors never come here)."""
        if self.stop.is_set():
            return FeedReport(feed.name, feed.url, "skipped")
        now = self.clock()
        try:
            return self._store(feed, result, now, parsed)
        except StorageError as exc:
            log.error("feed %s: not stored, will retry next cycle: %s", feed.name, exc)
            return FeedReport(feed.name, feed.url, "error", error=str(exc), not_stored=True)
        except Exception as exc:  # a bug must not stop the other feeds: record it, back off
            log.exception("feed %s: unexpected error", feed.name)
            error = FeedError(f"{type(exc).__name__}: {exc}", kind="internal")
            return self._store_error(feed, error, now)

    def _success(self, feed: FeedState, result: FetchResult, now: datetime) -> FeedOutcome:
        return FeedOutcome(polled_at=now, status=result.status, etag=result.etag,
                           last_modified=result.last_modified,
                           next_check_at=next_check_after_success(now, self._interval(feed),
                                                                  result.max_age),
                           not_modified=result.content is None)

    def _outcome_only(self, feed: FeedState, result: FetchResult | FeedError,
                      now: datetime) -> FeedReport:
        """A 304 or a fetch error: only the feed's state changes, written in a batch."""
        if isinstance(result, FeedError):
            return self._store_error(feed, result, now)
        with self._states_lock:
            self._states.append((feed, self._success(feed, result, now)))
        return FeedReport(feed.name, feed.url, "not-modified", http_status=304)

    def _store(self, feed: FeedState, result: FetchResult, now: datetime,
               parsed: ParsedFeed | FeedError | None) -> FeedReport:
        outcome = self._success(feed, result, now)
        if parsed is None:
            try:
                parsed = read_feed(result.content, result.headers, result.url)
            except FeedError as exc:
                exc.status = result.status
                parsed = exc
        if isinstance(parsed, FeedError):
            return self._store_error(feed, parsed, now)
        for note in parsed.notes:
            log.warning("feed %s (%s): %s", feed.name, masked_url(feed.url), note)
        fresh = self._changed(feed, parsed.articles, now)
        writes = self.analyze(fresh, feed) if fresh else []
        new, updated = self.store.save_poll(feed, writes, outcome)
        flagged = sum(1 for w in writes if w.verdict is not None and w.verdict.flagged)
        return FeedReport(feed.name, feed.url, "ok", http_status=result.status, new=new,
                          updated=updated, flagged=flagged)

    def _changed(self, feed: FeedState, articles: list[ParsedArticle], now: datetime) -> list[ParsedArticle]:
        known = self.store.known_articles(feed.id, [a.key for a in articles]) if feed.has_articles else {}
        fresh = [a for a in articles if known.get(a.key) != a.content_hash]
        return [replace(a, published=plausible_published(a.published, now)) for a in fresh]

    def _store_error(self, feed: FeedState, error: FeedError, now: datetime) -> FeedReport:
        next_check = next_check_after_error(now, self._interval(feed), feed.error_count + 1,
                                            error.retry_after, self.config.poll.max_backoff_hours)
        outcome = FeedOutcome(polled_at=now, next_check_at=next_check, status=error.status,
                              error=f"{error.kind}: {error}")
        with self._states_lock:
            self._states.append((feed, outcome))
        log.warning("feed %s (%s): %s: %s", feed.name, masked_url(feed.url), error.kind, error)
        return FeedReport(feed.name, feed.url, "error", http_status=error.status,
                          error=f"{error.kind}: {error}")

    def _take_states(self, at_least: int = 0) -> list[tuple[FeedState, FeedOutcome]]:
        """The batched states, emptied; none while fewer than ``at_least`` are waiting."""
        with self._states_lock:
            if len(self._states) < at_least:
                return []
            states, self._states = self._states, []
        return states

    def _flush_states(self, states: list[tuple[FeedState, FeedOutcome]] | None = None) -> None:
        """Write batched feed states (writer thread); all pending ones when not given. If
        the store refuses, those feeds keep their previous state and are polled again next
        cycle: nothing is lost."""
        if states is None:
            states = self._take_states()
        try:
            self.store.save_states(states)
        except StorageError as exc:
            log.error("state of %d feeds not stored, they will be polled again: %s",
                      len(states), exc)
            self._unsaved_states += len(states)

    def _interval(self, feed: FeedState) -> int:
        return feed.interval_minutes or self.config.poll.interval_minutes
