"""Benchmark: one poll cycle over 200 feeds × 30 items, monitor against lemon24/reader
(and newsboat, the native reference, when installed).

    .venv/bin/python bench/poll.py [--feeds 200] [--items 30] [--workers 8]
                                   [--text pool|synthetic] [--pool FILE]
                                   [--repeat 3] [--matched] [--profile PREFIX]

Bench-only dependencies, NOT in pyproject.toml — install them into the venv by hand:

    .venv/bin/pip install reader sgmllib3k          # `import reader` needs sgmllib3k
    apt-get install newsboat                        # optional, the native reference

What happens, in one run:

* The parent makes ``--feeds`` RSS 2.0 documents of ``--items`` items each and serves them
  from a threaded HTTP/1.1 server on 127.0.0.1 with ETag / Last-Modified (If-None-Match →
  304) and gzip when the client accepts it, TCP_NODELAY on. The items (``--text``):
    - ``pool`` (the default when the pool file exists: ``--pool``, else $MONITOR_POOL, else
      ../shared/data/pool-unlabeled.jsonl): real news, a seeded sample of the pool's items
      with distinct titles in the pool's own mix of languages (German, English, Chinese,
      Polish, Korean, Japanese), grouped by source so each feed reads like one outlet's;
      title and text as the pool has them. Read at run time; nothing of it is kept.
    - ``synthetic``: seeded news-like text from a word list in this file (titles ≈70 chars,
      descriptions 300–1,200 chars, half as HTML), where every item is about the topics and
      most are long enough to be split into stories: harsher on the analysis than real
      feeds. Used when there is no pool.
  Each tool gets its own URL prefix, so the server counts per tool the 200s and 304s it
  served and the TCP connections it accepted.
* Each measured run is a process of its own (fresh temp dir, empty store) that does the
  cold poll (every item new), then the warm one (every feed answers 304):
    - **monitor poll --all, whole process** (the targets are measured on this row): the CLI
      as a user runs it, with a config file naming the feeds and nothing else (the embedded
      defaults: shipped model, keyword rules, poll settings), once cold and once warm; each
      process timed from start to exit (interpreter, imports, config, store, model, poll).
    - **reader, whole process**: a script a user would write, one process per poll:
      ``make_reader(db)``, ``add_feed(url, exist_ok=True)`` × N and ``update_feeds(workers=W)``
      cold, ``update_feeds(scheduled=False, workers=W)`` warm (reader ≥3.21 updates only
      scheduled feeds by default; scheduled=False forces the warm run).
    - beside them, the cycle call alone, in-process (setup excluded): monitor's
      ``service.build_poller(config, store).run_cycle(include_all=True)`` — the code behind
      ``monitor poll --all``, shipped analysis included — and ``Poller(store, config)`` with
      the pipeline's no-op analysis (fetch + parse + store, the work reader does); with
      ``--matched`` also that at per_host = concurrency = ``--workers`` (all feeds are on one
      host, 127.0.0.1); reader's ``update_feeds`` calls timed alone.
    - newsboat: ``newsboat -x reload`` on a urls file and a temp cache, with
      ``reload-threads W``; each reload is its own process, timed as a whole (wall clock).
      newsboat 2.21 keeps a new feed's ETag only from its second fetch, so an untimed
      priming reload runs between the timed cold and warm ones.
* monitor's language model is memory-mapped from its cache folder (``monitor.langcache``);
  when there is none yet, it is unpacked before the timed runs (once per machine, like an
  installation step; the run says so and how long it took).
* ``--repeat`` rounds (default 3), the tools interleaved within each round; the table
  shows the median times and the largest peak RSS, and every round's times below it.
* Exit code 0 when ``monitor poll --all`` meets every target against reader's whole process
  (cold ≤ 1.0× reader, warm ≤ 0.6× reader, peak RSS ≤ 300 MB) and stored exactly feeds ×
  items articles, else 1.
* Beside the warm ratio, two import floors: the median wall clock of a fresh interpreter
  that only imports the libraries the poll is built on (sqlmodel, httpx, click, pydantic),
  and of one that imports what ``monitor poll`` loads before polling, each as a ratio to
  reader's whole warm poll.
* Peak RSS is the ``ru_maxrss`` of the measured process as the parent gets it from
  ``os.wait4`` (for whole processes: the larger of the cold and the warm one). For monitor,
  the largest summed RSS of its parse processes, their fork server and multiprocessing's
  resource tracker, sampled every 50 ms, is added to it: shared pages count once per
  process. Beside it, the largest summed PSS of the whole tree, sampled every 200 ms
  (shared pages split between the processes sharing them, so counted once in all). For
  newsboat: the largest of its three processes.
"""

from __future__ import annotations

import argparse
import cProfile
import gzip
import hashlib
import heapq
import json
import os
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from html import escape
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TARGET_COLD = 1.0        # monitor as shipped, cold ≤ 1.0 × reader cold
TARGET_WARM = 0.6        # monitor as shipped, warm ≤ 0.6 × reader warm
TARGET_RSS_MB = 300.0    # monitor as shipped, peak RSS of all its processes

# --------------------------------------------------------------------------------------
# Synthetic news text (seeded; words written for this bench)
# --------------------------------------------------------------------------------------

COMPANIES = ["Lynas Rare Earths", "MP Materials", "Glencore", "Albemarle", "Umicore",
             "China Northern Rare Earth", "Iluka Resources", "Neo Performance Materials",
             "Rio Tinto", "BHP", "Anglo American", "Vale", "Pilbara Minerals", "Tianqi Lithium",
             "Ganfeng Lithium", "Eramet", "Sibanye-Stillwater", "Jervois Global", "Aurubis",
             "Heraeus", "Solvay", "Energy Fuels", "USA Rare Earth", "Arafura Resources"]
PLACES = ["Beijing", "Washington", "Brussels", "Canberra", "Kinshasa", "Jakarta", "Santiago",
          "Ottawa", "Berlin", "Tokyo", "Seoul", "Pretoria", "Lima", "Buenos Aires", "Hanoi",
          "Kuala Lumpur", "Nairobi", "Lubumbashi", "Perth", "Toronto", "London", "Geneva"]
