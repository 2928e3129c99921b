"""Training the topic classifier from real news, the written corpus and analysts' reviews.

    our labels of real items (models/labels) ⋈ the pool's text ─┐
    written corpus (models/corpus) ──────────────────────────────┼─▶ reviews applied
                                                                 │
        ──▶ held-out split (stable hash of each record's group) ──▶ grouped K-fold CV over
        the real items of the rest, per candidate (``CANDIDATES``) ──▶ thresholds chosen on
        the out-of-fold probabilities, best candidate ──▶ final fit on the rest
        ──▶ held-out metrics ──▶ model card ──▶ should_replace(old card, new card) ──▶ save

Groups: a written record and a review are their own group; a real item's group joins the
copies of one story and the items of one source and day (``monitor.labels.story_groups``),
so that no story straddles the held-out line or two folds. The held-out part is every
record whose group's ``sha256`` falls in the lowest ``HELD_OUT_PERCENT`` of the hash space:
fixed across runs, so the flagged F1 of two models on it can be compared, and never trained
on. The written corpus trains in every fold and is never tested: the cross-validation
measures real news. Thresholds maximise the flagged F1 of model and keywords together, per
topic, and per language where one has enough real items (``choose_thresholds``). Without
``MIN_REAL_ITEMS`` real items the written corpus is cross-validated with the default
candidate and threshold. Reviews override the labels of the record with the same id, or
with the same link and title (``apply_reviews``); reviews of other articles are added as
real items. A dev file is only ever scored, never trained on, and chooses nothing.

scikit-learn is imported lazily (this module and ``monitor.classify`` own it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import tempfile
import warnings
from collections import Counter
from itertools import count
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from monitor import TOPICS
from monitor.classify import (
    CARD_SUFFIX, LINEAR_SUFFIX, SCORING, SkopsClassifier, card_path, classify_articles,
    is_model_archive, linear_path, preparation_fingerprint, save_model, sidecar_kind,
    sidecar_model, sidecar_owner)
from monitor.decide import DEFAULT_THRESHOLD, Thresholds
from monitor.evaluate import evaluate
from monitor.exceptions import ClassifierError, UsageError
from monitor.keywords import KeywordRules

log = logging.getLogger("monitor.train")

HELD_OUT_PERCENT = 15
CV_FOLDS = 5
MIN_REAL_ITEMS = 100         # real labelled items before CV chooses on them
MAX_F1_DROP = 0.01          # one point of held-out flagged F1
# By grouped 5-fold CV over the real labelled items (`bench/choose.py --features ...`):
# word+char4 flagged F1 0.852 (model alone 0.850), word1+char4 0.847 (0.840), word+char
# 0.836 (0.847, with the keywords of the time); word+char4 classifies 3,500/s (bench/classify.py).
DEFAULT_FEATURES = "word+char4"
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
    held_out_groups: list[str] = field(default_factory=list)       # their story groups


@dataclass(frozen=True)
class TrainOutcome:
    """What ``train_from_paths`` did."""

    card: dict[str, Any]
    replaced: bool
    reason: str
    path: Path
    compared_with: str = ""     # which model the new one was measured against, in words


# --- the pipeline ---------------------------------------------------------------------

SCALINGS = ("none", "nb", "nb+none")


@dataclass(frozen=True)
class Candidate:
    """What cross-validation chooses besides the thresholds: the regularisation of the
    logistic regressions, their class weights, how much a real item counts against a
    written one (its rows are repeated ``real_weight`` times), and whether each topic's
    regression sees its features scaled by their naive-Bayes log-count ratio
    (``scaling="nb"``, see ``_nb_scaled``), as they are (``"none"``), or is the mean of
    those two (``"nb+none"``, see ``_average_with``)."""

    C: float = 30.0
    class_weight: str | None = "balanced"
    real_weight: int = 1
    scaling: str = "nb+none"

    def __post_init__(self) -> None:
        if self.scaling not in SCALINGS:
            raise ValueError(f"unknown scaling {self.scaling!r} ({', '.join(SCALINGS)})")

    @property
    def name(self) -> str:
        return (f"C={self.C:g} class_weight={self.class_weight} real_weight={self.real_weight}"
                f" scaling={self.scaling}")


DEFAULT_CANDIDATE = Candidate()
# The grid cross-validation chooses from. C=10 was dropped after CV over 9,589 real items
# (11,400 labelled): every C=10 candidate 0.2-0.4 points below its C=30 twin, and a grid
# half the size keeps `monitor train` well under 5 minutes.
# Every candidate is the mean of the naive-Bayes-scaled and the plain regressions
# (``scaling="nb+none"``). By the same CV over 11,182 real items (balanced weights, real
# items three times), three fold seeds: plain 0.8638 / 0.8652 / 0.8579, scaled 0.8678 /
# 0.8706 / 0.8698, their mean 0.8729 / 0.8749 / 0.8730 (no class weights, real items once:
# scaled 0.8681, mean 0.8744, seed 0). Each candidate fits both, which took training with
# four candidates to 283 s; real items counted three times scored 0.2 points under once with
# either weighting (0.8729 / 0.8728 against 0.8747 / 0.8744), and twice was never the best
# since the scaling (0.8666 and 0.8646 scaled), so the grid keeps them once. C = 10 and 100
# averaged (balanced, real items once): 0.8733 and 0.8738 against C = 30's 0.8747.
CANDIDATES = tuple(Candidate(30.0, w, 1) for w in ("balanced", None))
# Switching candidates needs a clear win. Over 10,938 real items the best two or three of
# the six stayed within 0.0003 of each other, and on 2026-12-06 the winner changed five times
# with label corrections and written rounds that moved the total by less than 0.002: a coin
# toss that reshuffled which articles analysts saw. So the current model's candidate is kept
# unless another one's cross-validated flagged F1 is higher by more than this.
KEEP_MARGIN = 0.002


def candidate_of(card: dict[str, Any] | None) -> Candidate | None:
    """The candidate a model card records (None when there is none or it is unreadable)."""
    try:
        found = (card or {})["candidate"]
        return Candidate(float(found["C"]), found["class_weight"], int(found["real_weight"]),
                         str(found.get("scaling", "none")))     # cards before scaling: none
    except (KeyError, TypeError, ValueError):
        return None


def pick_candidate(tried: Sequence[tuple[float, Candidate]], keep: Candidate | None = None,
                   margin: float | None = None) -> tuple[int, str]:
    """Which of the ``(flagged F1, candidate)`` pairs to ship, and why: the best (ties go to
    the earlier one), unless ``keep`` (the current model's candidate) is among them and the
    best beats it by no more than ``margin`` (default ``KEEP_MARGIN``)."""
    margin = KEEP_MARGIN if margin is None else margin
    best = max(range(len(tried)), key=lambda i: (round(tried[i][0], 4), -i))
    kept = [i for i, (_, c) in enumerate(tried) if c == keep]
    if kept and kept[0] != best and round(tried[best][0] - tried[kept[0]][0], 6) <= margin:
        return kept[0], (f"kept the current model's candidate: the best, {tried[best][1].name} "
                         f"({tried[best][0]:.4f}), is not more than {margin} above it")
    return best, "the best cross-validated flagged F1"


def _classifier(candidate: Candidate, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier

    return OneVsRestClassifier(LogisticRegression(
        C=candidate.C, class_weight=candidate.class_weight, max_iter=2000,
        solver="liblinear", random_state=seed))


def _features(features: str) -> Any:
    """The features of ``model_input``'s two columns: words from column 0 (title repeated,
    concept tokens), character n-grams from column 1 (title once, no concept tokens)."""
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.feature_extraction.text import TfidfVectorizer

    if features not in FEATURES:
        raise ValueError(f"unknown features {features!r} (one of {', '.join(FEATURES)})")
    words = TfidfVectorizer(token_pattern=r"\w+", ngram_range=(1, 2), min_df=2,
                            max_df=0.5, sublinear_tf=True, lowercase=False, dtype=np.float32)
    if features == "word":
        return ColumnTransformer([("words", words, 0)])
    if features == "word1+char4":
        words.set_params(ngram_range=(1, 1))
    analyzer, sizes = {"word+char4": ("char_wb", (4, 4)), "word1+char4": ("char_wb", (4, 4)),
                       "word+char": ("char_wb", (2, 5))}[features]
    chars = TfidfVectorizer(analyzer=analyzer, ngram_range=sizes, min_df=2,
                            sublinear_tf=True, lowercase=False, dtype=np.float32)
    return ColumnTransformer([("words", words, 0), ("chars", chars, 1)])


def fit_pipeline(records: Sequence[Record], features: str = DEFAULT_FEATURES,
                 seed: int = 0, candidate: Candidate = DEFAULT_CANDIDATE) -> Any:
    """Fit a fresh pipeline on labelled records (real ones weighted by the candidate)."""
    fitted = _Fitted(records, features)
    return fitted.pipeline(candidate, seed)


class _Fitted:
    """The features fitted once on some records, for fitting several classifiers on them."""

    def __init__(self, records: Sequence[Record], features: str) -> None:
        from monitor.classify import model_input

        self.records = records
        self.features = _features(features)
        self.matrix = self.features.fit_transform(
            model_input([(r["title"], r["text"]) for r in records]))
        self.labels = label_matrix(records)

    def pipeline(self, candidate: Candidate, seed: int) -> Any:
        import numpy as np
        from sklearn.pipeline import Pipeline

        rows = np.array([i for i, r in enumerate(self.records)
                         for _ in range(candidate.real_weight if r.get("real") else 1)])
        matrix, labels = self.matrix[rows], self.labels[rows]
        # a topic that every row has or none has leaves nothing to scale: one-vs-rest's own
        # fit then (a constant for that topic)
        constant = any(labels[:, t].min() == labels[:, t].max() for t in range(labels.shape[1]))
        classifier = _classifier(candidate, seed)
        if candidate.scaling == "none" or constant:
            classifier.fit(matrix, labels)
        else:
            classifier = _nb_scaled(classifier, matrix, labels)
            if candidate.scaling == "nb+none":
                _average_with(classifier, _classifier(candidate, seed).fit(matrix, labels))
        return Pipeline([("features", self.features), ("clf", classifier)])


def _average_with(scaled: Any, plain: Any) -> None:
    """Make each of ``scaled``'s regressions the mean of itself and ``plain``'s of the same
    topic (coefficients and intercept): its log-odds are the mean of the two models'
    log-odds, still one linear model."""
    for mine, other in zip(scaled.estimators_, plain.estimators_):
        mine.coef_ = (mine.coef_ + other.coef_) / 2
        mine.intercept_ = (mine.intercept_ + other.intercept_) / 2


NB_ALPHA = 1.0      # added to every feature's document count in each class (CV: 0.25 and 4
                    # scored 0.2 and 0.15 points below 1)


def _nb_scaled(classifier: Any, matrix: Any, labels: Any) -> Any:
    """The one-vs-rest regressions fitted with each topic's features scaled by their
    naive-Bayes log-count ratio, the scale then folded into the coefficients.

    Per topic, a feature's ratio is log((a + p) / |a + p|₁ ÷ (a + q) / |a + q|₁): p and q
    count the rows with and without the topic that have the feature, a is ``NB_ALPHA``. The
    regression is fitted on the features times their ratios, so a feature that is common in
    the topic's rows and rare elsewhere starts out weighty and one that is as common either
    way is damped (Wang & Manning's NB-SVM, with the logistic loss). Since
    w · (r ∘ x) = (w ∘ r) · x, the fitted coefficients times the ratios give the same
    decisions on the unscaled features: the pipeline, the skops file and the exported
    arrays (``monitor.linear``) are those of a plain one-vs-rest logistic regression.
    Every topic must have rows with it and rows without it."""
    import numpy as np
    import scipy.sparse as sp
    from sklearn.base import clone

    columns = [labels[:, t] for t in range(labels.shape[1])]
    present = sp.csr_matrix(matrix, copy=True)
    present.data[:] = 1.0
    estimators = []
    for column in columns:
        having = np.asarray(present[column == 1].sum(axis=0)).ravel() + NB_ALPHA
        lacking = np.asarray(present[column == 0].sum(axis=0)).ravel() + NB_ALPHA
        ratio = np.log(having / having.sum()) - np.log(lacking / lacking.sum())
        estimator = clone(classifier.estimator).fit(
            matrix @ sp.diags(ratio.astype(matrix.dtype)), column)
        estimator.coef_ = estimator.coef_ * ratio
        estimators.append(estimator)
    # the one-vs-rest wrapper's own fitted state (its label binarizer, feature count) from
    # two empty rows with every topic on and off; then the regressions fitted above
    classifier.fit(sp.csr_matrix((2, matrix.shape[1]), dtype=matrix.dtype),
                   np.array([[1] * len(columns), [0] * len(columns)]))
    classifier.estimators_ = estimators
    return classifier


def label_matrix(records: Sequence[Record]) -> Any:
    """An (n, len(TOPICS)) 0/1 matrix of the records' topics."""
    import numpy as np

    return np.array([[int(t in r["topics"]) for t in TOPICS] for r in records], dtype=int)


# --- training -------------------------------------------------------------------------

def train(records: Sequence[Record], reviews: Sequence[Record] = (), *,
          real: Sequence[Record] = (), rules: KeywordRules | None = None, seed: int = 0,
          features: str = DEFAULT_FEATURES, cv_folds: int = CV_FOLDS,
          candidates: Sequence[Candidate] | None = None, now: datetime | None = None,
          keep: Candidate | None = None) -> TrainResult:
    """Train on the written corpus, the real labelled items and the reviews, minus the
    held-out part; choose the candidate and the thresholds by cross-validation over the
    real items (grouped by story and source-day); measure; build the card.

    Without at least ``MIN_REAL_ITEMS`` real items the cross-validation runs over the
    written corpus with the default candidate and the default threshold, as before real
    labels existed. ``rules`` (the config's keywords) take part in choosing thresholds:
    what is maximised is the flagged F1 of the product, model and keywords together."""
    written = [validate_record(r, f"record {i}") for i, r in enumerate(records)]
    real_records = [dict(validate_record(r, f"real record {i}"), real=True)
                    for i, r in enumerate(real)]
    labelled, targets, superseded = _apply_reviews(written + real_records, reviews)
    groups = _groups(labelled)
    held_groups = {g for r, g in zip(labelled, groups) if is_held_out(g)}
    in_force = [t for t, later in zip(targets, superseded) if not later]
    reviews_held = sum(groups[t] in held_groups for t in in_force)
    rest = [r for r, g in zip(labelled, groups) if g not in held_groups]
    rest_groups = [g for g in groups if g not in held_groups]
    held = [r for r, g in zip(labelled, groups) if g in held_groups]
    held_group_names = [g for g in groups if g in held_groups]
    _check_trainable(rest)
    log.info("training on %d items (%d real), %d held out for the comparison", len(rest),
             sum(bool(r.get("real")) for r in rest), len(held))
    selection = select(rest, rest_groups, features=features, seed=seed, folds=cv_folds,
                       rules=rules, candidates=candidates, keep=keep)
    log.info("fitting the model (%s) on all %d items", selection.candidate.name, len(rest))
    pipeline = fit_pipeline(rest, features, seed, selection.candidate)
    held_report = (score_pipeline(pipeline, held, selection.thresholds) if held else None)
    added = len(labelled) - len(written) - len(real_records)  # reviews of unlabelled articles
    review_counts = {"given": len(targets), "trained_on": len(in_force) - reviews_held,
                     "held_out": reviews_held, "superseded": len(targets) - len(in_force)}
    card = _card(written, labelled, rest, held, review_counts, added, features, seed, selection,
                 now or datetime.now(timezone.utc))
    card.update(cv={"folds": cv_folds, **selection.report}, held_out=held_report)
    return TrainResult(pipeline, card, held, held_group_names)


def _groups(records: Sequence[Record]) -> list[str]:
    """The held-out and fold unit of each record: its id for written records and reviews,
    its story group (``monitor.labels.story_groups``) for real items."""
    from monitor.labels import story_groups

    real = [i for i, r in enumerate(records) if r.get("real")]
    groups = [str(r["id"]) for r in records]
    for i, group in zip(real, story_groups([records[i] for i in real])):
        groups[i] = group
    return groups


def _check_trainable(records: Sequence[Record]) -> None:
    counts = Counter(t for r in records for t in r["topics"])
    flagged = sum(bool(r["topics"]) for r in records)
    if flagged == 0 or flagged == len(records):
        raise ClassifierError("cannot train: the corpus needs flagged and unflagged records")
    missing = [t for t in TOPICS if counts[t] < 2]
    if missing:
        raise ClassifierError(f"cannot train: fewer than 2 examples of {', '.join(missing)}")


# --- choosing by cross-validation -------------------------------------------------------------

@dataclass(frozen=True)
class Selection:
    """What cross-validation chose, and the report for the card."""

    candidate: Candidate
    thresholds: Thresholds
    report: dict[str, Any]


def select(records: Sequence[Record], groups: Sequence[str], *,
           features: str = DEFAULT_FEATURES, seed: int = 0, folds: int = CV_FOLDS,
           rules: KeywordRules | None = None,
           candidates: Sequence[Candidate] | None = None,
           keep: Candidate | None = None) -> Selection:
    """Out-of-fold probabilities of each candidate for the real records (the written corpus
    always trains, never tests), thresholds chosen on them, the best candidate by the
    product's flagged F1 — or ``keep``, the current model's, when the best is not clearly
    better (``pick_candidate``). Without enough real records: the written corpus is
    cross-validated with the default candidate and threshold."""
    real = [i for i, r in enumerate(records) if r.get("real")]
    if len(real) < MIN_REAL_ITEMS:
        probs = out_of_fold(records, range(len(records)), groups, features=features,
                            seed=seed, folds=folds, candidates=[DEFAULT_CANDIDATE])
        thresholds = Thresholds()
        metrics = _scored(records, probs[DEFAULT_CANDIDATE], thresholds, None)
        why = ("no real labelled items" if not real else
               f"with {len(real)} real item{'s' * (len(real) != 1)}, fewer than the {MIN_REAL_ITEMS} it takes to "
               "choose settings and thresholds on them: the defaults")
        return Selection(DEFAULT_CANDIDATE, thresholds, {
            "on": f"written corpus ({why})", "metrics": metrics})
    tested = [records[i] for i in real]
    pool = list(candidates or CANDIDATES)
    probs = out_of_fold(records, real, groups, features=features, seed=seed, folds=folds,
                        candidates=pool)
    matches = [(rules or KeywordRules.empty()).match(r["title"], r["text"]) for r in tested]
    tried = []
    for candidate in pool:
        thresholds = choose_thresholds(tested, probs[candidate], matches)
        f1 = flagged_f1(tested, probs[candidate], matches, thresholds)
        tried.append((f1, candidate, thresholds))
    chosen, why = pick_candidate([(f, c) for f, c, _ in tried], keep)
    _, best, thresholds = tried[chosen]
    return Selection(best, thresholds, {
        "on": f"{len(tested)} real items in {len(set(groups[i] for i in real))} story and "
              "source-day groups (the written corpus trains in every fold, never tests)",
        "candidates": [{"candidate": c.name, "flagged_f1": round(f, 4),
                        "thresholds": t.to_card()} for f, c, t in tried],
        "chosen": best.name,
        "why": why,
        "metrics": _scored(tested, probs[best], thresholds, rules),
        "model_alone": _scored(tested, probs[best], thresholds, None)})


def out_of_fold(records: Sequence[Record], tested: Sequence[int], groups: Sequence[str], *,
                features: str, seed: int, folds: int, candidates: Sequence[Candidate]
                ) -> dict[Candidate, list[dict[str, float]]]:
    """Per candidate, the probabilities of each tested record from a model that never saw
    its group; records not tested train in every fold."""
    tested = list(tested)
    others = sorted(set(range(len(records))) - set(tested))
    out: dict[Candidate, list[dict[str, float]]] = {c: [{}] * len(tested) for c in candidates}
    splits = _folds([records[i] for i in tested], [groups[i] for i in tested], folds, seed)
    for n, (train_idx, test_idx) in enumerate(splits, 1):
        # the long part of `monitor train` (minutes over the whole pool): say where it is
        log.info("cross-validation: fold %d of %d (%d setting%s)", n, len(splits), len(candidates),
                 "s" * (len(candidates) != 1))
        fitted = _Fitted([records[i] for i in others] + [records[tested[j]] for j in train_idx],
                         features)
        docs = [(records[tested[j]]["title"], records[tested[j]]["text"]) for j in test_idx]
        for candidate in candidates:
            fold = _wrap(fitted.pipeline(candidate, seed)).predict_proba(docs)
            for j, probs in zip(test_idx, fold):
                out[candidate][j] = probs
    return out


def _folds(records: Sequence[Record], groups: Sequence[str], folds: int,
           seed: int) -> list[tuple[Any, Any]]:
    """Folds that never split a group, stratified by flagged/unflagged."""
    from sklearn.model_selection import StratifiedGroupKFold

    keys = [int(bool(r["topics"])) for r in records]
    folds = min(folds, len(set(groups)))
    if folds < 2:
        raise ClassifierError("cannot cross-validate: the records form fewer than 2 groups")
    splitter = StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    with warnings.catch_warnings():  # tiny corpora: "least populated class" is expected
        warnings.simplefilter("ignore", UserWarning)
        return list(splitter.split(keys, keys, groups))


def _scored(records: Sequence[Record], probs: Sequence[Mapping[str, float]],
            thresholds: Thresholds, rules: KeywordRules | None) -> dict[str, Any]:
    from monitor.decide import decide

    rules = rules or KeywordRules.empty()
    predicted = [{"id": r["id"], "lang": r.get("lang"),
                  "topics": list(decide(p, rules.match(r["title"], r["text"]),
                                        thresholds.for_language(r.get("lang")), None).topics)}
                 for r, p in zip(records, probs)]
    return evaluate(records, predicted)


# --- thresholds -------------------------------------------------------------------------------

THRESHOLD_GRID = tuple(round(0.15 + 0.025 * i, 3) for i in range(29))    # 0.15 … 0.85
LANGUAGE_MIN_ITEMS = 200       # real items of one language before it gets its own thresholds
# and flagged ones among them. Nested cross-validation (thresholds chosen on four fifths of
# the story groups' out-of-fold probabilities, scored on the fifth; 4 fold seeds x 3
# partitions, 11,214 real items) with 40 here: German (108 flagged) and Polish (57) got
# their own; German scored 0.760 with them on average against 0.775 on the overall ones
# (lower in 11 of the 12 runs), Polish 0.845 against 0.844 (5 lower, 6 higher, 1 equal),
# all real items 0.8698 against 0.8711 (lower in 11 of 12). A language's own thresholds
# fitted to a hundred flagged items follow their noise. English (485) and Chinese (872)
# stay eligible and take their own where those gain enough.
LANGUAGE_MIN_FLAGGED = 200
LANGUAGE_MIN_GAIN = 0.005      # and only where they beat the overall ones by this much


def choose_thresholds(records: Sequence[Record], probs: Sequence[Mapping[str, float]],
                      matches: Sequence[Any]) -> Thresholds:
    """Per-topic thresholds that maximise flagged F1 (then the mean topic F1) over the
    records, by coordinate ascent over ``THRESHOLD_GRID``; languages with enough items get
    their own where that gains at least ``LANGUAGE_MIN_GAIN`` flagged F1 on them."""
    default = _ascend(records, probs, matches, dict.fromkeys(TOPICS, DEFAULT_THRESHOLD))
    languages = {}
    for lang, members in sorted(_by_language(records).items()):
        subset = [records[i] for i in members]
        if (len(subset) < LANGUAGE_MIN_ITEMS
                or sum(bool(r["topics"]) for r in subset) < LANGUAGE_MIN_FLAGGED):
            continue
        sub_probs, sub_matches = [probs[i] for i in members], [matches[i] for i in members]
        own = _ascend(subset, sub_probs, sub_matches, dict(default))
        gain = (_objective(subset, sub_probs, sub_matches, own)[0]
                - _objective(subset, sub_probs, sub_matches, default)[0])
        if gain >= LANGUAGE_MIN_GAIN:
            languages[lang] = own
    return Thresholds(default, languages)


def _by_language(records: Sequence[Record]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, r in enumerate(records):
        out.setdefault(str(r.get("lang")), []).append(i)
    return out


THRESHOLD_SMOOTHING = 0.025   # a threshold is judged by its neighbours on the grid too


def _ascend(records: Sequence[Record], probs: Sequence[Mapping[str, float]],
            matches: Sequence[Any], start: dict[str, float]) -> dict[str, float]:
    """Coordinate ascent over ``THRESHOLD_GRID``, each topic's threshold judged by the mean
    objective of the grid points within ``THRESHOLD_SMOOTHING`` of it (``_smoothed``)."""
    current = dict(start)
    seen: dict[tuple[float, ...], tuple[float, float]] = {}

    def objective(limits: dict[str, float]) -> tuple[float, float]:
        key = tuple(limits[t] for t in TOPICS)
        if key not in seen:
            seen[key] = _objective(records, probs, matches, limits)
        return seen[key]

    for _ in range(3):
        before = dict(current)
        for topic in TOPICS:
            current[topic] = max(THRESHOLD_GRID, key=lambda t: (
                _smoothed(objective, current, topic, t), -abs(t - DEFAULT_THRESHOLD)))
        if current == before:
            break
    return current


def _smoothed(objective: Callable[[dict[str, float]], tuple[float, float]],
              limits: dict[str, float], topic: str,
              threshold: float) -> tuple[float, float]:
    """The mean objective at ``threshold`` and its grid neighbours within
    ``THRESHOLD_SMOOTHING`` (fewer at the grid's ends), other topics at ``limits``.

    The flagged F1 of a few hundred flagged items moves by a few tenths between grid steps
    by chance; the plain maximum picks such a spike, the mean the middle of a good stretch.
    Checked by nested cross-validation over our real items (thresholds chosen on four
    fifths of the out-of-fold probabilities, scored on the fifth): ``bench/choose.py
    --nested`` (figures in the README)."""
    near = [t for t in THRESHOLD_GRID if abs(t - threshold) <= THRESHOLD_SMOOTHING + 1e-9]
    values = [objective({**limits, topic: t}) for t in near]
    return (sum(v[0] for v in values) / len(values), sum(v[1] for v in values) / len(values))


def _objective(records: Sequence[Record], probs: Sequence[Mapping[str, float]],
               matches: Sequence[Any], limits: Mapping[str, float]) -> tuple[float, float]:
    """(flagged F1, mean per-topic F1) of model topics at ``limits`` ∪ keyword topics."""
    counts = {key: [0, 0, 0] for key in ("flagged", *TOPICS)}     # tp, fp, fn
    for record, p, match in zip(records, probs, matches):
        gold = set(record["topics"])
        found = set() if match.muted else (
            {t for t in TOPICS if p.get(t, 0.0) >= limits[t]} | set(match.topics))
        for key, truth, guess in (("flagged", bool(gold), bool(found)),
                                  *((t, t in gold, t in found) for t in TOPICS)):
            counts[key][0] += truth and guess
            counts[key][1] += guess and not truth
            counts[key][2] += truth and not guess
    f1 = {key: _f1(*c) for key, c in counts.items()}
    return round(f1["flagged"], 6), sum(f1[t] for t in TOPICS) / len(TOPICS)


def _f1(tp: int, fp: int, fn: int) -> float:
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def flagged_f1(records: Sequence[Record], probs: Sequence[Mapping[str, float]],
               matches: Sequence[Any], thresholds: Thresholds) -> float:
    """Flagged F1 of the product (model at the language's thresholds ∪ keywords)."""
    by_lang = _by_language(records)
    counts = [0, 0, 0]
    for lang, members in by_lang.items():
        limits = thresholds.for_language(lang)
        for i in members:
            gold = bool(records[i]["topics"])
            found = not matches[i].muted and (
                any(probs[i].get(t, 0.0) >= limits[t] for t in TOPICS)
                or bool(matches[i].topics))
            counts[0] += gold and found
            counts[1] += found and not gold
            counts[2] += gold and not found
    return _f1(*counts)


def score_pipeline(pipeline: Any, records: Sequence[Record],
                   thresholds: float | Thresholds = DEFAULT_THRESHOLD,
                   rules: KeywordRules | None = None) -> dict[str, Any]:
    """``evaluate`` report of a fitted pipeline (and optional keyword rules) on records,
    each at the thresholds of its language."""
    classifier = _wrap(pipeline)
    verdicts = classify_articles([(r["title"], r["text"]) for r in records], classifier,
                                 rules or KeywordRules.empty(), thresholds,
                                 [r.get("lang") for r in records])
    predicted = [{"id": r["id"], "lang": r.get("lang"), "topics": list(v.topics)}
                 for r, v in zip(records, verdicts)]
    return evaluate(records, predicted)


def _wrap(pipeline: Any) -> SkopsClassifier:
    return SkopsClassifier(pipeline, {}, "training", TOPICS)


# --- records, reviews, held-out ---------------------------------------------------------

def is_held_out(record_id: str) -> bool:
    """True for the fixed held-out part: sha256(id) in the lowest HELD_OUT_PERCENT."""
    digest = hashlib.sha256(str(record_id).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % 100 < HELD_OUT_PERCENT


def validate_record(record: Record, where: str) -> dict[str, Any]:
    """A copy of a labelled record after checking the fields training needs: a string id,
    string (or null, read as empty, as `monitor evaluate` reads them) title and text."""
    if not isinstance(record, Mapping):
        raise UsageError(f"{where}: expected a JSON object")
    if not isinstance(record.get("id"), str):
        raise UsageError(f"{where}: field 'id' must be a string")
    checked = dict(record)
    for key in ("title", "text"):
        if checked.get(key) is None:
            checked[key] = ""
        elif not isinstance(checked[key], str):
            raise UsageError(f"{where}: field {key!r} must be a string (or null)")
    topics = record.get("topics")
    if not isinstance(topics, list) or any(t not in TOPICS for t in topics):
        raise UsageError(f"{where}: 'topics' must be a list drawn from {', '.join(TOPICS)}")
    return checked


def apply_reviews(records: Sequence[Record], reviews: Sequence[Record]
                  ) -> list[dict[str, Any]]:
    """Records with analysts' verdicts applied: a review overrides the topics of the record
    with the same id, or else of the records with the same link and title (``_matched``: the
    url compared canonicalised as the store keeps an article's link, the title as the store
    keeps a title; a review from the store carries its article's url and title, a real item
    its pool url and title). One link often carries several stories (an evening bulletin's
    page), so a record whose title differs is never overridden, and the link alone decides
    only when one record has it and a title is missing. Other reviews are appended as new
    records."""
    return _apply_reviews(records, reviews)[0]


def _apply_reviews(records: Sequence[Record], reviews: Sequence[Record]
                   ) -> tuple[list[dict[str, Any]], list[int], list[bool]]:
    """``apply_reviews``, for each review the position of the record it decided (the first
    one it overrode, or its own appended record): whether that record is held out says
    whether the review was trained on; and whether a later review decided that record
    again (reviews come oldest first: the verdicts on two copies of one story, the
    newest wins, and the copy reviewed second is not trained on a second time)."""
    out = [dict(r) for r in records]
    targets: list[int] = []
    decided: dict[int, int] = {}            # record position -> the last review deciding it
    by_id: dict[str, list[int]] = {}
    by_url: dict[str, list[int]] = {}

    def index(i: int, r: Mapping[str, Any]) -> None:
        if r["id"]:
            by_id.setdefault(str(r["id"]), []).append(i)
        url = _url_key(r)
        if url is not None:
            by_url.setdefault(url, []).append(i)

    for i, r in enumerate(out):
        index(i, r)
    for k, review in enumerate(map(_review, count(), reviews)):
        match = _matched(review, out, by_id, by_url)
        if not match:
            out.append(_review_record(review))
            match = [len(out) - 1]
            index(match[0], out[-1])        # a later review of a copy decides this record
        else:
            for i in match:
                out[i]["topics"] = list(review["topics"])
        decided.update((i, k) for i in match)
        targets.append(match[0])
    superseded = [decided[t] != k for k, t in enumerate(targets)]
    return out, targets, superseded


def _matched(review: Record, records: Sequence[Record], by_id: Mapping[str, list[int]],
             by_url: Mapping[str, list[int]]) -> list[int]:
    """The positions of the records a review overrides: those with its id; else those with
    its link whose title is its title; else the one record with its link when the review's
    title or that record's is empty (nothing to compare). Otherwise none (an empty list): a
    record whose title differs is another story under the same link (one bulletin page
    carries many stories)."""
    if review["id"] and review["id"] in by_id:
        return by_id[review["id"]]
    url = _url_key(review)
    same_link = by_url.get(url, []) if url is not None else []
    title = title_key(review["title"])
    if title:
        same = [i for i in same_link if title_key(records[i]["title"]) == title]
        if same:
            return same
    if len(same_link) == 1 and not (title and title_key(records[same_link[0]]["title"])):
        return same_link
    return []


def title_key(title: str) -> str:
    """A title as the store keeps one, to compare a review's with a pool item's: HTML
    character references read, whitespace folded to single spaces, control characters
    dropped, cut at ``MAX_TITLE`` (``monitor.parse.one_line``)."""
    import html

    from monitor.parse import one_line

    return one_line(html.unescape(title)) if title else ""


def _review(n: int, review: Record) -> dict[str, Any]:
    """A checked review, with an id if it had none and "" for a missing title or text."""
    filled = {"id": f"review:{n}", **review, "title": review.get("title") or "",
              "text": review.get("text") or ""}
    return validate_record(filled, f"review {n}")


def _url_key(record: Record) -> str | None:
    """A record's url, canonicalised as the store keeps an article's link."""
    from monitor.parse import canonical_url

    url = record.get("url")
    if not (url and isinstance(url, str)):
        return None
    return canonical_url(url) or url


def _review_record(review: Record) -> dict[str, Any]:
    from monitor.language import detect_language

    lang = review.get("lang") or detect_language(review["title"], review["text"])
    return {**review, "lang": lang or "und", "real": True}


def corpus_sha256(records: Sequence[Record]) -> str:
    """sha256 of the corpus as canonical JSON lines, sorted by id."""
    digest = hashlib.sha256()
    for record in sorted(records, key=lambda r: str(r["id"])):
        line = json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        digest.update(line.encode("utf-8") + b"\n")
    return digest.hexdigest()


def model_version(now: datetime, labelled: Sequence[Record], features: str, seed: int,
                  candidate: Candidate = DEFAULT_CANDIDATE,
                  thresholds: Thresholds | None = None) -> str:
    """``YYYYMMDD-<8 hex>``: the day, and a hash of what the model was trained from (corpus
    with review verdicts applied) and how (features, seed, text preparation, scoring,
    candidate, and the thresholds it flags at), so two models that could flag differently
    never share a version."""
    recipe = json.dumps([corpus_sha256(labelled), features, seed, preparation_fingerprint(),
                         SCORING, *([asdict(candidate)] if candidate != DEFAULT_CANDIDATE
                                    else []),
                         *([thresholds.to_card()] if thresholds is not None else [])],
                        ensure_ascii=False, sort_keys=True)
    return f"{now:%Y%m%d}-{hashlib.sha256(recipe.encode('utf-8')).hexdigest()[:8]}"


def _card(corpus: Sequence[Record], labelled: Sequence[Record], rest: Sequence[Record],
          held: Sequence[Record], review_counts: dict[str, int], added: int, features: str,
          seed: int, selection: Selection, now: datetime) -> dict[str, Any]:
    import sklearn
    import skops

    sha = corpus_sha256(corpus)
    return {
        "version": model_version(now, labelled, features, seed, selection.candidate,
                                 selection.thresholds),
        "created": now.isoformat(timespec="seconds"),
        "sklearn_version": sklearn.__version__,
        "skops_version": skops.__version__,
        "topics": list(TOPICS),
        "preparation": preparation_fingerprint(),
        "scoring": SCORING,
        "features": features,
        "description": FEATURES[features] + {
            "nb": ", each topic's features scaled by their naive-Bayes log-count ratio",
            "nb+none": ", the mean of one fitted on features scaled by their naive-Bayes "
                       "log-count ratio and one fitted on them as they are",
        }.get(selection.candidate.scaling, ""),
        "candidate": asdict(selection.candidate),
        "thresholds": selection.thresholds.to_card(),
        "seed": seed,
        "corpus_sha256": sha,
        # reviews that went into training (a review whose item falls in the held-out part
        # is measured there, not trained on); "reviews" says how many were given and where
        "n_reviews": review_counts["trained_on"],
        "reviews": review_counts,
        "held_out_rule": f"sha256(group) mod 100 < {HELD_OUT_PERCENT}; the group of a "
                         "written record or review is its id, of a real item its story "
                         "and source-day group",
        "sizes": _sizes(corpus, labelled, rest, held, added),
        # which items the model learned from (short hashes of their ids), so that a later
        # training compares it only on held-out items it never saw (see fair_held_out)
        "trained_ids": sorted({id_hash(r["id"]) for r in rest}),
    }


def id_hash(record_id: Any) -> str:
    return hashlib.sha256(str(record_id).encode("utf-8")).hexdigest()[:10]


def fair_held_out(held: Sequence[Record], card: Mapping[str, Any] | None,
                  groups: Sequence[str] | None = None) -> list[Record]:
    """Today's held-out records the model of ``card`` has not learned: neither they nor
    another copy of their story (``groups``: each record's story group) were among its
    training items. The held-out part follows story groups, and new labels merge groups
    (a change in how groups are named moves them too): without this the current model
    would be scored on items it learned from, or on their copies from another outlet, and
    the guard would favour it. A card that does not say what it trained on keeps them
    all."""
    trained = set((card or {}).get("trained_ids") or ())
    if not trained:
        return list(held)
    groups = [str(r["id"]) for r in held] if groups is None else groups
    tainted = {g for r, g in zip(held, groups) if id_hash(r["id"]) in trained}
    return [r for r, g in zip(held, groups) if g not in tainted]


def _sizes(corpus: Sequence[Record], labelled: Sequence[Record], rest: Sequence[Record],
           held: Sequence[Record], added: int) -> dict[str, Any]:
    return {
        "corpus": len(corpus),
        "train": len(rest),
        "held_out": len(held),
        "added_by_reviews": added,
        "real": sum(bool(r.get("real")) for r in labelled),
        "real_languages": dict(sorted(Counter(
            str(r.get("lang")) for r in labelled if r.get("real")).items())),
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
    from monitor.labels import numbered_lines

    path = Path(path)
    return [_parse_line(line, f"{path}:{number}")
            for number, line in numbered_lines(path) if line.strip()]


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


def dev_metrics(pipeline: Any, threshold: float | Thresholds, dev: Sequence[Record],
                rules: KeywordRules | None, name: str) -> dict[str, Any]:
    """Scores on a dev file: model alone, and with / without keyword rules when given."""
    out: dict[str, Any] = {"file": name, "items": len(dev),
                           "model": score_pipeline(pipeline, dev, threshold)}
    if rules is not None and len(rules):
        out["model+keywords"] = score_pipeline(pipeline, dev, threshold, rules)
        out["keywords_only"] = keyword_report(dev, rules)
        out["keywords"] = rules.fingerprint()     # which rules made these two figures
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
                     labels_dir: str | Path | None = None, pool_path: str | Path | None = None,
                     seed: int = 0, features: str = DEFAULT_FEATURES,
                     candidates: Sequence[Candidate] | None = None,
                     now: datetime | None = None,
                     in_use: str | Path | None = None) -> TrainOutcome:
    """Everything ``monitor train`` does: load the written corpus, join our labels of real
    items to the pool's text (when both are given), train, measure (dev too), compare,
    save.

    The new model is compared with the model at ``out_path``, which it would replace; when
    there is no file there yet (a first ``--out``), with ``in_use``, the model the config
    uses (``classifier.model``), when that one has a card: a first model written elsewhere
    must not be worse than the one flagging today either. The outcome says which."""
    out_path = Path(out_path)
    check_target(out_path)          # a target we cannot write stops us now, not after training
    # (name, records) of the dev file, read first: a bad file stops us now, not after training
    dev = (Path(dev_path).name, load_jsonl(dev_path)) if dev_path is not None else None
    review_records = _load_reviews(reviews)
    real, pool = _real_items(labels_dir, pool_path)
    baseline, compared_with = _baseline(out_path, None if in_use is None else Path(in_use))
    # the candidate of the model it is compared with stays unless another is clearly better:
    # a first --out keeps the model in use's, as a later one keeps its own
    keep = candidate_of(_current_card(baseline))
    result = train(load_corpus(corpus_dir), review_records, real=real, rules=rules,
                   seed=seed, features=features, candidates=candidates, now=now, keep=keep)
    result.card["pool"] = pool
    thresholds = Thresholds.from_card(result.card)
    if dev is not None:
        result.card["dev"] = dev_metrics(result.pipeline, thresholds, dev[1], rules, dev[0])
    current = _current_card(baseline)
    compared = result.card
    broken = None
    if current is not None and result.held_out:
        fair = fair_held_out(result.held_out, current, result.held_out_groups)
        current, broken = _rescored(current, baseline, fair)
        if broken is None:
            if len(fair) < len(result.held_out):       # both models on the same unseen items
                compared = dict(result.card,
                                held_out=score_pipeline(result.pipeline, fair, thresholds))
            result.card["held_out_compared"] = {"items": len(fair), "of": len(result.held_out)}
    other = "current model" if baseline == out_path else "model in use"
    real_before = _real_count(current)
    if broken is None and real_before and not real and not force:
        # its held-out part would hold written items only, where the model of written text
        # does well: a model that never saw real news could pass for the better one
        replace, reason = False, (
            f"refused: the {other} was trained on {real_before:,} real news items and this "
            f"one on none ({pool.get('why') or 'no label found its text in ' + str(pool.get('file'))}): "
            "compared on written items alone it "
            "cannot show it is as good on real news; give --pool PATH (the pool of our "
            "labels), or --force to write it anyway")
    elif broken is not None:
        replace, reason = True, (f"not compared: the {other} cannot be loaded ({broken}), so "
                                 "the new one " + ("replaces it" if baseline == out_path
                                                   else "is written"))
    else:
        replace, reason = should_replace(current, compared, force)
    if "held_out_compared" in result.card and "->" in reason:
        both = result.card["held_out_compared"]
        reason += (f"; both models on the {both['items']} of {both['of']} held-out items the "
                   f"{other} never trained on")
    if replace:
        save_model(result.pipeline, out_path, result.card)
    return TrainOutcome(result.card, replace, reason, out_path, compared_with)


def _real_count(card: Mapping[str, Any] | None) -> int:
    """How many real labelled items the model of ``card`` was trained with (0: none, or a
    card from before the pool)."""
    pool = (card or {}).get("pool") or {}
    return int(pool.get("joined") or 0) if pool.get("used") else 0


def _baseline(out_path: Path, in_use: Path | None) -> tuple[Path, str]:
    """The model a new one for ``out_path`` is compared with, and that said in words: the
    one at ``out_path``; when there is no file there yet, the model in use (``in_use``) if
    it has a card; else none."""
    if _current_card(out_path) is not None:
        return out_path, f"the current model at {out_path}, which it replaces"
    if out_path.exists():
        return out_path, f"no model ({out_path} has no card to compare with)"
    if in_use is None or in_use.resolve() == out_path.resolve():
        return out_path, f"no model (none at {out_path} yet)"
    if _current_card(in_use) is not None:
        return in_use, (f"the model in use, {in_use} (classifier.model), as {out_path} "
                        "does not exist yet")
    return out_path, (f"no model (none at {out_path} yet, and none with a card at {in_use}, "
                      "classifier.model)")


def _real_items(labels_dir: str | Path | None, pool_path: str | Path | None
                ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Real labelled records and what the card says of them: the pool's file name and
    sha256, how many labels there were and how many found their text."""
    from monitor.labels import file_sha256, join_pool, load_labels

    labels = load_labels(labels_dir) if labels_dir and Path(labels_dir).is_dir() else []
    if not labels or pool_path is None:
        why = "no labels" if not labels else "no pool given or found"
        return [], {"used": False, "labels": len(labels), "why": why}
    records, missing = join_pool(labels, pool_path)
    return records, {"used": True, "file": Path(pool_path).name,
                     "sha256": file_sha256(pool_path), "labels": len(labels),
                     "joined": len(records), "missing": len(missing)}


def _rescored(card: dict[str, Any], model_path: Path, held: Sequence[Record]
              ) -> tuple[dict[str, Any], str | None]:
    """The current model's card with its held-out metrics measured again on today's
    held-out records (at its own thresholds), so that both models are compared on the same
    items when the corpus has grown; and None. A current model that does not load (its
    file truncated or changed, its card invalid, another scikit-learn) is not compared at
    all: its card unchanged, and why it does not load."""
    try:
        current = SkopsClassifier.load(model_path)
        pipeline = current.pipeline
    except ClassifierError as exc:
        return card, str(exc)
    return dict(card, held_out=score_pipeline(pipeline, held, current.thresholds)), None


def _load_reviews(reviews: Sequence[Record] | str | Path | None) -> list[Record]:
    if reviews is None:
        return []
    if isinstance(reviews, (str, Path)):
        return list(load_jsonl(reviews))
    return list(reviews)


def _current_card(model_path: Path) -> dict[str, Any] | None:
    """The card of the model at ``model_path``: the one beside it, when that file exists
    and no other model file of the same stem owns that card (``sidecar_owner``; training
    refuses such a target before it starts, ``check_target``)."""
    path = card_path(model_path)
    if not (model_path.exists() and path.exists()) or sidecar_owner(model_path) is not None:
        return None
    try:
        card = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def check_target(model_path: Path) -> None:
    """UsageError, before any training, when the model cannot be written to
    ``model_path``: it is named like a model's card or arrays (``*.card.json``,
    ``*.linear.npz``: another model's, or one that would be taken for one); its card and
    arrays would overwrite another model's (``sidecar_owner``); it is a folder; it is an
    existing file that is not a model (not a skops archive, and no card of its own beside
    it: a model that no longer loads is still replaced); or its folder cannot be made or
    written (a probe file is made there and removed)."""
    kind = sidecar_kind(model_path)
    if kind is not None:
        suffix = CARD_SUFFIX if kind == "card" else LINEAR_SUFFIX
        model = sidecar_model(model_path)
        whose = (f"it is the {kind} of the model {model}" if model is not None
                 else f"a name ending in {suffix} is a model's {kind}, not a model")
        example = model or model_path.with_name(model_path.name[:-len(suffix)] + ".skops")
        raise UsageError(
            f"{model_path}: {whose}; --out names the model file itself (e.g. {example}), "
            "and its card and arrays are written beside it")
    owner = sidecar_owner(model_path)
    if owner is not None:
        raise UsageError(
            f"{model_path}: its card {card_path(model_path).name} and arrays "
            f"{linear_path(model_path).name} would overwrite those of {owner} (the model "
            "files of one folder with one name before the extension share them); train into "
            f"{owner} itself or a file of another name, e.g. "
            f"{model_path.with_name(model_path.stem + '-new' + model_path.suffix)}")
    if model_path.is_dir():
        raise UsageError(f"{model_path}: is a folder; --out names the model file")
    if (model_path.is_file() and not is_model_archive(model_path)
            and not card_path(model_path).is_file()):
        raise UsageError(
            f"{model_path}: exists and is not a model (not a skops archive, and no card "
            f"{card_path(model_path).name} beside it); training would replace it: move it "
            "away or choose another --out")
    folder = model_path.parent
    blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()),
                   None)
    if blocker is not None:
        raise UsageError(f"{model_path}: cannot write the model there: {blocker} is a file")
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{model_path.name}.",
                                         suffix=".probe"):
            pass
    except OSError as exc:
        raise UsageError(f"{model_path}: cannot write the model there: "
                         f"{exc.strerror or exc} ({exc.filename or folder})") from None
    finally:
        for created in made:                # the folders made for the probe: save_model
            try:                            # makes them again
                created.rmdir()
            except OSError:
                break
