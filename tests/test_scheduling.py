"""When to poll next: plain values in, datetimes out (monitor.scheduling)."""

from datetime import datetime, timedelta, timezone

import pytest

from monitor.scheduling import (MAX_AGE_FLOOR, MAX_FLOOR, next_check_after_error,
                                next_check_after_success)

NOW = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)


@pytest.mark.parametrize(("server", "wait"), [
    (None, timedelta(minutes=60)), (0, timedelta(minutes=60)), (-5, timedelta(minutes=60)),
    (float("nan"), timedelta(minutes=60)), (7200, timedelta(hours=2)),
    (99999999999999, MAX_FLOOR), (float("inf"), MAX_FLOOR), (1e308, MAX_FLOOR),
])
def test_server_delays_are_floors_clamped_before_arithmetic(server, wait):
    assert next_check_after_success(NOW, 60, server) == NOW + min(wait, MAX_AGE_FLOOR)
    assert next_check_after_error(NOW, 60, 1, server) == NOW + wait


def test_a_years_max_age_holds_a_feed_back_a_day_not_a_month():
    """CDNs send max-age=31536000 for everything: a news feed is still read daily; a
    Retry-After (the server asks to wait) keeps its 31 days."""
    assert next_check_after_success(NOW, 60, 31536000) == NOW + timedelta(days=1)
    assert next_check_after_success(NOW, 60, 7200) == NOW + timedelta(hours=2)
    assert next_check_after_error(NOW, 60, 1, 31536000) == NOW + timedelta(days=31)


def test_backoff_doubles_and_is_capped_at_a_day():
    assert next_check_after_error(NOW, 60, 3) == NOW + timedelta(hours=4)
    assert next_check_after_error(NOW, 60, 40) == NOW + timedelta(hours=24)


def test_backoff_reaches_the_day_cap_whatever_the_interval():
    # a 1-minute feed failing 12 times in a row: 2**11 minutes is past a day, so a day
    assert next_check_after_error(NOW, 1, 11) == NOW + timedelta(minutes=1024)
    assert next_check_after_error(NOW, 1, 12) == NOW + timedelta(hours=24)
    assert next_check_after_error(NOW, 1, 30) == NOW + timedelta(hours=24)


@pytest.mark.parametrize(("published", "believed"), [
    (NOW + timedelta(hours=3), True),                         # a clock or time zone ahead
    (NOW + timedelta(days=1), True),                          # up to a day ahead
    (NOW + timedelta(days=1, seconds=1), False),
    (datetime(1990, 1, 1, tzinfo=timezone.utc), True),
    (datetime(1989, 12, 31, 23, 59, tzinfo=timezone.utc), False),
    (None, False),
])
def test_a_publish_date_is_believed_up_to_a_day_ahead_and_from_1990(published, believed):
    from monitor.scheduling import plausible_published

    assert plausible_published(published, NOW) == (published if believed else None)


def test_backoff_is_capped_at_the_configured_hours_not_always_a_day():
    """poll.max_backoff_hours (up to 31 days) is the cap the operator chose."""
    assert next_check_after_error(NOW, 60, 40, max_backoff_hours=6) == NOW + timedelta(hours=6)
    assert next_check_after_error(NOW, 60, 40, max_backoff_hours=72) == NOW + timedelta(hours=72)
    assert next_check_after_error(NOW, 60, 2, max_backoff_hours=6) == NOW + timedelta(hours=2)


def test_a_server_never_reached_is_tried_again_within_the_hour_or_its_interval():
    """A name that does not resolve, a refused connection, an unreachable network: the
    try cost the server nothing, and when the machine itself was offline every feed failed
    so, and backed off up to a day: after the network came back, feeds waited up to 24 h."""
    assert next_check_after_error(NOW, 15, 1, reached=False) == NOW + timedelta(minutes=15)
    assert next_check_after_error(NOW, 15, 3, reached=False) == NOW + timedelta(hours=1)
    assert next_check_after_error(NOW, 60, 40, reached=False) == NOW + timedelta(hours=1)
    assert next_check_after_error(NOW, 180, 40, reached=False) == NOW + timedelta(hours=3)
    # the operator's smaller cap still holds; a server that answered still backs off
    assert next_check_after_error(NOW, 60, 40, max_backoff_hours=0.5, reached=False) \
        == NOW + timedelta(minutes=30)
    assert next_check_after_error(NOW, 60, 40) == NOW + timedelta(hours=24)
