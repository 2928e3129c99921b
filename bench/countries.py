"""Country extraction, side by side: monitor.countries vs geotext vs flashgeotext.

    python bench/countries.py [DEV_JSONL] [--repeat N]

DEV_JSONL defaults to ../shared/data/dev.jsonl next to the repository (labelled records,
LABELING.md format). Prints micro precision/recall/F1 and articles/s for each extractor
(ours also per language), and the load time and memory of our gazetteer.

Bench-only dependencies, not project dependencies (install in any venv that can import
this checkout, e.g. ``pip install geotext flashgeotext babel``):
    geotext        GeoText(text).country_mentions -> ISO codes (cities count for their country)
    flashgeotext   GeoText().extract(text)["countries"] -> English names, mapped to ISO here
A peer that is not installed is reported as missing; ours always runs.
Targets (issue 4): our F1 >= 0.95 overall and >= 0.92 per language with >= 30 items,
>= 10 points above the better peer; speed >= flashgeotext; load <= 0.2 s; memory <= 50 MB.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from collections.abc import Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from monitor import countries  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "dev.jsonl"
# flashgeotext's English names that are not CLDR English names
FLASH_EXTRA = {
    "The Bahamas": "BS", "Bosnia and Herzegovina": "BA", "Czech Republic": "CZ",
    "Democratic Republic of Congo": "CD", "Republic of Congo": "CG", "East Timor": "TL",
    "Ivory Coast": "CI", "Myanmar": "MM", "Palestine": "PS", "Saint Kitts and Nevis": "KN",
    "Saint Vincent and the Grenadines": "VC", "Trinidad and Tobago": "TT", "Turkey": "TR",
}

Extractor = Callable[[str, str], set]


def load_records(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def ours() -> Extractor:
    return lambda title, text: {m.code for m in countries.extract_countries(title, text)}


def geotext_extractor() -> Extractor | None:
    try:
        from geotext import GeoText
    except ImportError:
        return None
    return lambda title, text: set(GeoText(f"{title}\n{text}").country_mentions)


def flashgeotext_extractor() -> Extractor | None:
    try:
        from babel import Locale
        from flashgeotext.geotext import GeoText
    except ImportError:
        return None
    from loguru import logger

    logger.remove()
    english = {name: code for code, name in Locale("en").territories.items()}
    english.update(FLASH_EXTRA)
    geotext = GeoText()

    def extract(title: str, text: str) -> set:
        found = geotext.extract(input_text=f"{title}\n{text}")["countries"]
        return {english[name] for name in found if name in english}

    return extract


def score(pairs: list[tuple[set, set]]) -> tuple[float, float, float]:
    """Micro precision, recall, F1 over (gold, predicted) code sets."""
    tp = sum(len(g & p) for g, p in pairs)
    fp = sum(len(p - g) for g, p in pairs)
    fn = sum(len(g - p) for g, p in pairs)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def run_all(extractors: dict[str, Extractor], records: list[dict],
            repeat: int) -> dict[str, tuple[list[set], float]]:
    """Predictions and articles per second (best pass) for each extractor.

    Passes are interleaved (ours, geotext, flashgeotext, ours, ...) so that a busy
    machine slows every extractor alike.
    """
    best = {name: float("inf") for name in extractors}
    predictions: dict[str, list[set]] = {}
    for _ in range(repeat):
        for name, extract in extractors.items():
            start = time.perf_counter()
            predictions[name] = [extract(r.get("title", ""), r.get("text", ""))
                                 for r in records]
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: (predictions[name], len(records) / best[name]) for name in extractors}


def gazetteer_cost() -> tuple[float, float, float]:
    """Seconds to load our gazetteer from the shipped file (best of 3), and the memory it
    keeps and the peak while loading, in MB (measured in a separate load)."""
    seconds = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        countries.load_gazetteer()
        seconds = min(seconds, time.perf_counter() - start)
    tracemalloc.start()
    kept = countries.load_gazetteer()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del kept
    return seconds, current / 1e6, peak / 1e6


def print_row(name: str, pairs: list[tuple[set, set]], rate: float | None, n: int) -> None:
    p, r, f = score(pairs)
    speed = f"{rate:9.0f}" if rate is not None else " " * 9
    print(f"{name:<22} {n:5d} {p:7.3f} {r:7.3f} {f:7.3f} {speed}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    records = load_records(args.data)
    gold = [set(r.get("countries", [])) for r in records]
    seconds, kept, peak = gazetteer_cost()
    countries.gazetteer()  # warm, so speed measures extraction only
    print(f"data: {args.data} ({len(records)} articles)")
    print(f"gazetteer load: {seconds:.3f} s, memory {kept:.1f} MB kept, {peak:.1f} MB peak")
    print(f"{'extractor':<22} {'items':>5} {'P':>7} {'R':>7} {'F1':>7} {'art/s':>9}")
    extractors = {}
    for name, factory in (("monitor.countries", ours), ("geotext", geotext_extractor),
                          ("flashgeotext", flashgeotext_extractor)):
        extract = factory()
        if extract is None:
            print(f"{name:<22} not installed")
        else:
            extractors[name] = extract
    results = run_all(extractors, records, args.repeat)
    for name, (predictions, rate) in results.items():
        print_row(name, list(zip(gold, predictions)), rate, len(records))
    by_language: dict[str, list[tuple[set, set]]] = defaultdict(list)
    for record, g, p in zip(records, gold, results["monitor.countries"][0]):
        by_language[record.get("lang", "?")].append((g, p))
    print("monitor.countries per language:")
    for language, pairs in sorted(by_language.items(), key=lambda kv: -len(kv[1])):
        print_row(f"  {language}", pairs, None, len(pairs))
    _print_comparison(gold, results)
    return 0


def _print_comparison(gold: list[set], results: dict) -> None:
    ours_pred, ours_rate = results["monitor.countries"]
    ours_f1 = score(list(zip(gold, ours_pred)))[2]
    peers = {n: v for n, v in results.items() if n != "monitor.countries"}
    if not peers:
        return
    best_name, (best_pred, _) = max(peers.items(),
                                    key=lambda kv: score(list(zip(gold, kv[1][0])))[2])
    best_f1 = score(list(zip(gold, best_pred)))[2]
    print(f"F1 lead over best peer ({best_name}): {100 * (ours_f1 - best_f1):+.1f} points")
    if "flashgeotext" in peers:
        print(f"speed vs flashgeotext: {ours_rate / peers['flashgeotext'][1]:.1f}x")


if __name__ == "__main__":
    sys.exit(main())
