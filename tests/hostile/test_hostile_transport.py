"""Hostile servers, transport level (issue 8, cases 2–5): gzip bombs, 100 MB bodies,
bodies that never end, slow-loris, redirect loops, redirects to other schemes and to
private addresses.

The memory cases (2, 3) run in one fresh subprocess (tests/hostile/probe_poll.py) over
one feed server, so its peak RSS is the poll's own; each named test then asserts its
feed's outcome. Limits are small (max_bytes 2 MB, deadline 2 + 2 s) to keep it fast.
"""

import time

import pytest

from feedserver import FeedServer
from hostile_kit import (
    MB,
    Clock,
    RSS_LIMIT_MB,
    by_name,
    endless,
    gzip_bomb,
    huge,
    poll,  # noqa: F401  (fixture)
    poll_in_subprocess,
    redirect,
    rss,
    stories,
    trickle,
)
from storeview import count_articles

LIMIT = 2 * MB
FAST = {"connect_timeout_seconds": 2, "read_timeout_seconds": 2, "max_bytes": LIMIT}    # deadline 4 s


@pytest.fixture
def store_url(tmp_path):
    """Transport cases do not depend on the store engine: SQLite only (overrides the
    conftest fixture that also runs PostgreSQL)."""
    return f"sqlite:///{tmp_path / 'monitor.db'}"


@pytest.fixture(scope="module")
def memory_poll(tmp_path_factory):
    """One cycle over the memory-hungry feeds in a fresh process: (result, server)."""
    from monitor.config import parse_config

    server = FeedServer(backlog=64).start()
    tmp = tmp_path_factory.mktemp("memory")
    routes = {
        "ok": dict(body=rss(stories("ok", 5)).encode()),
        "bomb": dict(body=gzip_bomb(100 * MB), headers={"Content-Encoding": "gzip"}),
        "bomb2": dict(body=gzip_bomb(512 * MB, layers=2), headers={"Content-Encoding": "gzip, gzip"}),
        "cl100": dict(handler=huge(100 * MB, content_length=True)),
        "chunked100": dict(handler=huge(100 * MB, content_length=False)),
        "endless-fast": dict(handler=endless()),
        "endless-slow": dict(handler=endless(b"<!-- slow -->" * 40, every=0.05)),
    }
    feeds = [(name, server.add(f"/{name}", **route)) for name, route in routes.items()]
    config = parse_config({"store": {"url": f"sqlite:///{tmp / 'm.db'}"},
                           "poll": {"contact_url": "http://127.0.0.1/c", "per_host": 8, **FAST},
                           "feeds": [{"name": n, "url": u} for n, u in feeds]}, "memory.toml")
    started = time.monotonic()
    result = poll_in_subprocess(config)
    result["elapsed"] = time.monotonic() - started
    yield result, server
    server.stop()


def test_02_gzip_bomb_stops_at_the_limit_without_inflating(memory_poll):
    result, _ = memory_poll
    for name in ("bomb", "bomb2"):          # 100 MB in 100 KB; 512 MB in 2 KB (gzip twice)
        f = result["by_name"][name]
        assert f["status"] == "error" and f["error"].startswith("too-large:"), f
        assert "once decompressed" in f["error"] and f"{LIMIT:,}" in f["error"]
    # Inflation stops at max_bytes: httpx's own decoder would inflate a whole ~64 KB
    # network chunk at once (~64 MB here); the poll as a whole grows by a few MB.
    assert result["peak_mb"] - result["baseline_mb"] < 40, result
    assert result["by_name"]["ok"]["new"] == 5 and result["articles"] == 5


def test_03_100mb_body_with_content_length_is_refused_before_reading(memory_poll):
    f = memory_poll[0]["by_name"]["cl100"]
    assert f["status"] == "error"
    assert f["error"] == f"too-large: body of {100 * MB:,} bytes exceeds the limit of {LIMIT:,}"


def test_03_100mb_body_without_content_length_stops_at_the_limit(memory_poll):
    f = memory_poll[0]["by_name"]["chunked100"]
    assert f["status"] == "error"
    assert f["error"] == f"too-large: body exceeds the limit of {LIMIT:,} bytes (stopped reading)"


