"""One poll cycle: due feeds → fetch → parse → what is new → analyse → store.

This module only sequences calls: the decisions live in pure functions (scheduling, parse,
decide), the I/O in fetch, parsepool and storage, the memory tuning in memory. Fetches run
concurrently in an asyncio loop; fetched bodies are parsed in worker processes
(``monitor.parsepool``), which also find the language, countries and minerals of the
articles not stored yet (``monitor.extract``); classification and writing run in a single
writer thread, which takes the feeds waiting for it in one batch (one model call) and
writes each feed's articles and its state in one transaction, state last.
Feeds that stored no article (304, errors) have their state written in batches, one
transaction for many feeds.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import uuid
import weakref
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from monitor.clock import Clock, utcnow
from monitor.exceptions import ClockError, FeedError, StorageError
from monitor.extract import extract
from monitor.fetch import Fetcher, FetchResult, FetchSettings
from monitor.memory import limit_malloc_arenas, release_free_memory
from monitor.parse import ParsedFeed, parse_job, read_feed
from monitor.parsepool import ParsePool, parse_processes
from monitor.redact import masked_url
from monitor.feedstate import feed_outcome, fresh_articles
from monitor.scheduling import next_check_after_error, next_check_after_success
from monitor.types import (ArticleWrite, CycleReport, FeedOutcome, FeedReport, FeedState,
                           ParsedArticle)

log = logging.getLogger("monitor.poll")
# The pollers of this process that still exist (a service makes one per cycle: held
# weakly, so the set does not grow with the cycles). A lease under this process's pid but
# none of their owners is an earlier process's that had the same pid: a restarted
# container numbers its processes from 1 again, so the service killed with it had this pid.
_POLLERS_HERE: weakref.WeakSet[Poller] = weakref.WeakSet()


# How far this machine's clock may be behind the end of the last digest's period before
# the poll refuses: clocks of two machines differ a little, and a digest looks an hour back
# for articles committed late (``ledger.LATE_COMMIT``), so this much loses nothing.
CLOCK_SLACK = timedelta(minutes=15)


def _span(delta: timedelta) -> str:
    """"2 days 3 h", "3 h 20 min", "25 min": how far a clock is off."""
    minutes = int(delta.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} day{'s' if days > 1 else ''} {hours} h"
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def owners_here() -> set[str]:
    """The lease owners of this process's pollers."""
    return {poller.owner for poller in list(_POLLERS_HERE)}

Analyze = Callable[[Sequence[ParsedArticle], FeedState], list[ArticleWrite]]
# a fetched feed on its way to the writer: parsed (None: the writer parses it), and its
# stored keys → content hashes when they were read beforehand (None: the writer reads them)
_Job = tuple[FeedState, FetchResult, ParsedFeed | FeedError | None, dict[str, str] | None]
FeedStateWrite = tuple[int, dict[str, Any]]       # a feed's id and the columns to set


def unclassified(articles: Sequence[ParsedArticle], feed: FeedState) -> list[ArticleWrite]:
    """The analysis seam when nothing is configured: store articles without a verdict."""
    return [ArticleWrite(parsed=a, language=a.language or feed.lang, verdict=None) for a in articles]


