"""Several pollers on one PostgreSQL store: no feed fetched twice, no article stored twice,
and a poller killed with SIGKILL leaves its feeds to the others once its lease expires."""

import signal
import subprocess
import sys
import time

import pytest
from sqlalchemy import create_engine, text

from conftest import PG_ADMIN

pytestmark = pytest.mark.skipif(not PG_ADMIN, reason="PostgreSQL not available (.ci/pg start)")
ITEM = ("<item><title>Feed {f} item {i}: tin smelter output</title><guid>f{f}-i{i}</guid>"
        "<link>https://scale.example/{f}/{i}</link><description>Item {i} of feed {f}.</description></item>")


def rss(feed: int, items: int = 5) -> str:
    body = "".join(ITEM.format(f=feed, i=i) for i in range(items))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>F{feed}</title>{body}</channel></rss>'


def write_config(path, url, feeds, lease=300):
    lines = [f'[store]\nurl = "{url}"\n',
             f'[poll]\ncontact_url = "http://127.0.0.1/c"\nlease_seconds = {lease}\nconcurrency = 4\n'
             'read_timeout_seconds = 10\n',
             f'[classifier]\nmodel = "{path.parent / "none.skops"}"\n']
    lines += [f'[[feeds]]\nname = "feed {i}"\nurl = "{u}"\n' for i, u in enumerate(feeds)]
    path.write_text("\n".join(lines))


def poller(config, *args):
    return subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "--log-level",
                             "warning", "poll", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def scalar(url, sql):
    engine = create_engine(url)
    with engine.connect() as conn:
        value = conn.execute(text(sql)).scalar()
    engine.dispose()
    return value


def test_three_pollers_share_300_feeds_each_fetched_once(store_url, tmp_path, feed_server):
    if not store_url.startswith("postgresql"):
        pytest.skip("PostgreSQL scale-out test")
    feeds = [feed_server.add(f"/s{i}", rss(i), delay=0.02) for i in range(300)]
    config = tmp_path / "monitor.toml"
    write_config(config, store_url, feeds)
    from monitor.config import load_config
    from monitor.service import open_configured_store

    open_configured_store(load_config(config)).close()      # create the schema once
    procs = [poller(config) for _ in range(3)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outputs
    assert all(feed_server.hits[f"/s{i}"] == 1 for i in range(300))
    assert scalar(store_url, "select count(*) from article") == 1500
    assert scalar(store_url, "select count(*) from (select feed_id, key from article group by 1, 2 "
                             "having count(*) > 1) d") == 0
    worked = [out.decode().count("\n") for out, _ in outputs]
    assert sum(1 for n in worked if n > 5) >= 2, worked          # the work was really shared


def test_killed_poller_feeds_are_finished_by_the_others_after_the_lease(store_url, tmp_path, feed_server):
    if not store_url.startswith("postgresql"):
        pytest.skip("PostgreSQL scale-out test")
    feeds = [feed_server.add(f"/k{i}", rss(i), delay=0.3) for i in range(60)]
    config = tmp_path / "monitor.toml"
    write_config(config, store_url, feeds, lease=8)
    from monitor.config import load_config
    from monitor.service import open_configured_store

    open_configured_store(load_config(config)).close()
    victim = poller(config)
    deadline = time.monotonic() + 30
    while scalar(store_url, "select count(*) from feed where claimed_by is not null") == 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    orphaned = scalar(store_url, "select count(*) from feed where claimed_by is not null")
    assert orphaned > 0
    started = time.monotonic()
    while scalar(store_url, "select count(*) from feed where last_polled_at is null") > 0:
        others = [poller(config) for _ in range(2)]
        for p in others:
            p.communicate(timeout=120)
        assert time.monotonic() - started < 60, "the others never finished the killed poller's feeds"
        time.sleep(1)
    assert scalar(store_url, "select count(*) from article") == 300
    assert scalar(store_url, "select count(*) from feed where claimed_by is not null") == 0
