"""Training the topic classifier from the labelled corpus and analysts' reviews.

    records (models/corpus/*.jsonl) + reviews ──▶ held-out split (stable hash of the id)
        ──▶ cross-validation on the rest ──▶ final fit on the rest ──▶ held-out metrics
        ──▶ model card ──▶ should_replace(old card, new card) ──▶ save (skops + card)

The held-out part is every corpus record whose ``sha256(id)`` falls in the lowest
``HELD_OUT_PERCENT`` of the hash space: fixed across runs, so the flagged F1 of two models
on it can be compared, and never trained on. Reviews override the labels of the corpus
record with the same id (or url); reviews of other articles are added to the training
part. A dev file is only ever scored, never trained on.

scikit-learn is imported lazily (this module and ``monitor.classify`` own it).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from itertools import count
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from monitor import TOPICS
from monitor.classify import (
    SCORING, SkopsClassifier, card_path, classify_articles, preparation_fingerprint, save_model)
from monitor.evaluate import evaluate
from monitor.exceptions import ClassifierError, UsageError
from monitor.keywords import KeywordRules

HELD_OUT_PERCENT = 15
CV_FOLDS = 5
DEFAULT_THRESHOLD = 0.5
MAX_F1_DROP = 0.01          # one point of held-out flagged F1
DEFAULT_FEATURES = "word1+char4"
FEATURES = {
    "word+char4": "word uni- and bigrams (CJK: character uni- and bigrams) plus character "
                  "4-grams within words, TF-IDF, one logistic regression per topic",
    "word1+char4": "words (CJK: characters) plus character 4-grams within the words of "
                   "title and text, TF-IDF, one logistic regression per topic",
    "word": "word uni- and bigrams (CJK: character uni- and bigrams), TF-IDF, "
            "one logistic regression per topic",
    "word+char": "word uni- and bigrams plus character 2- to 5-grams within words, "
                 "TF-IDF, one logistic regression per topic",
}

Record = Mapping[str, Any]


@dataclass(frozen=True)
class TrainResult:
    """A fitted pipeline and its model card."""

    pipeline: Any
    card: dict[str, Any]
    held_out: list[dict[str, Any]] = field(default_factory=list)   # records, for comparing


@dataclass(frozen=True)
class TrainOutcome:
    """What ``train_from_paths`` did."""

    card: dict[str, Any]
    replaced: bool
    reason: str
    path: Path


# --- the pipeline ---------------------------------------------------------------------

def build_pipeline(features: str = DEFAULT_FEATURES, seed: int = 0) -> Any:
    """An unfitted scikit-learn pipeline: prepared text -> one probability per topic."""
    from sklearn.multiclass import OneVsRestClassifier
    from sklearn.pipeline import Pipeline

    if features not in FEATURES:
        raise ValueError(f"unknown features {features!r} (one of {', '.join(FEATURES)})")
    classifier = OneVsRestClassifier(_logistic_regression(seed))
    return Pipeline([*_vectoriser_steps(features), ("clf", classifier)])


def _logistic_regression(seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression

    # C by 5-fold CV on the corpus (two seeds): flat from 10 to 100 within half a point.
    return LogisticRegression(C=30.0, class_weight="balanced", max_iter=2000,
                              solver="liblinear", random_state=seed)


def _vectoriser_steps(features: str) -> list[tuple[str, Any]]:
    """The features of ``model_input``'s two columns: words from column 0 (title repeated,
    concept tokens), character n-grams from column 1 (title once, no concept tokens)."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer

    words = TfidfVectorizer(token_pattern=r"\w+", ngram_range=(1, 2), min_df=2,
                            max_df=0.5, sublinear_tf=True, lowercase=False, dtype=np.float32)
    if features == "word":
        return [("features", ColumnTransformer([("words", words, 0)]))]
    if features == "word1+char4":
        words.set_params(ngram_range=(1, 1))
    analyzer, sizes = {"word+char4": ("char_wb", (4, 4)), "word1+char4": ("char_wb", (4, 4)),
                       "word+char": ("char_wb", (2, 5))}[features]
    chars = TfidfVectorizer(analyzer=analyzer, ngram_range=sizes, min_df=2,
                            sublinear_tf=True, lowercase=False, dtype=np.float32)
    return [("features", ColumnTransformer([("words", words, 0), ("chars", chars, 1)]))]


def fit_pipeline(records: Sequence[Record], features: str = DEFAULT_FEATURES,
                 seed: int = 0) -> Any:
    """Fit a fresh pipeline on labelled records."""
    from monitor.classify import model_input

    pipeline = build_pipeline(features, seed)
    pipeline.fit(model_input([(r["title"], r["text"]) for r in records]),
                 label_matrix(records))
    return pipeline


