"""Choices behind the classifier's defaults, made by grouped cross-validation over our real
labelled items (never by dev.jsonl): feature sets, and default keyword phrases.

    .venv/bin/python bench/choose.py                          # feature sets
    .venv/bin/python bench/choose.py --without 碳酸锂 --without neodymium   # keyword phrases
    .venv/bin/python bench/choose.py --with critical-minerals:Rohstoffabkommen
    .venv/bin/python bench/choose.py --candidate shipped --nested    # the threshold rule
    .venv/bin/python bench/choose.py --candidate shipped --extra-labels models/labels/untrained --seeds 0,1,2
    .venv/bin/python bench/choose.py --candidate shipped --seeds 0,1,2,3,4   # five splits

For each variant: out-of-fold probabilities for every real item (5 folds that never split a
story or a source-day; the written corpus trains in every fold), thresholds chosen on them
as `monitor train` does, and the product's flagged F1 (model + keywords) overall and per
language, with the model alone beside it. Needs the pool (../shared/data or $MONITOR_POOL).

``--candidate shipped`` takes the shipped model's candidate (from its card) instead of the
default one. ``--extra-labels DIR`` asks whether a further set of labels (such as the round
in ``models/labels/untrained``) helps: the same real items are tested, in the same folds,
with and without DIR's items training in every fold (their held-out part aside), per fold
seed of ``--seeds``. ``--nested`` checks how thresholds are chosen, on items they were not chosen
on: per split (seeds 1-3), thresholds chosen on four fifths of the story groups' out-of-fold
probabilities and applied to the fifth, with each grid point judged alone (the plain
maximum, ``THRESHOLD_SMOOTHING`` = 0) and with its neighbours (the shipped rule), without
per-language thresholds, and with them for every language of 40 flagged items (the bar
before ``LANGUAGE_MIN_FLAGGED`` was raised) beside them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.config import load_config  # noqa: E402
from monitor.keywords import KeywordRules  # noqa: E402
from monitor.labels import default_pool_path, join_pool, load_labels  # noqa: E402
from monitor.train import (  # noqa: E402
    CV_FOLDS, DEFAULT_CANDIDATE, DEFAULT_FEATURES, FEATURES, _groups, _scored, apply_reviews,
    candidate_of, choose_thresholds, is_held_out, load_corpus, out_of_fold)


def main() -> None:
    args = _arguments()
    pool = Path(args.pool) if args.pool else default_pool_path()
    if pool is None:
        sys.exit("no pool: give --pool PATH or set $MONITOR_POOL")
    real, _ = join_pool(load_labels(ROOT / "models" / "labels"), pool)
    extra = join_pool(load_labels(args.extra_labels), pool)[0] if args.extra_labels else []
    records = apply_reviews(load_corpus(ROOT / "models" / "corpus") + real + extra, [])
    groups = _groups(records)
    keep = [i for i, g in enumerate(groups) if not is_held_out(g)]     # the training part
    records, groups = [records[i] for i in keep], [groups[i] for i in keep]
    extra_ids = {r["id"] for r in extra}
    tested = [i for i, r in enumerate(records) if r.get("real") and r["id"] not in extra_ids]
    gold = [records[i] for i in tested]
    spec = load_config(ROOT / "config" / "monitor.toml").keywords.spec()
    variants = {"config keywords": spec}
    if args.without:
        variants["without " + ", ".join(args.without)] = {
            k: [p for p in v if p not in args.without] for k, v in spec.items()}
    if args.with_:
        added = {k: list(v) for k, v in spec.items()}
        for item in args.with_:
            topic, _, phrase = item.partition(":")
            if topic not in added or not phrase:
                sys.exit(f"--with {item!r}: give TOPIC:PHRASE, TOPIC one of {', '.join(added)}")
            added[topic].append(phrase)
        variants["with " + ", ".join(args.with_)] = added
    candidate = DEFAULT_CANDIDATE
    if args.candidate == "shipped":
        from monitor.classify import read_card

        candidate = candidate_of(read_card(ROOT / "models" / "classifier.skops")) or candidate
    if args.extra_labels:
        _with_extra(records, groups, tested, candidate, KeywordRules.compile(spec), extra_ids,
                    [int(x) for x in args.seeds.split(",")], args.features.split(",")[0])
        return
    print(f"{len(gold)} real items tested, {len(records) - len(gold)} written items train in "
          f"every fold; {CV_FOLDS} folds; {candidate.name}\n")
    seeds = [int(x) for x in args.seeds.split(",")]
    for features, seed in ((f, s) for f in args.features.split(",") for s in seeds):
        started = time.perf_counter()
        probs = out_of_fold(records, tested, groups, features=features, seed=seed,
                            folds=CV_FOLDS, candidates=[candidate])[candidate]
        took = time.perf_counter() - started
        if len(seeds) > 1:
            print(f"fold seed {seed}")
        for name, phrases in variants.items():
            rules = KeywordRules.compile(phrases)
            matches = [rules.match(r["title"], r["text"]) for r in gold]
            thresholds = choose_thresholds(gold, probs, matches)
            product = _scored(gold, probs, thresholds, rules)
            alone = _scored(gold, probs, choose_thresholds(gold, probs, [_NONE] * len(gold)), None)
            langs = "  ".join(f"{lang} {block['flagged']['f1']:.3f}"
                              for lang, block in sorted(product["languages"].items()))
            print(f"{features:12s} {name:40s} flagged F1 {product['flagged']['f1']:.4f} "
                  f"(model alone {alone['flagged']['f1']:.4f})  {langs}  [{took:.0f} s]")
        if args.phrases:
            _leave_one_out(gold, probs, list(variants.values())[-1], args.phrases)
        if args.nested:
            _nested(gold, probs, [groups[i] for i in tested], KeywordRules.compile(spec))


def _with_extra(records, groups, tested, candidate, rules, extra_ids, seeds, features) -> None:
    """Flagged F1 (all, per language) on the tested items, trained without and with the
    extra labels' items (which train in every fold and are never tested)."""
    gold = [records[i] for i in tested]
    matches = [rules.match(r["title"], r["text"]) for r in gold]
    without = [i for i, r in enumerate(records) if r["id"] not in extra_ids]
    print(f"{len(gold)} real items tested; {len(records) - len(without)} extra items train in "
          f"every fold of the second run; {CV_FOLDS} folds; {candidate.name}")
    for seed in seeds:
        for name, subset in (("without the extra labels", without),
                             ("with them", list(range(len(records))))):
            index = {i: k for k, i in enumerate(subset)}
            probs = out_of_fold([records[i] for i in subset], [index[i] for i in tested],
                                [groups[i] for i in subset], features=features, seed=seed,
                                folds=CV_FOLDS, candidates=[candidate])[candidate]
            report = _scored(gold, probs, choose_thresholds(gold, probs, matches), rules)
            langs = "  ".join(f"{lang} {block['flagged']['f1']:.3f}"
                              for lang, block in sorted(report["languages"].items()))
            print(f"  fold seed {seed} {name:26s} flagged F1 {report['flagged']['f1']:.4f}  {langs}",
                  flush=True)


