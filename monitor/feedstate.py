"""What one poll makes of a feed: which of its parsed articles are new or changed, and
what its stored state becomes. Pure functions of plain values; storage writes what they
return, the pipeline only passes them along."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from monitor.scheduling import plausible_published
from monitor.types import FeedOutcome, FeedState, ParsedArticle

MAX_ERROR = 2_000             # characters of an error message kept in the feed's row


def fresh_articles(articles: Sequence[ParsedArticle], known: Mapping[str, str],
                   now: datetime) -> list[ParsedArticle]:
    """The articles to analyse and store: those whose key is not stored yet (``known``
    maps stored keys to content hashes) or whose content changed, each with a publish date
    we believe (none when it is in the future or before 1990)."""
    return [replace(a, published=plausible_published(a.published, now))
            for a in articles if known.get(a.key) != a.content_hash]


def feed_outcome(feed: FeedState, outcome: FeedOutcome, new: bool) -> dict[str, Any]:
    """The feed row's columns to set after a poll (only those that change).

    - Always: when it was polled, when to poll next, the HTTP status.
    - Success (200 or 304): the error count, first error and last error are cleared and the
      success time is set; a 200 replaces the validators (ETag, Last-Modified), a 304
      keeps them; ``new`` (an article not stored before) sets the time of the last new
      article, which is also what says the feed has articles; a feed without a key base
      takes the one its document's keys were read against (``monitor.parse.read_feed``).
    - Error: one more consecutive error; the first error's time is kept from the first
      of the run; the message is kept (cut at ``MAX_ERROR``); validators are kept, so a
      transient error never costs the next conditional GET."""
    values: dict[str, Any] = dict(last_polled_at=outcome.polled_at,
                                  next_check_at=outcome.next_check_at, last_status=outcome.status)
    if outcome.error is None:
        values.update(error_count=0, last_error=None, first_error_at=None,
                      last_success_at=outcome.polled_at)
        if not outcome.not_modified:
            values.update(etag=outcome.etag, last_modified=outcome.last_modified)
        if new:
            values["last_new_at"] = outcome.polled_at
        if outcome.key_base and not feed.key_base:
            values["key_base"] = outcome.key_base
    else:
        values.update(error_count=feed.error_count + 1, last_error=outcome.error[:MAX_ERROR],
                      first_error_at=feed.first_error_at or outcome.polled_at)
    return values
