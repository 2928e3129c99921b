"""The poller end to end: a real HTTP server on 127.0.0.1, a real SQLite file."""

import logging
import sqlite3
import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from monitor.pipeline import Poller
from monitor.service import open_configured_store

from conftest import utc
from feedserver import FeedServer
from smtpserver import free_port
from storeview import count_articles, due_feeds


START = utc(2025, 6, 5, 8, 0)


class Clock:
    def __init__(self, start=START):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


@pytest.fixture
def run(make_config):
    """run(feeds, clock=..., include_all=True) → (report, store), store kept open."""
    opened = []

    def go(feeds, clock=None, include_all=True, **sections):
        config = make_config(feeds, **sections)
        clock = clock or Clock()
        store = open_configured_store(config, clock())
        opened.append(store)
        report = Poller(store, config, clock=clock).run_cycle(include_all=include_all)
        return report, store
    yield go
    for store in opened:
        store.close()


def by_name(report):
    return {f.name: f for f in report.feeds}


def test_first_poll_stores_then_304_stores_nothing(feed_server, feed_file, run):
    url = feed_server.add("/rss", feed_file("rss2.xml"))
    report, store = run([("rss", url)])
    assert by_name(report)["rss"].new == 3 and count_articles(store) == 3
    report, store = run([("rss", url)])
    f = by_name(report)["rss"]
    assert (f.status, f.http_status, f.new) == ("not-modified", 304, 0)
    assert count_articles(store) == 3
    second = feed_server.requests[-1][1]
    assert second.get("If-None-Match") and second.get("If-Modified-Since")


def test_changed_feed_stores_only_new_entries_and_updates_changed(feed_server, feed_file, run):
    body = feed_file("rss2.xml").decode()
    url = feed_server.add("/rss", body)
    run([("rss", url)])
    changed = body.replace("Spot gold fell 0.4%", "Spot gold fell 0.6%").replace(
        "<item>", """<item><title>Cobalt price jumps after export quota</title>
        <link>https://metals-desk.example/news/cobalt</link><guid>md-1004</guid>
        <description>Quota cut in Kinshasa.</description></item><item>""", 1)
    feed_server.add("/rss", changed)
    report, store = run([("rss", url)])
    f = by_name(report)["rss"]
    assert (f.new, f.updated) == (1, 1)
    assert count_articles(store) == 4


def _home_page_feed(*titles):
    items = "".join(f"<item><title>{t}</title><link>https://desk.example/</link>"
                    f"<description>{t}: the story in one line.</description></item>" for t in titles)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Desk</title>"
            f"<link>https://desk.example/</link>{items}</channel></rss>")


def test_items_that_all_link_to_the_home_page_are_each_their_own_article(feed_server, run):
    """Without guids, a link every item shares names no story: each is kept, and a new
    story on top overwrites none of the stored ones."""
    url = feed_server.add("/desk", _home_page_feed("Gallium export licences tightened",
                                                   "Cobalt quota cut", "Lithium mine opens"))
    report, store = run([("desk", url)])
    assert by_name(report)["desk"].new == 3 and count_articles(store) == 3
    feed_server.add("/desk", _home_page_feed("Tungsten export licences", "Gallium export licences tightened",
                                             "Cobalt quota cut", "Lithium mine opens"))
    report, store = run([("desk", url)])
    f = by_name(report)["desk"]
    assert (f.new, f.updated) == (1, 0) and count_articles(store) == 4


BRIEFING = "http://news.example.com/briefing"
STORY_A = ("Gallium export licences tightened", "China now requires a licence for each gallium shipment.")
STORY_B = ("Cobalt quota cut in Kinshasa", "The DRC halves its cobalt export quota for the year.")
STORY_N = ("Lithium mine opens in Nevada", "Thacker Pass ships its first lithium carbonate.")


def _briefing_feed(*stories):
    """Every item under one guid and one link (a briefing's page)."""
    items = "".join(f"<item><title>{t}</title><link>{BRIEFING}</link><guid>{BRIEFING}</guid>"
                    f"<description>{d}</description></item>" for t, d in stories)
    return (f"<?xml version='1.0'?><rss version='2.0'><channel><title>Briefing</title>"
            f"<link>http://news.example.com/</link>{items}</channel></rss>")


def _flag_all(articles, feed):
    from monitor.types import ArticleWrite, Verdict

    return [ArticleWrite(a, a.language or "en", Verdict(True, ("critical-minerals",), 0.9, ("test",)))
            for a in articles]


def _stored(store):
    from sqlalchemy import select

    from monitor.storage.tables import ARTICLE

    with store.engine.connect() as conn:
        return {r.title: r for r in conn.execute(select(ARTICLE.c.id, ARTICLE.c.key, ARTICLE.c.title,
                                                        ARTICLE.c.text))}


def _mailed(outbox, before):
    """The titles the digest mails written to ``outbox`` since ``before`` (its files then) carry."""
    from email import message_from_bytes, policy

    text = "".join(message_from_bytes(p.read_bytes(), policy=policy.default).get_body(("plain",)).get_content()
                   for p in sorted(set(outbox.glob("*.eml")) - before))
    return [t for t, _ in (STORY_A, STORY_B, STORY_N) for _ in range(text.count(t))]


def test_stories_under_one_reused_guid_and_link_keep_their_rows_wherever_they_stand(
        feed_server, make_config, tmp_path):
    """A feed that gives every item one guid and link: a story is known by its title, not
    by where it stands. A story listed above the stored ones overwrites none of them (and
    is mailed), the stored ones are neither stored nor mailed again, and a new order
    rewrites nothing."""
    from monitor.delivery import DigestJob

    url = feed_server.add("/briefing", _briefing_feed(STORY_A, STORY_B))
    config = make_config([("briefing", url)])
    clock, outbox, mailed = Clock(), tmp_path / "outbox", []
    store = open_configured_store(config, clock())
    try:
        for day, stories in enumerate([(STORY_A, STORY_B), (STORY_N, STORY_A, STORY_B),
                                       (STORY_B, STORY_A)]):
            feed_server.add("/briefing", _briefing_feed(*stories))
            report = Poller(store, config, analyze=_flag_all, clock=clock).run_cycle(include_all=True)
            f = by_name(report)["briefing"]
            assert (f.status, f.new, f.updated) == ("ok", [2, 1, 0][day], 0), day
            before = set(outbox.glob("*.eml"))
            clock.advance(hours=1)
            DigestJob(store, config, sleep=lambda s: None).run(clock())
            mailed += _mailed(outbox, before)
            clock.advance(days=1, hours=-1)
        rows = _stored(store)
        assert {t: r.text for t, r in rows.items()} == dict([STORY_A, STORY_B, STORY_N])
        assert sorted(mailed) == sorted([STORY_A[0], STORY_B[0], STORY_N[0]])  # each once
    finally:
        store.close()


