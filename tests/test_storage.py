import sqlite3
from datetime import datetime, timedelta, timezone

import pytest

from monitor.exceptions import StorageError
from monitor.storage import open_store
from monitor.storage.migrations import LATEST
from monitor.types import ArticleWrite, FeedOutcome, Mention, ParsedArticle, Verdict

from conftest import utc
from storeview import count_articles, due_feeds


class FeedCfg:
    def __init__(self, name, url):
        self.name, self.url, self.lang, self.interval_minutes, self.silent_after_days = name, url, None, None, None


def article(key="k1", title="Gallium curbs", text="Beijing adds licences.", published=None):
    return ParsedArticle(key=key, guid=key, url=f"https://x.example/{key}", title=title, text=text,
                         published=published, language="en", content_hash=f"h-{title}-{text}")


@pytest.fixture
def url(store_url, tmp_path):
    return store_url.replace(str(tmp_path / "monitor.db"), str(tmp_path / "sub" / "m.db"))


@pytest.fixture
def store(url):
    s = open_store(url)
    s.sync_feeds([FeedCfg("one", "https://one.example/f")], utc(2025, 1, 1))
    yield s
    s.close()


def outcome(feed, now, new=True):
    """The columns a successful poll of ``feed`` at ``now`` sets (monitor.feedstate)."""
    from monitor.feedstate import feed_outcome

    return feed_outcome(feed, FeedOutcome(polled_at=now, next_check_at=now + timedelta(hours=1),
                                          status=200, etag='"e"'), new=new)


def test_new_store_is_wal_with_schema_version_and_views(store, tmp_path, sqlite_only):
    db = sqlite3.connect(tmp_path / "sub" / "m.db")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("SELECT max(version) FROM schema_version").fetchone()[0] == LATEST
    views = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='view'")}
    assert views == {"flagged", "feed_health"}


def sql(store, query):
    from sqlalchemy import text

    with store.engine.connect() as conn:
        return conn.execute(text(query)).fetchall()


def test_reopen_keeps_data_and_does_not_remigrate(store, url):
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    store.save_poll(feed.id, [ArticleWrite(article(), "en", None)], outcome(feed, utc(2025, 1, 1)))
    again = open_store(url)
    assert count_articles(again) == 1
    assert sql(again, "SELECT count(*), max(version) FROM schema_version") == [(1, LATEST)]
    again.close()


def _one_article_then_reopened(store, url, statements):
    """The store with one article stored, then ``statements`` run (an older schema made
    again), closed and opened anew (migrated); the article must still be there."""
    from sqlalchemy import text

    feed = due_feeds(store, utc(2025, 1, 1))[0]
    store.save_poll(feed.id, [ArticleWrite(article(), "en", None)], outcome(feed, utc(2025, 1, 1)))
    with store.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))
    store.close()
    again = open_store(url)
    assert count_articles(again) == 1
    return again


def test_a_version_1_store_gains_the_publisher_column_and_keeps_its_articles(store, url):
    """Schema version 2 adds article.publisher; a store made by an earlier monitor is
    migrated when it is next opened, its data untouched."""
    again = _one_article_then_reopened(store, url, [         # what version 1 looked like
        "DROP INDEX ix_article_flagged_published", "DROP VIEW flagged",
        "ALTER TABLE article DROP COLUMN publisher", "UPDATE schema_version SET version = 1",
        "CREATE VIEW flagged AS SELECT id FROM article"])
    assert sql(again, "SELECT version FROM schema_version ORDER BY version") == [
        (v,) for v in range(1, LATEST + 1)]
    assert sql(again, "SELECT publisher FROM article") == [(None,)]
    assert again.review_list(include_unflagged=True)
    catalog = ("SELECT name FROM sqlite_master WHERE type = 'index'" if url.startswith("sqlite")
               else "SELECT indexname FROM pg_indexes")
    assert ("ix_article_flagged_published",) in sql(again, catalog)   # the review list's index
    again.close()


def test_newer_schema_is_refused_naming_the_store(store, url):
    from sqlalchemy import text

    with store.engine.begin() as conn:
        conn.execute(text("INSERT INTO schema_version VALUES (999, '2030-01-01 00:00:00')"))
    with pytest.raises(StorageError, match="newer than this monitor knows") as caught:
        open_store(url)
    assert "the store " + url.split("://")[0] in str(caught.value)


def test_a_store_of_the_first_release_gains_the_columns_it_lacks(store, url):
    """The first releases made version-1 stores without the feed leases, the digest's total
    and the delivery's retry time (added without a migration then); every command then
    failed with "no such column: feed.claimed_until". Migration 5 adds what is missing."""
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    store.save_poll(feed.id, [ArticleWrite(article(), "en", None)], outcome(feed, utc(2025, 1, 1)))
    from sqlalchemy import text

    with store.engine.begin() as conn:                 # what the first release made
        conn.execute(text("DROP INDEX ix_article_flagged_published"))
        conn.execute(text("DROP VIEW flagged"))
        conn.execute(text("DROP VIEW feed_health"))
        conn.execute(text("ALTER TABLE article DROP COLUMN publisher"))
        for table, column in (("feed", "claimed_until"), ("feed", "claimed_by"),
                              ("digest", "total_flagged"),
                              ("digest_delivery", "next_attempt_at")):
            conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text("DELETE FROM schema_version"))
        conn.execute(text("INSERT INTO schema_version VALUES (1, '2026-11-26 00:00:00')"))
    store.close()
    again = open_store(url)
    assert count_articles(again) == 1
    assert max(v for (v,) in sql(again, "SELECT version FROM schema_version")) == LATEST
    claimed = again.claim_due_feeds(utc(2025, 1, 2), "poller-1", 60, 10, include_all=True)
    assert [f.id for f in claimed] == [feed.id]
    assert sql(again, "SELECT claimed_by FROM feed") == [("poller-1",)]
    assert again.feed_health(utc(2025, 1, 2))
    again.close()


