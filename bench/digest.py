"""Digest at scale: a store with 200,000 articles, 2,000 of them flagged in the period.

Times select (ledger query) + cluster + render of one digest, and the whole of
`monitor digest --preview` (``DigestJob.preview``: also feed health, the coverage line and
the 7-day averages), and prints the figures and the store size. Target: ≤ 1 s.

    .venv/bin/python bench/digest.py [--articles 200000] [--flagged 2000]
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from monitor.cluster import cluster
from monitor.config import parse_config
from monitor.digest import build_digest, render, subject
from monitor.storage import open_store

WORDS = ("gallium germanium antimony graphite lithium cobalt nickel copper tungsten rare earth "
         "magnet refinery smelter export licence ministry shipment tonnes price output mine "
         "project offtake agreement battery cathode supply chain control ban quota China Japan "
         "Chile Congo Indonesia Australia Canada Germany investment plant capacity demand").split()
NOW = datetime(2025, 6, 3, 5, 0, tzinfo=timezone.utc)


def sentence(rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n)).capitalize() + "."


LANGUAGES = ("en", "en", "en", "de", "de", "zh", "pl", "ja", "ko", "fr")
MINERALS = ("gallium", "germanium", "graphite", "lithium", "cobalt", "nickel", "rare-earths", "antimony")


def fill(db: Path, articles: int, flagged: int, flagged_days: float = 23 / 24) -> None:
    """Bulk-load the store through its own schema (created by open_store); the flagged
    articles fall in the ``flagged_days`` before NOW, name two countries and a mineral."""
    open_store(f"sqlite:///{db}").close()
    rng = random.Random(7)
    conn = sqlite3.connect(db)
    conn.executemany("insert into feed (id, url, name, interval_minutes, silent_after_days, active,"
                     " error_count, created_at) values (?, ?, ?, 60, 3, 1, 0, ?)",
                     [(i, f"https://f{i}.example/rss", f"Feed {i}", "2025-01-01 00:00:00") for i in range(1, 201)])
    flagged_ids = set(rng.sample(range(1, articles + 1), flagged))
    rows, countries, minerals = [], [], []
    for i in range(1, articles + 1):
        is_flagged = i in flagged_ids
        seen = NOW - (timedelta(days=rng.uniform(0, flagged_days)) if is_flagged
                      else timedelta(days=rng.uniform(2, 400)))
        title = sentence(rng, 9)
        rows.append((i, rng.randint(1, 200), f"k{i}", f"https://x.example/{i}", title,
                     " ".join(sentence(rng, 14) for _ in range(3)), f"h{i}", seen.strftime("%Y-%m-%d %H:%M:%S"),
                     seen.strftime("%Y-%m-%d %H:%M:%S"), 1 if is_flagged else 0,
                     rng.random(), "critical-minerals,export-controls" if i % 3 == 0 else "critical-minerals",
                     '["classifier critical-minerals 0.91", "keyword \\"gallium\\""]', rng.choice(LANGUAGES)))
        if is_flagged:
            countries += [(i, c, 1) for c in rng.sample(["CN", "US", "JP", "DE", "CL", "CD", "AU"], 2)]
            minerals.append((i, rng.choice(MINERALS), 1))
    conn.executemany("insert into article (id, feed_id, key, url, title, text, content_hash, published_at,"
                     " first_seen_at, flagged, score, topics, reasons, language)"
                     " values (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    conn.executemany("insert into article_country (article_id, code, count) values (?,?,?)", countries)
    conn.executemany("insert into article_mineral (article_id, code, count) values (?,?,?)", minerals)
    conn.commit()
    conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=200_000)
    parser.add_argument("--flagged", type=int, default=2_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        db = Path(folder) / "bench.db"
        started = time.perf_counter()
        fill(db, args.articles, args.flagged)
        print(f"store: {args.articles:,} articles, {args.flagged:,} flagged in the period, "
              f"{db.stat().st_size / 1e6:.0f} MB (filled in {time.perf_counter() - started:.0f} s)")
        config = parse_config({"store": {"url": f"sqlite:///{db}"}})
        store = open_store(config.store_url())
        timings = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            articles = store.digest_candidates(NOW - timedelta(hours=24), NOW)
            t1 = time.perf_counter()
            clusters = cluster([a.id for a in articles], [(a.title, a.text) for a in articles])
            t2 = time.perf_counter()
            digest = build_digest(articles, clusters, digest_date="2025-06-03",
                                  period_start=NOW - timedelta(hours=24), period_end=NOW,
                                  zone=config.digest.zone(), max_items=config.digest.max_items)
            html, text = render(digest, subject(config.digest.subject, digest))
            t3 = time.perf_counter()
            timings.append((t3 - t0, t1 - t0, t2 - t1, t3 - t2))
        from monitor.delivery import DigestJob

        job = DigestJob(store, config)
        whole = []
        for _ in range(args.repeat):                 # the whole of `monitor digest --preview`
            t0 = time.perf_counter()
            job.preview(NOW, "2025-06-03")
            whole.append(time.perf_counter() - t0)
        store.close()
        best = min(timings)
        print(f"selected {len(articles):,} articles, {digest.total_stories:,} stories, "
              f"HTML {len(html) / 1e3:.0f} kB")
        print(f"select + cluster + render: median {statistics.median(t[0] for t in timings):.3f} s, "
              f"best {best[0]:.3f} s (select {best[1]:.3f}, cluster {best[2]:.3f}, "
              f"build+render {best[3]:.3f}); target ≤ 1 s: {'PASS' if best[0] <= 1 else 'FAIL'}")
        print(f"as `monitor digest --preview` runs it (DigestJob.preview: the above plus feed "
              f"health, coverage and the 7-day averages): median {statistics.median(whole):.3f} s, "
              f"best {min(whole):.3f} s; target ≤ 1 s: {'PASS' if min(whole) <= 1 else 'FAIL'}")


if __name__ == "__main__":
    main()