COUNTRIES = ["China", "the United States", "the European Union", "Australia", "Indonesia",
             "Chile", "Canada", "Germany", "Japan", "South Korea", "South Africa", "Peru",
             "Argentina", "Vietnam", "Malaysia", "Kenya", "the Democratic Republic of Congo",
             "Myanmar", "Brazil", "India", "Kazakhstan", "Mongolia"]
MINERALS = ["rare earths", "gallium", "germanium", "antimony", "graphite", "lithium", "cobalt",
            "nickel", "tungsten", "dysprosium", "terbium", "neodymium", "copper", "manganese",
            "vanadium", "tantalum", "niobium", "magnesium", "indium", "platinum group metals"]
AGENCIES = ["the Commerce Ministry", "the Bureau of Industry and Security", "the European Commission",
            "the trade ministry", "customs authorities", "the Federal Economics Ministry",
            "the Department of Energy", "industry regulators", "the export control office",
            "the World Trade Organization", "the finance ministry", "a parliamentary committee"]
VERBS = ["tighten", "review", "extend", "suspend", "expand", "restrict", "relax", "audit",
         "license", "monitor", "cap", "secure", "stockpile", "diversify", "subsidise", "fast-track"]
NOUNS = ["export licences", "supply chains", "processing capacity", "shipments", "quotas",
         "offtake agreements", "refining output", "magnet production", "spot prices",
         "inventories", "mine output", "tariffs", "investment screening", "price floors",
         "smelter capacity", "strategic reserves", "battery materials", "downstream demand"]
ADJ = ["critical", "strategic", "sensitive", "dual-use", "volatile", "tight", "record",
       "sluggish", "unexpected", "long-awaited", "preliminary", "revised", "binding", "temporary"]
FILLER = ["analysts said", "according to people familiar with the matter", "the statement said",
          "officials told reporters", "traders said", "the company said in a filing",
          "according to customs data", "a spokesperson said", "market participants noted",
          "data from the ministry showed"]
TITLE_FORMS = [
    "{country} to {verb} {noun} for {mineral} from next month",
    "{company} shares jump as {mineral} {noun} {verbed}",
    "{agency} weighs {adj} curbs on {mineral} {noun}",
    "{mineral} prices hit {adj} level on {country} supply worries",
    "{company} signs {mineral} deal with {country} partners",
    "{place} talks on {mineral} {noun} end without agreement",
    "Explainer: what {country}'s new {mineral} rules mean for buyers",
    "{company} cuts {mineral} guidance after {adj} quarter",
]
SENTENCE_FORMS = [
    "{company} said on {day} it would {verb} {noun} at its {place} operations, {filler}.",
    "{country} accounted for about {pct}% of global {mineral} output last year, {filler}.",
    "{agency} plans to {verb} {noun} covering {mineral} and {mineral2}, {filler}.",
    "Prices for {mineral} rose {pct2}% this week to {price} dollars per tonne as buyers in "
    "{place} rushed to {verb} {noun}.",
    "The move follows {adj} measures announced by {country} in {month}, which required "
    "exporters of {mineral} to apply for {noun}.",
    "Shipments of {mineral} from {country} to {country2} fell {pct2}% in {month}, {filler}.",
    "{company} expects the {adj} rules to affect {noun} for at least {n} months.",
    "Industry groups in {place} warned that {adj} {noun} could disrupt production of "
    "magnets, chips and batteries.",
    "\u201cWe are watching the situation closely,\u201d a {company} executive said, adding "
    "that {noun} remained {adj}.",
    "{country2} has sought to {verb} its {noun} since {year}, when {country} first limited "
    "sales of {mineral}.",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
          "September", "October", "November", "December"]


class NewsText:
    def __init__(self, seed: int) -> None:
        self.r = random.Random(seed)

    def _fill(self, form: str) -> str:
        r = self.r
        verb = r.choice(VERBS)
        return form.format(
            company=r.choice(COMPANIES), place=r.choice(PLACES), country=r.choice(COUNTRIES),
            country2=r.choice(COUNTRIES), mineral=r.choice(MINERALS),
            mineral2=r.choice(MINERALS), agency=r.choice(AGENCIES), verb=verb,
            verbed=verb + ("d" if verb.endswith("e") else "ed"), noun=r.choice(NOUNS),
            adj=r.choice(ADJ), filler=r.choice(FILLER), day=r.choice(DAYS),
            month=r.choice(MONTHS), pct=r.randint(5, 95), pct2=round(r.uniform(0.5, 30), 1),
            price=f"{r.randint(900, 90000):,}", n=r.randint(2, 36), year=r.randint(2009, 2024))

    def title(self) -> str:
        for _ in range(20):
            t = self._fill(self.r.choice(TITLE_FORMS))
            t = t[0].upper() + t[1:]
            if 55 <= len(t) <= 90:
                return t
        return t

    def description(self) -> tuple[str, bool]:
        """(text, is_html): 300–1,200 chars of sentences; about half as HTML paragraphs."""
        r = self.r
        goal = r.randint(300, 1200)
        sentences, size = [], 0
        while size < goal:
            s = self._fill(r.choice(SENTENCE_FORMS))
            s = s[0].upper() + s[1:]
            sentences.append(s)
            size += len(s) + 1
        text = " ".join(sentences)
        while len(text) > 1200 and len(sentences) > 1:
            sentences.pop()
            text = " ".join(sentences)
        if r.random() < 0.5:
            return text, False
        paras, cut = [], 0
        for i in range(0, len(sentences), 3):
            chunk = " ".join(sentences[i:i + 3])
            if cut == 0 and r.random() < 0.6:
                word = r.choice(MINERALS)
                chunk = chunk.replace(word, f'<a href="https://wire.example/topic/{word.replace(" ", "-")}">'
                                            f"<b>{word}</b></a>", 1)
                cut = 1
            paras.append(f"<p>{chunk}</p>")
        return "".join(paras), True


