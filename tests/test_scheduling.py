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
