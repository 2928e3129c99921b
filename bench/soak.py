"""Soak: many feeds, a tenth of them hostile, many cycles with changing content (issue 8).

    .venv/bin/python bench/soak.py [--feeds 1000] [--cycles 20] [--hostile 0.1]
                                   [--workers 16] [--max-mb 4] [--analysis]

    # issue 17's memory figures: one service, 200 feeds, the shipped analysis and size limit
    .venv/bin/python bench/soak.py --feeds 200 --cycles 10 --workers 8 --max-mb 15 --analysis

What happens:

* A child process serves the feeds over HTTP/1.1 on 127.0.0.1 (tests/feedserver.py,
  threads). A normal feed has 10 items and slides by 2 each cycle (cycle c serves items
  2c … 2c+9), so every cycle brings 2 new items per feed. The hostile feeds cycle
  through the kinds of tests/hostile (KINDS below): gzip bomb, 100 MB body with a
  Content-Length, endless chunked body, slow-loris, redirect loop, redirect to a private
  address, not-a-feed (HTML, JSON, garbage, empty), entity expansion / XXE, broken
  encodings (NUL, lone surrogates, invalid UTF-8), and a feed flipping between 200 (with
  sliding content) and 500.
* This process polls them: ``Poller(store, config).run_cycle(include_all=True)`` per
  cycle (the code behind ``monitor poll --all``, with the pipeline's no-op analysis
  seam), on a fresh SQLite store, the clock one hour further each cycle. Poll settings:
  per_host = concurrency = ``--workers`` (all feeds share one host), a 2 + 3 s deadline,
  max_bytes ``--max-mb``.
* ``--analysis``: the poller gets the shipped analysis (``service.build_analyzer``, built
  once and kept, as ``monitor run`` keeps it: language, model, countries, minerals) instead
  of the no-op seam, and parse processes kept from cycle to cycle as ``monitor run`` keeps
  them (``ParsePool(keep=True)``), and the RSS of the whole process tree (this process and
  its parse processes, sampled every 50 ms) is printed per cycle too, with this process's
  share of that peak ("of it svc"): "steady" is the tree after the last cycle (this
  process, the kept parse process, their fork server and multiprocessing's resource
  tracker), and every cycle's tree peak is compared with it.
* It prints per cycle: seconds, new, updated, errors and the process RSS; then cycles
  per minute, the peak RSS (VmHWM), RSS growth after the first cycle, articles
  stored against the exact set expected (lost, duplicated, unexpected), and errors per
  kind. Targets (issue 8): nothing lost or duplicated, RSS growth after the first cycle
  at most 10 %. The RSS is this (the service's) process: feeds are parsed in worker
  processes (``poll.parse_processes``); without ``--analysis`` they start with each cycle
  and end with it (as ``monitor poll``'s), so whatever a parser leaves behind is returned
  to the system every cycle; with it they are kept as ``monitor run`` keeps them.
"""

from __future__ import annotations

import argparse
import logging
import multiprocessing
import resource
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "tests"), str(ROOT / "tests" / "hostile")]

from feedserver import FeedServer  # noqa: E402
from hostile_kit import (  # noqa: E402
    MB, endless, gzip_bomb, huge, item, redirect, rss, trickle,
)

WINDOW, STEP = 10, 2
KINDS = ["gzip-bomb", "huge-body", "endless", "slow-loris", "redirect-loop", "private-redirect",
         "not-a-feed", "entities", "encodings", "flip"]
NOT_FEEDS = [(b"<!doctype html><html><body>moved</body></html>", "text/html"),
             (b'{"error": "rate limited"}', "application/json"),
             (bytes(range(256)) * 40, "application/rss+xml"), (b"", "application/rss+xml")]


def window(name: str, cycle: int) -> list[str]:
    """The items a changing feed serves in ``cycle``."""
    return [item(f"{name}-{i}", text=f"Story {i} of {name}, as served from cycle {cycle // 5}.")
            for i in range(STEP * cycle, STEP * cycle + WINDOW)]