def pool_feeds(path: Path, feeds: int, items: int, base_time: datetime) -> list[bytes]:
    """``feeds`` RSS documents of real news: ``feeds × items`` items of the pool (distinct
    titles, a seeded sample in the pool's own mix of languages and sources), grouped by
    source and language so that each feed reads like one outlet's. The text is read from
    the pool file at run time; nothing of it is kept."""
    # a seeded sample kept small while reading (the children's peak RSS would otherwise
    # include the parent's copy of the whole pool): the items with the smallest keys
    want = feeds * items
    heap: list[tuple[str, str]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            item = json.loads(line)
            if not (item.get("title") or "").strip():
                continue
            key = hashlib.sha1(f"bench-poll:{item['id']}".encode()).hexdigest()
            entry = (_neg(key), line)
            if len(heap) < want * 5 // 4:
                heapq.heappush(heap, entry)
            elif entry > heap[0]:
                heapq.heapreplace(heap, entry)
    chosen, titles = [], set()
    for _key, line in sorted(heap, reverse=True):
        item = json.loads(line)
        if item["title"] not in titles:
            titles.add(item["title"])
            chosen.append(item)
            if len(chosen) == want:
                break
    if len(chosen) < feeds * items:
        raise SystemExit(f"{path}: only {len(chosen)} items with distinct titles")
    chosen.sort(key=lambda it: (str(it.get("lang")), str(it.get("source")), it["id"]))
    return [_rss(i, chosen[i * items:(i + 1) * items], base_time) for i in range(feeds)]


def _neg(key: str) -> str:
    """A key that sorts the other way round (the heap keeps the largest of these)."""
    return key.translate(str.maketrans("0123456789abcdef", "fedcba9876543210"))


def _rss(index: int, items: list[dict], base_time: datetime) -> bytes:
    site = f"https://outlet{index:03d}.example"
    lang = items[0].get("lang") or "en"
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n<rss version="2.0">\n<channel>\n'
        f"<title>Outlet {index:03d}</title>\n<link>{site}/</link>\n"
        f"<description>News, desk {index:03d}</description>\n<language>{escape(str(lang))}</language>\n"]
    for j, item in enumerate(items):
        published = base_time - timedelta(minutes=37 * j + index)
        link = item.get("url") or f"{site}/{j}"
        parts.append(
            "<item>\n"
            f"  <title>{escape(item['title'], quote=False)}</title>\n"
            f"  <link>{escape(link)}</link>\n"
            f'  <guid isPermaLink="false">{escape(item["id"])}</guid>\n'
            f"  <pubDate>{format_datetime(published, usegmt=True)}</pubDate>\n"
            f"  <description>{escape(item.get('text') or '', quote=False)}</description>\n"
            "</item>\n")
    parts.append("</channel>\n</rss>\n")
    return "".join(parts).encode("utf-8")


def make_feed(index: int, items: int, base_time: datetime) -> bytes:
    gen = NewsText(seed=10_000 + index)
    site = f"https://news{index:03d}.example"
    parts = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
        'xmlns:atom="http://www.w3.org/2005/Atom">\n<channel>\n'
        f"<title>Metals &amp; Trade Desk {index:03d}</title>\n<link>{site}/</link>\n"
        f"<description>Commodity, mining and trade-policy news, desk {index:03d}</description>\n"
        f"<language>en-gb</language>\n<lastBuildDate>{format_datetime(base_time, usegmt=True)}"
        "</lastBuildDate>\n<ttl>30</ttl>\n"]
    for j in range(items):
        title = gen.title()
        desc, is_html = gen.description()
        slug = "-".join(title.lower().replace("'", "").replace(":", "").split()[:8])
        link = f"{site}/{2025}/{j // 10 + 1:02d}/{slug}-{index:03d}{j:03d}?utm_source=rss&utm_medium=feed"
        published = base_time - timedelta(minutes=37 * j + index)
        body = f"<![CDATA[{desc}]]>" if is_html else escape(desc, quote=False)
        parts.append(
            "<item>\n"
            f"  <title>{escape(title, quote=False)}</title>\n"
            f"  <link>{escape(link)}</link>\n"
            f'  <guid isPermaLink="false">desk{index:03d}-{j:04d}-'
            f'{hashlib.sha1(title.encode()).hexdigest()[:8]}</guid>\n'
            f"  <pubDate>{format_datetime(published, usegmt=True)}</pubDate>\n"
            f"  <dc:creator>{gen.r.choice(['Staff', 'Reuters desk', 'A. Analyst', 'Markets team'])}</dc:creator>\n"
            f"  <category>{gen.r.choice(MINERALS)}</category>\n"
            f"  <description>{body}</description>\n"
            "</item>\n")
    parts.append("</channel>\n</rss>\n")
    return "".join(parts).encode("utf-8")


# --------------------------------------------------------------------------------------
# The server: threaded, HTTP/1.1 keep-alive, ETag/Last-Modified → 304, gzip on request
# --------------------------------------------------------------------------------------