class Poller:
    """Runs poll cycles against one store with one analysis function."""

    def __init__(self, store, config, analyze: Analyze = unclassified, clock: Clock = utcnow,
                 stop: threading.Event | None = None, parser: ParsePool | None = None,
                 tick: datetime | None = None) -> None:
        limit_malloc_arenas()
        self.store = store
        self.config = config
        if parse_processes(config.poll.parse_processes):
            ParsePool.prepare()
        self.analyze = analyze
        # the analysis takes language, countries and minerals found beside the parse
        self._extracts = bool(getattr(analyze, "extracts", False)) and bool(
            parse_processes(config.poll.parse_processes))
        if self._extracts:
            analyze.extracted_elsewhere = True      # type: ignore[attr-defined]
        self.clock = clock
        # the dispatcher's tick this cycle runs at (monitor run): a feed's interval counts
        # from it, so a feed polled at one tick is due at the tick its interval later. Counted
        # from the end of its fetch, a few seconds after its tick, it missed that tick and
        # waited for the next: every feed was polled at its interval plus a tick (a 1-minute
        # feed every 2 minutes). Servers' floors (Retry-After, max-age) count from the reply.
        self.tick = tick
        self.stop = stop or threading.Event()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        _POLLERS_HERE.add(self)
        self._states: list[FeedStateWrite] = []   # written in batches
        self._states_lock = threading.Lock()
        self._unsaved_states = 0                # this cycle's feeds whose state was refused
        self.parser = parser                # parse processes kept across cycles (monitor run)
        self.parse_job = parse_job          # what a parse process runs (tests replace it)
        self.extract_job = extract          # and what it runs beside the parse

    def run_cycle(self, include_all: bool = False) -> CycleReport:
        self._check_clock()
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

    def _check_clock(self) -> None:
        """Refuses to poll while this machine's clock is behind the end of the last digest's
        period by more than ``CLOCK_SLACK`` (booted before time synchronisation, a machine
        without a battery clock): the articles would be stamped first seen in a period a
        digest has already covered, and never mailed, and their real publication times,
        looking ahead of the clock, would be dropped. (Only the digest's end counts: a poll
        stamped by a clock that was ahead, or another machine's fast clock, stops nobody.)"""
        now, ended = self.clock(), self.store.last_digest_end()
        if ended is not None and now < ended - CLOCK_SLACK:
            raise ClockError(
                f"this machine's clock ({now:%Y-%m-%d %H:%M} UTC) is {_span(ended - now)} behind "
                f"the end of the last digest's period ({ended:%Y-%m-%d %H:%M} UTC): not polling "
                "until it catches up, as articles stamped now would never be mailed (is time "
                "synchronisation running? `timedatectl`); if the clock is right now, it was "
                "ahead when that digest was made, and polling resumes at that time")

    def _claim(self, count: int, include_all: bool, seen: list[int]) -> list[FeedState]:
        poll = self.config.poll
        return self.store.claim_due_feeds(self.clock(), self.owner, poll.lease_seconds, count,
                                          include_all=include_all, exclude=seen)

    async def _poll_all(self, include_all: bool) -> list[FeedReport]:
        """Claim due feeds in batches and keep up to a batch of them in flight; when half
        are done, claim more. Several pollers on one database share the work this way."""
        settings = FetchSettings.from_config(self.config.poll)
        loop = asyncio.get_running_loop()
        flight = _InFlight(batch=max(64, settings.concurrency * 16))
        parser = self.parser or ParsePool(parse_processes(self.config.poll.parse_processes),
                                          self.parse_job)
        self._batches = _Batches(self, loop)
        lease = self.config.poll.lease_seconds
        renewed = time.monotonic()
        try:
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-store") as writer:
                async with Fetcher(settings) as fetcher:
                    while True:
                        if flight.wants_more() and not self.stop.is_set():
                            asked = flight.room()
                            try:
                                feeds = await loop.run_in_executor(
                                    writer, self._claim, asked, include_all, flight.seen)
                            except StorageError as exc:
                                if flight.empty():      # nothing claimed: the cycle failed
                                    raise
                                # the feeds in flight finish and are stored; the rest wait
                                # for the next cycle
                                log.warning("could not claim more feeds, the rest are polled "
                                            "next cycle: %s", exc)
                                flight.exhausted = True
                                feeds, asked = [], 0
                            if feeds or asked:
                                flight.start(feeds, asked, lambda feed: self._poll_one(
                                    fetcher, parser, writer, feed))
                        if flight.empty():
                            break
                        await flight.wait(timeout=0.2)      # a feed done, or time to check stop
                        if self.stop.is_set():
                            await flight.abandon()
                        elif time.monotonic() - renewed >= lease / 3:
                            # feeds still queued (per_host, concurrency) or in flight keep
                            # their lease, so no other poller fetches them meanwhile
                            renewed = time.monotonic()
                            loop.run_in_executor(None, self._renew, lease)
                    await loop.run_in_executor(writer, self._flush_states)
        finally:
            parser.end_cycle()
            self._release()             # a cycle that failed too: its leases are not left
        return flight.reports

    def _renew(self, lease: float) -> None:
        """Extend the leases this poller holds (a thread of its own: the writer may be busy
        storing); a store that cannot answer now is asked again a third of a lease later."""
        try:
            self.store.renew_claims(self.owner, self.clock() + timedelta(seconds=lease))
        except StorageError as exc:
            log.warning("could not renew feed leases (tried again shortly): %s", exc)

    def _release(self) -> None:
        """Give back leases of feeds not stored (skipped on stop, or the store was locked)."""
        try:
            self.store.release_claims(self.owner)
        except StorageError as exc:
            log.warning("could not release feed claims (they expire by themselves): %s", exc)

    async def _poll_one(self, fetcher: Fetcher, parser: ParsePool, writer,
                        feed: FeedState) -> FeedReport:
        if self.stop.is_set():
            return FeedReport(feed.name, feed.url, "skipped")
        parsed: ParsedFeed | FeedError | None = None
        known: dict[str, str] | None = None         # the feed's stored keys, when read here
        result: FetchResult | FeedError
        try:
            fetched = await fetcher.fetch(feed.url, feed.etag, feed.last_modified)
            result = fetched
            if fetched.moved:
                log.warning("feed %s (%s) has moved permanently to %s: put the new address "
                            "in the config", feed.name, masked_url(feed.url),
                            masked_url(fetched.moved))
            if fetched.content is not None and parser.processes:
                try:
                    parsed = await parser.parse(fetched, feed.key_base)  # None: the writer parses
                except FeedError as exc:
                    parsed = exc
                if isinstance(parsed, ParsedFeed) and parsed.articles:
                    parsed, known = await self._prepare(parser, parsed, feed)
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
        return await self._batches.submit(writer, (feed, result, parsed, known))

    async def _prepare(self, parser: ParsePool, parsed: ParsedFeed, feed: FeedState
                       ) -> tuple[ParsedFeed, dict[str, str] | None]:
        """Before the writer gets a parsed feed: which of its articles are not stored yet
        (or changed)? None: nothing to load or find. Some: the analysis starts loading its
        model, and a parse process finds their language, countries and minerals (the
        writer thread then only classifies and stores). The stored keys go to the writer
        with the feed (None when they could not be read: the writer reads them); the feed is
        claimed by this poller, so nobody else stores its articles meanwhile."""
        if not self._extracts and getattr(self.analyze, "warm_up", None) is None:
            return parsed, None                         # nothing to prepare
        loop = asyncio.get_running_loop()
        known = await loop.run_in_executor(None, self._known, feed, parsed.articles)
        seen = known or {}
        fresh = [i for i, a in enumerate(parsed.articles) if seen.get(a.key) != a.content_hash]
        if not fresh:
            return parsed, known
        self._warm_up()
        if not self._extracts:
            return parsed, known
        articles = list(parsed.articles)
        docs = [(articles[i].title, articles[i].text, articles[i].language or feed.lang)
                for i in fresh]
        found = await parser.run(self.extract_job, docs)
        if found is None or len(found) != len(docs):
            return parsed, known                        # the writer finds them
        for i, extraction in zip(fresh, found):
            articles[i] = replace(articles[i], extracted=extraction)
        return replace(parsed, articles=articles), known       # its notes and key base too

    def _known(self, feed: FeedState, articles: Sequence[ParsedArticle]) -> dict[str, str] | None:
        """Stored keys → content hashes among ``articles`` (a thread of the event loop's:
        the writer thread may be busy storing); None when the store cannot say now."""
        try:
            return self._stored_keys(feed, articles)
        except StorageError as exc:
            log.debug("feed %s: known articles not read (%s); the writer will", feed.name, exc)
            return None

    def _stored_keys(self, feed: FeedState, articles: Sequence[ParsedArticle]) -> dict[str, str]:
        """Stored keys → content hashes among ``articles`` (none for a feed without any)."""
        if not feed.has_articles:
            return {}
        return self.store.known_articles(feed.id, articles)

    def _warm_up(self) -> None:
        """Something new arrived: have the analysis load what it needs while the other
        feeds are fetched (a cycle of 304s, or of feeds with nothing new, never loads it)."""
        warm_up = getattr(self.analyze, "warm_up", None)
        if warm_up is not None:
            warm_up()

    def process(self, feed: FeedState, result: FetchResult,
                parsed: ParsedFeed | FeedError | None = None) -> FeedReport:
        """Parse (unless a parse process did), analyse and store one feed fetched with a
        body (runs in the writer thread; 304s and fetch errors never come here)."""
        return self.process_batch([(feed, result, parsed, None)])[0]

    def process_batch(self, jobs: Sequence[_Job]) -> list[FeedReport]:
        """``process`` for several feeds (writer thread): their new articles analysed in one
        batch (one model call), each feed then stored in its own transaction, in order. A
        feed that fails (the store refuses it, a bug) gets its own report; the others go on."""
        now = self.clock()
        staged: list[_Staged | FeedReport] = []
        for feed, result, parsed, known in jobs:
            if self.stop.is_set():
                staged.append(FeedReport(feed.name, feed.url, "skipped"))
                continue
            staged.append(self._guarded(feed, now, self._stage, feed, result, now, parsed, known))
        todo = [s for s in staged if isinstance(s, _Staged) and s.fresh]
        writes = self._analyse_batch(todo, now)
        return [s if isinstance(s, FeedReport) else
                self._guarded(s.feed, now, self._save, s, writes.get(id(s), []))
                for s in staged]

    def _guarded(self, feed: FeedState, now: datetime, step, *args):
        """``step(*args)``, with a failure turned into that feed's report: the store refused
        (retried next cycle), or a bug (recorded on the feed, which backs off)."""
        try:
            return step(*args)
        except StorageError as exc:
            log.error("feed %s: not stored, will retry next cycle: %s", feed.name, exc)
            return FeedReport(feed.name, feed.url, "error", error=str(exc), not_stored=True)
        except Exception as exc:  # a bug must not stop the other feeds: record it, back off
            log.exception("feed %s: unexpected error", feed.name)
            error = FeedError(f"{type(exc).__name__}: {exc}", kind="internal")
            return self._store_error(feed, error, now)

    def _analyse_batch(self, todo: Sequence[_Staged], now: datetime
                       ) -> dict[int, list[ArticleWrite] | FeedReport]:
        """Writes per staged feed (by id): one analysis call for all when the analysis can
        take several feeds; feed by feed otherwise, or when that call fails (so only the
        feed that makes it fail gets an error)."""
        many = getattr(self.analyze, "analyse_feeds", None)
        if many is not None and len(todo) > 1:
            try:
                results = many([(s.fresh, s.feed) for s in todo])
                return {id(s): w for s, w in zip(todo, results)}
            except Exception:  # noqa: BLE001 - redone feed by feed below, errors said there
                log.debug("batch analysis failed; analysing feed by feed", exc_info=True)
        return {id(s): self._guarded(s.feed, now, self.analyze, s.fresh, s.feed) for s in todo}

    def _success(self, feed: FeedState, result: FetchResult, now: datetime) -> FeedOutcome:
        return FeedOutcome(polled_at=now, status=result.status, etag=result.etag,
                           last_modified=result.last_modified,
                           next_check_at=next_check_after_success(now, self._interval(feed),
                                                                  result.max_age, since=self.tick),
                           not_modified=result.content is None)

    def _outcome_only(self, feed: FeedState, result: FetchResult | FeedError,
                      now: datetime) -> FeedReport:
        """A 304 or a fetch error: only the feed's state changes, written in a batch."""
        if isinstance(result, FeedError):
            return self._store_error(feed, result, now)
        with self._states_lock:
            self._states.append((feed.id, feed_outcome(feed, self._success(feed, result, now),
                                                       new=False)))
        return FeedReport(feed.name, feed.url, "not-modified", http_status=304)

    def _stage(self, feed: FeedState, result: FetchResult, now: datetime,
               parsed: ParsedFeed | FeedError | None, known: dict[str, str] | None = None
               ) -> _Staged | FeedReport:
        """A feed's articles parsed (here, unless a parse process did) and sorted into the
        ones to analyse and store (new or changed) and the ones stored already (``known``:
        read before, else read here)."""
        outcome = self._success(feed, result, now)
        if parsed is None:
            try:
                parsed = read_feed(result.content or b"", result.headers, result.url,
                                   feed.key_base)
            except FeedError as exc:
                exc.status = result.status
                parsed = exc
        if isinstance(parsed, FeedError):
            return self._store_error(feed, parsed, now)
        for note in parsed.notes:
            log.warning("feed %s (%s): %s", feed.name, masked_url(feed.url), note)
        if parsed.partial:      # a body cut short must not be answered 304 next time
            outcome = replace(outcome, etag=None, last_modified=None)
        # the base its keys were read against: the feed's from its first document on
        # (``feed_outcome`` keeps a key base once set)
        outcome = replace(outcome, key_base=parsed.key_base)
        if known is None:
            known = self._stored_keys(feed, parsed.articles)
        fresh = fresh_articles(parsed.articles, known, now)
        return _Staged(feed, result, outcome, fresh,
                       new=any(a.key not in known for a in fresh))

    def _save(self, staged: _Staged, writes: list[ArticleWrite] | FeedReport) -> FeedReport:
        """Store a staged feed's analysed articles and its state in one transaction."""
        if isinstance(writes, FeedReport):          # its analysis failed: said there
            return writes
        feed, result = staged.feed, staged.result
        state = feed_outcome(feed, staged.outcome, new=staged.new)
        new, updated = self.store.save_poll(feed.id, writes, state, self.owner)
        flagged = sum(1 for w in writes if w.verdict is not None and w.verdict.flagged)
        return FeedReport(feed.name, feed.url, "ok", http_status=result.status, new=new,
                          updated=updated, flagged=flagged)

    def _store_error(self, feed: FeedState, error: FeedError, now: datetime) -> FeedReport:
        next_check = next_check_after_error(now, self._interval(feed), feed.error_count + 1,
                                            error.retry_after, self.config.poll.max_backoff_hours,
                                            reached=error.reached, since=self.tick)
        outcome = FeedOutcome(polled_at=now, next_check_at=next_check, status=error.status,
                              error=f"{error.kind}: {error}")
        with self._states_lock:
            self._states.append((feed.id, feed_outcome(feed, outcome, new=False)))
        log.warning("feed %s (%s): %s: %s", feed.name, masked_url(feed.url), error.kind, error)
        return FeedReport(feed.name, feed.url, "error", http_status=error.status,
                          error=f"{error.kind}: {error}")

    def _take_states(self, at_least: int = 0) -> list[FeedStateWrite]:
        """The batched states, emptied; none while fewer than ``at_least`` are waiting."""
        with self._states_lock:
            if len(self._states) < at_least:
                return []
            states, self._states = self._states, []
        return states

    def _flush_states(self, states: list[FeedStateWrite] | None = None) -> None:
        """Write batched feed states (writer thread); all pending ones when not given. If
        the store refuses, those feeds keep their previous state and are polled again next
        cycle: nothing is lost."""
        if states is None:
            states = self._take_states()
        try:
            self.store.save_states(states, self.owner)
        except StorageError as exc:
            log.error("state of %d feeds not stored, they will be polled again: %s",
                      len(states), exc)
            self._unsaved_states += len(states)

    def _interval(self, feed: FeedState) -> int:
        return feed.interval_minutes or self.config.poll.interval_minutes