def static_docs(name: str, secret: Path) -> dict[str, bytes]:
    lol = "".join(['<!ENTITY lol "lol">'] + [f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">'
                                             for i in range(1, 10)])
    big = "A" * 50_000
    return {
        "entities-0": rss([item(f"{name}-laughs", title="&lol9;")], f"<!DOCTYPE rss [{lol}]>").encode(),
        "entities-1": rss([item(f"{name}-quad", title="&a;" * 5000)],
                          f'<!DOCTYPE rss [\n<!ENTITY a "{big}">\n]>').encode(),
        "entities-2": rss([item(f"{name}-xxe", title="&x;")],
                          f'<!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]>').encode(),
        "encodings-0": rss([item(f"{name}-nul", title="N\x00UL")]).encode(),
        "encodings-1": rss(f"<item><title>surrogate &#xD800;x</title><guid>{name}-sur</guid></item>").encode(),
        "encodings-2": rss([item(f"{name}-latin", title="caf\xe9")]).encode("latin-1"),
    }


def serve(n_feeds: int, n_hostile: int, cycle, ready, port, stop, secret: str) -> None:
    """The child process: one FeedServer with every route; ``cycle`` is shared."""
    server = FeedServer(backlog=512)
    server._httpd.handle_error = lambda request, address: None   # clients hang up on hostiles
    bomb = gzip_bomb(512 * MB, layers=2)
    for i in range(n_feeds):
        kind = KINDS[i % len(KINDS)] if i < n_hostile else "normal"
        name = feed_name(i, n_hostile)
        server.routes[f"/{name}"] = route(server, kind, name, i, cycle, bomb, Path(secret))
    server.start()
    port.value = int(server.base.rsplit(":", 1)[1])
    ready.set()
    stop.wait()
    server.stop()


