"""The review pages at scale: `monitor serve`'s flagged list over a 200,000-article store.

Fills a SQLite store (200,000 articles, 20,000 flagged over a year, each naming two
countries and a mineral, ten languages), starts a real `monitor serve` process on
127.0.0.1 with the shipped defaults, and times whole HTTP requests of the flagged list
with the filters an analyst uses (client side: request sent → last byte read). Beside it,
in the same run, the peer analysts use today: Datasette serving the same file's `flagged`
view with the same filters (skipped with a note when Datasette is not installed:
`pip install datasette`). Prints p50/p95 per query, the ratio of p95s, and the verdict
against the target: every query's p95 ≤ 200 ms.

    .venv/bin/python bench/serve.py [--articles 200000] [--flagged 20000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from digest import NOW, fill  # noqa: E402

TARGET = 0.200


def queries() -> list[tuple[str, str, str]]:
    """(what, monitor path, Datasette path) — the same filter on both."""
    month = (NOW - timedelta(days=30)).date().isoformat()
    end = NOW.date().isoformat()
    view = "/bench/flagged?_sort_desc=published&_size=50"
    return [
        ("newest 50 flagged", "/", view),
        ("country CN", "/?country=CN", view + "&countries__contains=CN"),
        ("mineral + topic", "/?mineral=gallium&topic=export-controls",
         view + "&minerals__contains=gallium&topics__contains=export-controls"),
        ("language + 30 days", f"/?lang=de&from={month}&to={end}",
         view + f"&language__exact=de&published__gte={month}&published__lte={end} 23:59:59"),
        ("free text", "/?q=refinery+quota", view + "&title__contains=refinery+quota"),
        ("free text with ss", "/?q=press+release", view + "&title__contains=press+release"),
        ("unreviewed, page 10", "/?status=unreviewed&page=10", ""),
        ("item page", "/items/{item}", "/bench/article/{item}"),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(url: str, proc: subprocess.Popen, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{url}: the server exited ({proc.returncode})")
        try:
            httpx.get(url, timeout=2)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url}: not up after {seconds:.0f} s")


def timed(client: httpx.Client, path: str, repeat: int) -> list[float]:
    client.get(path)                                   # warm: first import of a page's code
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        response = client.get(path)
        out.append(time.perf_counter() - t0)
        if response.status_code != 200:
            raise SystemExit(f"{path}: HTTP {response.status_code}")
    return out


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, int(round(0.95 * len(values))) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=200_000)
    parser.add_argument("--flagged", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        started = time.perf_counter()
        fill(db, args.articles, args.flagged, flagged_days=365)
        print(f"store: {args.articles:,} articles, {args.flagged:,} flagged over a year, "
              f"{db.stat().st_size / 1e6:.0f} MB (filled in {time.perf_counter() - started:.0f} s)")
        config = Path(folder) / "monitor.toml"
        config.write_text(f'[store]\nurl = "sqlite:///{db}"\n', encoding="utf-8")
        port = free_port()
        monitor = subprocess.Popen([sys.executable, "-m", "monitor", "--config", str(config), "serve",
                                    "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        peer = None
        datasette = shutil.which("datasette", path=str(Path(sys.executable).parent) + os.pathsep
                                 + os.environ.get("PATH", ""))
        try:
            wait_up(f"http://127.0.0.1:{port}/healthz", monitor)
            if datasette:
                peer_port = free_port()
                peer = subprocess.Popen([datasette, str(db), "--port", str(peer_port), "--setting",
                                         "sql_time_limit_ms", "20000"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                wait_up(f"http://127.0.0.1:{peer_port}/", peer)
            else:
                print("Datasette not installed (pip install datasette): monitor's figures only")
            ours = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
            theirs = httpx.Client(base_url=f"http://127.0.0.1:{peer_port}", timeout=60) if peer else None
            item = sqlite3.connect(db).execute("select max(id) from article where flagged").fetchone()[0]
            print(f"{'query':<22}{'monitor p50':>12}{'p95':>8}{'Datasette p50':>15}{'p95':>8}{'ratio p95':>11}")
            worst = 0.0
            for what, mine, peers in queries():
                a = timed(ours, mine.format(item=item), args.repeat)
                worst = max(worst, p95(a))
                line = f"{what:<22}{statistics.median(a) * 1e3:>10.0f}ms{p95(a) * 1e3:>6.0f}ms"
                if theirs is not None and peers:
                    b = timed(theirs, peers.format(item=item), args.repeat)
                    line += (f"{statistics.median(b) * 1e3:>13.0f}ms{p95(b) * 1e3:>6.0f}ms"
                             f"{p95(a) / p95(b):>10.3g}×")
                print(line)
            print(f"worst p95 {worst * 1e3:.0f} ms; target every query ≤ {TARGET * 1e3:.0f} ms: "
                  f"{'PASS' if worst <= TARGET else 'FAIL'}")
        finally:
            for proc in (monitor, peer):
                if proc is not None:
                    proc.terminate()
                    proc.wait(10)


if __name__ == "__main__":
    main()