class _Doc:
    __slots__ = ("body", "gz", "etag", "last_modified")

    def __init__(self, body: bytes, last_modified: str) -> None:
        self.body = body
        self.gz = gzip.compress(body, 6)
        self.etag = '"' + hashlib.sha1(body).hexdigest()[:20] + '"'
        self.last_modified = last_modified


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # headers and body go out in two writes: without TCP_NODELAY, Nagle + the client's
    # delayed ACK stall each keep-alive response by ~40 ms (real servers do not do that)
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def do_GET(self):
        bench: BenchServer = self.server.bench
        # /<tool>/feed-NNN.xml: every tool gets the same documents under its own prefix
        prefix, _, rest = self.path.lstrip("/").partition("/")
        if not getattr(self, "_seen", False):        # one handler instance per connection
            self._seen = True
            bench.count(prefix, "connections")
        doc = bench.docs.get(rest.split("?")[0])
        if doc is None:
            bench.count(prefix, 404)
            return self._send(404, b"not found", {"Content-Type": "text/plain"})
        inm = self.headers.get("If-None-Match")
        ims = self.headers.get("If-Modified-Since")
        if (inm is not None and doc.etag in [t.strip() for t in inm.split(",")]) or (
                inm is None and ims == doc.last_modified):
            bench.count(prefix, 304)
            return self._send(304, b"", {"ETag": doc.etag, "Last-Modified": doc.last_modified})
        headers = {"Content-Type": "application/rss+xml; charset=utf-8", "ETag": doc.etag,
                   "Last-Modified": doc.last_modified, "Vary": "Accept-Encoding"}
        body = doc.body
        if "gzip" in (self.headers.get("Accept-Encoding") or ""):
            body = doc.gz
            headers["Content-Encoding"] = "gzip"
        bench.count(prefix, 200)
        self._send(200, body, headers)

    def _send(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256     # the default 5 drops SYNs under a burst of connects


class BenchServer:
    def __init__(self, docs: dict[str, _Doc]) -> None:
        self.docs = docs
        self.tally: dict[str, Counter] = {}
        self._lock = threading.Lock()
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.bench = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def count(self, prefix: str, status: int | str) -> None:
        with self._lock:
            self.tally.setdefault(prefix, Counter())[status] += 1

    def urls(self, prefix: str) -> list[str]:
        port = self._httpd.server_address[1]
        return [f"http://127.0.0.1:{port}/{prefix}/{name}" for name in sorted(self.docs)]

    def __enter__(self) -> BenchServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# --------------------------------------------------------------------------------------
# Children: one process per measured tool (cold + warm), result as JSON in a file
# --------------------------------------------------------------------------------------

def child_monitor(spec: dict) -> dict:
    t0 = time.perf_counter()
    from monitor.config import parse_config
    from monitor.pipeline import Poller
    from monitor.service import open_configured_store

    poll = {"contact_url": "http://127.0.0.1/bench-contact"}
    if spec.get("per_host"):
        poll.update(per_host=spec["per_host"], concurrency=spec["concurrency"])
    work = Path(spec["dir"])
    data = {"store": {"url": f"sqlite:///{work / 'monitor.db'}"}, "poll": poll,
            "digest": {"outbox_dir": str(work / "outbox")},
            "feeds": [{"name": f"bench feed {i:03d}", "url": u} for i, u in enumerate(spec["urls"])]}
    config = parse_config(data, "bench")
    store = open_configured_store(config)
    if spec.get("analysis") == "cli":
        from monitor.service import build_poller       # the CLI's wiring, analyser included
        poller = build_poller(config, store)
    else:
        poller = Poller(store, config)                 # the pipeline's no-op analysis seam
    analyzer = getattr(poller.analyze, "__qualname__", type(poller.analyze).__qualname__)
    setup = time.perf_counter() - t0

    cycle = _profiled_cycle(poller, spec["profile"]) if spec.get("profile") else _plain_cycle(poller)
    t = time.perf_counter()
    cold = cycle(include_all=True, phase="cold")
    cold_s = time.perf_counter() - t
    articles = _count_articles(store)
    t = time.perf_counter()
    warm = cycle(include_all=True, phase="warm")
    warm_s = time.perf_counter() - t
    store.close()
    return {"setup_s": setup, "cold_s": cold_s, "warm_s": warm_s, "articles": articles,
            "cold_status": dict(Counter(f.status for f in cold.feeds)),
            "warm_status": dict(Counter(f.status for f in warm.feeds)),
            "cold_new": cold.total("new"), "warm_new": warm.total("new"),
            "errors": [f.error for f in cold.feeds + warm.feeds if f.error][:3],
            "settings": {"per_host": config.poll.per_host, "concurrency": config.poll.concurrency},
            "analyzer": analyzer}


_SAMPLER = """
import sys, time, psutil
me, peak, peak_pss, kids, tick = psutil.Process(int(sys.argv[1])), 0, 0, [], 0
while me.is_running() and me.status() != psutil.STATUS_ZOMBIE:
    if tick % 10 == 0:                 # finding descendants scans /proc: not every time
        try:
            kids = me.children(recursive=True)
        except psutil.Error:
            break
    tick += 1
    total = pss = 0
    for proc in kids:
        try:
            total += proc.memory_info().rss
        except psutil.Error:
            pass
    if tick % 4 == 1:                  # PSS walks the page tables: every 200 ms only
        for proc in [me] + kids:
            try:
                pss += proc.memory_full_info().pss
            except psutil.Error:
                pass
    peak, peak_pss = max(peak, total), max(peak_pss, pss)
    time.sleep(0.05)
print(peak, peak_pss)
"""


class _DescendantRss:
    """Samples, every 50 ms, the summed RSS of a child's descendants (monitor's parse
    processes and the fork server they come from) and keeps the largest sum seen; also the
    largest summed PSS of the child and its descendants (each shared page counted once,
    split between the processes sharing it: the tree's own memory). The sampler is a
    process of its own: a thread here would take the GIL from the HTTP server that this
    process runs for the measured tools. PSS is sampled every 200 ms (reading it walks the
    measured processes' page tables)."""

    def __init__(self, pid: int) -> None:
        self._proc = subprocess.Popen([sys.executable, "-c", _SAMPLER, str(pid)],
                                      stdout=subprocess.PIPE, text=True)
        self.pss_mb = 0.0

    def stop(self) -> float:
        out, _ = self._proc.communicate(timeout=30)    # it ends with the measured child
        rss, _, pss = (out.strip() or "0 0").partition(" ")
        self.pss_mb = int(pss or 0) / 2**20
        return int(rss) / 2**20


def _profiled_cycle(poller, prefix: str):
    """run_cycle under cProfile in both of its threads — the event loop (fetching) and the
    store writer (parse, analyse, write) — merged into PREFIX.cold.prof / PREFIX.warm.prof.
    cProfile sees only the thread that enables it, so ``poller.process`` (what the writer
    thread runs) is wrapped on this instance; monitor's code is not changed."""
    import pstats

    writer_profiles: dict[int, cProfile.Profile] = {}
    process = poller.process

    def profiled_process(*args, **kwargs):
        prof = writer_profiles.setdefault(threading.get_ident(), cProfile.Profile())
        prof.enable()
        try:
            return process(*args, **kwargs)
        finally:
            prof.disable()

    poller.process = profiled_process

    def cycle(include_all: bool, phase: str):
        writer_profiles.clear()
        main = cProfile.Profile()
        main.enable()
        try:
            return poller.run_cycle(include_all=include_all)
        finally:
            main.disable()
            stats = pstats.Stats(main)
            for prof in writer_profiles.values():
                stats.add(prof)
            stats.dump_stats(f"{prefix}.{phase}.prof")
    return cycle


def _count_articles(store) -> int:
    from sqlalchemy import func, select

    from monitor.storage.tables import ARTICLE

    with store.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ARTICLE)).scalar_one()


