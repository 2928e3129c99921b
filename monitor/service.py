"""Wiring and the long-running service (`monitor run`).

APScheduler 3 drives two jobs on one worker thread, so a poll and a digest never run at
the same time:
- ``dispatch`` every minute: reload the config if the file changed (and the model if its
  files changed: `monitor train` wrote it), poll the feeds whose
  ``next_check_at`` has passed (scheduling state lives in the store, so downtime needs no
  catch-up), and retry digest deliveries whose backoff has passed;
- ``digest`` daily at ``digest.send_at`` in ``digest.timezone`` (a CronTrigger, so DST is
  handled by the time zone rules).
Both jobs coalesce, never overlap (max_instances=1) and have a misfire grace of 23 hours.
At start, a digest that was due today while the service was down is sent once; the
ledger decides, so it is never sent twice.

SIGTERM/SIGINT/SIGHUP: the current feed's transaction finishes, the remaining feeds of the cycle
are skipped, the scheduler stops, the store closes, exit code 0. A second signal exits at
once (code 130).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from monitor.clock import clock_text, utcnow
from monitor.config import Config, config_path, config_warnings, load_config
from monitor.exceptions import MonitorError, StorageError
from monitor.numbers import is_whole
from monitor.parsepool import ParsePool, parse_processes
from monitor.pipeline import Poller, owners_here
from monitor.redact import masked_url
from monitor.storage import Store, open_store

log = logging.getLogger("monitor")
GRACE = 23 * 3600
# Seconds between dispatcher runs: 60. $MONITOR_TICK_SECONDS shortens it (a hook for tests
# and demos; the scheduler itself is real).
TICK_ENV = "MONITOR_TICK_SECONDS"
# The machine's clock set back by more than this (time synchronisation correcting a fast
# clock) makes the dispatcher tick at once: the scheduler, whose next tick was due by the
# old clock, would otherwise sleep until the new clock reached it (an hour for an hour).
CLOCK_STEP_SECONDS = 5.0


def open_configured_store(config: Config, now: datetime | None = None) -> Store:
    """Open the store named by the config and make its feed table match the config."""
    store = open_store(config.store_url(), config.store.busy_timeout_seconds)
    try:
        store.sync_feeds(config.feeds, now or utcnow(), config.poll.interval_minutes,
                         config.poll.silent_after_days)
        release_dead_claims(store)
    except MonitorError:
        store.close()
        raise
    return store


def release_dead_claims(store: Store) -> None:
    """Feeds leased by a poller on this machine whose process is gone (killed, crashed) are
    released at once instead of waiting for the lease to expire; so are those under this
    process's own pid that none of its pollers holds (an earlier process with the same pid:
    a container restarted after a kill numbers its processes from 1 again, under the same
    host name). Pollers on other machines are left to their lease."""
    host = socket.gethostname()
    for owner in store.claim_owners():
        owner_host, _, rest = owner.partition(":")
        pid = rest.partition(":")[0]
        if owner_host != host or not is_whole(pid):
            continue
        if not _alive(int(pid)) or (int(pid) == os.getpid() and owner not in owners_here()):
            log.info("releasing feeds claimed by %s (process is gone)", owner)
            store.release_claims(owner)


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a running process: not gone, and not a zombie (killed, its exit
    not yet collected by its parent: a supervisor restarting the service at once, or a
    container whose first process does not reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:       # "pid (name) state …"
            return stat.read().rpartition(b")")[2].split()[0] != b"Z"
    except (OSError, IndexError):                          # no /proc here: kill(0) decides
        return True


def _same_store(a: str, b: str) -> bool:
    """Whether two store URLs name one database (an SQLite file however its path is
    written: ./var/m.db, var/m.db)."""
    from monitor.storage.reviews import sqlite_file

    if a == b:
        return True
    x, y = sqlite_file(a), sqlite_file(b)
    return x is not None and y is not None and x.resolve() == y.resolve()


def _in_retry_window(record, now: datetime) -> bool:
    """Whether the ticks still retry this digest's copies: for ``RETRY_WINDOW`` after its
    period ended, or after it was made when that was later (a catch-up digest)."""
    from monitor.delivery import RETRY_WINDOW

    if record is None:
        return False
    since = max(record.period_end, record.created_at or record.period_end)
    return now - since <= RETRY_WINDOW


def build_analyzer(config: Config):
    from monitor.analyze import Analyzer

    return Analyzer.from_config(config, lazy=True)


def build_poller(config: Config, store: Store, analyze=None, **kwargs) -> Poller:
    return Poller(store, config, analyze=analyze or build_analyzer(config), **kwargs)


class Service:
    """`monitor run`: the scheduler, its two jobs, config reload and signal handling."""

    def __init__(self, config_file: str | None, clock=utcnow) -> None:
        self.path = config_path(config_file)
        self.clock = clock
        self.config = load_config(self.path)
        self._stamp = self._file_stamp()
        self.stop = threading.Event()
        self.store = open_configured_store(self.config, clock())
        self._store_file = self._store_file_stamp()
        self.failed = False                 # stopped for a reason the exit code says
        self.analyzer = build_analyzer(self.config)
        self._model_stamp = self._model_files_stamp()
        self._model_refused = None          # the changed files that could not be loaded
        self.parser = self._parse_pool()
        self.scheduler: Any = None          # an APScheduler BackgroundScheduler once started
        # the dispatcher's ticks, on this clock: the first and the seconds between two
        self.ticks: tuple[datetime, float] | None = None

    def _parse_pool(self) -> ParsePool:
        """Parse processes kept from cycle to cycle (``ParsePool``: ended after a cycle in
        which one grew large, and when the service stops)."""
        return ParsePool(parse_processes(self.config.poll.parse_processes), keep=True)

    def _file_stamp(self):
        from monitor.resources import file_stamp

        return file_stamp(self.path)

    def _model_files_stamp(self):
        """The configured model file, its card and its arrays as they are now: `monitor
        train` (or a copy) replacing them is seen at the next tick, as a config edit is."""
        from monitor.classify import model_files_stamp

        return model_files_stamp(self.config.classifier.model_path())

    def _store_file_stamp(self) -> tuple[int, int] | None:
        """(device, inode) of the SQLite store's file as opened; None for another database
        or a file that is not there."""
        from monitor.storage.reviews import sqlite_file_identity

        return sqlite_file_identity(self.store.url)

    def _store_file_gone(self) -> bool:
        """The SQLite file the service opened was deleted or replaced while it ran: its open
        connections would write into the deleted file (lost) and new ones into an empty one
        without tables. The service stops (exit code 1) and says so."""
        if self._store_file is None or self._store_file_stamp() == self._store_file:
            return False
        from monitor.storage.reviews import sqlite_file

        log.error("the store file %s was deleted or replaced while the service ran: stopping "
                  "(nothing more is written to the old one); start it again to use the file "
                  "there now", sqlite_file(self.store.url))
        self.failed = True
        self.stop.set()
        return True

    def _store_upgraded(self) -> bool:
        """A newer monitor (another machine's service, an upgrade run beside this one)
        migrated the store while this one ran: its writes would miss what the new schema
        keeps (an edit that flags an article, a verdict's text), so it stops (exit code 1)
        and says so. A store that cannot be read now is left to the jobs to report."""
        from monitor.storage.migrations import LATEST

        try:
            version = self.store.schema_version()
        except MonitorError:
            return False
        if version is None or version <= LATEST:
            return False
        log.error("the store was migrated to schema version %s by a newer monitor while this one "
                  "(schema version %s) ran: stopping; run the newer monitor instead", version, LATEST)
        self.failed = True
        self.stop.set()
        return True

    # -- jobs ----------------------------------------------------------------------------
    def dispatch(self) -> None:
        if self.stop.is_set() or self._store_file_gone() or self._store_upgraded():
            return
        self.reload_if_changed()
        self._keep_feeds()
        poller = Poller(self.store, self.config, analyze=self.analyzer, clock=self.clock,
                        stop=self.stop, parser=self.parser, tick=self._tick_at(self.clock()))
        try:
            report = poller.run_cycle()
            if report.feeds:
                log.info("cycle: %s", report.summary(), extra={"fields": {
                    "event": "cycle", "feeds": len(report.feeds) - report.count("skipped"),
                    "not_modified": report.count("not-modified"), "new": report.total("new"),
                    "flagged": report.total("flagged"), "errors": report.count("error"),
                    "duration": round(report.duration, 2)}})
            self._retry_deliveries()
        except MonitorError as exc:
            log.error("cycle failed: %s", exc)
        self._due_digest()

    def _tick_at(self, now: datetime) -> datetime | None:
        """The time of the dispatcher's tick that runs at ``now`` (the last one due by then,
        a tick running late included), from which the feeds it polls count their intervals;
        None before the scheduler started, or on a clock set back since."""
        if self.ticks is None or now < self.ticks[0]:
            return None
        first, seconds = self.ticks
        return first + timedelta(seconds=seconds * ((now - first).total_seconds() // seconds))

    def _due_digest(self) -> None:
        """Today's digest when its time has passed and none was made: its job failed (the
        store was locked at that moment) or send_at was moved to a time already past. As a
        restart would send it; not on a store that began after it fell due (a first start
        sends its first digest at the next send_at)."""
        from monitor.delivery import send_at_on

        now = self.clock()
        local = now.astimezone(self.config.digest.zone())
        due = send_at_on(local.date(), self.config)
        if self.stop.is_set() or now < due:     # instants, not wall-clock times (_last_due_day)
            return
        try:
            began = self.store.began_at()
            owed = began is not None and began <= due and self._unmade(local.date(), due)
        except MonitorError as exc:
            log.error("digest check failed: %s", exc)
            return
        if not owed:
            return
        log.info("digest for %s was due at %s and is not made yet: making it now", local.date(),
                 f"{clock_text(due.time())} {due.tzname()}")
        self.digest(local.date().isoformat())

    def digest(self, day: str | None = None) -> None:
        from monitor.delivery import DigestJob

        if self.stop.is_set() or self._store_file_gone():
            return
        self.reload_if_changed()
        try:
            outcome = DigestJob(self.store, self.config, config_file=str(self.path),
                                stopping=self.stop.is_set).run(
                self.clock(), day=day, wait_for_retries=False)
            log.info("%s", outcome.summary(), extra={"fields": {
                "event": "digest", "date": outcome.digest_date, "items": outcome.items,
                "sent": len(outcome.sent), "retry": len(outcome.retry),
                "failed": len(outcome.failed), "unknown": len(outcome.unknown),
                "already": len(outcome.already)}})
        except MonitorError as exc:
            log.error("digest failed: %s", exc)

    def _retry_deliveries(self) -> None:
        """Deliveries whose next attempt is due, of today's and yesterday's digests, for
        ``RETRY_WINDOW`` after each digest's period ended or, when it was made later (a
        catch-up digest of yesterday made at a start), after it was made (a digest sent at
        23:50 is still retried after midnight); and today's digest for the recipients added
        to the config since it was made, as a `monitor digest` run sends it (they got it
        only when another copy of it happened to be retried)."""
        from monitor.delivery import OPEN, DigestJob, local_date, recipients_to_add

        now = self.clock()
        # a copy left "sending" past its lease: its sender died. Marked unknown and logged,
        # so that `--resend` can be found, however old; never re-sent.
        DigestJob(self.store, self.config, config_file=str(self.path)).mark_all_interrupted(now)
        today = local_date(now, self.config)
        for day in (local_date(now - timedelta(days=1), self.config), today):
            record = self.store.get_digest(day)
            if record is None:
                continue
            if day == today and recipients_to_add(record, self.config):
                self.digest(day)
            elif _in_retry_window(record, now) and any(
                    d.status in OPEN and (d.next_attempt_at or now) <= now
                    for d in record.deliveries):
                self.digest(record.digest_date)

    def missed_digest(self) -> None:
        """At start: the copies earlier runs left to send, then the last digest that fell due
        while the service was down — today's once its time has passed, else yesterday's —
        not on a store no poll has completed in (a first start is not a missed day)."""
        self._left_copies()
        now = self.clock()
        health = self.store.feed_health(now, self.config.poll.broken_after_errors)
        if not any(h.last_polled_at for h in health):
            log.info("no poll has completed yet: no catch-up digest (the first goes out at %s)",
                     clock_text(self.config.digest.send_at))
            return
        from monitor.delivery import send_at_on

        send_at = self.config.digest.send_at
        day = self._last_due_day(now)
        due = send_at_on(day, self.config)
        began = self.store.began_at()
        if began is None or began > due:        # today's too, as the running service judges
            log.info("no catch-up digest for %s: the store began after it fell due (the "
                     "next goes out at %s)", day, clock_text(send_at))
            return
        if self._unmade(day, due):
            log.info("digest for %s was due at %s while the service was down: sending now",
                     day, f"{clock_text(due.time())} {due.tzname()}")
            self.digest(day.isoformat())

    def _last_due_day(self, now: datetime) -> date:
        """The local date of the last send_at at or before ``now``: today's once its time
        has passed, else yesterday's. Compared as instants, as the cron trigger fires: a
        send_at in the hour skipped in spring (02:30 in Berlin) is due when the trigger fires
        it, at 03:30 summer time, not at the 03:00 the clocks jump to, and one in the hour
        repeated in autumn at its first pass, not its second."""
        from monitor.delivery import send_at_on

        local = now.astimezone(self.config.digest.zone())
        return local.date() if now >= send_at_on(local.date(), self.config) else local.date() - timedelta(days=1)

    def scheduled_digest(self) -> None:
        """The digest job at send_at: the digest of the day whose send_at fired. A job that
        runs late past local midnight (the one worker busy with a slow poll at 23:59, a
        machine resumed from sleep) had taken the next day's date, and that day then had
        no digest of its own ("already sent")."""
        if self.stop.is_set() or self._store_upgraded():
            return
        self.digest(self._last_due_day(self.clock()).isoformat())

    def _left_copies(self) -> None:
        """Copies of any earlier digest still to send — left ``pending`` by a stop (they go
        out at the next start), or in ``retry`` when the service was down past the day it
        retries them in — sent now, each once; today's and yesterday's are the ticks' own."""
        from monitor.delivery import local_date

        now = self.clock()
        recent = {local_date(now - timedelta(days=1), self.config), local_date(now, self.config)}
        try:
            # today's and yesterday's are left to the ticks only while they retry them: one
            # whose window passed while the service was down would be retried by nobody
            days = [d for d in self.store.digests_with_open_copies()
                    if d not in recent or not _in_retry_window(self.store.get_digest(d), now)]
        except MonitorError as exc:
            log.error("could not look for digest copies left to send: %s", exc)
            return
        for day in days:
            log.info("digest %s has copies left to send by an earlier run: sending them now", day)
            self.digest(day)

    def _unmade(self, day, due: datetime) -> bool:
        """No digest of ``day`` exists, and none made since covers its time ``due``."""
        last = self.store.last_digest_end()
        return self.store.get_digest(day.isoformat()) is None and (last is None or last < due)

    def _keep_feeds(self) -> None:
        """The store's feed list made this config's again at every tick (it writes nothing
        when they match): a `monitor poll` with another config on the same store (another
        folder's, the example one) had left the service polling that config's feeds and
        not its own until its config file changed."""
        try:
            self.store.sync_feeds(self.config.feeds, self.clock(), self.config.poll.interval_minutes,
                                  self.config.poll.silent_after_days)
        except StorageError as exc:
            log.warning("feeds not checked against the config this tick: %s", exc)

    # -- config reload -------------------------------------------------------------------
    def reload_if_changed(self) -> None:
        """A changed config file applied (or, invalid, logged and ignored); a changed model
        loaded. An edit the store refuses to take now (locked by an analyst's sqlite3, say)
        is applied at a later tick: the file's stamp is kept only once it is in force."""
        stamp = self._file_stamp()
        if stamp != self._stamp:
            try:
                config = load_config(self.path)
            except MonitorError as exc:
                self._stamp = stamp
                log.error("config change ignored, previous config stays in force: %s", exc)
            else:
                try:
                    self.apply(config)
                except StorageError as exc:
                    log.error("config change not applied yet, tried again at the next tick "
                              "(the previous config stays in force): %s", exc)
                except MonitorError as exc:
                    self._stamp = stamp
                    log.error("config change ignored, previous config stays in force: %s", exc)
                else:
                    self._stamp = stamp
        model = self._model_files_stamp()
        if model != self._model_stamp:      # retrained or put in place since it was loaded
            self._take_model(model)

    def _take_model(self, stamp) -> None:
        """The model files changed: the new model classifies the next articles. When they
        cannot be loaded (caught between the copies of its three files, or tampered with)
        and a model is in use, that one stays, the error is logged once, and the files are
        tried again at every tick: a cycle polled meanwhile had been classified by keywords
        alone ("classifier unavailable"), stored so until a `monitor reclassify`."""
        from monitor.analyze import Analyzer
        from monitor.classify import SkopsClassifier

        path = self.config.classifier.model_path()
        try:
            classifier = SkopsClassifier.load(path)
        except MonitorError as exc:
            if self.analyzer.model_in_use:
                if stamp != self._model_refused:
                    self._model_refused = stamp
                    log.error("model file %s changed but cannot be loaded, the model loaded "
                              "before stays in use (its files are tried again at every tick): "
                              "%s", path, exc)
                return
            self._model_stamp, self._model_refused = stamp, None
            self.analyzer = build_analyzer(self.config)         # says why, keywords alone
            return
        self._model_stamp, self._model_refused = stamp, None
        self.analyzer = Analyzer(classifier, self.analyzer.rules,
                                 self.config.classifier.fixed_threshold())
        log.info("model file %s changed: the next articles are classified with it", path)

    def apply(self, config: Config) -> None:
        old = self.config
        if not _same_store(self.store.url, config.store_url()):   # the store it has open
            log.warning("store.url changed in the config: it applies after a restart; "
                        "the service keeps using the store it opened")
        # the store first: if it refuses the feeds now, nothing of the edit is in force
        self.store.sync_feeds(config.feeds, self.clock(), config.poll.interval_minutes,
                              config.poll.silent_after_days)
        self.config = config
        self.analyzer = build_analyzer(config)
        self._model_stamp, self._model_refused = self._model_files_stamp(), None
        if old.poll.parse_processes != config.poll.parse_processes:
            self.parser.close()             # between cycles: the scheduler runs one job at a time
            self.parser = self._parse_pool()
        if (old.digest.send_at, old.digest.timezone) != (config.digest.send_at, config.digest.timezone):
            self._schedule_digest()
        log.info("config reloaded from %s: %d feeds, %d recipients, digest at %s %s", self.path,
                 len(config.feeds), len(config.digest.recipients),
                 clock_text(config.digest.send_at), config.digest.timezone)

    # -- running -------------------------------------------------------------------------
    def _schedule_digest(self) -> None:
        from apscheduler.triggers.cron import CronTrigger

        send_at = self.config.digest.send_at
        trigger = CronTrigger(hour=send_at.hour, minute=send_at.minute, second=send_at.second,
                              timezone=self.config.digest.zone())
        if self.scheduler is None:
            return
        self.scheduler.add_job(self.scheduled_digest, trigger, id="digest", replace_existing=True,
                               coalesce=True, max_instances=1, misfire_grace_time=GRACE)

    def start(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        scheduler = self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(max_workers=1)}, timezone="UTC")
        scheduler.add_job(self.missed_digest, id="missed-digest", misfire_grace_time=GRACE)
        tick = float(os.environ.get(TICK_ENV, "60"))
        self.ticks = (self.clock(), tick)         # read first: no tick runs before it
        first = datetime.now().astimezone()
        scheduler.add_job(self.dispatch, IntervalTrigger(seconds=tick, start_date=first), id="dispatch",
                          next_run_time=first, coalesce=True, max_instances=1,
                          misfire_grace_time=GRACE)
        self._schedule_digest()
        scheduler.start()
        log.info("monitor running on %s: %d feeds, digest at %s %s, store %s", self.path,
                 len(self.config.feeds), clock_text(self.config.digest.send_at),
                 self.config.digest.timezone, masked_url(self.config.store_url()))
        from monitor.resources import is_bundled

        if is_bundled(self.path):       # no --config, $MONITOR_CONFIG or config/monitor.toml here
            log.warning("no config file given or found in %s: running on the example config "
                        "shipped inside the package (%s), its feeds and recipients examples; copy "
                        "it, edit it and pass --config PATH (or set $MONITOR_CONFIG)",
                        Path.cwd(), self.path)
        for warning in config_warnings(self.config):
            log.warning("%s", warning)

    def shutdown(self) -> None:
        self.stop.set()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=True)
        self.parser.close()
        self.store.close()
        log.info("monitor stopped")

    def _watch_clock(self, seen: tuple[float, float]) -> tuple[float, float]:
        """(wall clock, monotonic clock) now; when the wall clock went back since ``seen``
        by more than CLOCK_STEP_SECONDS, the dispatcher is made due now. APScheduler sleeps
        until its next job is due by the clock it read, so a clock set back an hour stopped
        polls, retries and the digest check for an hour (a day for a day: a battery clock
        ahead, corrected after the start). The digest job is left as it is: its times up
        to the old clock's were fired already, and the ledger stops a second copy."""
        wall, mono = self.clock().timestamp(), time.monotonic()
        back = (mono - seen[1]) - (wall - seen[0])
        if back > CLOCK_STEP_SECONDS and self.scheduler is not None and not self.stop.is_set():
            log.warning("this machine's clock went back %s (time synchronisation?): the "
                        "dispatcher ticks now, not when the clock catches up with its old time",
                        timedelta(seconds=round(back)))
            from apscheduler.jobstores.base import JobLookupError

            try:
                self.scheduler.modify_job("dispatch", next_run_time=self.clock())
            except JobLookupError:      # the scheduler stopping at this moment
                pass
        return wall, mono

    def run_forever(self) -> int:
        signals = [0]

        def on_signal(signum, _frame):
            signals[0] += 1
            if signals[0] > 1:
                os._exit(130)
            log.info("received %s: finishing the current feed, then stopping",
                     signal.Signals(signum).name)
            self.stop.set()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
        # the terminal it runs in closed: stop as cleanly (it died at once, its feed leases
        # left to expire and semaphores leaked); the config needs no signal to be read again
        signal.signal(signal.SIGHUP, on_signal)
        self.start()
        seen = (self.clock().timestamp(), time.monotonic())
        while not self.stop.wait(1.0):
            seen = self._watch_clock(seen)
        self.shutdown()
        return 1 if self.failed else 0