def test_a_version_5_store_gains_the_key_base_and_a_moved_feed_keeps_it(store, url):
    """Schema version 6 adds feed.key_base (the address relative links and guids in the
    article keys are read against), empty until the next poll reads the feed; a feed whose
    configured URL changes (a new address, the target of a 301) keeps it, so that its
    articles keep their keys."""
    again = _one_article_then_reopened(store, url, [         # what version 5 looked like
        "DROP VIEW flagged", "DROP VIEW feed_health", "ALTER TABLE feed DROP COLUMN key_base",
        "UPDATE schema_version SET version = 5"])
    assert max(v for (v,) in sql(again, "SELECT version FROM schema_version")) == LATEST == 7
    [feed] = due_feeds(again, utc(2025, 1, 2))
    assert feed.key_base is None
    again.save_states([(feed.id, {"key_base": "http://one.example/f"})])
    again.sync_feeds([FeedCfg("one", "https://new.example/feed")], utc(2025, 1, 2))
    [feed] = due_feeds(again, utc(2025, 1, 2))
    assert (feed.url, feed.key_base) == ("https://new.example/feed", "http://one.example/f")
    again.close()


_KILLED_MIGRATION = """
import sys, time
from pathlib import Path
from monitor.storage import migrations, open_store

url, ready = sys.argv[1], Path(sys.argv[2])
latest, doc, real = migrations.MIGRATIONS[-1]

def step_then_hang(conn):          # the last migration half done: its column added, not committed
    real(conn)
    ready.write_text("migrating")
    time.sleep(120)

migrations.MIGRATIONS[-1] = (latest, doc, step_then_hang)
open_store(url)
"""


def test_a_migration_killed_half_way_is_undone_and_done_again_at_the_next_open(store, url,
                                                                             tmp_path):
    """SIGKILL (the OOM killer, a power cut) of a process in the middle of migrating: each
    migration is one transaction, so the store is left as it was before it (the old
    version, without the half-added column, its data whole), and the next open migrates
    it in full."""
    import time

    from sqlalchemy import create_engine, inspect, text

    from conftest import kill_when_ready

    feed = due_feeds(store, utc(2025, 1, 1))[0]
    store.save_poll(feed.id, [ArticleWrite(article(), "en", None)], outcome(feed, utc(2025, 1, 1)))
    _as_version_6(store)
    store.close()
    ready = tmp_path / "ready"
    kill_when_ready(_KILLED_MIGRATION, url, str(ready), ready=ready, doing="migrating")

    engine = create_engine(url)                         # as the kill left it, not migrated
    try:
        deadline = time.monotonic() + 30
        while True:                                     # PostgreSQL ends the dead session
            try:
                with engine.connect() as conn:
                    versions = conn.execute(text("SELECT version FROM schema_version")).all()
                    columns = {c["name"] for c in inspect(conn).get_columns("review")}
                    articles = conn.execute(text("SELECT count(*) FROM article")).scalar()
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        engine.dispose()
    assert (versions, "content_hash" in columns, articles) == ([(6,)], False, 1)

    again = open_store(url)
    try:
        assert sql(again, "SELECT version FROM schema_version ORDER BY version") == [(6,), (7,)]
        assert count_articles(again) == 1
        assert again.reviews_for_training() == ([], [])
        assert again.feed_health(utc(2025, 1, 2))
    finally:
        again.close()


def test_feed_health_view_is_the_same_in_every_session_time_zone(store, url):
    """On PostgreSQL the view compared ``now() at time zone 'utc'`` (a bare timestamp) with
    timestamptz columns: the session's zone moved a feed between ok and silent."""
    if not url.startswith("postgresql"):
        pytest.skip("PostgreSQL's session time zone")
    from sqlalchemy import text

    due_feeds(store, utc(2025, 1, 1))
    with store.engine.begin() as conn:
        conn.execute(text("UPDATE feed SET silent_after_days = 3, last_polled_at = now(), "
                          "error_count = 0, last_new_at = now() - interval '3 days' "
                          "+ interval '2 hours'"))
    seen = set()
    for zone in ("UTC", "America/New_York", "Asia/Tokyo"):
        with store.engine.connect() as conn:
            conn.execute(text(f"SET TIME ZONE '{zone}'"))
            seen.add(conn.execute(text("SELECT health FROM feed_health")).scalar())
    assert seen == {"ok"}


def test_datetimes_round_trip_as_aware_utc(store):
    cest = timezone(timedelta(hours=2))
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    polled = datetime(2025, 6, 1, 9, 30, tzinfo=cest)
    store.save_poll(feed.id, [], outcome(feed, polled))
    health = store.feed_health(utc(2025, 6, 1, 8))[0]
    assert health.last_polled_at == utc(2025, 6, 1, 7, 30)
    assert health.last_polled_at.tzinfo is timezone.utc


def test_naive_datetime_is_refused(store):
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    with pytest.raises(Exception, match="naive datetime"):
        store.save_poll(feed.id, [], outcome(feed, datetime(2025, 6, 1, 9)))