def _nested(gold, probs, groups, rules) -> None:
    """Flagged F1 (all, per language) of thresholds applied to story groups they were not
    chosen on, per rule of choosing them (see the module's docstring)."""
    import monitor.train as training
    from monitor.decide import decide
    from monitor.evaluate import evaluate

    matches = [rules.match(r["title"], r["text"]) for r in gold]
    shipped = (training.THRESHOLD_SMOOTHING, training.LANGUAGE_MIN_GAIN,
               training.LANGUAGE_MIN_FLAGGED)
    rules_tried = {"plain maximum": (0.0, *shipped[1:]), "with neighbours (shipped)": shipped,
                   "with neighbours, no per-language": (shipped[0], float("inf"), shipped[2]),
                   "per-language from 40 flagged (before)": (*shipped[:2], 40)}
    print("\nnested: thresholds chosen on 4/5 of the groups, scored on the other 1/5")
    try:
        for name, (window, gain, flagged) in rules_tried.items():
            (training.THRESHOLD_SMOOTHING, training.LANGUAGE_MIN_GAIN,
             training.LANGUAGE_MIN_FLAGGED) = window, gain, flagged
            for seed in (1, 2, 3):
                predicted: list[dict] = [{}] * len(gold)
                for train_idx, test_idx in training._folds(gold, groups, CV_FOLDS, seed):
                    chosen = choose_thresholds([gold[i] for i in train_idx],
                                               [probs[i] for i in train_idx],
                                               [matches[i] for i in train_idx])
                    for i in test_idx:
                        verdict = decide(probs[i], matches[i],
                                         chosen.for_language(gold[i].get("lang")), None)
                        predicted[i] = {"id": gold[i]["id"], "lang": gold[i].get("lang"),
                                        "topics": list(verdict.topics)}
                report = evaluate(gold, predicted)
                langs = "  ".join(f"{lang} {block['flagged']['f1']:.3f}"
                                  for lang, block in sorted(report["languages"].items()))
                print(f"  {name:38s} seed {seed}: all {report['flagged']['f1']:.4f}  {langs}")
    finally:
        (training.THRESHOLD_SMOOTHING, training.LANGUAGE_MIN_GAIN,
         training.LANGUAGE_MIN_FLAGGED) = shipped