def test_03_never_ending_chunked_body_fast_hits_the_limit_slow_hits_the_deadline(memory_poll):
    fast, slow = (memory_poll[0]["by_name"][n] for n in ("endless-fast", "endless-slow"))
    assert fast["status"] == "error" and fast["error"].startswith("too-large:"), fast
    assert slow["status"] == "error" and slow["error"] == "timeout: timed out after 4 s (total deadline)"


def test_03_memory_cases_peak_rss_under_300_mb_and_cycle_goes_on(memory_poll):
    result, _ = memory_poll
    print({k: result[k] for k in ("baseline_mb", "peak_mb", "duration", "elapsed")})  # shown with -rP
    assert result["peak_mb"] < RSS_LIMIT_MB, result
    assert len(result["feeds"]) == 7 and result["by_name"]["ok"]["status"] == "ok"
    assert result["elapsed"] < 30


def test_04_slow_loris_is_cut_at_the_total_deadline(feed_server, poll):
    ok = feed_server.add("/ok", rss(stories("ok", 2)))
    # one byte a second: a per-read timeout of 2 s never fires, only the 4 s deadline
    loris = feed_server.add("/loris", handler=trickle(rss("")[:200].encode(), every=1.0))
    started = time.monotonic()
    report, store, _ = poll([("ok", ok), ("loris", loris)], poll=FAST)
    elapsed = time.monotonic() - started
    f = by_name(report)
    assert f["loris"].error == "timeout: timed out after 4 s (total deadline)"
    assert f["ok"].new == 2 and count_articles(store) == 2
    assert elapsed < 15, elapsed      # the 4 s deadline, with room for tests running beside it
    health = {h.name: h for h in store.feed_health(Clock()())}
    assert health["loris"].error_count == 1 and "total deadline" in health["loris"].last_error


def test_05_redirect_loop_is_stopped_after_max_redirects(feed_server, poll):
    loop = feed_server.add("/loop", handler=redirect("/loop"))
    report, store, _ = poll([("loop", loop)], poll={"max_redirects": 3})
    f = by_name(report)["loop"]
    assert f.status == "error" and f.error.startswith("redirect: too many redirects (more than 3)")
    assert feed_server.hits["/loop"] == 4          # the first request and three redirects
    assert store.feed_health(Clock()())[0].last_error.startswith("redirect: too many")


@pytest.mark.parametrize("location", ["file:///etc/passwd", "ftp://127.0.0.1/feed.xml",
                                      "javascript:alert(1)", "data:text/xml,<rss/>"])
def test_05_redirect_to_a_non_http_scheme_is_refused(feed_server, poll, location):
    url = feed_server.add("/r", handler=redirect(location))
    report, store, _ = poll([("r", url)])
    f = by_name(report)["r"]
    # file: and ftp: are refused by scheme; javascript: and data: cannot even be made into a
    # request URL (httpx refuses them while building the hop): both before any request.
    assert f.status == "error" and f.error.startswith(("redirect: redirected to an unsupported scheme",
                                                       "redirect: redirected to an invalid URL")), f.error
    assert feed_server.hits["/r"] == 1 and count_articles(store) == 0


def test_05_redirect_to_a_private_address_only_where_config_allows(feed_server, poll):
    """Origin 127.0.0.1, target localhost: another host whose address is loopback. The
    stance (monitor/fetch.py): configured URLs may be private (the operator chose them);
    a redirect to another, private host is refused before it is requested, unless
    poll.allow_private_redirects."""
    feed_server.add("/target", rss(stories("t", 3)))
    port = feed_server.base.rsplit(":", 1)[1]
    src = feed_server.add("/src", handler=redirect(f"http://localhost:{port}/target"))
    same = feed_server.add("/same", handler=redirect("/target", status=301))
    report, store, _ = poll([("src", src), ("same", same)])
    f = by_name(report)
    assert f["src"].error == ("redirect: redirected to a private address (localhost); "
                              "set poll.allow_private_redirects to allow it")
    assert f["same"].status == "ok" and f["same"].new == 3        # same host: followed
    assert feed_server.hits["/target"] == 1                      # refused before requesting
    report, store, _ = poll([("src", src), ("same", same)], poll={"allow_private_redirects": True})
    assert by_name(report)["src"].status == "ok"
    assert count_articles(store) == 6
