"""What a poll makes of a feed, as plain values (monitor.feedstate)."""

from datetime import timedelta

from monitor.feedstate import MAX_ERROR, feed_outcome, fresh_articles
from monitor.types import FeedOutcome, FeedState, ParsedArticle

from conftest import utc

NOW = utc(2025, 6, 5, 8)


def feed(error_count=0, first_error_at=None, etag='"old"'):
    return FeedState(id=7, name="wire", url="https://wire.example/rss", lang=None, interval_minutes=60,
                     etag=etag, last_modified="Mon, 02 Jun 2025 10:00:00 GMT", error_count=error_count,
                     first_error_at=first_error_at, has_articles=True)


def outcome(**kw):
    return FeedOutcome(polled_at=NOW, next_check_at=NOW + timedelta(hours=1), **kw)


def test_a_200_clears_errors_replaces_validators_and_marks_new_articles():
    values = feed_outcome(feed(error_count=3, first_error_at=utc(2025, 6, 1)),
                          outcome(status=200, etag='"new"', last_modified=None), new=True)
    assert values == dict(last_polled_at=NOW, next_check_at=NOW + timedelta(hours=1), last_status=200,
                          error_count=0, last_error=None, first_error_at=None, last_success_at=NOW,
                          etag='"new"', last_modified=None, last_new_at=NOW)


def test_a_200_with_nothing_new_leaves_the_last_new_time():
    assert "last_new_at" not in feed_outcome(feed(), outcome(status=200, etag='"e"'), new=False)


def test_a_304_keeps_the_validators():
    values = feed_outcome(feed(), outcome(status=304, not_modified=True), new=False)
    assert values["error_count"] == 0 and values["last_success_at"] == NOW
    assert "etag" not in values and "last_modified" not in values and "last_new_at" not in values


def test_errors_count_up_keep_the_first_time_and_the_validators():
    first = feed_outcome(feed(), outcome(status=500, error="http: 500"), new=False)
    assert (first["error_count"], first["first_error_at"], first["last_error"]) == (1, NOW, "http: 500")
    assert "etag" not in first and "last_success_at" not in first
    later = feed_outcome(feed(error_count=4, first_error_at=utc(2025, 6, 1)),
                         outcome(status=None, error="x" * 5000), new=False)
    assert later["error_count"] == 5 and later["first_error_at"] == utc(2025, 6, 1)
    assert len(later["last_error"]) == MAX_ERROR


def test_a_feed_takes_a_key_base_once_and_keeps_it():
    """The address its first document's keys were read against becomes the feed's key base;
    a feed that has one keeps it, whatever a later poll read against."""
    values = feed_outcome(feed(), outcome(status=200, key_base="http://wire.example/rss"), new=True)
    assert values["key_base"] == "http://wire.example/rss"
    based = FeedState(**{**feed().__dict__, "key_base": "http://wire.example/rss"})
    later = feed_outcome(based, outcome(status=200, key_base="https://cdn.example/rss"), new=False)
    assert "key_base" not in later
    assert "key_base" not in feed_outcome(feed(), outcome(status=304, not_modified=True), new=False)


def article(key, content_hash, published=None):
    return ParsedArticle(key=key, guid=key, url=None, title=key, text="", published=published,
                         language=None, content_hash=content_hash)


def test_fresh_articles_are_the_unknown_and_the_changed_with_believable_dates():
    articles = [article("same", "h1"), article("changed", "h2", utc(2025, 6, 4)),
                article("new", "h3", utc(2031, 1, 1)), article("old", "h4", utc(1970, 1, 1))]
    fresh = fresh_articles(articles, {"same": "h1", "changed": "h-before"}, NOW)
    assert [(a.key, a.published) for a in fresh] == [("changed", utc(2025, 6, 4)), ("new", None),
                                                      ("old", None)]


def test_an_undated_new_article_is_fresh_and_stays_undated():
    fresh = fresh_articles([article("undated", "h5")], {}, NOW)
    assert [(a.key, a.published) for a in fresh] == [("undated", None)]