class _InFlight:
    """The feeds of one cycle being polled: their tasks, their reports, and when to claim
    more (half the batch done, unless the last claim found fewer feeds than it asked for)."""

    def __init__(self, batch: int) -> None:
        self.batch = batch
        self.reports: list[FeedReport] = []
        self.seen: list[int] = []                 # feed ids claimed so far this cycle
        self.pending: set[asyncio.Task] = set()
        self.exhausted = False                    # nothing more is due
        self._done = asyncio.Event()

    def wants_more(self) -> bool:
        return not self.exhausted and len(self.pending) <= self.batch // 2

    def room(self) -> int:
        return self.batch - len(self.pending)

    def empty(self) -> bool:
        return not self.pending

    def start(self, feeds: list[FeedState], asked: int, poll_one) -> None:
        """A task per claimed feed; the claim found all that is due when it fell short."""
        self.exhausted = len(feeds) < asked
        self.seen.extend(f.id for f in feeds)
        for feed in feeds:
            task = asyncio.create_task(poll_one(feed))
            task.add_done_callback(self._collect)
            self.pending.add(task)

    async def wait(self, timeout: float) -> None:
        """Until a feed finishes in a way that lets more be claimed (or all are done), or
        ``timeout`` seconds."""
        if self._done.is_set():               # feeds finished during the claim
            self._done.clear()
            return
        try:
            async with asyncio.timeout(timeout):
                await self._done.wait()
        except TimeoutError:
            pass
        self._done.clear()

    async def abandon(self) -> None:
        """On stop, fetches in flight are cancelled; a feed being stored finishes first
        (the writer thread cannot be interrupted; its report is still collected)."""
        tasks = set(self.pending)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _collect(self, task: asyncio.Task) -> None:
        self.pending.discard(task)
        if self.empty() or self.wants_more():
            self._done.set()                      # time to claim more, or to finish
        if task.cancelled():
            return
        if task.exception() is not None:          # _poll_one records every expected failure
            log.error("poll task failed", exc_info=task.exception())
        else:
            self.reports.append(task.result())


