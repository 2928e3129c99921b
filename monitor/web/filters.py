"""The flagged list's filters: query-string values in, checked store filters out. Pure.

    ListFilter.from_query({"from": "2026-12-01", "topic": "export-controls", "q": "gallium"})

A value that cannot be used is not silently dropped: it becomes a message on the page
(``problems``) and the filter is left out, so the list still answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone, tzinfo
from urllib.parse import urlencode

from monitor import TOPICS
from monitor.exceptions import UsageError
from monitor.numbers import is_whole
from monitor.review import STATUSES, check_mineral

_CODE = re.compile(r"^[A-Za-z]{2}$")
MAX_TEXT = 200


@dataclass(frozen=True)
class ListFilter:
    """What the analyst asked for (as typed, for the form) and what the store gets."""

    since: date | None = None          # first day, inclusive (in the digest's time zone)
    until: date | None = None          # last day, inclusive
    topic: str = ""
    country: str = ""
    mineral: str = ""
    language: str = ""
    status: str = ""                   # "" = every flagged article; unreviewed; relevant; irrelevant
    text: str = ""
    older: int | None = None           # the page of the items listed after this one
    newer: int | None = None           # the page of the items listed before this one
    problems: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> ListFilter:
        problems: list[str] = []

        def day(name: str) -> date | None:
            value = (query.get(name) or "").strip()
            if not value:
                return None
            try:
                return date.fromisoformat(value)
            except ValueError:
                problems.append(f"{name}: expected a date such as 2026-12-01, got {value!r}")
                return None

        def choice(name: str, allowed: tuple[str, ...]) -> str:
            value = (query.get(name) or "").strip()
            if value and value not in allowed:
                problems.append(f"{name}: expected one of {', '.join(allowed)}, got {value!r}")
                return ""
            return value

        def pattern(name: str, regex: re.Pattern[str], example: str, fold=str.upper) -> str:
            given = (query.get(name) or "").strip()
            value = fold(given)
            if value and not regex.match(given):       # "ß" folds to "SS": not a code
                problems.append(f"{name}: expected {example}, got {given!r}")
                return ""
            return value

        def item(name: str) -> int | None:
            given = (query.get(name) or "").strip()
            if not given:
                return None
            if is_whole(given) and 0 < int(given) < 2**63:
                return int(given)
            problems.append(f"{name}: expected an item number, got {given!r}")
            return None

        older, newer = item("older"), item("newer")
        if older and newer:
            problems.append("newer: a page is either older or newer than an item; newer was left out")
            newer = None
        since, until = day("from"), day("to")
        if since and until and until < since:
            problems.append("to: the last day is before the first; the span was left out")
            since = until = None
        text = " ".join((query.get("q") or "").split())
        if len(text) > MAX_TEXT:
            problems.append(f"q: at most {MAX_TEXT} characters are searched")
            text = text[:MAX_TEXT]
        mineral = (query.get("mineral") or "").strip()
        if mineral:
            try:
                mineral = check_mineral(mineral)
            except UsageError as exc:
                problems.append(f"mineral: {exc}")
                mineral = ""
        return cls(since=since, until=until, topic=choice("topic", TOPICS),
                   country=pattern("country", _CODE, "an ISO code such as CN"),
                   mineral=mineral,
                   language=pattern("lang", _CODE, "a language code such as de", str.lower),
                   status=choice("status", STATUSES), text=text, older=older, newer=newer,
                   problems=tuple(problems))

    def store_filters(self, zone: tzinfo = timezone.utc) -> dict:
        """Keyword arguments of Store.review_list for these filters, days being days in
        ``zone`` (the page's place in the list, ``older_than`` or ``newer_than``, is added
        by who knows its sort key)."""
        return dict(since=_midnight(self.since, zone), until=_midnight(self.until, zone, 1),
                    topic=self.topic or None, country=self.country or None,
                    mineral=self.mineral or None, language=self.language or None,
                    text=self.text or None, status=self.status or None)

    def query(self, **changes) -> str:
        """The query string of this filter with ``changes`` (older=123, …) and without
        the page's place unless changed; empty values left out."""
        values = {"from": self.since.isoformat() if self.since else "",
                  "to": self.until.isoformat() if self.until else "",
                  "topic": self.topic, "country": self.country, "mineral": self.mineral,
                  "lang": self.language, "status": self.status, "q": self.text}
        values.update({k: str(v) for k, v in changes.items()})
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def active(self) -> bool:
        return any((self.since, self.until, self.topic, self.country, self.mineral,
                    self.language, self.status, self.text))


def _midnight(day: date | None, zone: tzinfo, plus_days: int = 0) -> datetime | None:
    """The UTC time at which ``day`` (plus ``plus_days``) begins in ``zone``."""
    if day is None:
        return None
    try:
        start = datetime.combine(day + timedelta(days=plus_days), time(0), tzinfo=zone)
        return start.astimezone(timezone.utc)
    except OverflowError:           # the day after 9999-12-31: the end of time will do
        return datetime.max.replace(tzinfo=timezone.utc)