def label_matrix(records: Sequence[Record]) -> Any:
    """An (n, len(TOPICS)) 0/1 matrix of the records' topics."""
    import numpy as np

    return np.array([[int(t in r["topics"]) for t in TOPICS] for r in records], dtype=int)


# --- training -------------------------------------------------------------------------

def train(records: Sequence[Record], reviews: Sequence[Record] = (), *, seed: int = 0,
          features: str = DEFAULT_FEATURES, cv_folds: int = CV_FOLDS,
          threshold: float = DEFAULT_THRESHOLD, now: datetime | None = None
          ) -> TrainResult:
    """Train on the corpus (plus reviews) minus the held-out part; measure; build the card."""
    records = [validate_record(r, f"record {i}") for i, r in enumerate(records)]
    held_ids = {r["id"] for r in records if is_held_out(r["id"])}
    labelled = apply_reviews(records, reviews)
    rest = [r for r in labelled if r["id"] not in held_ids]
    held = [r for r in labelled if r["id"] in held_ids]
    _check_trainable(rest)
    cv = cross_validate(rest, features=features, seed=seed, folds=cv_folds,
                        threshold=threshold)
    pipeline = fit_pipeline(rest, features, seed)
    held_report = score_pipeline(pipeline, held, threshold) if held else None
    card = _card(records, labelled, rest, held, len(reviews), features, seed, threshold,
                 now or datetime.now(timezone.utc))
    card.update(cv={"folds": cv_folds, **cv}, held_out=held_report)
    return TrainResult(pipeline, card, held)


def _check_trainable(records: Sequence[Record]) -> None:
    counts = Counter(t for r in records for t in r["topics"])
    flagged = sum(bool(r["topics"]) for r in records)
    if flagged == 0 or flagged == len(records):
        raise ClassifierError("cannot train: the corpus needs flagged and unflagged records")
    missing = [t for t in TOPICS if counts[t] < 2]
    if missing:
        raise ClassifierError(f"cannot train: fewer than 2 examples of {', '.join(missing)}")


def cross_validate(records: Sequence[Record], *, features: str = DEFAULT_FEATURES,
                   seed: int = 0, folds: int = CV_FOLDS,
                   threshold: float = DEFAULT_THRESHOLD) -> dict[str, Any]:
    """Out-of-fold predictions for every record, scored with ``evaluate``."""
    probabilities: list[dict[str, float] | None] = [None] * len(records)
    for train_idx, test_idx in _folds(records, folds, seed):
        model = _wrap(fit_pipeline([records[i] for i in train_idx], features, seed))
        fold = model.predict_proba([(records[i]["title"], records[i]["text"])
                                    for i in test_idx])
        for i, probs in zip(test_idx, fold):
            probabilities[i] = probs
    predicted = [_predicted(r, p, threshold) for r, p in zip(records, probabilities)]
    return {"metrics": evaluate(records, predicted)}


def _folds(records: Sequence[Record], folds: int, seed: int) -> list[tuple[Any, Any]]:
    """Stratified by topic set (rare combinations fall back to plain flagged/unflagged)."""
    from sklearn.model_selection import StratifiedKFold

    keys = ["+".join(sorted(r["topics"])) for r in records]
    counts = Counter(keys)
    keys = [k if counts[k] >= folds else str(bool(k)) for k in keys]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # tiny corpora: "least populated class" is expected
        warnings.simplefilter("ignore", UserWarning)
        return list(splitter.split(keys, keys))


def score_pipeline(pipeline: Any, records: Sequence[Record], threshold: float,
                   rules: KeywordRules | None = None) -> dict[str, Any]:
    """``evaluate`` report of a fitted pipeline (and optional keyword rules) on records."""
    classifier = _wrap(pipeline)
    verdicts = classify_articles([(r["title"], r["text"]) for r in records], classifier,
                                 rules or KeywordRules.empty(), threshold)
    predicted = [{"id": r["id"], "lang": r.get("lang"), "topics": list(v.topics)}
                 for r, v in zip(records, verdicts)]
    return evaluate(records, predicted)


def _wrap(pipeline: Any) -> SkopsClassifier:
    return SkopsClassifier(pipeline, {}, "training", TOPICS)


def _predicted(record: Record, probs: dict[str, float] | None,
               threshold: float) -> dict[str, Any]:
    topics = [t for t in TOPICS if probs and probs[t] >= threshold]
    return {"id": record["id"], "lang": record.get("lang"), "topics": topics}


# --- records, reviews, held-out ---------------------------------------------------------

