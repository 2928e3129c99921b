"""Countries and minerals per language on our labelled real news items.

    .venv/bin/python bench/extraction.py [--labels models/labels] [--pool FILE]
                                         [--by READER ...] [--code CHECKOUT]

Joins our labels (``models/labels/*.jsonl``, keyed by pool id) to the pool's text (default:
$MONITOR_POOL, else ../shared/data/pool-unlabeled.jsonl) and prints, per language, the
micro precision/recall/F1 of ``extract_countries`` on every item and of
``extract_minerals`` on the flagged ones: the extraction table of the README.

``--by`` keeps only the labels of these readers (the ``by`` field, e.g. ``helper-f2``: one
batch of a labelling round). ``--code`` runs the extractors of another checkout of this
project (e.g. one made with ``git worktree add /tmp/before <commit>``), so that rules can
be compared before and after on the same labels.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LANGUAGES = ("de", "en", "zh", "pl", "ko", "ja")


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, default=REPO / "models" / "labels")
    default_pool = os.environ.get("MONITOR_POOL") or REPO.parent / "shared" / "data" / "pool-unlabeled.jsonl"
    parser.add_argument("--pool", type=Path, default=Path(default_pool))
    parser.add_argument("--by", nargs="+", metavar="READER",
                        help="only the labels of these readers")
    parser.add_argument("--code", type=Path, default=REPO,
                        help="the checkout whose extractors run (default: this one)")
    return parser.parse_args(argv)


def _micro(counts: list[int]) -> str:
    from monitor.evaluate import scores

    tp, fp, fn, items = counts
    if not items:
        return "-"
    if not tp + fp + fn:
        return f"- (nothing named or found, {items:,} items)"
    s = {key: value or 0.0 for key, value in scores((tp, fp, fn)).items()}
    return f"{s['f1']:.3f} (P {s['precision']:.3f} R {s['recall']:.3f}, {items:,} items)"


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    if not args.pool.is_file():
        print(f"no pool at {args.pool} (--pool FILE or $MONITOR_POOL)", file=sys.stderr)
        return 2
    sys.path.insert(0, str(args.code.resolve()))
    from monitor.countries import extract_countries      # from --code
    from monitor.minerals import extract_minerals
    from monitor.labels import join_pool, load_labels

    labels = load_labels(args.labels)
    if args.by:
        labels = [label for label in labels if label.get("by") in set(args.by)]
    records, missing = join_pool(labels, args.pool)
    print(f"{len(records):,} labelled items joined to {args.pool.name} ({len(missing)} without "
          f"text); extractors of {args.code.resolve()}")
    countries: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    minerals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for record in records:
        title, text = record["title"], record["text"]
        pairs = [(countries, extract_countries, record.get("countries"))]
        if record["topics"]:
            pairs.append((minerals, extract_minerals, record.get("minerals")))
        for table, extract, gold in pairs:
            found = {m.code for m in extract(title, text)}
            truth = set(gold or [])
            for key in (record.get("lang") or "?", "all"):
                row = table[key]
                row[0] += len(found & truth)
                row[1] += len(found - truth)
                row[2] += len(truth - found)
                row[3] += 1
    print(f"{'':6} {'countries: micro-F1':44} minerals of flagged items: micro-F1")
    for lang in (*LANGUAGES, *sorted(set(countries) - {*LANGUAGES, "all"}), "all"):
        if lang in countries:
            print(f"{lang:6} {_micro(countries[lang]):44} {_micro(minerals[lang])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
