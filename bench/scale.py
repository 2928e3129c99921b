"""Scale-out: one cold poll cycle over 2,000 local feeds with 1, 2 and 4 `monitor poll`
processes sharing one PostgreSQL store, and one process on SQLite beside them.

Prints feeds/s for each and the speed-up over one poller. Needs PostgreSQL: set
MONITOR_TEST_PG_URL to an admin URL, or let the script start a throwaway cluster with
.ci/pg. The feed server runs in a process of its own (threads); each poller is its own process.

    .venv/bin/python bench/scale.py [--feeds 2000] [--items 20]
"""

from __future__ import annotations

import argparse
import multiprocessing
import threading
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from feedserver import FeedServer  # noqa: E402

# Mostly ordinary words, a few topic words: news-like text for parsing and analysis.
WORDS = ("the a of in and to for with on by from said company government market year week "
         "percent million billion would could after before first new last more than about "
         "report analysts shares investors quarter growth talks officials plan minister "
         "production output prices demand supply exports imports deal project plant "
         "region city state agency industry customers workers contract court election "
         "weather team season match league bank rate inflation budget tax energy").split() + \
        ("gallium lithium copper nickel graphite licence refinery smelter mine rare earths").split()


def feed_body(rng: random.Random, n: int, items: int) -> str:
    entries = []
    for i in range(items):
        title = " ".join(rng.choice(WORDS) for _ in range(10)).capitalize()
        desc = " ".join(rng.choice(WORDS) for _ in range(rng.randint(50, 160)))
        entries.append(f"<item><title>{title}</title><guid>f{n}-{i}</guid>"
                       f"<link>https://bench.example/{n}/{i}</link><description>{desc}.</description>"
                       f"<pubDate>Tue, 03 Jun 2025 07:{i % 60:02d}:00 GMT</pubDate></item>")
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {n}</title>{"".join(entries)}</channel></rss>'


def serve(feeds: int, items: int, queue) -> None:
    server = FeedServer().start()
    rng = random.Random(3)
    for i in range(feeds):
        server.add(f"/f{i}", feed_body(rng, i, items))
    queue.put(server.base)
    threading.Event().wait()


def write_config(path: Path, url: str, feeds: list[str]) -> None:
    lines = [f'[store]\nurl = "{url}"\n',
             '[poll]\ncontact_url = "http://127.0.0.1/c"\nconcurrency = 8\nper_host = 8\nread_timeout_seconds = 60\n']
    lines += [f'[[feeds]]\nname = "feed {i}"\nurl = "{u}"\n' for i, u in enumerate(feeds)]
    path.write_text("\n".join(lines))


def fresh_pg(admin: str) -> str:
    name = "bench_" + uuid.uuid4().hex[:8]
    engine = create_engine(admin, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine.dispose()
    return make_url(admin).set(database=name).render_as_string(hide_password=False)


def run(config: Path, url: str, processes: int) -> tuple[float, int]:
    from monitor.config import load_config
    from monitor.service import open_configured_store

    open_configured_store(load_config(config)).close()          # schema and feeds, not timed
    started = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "--log-level",
                               "error", "poll"], stdout=subprocess.DEVNULL) for _ in range(processes)]
    for proc in procs:
        proc.wait()
    elapsed = time.perf_counter() - started
    engine = create_engine(url)
    with engine.connect() as conn:
        polled = conn.execute(text("select count(*) from feed where last_polled_at is not null")).scalar()
    engine.dispose()
    return elapsed, polled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=2000)
    parser.add_argument("--items", type=int, default=20)
    args = parser.parse_args()
    admin, pg_dir = os.environ.get("MONITOR_TEST_PG_URL"), None
    if not admin:
        out = subprocess.run(["bash", str(ROOT / ".ci" / "pg"), "start"], capture_output=True, text=True).stdout
        env = dict(line.removeprefix("export ").split("=", 1) for line in out.splitlines()
                   if line.startswith("export "))
        admin, pg_dir = env.get("MONITOR_TEST_PG_URL"), env.get("MONITOR_TEST_PG_DIR")
    if not admin:
        sys.exit("PostgreSQL not available")
    queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(args.feeds, args.items, queue), daemon=True)
    server.start()                      # its own process: it does not share the pollers' GIL
    base = queue.get(timeout=120)
    feeds = [f"{base}/f{i}" for i in range(args.feeds)]
    results = {}
    try:
        with tempfile.TemporaryDirectory() as folder:
            for label, processes in (("SQLite, 1 process", 1), ("PostgreSQL, 1 poller", 1),
                                     ("PostgreSQL, 2 pollers", 2), ("PostgreSQL, 4 pollers", 4)):
                url = f"sqlite:///{folder}/bench.db" if label.startswith("SQLite") else fresh_pg(admin)
                config = Path(folder) / f"{uuid.uuid4().hex}.toml"
                write_config(config, url, feeds)
                elapsed, polled = run(config, url, processes)
                results[label] = args.feeds / elapsed
                print(f"{label:<24} {elapsed:7.1f} s  {args.feeds / elapsed:7.1f} feeds/s  "
                      f"({polled} of {args.feeds} feeds polled)", flush=True)
    finally:
        server.terminate()
        if pg_dir:
            subprocess.run(["bash", str(ROOT / ".ci" / "pg"), "stop", pg_dir])
    one = results["PostgreSQL, 1 poller"]
    for n in (2, 4):
        ratio = results[f"PostgreSQL, {n} pollers"] / one
        target = " (target ≥ 1.7×: " + ("PASS" if ratio >= 1.7 else "FAIL") + ")" if n == 2 else ""
        print(f"speed-up with {n} pollers: {ratio:.2f}×{target}")
    print(f"machine: {os.cpu_count()} cores; the feed server shares them with the pollers")


if __name__ == "__main__":
    main()
