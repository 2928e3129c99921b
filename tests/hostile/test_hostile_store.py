"""Outside the feeds: the store (issue 8, cases 12 and 13). A locked SQLite store (an
analyst's long write transaction in ``sqlite3``) and ``kill -9`` in the middle of a
cycle, repeatedly. SQLite only: both are about SQLite's locking and its file on disk.

tests/test_poll.py::test_locked_store_loses_nothing_and_retries and
tests/test_service.py::test_missed_digest_sent_once_and_kill_9_loses_and_repeats_nothing
cover one lock and one kill of `monitor run`; these add a lock the poller outwaits, a
lock on a store that already holds articles, and three kills of `monitor poll` at
different moments followed by polls of the *due* feeds only (so a feed whose state was
written without its articles would never be fetched again, and the count would show it).
"""

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from hostile_kit import ROOT, Clock, db_rows, duplicates, rss, stories
from storeview import count_articles, due_feeds


@pytest.fixture
def store_url(tmp_path):
    """SQLite only (overrides the conftest fixture that also runs PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'monitor.db'}"


def lock_store(db, seconds=None):
    """An analyst's write transaction (BEGIN IMMEDIATE) on ``db``; released after
    ``seconds`` in a thread, or by calling the returned function."""
    conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    done = threading.Event()

    def release():
        if not done.is_set():
            done.set()
            conn.execute("ROLLBACK")
            conn.close()
    if seconds is not None:
        threading.Timer(seconds, release).start()
    return release


def test_12_store_locked_briefly_the_poller_waits_within_its_busy_timeout(feed_server, make_config, tmp_path):
    from monitor.pipeline import Poller
    from monitor.service import open_configured_store

    feeds = [(n, feed_server.add(f"/{n}", rss(stories(n, 3)))) for n in ("a", "b")]
    config = make_config(feeds, store={"busy_timeout_seconds": 10})
    clock = Clock()
    with open_configured_store(config, clock()) as store:
        lock_store(tmp_path / "monitor.db", seconds=1.5)
        started = time.monotonic()
        report = Poller(store, config, clock=clock).run_cycle(include_all=True)
        waited = time.monotonic() - started
        assert [(f.status, f.new) for f in report.feeds] == [("ok", 3), ("ok", 3)], report.feeds
        assert waited >= 1.0 and count_articles(store) == 6


def test_12_store_locked_past_busy_timeout_retries_next_cycle_and_loses_nothing(
        feed_server, make_config, tmp_path):
    from monitor.exceptions import StorageError
    from monitor.pipeline import Poller
    from monitor.service import open_configured_store

    urls = {n: feed_server.add(f"/{n}", rss(stories(n, 3))) for n in ("a", "b")}
    config = make_config(list(urls.items()), store={"busy_timeout_seconds": 0.5})
    clock = Clock()
    with open_configured_store(config, clock()) as store:
        Poller(store, config, clock=clock).run_cycle()
        assert count_articles(store) == 6
        for n in urls:                                       # two new stories on each feed
            feed_server.add(f"/{n}", rss(stories(n, 5)))
        clock.advance(minutes=61)
        release = lock_store(tmp_path / "monitor.db")
        try:                                     # the cycle cannot even claim its feeds
            with pytest.raises(StorageError, match="locked by another writer"):
                Poller(store, config, clock=clock).run_cycle()
        finally:
            release()
        assert count_articles(store) == 6                   # nothing lost
        assert {s.name for s in due_feeds(store, clock())} == set(urls)   # retried next cycle
        report = Poller(store, config, clock=clock).run_cycle()
        assert [(x.status, x.new) for x in report.feeds] == [("ok", 2), ("ok", 2)]
        assert count_articles(store) == 10 and due_feeds(store, clock()) == []
    assert duplicates(tmp_path / "monitor.db") == 0


def write_config(path, db, feeds, lease_seconds=5):
    lines = [f'[store]\nurl = "sqlite:///{db}"\n',
             '[poll]\ncontact_url = "http://127.0.0.1/c"\nconnect_timeout_seconds = 3\n'
             f'read_timeout_seconds = 5\nlease_seconds = {lease_seconds}\n',
             f'[classifier]\nmodel = "{path.parent / "no-model.skops"}"\n']
    lines += [f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds]
    path.write_text("\n".join(lines), encoding="utf-8")


def monitor(config, *args):
    return subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT)


def count(db):
    try:
        return db_rows(db, "select count(*) from article")[0][0]
    except sqlite3.OperationalError:          # not created yet
        return 0


def test_13_kill_9_during_cycles_then_due_polls_lose_and_duplicate_nothing(feed_server, tmp_path):
    """Three `monitor poll` processes killed (-9) mid-cycle, each as soon as it stored
    some articles; then, once the dead processes' feed leases expired (lease_seconds = 5),
    polls of the due feeds only. A feed leased by a killed process is not polled by the
    next process until its lease expires (poll.lease_seconds; 300 s by default)."""
    feeds = [(f"feed {i}", feed_server.add(f"/f{i}", rss(stories(f"f{i}", 3)), delay=0.1))
             for i in range(40)]
    db, config = tmp_path / "m.db", tmp_path / "monitor.toml"
    write_config(config, db, feeds)
    kills = 0
    for extra in (3, 6, 9):                   # kill after this many more articles were stored
        before = count(db)
        proc = monitor(config, "poll")
        deadline = time.monotonic() + 60
        while count(db) < before + extra and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    stored = count(db)
    assert kills >= 2 and 0 < stored < 120
    time.sleep(5.5)                           # the killed processes' leases expire
    for _ in range(2):                        # the due feeds only; the second run finds none
        proc = monitor(config, "poll")
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()[-2000:]
    assert count(db) == 120 and duplicates(db) == 0
    per_feed = db_rows(db, "select f.name, count(a.id) from feed f left join article a on a.feed_id = f.id "
                           "group by f.id")
    assert sorted(n for _, n in per_feed) == [3] * 40
    assert db_rows(db, "select count(*) from feed where last_error is not null")[0][0] == 0