def _plain_cycle(poller):
    return lambda include_all, phase: poller.run_cycle(include_all=include_all)


def child_reader(spec: dict) -> dict:
    t0 = time.perf_counter()
    import reader as reader_pkg
    from reader import make_reader

    workers = spec["workers"]
    r = make_reader(str(Path(spec["dir"]) / "reader.sqlite"))
    for url in spec["urls"]:
        r.add_feed(url)
    setup = time.perf_counter() - t0
    t = time.perf_counter()
    r.update_feeds(workers=workers)
    cold_s = time.perf_counter() - t
    entries = r.get_entry_counts().total
    t = time.perf_counter()
    r.update_feeds(scheduled=False, workers=workers)
    warm_s = time.perf_counter() - t
    errors = [f"{f.url}: {f.last_exception}" for f in r.get_feeds(broken=True)][:3]
    r.close()
    return {"setup_s": setup, "cold_s": cold_s, "warm_s": warm_s, "articles": entries,
            "errors": errors, "version": reader_pkg.__version__}


CHILDREN = {"monitor": child_monitor, "reader": child_reader}

# reader as a user would script it: one process per poll, feeds added on the first
_READER_POLL = """
import sys
from reader import make_reader
db, urls, workers, phase = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
r = make_reader(db)
if phase == "cold":
    for url in open(urls).read().split():
        r.add_feed(url, exist_ok=True)
    r.update_feeds(workers=workers)
else:
    r.update_feeds(scheduled=False, workers=workers)
r.close()
"""


def _monitor_command() -> list[str]:
    script = Path(sys.executable).with_name("monitor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "monitor"]


def _toml(value: str) -> str:
    return json.dumps(value)          # a JSON string is a valid TOML basic string here


def run_whole(kind: str, spec: dict, work: Path, timeout: float) -> dict:
    """``monitor poll --all`` (the CLI, a config file with the feeds and nothing else: the
    embedded defaults, shipped model included) or a reader script, as whole processes:
    a cold run on an empty store, then a warm one; wall clock of each process from start
    to exit, peak RSS the larger of the two (with monitor's parse processes and fork
    server sampled and added, as in ``run_child``)."""
    if kind == "monitor":
        config = work / "monitor.toml"
        lines = ["[store]", f"url = {_toml('sqlite:///' + str(work / 'monitor.db'))}",
                 "[poll]", 'contact_url = "http://127.0.0.1/bench-contact"',
                 "[digest]", f"outbox_dir = {_toml(str(work / 'outbox'))}"]
        for i, url in enumerate(spec["urls"]):
            lines += ["[[feeds]]", f'name = "bench feed {i:03d}"', f"url = {_toml(url)}"]
        config.write_text("\n".join(lines) + "\n")
        command = [*_monitor_command(), "--config", str(config), "--log-level", "warning",
                   "poll", "--all"]
        commands = {"cold": command, "warm": command}
    else:
        urls = work / "urls.txt"
        urls.write_text("\n".join(spec["urls"]))
        base = [sys.executable, "-c", _READER_POLL, str(work / "reader.sqlite"), str(urls),
                str(spec["workers"])]
        commands = {"cold": base + ["cold"], "warm": base + ["warm"]}
    out: dict = {"rss_mb": 0.0, "helpers_rss_mb": 0.0}
    for phase, command in commands.items():
        log = open(work / f"{kind}.{phase}.log", "wb")
        started = time.perf_counter()
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=str(work))
        helpers = _DescendantRss(proc.pid)
        rc, rusage = _wait(proc, timeout)
        out[f"{phase}_s"] = time.perf_counter() - started
        helpers_mb = helpers.stop()           # reader has no helper processes: 0
        log.close()
        if rc != 0:
            tail = (work / f"{kind}.{phase}.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{kind} {phase} process failed (exit {rc}):\n{tail}")
        rss = rusage.ru_maxrss / 1024 + helpers_mb
        if rss > out["rss_mb"]:
            out["rss_mb"], out["helpers_rss_mb"] = rss, helpers_mb
        out["pss_mb"] = max(out.get("pss_mb", 0.0), helpers.pss_mb)
        if phase == "cold":
            out["articles"] = _rows(work / ("monitor.db" if kind == "monitor" else "reader.sqlite"),
                                    "article" if kind == "monitor" else "entries")
    return out


def _rows(db: Path, table: str) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def run_child(kind: str, spec: dict, work: Path, timeout: float) -> dict:
    """Run one measured child; returns its JSON result plus peak RSS from wait4."""
    spec_file, out_file = work / f"{kind}.spec.json", work / f"{kind}.result.json"
    spec_file.write_text(json.dumps(spec))
    log = open(work / f"{kind}.log", "wb")
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", kind, str(spec_file), str(out_file)]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=str(work))
    helpers = _DescendantRss(proc.pid)
    rc, rusage = _wait(proc, timeout)
    helpers_mb = helpers.stop()
    log.close()
    if rc != 0 or not out_file.exists():
        tail = (work / f"{kind}.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{kind} child failed (exit {rc}):\n{tail}")
    result = json.loads(out_file.read_text())
    result["rss_mb"] = rusage.ru_maxrss / 1024          # Linux: KiB
    # monitor parses in helper processes: their largest summed RSS is added to its peak
    if kind == "monitor":
        result["helpers_rss_mb"] = helpers_mb
        result["rss_mb"] += helpers_mb
    result["pss_mb"] = helpers.pss_mb
    return result