@dataclass
class _Staged:
    """A feed between parsing and storing (writer thread)."""

    feed: FeedState
    result: FetchResult
    outcome: FeedOutcome
    fresh: list[ParsedArticle]
    new: bool


class _Batches:
    """Feeds waiting for the writer thread, handed to it in batches: when the writer is
    busy, the feeds that finish parsing meanwhile are analysed together (one model call)
    and then stored one transaction each. One batch per writer job, so the writer's other
    jobs (claiming feeds, writing states) still take their turn between batches."""

    MAX_ARTICLES = 120          # a batch closes once it holds this many parsed articles (600: the
                                # same speed, ~6 MB more at the peak of a 6,000-item poll)

    def __init__(self, poller: Poller, loop: asyncio.AbstractEventLoop) -> None:
        self.poller = poller
        self.loop = loop
        self._waiting: list[tuple[_Job, asyncio.Future]] = []
        self._lock = threading.Lock()
        self._scheduled = False

    async def submit(self, writer, job: _Job) -> FeedReport:
        future = self.loop.create_future()
        with self._lock:
            self._waiting.append((job, future))
            start = not self._scheduled
            self._scheduled = True
        if start:
            writer.submit(self._run, writer)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            # stopping: the writer answers every feed handed to it, stored or skipped for
            # the stop, so the cycle's report says what was stored (the writer is waited
            # for anyway before the cycle ends)
            return await future

    def _run(self, writer) -> None:
        """Writer thread: process one batch of the waiting feeds, then come back for more
        (a job of its own, behind whatever else the writer has queued)."""
        batch: list[tuple[_Job, asyncio.Future]] = []
        size = 0
        with self._lock:
            while self._waiting and (not batch or size < self.MAX_ARTICLES):
                job = self._waiting.pop(0)
                batch.append(job)
                parsed = job[0][2]
                size += len(parsed.articles) if isinstance(parsed, ParsedFeed) else 30
        try:
            reports = list(self.poller.process_batch([job for job, _ in batch]))
            if len(reports) != len(batch):
                raise RuntimeError(f"{len(reports)} reports for {len(batch)} feeds")
        except BaseException as exc:      # a bug here must still answer every waiting feed
            for _, future in batch:
                self.loop.call_soon_threadsafe(_fail, future, exc)
        else:
            for (_, future), report in zip(batch, reports):
                self.loop.call_soon_threadsafe(_settle, future, report)
        with self._lock:
            if not self._waiting:
                self._scheduled = False
                return
        writer.submit(self._run, writer)


def _settle(future: asyncio.Future, report: FeedReport) -> None:
    if not future.done():
        future.set_result(report)


def _fail(future: asyncio.Future, exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)
