"""Benchmark: classify throughput (prepare + predict_proba + keyword rules + decide) on
1,000 realistic articles, single process, beside the dev-set flagged F1 of the same model
and of the alternative feature sets, and the model load time.

    .venv/bin/python bench/classify.py [--n 1000] [--batch 1000]
        [--features word1+char4,word+char4,word,word+char] [--dev ../shared/data/dev.jsonl]

What happens:

* Articles: the project corpus (models/corpus/*.jsonl) in file order, cycled with small
  edits (a suffix on the title, a sentence moved) until there are ``--n``.
* Models: the shipped model (models/classifier.skops) when it exists, and one model per
  ``--features`` set, each fitted here on the corpus minus its held-out part (exactly
  what ``monitor train`` trains on), saved to a temp dir with ``save_model``.
* Per model: load time (``SkopsClassifier.load``, sklearn already imported; the cold
  ``python -c 'load'`` time including imports is printed for the shipped model too),
  articles/s over the ``--n`` articles in batches of ``--batch`` (best of 3 rounds, see
  below; the first model is also run in batches of 100 and 30, the size of one feed's new
  items, best of 3 runs each),
  and flagged F1 on the dev file: the model alone and the model with the config's keyword
  rules (the product). The keyword-only baseline is printed beside them. Throughput runs
  take turns: in each of 3 rounds every model classifies the articles once, and each
  model's best round counts (the model measured first is not the one a warm-up or a slow
  stretch of the machine hits).

The dev file is only scored, never trained on, and never the ground for a choice: feature
sets are chosen by cross-validation over our real labelled items (bench/choose.py); pass
``--dev /none`` to measure speed alone. Targets: ≥ 3,000 articles/s, load ≤ 0.5 s.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.classify import (  # noqa: E402
    SkopsClassifier, classify_articles, preparation_fingerprint, save_model)
from monitor.keywords import KeywordRules, forget_recent_texts  # noqa: E402
from monitor.train import (  # noqa: E402
    DEFAULT_THRESHOLD, fit_pipeline, is_held_out, keyword_report, load_corpus, load_jsonl,
    score_pipeline)


def main() -> None:
    args = _arguments()
    corpus = load_corpus(args.corpus)
    articles = realistic_articles(corpus, args.n)
    rules = _rules(args.config)
    dev = load_jsonl(args.dev) if args.dev.exists() else None
    print(f"{len(articles)} articles from {len(corpus)} corpus records; batch {args.batch}; "
          f"{len(rules)} keyword rules; dev: {args.dev if dev else 'not found'}\n")
    rows = []
    if args.model.exists():
        rows.append(_measure("shipped model", SkopsClassifier.load(args.model), args.model,
                             articles, rules, dev, args.batch))
        print(f"cold load of the shipped model (python + imports + load): "
              f"{_cold_load(args.model):.2f} s\n")
    train = [r for r in corpus if not is_held_out(r["id"])]
    with tempfile.TemporaryDirectory() as tmp:
        for features in filter(None, args.features.split(",")):
            rows.append(_alternative(features, train, Path(tmp), articles, rules, dev, args))
    _interleaved_rates(rows, articles, rules, args.batch)
    _print_rows(rows, keyword_report(dev, rules)["flagged"]["f1"] if dev else None)
    _print_batches(rows[0], articles, rules)
    _print_analyse(rows[0], articles, rules)


def _print_analyse(row: dict, articles, rules) -> None:
    """The whole analyse step of the poll (language, classification with keyword rules,
    countries, minerals: ``Analyzer.analyse``) and each of its parts, one core, articles/s
    (best of 3 runs), in batches of one feed's new items (30), of the most the poll's writer
    takes at once (``_Batches.MAX_ARTICLES``, several feeds waiting for it) and of 1,000."""
    from monitor.analyze import Analyzer
    from monitor.countries import extract_countries
    from monitor.language import detect_languages
    from monitor.minerals import extract_minerals
    from monitor.pipeline import _Batches

    analyzer = Analyzer(row["model"], rules)
    docs = [(title, text, None) for title, text in articles]
    parts = {
        "language": detect_languages,
        "countries": lambda batch: [extract_countries(t, x) for t, x, _ in batch],
        "minerals": lambda batch: [extract_minerals(t, x) for t, x, _ in batch],
        "classify": lambda batch: classify_articles([(t, x) for t, x, _ in batch], row["model"],
                                                    rules, analyzer.thresholds),
        "analyse (all of it)": analyzer.analyse,
    }
    print(f"\n{row['name']}: the poll's analyse step, one core, articles/s")
    for size in (30, _Batches.MAX_ARTICLES, 1000):
        rates = []
        for name, step in parts.items():
            def run(step=step, size=size) -> None:
                forget_recent_texts()
                for start in range(0, len(docs), size):
                    step(docs[start:start + size])
            rates.append(f"{name} {len(docs) / min(_timed(run) for _ in range(3)):,.0f}")
        print(f"  batches of {size}: " + ", ".join(rates))


def _print_batches(row: dict, articles, rules) -> None:
    rates = [f"{_rate(row['model'], articles, rules, b):,.0f}/s in batches of {b}"
             for b in (100, 30)]
    print(f"\n{row['name']}: " + ", ".join(rates))


def _rate(model, articles, rules, batch: int) -> float:
    """Articles per second, best of 3 runs."""
    return len(articles) / min(_timed(lambda: _classify(model, articles, rules, batch))
                               for _ in range(3))


def _interleaved_rates(rows: list[dict], articles, rules, batch: int, rounds: int = 3) -> None:
    """Each row's articles/s: the best of ``rounds`` runs, the models taking turns within
    each round, so that a slow stretch of the machine (or a first run's warm-up) hits them
    all alike instead of whichever is measured first."""
    times: dict[str, list[float]] = {r["name"]: [] for r in rows}
    for _ in range(rounds):
        for row in rows:
            times[row["name"]].append(
                _timed(lambda model=row["model"]: _classify(model, articles, rules, batch)))
    for row in rows:
        row["rate"] = len(articles) / min(times[row["name"]])


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--features", default="word1+char4,word+char4,word,word+char")
    parser.add_argument("--corpus", type=Path, default=ROOT / "models" / "corpus")
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "classifier.skops")
    parser.add_argument("--dev", type=Path, default=ROOT.parent / "shared" / "data" / "dev.jsonl")
    parser.add_argument("--config", type=Path, default=ROOT / "config" / "monitor.toml")
    return parser.parse_args()


def realistic_articles(corpus: list[dict], n: int) -> list[tuple[str, str]]:
    """``n`` (title, text) pairs: the corpus cycled, later rounds slightly edited."""
    out = []
    for i in range(n):
        record = corpus[i % len(corpus)]
        round_ = i // len(corpus)
        title, text = record["title"], record["text"]
        if round_:
            sentences = text.split(". ")
            text = ". ".join(sentences[1:] + sentences[:1])
            title = f"{title} ({round_ + 1})"
        out.append((title, text))
    return out


def _rules(config: Path) -> KeywordRules:
    try:
        from monitor.config import load_config

        return KeywordRules.compile(load_config(config).keywords.spec())
    except Exception as exc:  # noqa: BLE001 - a bench runs without a config too
        print(f"(no keyword rules: {exc})")
        return KeywordRules.empty()


def _alternative(features: str, train: list[dict], tmp: Path, articles, rules, dev,
                 args) -> dict:
    started = time.perf_counter()
    pipeline = fit_pipeline(train, features)
    fit_seconds = time.perf_counter() - started
    path = tmp / f"{features.replace('+', '_')}.skops"
    import sklearn

    save_model(pipeline, path, {"version": features, "sklearn_version": sklearn.__version__,
                                "preparation": preparation_fingerprint()})
    model = SkopsClassifier.load(path)
    row = _measure(features, model, path, articles, rules, dev, args.batch)
    row["fit"] = fit_seconds
    return row


def _measure(name: str, model: SkopsClassifier, path: Path, articles, rules, dev,
             batch: int) -> dict:
    load = min(_timed(lambda: SkopsClassifier.load(path)) for _ in range(3))
    row = {"name": name, "load": load, "size": path.stat().st_size, "model": model}
    if dev:
        threshold = model.card.get("threshold", DEFAULT_THRESHOLD)
        row["f1"] = score_pipeline(model.pipeline, dev, threshold)["flagged"]["f1"]
        row["f1_kw"] = score_pipeline(model.pipeline, dev, threshold, rules)["flagged"]["f1"]
    print(f"measured {name}")
    return row


def _classify(model, articles, rules, batch: int) -> None:
    forget_recent_texts()  # a text is split once per run, as in the service
    for start in range(0, len(articles), batch):
        classify_articles(articles[start:start + batch], model, rules, DEFAULT_THRESHOLD)


def _timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def _cold_load(path: Path) -> float:
    code = ("import time; t = time.perf_counter(); from monitor.classify import "
            f"SkopsClassifier; SkopsClassifier.load({str(path)!r}); "
            "print(time.perf_counter() - t)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    return float(out.stdout.strip())


def _print_rows(rows: list[dict], keyword_f1: float | None) -> None:
    best = max((r.get("f1_kw") or 0.0 for r in rows), default=0.0)
    print(f"\n{'model':<16}{'dev F1':>8}{'+keywords':>11}{'vs best':>9}{'articles/s':>12}"
          f"{'load s':>8}{'MB':>7}{'fit s':>7}")
    for r in rows:
        gap = f"{(r['f1_kw'] - best) * 100:+.1f}pt" if "f1_kw" in r else "-"
        print(f"{r['name']:<16}{_f(r.get('f1')):>8}{_f(r.get('f1_kw')):>11}{gap:>9}"
              f"{r['rate']:>12,.0f}{r['load']:>8.3f}{r['size'] / 1e6:>7.2f}"
              f"{r.get('fit', 0.0):>7.1f}")
    if keyword_f1 is not None:
        print(f"{'keywords only':<16}{'':>8}{_f(keyword_f1):>11}")


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    main()
