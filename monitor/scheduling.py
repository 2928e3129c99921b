"""When to poll a feed next: pure functions of the outcome and the clock."""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_FLOOR = timedelta(days=31)          # a server's Retry-After: it asked us to wait
# Cache-Control max-age only says how long the document stays fresh in a cache: many CDNs
# send a year for everything, which would silence a news feed for a month
MAX_AGE_FLOOR = timedelta(days=1)


def _server_floor(seconds: float | None, cap: timedelta = MAX_FLOOR) -> timedelta:
    """A server-supplied delay as a timedelta, clamped to [0, cap] *before* the
    arithmetic: ``Retry-After: 99999999999999`` overflows timedelta itself."""
    if not seconds or seconds != seconds or seconds <= 0:      # None, 0, NaN, negative
        return timedelta(0)
    return timedelta(seconds=min(seconds, cap.total_seconds()))


def next_check_after_success(now: datetime, interval_minutes: int,
                             max_age: float | None = None, since: datetime | None = None) -> datetime:
    """The feed's interval after ``since`` (the tick that polled it; else ``now``), or
    longer when the server's Cache-Control max-age, counted from ``now``, asks for it
    (capped at a day)."""
    wait = timedelta(minutes=interval_minutes)
    return max(min(since or now, now) + wait, now + _server_floor(max_age, MAX_AGE_FLOOR))


# A feed whose server was never reached (its name did not resolve, the connection was
# refused, the network was unreachable) is tried again within this, or its interval when
# that is longer: such a try costs its server nothing, and when this machine was offline
# (every feed failing so) the feeds resume within the hour of the network's return, not
# up to max_backoff_hours later, by which time a busy feed has dropped items
UNREACHED_CAP = timedelta(hours=1)


def next_check_after_error(now: datetime, interval_minutes: int, error_count: int,
                           retry_after: float | None = None,
                           max_backoff_hours: float = 24.0, reached: bool = True,
                           since: datetime | None = None) -> datetime:
    """Exponential backoff on consecutive errors (``error_count`` counts this one), capped
    at ``max_backoff_hours`` so a feed failing for days is still tried daily, and for a
    server not ``reached`` at ``UNREACHED_CAP`` or the interval, after ``since`` (the tick
    that polled it; else ``now``); a server's Retry-After, counted from ``now``, is a floor
    (capped at 31 days)."""
    interval = timedelta(minutes=interval_minutes)
    cap = timedelta(hours=max_backoff_hours)
    if not reached:
        cap = min(cap, max(interval, UNREACHED_CAP))
    exponent = min(max(error_count - 1, 0), 20)
    return max(min(since or now, now) + min(interval * (2 ** exponent), cap),
               now + _server_floor(retry_after))


def plausible_published(published: datetime | None, now: datetime) -> datetime | None:
    """A publish date we believe: not more than a day ahead, not before 1990."""
    if published is None or published > now + timedelta(days=1) or published.year < 1990:
        return None
    return published
