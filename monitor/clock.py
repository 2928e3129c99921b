"""The one clock: timezone-aware UTC now (tests and the service pass their own ``Clock``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, time, timezone

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def clock_text(moment: time) -> str:
    """A time of day as the config writes it: "07:00", or "07:00:30" when it has seconds."""
    return moment.strftime("%H:%M:%S" if moment.second else "%H:%M")