def _leave_one_out(gold, probs, base_spec, min_hits: int) -> None:
    """Per keyword phrase with at least ``min_hits`` hits among the real items: its hits, how
    many were right, and the product's flagged F1 without it (from the last variant)."""
    from monitor.train import flagged_f1

    base_rules = KeywordRules.compile(base_spec)
    matches = [base_rules.match(r["title"], r["text"]) for r in gold]
    base = flagged_f1(gold, probs, matches, choose_thresholds(gold, probs, matches))
    counts: dict[tuple[str, str], list[int]] = {}
    for record, match in zip(gold, matches):
        for topic, phrases in match.hits.items():
            for phrase in phrases:
                c = counts.setdefault((topic, phrase), [0, 0])
                c[0] += 1
                c[1] += topic in record["topics"]
    print(f"\nleave one phrase out (product flagged F1 with all: {base:.4f})")
    for (topic, phrase), (hits, right) in sorted(counts.items(), key=lambda kv: -kv[1][0]):
        if hits < min_hits:
            continue
        trimmed = {k: [p for p in v if not (k == topic and p == phrase)] for k, v in base_spec.items()}
        rules = KeywordRules.compile(trimmed)
        m = [rules.match(r["title"], r["text"]) for r in gold]
        f1 = flagged_f1(gold, probs, m, choose_thresholds(gold, probs, m))
        print(f"  {topic:18s} {phrase!r:28s} hits {hits:4d} right {right / hits:5.2f}  "
              f"without it {f1:.4f} ({f1 - base:+.4f})")


class _NoMatch:
    topics: tuple[str, ...] = ()
    muted: tuple[str, ...] = ()


_NONE = _NoMatch()


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--features", default=DEFAULT_FEATURES,
                        help=f"comma-separated, of {', '.join(FEATURES)}")
    parser.add_argument("--without", action="append", default=[],
                        help="a default keyword phrase to try without (repeatable)")
    parser.add_argument("--with", dest="with_", action="append", default=[],
                        metavar="TOPIC:PHRASE",
                        help="a keyword phrase to try added to a topic's list (repeatable)")
    parser.add_argument("--pool", help="the pool file (default: as monitor train finds it)")
    parser.add_argument("--candidate", choices=("default", "shipped"), default="default",
                        help="the default candidate, or the shipped model's (its card)")
    parser.add_argument("--nested", action="store_true",
                        help="check the threshold rule on groups it did not choose on")
    parser.add_argument("--extra-labels", type=Path, metavar="DIR",
                        help="compare training without and with these labels' items")
    parser.add_argument("--seeds", default="0", metavar="S,S",
                        help="fold seeds, each a split of the folds of its own (default 0)")
    parser.add_argument("--phrases", type=int, default=0, metavar="N",
                        help="also leave out, one at a time, each phrase with at least N hits")
    return parser.parse_args()


if __name__ == "__main__":
    main()
