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
                             max_age: float | None = None) -> datetime:
    """The feed's interval, or longer when the server's Cache-Control max-age asks for it
    (capped at a day)."""
    wait = timedelta(minutes=interval_minutes)
    return now + max(wait, _server_floor(max_age, MAX_AGE_FLOOR))


def next_check_after_error(now: datetime, interval_minutes: int, error_count: int,
                           retry_after: float | None = None,
                           max_backoff_hours: float = 24.0) -> datetime:
    """Exponential backoff on consecutive errors (``error_count`` counts this one), capped
    at ``max_backoff_hours`` so a feed failing for days is still tried daily; a server's
    Retry-After is a floor (capped at 31 days)."""
    exponent = min(max(error_count - 1, 0), 20)
    wait = min(timedelta(minutes=interval_minutes) * (2 ** exponent),
               timedelta(hours=max_backoff_hours))
    return now + max(wait, _server_floor(retry_after))


def plausible_published(published: datetime | None, now: datetime) -> datetime | None:
    """A publish date we believe: not more than a day ahead, not before 1990."""
    if published is None or published > now + timedelta(days=1) or published.year < 1990:
        return None
    return published