def test_same_key_updates_in_place_and_flagged_view(store):
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    verdict = Verdict(flagged=True, topics=("export-controls",), score=0.93,
                      reasons=("classifier export-controls 0.93",), model_version="m1")
    write = ArticleWrite(article(), "en", verdict, countries=(Mention("US", 1), Mention("CN", 2)),
                         minerals=(Mention("gallium", 1),))
    assert store.save_poll(feed.id, [write], outcome(feed, utc(2025, 6, 1))) == (1, 0)
    changed = ArticleWrite(article(text="Beijing adds licences for germanium too."), "en", verdict,
                           countries=(Mention("CN", 1),))
    assert store.save_poll(feed.id, [changed], outcome(feed, utc(2025, 6, 2))) == (0, 1)
    rows = sql(store, "SELECT title, topics, countries, minerals, source FROM flagged")
    assert [tuple(r) for r in rows] == [("Gallium curbs", "export-controls", "CN", None, "one")]
    health = sql(store, "SELECT name, health, articles FROM feed_health")
    assert [tuple(r) for r in health] == [("one", "silent", 1)]    # nothing new since 2025


def test_failed_transaction_stores_nothing(store):
    """A crash mid-feed: articles and feed state roll back together."""
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    good = ArticleWrite(article("a"), "en", None)
    bad = ArticleWrite(article("b"), "en", None, countries=(Mention("CN", 1), Mention("CN", 1)))
    with pytest.raises(StorageError):
        store.save_poll(feed.id, [good, bad], outcome(feed, utc(2025, 6, 1)))
    assert count_articles(store) == 0
    assert store.feed_health(utc(2025, 6, 1))[0].last_polled_at is None


def test_removed_feed_is_deactivated_and_keeps_articles(store):
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    store.save_poll(feed.id, [ArticleWrite(article(), "en", None)], outcome(feed, utc(2025, 6, 1)))
    store.sync_feeds([FeedCfg("two", "https://two.example/f")], utc(2025, 6, 2))
    assert [f.name for f in due_feeds(store, utc(2030, 1, 1))] == ["two"]
    assert count_articles(store) == 1
    assert {h.name: h.active for h in store.feed_health(utc(2025, 6, 2))} == {"one": False, "two": True}


def test_claims_lease_feeds_to_one_poller_until_stored_or_expired(store):
    now = utc(2025, 6, 1)
    store.sync_feeds([FeedCfg("one", "https://one.example/f"), FeedCfg("two", "https://two.example/f")], now)
    first = store.claim_due_feeds(now, "a", 300, limit=10)
    assert [f.name for f in first] == ["one", "two"]
    assert store.claim_due_feeds(now, "b", 300, limit=10) == []
    store.save_poll(first[0].id, [], outcome(first[0], now))           # storing releases the lease
    later = now + timedelta(seconds=301)                 # "two"'s lease has expired
    assert [f.name for f in store.claim_due_feeds(later, "b", 300, limit=10)] == ["two"]
    store.release_claims("b")
    assert [f.name for f in store.claim_due_feeds(later, "c", 300, limit=1)] == ["two"]


def test_the_store_url_is_checked_without_opening_the_store(tmp_path):
    from monitor.storage.store import check_store_url

    with pytest.raises(StorageError, match="driver is missing"):
        check_store_url("mysql+nodriver://x/y")
    with pytest.raises(StorageError, match="not a database URL"):
        check_store_url("::nonsense::")
    check_store_url(f"sqlite:///{tmp_path / 'new' / 'm.db'}")
    assert not (tmp_path / "new").exists()                 # nothing made by a check


def test_bad_url_and_missing_driver_are_clear(tmp_path):
    with pytest.raises(StorageError, match="not a database URL"):
        open_store("::nonsense::")
    with pytest.raises(StorageError, match="driver is missing"):
        open_store("postgresql+nosuchdriver://u@localhost/db")


def test_several_services_starting_at_once_on_an_empty_store_create_it_once(store_url, tmp_path):
    """Schema creation is serialised across processes (PostgreSQL: an advisory lock;
    SQLite: an immediate transaction); every process starts. (`monitor poll`, which creates
    the store, of a feed on a closed local port: `feeds` no longer creates one.)"""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as probe:          # a port nothing listens on: the fetch is refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = tmp_path / "monitor.toml"
    config.write_text(f'[store]\nurl = "{store_url}"\n'
                      '[poll]\ncontact_url = "http://127.0.0.1/contact"\nparse_processes = 0\n'
                      f'[[feeds]]\nname = "wire"\nurl = "http://127.0.0.1:{port}/rss"\n',
                      encoding="utf-8")
    root = Path(__file__).resolve().parents[1]
    procs = [subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "poll"],
                              cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(5)]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    for code, out, err in results:
        assert code == 0 and "Traceback" not in err, (code, err)
        assert "total: " in out
    store = open_store(store_url)
    try:
        assert sql(store, "SELECT count(*), max(version) FROM schema_version") == [(1, LATEST)]
        assert sql(store, "SELECT count(*) FROM feed") == [(1,)]
    finally:
        store.close()


def _open_at(url, start, results):
    import time as _time

    while _time.time() < start:
        pass
    try:
        store = open_store(url)
        store.close()
        results.put("")
    except Exception as exc:                      # reported to the parent, asserted there
        results.put(f"{type(exc).__name__}: {exc}")