def route(server, kind, name, i, cycle, bomb, secret):
    from feedserver import Route

    def changing(req):
        doc = rss(window(name, cycle.value)).encode()
        req._send(200, doc, "application/rss+xml")

    def flip(req):
        if cycle.value % 2:
            return req._send(500, b"oops", "text/plain")
        changing(req)

    variant = (i // len(KINDS)) % 3
    static = static_docs(name, secret)
    handlers = {
        "normal": changing, "flip": flip,
        "gzip-bomb": lambda req: req._send(200, bomb, "application/rss+xml", {"Content-Encoding": "gzip, gzip"}),
        "huge-body": huge(100 * MB, content_length=True),
        "endless": endless(),
        "slow-loris": trickle(b"<?xml version='1.0'?><rss version='2.0'><channel>", every=1.0, for_seconds=12),
        "redirect-loop": redirect(f"/{name}"),
        "private-redirect": lambda req: redirect(f"http://localhost:{req.server.server_address[1]}/{name}")(req),
        "not-a-feed": lambda req: req._send(200, *NOT_FEEDS[i // len(KINDS) % len(NOT_FEEDS)]),
        "entities": lambda req: req._send(200, static[f"entities-{variant}"], "application/xml"),
        "encodings": lambda req: req._send(200, static[f"encodings-{variant}"], "application/rss+xml; charset=utf-8"),
    }
    return Route(handler=handlers[kind])


def feed_name(i: int, n_hostile: int) -> str:
    return f"h{i:04d}-{KINDS[i % len(KINDS)]}" if i < n_hostile else f"n{i:04d}"


def expected_keys(names: list[str], cycles: int) -> set[tuple[str, str]]:
    """(feed name, guid) of every article the run must have stored, exactly once."""
    keys = set()
    for name in names:
        kind = name.split("-", 1)[1] if name.startswith("h") else "normal"
        served = {"normal": range(cycles), "flip": range(0, cycles, 2)}.get(kind, ())
        for c in served:
            keys.update((name, f"{name}-{i}") for i in range(STEP * c, STEP * c + WINDOW))
        if kind == "entities":
            keys.add((name, {0: f"{name}-laughs", 1: f"{name}-quad", 2: f"{name}-xxe"}[_variant(name)]))
        if kind == "encodings":
            keys.add((name, {0: f"{name}-nul", 1: f"{name}-sur", 2: f"{name}-latin"}[_variant(name)]))
    return keys


def _variant(name: str) -> int:
    return (int(name[1:5]) // len(KINDS)) % 3


def traced() -> str:
    import gc
    import tracemalloc

    gc.collect()
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    anon, file = (int(status.get(k, "0 kB").split()[0]) / 1024 for k in ("RssAnon", "RssFile"))
    return (f" {tracemalloc.get_traced_memory()[0] / MB:>6.1f} {len(gc.get_objects()):>8}"
            f" anon {anon:.0f} file {file:.0f}")


def peak_mb() -> float:
    """Peak RSS of this process: VmHWM (ru_maxrss would include a large parent's peak,
    which Linux carries over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / MB


def tree_rss_mb(exclude: int | None) -> float:
    """Summed RSS of this process and its descendants, without ``exclude`` and its own."""
    import psutil

    skip = {p.pid for p in _with_children(exclude)} if exclude else set()
    total = 0
    for proc in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        if proc.pid not in skip:
            try:
                total += proc.memory_info().rss
            except psutil.Error:
                pass
    return total / MB


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument("--cycles", type=int, default=20)
    parser.add_argument("--hostile", type=float, default=0.1)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--max-mb", type=float, default=4)
    parser.add_argument("--analysis", action="store_true",
                        help="poll with the shipped analysis (model, language, countries, minerals)")
    parser.add_argument("--trace", action="store_true",
                        help="also print Python's own allocations per cycle (tracemalloc; slower)")
    args = parser.parse_args()
    n_hostile = int(args.feeds * args.hostile)
    logging.basicConfig(level=logging.ERROR)         # a failing feed logs a warning: quiet

    from monitor.config import parse_config
    from monitor.parsepool import ParsePool, parse_processes
    from monitor.pipeline import Poller
    from monitor.service import build_analyzer, open_configured_store

    tmp = Path(tempfile.mkdtemp(prefix="monitor-soak-"))
    secret = tmp / "secret.txt"
    secret.write_text("TOPSECRET")
    ctx = multiprocessing.get_context("fork")
    cycle, port = ctx.Value("i", 0), ctx.Value("i", 0)
    ready, stop = ctx.Event(), ctx.Event()
    child = ctx.Process(target=serve, args=(args.feeds, n_hostile, cycle, ready, port, stop, str(secret)),
                        daemon=True)
    child.start()
    ready.wait(120)
    names = [feed_name(i, n_hostile) for i in range(args.feeds)]
    config = parse_config({
        "store": {"url": f"sqlite:///{tmp / 'soak.db'}"},
        "poll": {"contact_url": "http://127.0.0.1/soak", "concurrency": args.workers,
                 "per_host": min(args.workers, 16), "connect_timeout_seconds": 2,
                 "read_timeout_seconds": 3, "max_bytes": int(args.max_mb * MB)},
        "feeds": [{"name": n, "url": f"http://127.0.0.1:{port.value}/{n}"} for n in names]}, "soak")
    clock_now = [datetime(2025, 6, 5, 8, 0, tzinfo=timezone.utc)]
    store = open_configured_store(config, clock_now[0])
    print(f"soak: {args.feeds} feeds ({args.feeds - n_hostile} normal, {n_hostile} hostile of "
          f"{len(KINDS)} kinds), {args.cycles} cycles, workers {args.workers}, "
          f"max_bytes {args.max_mb:g} MB, store {tmp / 'soak.db'}")
    analyze = build_analyzer(config) if args.analysis else None
    # as monitor run keeps them: parse processes that stay from cycle to cycle
    parser = ParsePool(parse_processes(config.poll.parse_processes), keep=True) if analyze else None
    print(f"{'cycle':>5} {'secs':>6} {'new':>6} {'upd':>5} {'errors':>6} {'rss MB':>7}"
          + (f" {'tree peak':>9} {'of it svc':>9}" if analyze else "")
          + (f" {'py MB':>6} {'objects':>8}" if args.trace else ""))
    if args.trace:
        import tracemalloc

        tracemalloc.start()
    errors: Counter[str] = Counter()
    rss, durations, tree_peaks = [], [], []
    started = time.monotonic()
    for c in range(args.cycles):
        cycle.value = c
        kwargs = {"analyze": analyze, "parser": parser} if analyze else {}
        with TreePeak(exclude={child.pid}) as tree:         # not the feed server
            report = Poller(store, config, clock=lambda: clock_now[0], **kwargs).run_cycle(include_all=True)
        clock_now[0] += timedelta(hours=1)
        errors.update(f.error.split(":", 1)[0] for f in report.feeds if f.error)
        rss.append(rss_mb())
        tree_peaks.append(tree.peak)
        durations.append(report.duration)
        print(f"{c + 1:>5} {report.duration:>6.1f} {report.total('new'):>6} {report.total('updated'):>5} "
              f"{report.count('error'):>6} {rss[-1]:>7.1f}"
              + (f" {tree.peak:>9.1f} {tree.service:>9.1f}" if analyze else "")
              + (traced() if args.trace else ""), flush=True)
    elapsed = time.monotonic() - started
    steady = tree_rss_mb(exclude=child.pid) if analyze else 0.0
    if parser is not None:
        parser.close()
    store.close()
    stop.set()
    child.join(10)
    summarise(tmp / "soak.db", names, args, elapsed, rss, errors)
    if analyze:
        print(f"process tree (--analysis): steady {steady:.0f} MB after the last cycle (this "
              f"process {rss[-1]:.0f} MB, the rest its kept parse process, their fork server "
              f"and multiprocessing's resource tracker, which stay between cycles; target <= "
              f"250 MB); highest tree peak in a cycle {max(tree_peaks):.0f} MB, "
              f"{max(tree_peaks) - steady:+.0f} MB over steady (target <= +60 MB)")


class TreePeak:
    """The largest summed RSS of this process and its children (those in ``exclude`` and
    theirs left out) while the block runs."""

    def __init__(self, exclude: set[int | None]) -> None:
        self.exclude = exclude

    def __enter__(self) -> TreePeak:
        import threading

        import psutil

        self.peak = self.service = 0.0      # the tree's peak; this process's RSS then
        self._stop = threading.Event()
        me = psutil.Process()

        def sample() -> None:
            while not self._stop.wait(0.05):
                total = mine = 0
                skip = {p.pid for x in self.exclude if x for p in _with_children(x)}
                for proc in [me, *me.children(recursive=True)]:
                    if proc.pid in skip:
                        continue
                    try:
                        size = proc.memory_info().rss
                    except psutil.Error:
                        continue
                    total += size
                    mine = size if proc is me else mine
                if total / MB > self.peak:
                    self.peak, self.service = total / MB, mine / MB
        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _with_children(pid: int) -> list:
    import psutil

    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return []


def summarise(db: Path, names, args, elapsed, rss, errors) -> None:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("select f.name, a.guid, a.title, a.text from article a "
                            "join feed f on f.id = a.feed_id").fetchall()
    stored = Counter((name, guid.rsplit("/", 1)[-1]) for name, guid, _, _ in rows)
    expected = expected_keys(names, args.cycles)
    lost = expected - set(stored)
    duplicated = sum(n - 1 for n in stored.values() if n > 1)
    unexpected = set(stored) - expected
    leaked = sum("TOPSECRET" in (t or "") + (x or "") or "lollol" in (t or "") for _, _, t, x in rows)
    peak = peak_mb()
    growth = (max(rss[1:]) / rss[0] - 1) * 100 if len(rss) > 1 else 0.0
    print(f"cycles/min: {args.cycles / elapsed * 60:.2f}  ({elapsed:.0f} s for {args.cycles} cycles)")
    print(f"RSS: peak (VmHWM) {peak:.0f} MB; after cycle 1 {rss[0]:.0f} MB, highest after "
          f"{max(rss[1:] or rss):.0f} MB, last {rss[-1]:.0f} MB: growth {growth:+.1f} % (target <= 10 %)")
    print(f"articles: stored {len(rows)}, expected {len(expected)}; lost {len(lost)}, duplicated "
          f"{duplicated}, unexpected {len(unexpected)}; expanded entities or file contents stored: {leaked}")
    print("errors per kind (feed-cycles): " + ", ".join(f"{k} {n}" for k, n in sorted(errors.items())))
    ok = not lost and not duplicated and not unexpected and not leaked and growth <= 10
    print("targets: " + ("met" if ok else "NOT met"))
    if lost or unexpected:
        print("  e.g. lost", sorted(lost)[:3], "unexpected", sorted(unexpected)[:3])


if __name__ == "__main__":
    main()
