from __future__ import annotations

import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from feedserver import FeedServer  # noqa: E402

FEEDS = Path(__file__).parent / "feeds"
SHARED = Path(__file__).resolve().parents[1].parent / "shared"


@pytest.fixture
def feed_server():
    server = FeedServer().start()
    yield server
    server.stop()


@pytest.fixture
def feed_file():
    return lambda name: (FEEDS / name).read_bytes()


@pytest.fixture
def make_config(tmp_path):
    """Build a validated Config for a temp store, with the given feeds and overrides."""
    from monitor.config import parse_config

    def build(feeds=(), **sections):
        data = {"store": {"url": f"sqlite:///{tmp_path / 'monitor.db'}"},
                "poll": {"contact_url": "http://127.0.0.1/contact", "connect_timeout_seconds": 2,
                         "read_timeout_seconds": 3},
                "digest": {"outbox_dir": str(tmp_path / "outbox"), "recipients": ["a@example.org"]},
                "feeds": [{"name": n, "url": u} for n, u in feeds]}
        for key, value in sections.items():
            data.setdefault(key, {}).update(value) if isinstance(value, dict) else data.__setitem__(key, value)
        return parse_config(data, "test.toml")
    return build


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)