def test_new_sqlite_store_opened_by_many_processes_in_the_same_instant(tmp_path, sqlite_only):
    """Converting a new file to WAL does not wait for SQLite's busy handler: without the
    retry in the store's connect hook, 21 of 480 opens (8 processes x 60 new files) failed
    with "database is locked", and this test failed in each of 4 runs."""
    import multiprocessing
    import time as _time

    ctx = multiprocessing.get_context("fork")
    open_store(f"sqlite:///{tmp_path}/warm.db").close()  # the children fork with all imports done
    errors = []
    for round_ in range(10):
        url = f"sqlite:///{tmp_path}/r{round_}.db"
        results = ctx.Queue()
        start = _time.time() + 0.3
        procs = [ctx.Process(target=_open_at, args=(url, start, results)) for _ in range(6)]
        for p in procs:
            p.start()
        errors += [e for e in (results.get(timeout=60) for _ in procs) if e]
        for p in procs:
            p.join(30)
    assert errors == []


def test_a_link_moved_under_the_same_guid_and_title_updates_the_article(store):
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    old = ParsedArticle(key="g:7|http://x.example/7", guid="7", url="http://x.example/7",
                        title="Gallium curbs", text="Beijing adds licences.", published=None,
                        language="en", content_hash="h1")
    store.save_poll(feed.id, [ArticleWrite(old, "en", None)], outcome(feed, utc(2025, 6, 1)))
    moved = ParsedArticle(**{**old.__dict__, "key": "g:7|https://x.example/7",
                             "url": "https://x.example/7"})
    other = ParsedArticle(**{**old.__dict__, "key": "g:7|https://x.example/8",     # guid reused
                             "url": "https://x.example/8", "title": "Another story"})
    new, updated = store.save_poll(feed.id, [ArticleWrite(moved, "en", None),
                                             ArticleWrite(other, "en", None)],
                                   outcome(feed, utc(2025, 6, 2)))
    assert (new, updated) == (1, 1)
    assert sorted(sql(store, "select id, url from article")) == [
        (1, "https://x.example/7"), (2, "https://x.example/8")]
    daily = ParsedArticle(**{**old.__dict__, "key": "g:7|https://x.example/7/day-2",
                             "url": "https://x.example/7/day-2", "text": "Next day."})
    new, updated = store.save_poll(feed.id, [ArticleWrite(daily, "en", None)],    # another path:
                                   outcome(feed, utc(2025, 6, 3)))                 # a new story
    assert (new, updated) == (1, 0)


def test_stories_under_a_reused_key_are_found_by_their_titles_whichever_key_they_have(store):
    """Stories of one guid and link are known by their titles: the row an older version
    stored under the plain key moves to its story's key; a story alone in the document
    (plain key) is its row under the titled key; another title under the plain key is a
    new story once the feed is known to reuse that key, an edit otherwise."""
    from dataclasses import replace

    from monitor.parse import titled_key

    feed = due_feeds(store, utc(2025, 1, 1))[0]
    plain = "g:b|https://x.example/b"

    def story(title, shared=True):
        a = article(key=plain, title=title, text=f"{title} text.")
        return replace(a, key=titled_key(plain, title), shared_key=plain) if shared else a

    def save(*articles, day=2):
        return store.save_poll(feed.id, [ArticleWrite(a, "en", None) for a in articles],
                               outcome(feed, utc(2025, 6, day)))

    def rows():
        return sorted(sql(store, "select id, key, title from article"))

    save(story("A", shared=False), story("B"), day=1)                   # the older keying
    assert store.known_articles(feed.id, [story("N"), story("A"), story("B")]) == {
        story("A").key: "", story("B").key: story("B").content_hash}    # A's row to move
    assert save(story("N"), story("A")) == (1, 1)                      # B: known, not written
    assert rows() == [(1, story("A").key, "A"), (2, story("B").key, "B"), (3, story("N").key, "N")]
    alone = story("B", shared=False)                                    # the others gone
    assert store.known_articles(feed.id, [alone]) == {plain: alone.content_hash}
    assert save(replace(alone, text="B, edited.", content_hash="h-B2"), day=3) == (0, 1)
    assert save(story("D", shared=False), day=4) == (1, 0)              # alone, but new
    assert rows()[1:] == [(2, story("B").key, "B"), (3, story("N").key, "N"), (4, plain, "D")]
    assert save(story("E", shared=False), day=5) == (1, 0)              # plain taken by D
    assert rows()[-1] == (5, story("E").key, "E")
    assert sql(store, "select text from article where id = 2") == [("B, edited.",)]


def test_a_title_edited_under_a_key_no_other_story_shares_updates_the_article(store):
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    store.save_poll(feed.id, [ArticleWrite(article(), "en", None)], outcome(feed, utc(2025, 6, 1)))
    edited = article(title="Gallium curbs widened")
    assert store.known_articles(feed.id, [edited]) == {"k1": "h-Gallium curbs-Beijing adds licences."}
    assert store.save_poll(feed.id, [ArticleWrite(edited, "en", None)],
                           outcome(feed, utc(2025, 6, 2))) == (0, 1)
    assert sql(store, "select key, title from article") == [("k1", "Gallium curbs widened")]