def _wait(proc: subprocess.Popen, timeout: float):
    """os.wait4 on this one child: its exit code and its own rusage (not all children's)."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, rusage
        if time.monotonic() > deadline:
            proc.kill()
            _, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return -9, rusage
        time.sleep(0.005)


def run_newsboat(urls: list[str], workers: int, work: Path, timeout: float) -> dict:
    home = work / "newsboat-home"
    home.mkdir(parents=True, exist_ok=True)
    (work / "urls").write_text("\n".join(urls) + "\n")
    (work / "newsboat.conf").write_text(
        f"reload-threads {workers}\nmax-items 0\ndownload-timeout 30\nshow-read-feeds yes\n"
        "user-agent \"bench/1 (newsboat reference)\"\n")
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home / "config"),
               XDG_DATA_HOME=str(home / "data"), XDG_CACHE_HOME=str(home / "cache"),
               LANG="C.UTF-8", LC_ALL="C.UTF-8", TERM=os.environ.get("TERM", "dumb"))
    cmd = ["newsboat", "-u", str(work / "urls"), "-c", str(work / "newsboat.db"),
           "-C", str(work / "newsboat.conf"), "-x", "reload"]
    # newsboat 2.21 saves a new feed's ETag/Last-Modified only from its second fetch (the
    # first reload UPDATEs a feed row that is not inserted yet), so an untimed priming
    # reload sits between cold and warm; otherwise the "warm" run would get 200s, not 304s.
    times, rss = {}, 0.0
    for phase in ("cold", "prime", "warm"):
        log = open(work / f"newsboat-{phase}.log", "wb")
        t = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, cwd=str(work))
        rc, rusage = _wait(proc, timeout)
        times[phase] = time.perf_counter() - t
        log.close()
        rss = max(rss, rusage.ru_maxrss / 1024)
        if rc != 0:
            tail = (work / f"newsboat-{phase}.log").read_text(errors="replace")[-1500:]
            raise RuntimeError(f"newsboat {phase} failed (exit {rc}):\n{tail}")
    with sqlite3.connect(work / "newsboat.db") as db:
        items = db.execute("SELECT count(*) FROM rss_item").fetchone()[0]
    version = subprocess.run(["newsboat", "-v"], capture_output=True, text=True,
                             env=env).stdout.split(" - ")[0].strip()
    return {"cold_s": times["cold"], "warm_s": times["warm"], "rss_mb": rss, "articles": items,
            "version": f"{version} (untimed priming reload between cold and warm: "
                       f"{times['prime']:.2f} s, all 200)"}


# --------------------------------------------------------------------------------------
# The parent
# --------------------------------------------------------------------------------------

def _combine(results: list[dict]) -> dict:
    """Median cold and warm time over the rounds, the largest peak RSS, the first run's
    other fields (counts, statuses), and every round's times for the record."""
    failed = [r for r in results if "failed" in r]
    if failed:
        return failed[0]
    out = dict(results[0])
    for key in ("cold_s", "warm_s", "setup_s"):
        if key in out:
            out[key] = statistics.median(r[key] for r in results)
            out[key + "_all"] = [r[key] for r in results]
    out["rss_mb"] = max(r["rss_mb"] for r in results)
    out["pss_mb"] = max(r.get("pss_mb", 0.0) for r in results)
    out["articles_all"] = [r["articles"] for r in results]
    return out


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=200)
    ap.add_argument("--items", type=int, default=30)
    ap.add_argument("--workers", type=int, default=8,
                    help="reader's update_feeds(workers=N), newsboat's reload-threads, and "
                         "with --matched monitor's per_host and concurrency (1–16)")
    ap.add_argument("--matched", action="store_true",
                    help="also run monitor without analysis at per_host = concurrency = "
                         "--workers (reader's concurrency)")
    ap.add_argument("--repeat", type=int, default=3,
                    help="rounds; each tool runs once per round on a fresh store, and the "
                         "table shows the median time and the largest peak RSS (default 3)")
    ap.add_argument("--timeout", type=float, default=300.0, help="per child process, seconds")
    ap.add_argument("--text", choices=("pool", "synthetic"),
                    help="the items: real news from the pool (default when the pool file "
                         "exists) or synthetic text where every item is on the topics")
    ap.add_argument("--pool", type=Path, default=Path(os.environ.get(
                        "MONITOR_POOL", ROOT.parent / "shared" / "data" / "pool-unlabeled.jsonl")),
                    help="the pool file for --text pool (default $MONITOR_POOL, else "
                         "../shared/data/pool-unlabeled.jsonl)")
    ap.add_argument("--profile", metavar="PREFIX",
                    help="also run monitor (matched settings) once more under cProfile, both "
                         "threads, and write PREFIX.cold.prof and PREFIX.warm.prof; profiling "
                         "slows that run, so its times are not in the table")
    ap.add_argument("--child", nargs=3, metavar=("KIND", "SPEC", "OUT"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.text is None:
        args.text = "pool" if args.pool.is_file() else "synthetic"
    if not args.child and not 1 <= args.workers <= 16:
        ap.error("--workers must be 1..16 (monitor's poll.per_host is limited to 16)")
    return args


def _labels(w: int) -> dict[str, str]:
    return {"user_whole": "monitor poll --all, whole process (as shipped)",
            "reader_whole": f"reader, whole process (workers={w})",
            "user": "monitor as shipped (classifier; per_host=2, concurrency=8)",
            "bare": "monitor, no analysis (per_host=2, concurrency=8)",
            "matched": f"monitor, no analysis (per_host={w}, concurrency={w})",
            "reader": f"reader (workers={w})",
            "newsboat": f"newsboat (reload-threads={w})",
            "profiled": "monitor as shipped, profiled"}


def _make_docs(args) -> dict[str, _Doc]:
    base_time = datetime(2025, 6, 5, 6, 0, tzinfo=timezone.utc)
    t = time.perf_counter()
    last_modified = format_datetime(base_time, usegmt=True)
    if args.text == "synthetic":
        bodies = [make_feed(i, args.items, base_time) for i in range(args.feeds)]
        what = "synthetic text, every item on the topics"
    else:
        bodies = pool_feeds(args.pool, args.feeds, args.items, base_time)
        what = f"real news from {args.pool}"
    docs = {f"feed-{i:03d}.xml": _Doc(body, last_modified) for i, body in enumerate(bodies)}
    size = sum(len(d.body) for d in docs.values())
    gz = sum(len(d.gz) for d in docs.values())
    print(f"data: {args.feeds} feeds × {args.items} items = {args.feeds * args.items:,} items "
          f"({what}), {size / 1e6:.1f} MB of RSS ({gz / 1e6:.1f} MB gzip), "
          f"made in {time.perf_counter() - t:.1f} s")
    from monitor.language import cache_folder
    folder = cache_folder()
    if folder is not None and (folder / "meta.json").is_file():
        print(f"language model cache ({folder}): present, monitor maps it")
    elif folder is not None:              # once per machine, like installing: not timed
        t = time.perf_counter()
        subprocess.run([sys.executable, "-c", "from monitor.language import detect_language; "
                        "detect_language('unpack', 'the language model once')"], check=True)
        print(f"language model cache ({folder}): none yet, unpacked before the runs in "
              f"{time.perf_counter() - t:.2f} s (once per machine; not in the times below)")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.2f} at start (other work on the machine skews the times); "
          "server: threaded HTTP/1.1 on 127.0.0.1 (ETag/Last-Modified → 304, gzip on request)")
    return docs


