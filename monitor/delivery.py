"""The digest job: select, cluster, record in the ledger, render, deliver — exactly once.

Order of events for one digest date:
1. If the ledger has no digest for the date, the flagged articles of the period (since the
   previous digest's end; the first digest covers the last 24 h) are clustered and claimed
   by a new digest row together with one pending delivery per recipient, in one
   transaction. An article is in exactly one digest.
2. Each pending delivery is marked ``sending`` with its Message-ID, handed to the mailer,
   then marked ``sent``. A temporary failure marks it ``retry`` with a next attempt time
   (exponential backoff); a permanent one ``failed``; a connection lost after the whole
   message went out (the server may have accepted it) ``unknown``, never re-sent
   automatically. Other recipients are unaffected.
3. A temporary failure stays ``retry``: the service tries again when its next attempt is
   due (backoff doubling up to ``MAX_RETRY_GAP``) for ``RETRY_WINDOW`` after the digest's
   period ended, and a plain ``monitor digest`` re-run tries again at once, whenever it
   runs. Only a permanent reply (5xx) makes a delivery ``failed``.
4. Running again for the same date re-sends nothing that was sent. ``resend`` re-opens the
   deliveries that were not sent (failed, unknown); with ``recipients`` it re-opens those
   recipients' deliveries only, sent ones included. A delivery found in ``sending`` (the
   process died between handing the message over and recording it) is marked ``unknown``
   and not re-sent automatically: a possible duplicate is worse than a visible gap, which
   ``monitor digest --resend`` closes. A delivery claimed by another process that is still
   within its lease (``next_attempt_at`` of a ``sending`` row: the time after which its
   sender counts as gone) is another run's: it is reported as claimed and left alone. One
   left past its lease (its sender died) is marked ``unknown`` and said, whatever day its
   digest is of, by the service on its next tick and by every ``monitor digest`` run (a
   digest sent only from cron has no service to do it).
5. Two runs at once (two services, a service and a ``monitor digest``) make one digest and
   send each copy once; the one that did not send says who is sending or already sent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone, tzinfo
from functools import partial

from monitor.cluster import cluster, merge_languages
from monitor.digest import Coverage, build_digest, render, subject
from monitor.exceptions import DeliveryError, StorageError, UsageError
from monitor.mail import Mailer, OutboxMailer, SmtpMailer, build_message
from monitor.types import DigestRecord

log = logging.getLogger("monitor.digest")
OPEN = ("pending", "retry")
# Recording a delivered copy while the store refuses: tries for up to SENT_WRITE_SECONDS
# (at most SENT_WRITE_ATTEMPTS). SQLite waits its busy timeout within each try (4 tries of 30 s
# by default); a PostgreSQL server that restarts or fails over refuses at once, so a try
# refused within a second is followed by a pause (1, 2, 4 … 30 s).
SENT_WRITE_ATTEMPTS = 8
SENT_WRITE_SECONDS = 100.0
SENT_WRITE_PAUSES = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
RETRY_WINDOW = timedelta(hours=24)     # the service retries a digest's deliveries this long
MAX_RETRY_GAP = timedelta(hours=1)     # the longest wait between two attempts
MIN_LEASE = timedelta(minutes=2)       # a sender is counted as gone this long after its claim


@dataclass
class DigestOutcome:
    digest_date: str
    items: int = 0
    sent: list[str] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    elsewhere: list[str] = field(default_factory=list)
    written: dict[str, str] = field(default_factory=dict)    # recipient → file (no [smtp])
    note: str = ""
    # copies of other days' digests this run found left "sending" by a dead run: date →
    # recipients, now "unknown" (this digest's own are in ``unknown``)
    interrupted: dict[str, list[str]] = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"digest {self.digest_date}: {self.items} article{'s' if self.items != 1 else ''}"]
        for label in ("sent", "retry", "failed", "unknown", "already", "elsewhere"):
            names = getattr(self, label)
            if label == "sent" and self.written:
                files = [f"{self.written[n]} for {n}" for n in names if n in self.written]
                names = [n for n in names if n not in self.written]
                if files:
                    parts.append("not mailed (no [smtp] section): written to " + ", ".join(files))
            if names:
                word = {"already": "already sent to", "retry": "will retry",
                        "unknown": "unknown whether delivered (not re-sent; --resend sends "
                                   "again) to",
                        "elsewhere": "claimed by another run, which is sending it or was "
                                     "interrupted (a run after its lease of a few minutes "
                                     "says which; not sent from here) to"}.get(label, label)
                parts.append(f"{word} {', '.join(names)}")
        if self.note:
            parts.append(self.note)
        for day, names in sorted(self.interrupted.items()):
            parts.append(f"digest {day}: a run was interrupted while sending it; unknown whether "
                         f"delivered (not re-sent; monitor digest --date {day} --resend sends "
                         f"again) to {', '.join(names)}")
        return "; ".join(parts)


def make_mailer(config) -> Mailer:
    if config.smtp is None:
        from pathlib import Path

        return OutboxMailer(Path(config.digest.outbox_dir))
    return SmtpMailer.from_config(config.smtp)


def local_date(now: datetime, config) -> str:
    return now.astimezone(config.digest.zone()).date().isoformat()


def recipients_to_add(record: DigestRecord, config) -> list[str]:
    """The configured recipients that today's digest ``record`` has no delivery for and
    that a run for it adds: any, once it has articles or deliveries or ``send_when_empty``
    is on (an address differing only in case is the same mailbox)."""
    if not (record.deliveries or record.article_ids or config.digest.send_when_empty):
        return []
    known = {d.recipient.lower() for d in record.deliveries}
    return [r for r in config.digest.recipients if r.lower() not in known]


def _day_before(end: datetime, config) -> datetime:
    """The same wall-clock time one day before ``end`` in the digest's time zone: a first
    digest's period (23 or 25 hours across a DST change, not 24 shown as 08:00 – 07:00)."""
    zone = config.digest.zone()
    local = end.astimezone(zone)
    before = datetime.combine(local.date() - timedelta(days=1), local.timetz().replace(tzinfo=None),
                              tzinfo=zone)
    return before.astimezone(end.tzinfo)