def test_a_feed_whose_url_changed_keeps_its_row_and_articles(store):
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    store.save_poll(feed.id, [ArticleWrite(article(), "en", None)], outcome(feed, utc(2025, 6, 1)))
    store.sync_feeds([FeedCfg("one", "https://one.example/f?v=2")], utc(2025, 6, 2))
    assert sql(store, "select id, url, etag, active from feed") == [
        (feed.id, "https://one.example/f?v=2", None, 1)]
    again = due_feeds(store, utc(2025, 6, 2))[0]
    assert again.id == feed.id and again.etag is None
    assert store.known_articles(feed.id, [article()]) == {"k1": "h-Gallium curbs-Beijing adds licences."}


def test_storing_releases_only_the_storers_own_lease(store):
    """A poller whose lease ran out while it fetched, and which another poller then took,
    stores its poll without clearing the other's lease."""
    now = utc(2025, 6, 1)
    [feed] = store.claim_due_feeds(now, "a", 5, limit=10)
    later = now + timedelta(seconds=6)                    # "a"'s lease ran out; "b" takes it
    [taken] = store.claim_due_feeds(later, "b", 300, limit=10)
    store.save_poll(feed.id, [ArticleWrite(article(), "en", None)], outcome(feed, later), "a")
    assert sql(store, "select claimed_by from feed") == [("b",)]
    store.save_poll(taken.id, [], outcome(taken, later), "b")
    assert sql(store, "select claimed_by, claimed_until from feed") == [(None, None)]


def test_a_store_in_a_folder_it_cannot_write_is_named_as_such(tmp_path, monkeypatch):
    """SQLite in WAL mode cannot open a store whose folder it cannot write (a read-only
    mount), even to read: "unable to open database file" alone sent people to the file's
    permissions. The message says what to do. (os.access stands in for the read-only
    folder: the tests may run as root, for whom permissions do not bind.)"""
    from sqlalchemy.exc import OperationalError

    import monitor.storage.store as store_module

    path = tmp_path / "m.db"
    open_store(f"sqlite:///{path}").close()
    engine = store_module._make_engine(f"sqlite:///{path}", 1.0)
    error = OperationalError("connect", {}, Exception("unable to open database file"))
    assert store_module._hint(error, engine) == ""            # the folder is writable
    monkeypatch.setattr(store_module.os, "access", lambda *a: False)
    hint = store_module._hint(error, engine)
    assert f"the folder {tmp_path} is not writable" in hint and "-wal and -shm" in hint
    engine.dispose()