def _run_all(args, docs: dict[str, _Doc], notes: list[str]) -> dict[str, dict]:
    """Every measured run; the tools interleave round by round, so load from elsewhere on
    the machine hits all of them alike."""
    w, label = args.workers, _labels(args.workers)
    runs: dict[str, list[dict]] = {}
    try:
        import reader  # noqa: F401
        have_reader = True
    except ImportError as exc:
        have_reader = False
        notes.append(f"reader: not installed ({exc}); pip install reader sgmllib3k")
    have_newsboat = bool(shutil.which("newsboat"))
    if not have_newsboat:
        notes.append("newsboat: not installed")

    with tempfile.TemporaryDirectory(prefix="bench-poll-") as tmp, BenchServer(docs) as server:
        def measure(name: str, kind: str, round_no: int, **spec) -> None:
            if any("failed" in r for r in runs.get(name, [])):
                return                   # failed once: do not retry it every round
            slug = "".join(c if c.isalnum() else "_" for c in name).strip("_")
            work = Path(tmp) / f"{slug}-{round_no}"
            work.mkdir()
            spec.update(dir=str(work), urls=server.urls(work.name))
            print(f"round {round_no}: {name} …", flush=True)
            try:
                if kind == "newsboat":
                    result = run_newsboat(spec["urls"], w, work, args.timeout)
                elif kind.startswith("whole-"):
                    result = run_whole(kind.removeprefix("whole-"), spec, work, args.timeout)
                else:
                    result = run_child(kind, spec, work, args.timeout)
            except Exception as exc:     # one tool failing must not hide the others
                print(f"  {name}: FAILED: {exc}")
                result = {"failed": str(exc)}
            result["served"] = dict(server.tally.get(work.name, {}))
            runs.setdefault(name, []).append(result)

        for n in range(1, args.repeat + 1):
            measure(label["user_whole"], "whole-monitor", n)
            if have_reader:
                measure(label["reader_whole"], "whole-reader", n, workers=w)
            measure(label["user"], "monitor", n, analysis="cli")
            if have_reader:
                measure(label["reader"], "reader", n, workers=w)
            measure(label["bare"], "monitor", n, analysis="none")
            if args.matched:
                measure(label["matched"], "monitor", n, per_host=w, concurrency=w, analysis="none")
            if have_newsboat:
                measure(label["newsboat"], "newsboat", n)
        if args.profile:
            measure(label["profiled"], "monitor", 1, analysis="cli",
                    profile=str(Path(args.profile).resolve()))
    return {name: _combine(results) for name, results in runs.items()}


def _print_table(args, rows: dict[str, dict], notes: list[str]) -> None:
    w, label = args.workers, _labels(args.workers)
    analyzer = rows.get(label["user"], {}).get("analyzer", "?")
    print()
    print("monitor: driven in-process: service.build_poller(config, store) as `monitor poll "
          f"--all` wires it (analysis: {analyzer}), and Poller(store, config) without analysis "
          "for the narrower figure; run_cycle(include_all=True)")
    print(f"workers: {w} (reader update_feeds(workers={w}), newsboat reload-threads {w}"
          + (f", monitor 'matched' row per_host = concurrency = {w}" if args.matched else "")
          + "); monitor otherwise on its shipped poll settings")
    print(f"rounds: {args.repeat}, tools interleaved; times are medians, peak RSS the largest; "
          f"load average {os.getloadavg()[0]:.2f} at the end")
    print()
    head = (f"{'tool':<48} {'cold s':>7} {'warm s':>7} {'peak RSS MB':>11} {'stored':>7}  "
            "server saw (one round)")
    print(head)
    print("-" * len(head))
    shown = {k: v for k, v in rows.items() if k != label["profiled"]}
    for name, r in shown.items():
        if "failed" in r:
            print(f"{name:<48} {'failed':>7}")
            continue
        served = r.get("served", {})
        seen = (f"{served.get(200, 0)}×200, {served.get(304, 0)}×304, "
                f"{served.get('connections', 0)} TCP connections")
        print(f"{name:<48} {r['cold_s']:>7.2f} {r['warm_s']:>7.3f} {r['rss_mb']:>11.1f} "
              f"{r['articles']:>7}  {seen}")
    for note in notes:
        print(note)
    print()
    for name, r in shown.items():
        if "cold_s_all" in r:
            each = ", ".join(f"{c:.2f}/{wm:.3f}" for c, wm in zip(r["cold_s_all"], r["warm_s_all"]))
            print(f"  {name}: cold/warm s per round: {each}")
    print("cold/warm s: whole-process rows: wall clock of each process, start to exit "
          "(interpreter, imports, model, store, the poll); the other monitor and reader rows: "
          "the cycle call only (setup — interpreter, imports, store, adding feeds — excluded: "
          + ", ".join(f"{k.split(' (')[0]} {v['setup_s']:.2f} s" for k, v in rows.items()
                      if "setup_s" in v and k in (label["user"], label["reader"]))
          + "); newsboat: wall clock of each `newsboat -x reload` process.")
    print("peak RSS: ru_maxrss of that tool's child process (os.wait4; whole processes: the "
          "larger of the cold and the warm one): interpreter, imports, "
          "store, cold and warm cycle; for monitor plus the largest summed RSS of its parse "
          "processes and their fork server (sampled every 50 ms); newsboat: the largest of "
          "its reload processes.")
    for name, r in shown.items():
        if r.get("helpers_rss_mb"):
            print(f"  {name}: of which parse processes {r['helpers_rss_mb']:.1f} MB")
    for name, r in shown.items():
        if r.get("pss_mb"):
            print(f"  {name}: peak summed PSS of the process tree {r['pss_mb']:.1f} MB "
                  "(shared pages counted once)")
    for name, r in shown.items():
        if r.get("errors"):
            print(f"{name}: errors: {r['errors']}")
        if r.get("version"):
            print(f"{name}: version {r['version']}")