def test_a_story_stored_under_a_reused_key_by_an_older_version_is_moved_not_copied(
        feed_server, make_config):
    """An older version stored the first story of a reused guid and link under the plain
    key: that row is the story, and takes its title's key; a new story on top is stored
    beside it, not over it."""
    from dataclasses import replace

    from monitor.feedstate import feed_outcome
    from monitor.parse import read_feed
    from monitor.types import ArticleWrite, FeedOutcome

    url = feed_server.add("/briefing", _briefing_feed(STORY_N, STORY_A, STORY_B))
    config = make_config([("briefing", url)])
    store = open_configured_store(config, START)
    try:
        [feed] = due_feeds(store, START)
        _, a, b = read_feed(_briefing_feed(STORY_N, STORY_A, STORY_B).encode(), {}, url).articles
        plain = read_feed(_briefing_feed(STORY_A).encode(), {}, url).articles[0].key
        assert a.key != plain and a.key.startswith(plain + "|t:")
        old = [ArticleWrite(replace(a, key=plain), "en", None), ArticleWrite(b, "en", None)]
        done = FeedOutcome(polled_at=START, next_check_at=START, status=200)
        store.save_poll(feed.id, old, feed_outcome(feed, done, new=True))
        before = _stored(store)
        report = Poller(store, config, clock=Clock(START + timedelta(days=1))).run_cycle(include_all=True)
        f = by_name(report)["briefing"]
        assert (f.new, f.updated) == (1, 1)                  # N; A's row moved to its key
        rows = _stored(store)
        assert {t: r.text for t, r in rows.items()} == dict([STORY_A, STORY_B, STORY_N])
        assert rows[STORY_A[0]].id == before[STORY_A[0]].id and rows[STORY_A[0]].key == a.key
        assert rows[STORY_B[0]] == before[STORY_B[0]]
        feed_server.add("/briefing", _briefing_feed(STORY_B, STORY_N, STORY_A))
        report = Poller(store, config, clock=Clock(START + timedelta(days=2))).run_cycle(include_all=True)
        assert (by_name(report)["briefing"].new, by_name(report)["briefing"].updated) == (0, 0)
        assert _stored(store) == rows
    finally:
        store.close()


def test_all_formats_and_gzip(feed_server, feed_file, run):
    feeds = [(n, feed_server.add(f"/{n}", feed_file(f"{n}.xml"), gzip=(n == "atom")))
             for n in ("rss2", "atom", "rdf", "latin1", "xmlbase", "quirks")]
    feed_server.routes["/latin1"].content_type = "application/xml"
    report, store = run(feeds)
    counts = {f.name: f.new for f in report.feeds}
    assert counts == {"rss2": 3, "atom": 2, "rdf": 2, "latin1": 1, "xmlbase": 2, "quirks": 3}
    assert all(f.status == "ok" for f in report.feeds)
    assert any(h.get("Accept-Encoding", "").startswith("gzip") for _, h in feed_server.requests)


def test_429_retry_after_is_a_floor_for_the_next_check(feed_server, run):
    url = feed_server.add("/busy", b"slow down", status=429, headers={"Retry-After": "7200"},
                          content_type="text/plain")
    clock = Clock()
    report, store = run([("busy", url)], clock=clock)
    f = by_name(report)["busy"]
    assert f.status == "error" and f.http_status == 429 and "Retry-After 2 h" in f.error
    health = store.feed_health(clock())[0]
    assert health.next_check_at == clock() + timedelta(hours=2)
    assert health.error_count == 1 and "429" in health.last_error
    assert due_feeds(store, clock() + timedelta(hours=1)) == []


def test_500_backs_off_exponentially_and_success_resets(feed_server, feed_file, run):
    url = feed_server.add("/flaky", b"oops", status=500, content_type="text/plain")
    clock = Clock()
    for expected in (1, 2, 3):
        report, store = run([("flaky", url)], clock=clock)
        h = store.feed_health(clock())[0]
        assert h.error_count == expected
        assert h.next_check_at == clock() + timedelta(minutes=60 * 2 ** (expected - 1))
    assert h.health == "broken"
    feed_server.add("/flaky", feed_file("rss2.xml"))
    report, store = run([("flaky", url)], clock=clock)
    h = store.feed_health(clock())[0]
    assert (h.error_count, h.last_error, h.health) == (0, None, "ok")


def test_backoff_is_capped_at_a_day(feed_server, run):
    url = feed_server.add("/down", b"", status=503, content_type="text/plain")
    clock = Clock()
    for _ in range(8):
        report, store = run([("down", url)], clock=clock)
    h = store.feed_health(clock())[0]
    assert h.next_check_at - clock() == timedelta(hours=24)


def test_a_server_never_reached_is_tried_within_the_hour_while_one_that_answers_backs_off(
        feed_server, run):
    """This machine offline for hours (every feed "cannot connect"): the feeds had backed
    off to a day, so once the network returned they waited up to 24 h, and busy feeds
    dropped items meanwhile. A refused connection or unresolved name costs the server
    nothing: such a feed is tried again within the hour. A server that answers 503 still
    backs off to the day."""
    down = feed_server.add("/down", b"", status=503, content_type="text/plain")
    refused = f"http://127.0.0.1:{free_port()}/feed"
    clock = Clock()
    for _ in range(8):
        report, store = run([("refused", refused), ("down", down)], clock=clock)
        clock.advance(days=1)
    clock.advance(days=-1)
    health = {h.name: h for h in store.feed_health(clock())}
    assert health["refused"].error_count == 8 and health["refused"].health == "broken"
    assert health["refused"].next_check_at - clock() == timedelta(hours=1)
    assert health["down"].next_check_at - clock() == timedelta(hours=24)


def test_timeout_oversized_html_and_refused_are_errors_on_their_feed(feed_server, feed_file, run):
    ok = feed_server.add("/ok", feed_file("rss2.xml"))
    slow = feed_server.add("/slow", feed_file("rss2.xml"), delay=8)
    big = feed_server.add("/big", feed_file("rss2.xml"), stream_bytes=3 * 1024 * 1024)
    html = feed_server.add("/html", feed_file("not_a_feed.html"), content_type="text/html")
    refused = "http://127.0.0.1:9/feed"
    report, store = run([("ok", ok), ("slow", slow), ("big", big), ("html", html),
                         ("refused", refused)], poll={"max_bytes": 1024 * 1024})
    f = by_name(report)
    assert f["ok"].new == 3
    assert f["slow"].status == "error" and "timed out" in f["slow"].error
    assert f["big"].status == "error" and "too-large" in f["big"].error
    assert f["html"].status == "error" and "not-a-feed" in f["html"].error
    assert f["refused"].status == "error" and "connect" in f["refused"].error
    errors = {h.name: h.last_error for h in store.feed_health(utc(2025, 6, 5, 8))}
    assert errors["ok"] is None and "timed out" in errors["slow"]
    assert count_articles(store) == 3


def test_declared_oversized_body_is_refused_before_reading(feed_server, run):
    url = feed_server.add("/huge", b"x" * 200_000)
    report, _ = run([("huge", url)], poll={"max_bytes": 100_000})
    assert "exceeds the limit" in report.feeds[0].error


def test_fifty_feeds_in_one_cycle_concurrently_at_most_two_per_host(feed_server, feed_file, run):
    active, peak, lock = [0], [0], threading.Lock()
    body = feed_file("rss2.xml")

    def handler(req):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        doc = body.replace(b"md-10", f"{req.path[1:]}-".encode())
        req._send(200, doc, "application/rss+xml")

    feeds = []
    for i in range(50):
        feed_server.add(f"/f{i}", handler=handler)
        feeds.append((f"feed {i}", feed_server.url(f"/f{i}")))
    report, store = run(feeds)
    assert len(report.feeds) == 50 and report.total("new") == 150
    assert count_articles(store) == 150
    assert peak[0] == 2          # one host (127.0.0.1): never more than per_host at once