def test_a_pool_timeout_is_named_without_sqlalchemys_web_link():
    """SQLAlchemy's own errors (no driver error under them: a pool's timeout when every
    connection is taken) append their web link after a space, not on a line of its own:
    it stayed in the message reason() promises to give without it."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import SQLAlchemyError
    from sqlalchemy.pool import QueuePool

    from monitor.storage.store import reason

    engine = create_engine("sqlite://", poolclass=QueuePool, pool_size=1, max_overflow=0, pool_timeout=0.05)
    held = engine.connect()
    try:
        with pytest.raises(SQLAlchemyError) as caught:
            engine.connect()
    finally:
        held.close()
        engine.dispose()
    said = reason(caught.value)
    assert said.startswith("QueuePool limit of size 1 overflow 0 reached")
    assert "sqlalche.me" not in said and "Background" not in said


def test_reclassify_leaves_an_article_a_poll_rewrote_between_its_read_and_its_write(store):
    """`monitor reclassify` reads a batch, analyses it, then writes the results in another
    transaction. A poll that rewrites one of those articles in between (new text, and the
    verdict, countries and minerals of the new text) wins: the analysis of the old text is
    not written over it, and is counted as skipped, not as a change."""
    from monitor.rerun import rerun
    from monitor.types import Analysis

    feed = due_feeds(store, utc(2025, 1, 1))[0]
    gallium = Verdict(True, ("critical-minerals",), 0.9, ('keyword "gallium"',))
    store.save_poll(feed.id, [
        ArticleWrite(article("k1"), "en", gallium, (Mention("CN", 1),), (Mention("gallium", 1),)),
        ArticleWrite(article("k2", "Gallium plant opens", "A plant in Japan."), "en", gallium,
                     (Mention("JP", 1),), (Mention("gallium", 1),))],
        outcome(feed, utc(2025, 1, 1)))

    class PollMeanwhile:
        """Analyses the batch as read, while a poll rewrites k1 as a football story."""

        def analyse(self, docs):
            football = ArticleWrite(article("k1", "Cup final tonight", "United face City at Wembley."),
                                    "en", Verdict(False, (), 0.02, ()), (Mention("GB", 1),))
            assert store.save_poll(feed.id, [football], outcome(feed, utc(2025, 1, 2))) == (0, 1)
            assert [title for title, _, _ in docs] == ["Gallium curbs", "Gallium plant opens"]
            export = Verdict(True, ("export-controls",), 0.97, ("classifier export-controls 0.97",), {}, "m2")
            return [Analysis("en", export, (Mention("CN", 3),), (Mention("gallium", 2),)) for _ in docs]

    diff = rerun(store, PollMeanwhile(), None, write_at=utc(2025, 1, 3))
    articles = {a.title: a for a in store.review_list(include_unflagged=True)}
    football = articles["Cup final tonight"]
    assert (football.flagged, football.topics, football.countries, football.minerals,
            football.model_version) == (False, (), ("GB",), (), None)
    assert sql(store, "SELECT count(*) FROM article_country") == [(2,)]
    plant = articles["Gallium plant opens"]                 # not rewritten: reclassified
    assert (plant.flagged, plant.topics, plant.countries, plant.minerals, plant.model_version) == (
        True, ("export-controls",), ("CN",), ("gallium",), "m2")
    assert (diff.examined, diff.skipped, len(diff.topic_changes), diff.unchanged) == (2, 1, 1, 0)


def test_verdicts_given_at_once_on_one_article_leave_one_current_review(store):
    """Two analysts (or `monitor serve`'s thread pool) recording a verdict on the same
    article at the same moment: each verdict is kept, exactly one is current (the review
    list shows the article once, training learns one label), and each writer but the
    first is told it replaced an earlier verdict. PostgreSQL runs them at READ COMMITTED,
    so the store serialises verdicts per article."""
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    store.save_poll(feed.id, [ArticleWrite(article("a"), "en", None), ArticleWrite(article("b"), "en", None)],
                    outcome(feed, utc(2025, 1, 1)))
    ids = sorted(a.id for a in store.review_list(include_unflagged=True))
    writers, rounds = 6, 4
    for round_ in range(rounds):
        replaced, errors = _mark_at_once(store, writers, round_, ids)
        assert errors == []
        assert sql(store, "SELECT article_id, count(*) FROM review WHERE current GROUP BY article_id "
                          "ORDER BY article_id") == [(ids[0], 1), (ids[1], 1)]
        # each earlier current verdict was replaced exactly once
        told = sorted(i for r in replaced for i in r)
        first = 1 if round_ == 0 else 0
        assert told == sorted([ids[0]] * (writers - first) + [ids[1]] * (writers // 2 - first))
    history = sql(store, "SELECT article_id, count(*) FROM review GROUP BY article_id ORDER BY article_id")
    assert history == [(ids[0], writers * rounds), (ids[1], writers // 2 * rounds)]
    listed = [a.id for a in store.review_list(include_unflagged=True, status="relevant")]
    assert sorted(listed) == sorted(set(listed))


def _mark_at_once(store, writers, round_, ids):
    """``writers`` threads each give a verdict at the same moment: even ones on the first
    article alone, odd ones on both (listed in the other order). (replaced lists, errors)"""
    import threading

    start, replaced, errors = threading.Barrier(writers), [], []

    def mark(n):
        chosen = {ids[0]: ()} if n % 2 == 0 else {ids[1]: (), ids[0]: ()}
        verdict = "relevant" if n % 2 else "irrelevant"
        try:
            start.wait()
            replaced.append(store.add_reviews(chosen, verdict, f"r{round_} w{n}", f"analyst{n}",
                                              utc(2025, 2, 1, round_, n)))
        except Exception as exc:            # reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=mark, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return replaced, errors


def test_an_id_past_the_columns_integer_is_unknown_not_an_error(store):
    """article.id is PostgreSQL's integer: an id from 2**31 up was a NumericValueOutOfRange
    error (`review show`, `review mark`, HTTP 500 in `monitor serve`); it is an unknown
    id, as one past 2**63 already was."""
    for article_id in (2**31 - 1, 2**31, 2**63 - 1, 2**63):
        assert store.review_detail(article_id) is None
        assert store.article_topics([article_id]) == {}


def test_a_search_ignores_case_in_every_alphabet_on_both_engines(store):
    """SQLite's lower() folds ASCII letters only: "änderungen" found nothing where
    PostgreSQL found "ÄNDERUNGEN" (and `review list --text`, the pages' search, both use it)."""
    [feed] = due_feeds(store, utc(2025, 1, 2))
    titles = {"de": "ÄNDERUNGEN BEI EXPORTKONTROLLEN", "fr": "ÉTATS-UNIS : CONTRÔLES",
              "pl": "Łódź: ZAKŁAD", "ru": "ГАЛЛИЙ", "x": "100% gallium", "zh": "EXPORT 稀土 新规",
              "ja": "ＲＡＲＥ レアアース", "ß": "Straßensperre vor dem Werk",
              "ss": "STRASSENSPERRE IN MÜNCHEN"}
    writes = [ArticleWrite(article(key=k, title=t, text="x"), "en", None) for k, t in titles.items()]
    store.save_poll(feed.id, writes, outcome(feed, utc(2025, 1, 1)))

    def found(text):
        return sorted(v.title for v in store.review_list(text=text, include_unflagged=True, limit=None))

    assert found("änderungen") == found("Änderungen") == [titles["de"]]
    # ß folds to "ss", which no engine's lower() does: either spelling finds both
    assert found("strassensperre") == found("Straßensperre") == sorted([titles["ß"], titles["ss"]])
    assert found("états-unis") == [titles["fr"]] and found("łódź") == [titles["pl"]]
    assert found("галлий") == [titles["ru"]] and found("gallium") == [titles["x"]]
    assert found("ó%") == [] and found("100%") == [titles["x"]]         # literal, not wildcards
    # characters without case need no folding (SQLite: no Python call per row), ASCII beside
    # them still ignores case; a full-width letter has case
    assert found("稀土") == found("export 稀土") == [titles["zh"]] and found("Export 稀土 新") == [titles["zh"]]
    assert found("ｒａｒｅ レアアース") == [titles["ja"]] and found("レアアース") == [titles["ja"]]


def test_an_ascii_search_finds_the_eszett_it_folds_into_on_sqlite(tmp_path):
    """"Straße" found "STRASSE", but "strasse" (typed without ß) did not find "Straße": an
    ASCII search went to SQLite's lower(), which leaves ß as it is."""
    from monitor.storage.reviews import _eszett_forms

    store = open_store(f"sqlite:///{tmp_path / 'monitor.db'}")
    try:
        store.sync_feeds([FeedCfg("one", "https://one.example/f")], utc(2025, 1, 1))
        [feed] = due_feeds(store, utc(2025, 1, 2))
        titles = {"de": "Straßensperre vor dem Werk", "up": "STRASSENSPERRE IN MÜNCHEN",
                  "sss": "Schloßsee gesperrt", "en": "Gallium curbs"}
        writes = [ArticleWrite(article(key=k, title=t, text="x"), "en", None) for k, t in titles.items()]
        store.save_poll(feed.id, writes, outcome(feed, utc(2025, 1, 1)))

        def found(text):
            return sorted(v.title for v in store.review_list(text=text, include_unflagged=True, limit=None))

        both = sorted([titles["de"], titles["up"]])
        assert found("strassensperre") == found("STRASSENSPERRE") == found("Straßensperre") == both
        assert found("schlosssee") == [titles["sss"]] and found("gallium") == [titles["en"]]
        assert found("100%") == [] and found("stra_sensperre") == []       # literal, no wildcard
    finally:
        store.close()
    assert _eszett_forms("sss") == ["sß", "ßs"]
    assert _eszett_forms("gross strasse") == ["gross straße", "groß strasse", "groß straße"]
    assert len(_eszett_forms("ss ss ss ss ss")) == 7            # the first three only


def test_a_search_in_characters_without_case_needs_no_folding_function():
    """On SQLite a search with letters other than ASCII called a Python function per row (~6
    times slower); Chinese, Japanese and Korean have no case to fold."""
    from sqlalchemy import create_engine, select

    from monitor.storage.reviews import _contains
    from monitor.storage.tables import ARTICLE

    with create_engine("sqlite://").connect() as conn:
        def sql(text):
            return str(select(ARTICLE.c.id).where(_contains(conn, ARTICLE.c.title, text)).compile(conn))

        assert "monitor_fold" not in sql("稀土") + sql("export 稀土") + sql("희토류") + sql("レアアース")
        assert "monitor_fold" in sql("änderungen") and "monitor_fold" in sql("ｒａｒｅ")
        # characters without case that other characters fold into still fold: a combining
        # dot ("İ" folds to "i" and one), "ʼ" ("ŉ" to "ʼn"), Cherokee capitals (the small ones
        # fold to them)
        assert all("monitor_fold" in sql(q) for q in ("\u0307", "ʼn", "Ꭰ"))


def test_an_article_flagged_by_an_edit_after_its_period_is_a_candidate_of_the_next_digest(store):
    """Stored unflagged, edited the next day into an export-controls story: its first-seen
    and publication times belong to the first version, so no later digest's period held it
    and it was never mailed, while `review list` showed it flagged."""
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    first = ArticleWrite(article(title="Ministry statement", text="A statement.",
                                 published=utc(2025, 6, 1)), "en", None)
    store.save_poll(feed.id, [first], outcome(feed, utc(2025, 6, 1)))
    verdict = Verdict(flagged=True, topics=("export-controls",), score=0.93,
                      reasons=("classifier export-controls 0.93",), model_version="m1")
    edited = ArticleWrite(article(title="Ministry statement", text="New export controls on gallium.",
                                  published=utc(2025, 6, 1)), "en", verdict)
    assert store.save_poll(feed.id, [edited], outcome(feed, utc(2025, 6, 3, 6))) == (0, 1)
    found = store.digest_candidates(utc(2025, 6, 2, 12), utc(2025, 6, 3, 12))
    assert [a.title for a in found] == ["Ministry statement"]
    assert store.digest_candidates(utc(2025, 6, 3, 12), utc(2025, 6, 4, 12)) == []   # its own period only


def test_feeds_leased_elsewhere_leave_out_the_ones_this_poller_polled(store):
    """Two `monitor poll` at once: the second claimed the feeds again once the first was done
    with them, and the first said "3 feeds polled" and "3 feed(s) left to another poller"."""
    now = utc(2025, 6, 1)
    [held] = store.claim_due_feeds(now, "other:1:x", 3600, 5, include_all=True)
    assert store.leased_elsewhere(now, "me:2:y") == 1
    assert store.leased_elsewhere(now, "me:2:y", [held.url]) == 0       # polled by me before
    assert store.leased_elsewhere(now, "me:2:y", ["https://elsewhere.example/f"]) == 1


def test_a_version_6_store_gains_the_review_text_hash_and_keeps_its_verdicts_in_training(store, url):
    """Schema version 7 records the text a verdict was given on; a verdict given before it
    (no hash) is used as before, one given after on a text rewritten since is left out."""
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    store.save_poll(feed.id, [ArticleWrite(article(), "en", None)], outcome(feed, utc(2025, 1, 1)))
    [view] = store.review_list(include_unflagged=True, limit=None)
    store.add_reviews({view.id: ("critical-minerals",)}, "relevant", None, "ana", utc(2025, 1, 2))
    _as_version_6(store)
    store.close()
    again = open_store(url)
    try:
        assert max(v for (v,) in sql(again, "SELECT version FROM schema_version")) == 7
        records, changed = again.reviews_for_training()
        assert [r["topics"] for r in records] == [["critical-minerals"]] and changed == []
        edited = ArticleWrite(article(text="Beijing adds licences for germanium too."), "en", None)
        again.save_poll(feed.id, [edited], outcome(feed, utc(2025, 1, 3)))
        assert len(again.reviews_for_training()[0]) == 1           # judged before v7: kept
        again.add_reviews({view.id: ("export-controls",)}, "relevant", None, "ana", utc(2025, 1, 4))
        again.save_poll(feed.id, [ArticleWrite(article(text="Rewritten again."), "en", None)],
                        outcome(feed, utc(2025, 1, 5)))
        assert again.reviews_for_training() == ([], [view.id])
    finally:
        again.close()


def _as_version_6(store) -> None:
    """The store as schema version 6 left it: no review.content_hash nor
    article.flagged_by_edit_at (and no views, which every migration makes again)."""
    from sqlalchemy import text

    with store.engine.begin() as conn:
        for statement in ("DROP VIEW flagged", "DROP VIEW feed_health",
                          "ALTER TABLE review DROP COLUMN content_hash",
                          "ALTER TABLE article DROP COLUMN flagged_by_edit_at",
                          "UPDATE schema_version SET version = 6"):
            conn.execute(text(statement))


def test_an_edit_of_an_article_flagged_already_brings_no_copy_back_into_a_digest(store):
    """Candidates had taken every article edited in the period: a copy of a story mailed the
    day before, left out as sent, came back when its feed added a sentence."""
    feed = due_feeds(store, utc(2025, 1, 1))[0]
    verdict = Verdict(flagged=True, topics=("export-controls",), score=0.93,
                      reasons=("classifier export-controls 0.93",), model_version="m1")
    first = ArticleWrite(article(title="Gallium curbs", text="Licences.", published=utc(2025, 6, 1)),
                         "en", verdict)
    store.save_poll(feed.id, [first], outcome(feed, utc(2025, 6, 1)))
    edited = ArticleWrite(article(title="Gallium curbs", text="Licences, and a new sentence.",
                                  published=utc(2025, 6, 1)), "en", verdict)
    assert store.save_poll(feed.id, [edited], outcome(feed, utc(2025, 6, 3, 6))) == (0, 1)
    assert store.digest_candidates(utc(2025, 6, 2, 12), utc(2025, 6, 3, 12)) == []


def test_a_write_the_database_refuses_is_named_without_its_sql_or_parameters(tmp_path):
    """A store the database will not write (here SQLite opened read-only; a PostgreSQL
    role without INSERT is the same) gave SQLAlchemy's whole text: the statement, its
    parameters — an article's whole text, the claimant — and a web link, in every log
    line. The error names the store and what the database said, once. Whether it was a
    lock was read from that text too: an article saying "blocked" made the refusal a
    "lock by another writer", and the operator looked for one."""
    path = tmp_path / "m.db"
    writable = open_store(f"sqlite:///{path}")
    writable.sync_feeds([FeedCfg("one", "https://one.example/f")], utc(2025, 1, 1))
    feed = due_feeds(writable, utc(2025, 1, 1))[0]
    writable.close()
    readonly = open_store(f"sqlite:///file:{path}?mode=ro&uri=true")
    words = "Beijing blocked gallium exports. " + "the whole text of an article " * 20
    with pytest.raises(StorageError) as caught:
        readonly.save_poll(feed.id, [ArticleWrite(article("k1", "Gallium", words), "en",
                                                  Verdict(False, (), 0.1, ()), (), ())],
                           outcome(feed, utc(2025, 1, 1)))
    readonly.close()
    message = str(caught.value)
    assert "attempt to write a readonly database (sqlite3.OperationalError)" in message
    assert "SQL" not in message and "whole text" not in message and "sqlalche.me" not in message
    assert message.startswith("store sqlite:///") and "\n" not in message and "locked" not in message


def test_a_database_error_is_named_by_its_first_line_only():
    """PostgreSQL's DETAIL lines can hold a row's values ("Failing row contains (…)": an
    article's whole text), as SQLAlchemy's text holds the parameters."""
    from sqlalchemy.exc import IntegrityError

    from monitor.storage.store import reason

    class CheckViolation(Exception):
        pass

    error = IntegrityError("INSERT …", {}, CheckViolation(
        'new row for relation "article" violates check constraint "x"\n'
        "DETAIL:  Failing row contains (7, the whole text of an article).\n"))
    said = reason(error)
    assert said.startswith('new row for relation "article" violates check constraint "x" (')
    assert "whole text" not in said and "DETAIL" not in said


def test_a_postgresql_deadlock_is_not_called_a_lock_and_shows_its_first_line_only():
    """PostgreSQL's deadlock says "blocked by process …" in its DETAIL: the store's error
    said "locked by another writer (waited for the busy timeout)" (SQLite's busy timeout,
    the wrong remedy) and printed every DETAIL, HINT and CONTEXT line of it."""
    import psycopg.errors
    from sqlalchemy.exc import OperationalError

    from monitor.storage.store import _storage_error

    said = ("deadlock detected\nDETAIL:  Process 71 waits for ShareLock on transaction 9; "
            "blocked by process 72.\nHINT:  See server log for query details.")
    exc = OperationalError("UPDATE article SET text = %(text)s", {"text": "a whole text"},
                           psycopg.errors.DeadlockDetected(said))
    message = str(_storage_error(exc, "postgresql://monitor:secret@db/monitor"))
    assert "locked" not in message and "\n" not in message and "secret" not in message
    assert message.endswith("deadlock detected (psycopg.DeadlockDetected)"), message
    sqlite = OperationalError("INSERT", {}, sqlite3.OperationalError("database is locked"))
    assert "is locked by another writer (waited for the busy timeout): database is locked" in str(
        _storage_error(sqlite, "sqlite:///m.db"))
