"""When to poll next: plain values in, datetimes out (monitor.scheduling)."""

from datetime import datetime, timedelta, timezone

import pytest

from monitor.scheduling import MAX_FLOOR, next_check_after_error, next_check_after_success

NOW = datetime(2026, 1, 2, 3, 4, tzinfo=timezone.utc)


@pytest.mark.parametrize(("server", "wait"), [
    (None, timedelta(minutes=60)), (0, timedelta(minutes=60)), (-5, timedelta(minutes=60)),
    (float("nan"), timedelta(minutes=60)), (7200, timedelta(hours=2)),
    (99999999999999, MAX_FLOOR), (float("inf"), MAX_FLOOR), (1e308, MAX_FLOOR),
])
def test_server_delays_are_floors_clamped_before_arithmetic(server, wait):
    assert next_check_after_success(NOW, 60, server) == NOW + wait
    assert next_check_after_error(NOW, 60, 1, server) == NOW + wait


def test_backoff_doubles_and_is_capped_at_a_day():
    assert next_check_after_error(NOW, 60, 3) == NOW + timedelta(hours=4)
    assert next_check_after_error(NOW, 60, 40) == NOW + timedelta(hours=24)