def test_only_due_feeds_are_polled(feed_server, feed_file, run):
    url = feed_server.add("/rss", feed_file("rss2.xml"))
    clock = Clock()
    run([("rss", url)], clock=clock, include_all=False)
    report, _ = run([("rss", url)], clock=clock, include_all=False)
    assert report.feeds == []
    clock.advance(minutes=61)
    report, _ = run([("rss", url)], clock=clock, include_all=False)
    assert len(report.feeds) == 1


def test_locked_store_loses_nothing_and_retries(feed_server, feed_file, run, make_config, tmp_path,
                                                 sqlite_only):
    from monitor.exceptions import StorageError

    url = feed_server.add("/rss", feed_file("rss2.xml"))
    config = make_config([("rss", url)], store={"busy_timeout_seconds": 0.5})
    clock = Clock()
    store = open_configured_store(config, clock())
    db = sqlite3.connect(tmp_path / "monitor.db", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")          # an analyst's long write transaction
    try:
        with pytest.raises(StorageError, match="locked by another writer"):
            Poller(store, config, clock=clock).run_cycle(include_all=True)
    finally:
        db.execute("ROLLBACK")
        db.close()
    assert count_articles(store) == 0 and due_feeds(store, clock()) != []   # retried next cycle
    report = Poller(store, config, clock=clock).run_cycle()
    assert by_name(report)["rss"].new == 3 and count_articles(store) == 3
    store.close()


def test_lock_taken_mid_cycle_loses_nothing(feed_server, feed_file, make_config, tmp_path, sqlite_only):
    """The lock arrives after the claim: the feed's write fails, its claim is given back
    at the end of the cycle, and the next cycle stores everything."""
    body = feed_file("rss2.xml")
    db = sqlite3.connect(tmp_path / "monitor.db", isolation_level=None, check_same_thread=False)
    locked = threading.Event()

    def lock_then_answer(handler):          # the feed is claimed by now: take the lock
        if not locked.is_set():
            db.execute("BEGIN IMMEDIATE")
            locked.set()
        handler._send(200, body, "application/rss+xml; charset=utf-8")

    class ReleaseOnRefusal(logging.Handler):  # the write was refused: let go of the lock
        def emit(self, record):
            if "not stored" in record.getMessage() and locked.is_set():
                db.execute("ROLLBACK")

    url = feed_server.add("/rss", body, handler=lock_then_answer)
    config = make_config([("rss", url)], store={"busy_timeout_seconds": 0.3})
    clock = Clock()
    store = open_configured_store(config, clock())
    watcher = ReleaseOnRefusal()
    logging.getLogger("monitor").addHandler(watcher)
    try:
        report = Poller(store, config, clock=clock).run_cycle()
    finally:
        logging.getLogger("monitor").removeHandler(watcher)
    assert by_name(report)["rss"].status == "error" and "locked" in by_name(report)["rss"].error
    report = Poller(store, config, clock=clock).run_cycle()
    assert by_name(report)["rss"].new == 3 and count_articles(store) == 3
    db.close()
    store.close()


@pytest.mark.parametrize("processes", [0, 2])
def test_parse_processes_store_the_same_articles(feed_server, feed_file, run, processes):
    urls = [feed_server.add(f"/{name}", feed_file(name))
            for name in ("rss2.xml", "atom.xml", "rdf.xml", "latin1.xml")]
    report, store = run([(u, u) for u in urls], poll={"parse_processes": processes})
    assert report.count("error") == 0
    assert report.total("new") == count_articles(store) > 0
    expected = {"rss2.xml": 3}
    assert by_name(report)[urls[0]].new == expected["rss2.xml"]


def test_a_dying_parse_process_fails_only_its_feed(feed_server, feed_file, make_config):
    from crashing_parser import MARK, parse_or_die

    good = feed_file("rss2.xml")
    feeds = []
    for i in range(6):
        feed_server.add(f"/ok{i}", good.replace(b"md-10", f"ok{i}-".encode()))
        feeds.append((f"ok {i}", feed_server.url(f"/ok{i}")))
    feed_server.add("/crash", good.replace(b"<channel>", b"<channel>" + MARK, 1))
    feeds.append(("crash", feed_server.url("/crash")))
    config = make_config(feeds, poll={"parse_processes": 2})
    with open_configured_store(config, Clock()()) as store:
        poller = Poller(store, config, clock=Clock())
        poller.parse_job = parse_or_die
        report = poller.run_cycle(include_all=True)
        results = by_name(report)
        assert "parser process died" in results["crash"].error
        assert all(results[f"ok {i}"].status == "ok" for i in range(6)), {
            name: (r.status, r.error) for name, r in results.items()}
        assert count_articles(store) == 18          # every good feed stored, once
        health = {h.name: h for h in store.feed_health(Clock()())}
        assert health["crash"].error_count == 1 and "parser process died" in health["crash"].last_error


def test_parse_processes_end_when_the_service_is_killed(tmp_path):
    """SIGKILL of the service (or the OOM killer) must not leave parse processes behind."""
    import os
    import signal
    import subprocess
    import sys

    script = tmp_path / "service.py"
    script.write_text(
        "import os, sys, time\n"
        "from monitor.parsepool import ParsePool\n"
        "if __name__ == '__main__':\n"
        "    executor = ParsePool(2)._current()\n"
        "    pids = {executor.submit(os.getpid).result() for _ in range(20)}\n"
        "    print(' '.join(map(str, pids)), flush=True)\n"
        "    time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in proc.stdout.readline().split()]
        assert pids
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        with open(f"/proc/{pid}/stat") as stat:       # a zombie waiting for its parent
            return stat.read().split(")")[-1].split()[0] != "Z"

    deadline = time.monotonic() + 15
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(p) for p in pids)


def test_without_parse_processes_the_cycle_parses_in_process(feed_server, feed_file, run,
                                                            monkeypatch, caplog):
    """A machine where no worker process can start (no fork server, no semaphores): one
    warning, and every feed is still parsed and stored."""
    from monitor.parsepool import ParsePool

    def refuse():
        raise OSError("no process pools here")

    monkeypatch.setattr(ParsePool, "_context", staticmethod(refuse))
    urls = [feed_server.add(f"/{name}", feed_file(name)) for name in ("rss2.xml", "atom.xml")]
    with caplog.at_level("WARNING", logger="monitor.poll"):
        report, store = run([(u, u) for u in urls], poll={"parse_processes": 2})
    assert report.count("error") == 0 and count_articles(store) == 5
    warnings = [r for r in caplog.records if "cannot start parse processes" in r.getMessage()]
    assert len(warnings) == 1


@pytest.mark.parametrize("retry_after", ["99999999999999", "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_enormous_retry_after_is_capped_and_the_state_written(feed_server, run, retry_after):
    url = feed_server.add("/pause", b"later", status=503, headers={"Retry-After": retry_after},
                          content_type="text/plain")
    clock = Clock()
    report, store = run([("pause", url)], clock=clock)
    assert by_name(report)["pause"].status == "error"
    health = store.feed_health(clock())[0]
    assert health.next_check_at == clock() + timedelta(days=31)      # the cap, not "now"
    assert due_feeds(store, clock() + timedelta(days=30)) == []


def test_an_enormous_max_age_is_capped_and_the_articles_stored(feed_server, feed_file, run):
    url = feed_server.add("/rss", feed_file("rss2.xml"),
                          headers={"Cache-Control": "max-age=99999999999999"})
    clock = Clock()
    report, store = run([("rss", url)], clock=clock)
    assert by_name(report)["rss"].new == 3 and count_articles(store) == 3
    assert store.feed_health(clock())[0].next_check_at == clock() + timedelta(days=1)


def test_a_truncated_gzip_body_is_an_error_and_saves_no_validator(feed_server, feed_file, run):
    import gzip as gzip_module

    whole = feed_file("rss2.xml")
    packed = gzip_module.compress(whole)

    def cut(handler):              # a complete HTTP message whose gzip stream stops early
        handler._send(200, packed[: len(packed) * 2 // 3], "application/rss+xml",
                      {"Content-Encoding": "gzip", "ETag": '"v1"'})

    url = feed_server.add("/rss", whole, handler=cut)
    clock = Clock()
    report, store = run([("rss", url)], clock=clock)
    f = by_name(report)["rss"]
    assert f.status == "error" and "truncated" in f.error and count_articles(store) == 0
    feed_server.add("/rss", whole, gzip=True)           # the whole feed, answered in full
    clock.advance(days=1)
    report, store = run([("rss", url)], clock=clock)
    assert feed_server.requests[-1][1].get("If-None-Match") is None     # nothing saved
    assert by_name(report)["rss"].new == 3 and count_articles(store) == 3


def test_parse_processes_start_whatever_the_working_directory_holds(feed_server, feed_file, tmp_path):
    """A `monitor/` folder where the service is started (a checkout beside the data) must
    not shadow the installed package in the parse processes."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(sys.executable).with_name("monitor")
    if not script.is_file():
        pytest.skip("no monitor console script beside this interpreter")
    (tmp_path / "monitor").mkdir()                     # a folder named like the package
    url = feed_server.add("/rss", feed_file("rss2.xml"))
    (tmp_path / "monitor.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        '[poll]\ncontact_url = "http://127.0.0.1/c"\nparse_processes = 2\n'
        f'[classifier]\nmodel = "{tmp_path / "no-model.skops"}"\n'
        f'[[feeds]]\nname = "rss"\nurl = "{url}"\n', encoding="utf-8")
    proc = subprocess.run([str(script), "--config", "monitor.toml", "poll", "--all"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "parser process died" not in proc.stdout
    assert proc.stdout.startswith("ok") and "new    3" in proc.stdout


@pytest.mark.parametrize("processes", [0, 1])
def test_the_model_is_loaded_only_when_a_cycle_has_something_new(feed_server, feed_file, tmp_path,
                                                                processes):
    """A poll where every feed answers 304 never loads the model; nor does one where a feed
    answers 200 with articles already stored (a feed without validators), and then no
    language, country or mineral is looked for; a poll with new articles does load it (the
    shipped model, in a fresh process each), and none imports scikit-learn (the poll
    classifies with the model's exported arrays)."""
    import json
    import subprocess
    import sys

    url = feed_server.add("/rss", feed_file("rss2.xml"))
    plain = feed_server.add("/plain", feed_file("rss2.xml"), conditional=False)
    probe = ("import json, sys\n"
             "import monitor.parsepool as pool\n"
             "from monitor.config import parse_config\n"
             "from monitor.service import build_poller, open_configured_store\n"
             "sent = []\n"
             "run = pool.ParsePool.run\n"
             "async def counted(self, function, docs):\n"
             "    sent.append(len(docs))\n"
             "    return await run(self, function, docs)\n"
             "pool.ParsePool.run = counted\n"
             "config = parse_config(json.loads(sys.argv[1]))\n"
             "with open_configured_store(config) as store:\n"
             "    report = build_poller(config, store).run_cycle(include_all=True)\n"
             "print(json.dumps({'new': report.total('new'), 'flagged': report.total('flagged'),\n"
             "                  'model': 'monitor.linear' in sys.modules,\n"
             "                  'extracted': sum(sent),\n"
             "                  'sklearn': 'sklearn' in sys.modules}))\n")

    def cycle(feeds):
        data = json.dumps({"store": {"url": f"sqlite:///{tmp_path / 'm.db'}"},
                           "poll": {"contact_url": "http://127.0.0.1/c",
                                    "parse_processes": processes},
                           "feeds": feeds})
        out = subprocess.run([sys.executable, "-c", probe, data], capture_output=True, text=True,
                             timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout.splitlines()[-1])

    first = cycle([{"name": "rss", "url": url}])
    assert first["new"] == 3 and first["model"] and not first["sklearn"]
    assert first["extracted"] == (3 if processes else 0)
    nothing = {"new": 0, "flagged": 0, "model": False, "extracted": 0, "sklearn": False}
    assert cycle([{"name": "rss", "url": url}]) == nothing                   # 304
    second = cycle([{"name": "plain", "url": plain}])      # another feed: its articles are new
    assert second["new"] == 3 and second["model"]
    assert cycle([{"name": "plain", "url": plain}]) == nothing  # 200, the same articles again


def test_a_news_search_feed_credits_each_outlet_in_the_store_and_the_digest(feed_server, make_config):
    """Google News names the outlet in <source>; the digest shows it, not the feed's name."""
    from monitor.analyze import Analyzer
    from monitor.digest import Story

    body = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>search</title>
<item><title>Gallium export licences tightened - Metal Wire</title><link>https://news.example/a</link>
<guid>a</guid><pubDate>Mon, 01 Jun 2025 06:00:00 GMT</pubDate>
<description>China said exporters of gallium and germanium need a licence for each shipment.</description>
<source url="https://metalwire.example">Metal Wire</source></item>
</channel></rss>"""
    config = make_config([("News search: gallium", feed_server.add("/search", body))])
    store = open_configured_store(config, START)
    try:
        analyze = Analyzer.from_config(config, lazy=True)
        Poller(store, config, analyze=analyze, clock=Clock()).run_cycle(include_all=True)
        [view] = store.review_list(include_unflagged=True, limit=None)
        assert (view.source, view.publisher, view.outlet) == ("News search: gallium", "Metal Wire", "Metal Wire")
        [article] = store.digest_candidates(START - timedelta(days=30), START)       # flagged
        assert Story(article, (article,), 0.0).sources == ("Metal Wire",)
    finally:
        store.close()


def test_language_countries_and_minerals_found_in_parse_processes_are_the_same(feed_server, make_config):
    """With parse processes the poll finds language, countries and minerals beside the parse
    (the service process only classifies and stores); what is stored is the same as
    without them."""
    from monitor.analyze import Analyzer

    body = """<?xml version="1.0"?><rss version="2.0"><channel><title>wire</title><language>de</language>
<item><title>China verschärft Exportkontrollen für Gallium</title><guid>a</guid><link>https://w.example/a</link>
<description>Peking verlangt Lizenzen für Gallium und Germanium; Japan und die USA prüfen Vorräte.</description></item>
<item><title>Lithium price slides as Chile output grows</title><guid>b</guid><link>https://w.example/b</link>
<description>Lithium carbonate fell in Santiago and Shanghai as Chilean mines raised output.</description></item>
<item><title>稀土出口管制：商务部发布新规</title><guid>c</guid><link>https://w.example/c</link>
<description>商务部宣布对部分中重稀土相关物项实施出口管制。</description></item>
</channel></rss>""".encode()
    url = feed_server.add("/wire", body)
    stored = []
    for processes in (2, 0):
        config = make_config([(f"wire {processes}", url)], poll={"parse_processes": processes})
        store = open_configured_store(config, START)
        try:
            analyzer = Analyzer.from_config(config, lazy=True)
            poller = Poller(store, config, analyze=analyzer, clock=Clock())
            assert poller._extracts == bool(processes)
            poller.run_cycle(include_all=True)
            views = store.review_list(include_unflagged=True, limit=None)
            stored.append(sorted((v.title, v.language, v.countries, v.minerals, v.flagged, v.topics)
                                 for v in views if v.source == f"wire {processes}"))
        finally:
            store.close()
    assert stored[0] == stored[1] and len(stored[0]) == 3
    assert {row[1] for row in stored[0]} == {"de", "en", "zh"}


@pytest.mark.parametrize("processes", [2, 0])
def test_a_feed_with_new_articles_takes_its_key_base_with_the_full_analysis(
        feed_server, make_config, processes):
    """The service's analysis with parse processes (the default): the poll that stores a
    feed's first articles gives it its key base, as without them; so a feed whose URL is
    then edited (or that a server starts redirecting) keeps the keys its relative links
    were read into, and its stories are not stored again. (The parsed feed handed on after
    the parse processes had found language, countries and minerals had lost its key base:
    it was saved only by a poll that found nothing new, which a news feed seldom has.)"""
    from monitor.analyze import Analyzer

    body = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>wire</title>'
            b'<item><title>China tightens gallium export controls</title>'
            b'<link>/news/g1.html</link><description>Licences for each shipment.</description>'
            b'</item></channel></rss>')
    first_url = feed_server.add("/rel", body)
    config = make_config([("wire", first_url)], poll={"parse_processes": processes})
    clock = Clock()
    store = open_configured_store(config, clock())
    try:
        analyzer = Analyzer.from_config(config, lazy=True)
        report = Poller(store, config, analyze=analyzer, clock=clock).run_cycle(include_all=True)
        assert by_name(report)["wire"].new == 1
        assert due_feeds(store, clock(), include_all=True)[0].key_base == first_url
        edited = make_config([("wire", first_url.replace("127.0.0.1", "localhost"))],
                             poll={"parse_processes": processes})
        store.sync_feeds(edited.feeds, clock())
        clock.advance(hours=2)
        report = Poller(store, edited, analyze=analyzer, clock=clock).run_cycle(include_all=True)
        assert (by_name(report)["wire"].status, by_name(report)["wire"].new) == ("ok", 0)
        assert count_articles(store) == 1
    finally:
        store.close()


def test_a_stored_storys_link_follows_the_feed_to_its_new_address(feed_server, run, make_config):
    """The feed's address is edited (the site moved): its stories keep their keys, so none is
    stored again, and a relative link now read against the new address updates the stored
    link, which had kept leading to the old host until the story's text changed. The next
    poll changes nothing."""
    body = ("<rss version='2.0'><channel><title>w</title>" + "".join(
        f"<item><title>Tin story {i}</title><link>/news/{i}.html</link>"
        f"<description>Body {i}.</description></item>" for i in range(2)) + "</channel></rss>")
    first_url = feed_server.add("/wire", body)
    report, store = run([("wire", first_url)])
    assert by_name(report)["wire"].new == 2
    moved = first_url.replace("127.0.0.1", "localhost")
    clock = Clock()
    clock.advance(hours=2)
    report, store = run([("wire", moved)], clock=clock)
    assert (by_name(report)["wire"].new, by_name(report)["wire"].updated) == (0, 2), by_name(report)["wire"]
    links = sorted(a.url for a in store.review_list(include_unflagged=True))
    assert links == [moved.replace("/wire", f"/news/{i}.html") for i in range(2)]
    clock.advance(hours=2)
    report, store = run([("wire", moved)], clock=clock)
    assert (by_name(report)["wire"].new, by_name(report)["wire"].updated) == (0, 0)
    assert count_articles(store) == 2


def test_a_parse_process_dying_while_extracting_loses_nothing(feed_server, make_config, caplog):
    """If the parse process dies while finding language, countries and minerals, the
    writer finds them itself: every article is stored with them, once."""
    from crashing_parser import extract_or_die

    from monitor.analyze import Analyzer

    def doc(marked: bool) -> bytes:
        extra = " crash the extraction" if marked else ""
        return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>w</title>'
                f'<item><title>Japan and Chile sign a lithium pact{" " + str(marked)}</title><guid>g{marked}</guid>'
                f'<link>https://w.example/{marked}</link><description>Lithium from Chile for Japanese '
                f'battery makers.{extra}</description></item></channel></rss>').encode()

    feeds = [("calm", feed_server.add("/calm", doc(False))), ("dies", feed_server.add("/dies", doc(True)))]
    config = make_config(feeds, poll={"parse_processes": 2})
    with open_configured_store(config, Clock()()) as store:
        poller = Poller(store, config, analyze=Analyzer.from_config(config, lazy=True), clock=Clock())
        poller.extract_job = extract_or_die
        with caplog.at_level("WARNING", logger="monitor.poll"):
            report = poller.run_cycle(include_all=True)
        assert any("died while running extract_or_die" in r.getMessage() for r in caplog.records)
        assert {f.name: f.status for f in report.feeds} == {"calm": "ok", "dies": "ok"}
        views = store.review_list(include_unflagged=True, limit=None)
        assert len(views) == 2
        assert all(v.language == "en" and set(v.countries) == {"CL", "JP"} and "lithium" in v.minerals
                   for v in views)


def test_feeds_waiting_for_the_writer_are_analysed_together_and_stored_apart(
        feed_server, feed_file, make_config):
    """While the writer is busy, feeds that finish parsing wait and are then analysed in one
    batch; each is still stored in its own transaction, and a feed whose analysis fails gets
    its own error while the feeds batched with it are stored."""
    import time as _time

    from monitor.pipeline import unclassified

    class Slow:
        """The no-op analysis, slow on its first call, failing on the feed named "bad"."""

        def __init__(self) -> None:
            self.batches: list[list[str]] = []

        def __call__(self, articles, feed):
            if not self.batches:
                _time.sleep(0.6)                    # the other feeds queue meanwhile
            self.batches.append([feed.name])
            if feed.name == "bad":
                raise ValueError("analysis broke on this feed")
            return unclassified(articles, feed)

        def analyse_feeds(self, groups):
            self.batches.append([feed.name for _, feed in groups])
            if any(feed.name == "bad" for _, feed in groups):
                raise ValueError("analysis broke on one feed of the batch")
            return [unclassified(articles, feed) for articles, feed in groups]

    body = feed_file("rss2.xml")
    feeds = [(name, feed_server.add(f"/{name}", body)) for name in ("first", "a", "b", "bad", "c")]
    config = make_config(feeds, poll={"parse_processes": 0})
    analysis = Slow()
    with open_configured_store(config, Clock()()) as store:
        report = Poller(store, config, analyze=analysis, clock=Clock()).run_cycle(include_all=True)
        by_name = {f.name: f for f in report.feeds}
        assert by_name["bad"].status == "error" and "ValueError" in by_name["bad"].error
        assert all(by_name[n].status == "ok" and by_name[n].new == 3 for n in ("first", "a", "b", "c"))
        assert any(len(batch) > 1 for batch in analysis.batches)       # some went together
        stored = Counter(v.source for v in store.review_list(include_unflagged=True, limit=None))
        assert stored == {"first": 3, "a": 3, "b": 3, "c": 3}


def test_a_writer_batch_that_answers_wrongly_ends_the_cycle_instead_of_hanging(
        feed_server, feed_file, make_config, caplog, monkeypatch):
    """A bug that loses a batch's reports must not leave the cycle waiting for them: the
    feeds' waits fail (logged), the cycle ends, and the next cycle polls them again."""
    body = feed_file("rss2.xml")
    config = make_config([(n, feed_server.add(f"/{n}", body)) for n in ("a", "b")],
                         poll={"parse_processes": 0})
    monkeypatch.setattr(Poller, "process_batch", lambda self, jobs: [])
    with open_configured_store(config, Clock()()) as store:
        done: list = []
        worker = threading.Thread(target=lambda: done.append(
            Poller(store, config, clock=Clock()).run_cycle(include_all=True)), daemon=True)
        with caplog.at_level("ERROR", logger="monitor.poll"):
            worker.start()
            worker.join(60)
        assert done, "the cycle did not end"
        assert any("0 reports for" in r.getMessage() or "0 reports for" in str(r.exc_info)
                   for r in caplog.records)
        assert count_articles(store) == 0 and len(due_feeds(store, Clock()())) == 2


def test_kept_parse_processes_stay_between_cycles_unless_they_grew(feed_server, feed_file,
                                                                   make_config, monkeypatch):
    """monitor run's parse processes (ParsePool keep=True) serve cycle after cycle; one
    that has grown past KEPT_MB is ended at its cycle's end and a new one starts. A pool
    for one cycle (monitor poll) ends with it."""
    import psutil

    from monitor import parsepool
    from monitor.parsepool import ParsePool

    url = feed_server.add("/kept", feed_file("rss2.xml"))
    config = make_config([("kept", url)], poll={"parse_processes": 1})
    store = open_configured_store(config, START)
    kept = ParsePool(1, keep=True)
    try:
        def cycle(parser=None):
            Poller(store, config, clock=Clock(), parser=parser).run_cycle(include_all=True)
            executor = kept._executor
            return set(executor._processes) if executor is not None else set()

        first = cycle(kept)
        assert len(first) == 1 and cycle(kept) == first
        monkeypatch.setattr(parsepool, "KEPT_MB", 1)
        assert cycle(kept) == set()                             # grown past it: ended
        assert not any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                       for pid in first)
        monkeypatch.setattr(parsepool, "KEPT_MB", 150)
        feed_server.add("/kept", feed_file("rss2.xml").replace(     # something to parse again
            b"</channel>", b"<item><title>One more</title><guid>kept-2</guid></item></channel>"))
        again = cycle(kept)
        assert len(again) == 1 and again != first               # a new one, kept again
        before = {p.pid for p in psutil.Process().children(recursive=True)}
        cycle()                                                  # a pool of its own
        assert cycle(kept) == again
        after = {p.pid for p in psutil.Process().children(recursive=True)}
        assert after <= before | again
    finally:
        kept.close()
        store.close()


def test_a_stop_while_a_feed_is_stored_still_counts_it_in_the_report(
        feed_server, feed_file, make_config):
    """SIGTERM while the writer stores a feed: the store finishes (it cannot be interrupted)
    and the cycle's report, which the log line counts, says so."""
    import time as _time

    from monitor.pipeline import unclassified

    stop = threading.Event()

    def stopping(articles, feed):
        stop.set()                          # the signal arrives while this feed is analysed
        _time.sleep(0.6)                    # the cycle sees it and cancels what is in flight
        return unclassified(articles, feed)

    config = make_config([("one", feed_server.add("/one", feed_file("rss2.xml")))],
                         poll={"parse_processes": 0})
    with open_configured_store(config, Clock()()) as store:
        report = Poller(store, config, analyze=stopping, clock=Clock(), stop=stop).run_cycle(
            include_all=True)
        assert count_articles(store) == 3
        assert [(f.name, f.status, f.new) for f in report.feeds] == [("one", "ok", 3)]


def test_feeds_queued_past_the_lease_are_not_fetched_by_a_second_poller(
        feed_server, feed_file, make_config):
    """A poller renews the leases of the feeds it has claimed while they wait their turn
    (per_host 1 here: 4 feeds × 2 s outlast a 5 s lease), so a second poller on the same
    store meanwhile finds nothing to take."""
    from datetime import datetime, timezone

    body = feed_file("rss2.xml")
    feeds = [(f"slow {i}", feed_server.add(f"/slow{i}", body, delay=2.0)) for i in range(4)]
    config = make_config(feeds, poll={"lease_seconds": 5, "per_host": 1, "parse_processes": 0})

    def utcnow():
        return datetime.now(timezone.utc)

    with open_configured_store(config, START) as first, open_configured_store(config, START) as second:
        cycle = threading.Thread(target=lambda: Poller(first, config, clock=utcnow).run_cycle())
        cycle.start()
        time.sleep(6.0)                       # the first poller's claim is 6 s old
        late = Poller(second, config, clock=utcnow).run_cycle()
        cycle.join()
    assert late.feeds == []
    assert [feed_server.hits[f"/slow{i}"] for i in range(4)] == [1, 1, 1, 1]


def test_a_body_cut_short_saves_no_validators_so_the_next_poll_reads_it_whole(
        feed_server, run):
    """No Content-Length and the connection closed half-way: the HTTP layer cannot tell,
    the XML is not well-formed and only some items are read. Its ETag must not be saved,
    or the server answers 304 and the missing items wait until the feed changes."""
    items = "".join(f"<item><title>Lithium story {i}</title><link>https://x.example/{i}</link>"
                    f"<guid>cut-{i}</guid><description>Body {i}.</description></item>"
                    for i in range(10))
    body = (f"<?xml version='1.0'?><rss version='2.0'><channel><title>t</title>{items}"
            "</channel></rss>").encode()
    calls = []

    def answer(handler):
        calls.append(handler.headers.get("If-None-Match"))
        if handler.headers.get("If-None-Match") == '"c1"':
            return handler._send(304, b"", None, {"ETag": '"c1"'})
        whole = len(calls) > 1
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("ETag", '"c1"')
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(body if whole else body[:len(body) // 2])
        handler.close_connection = True

    url = feed_server.add("/cut", handler=answer)
    report, store = run([("cut", url)])
    first = by_name(report)["cut"]
    assert 0 < first.new < 10
    report, store = run([("cut", url)])
    assert calls[1] is None                       # no If-None-Match: read whole again
    assert count_articles(store) == 10


def test_after_a_server_redirect_relative_links_lead_where_the_document_is(
        feed_server, run, caplog):
    """Relative links are read against the address the document came from, so that a
    stored link leads to the story (their keys against the feed's key base: see below); a
    permanent redirect (301) is logged each poll, so that the operator can put the new
    address in the config."""
    items = "".join(f"<item><title>Tin story {i}</title><link>story-{i}.html</link>"
                    f"<description>Body {i}.</description></item>" for i in range(2))
    body = f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>"
    feed_server.add("/sub/dir/feed.xml", body)

    def moved(handler):
        handler._send(301, b"", None, {"Location": "/sub/dir/feed.xml"})

    url = feed_server.add("/mv", handler=moved)
    with caplog.at_level(logging.WARNING, logger="monitor"):
        report, store = run([("mv", url)])
    assert by_name(report)["mv"].new == 2
    links = {a.url for a in store.review_list(include_unflagged=True)}
    assert links == {feed_server.url(f"/sub/dir/story-{i}.html") for i in range(2)}
    assert any("moved permanently" in r.getMessage() and "/sub/dir/feed.xml" in r.getMessage()
               for r in caplog.records)


MOVING = [("Gallium licences tightened", "", "/news/gallium.html"),           # no guid
          ("Cobalt quota halved", "<guid>cobalt-2</guid>", "/news/cobalt.html"),   # read as a link
          ("Tin smelter restarts", "", "story-3.html"),                         # beside the feed
          ("Lithium mine opens", "<guid>https://wire.example/li</guid>", "https://wire.example/li")]
FRESH = ("Tungsten export ban", "", "/news/tungsten.html")


def _moving_feed(*items, revised=""):
    """Items with relative links and guids (and one absolute); ``revised``: the title of an
    item whose text was edited."""
    body = "".join(f"<item><title>{t}</title>{g}<link>{link}</link><description>{t}: the story"
                   f"{', revised' if t == revised else ''}.</description></item>"
                   for t, g, link in items)
    return f"<?xml version='1.0'?><rss version='2.0'><channel><title>Wire</title>{body}</channel></rss>"


def _digest_titles(store):
    """Titles of the articles each digest holds, digest by digest."""
    from sqlalchemy import select

    from monitor.storage.tables import ARTICLE, ITEM

    with store.engine.connect() as conn:
        rows = conn.execute(select(ITEM.c.digest_id, ARTICLE.c.title)
                            .join(ARTICLE, ARTICLE.c.id == ITEM.c.article_id)
                            .order_by(ITEM.c.digest_id, ARTICLE.c.title))
        by_digest: dict[int, list[str]] = {}
        for digest_id, title in rows:
            by_digest.setdefault(digest_id, []).append(title)
    return list(by_digest.values())


@pytest.mark.parametrize("status, target", [(302, "localhost"), (301, "another port")])
def test_a_feed_the_server_starts_redirecting_stores_and_mails_each_story_once(
        feed_server, make_config, tmp_path, status, target):
    """Relative links and guids are read against the feed's key base (where its first
    document came from) for the key, and against where the document came from for the
    link: when the server starts redirecting the feed to another host (a 302 to "localhost",
    a 301 to another port), no stored story is stored or mailed again — an edited one is
    updated in place — and a new story's link leads to the host that served it. Putting the
    301's target into the config changes nothing either."""
    from monitor.delivery import DigestJob

    other = FeedServer().start()
    try:
        url = feed_server.add("/wire.xml", _moving_feed(*MOVING))
        moved = _moving_feed(FRESH, *MOVING, revised=MOVING[0][0])
        if target == "localhost":
            port = feed_server.base.rsplit(":", 1)[1]
            new_url, new_base = f"http://localhost:{port}/feeds/wire.xml", f"http://localhost:{port}"
            feed_server.add("/feeds/wire.xml", moved)
        else:
            new_url, new_base = other.add("/feeds/wire.xml", moved), other.base
        config = make_config([("wire", url)], poll={"allow_private_redirects": True})
        clock = Clock()
        store = open_configured_store(config, clock())
        reports = []
        try:
            for poll in range(3):
                if poll == 1:
                    feed_server.add("/wire.xml", handler=lambda h: h._send(
                        status, b"", None, {"Location": new_url}))
                if poll == 2:
                    config = make_config([("wire", new_url)],
                                         poll={"allow_private_redirects": True})
                    store.sync_feeds(config.feeds, clock())
                    feed_server.add("/feeds/wire.xml", moved.replace("story.", "story!"))
                    other.add("/feeds/wire.xml", moved.replace("story.", "story!"))
                report = Poller(store, config, analyze=_flag_all, clock=clock).run_cycle(
                    include_all=True)
                f = by_name(report)["wire"]
                reports.append((f.status, f.new))
                clock.advance(hours=1)
                DigestJob(store, config, sleep=lambda s: None).run(clock())
                clock.advance(days=1, hours=-1)
            assert reports == [("ok", 4), ("ok", 1), ("ok", 0)]
            rows = store.review_list(include_unflagged=True)
            assert sorted(r.title for r in rows) == sorted(t for t, _, _ in (FRESH, *MOVING))
            assert _digest_titles(store) == [sorted(t for t, _, _ in MOVING), [FRESH[0]]]
            links = {r.title: r.url for r in rows}
            assert links[FRESH[0]] == new_base + "/news/tungsten.html"
            assert links[MOVING[0][0]] == new_base + "/news/gallium.html"   # edited: rewritten
            assert links[MOVING[3][0]] == "https://wire.example/li"
        finally:
            store.close()
    finally:
        other.stop()


def test_a_feed_redirected_before_the_upgrade_keeps_the_keys_it_has(feed_server, make_config):
    """A store of schema version 5 has no key base: its keys were read where the document
    came from, the redirect's target for a feed redirected then. The next poll's document
    gives the feed its key base, the address its keys were read against: nothing is stored
    again then, nor when the redirect later ends."""
    from sqlalchemy import update

    from monitor.storage.tables import FEED

    feed_server.add("/target/wire.xml", _moving_feed(*MOVING))
    url = feed_server.add("/wire.xml", handler=lambda h: h._send(
        302, b"", None, {"Location": "/target/wire.xml"}))
    config = make_config([("wire", url)])
    clock = Clock()
    store = open_configured_store(config, clock())
    try:
        first = Poller(store, config, clock=clock).run_cycle(include_all=True)
        assert by_name(first)["wire"].new == 4
        with store.engine.begin() as conn:              # as the upgrade leaves it
            conn.execute(update(FEED).values(key_base=None))
        feed_server.add("/target/wire.xml", _moving_feed(FRESH, *MOVING))
        clock.advance(hours=2)
        report = Poller(store, config, clock=clock).run_cycle(include_all=True)
        assert (by_name(report)["wire"].new, by_name(report)["wire"].updated) == (1, 0)
        assert due_feeds(store, clock(), include_all=True)[0].key_base == feed_server.url(
            "/target/wire.xml")
        feed_server.add("/wire.xml", _moving_feed(FRESH, *MOVING, revised=FRESH[0]))
        clock.advance(hours=2)
        report = Poller(store, config, clock=clock).run_cycle(include_all=True)
        # the edited story, and the one whose link is beside the feed ("story-3.html"): read
        # against where the document now is, its stored link is updated to lead there
        assert (by_name(report)["wire"].new, by_name(report)["wire"].updated) == (0, 2)
        assert count_articles(store) == 5
        links = {a.title: a.url for a in store.review_list(include_unflagged=True)}
        assert links["Tin smelter restarts"] == feed_server.url("/story-3.html")
    finally:
        store.close()


def test_a_gb2312_feed_under_a_latin1_charset_header_is_stored_as_chinese(feed_server, make_config, caplog):
    """A GB2312 feed that declares its encoding, served with a server's default
    ``charset=ISO-8859-1``: stored in Chinese (not "ÖÐ¹úÏ¡ÍÁ³ö¿Ú"), found to be Chinese
    and flagged, and the poll's log says the header's charset was overridden."""
    from monitor.config import parse_config
    from monitor.service import build_analyzer

    title = "中国稀土出口管制新规发布，镓和锗出口须经许可"
    text = "商务部宣布对部分中重稀土相关物项实施出口管制。"
    body = ('<?xml version="1.0" encoding="gb2312"?><rss version="2.0"><channel><title>财经</title>'
            f"<item><title>{title}</title><guid>cn-1</guid><link>https://cn.example/1</link>"
            f"<description>{text}</description></item></channel></rss>").encode("gb2312")
    url = feed_server.add("/cn", body, content_type="application/rss+xml; charset=ISO-8859-1")
    config = make_config([("cn", url)])
    keywords_only = parse_config({"classifier": {"model": "no-such-model.skops"},
                                  "keywords": {"critical-minerals": ["稀土出口"],
                                               "export-controls": ["出口管制"]}}, "test.toml")
    store = open_configured_store(config, START)
    try:
        with caplog.at_level(logging.WARNING, logger="monitor.poll"):
            report = Poller(store, config, analyze=build_analyzer(keywords_only),
                            clock=Clock()).run_cycle(include_all=True)
        assert (by_name(report)["cn"].new, by_name(report)["cn"].flagged) == (1, 1)
        [view] = store.review_list(include_unflagged=True, limit=None)
        assert (view.title, view.language) == (title, "zh")
    finally:
        store.close()
    assert ("declared as ISO-8859-1 in its Content-Type but as gb2312 in the document, which it is: "
            "the document's declaration overrides the header's charset, read as gb2312") in caplog.text


def test_monitor_feeds_says_its_times_are_utc(feed_server, feed_file, tmp_path):
    """`monitor feeds` printed "last poll 08:47" with no zone while the digest speaks the
    analysts' time zone (09:47 in Berlin): a feed looked an hour overdue."""
    import subprocess
    import sys
    from datetime import datetime, timezone

    url = feed_server.add("/rss", feed_file("rss2.xml"))
    (tmp_path / "monitor.toml").write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "m.db"}"\n'
        '[poll]\ncontact_url = "http://127.0.0.1/c"\nparse_processes = 0\n'
        f'[classifier]\nmodel = "{tmp_path / "no-model.skops"}"\n'
        '[digest]\ntimezone = "Asia/Tokyo"\n'
        f'[[feeds]]\nname = "rss"\nurl = "{url}"\n', encoding="utf-8")

    def monitor(*args):
        done = subprocess.run([sys.executable, "-m", "monitor", "--config", "monitor.toml", *args],
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        return done.stdout

    before = datetime.now(timezone.utc)
    monitor("poll", "--all")
    header, row = monitor("feeds").splitlines()[:2]
    after = datetime.now(timezone.utc)
    assert "last poll (UTC)" in header and "next check (UTC)" in header
    assert any(t.strftime("%Y-%m-%d %H:") in row for t in (before, after)), row   # UTC, not Tokyo's


def test_every_piece_of_work_lost_with_a_dying_parse_process_is_named(caplog):
    """Work sent with ParsePool.run is redone in the service process when its worker dies.
    Only the first caller to see the pool break said so: work lost beside it went unnamed
    (a parse that saw the break first cleared the pool without a word, and the extraction
    after it said nothing either)."""
    import asyncio

    from crashing_parser import die_now, slow_echo

    from monitor.parsepool import ParsePool

    pool = ParsePool(2)

    async def both():
        pool._current()                      # the workers a cycle's first parse starts
        # both workers running (a pool starts them as work comes)
        assert await asyncio.gather(pool.run(slow_echo, 1, 0.5), pool.run(slow_echo, 2, 0.5)) == [1, 2]
        lost = asyncio.ensure_future(pool.run(slow_echo, "late", 30.0))   # ends with the pool
        await asyncio.sleep(0.5)
        return await asyncio.gather(pool.run(die_now), lost)

    try:
        with caplog.at_level("WARNING", logger="monitor.poll"):
            results = asyncio.run(both())
    finally:
        pool.close()
    assert results == [None, None]                       # both redone by the caller
    said = [r.getMessage() for r in caplog.records if "died while running" in r.getMessage()]
    assert len(said) == 2
    assert any("die_now" in m for m in said) and any("slow_echo" in m for m in said)


def test_a_claim_the_store_refuses_mid_cycle_leaves_no_lease_and_loses_no_result(
        feed_server, feed_file, make_config):
    """The store refuses the cycle's second claim (locked by an analyst): the cycle failed
    as a whole, its 64 feeds stayed leased by the live service for the whole lease (no one
    polled them for five minutes) and the results fetched were dropped. Now the feeds in
    flight are stored, the rest wait for the next cycle, and no lease is left."""
    from monitor.exceptions import StorageError

    body = feed_file("rss2.xml")
    feeds = [(f"f{i}", feed_server.add(f"/f{i}", body.replace(b"md-10", f"f{i}-".encode())))
             for i in range(70)]
    config = make_config(feeds, poll={"concurrency": 1, "parse_processes": 0})
    clock = Clock()
    store = open_configured_store(config, clock())
    try:
        poller = Poller(store, config, clock=clock)
        claims = []
        real = poller._claim

        def claim(*args):
            claims.append(args)
            if len(claims) == 2:
                raise StorageError("the store is locked by another writer (test)")
            return real(*args)

        poller._claim = claim
        report = poller.run_cycle(include_all=True)
        assert len(claims) == 2
        assert report.count("ok") == 64 and report.total("new") == 64 * 3
        from sqlalchemy import text

        with store.engine.connect() as conn:
            leased = conn.execute(text("SELECT count(*) FROM feed WHERE claimed_by IS NOT NULL")).scalar()
            polled = conn.execute(text("SELECT count(*) FROM feed WHERE last_polled_at IS NOT NULL")).scalar()
        assert (leased, polled) == (0, 64)
        report = Poller(store, config, clock=clock).run_cycle()        # the rest, next cycle
        assert report.count("ok") == 6
    finally:
        store.close()


def test_monitor_poll_says_how_many_feeds_it_left_to_another_poller(feed_server, feed_file, make_config,
                                                                     tmp_path, store_url):
    """`monitor poll --all` beside a running service skips the feeds the service holds (so
    none is fetched twice) and said nothing of them: "total: 1 feeds polled" of two."""
    from click.testing import CliRunner

    import monitor.cli

    one, two = feed_server.add("/one", feed_file("rss2.xml")), feed_server.add("/two", feed_file("atom.xml"))
    config = make_config([("one", one), ("two", two)])
    clock = Clock()
    store = open_configured_store(config, clock())
    try:
        from datetime import datetime, timezone

        held = store.claim_due_feeds(datetime.now(timezone.utc), "other-host:1:abc", 3600, 1,
                                     include_all=True)              # a service holds one
        assert len(held) == 1
    finally:
        store.close()
    path = tmp_path / "monitor.toml"
    path.write_text(f'[store]\nurl = "{store_url}"\n[poll]\ncontact_url = "http://127.0.0.1/c"\n'
                    f'[[feeds]]\nname = "one"\nurl = "{one}"\n[[feeds]]\nname = "two"\nurl = "{two}"\n',
                    encoding="utf-8")
    result = CliRunner().invoke(monitor.cli.cli, ["--config", str(path), "poll", "--all"])
    assert result.exit_code == 0, result.output
    assert "total: 1 feeds polled" in result.output
    assert "1 feed(s) left to another poller that holds them now" in result.output


def test_a_server_that_answers_with_a_certificate_nobody_vouches_for_backs_off_to_the_day(
        tmp_path, run):
    """A TLS failure (an expired or self-signed certificate, a handshake the server cuts
    off) comes out of httpx as a ConnectError, kind "connect", like a refused connection:
    but the server was reached and did a handshake on every try. It backs off to
    max_backoff_hours as every server that answers does, not hourly for ever."""
    from smtpserver import make_certificate

    server = FeedServer(tls=make_certificate(tmp_path)).start()
    try:
        url = server.add("/feed.xml", b"<rss/>")
        clock = Clock()
        for _ in range(8):
            report, store = run([("self-signed", url)], clock=clock)
            clock.advance(days=1)
        clock.advance(days=-1)
        health = store.feed_health(clock())[0]
        assert health.error_count == 8 and "certificate" in health.last_error.lower()
        assert health.next_check_at - clock() == timedelta(hours=24)
    finally:
        server.stop()
