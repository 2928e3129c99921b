from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from feedserver import FeedServer  # noqa: E402

# the unpacked language model (monitor.langcache) goes to a folder of the test run, never to
# the user's ~/.cache; services started by tests inherit it
if "MONITOR_CACHE_DIR" not in os.environ:
    os.environ["MONITOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="monitor-test-cache-")
    atexit.register(shutil.rmtree, os.environ["MONITOR_CACHE_DIR"], True)

# services and commands that tests start as `python -m monitor` from their own folders
# import this checkout's monitor, not the one the interpreter has installed (an editable
# install of another checkout, when a clone is tested with that checkout's virtualenv)
_CHECKOUT = str(Path(__file__).resolve().parents[1])
if os.environ.get("PYTHONPATH", "").split(os.pathsep)[0] != _CHECKOUT:
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, (_CHECKOUT, os.environ.get("PYTHONPATH"))))

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


PG_ADMIN = os.environ.get("MONITOR_TEST_PG_URL")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    """A fresh, empty store URL on each engine: a SQLite file, or a new PostgreSQL database
    in the throwaway cluster that .ci/pg starts (skipped when there is none)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'monitor.db'}"
        return
    if not PG_ADMIN:
        pytest.skip("PostgreSQL not available: eval \"$(.ci/pg start)\" sets MONITOR_TEST_PG_URL")
    from sqlalchemy import create_engine, make_url, text

    name = "t_" + uuid.uuid4().hex[:12]
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    yield make_url(PG_ADMIN).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


@pytest.fixture
def sqlite_only(store_url):
    if not store_url.startswith("sqlite"):
        pytest.skip("SQLite-specific")


@pytest.fixture
def make_config(tmp_path, store_url):
    """Build a validated Config for a temp store, with the given feeds and overrides."""
    from monitor.config import parse_config

    def build(feeds=(), **sections):
        data = {"store": {"url": store_url},
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


def kill_when_ready(code: str, *args: str, ready: Path, doing: str) -> None:
    """Run ``python -c code *args``, wait until it writes the file ``ready`` (it has reached
    the moment to be killed in), then SIGKILL it, as the OOM killer or a power cut would."""
    import signal
    import subprocess
    import time

    child = subprocess.Popen([sys.executable, "-c", code, *args], stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not ready.exists():
            assert child.poll() is None, child.communicate()[1]
            assert time.monotonic() < deadline, f"it never started {doing}"
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            child.kill()
        child.communicate()
    ready.unlink()


# Tests that mostly wait (on the real clock, a subprocess, a browser) and take ten seconds or
# more: run first, so that the workers' other tests fill that time instead of the slowest
# one starting last and the suite waiting for it alone.
LONG_WAITS = ("test_digest_at_send_at_once_keyword_reload_and_sigterm",
              "test_installed_wheel_trains_from_its_bundled_corpus",
              "test_killed_poller_feeds_are_finished_by_the_others_after_the_lease",
              "test_13_kill_9_during_cycles_then_due_polls_lose_and_duplicate_nothing",
              "test_missed_digest_sent_once_and_kill_9_loses_and_repeats_nothing",
              "test_a_digest_link_marks_an_item_not_relevant_and_training_picks_it_up",
              "test_feeds_queued_past_the_lease_are_not_fetched_by_a_second_poller")


def pytest_collection_modifyitems(config, items):
    items.sort(key=lambda item: getattr(item, "originalname", item.name) not in LONG_WAITS)
