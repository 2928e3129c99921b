"""Shared pieces of the hostile suite (tests/hostile): feed documents, hostile request
handlers for ``tests/feedserver.py`` (``Route(handler=...)``), a poll helper, and a poll
in a fresh subprocess that reports its peak RSS.

Not a conftest: test modules import what they use (``from hostile_kit import poll``), so
the ``conftest`` module of tests/ stays the only one.
"""

from __future__ import annotations

import gzip
import itertools
import json
import sqlite3
import subprocess
import sys
import threading
import time
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from xml.sax.saxutils import escape

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("probe_poll.py")
RSS_LIMIT_MB = 300          # the bound for the peak RSS of a poll
MB = 1024 * 1024


class Clock:
    def __init__(self, start=datetime(2025, 6, 5, 8, 0, tzinfo=timezone.utc)):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **kw):
        self.now += timedelta(**kw)


# -- documents ---------------------------------------------------------------------------
def item(key: str, title: str | None = None, text: str | None = None, link: str | None = None,
         pub: str | None = None) -> str:
    """One RSS item; ``key`` makes guid, title and link unique (values are XML-escaped)."""
    link = link or f"https://news.example/{key}"
    parts = [f"<title>{escape(title or f'Story {key}')}</title>", f"<link>{escape(link)}</link>",
             f"<guid>{escape(key)}</guid>",
             f"<description>{escape(text or f'Text of story {key}.')}</description>"]
    if pub:
        parts.append(f"<pubDate>{pub}</pubDate>")
    return "<item>" + "".join(parts) + "</item>"


def rss(items: list[str] | str, prolog: str = "", declaration: str = '<?xml version="1.0" encoding="utf-8"?>',
        title: str = "Hostile feed") -> str:
    body = items if isinstance(items, str) else "".join(items)
    return (f"{declaration}\n{prolog}\n<rss version=\"2.0\"><channel><title>{title}</title>"
            f"<link>https://news.example/</link><description>d</description>{body}</channel></rss>")


def stories(prefix: str, n: int, start: int = 0) -> list[str]:
    return [item(f"{prefix}-{i}") for i in range(start, start + n)]


# -- hostile handlers (each runs in a server thread and must end on its own) --------------
def _start(req, status: int = 200, headers: dict[str, str] | None = None) -> None:
    req.send_response(status)
    for name, value in (headers or {}).items():
        req.send_header(name, value)
    req.end_headers()


def _chunk(req, data: bytes) -> None:
    req.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


def trickle(head: bytes, every: float, for_seconds: float = 20.0):
    """Slow-loris: headers and ``head`` at once, then one byte every ``every`` seconds,
    chunked, for at most ``for_seconds`` (the client is expected to give up long before)."""
    def handler(req):
        _start(req, headers={"Content-Type": "application/rss+xml", "Transfer-Encoding": "chunked"})
        stop = time.monotonic() + for_seconds
        try:
            _chunk(req, head)
            while time.monotonic() < stop:
                time.sleep(every)
                _chunk(req, b" ")
            req.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        req.close_connection = True
    return handler


def endless(piece: bytes = b"<!-- never ends -->" * 50, every: float = 0.0, for_seconds: float = 30.0):
    """A chunked body that never ends (until the client leaves or ``for_seconds``)."""
    def handler(req):
        _start(req, headers={"Content-Type": "application/rss+xml", "Transfer-Encoding": "chunked"})
        stop = time.monotonic() + for_seconds
        try:
            _chunk(req, rss("").encode()[:-len("</channel></rss>")])
            while time.monotonic() < stop:
                _chunk(req, piece)
                if every:
                    time.sleep(every)
        except OSError:
            pass
        req.close_connection = True
    return handler


def huge(size: int, content_length: bool):
    """A body of ``size`` bytes of XML filler, with a Content-Length or chunked."""
    piece = b"<!-- filler filler filler filler filler filler filler filler -->\n" * 4096

    def handler(req):
        headers = {"Content-Type": "application/rss+xml"}
        headers.update({"Content-Length": str(size)} if content_length else {"Transfer-Encoding": "chunked"})
        _start(req, headers=headers)
        sent = 0
        try:
            while sent < size:
                part = piece[:size - sent]
                req.wfile.write(part) if content_length else _chunk(req, part)
                sent += len(part)
            if not content_length:
                req.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass
        req.close_connection = True
    return handler


def gzip_bomb(inflated: int, layers: int = 1) -> bytes:
    """A gzip body (``layers`` times compressed) inflating to ``inflated`` bytes: a feed's
    start, then zeros."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [compressor.compress(rss("").encode()[:-len("</channel></rss>")] + b"<!--")]
    zeros = bytes(MB)
    parts += [compressor.compress(zeros) for _ in range(inflated // MB)]
    body = b"".join(parts) + compressor.flush()
    for _ in range(layers - 1):
        body = gzip.compress(body, 9)
    return body


def redirect(location: str, status: int = 302):
    def handler(req):
        req._send(status, b"", "text/plain", {"Location": location})
    return handler


def sequence(*responses):
    """Each request gets the next ``(status, body)`` of ``responses``, round and round."""
    turns = itertools.cycle(responses)
    lock = threading.Lock()

    def handler(req):
        with lock:
            status, body = next(turns)
        req._send(status, body, "application/rss+xml" if status == 200 else "text/plain")
    return handler


# -- polling -----------------------------------------------------------------------------
@pytest.fixture
def poll(make_config):
    """poll(feeds, clock=..., analyze=..., **sections) → (report, store, config); the
    store stays open until the test ends."""
    from monitor.pipeline import Poller
    from monitor.service import open_configured_store

    opened = []

    def go(feeds, clock=None, include_all=True, analyze=None, **sections):
        config = make_config(feeds, **sections)
        clock = clock or Clock()
        store = open_configured_store(config, clock())
        opened.append(store)
        extra = {"analyze": analyze} if analyze is not None else {}
        report = Poller(store, config, clock=clock, **extra).run_cycle(include_all=include_all)
        return report, store, config
    yield go
    for store in opened:
        store.close()


def by_name(report) -> dict:
    return {f.name: f for f in report.feeds}


def poll_in_subprocess(config, timeout: float = 120) -> dict:
    """One cycle of ``config`` in a fresh interpreter (tests/hostile/probe_poll.py): its
    reports, stored articles and peak RSS in MB (before and after the cycle)."""
    data = json.dumps(config.model_dump(mode="json", by_alias=True))
    proc = subprocess.run([sys.executable, str(PROBE)], input=data, capture_output=True,
                          text=True, timeout=timeout, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["by_name"] = {f["name"]: f for f in result["feeds"]}
    return result


def db_rows(db: Path, sql: str, *args) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchall()


def duplicates(db: Path) -> int:
    return db_rows(db, "select count(*) from (select feed_id, key from article "
                       "group by 1, 2 having count(*) > 1)")[0][0]