def is_held_out(record_id: str) -> bool:
    """True for the fixed held-out part: sha256(id) in the lowest HELD_OUT_PERCENT."""
    digest = hashlib.sha256(str(record_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < HELD_OUT_PERCENT


def validate_record(record: Record, where: str) -> dict[str, Any]:
    """A copy of a labelled record after checking the fields training needs."""
    if not isinstance(record, Mapping):
        raise UsageError(f"{where}: expected a JSON object")
    for key in ("id", "title", "text"):
        if not isinstance(record.get(key), str):
            raise UsageError(f"{where}: field {key!r} must be a string")
    topics = record.get("topics")
    if not isinstance(topics, list) or any(t not in TOPICS for t in topics):
        raise UsageError(f"{where}: 'topics' must be a list drawn from {', '.join(TOPICS)}")
    return dict(record)


def apply_reviews(records: Sequence[Record], reviews: Sequence[Record]
                  ) -> list[dict[str, Any]]:
    """Records with analysts' verdicts applied: a review overrides the topics of the
    record with the same id (or url); other reviews are appended as new records."""
    out = [dict(r) for r in records]
    index = {key: i for i, r in enumerate(out) for key in _keys(r)}
    for n, review in enumerate(map(_review, count(), reviews)):
        match = next((index[k] for k in _keys(review) if k in index), None)
        if match is None:
            out.append(_review_record(review))
        else:
            out[match]["topics"] = list(review["topics"])
    return out


def _review(n: int, review: Record) -> dict[str, Any]:
    """A checked review, with an id if it had none and "" for a missing title or text."""
    filled = {"id": f"review:{n}", **review, "title": review.get("title") or "",
              "text": review.get("text") or ""}
    return validate_record(filled, f"review {n}")


def _keys(record: Record) -> list[str]:
    return [f"{k}:{record[k]}" for k in ("id", "url") if record.get(k)]


def _review_record(review: Record) -> dict[str, Any]:
    from monitor.language import detect_language

    lang = review.get("lang") or detect_language(review["title"], review["text"])
    return {**review, "lang": lang or "und"}


def corpus_sha256(records: Sequence[Record]) -> str:
    """sha256 of the corpus as canonical JSON lines, sorted by id."""
    digest = hashlib.sha256()
    for record in sorted(records, key=lambda r: str(r["id"])):
        line = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def model_version(now: datetime, labelled: Sequence[Record], features: str, seed: int) -> str:
    """``YYYYMMDD-<8 hex>``: the day, and a hash of what the model was trained from (corpus
    with review verdicts applied) and how (features, seed, text preparation, scoring), so
    two models that could differ never share a version."""
    recipe = json.dumps([corpus_sha256(labelled), features, seed, preparation_fingerprint(),
                         SCORING], ensure_ascii=False)
    return f"{now:%Y%m%d}-{hashlib.sha256(recipe.encode('utf-8')).hexdigest()[:8]}"


def _card(corpus: Sequence[Record], labelled: Sequence[Record], rest: Sequence[Record],
          held: Sequence[Record], n_reviews: int, features: str, seed: int,
          threshold: float, now: datetime) -> dict[str, Any]:
    import sklearn
    import skops

    sha = corpus_sha256(corpus)
    return {
        "version": model_version(now, labelled, features, seed),
        "created": now.isoformat(timespec="seconds"),
        "sklearn_version": sklearn.__version__,
        "skops_version": skops.__version__,
        "topics": list(TOPICS),
        "preparation": preparation_fingerprint(),
        "scoring": SCORING,
        "features": features,
        "description": FEATURES[features],
        "threshold": threshold,
        "seed": seed,
        "corpus_sha256": sha,
        "n_reviews": n_reviews,
        "held_out_rule": f"sha256(id) mod 100 < {HELD_OUT_PERCENT}",
        "sizes": _sizes(corpus, labelled, rest, held),
    }


def _sizes(corpus: Sequence[Record], labelled: Sequence[Record], rest: Sequence[Record],
           held: Sequence[Record]) -> dict[str, Any]:
    return {
        "corpus": len(corpus),
        "train": len(rest),
        "held_out": len(held),
        "added_by_reviews": len(labelled) - len(corpus),
        "languages": dict(sorted(Counter(str(r.get("lang")) for r in labelled).items())),
        "topics": {t: sum(t in r["topics"] for r in labelled) for t in TOPICS},
        "flagged": sum(bool(r["topics"]) for r in labelled),
    }


# --- replacing the current model ----------------------------------------------------------

def should_replace(old_card: Mapping[str, Any] | None, new_card: Mapping[str, Any],
                   force: bool) -> tuple[bool, str]:
    """Whether a new model may replace the current one: not when its held-out flagged F1
    is more than one point below the current model's, unless forced."""
    old_f1, new_f1 = _held_out_f1(old_card), _held_out_f1(new_card)
    if old_card is None or old_f1 is None:
        return True, "no current model with held-out metrics to compare against"
    if new_f1 is None:
        return force, ("forced: " if force else "") + "the new model has no held-out metrics"
    summary = f"held-out flagged F1 {old_f1:.3f} -> {new_f1:.3f}"
    if new_f1 < old_f1 - MAX_F1_DROP - 1e-12:
        if force:
            return True, f"forced: {summary} (drop of more than one point)"
        return False, f"refused: {summary} drops by more than one point; use --force"
    return True, summary


def _held_out_f1(card: Mapping[str, Any] | None) -> float | None:
    held = (card or {}).get("held_out") or {}
    return (held.get("flagged") or {}).get("f1")


# --- files --------------------------------------------------------------------------------

def load_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON Lines file; a malformed line is a UsageError naming file:line."""
    path = Path(path)
    records = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if line.strip():
                records.append(_parse_line(line, f"{path}:{number}"))
    return records


def _parse_line(line: str, where: str) -> dict[str, Any]:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise UsageError(f"{where}: not valid JSON: {exc}") from exc
    return validate_record(record, where)


def load_corpus(corpus_dir: str | Path) -> list[dict[str, Any]]:
    """Every record of every ``*.jsonl`` file in the corpus folder (sorted by file name)."""
    files = sorted(Path(corpus_dir).glob("*.jsonl"))
    if not files:
        raise UsageError(f"{corpus_dir}: no *.jsonl corpus files")
    records = [r for f in files for r in load_jsonl(f)]
    duplicates = [i for i, n in Counter(r["id"] for r in records).items() if n > 1]
    if duplicates:
        raise UsageError(f"{corpus_dir}: duplicate record id {duplicates[0]!r}")
    return records


def dev_metrics(pipeline: Any, threshold: float, dev: Sequence[Record],
                rules: KeywordRules | None, name: str) -> dict[str, Any]:
    """Scores on a dev file: model alone, and with / without keyword rules when given."""
    out: dict[str, Any] = {"file": name, "items": len(dev),
                           "model": score_pipeline(pipeline, dev, threshold)}
    if rules is not None and len(rules):
        out["model+keywords"] = score_pipeline(pipeline, dev, threshold, rules)
        out["keywords_only"] = keyword_report(dev, rules)
    return out


def keyword_report(records: Sequence[Record], rules: KeywordRules) -> dict[str, Any]:
    """The keyword-only baseline: ``evaluate`` report of the rules alone, no model."""
    verdicts = classify_articles([(r["title"], r["text"]) for r in records], None, rules,
                                 DEFAULT_THRESHOLD)
    predicted = [{"id": r["id"], "lang": r.get("lang"), "topics": list(v.topics)}
                 for r, v in zip(records, verdicts)]
    return evaluate(records, predicted)


def train_from_paths(corpus_dir: str | Path, reviews: Sequence[Record] | str | Path | None,
                     out_path: str | Path, dev_path: str | Path | None = None,
                     force: bool = False, *, rules: KeywordRules | None = None,
                     seed: int = 0, features: str = DEFAULT_FEATURES,
                     now: datetime | None = None) -> TrainOutcome:
    """Everything ``monitor train`` does: load, train, measure (dev too), compare, save."""
    out_path = Path(out_path)
    review_records = _load_reviews(reviews)
    result = train(load_corpus(corpus_dir), review_records, seed=seed, features=features,
                   now=now)
    if dev_path is not None:
        dev = load_jsonl(dev_path)
        result.card["dev"] = dev_metrics(result.pipeline, result.card["threshold"], dev,
                                         rules, Path(dev_path).name)
    current = _current_card(out_path)
    if current is not None and result.held_out:
        current = _rescored(current, out_path, result.held_out, result.card["threshold"])
    replace, reason = should_replace(current, result.card, force)
    if replace:
        save_model(result.pipeline, out_path, result.card)
    return TrainOutcome(result.card, replace, reason, out_path)


def _rescored(card: dict[str, Any], model_path: Path, held: Sequence[Record],
              threshold: float) -> dict[str, Any]:
    """The current model's card with its held-out metrics measured again on today's
    held-out records, so that both models are compared on the same items when the corpus
    has grown. A current model that no longer loads keeps the metrics of its card."""
    try:
        current = SkopsClassifier.load(model_path)
    except ClassifierError:
        return card
    return dict(card, held_out=score_pipeline(current.pipeline, held, threshold))


def _load_reviews(reviews: Sequence[Record] | str | Path | None) -> list[Record]:
    if reviews is None:
        return []
    if isinstance(reviews, (str, Path)):
        return load_jsonl(reviews)
    return list(reviews)


def _current_card(model_path: Path) -> dict[str, Any] | None:
    path = card_path(model_path)
    if not (model_path.exists() and path.exists()):
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