def send_at_on(day: date, config) -> datetime:
    """The instant ``digest.send_at`` falls at on ``day`` in the digest's time zone, as the
    cron trigger fires it: one in the hour skipped in spring is read with the offset before
    the change (02:30 in Berlin is 03:30 summer time), one in the hour repeated in autumn is
    its first pass."""
    return datetime.combine(day, config.digest.send_at, tzinfo=config.digest.zone())


def _period_end(day: str, now: datetime, config) -> datetime:
    scheduled = send_at_on(date.fromisoformat(day), config)
    return min(now, scheduled.astimezone(now.tzinfo)) if day != local_date(now, config) else now


def _clusters(articles, zone: tzinfo = timezone.utc) -> dict[int, int]:
    """Near-duplicates within a language, then one story told in two languages the same
    day of ``zone`` (the digest's time zone)."""
    return merge_languages(cluster([a.id for a in articles], [(a.title, a.text) for a in articles]),
                           articles, zone)


class DigestJob:
    def __init__(self, store, config, mailer: Mailer | None = None, *, config_file: str = "",
                 sleep: Callable[[float], None] = time.sleep,
                 stopping: Callable[[], bool] = lambda: False) -> None:
        self.stopping = stopping            # the service is stopping: no further copy is begun
        self.store = store
        self.config = config
        self.mailer = mailer or make_mailer(config)
        self.config_file = config_file
        self.sleep = sleep
        self._said_no_key = False
        self._clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)

    def run(self, now: datetime, day: str | None = None, resend: bool = False,
            wait_for_retries: bool = True, recipients: Sequence[str] = ()) -> DigestOutcome:
        day = day or local_date(now, self.config)
        started, began = now, time.monotonic()
        self._clock = lambda: started + timedelta(seconds=time.monotonic() - began)
        # first, so that a resend finds a dead run's copy of this day "unknown", not claimed
        interrupted = self.mark_all_interrupted(now)
        record = self.store.get_digest(day) or self._create(day, now)
        if recipients_to_add(record, self.config) and not resend \
                and day == local_date(now, self.config):
            # recipients added to the config since today's digest was made get it too (so
            # do all, for an empty digest made while send_when_empty was off, once it is
            # on); an earlier day's digest, or a resend, goes only to those it was made for
            record = self.store.add_recipients(record, self.config.digest.recipients)
        if resend:
            record = self._reopen(record, recipients)
        outcome = DigestOutcome(day, items=len(record.article_ids),
                                interrupted={d: r for d, r in interrupted.items() if d != day})
        sent_here: dict[str, str | None] = {}
        attempts = self.config.smtp.max_attempts if self.config.smtp else 1
        for round_ in range(attempts):
            record = self.store.get_digest(day)
            current = self._clock()
            due = [d for d in record.deliveries if d.status in OPEN and (
                d.next_attempt_at is None or d.next_attempt_at <= current or wait_for_retries)]
            if not due:
                break
            if round_:
                self.sleep(self._backoff(round_))
            sent_here.update(self._deliver(record, due))
            if not wait_for_retries:
                break
        return self._outcome(self.store.get_digest(day), outcome, sent_here)

    def _reopen(self, record: DigestRecord, recipients: Sequence[str]) -> DigestRecord:
        """Deliveries to send again: the named recipients', or every one not sent."""
        known = {d.recipient for d in record.deliveries}
        named = {r.lower() for r in recipients}            # the same mailbox in any case
        missing = [r for r in recipients if r.lower() not in {k.lower() for k in known}]
        if missing:
            raise UsageError(f"digest {record.digest_date} has no delivery to "
                             f"{', '.join(missing)} (its recipients: {', '.join(sorted(known))})")
        for d in record.deliveries:
            if d.status == "sending":       # another run has it claimed right now: left to it
                continue                    # (a dead run's copy turns "unknown" after its lease)
            if d.recipient.lower() in named if recipients else d.status != "sent":
                self.store.set_delivery(record, d.recipient, status="pending", attempts=0,
                                        next_attempt_at=None, last_error=None)
        return self.store.get_digest(record.digest_date)

    def _covered(self, day: str, end: datetime) -> None:
        """Refuse a new digest whose period a later one has covered already (not the day's
        own digest, made by another run since this one looked)."""
        last = self.store.last_digest_end()
        if last is not None and end <= last and self.store.get_digest(day) is None:
            raise UsageError(f"digest {day}: a later digest already covers its time (up to "
                             f"{last:%Y-%m-%d %H:%M} UTC), so there is nothing to make for "
                             "it; an existing digest is sent again with --date DAY --resend")

    def _create(self, day: str, now: datetime) -> DigestRecord:
        end = _period_end(day, now, self.config)
        self._covered(day, end)
        record, made = self.store.open_digest(day, end, _day_before(end, self.config),
                                              self.config.digest.recipients,
                                              self.config.digest.send_when_empty,
                                              partial(_clusters, zone=self.config.digest.zone()), now)
        if made:        # (a run that lost the race to make it says nothing: the maker did)
            log.info("digest %s: %d articles for %d recipients", day, len(record.article_ids),
                     len(record.deliveries))
        return record

    def mark_all_interrupted(self, now: datetime) -> dict[str, list[str]]:
        """``mark_interrupted`` for every digest with a copy left ``sending`` past its lease,
        however old: date → the recipients marked."""
        marked: dict[str, list[str]] = {}
        for day in self.store.digests_left_sending(now):
            record = self.store.get_digest(day)
            if record is not None:
                marked[day] = self.mark_interrupted(record, now)
        return {day: names for day, names in marked.items() if names}

    def mark_interrupted(self, record: DigestRecord, now: datetime) -> list[str]:
        """Deliveries left in ``sending`` past their lease: the sender died after handing
        the message over, or before; marked ``unknown`` and logged, never re-sent by
        themselves. Within the lease another process is sending them. The recipients marked."""
        marked = []
        for d in record.deliveries:
            if d.status == "sending" and (d.next_attempt_at is None or d.next_attempt_at <= now):
                log.warning("digest %s to %s: interrupted while sending; unknown whether "
                            "delivered, not re-sent automatically (monitor digest --date %s "
                            "--resend sends it again)", record.digest_date, d.recipient,
                            record.digest_date)
                self.store.set_delivery(record, d.recipient, status="unknown",
                                        last_error="interrupted while sending")
                marked.append(d.recipient)
        return marked

    def _lease(self) -> timedelta:
        """How long a claimed delivery may take before its sender counts as gone: a few
        times the SMTP timeout (connect, greeting, envelope, data each may use it)."""
        timeout = self.config.smtp.timeout_seconds if self.config.smtp else 0
        return max(MIN_LEASE, timedelta(seconds=6 * timeout))

    def _backoff(self, round_: int) -> float:
        base = self.config.smtp.retry_base_seconds if self.config.smtp else 0
        return base * (2 ** min(round_ - 1, 30))

    def render(self, record: DigestRecord, now: datetime) -> tuple[str, str, str]:
        line, digest = self._build_recorded(record, now)
        return (line, *render(digest, line))

    def _build_recorded(self, record: DigestRecord, now: datetime):
        articles = self.store.digest_articles(record)
        clusters = {a.id: a.cluster_id or a.id for a in articles}
        return self._build(articles, clusters, record.digest_date, record.period_start,
                           record.period_end, now, recorded=True)

    def review_links(self, recipient: str, now: datetime):
        """One recipient's review links (None without digest.review_url or its key)."""
        from monitor.tokens import ReviewLinks

        settings = self.config.digest
        if not settings.review_url:
            return None
        key = settings.review_key()
        if key is None:
            if not self._said_no_key:
                log.warning("digest.review_url is set but $%s is not (or is shorter than 16 "
                            "characters): the digest shows item ids, not review links",
                            settings.review_key_env)
                self._said_no_key = True
            return None
        return ReviewLinks(settings.review_url, key, recipient,
                           now + timedelta(days=settings.review_link_days))

    def preview(self, now: datetime, day: str | None = None) -> str:
        """The digest's HTML without touching the ledger."""
        day = day or local_date(now, self.config)
        record = self.store.get_digest(day)
        if record is not None:
            return self.render(record, now)[1]
        end = _period_end(day, now, self.config)
        self._covered(day, end)
        start = self.store.last_digest_end() or _day_before(end, self.config)
        articles = self.store.digest_candidates(start, end)
        line, digest = self._build(articles, _clusters(articles, self.config.digest.zone()), day,
                                   start, end, now)
        return render(digest, line)[0]

    def _build(self, articles, clusters, day, start, end, now, recorded=False):
        """(subject line, Digest) of a period's articles."""
        active = [h for h in self.store.feed_health(now, self.config.poll.broken_after_errors)
                  if h.active]
        # every feed the header counts as failing is named in the footer, with the silent ones
        unhealthy = [h for h in active if h.health in ("broken", "failing", "silent")]
        first = (date.fromisoformat(day) - timedelta(days=7)).isoformat()
        last = (date.fromisoformat(day) - timedelta(days=1)).isoformat()
        digests, topics, minerals = self.store.earlier_counts(first, last)
        coverage = Coverage(feeds=len(active),
                            failing=sum(1 for h in active if h.health in ("broken", "failing")),
                            articles=self.store.articles_seen(start, end),
                            earlier_digests=digests, topic_average=topics,
                            mineral_average=minerals)
        digest = build_digest(articles, clusters, digest_date=day, period_start=start,
                              period_end=end, zone=self.config.digest.zone(),
                              max_items=self.config.digest.max_items,
                              unhealthy_feeds=unhealthy, config_file=self.config_file,
                              coverage=coverage, recorded=recorded)
        return subject(self.config.digest.subject, digest), digest

    def _deliver(self, record: DigestRecord, due) -> dict[str, str | None]:
        """Send the due deliveries this process can claim; the recipients it sent to, with
        the file each copy was written to when it was written rather than mailed. Each
        claim, Date and retry time is taken at its own moment (``_clock``: the run's start
        plus the time it has taken), so a later round's claim is not born expired."""
        line, digest = self._build_recorded(record, self._clock())
        shared: tuple[str, str] | None = None
        sent: dict[str, str | None] = {}
        for delivery in due:
            if self.stopping():             # the rest stay pending, for the next start
                log.info("digest %s: stopping; %s and the rest of this round are left pending",
                         record.digest_date, delivery.recipient)
                break
            now = self._clock()
            links = self.review_links(delivery.recipient, now)
            if links is not None:
                html, text = render(digest, line, links=links)
            else:
                shared = shared or render(digest, line)
                html, text = shared
            message = build_message(sender=self.config.digest.sender, recipient=delivery.recipient,
                                    subject=line, html=html, text=text, when=now)
            if not self.store.claim_delivery(record, delivery.recipient,
                                             message_id=message["Message-ID"],
                                             attempts=delivery.attempts + 1,
                                             next_attempt_at=now + self._lease()):
                continue                      # another process is sending this one
            try:
                where = self.mailer.send(message, delivery.recipient)
            except DeliveryError as exc:
                if exc.unknown:
                    self.store.set_delivery(record, delivery.recipient, status="unknown",
                                            last_error=str(exc)[:1000], next_attempt_at=None)
                    log.warning("digest %s to %s: %s", record.digest_date, delivery.recipient, exc)
                else:
                    self._failed(record, delivery, exc, self._clock())
                continue
            self._record_sent(record, delivery.recipient)
            sent[delivery.recipient] = where
        return sent

    def _record_sent(self, record: DigestRecord, recipient: str) -> None:
        """The server took the copy: record it, trying again while another writer holds the
        store (each try waits the busy timeout) or the database server is away for a moment
        (a restart: tries spread over ~100 s), so that neither leaves a delivered copy to be
        taken for an interrupted one."""
        started, paused = time.monotonic(), 0.0
        for attempt in range(SENT_WRITE_ATTEMPTS):
            tried = time.monotonic()
            try:
                self.store.set_delivery(record, recipient, status="sent", sent_at=self._clock(),
                                        last_error=None, next_attempt_at=None)
                return
            except StorageError as exc:
                spent = time.monotonic() - started + paused
                if attempt + 1 == SENT_WRITE_ATTEMPTS or spent >= SENT_WRITE_SECONDS:
                    log.error("digest %s to %s: DELIVERED (the mail server accepted it), but the "
                              "store could not record it: %s. It will show as interrupted; do "
                              "not --resend it", record.digest_date, recipient, exc)
                    raise
                log.warning("digest %s to %s: delivered; recording it waits for the store: %s",
                            record.digest_date, recipient, exc)
                if time.monotonic() - tried < 1.0:      # refused at once, not after a busy wait
                    pause = SENT_WRITE_PAUSES[min(attempt, len(SENT_WRITE_PAUSES) - 1)]
                    self.sleep(pause)
                    paused += pause

    def _failed(self, record, delivery, exc: DeliveryError, now: datetime) -> None:
        attempts = delivery.attempts + 1
        wait = timedelta(seconds=min(self._backoff(attempts) or 60,
                                     MAX_RETRY_GAP.total_seconds()))
        next_at = None if exc.permanent else now + wait
        self.store.set_delivery(record, delivery.recipient,
                                status="failed" if exc.permanent else "retry",
                                last_error=str(exc)[:1000], next_attempt_at=next_at)
        log.warning("digest %s to %s: %s (%s)", record.digest_date, delivery.recipient, exc,
                    "permanent, not retried" if exc.permanent else f"will retry at {next_at:%H:%M:%S} UTC")

    def _outcome(self, record: DigestRecord, outcome: DigestOutcome,
                 sent_here: dict[str, str | None]) -> DigestOutcome:
        """What happened to each delivery, from this run's point of view: a copy another
        process sent meanwhile is "already sent", not "sent"."""
        outcome.written = {r: where for r, where in sent_here.items() if where}
        for d in record.deliveries:
            if d.status == "sent" and d.recipient not in sent_here:
                outcome.already.append(d.recipient)
                continue
            bucket = {"sent": outcome.sent, "retry": outcome.retry, "pending": outcome.retry,
                      "failed": outcome.failed, "unknown": outcome.unknown,
                      "sending": outcome.elsewhere}[d.status]
            bucket.append(d.recipient)
        if not record.deliveries:
            if not self.config.digest.recipients:
                outcome.note = "no recipients in digest.recipients: no mail"
            elif not self.config.digest.send_when_empty:
                outcome.note = "nothing flagged and send_when_empty is off: no mail"
            else:       # an earlier day's, or a resend: made while it was off
                outcome.note = ("nothing flagged, and send_when_empty was off when this "
                                "digest was made: no mail")
        return outcome