# What a warm `monitor poll --all` must import before it does any work: the libraries the
# product is built on (the store on SQLModel, fetching with httpx, the CLI on click, the
# config on pydantic), and monitor's own modules that `poll` loads.
IMPORT_FLOORS = (("the libraries the poll is built on", "sqlmodel, httpx, click, pydantic"),
                 ("what `monitor poll` loads before polling", "monitor.cli, monitor.service"))


def _import_time(modules: str, runs: int = 3) -> float:
    """Median wall clock of a fresh interpreter that imports ``modules`` and exits."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {modules}"], check=True, cwd=str(ROOT))
        times.append(time.perf_counter() - started)
    return sorted(times)[len(times) // 2]


def _check_targets(args, rows: dict[str, dict]) -> bool:
    """The targets, on the whole processes (what a user runs and waits for); the cycle-only
    figures of the in-process runs beside them."""
    label, expected = _labels(args.workers), args.feeds * args.items
    m, rd = rows.get(label["user_whole"], {}), rows.get(label["reader_whole"], {})
    print()
    ok = "failed" not in m
    if not ok:
        print(f"monitor failed: {m['failed'][-600:]}")
    if "articles" in m:
        counts = m["articles_all"]
        good = all(c == expected for c in counts)
        print(f"correctness: monitor poll --all stored {counts[0]:,} articles on its cold run "
              f"(expected {expected:,}; every round: {counts}): {_verdict(good)}")
        ok &= good
        served = m.get("served", {})
        good = served.get(304, 0) == args.feeds and served.get(200, 0) == args.feeds
        print(f"correctness: the server answered monitor {served.get(200, 0)}×200 and "
              f"{served.get(304, 0)}×304 (expected {args.feeds} of each: every warm fetch "
              f"conditional): {_verdict(good)}")
        ok &= good
    u = rows.get(label["user"], {})
    if "warm_status" in u:
        good = (u["warm_status"] == {"not-modified": args.feeds} and u["warm_new"] == 0
                and all(c == expected for c in u["articles_all"]))
        print(f"correctness, in-process run: {u['articles_all']} stored, warm {u['warm_status']}, "
              f"{u['warm_new']} new: {_verdict(good)}")
        ok &= good
    if "cold_s" in m and "cold_s" in rd:
        cold_ratio, warm_ratio = m["cold_s"] / rd["cold_s"], m["warm_s"] / rd["warm_s"]
        print(f"monitor poll --all / reader, whole processes, cold: {cold_ratio:.2f}×  "
              f"(target ≤ {TARGET_COLD}×)  {_verdict(cold_ratio <= TARGET_COLD)}")
        print(f"monitor poll --all / reader, whole processes, warm: {warm_ratio:.2f}×  "
              f"(target ≤ {TARGET_WARM}×)  {_verdict(warm_ratio <= TARGET_WARM)}")
        ok &= cold_ratio <= TARGET_COLD and warm_ratio <= TARGET_WARM
        for what, modules in IMPORT_FLOORS:
            took = _import_time(modules)
            print(f"beside it, a process that only imports {what} ({modules}): {took:.2f} s = "
                  f"{took / rd['warm_s']:.2f}× reader's whole warm poll")
    elif "cold_s" in m:
        ok = False
        print("monitor/reader: no reader figures, ratios not computed: FAIL")
    if "rss_mb" in m:
        print(f"monitor poll --all, peak RSS of its processes: {m['rss_mb']:.1f} MB  "
              f"(target ≤ {TARGET_RSS_MB:g} MB)  {_verdict(m['rss_mb'] <= TARGET_RSS_MB)}"
              f"; beside it, their peak summed PSS {m.get('pss_mb', 0.0):.1f} MB")
        ok &= m["rss_mb"] <= TARGET_RSS_MB
    r = rows.get(label["reader"], {})
    for key, what in (("user", "as shipped"), ("bare", "without analysis"),
                      ("matched", "matched concurrency, no analysis")):
        x = rows.get(label[key], {})
        if "cold_s" in x and "cold_s" in r:
            print(f"beside it, the cycle call alone (in-process, setup excluded), monitor {what}"
                  f" / reader: cold {x['cold_s'] / r['cold_s']:.2f}×, warm "
                  f"{x['warm_s'] / r['warm_s']:.2f}×, peak RSS {x['rss_mb']:.1f} MB")
    if args.profile and "failed" not in rows.get(label["profiled"], {"failed": 1}):
        print(f"cProfile of monitor's cycles: {args.profile}.cold.prof, {args.profile}.warm.prof "
              f"(python -m pstats FILE; sort cumtime / tottime)")
    return ok


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if args.child:
        kind, spec_file, out_file = args.child
        result = CHILDREN[kind](json.loads(Path(spec_file).read_text()))
        Path(out_file).write_text(json.dumps(result))
        return 0
    notes: list[str] = []
    rows = _run_all(args, _make_docs(args), notes)
    _print_table(args, rows, notes)
    ok = _check_targets(args, rows)
    print(f"overall: {_verdict(ok)}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
