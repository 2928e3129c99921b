"""Everything derived from an article's text, in one batch (one feed, or several that the
poll's writer takes together): language, the classifier's probabilities (one call per
batch), keyword rules, the decision, and the countries and minerals it names.

The model (and with it scikit-learn, ~150 MB) is loaded when the first batch arrives, not
when the analyser is built: a poll where every feed answers 304 never loads it, and the
service keeps it once loaded. If it cannot be loaded (missing, tampered, another
scikit-learn), the analyser logs the ClassifierError once and goes on: articles are stored
with keyword-only verdicts, ``model_version`` empty and the reason "classifier
unavailable", so that ``monitor reclassify`` can redo them once a good model is in place.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

from monitor.decide import Thresholds
from monitor.exceptions import ClassifierError
from monitor.types import Analysis, ArticleWrite, Extraction, FeedState, ParsedArticle

log = logging.getLogger("monitor.analyze")


class Analyzer:
    """Classifies and annotates batches of articles; callable as the pipeline's seam."""

    def __init__(self, classifier, rules, threshold: float | None = None,
                 model_error: str | None = None,
                 load: Callable[[], tuple[Any, str | None]] | None = None) -> None:
        self._classifier = classifier
        self.rules = rules
        self.threshold = threshold      # None: the model card's thresholds
        self._model_error = model_error
        self._load = load               # (classifier, error) on first use, then forgotten
        self._lock = threading.Lock()
        self._warm_lock = threading.Lock()
        self.extracted_elsewhere = False    # the poll extracts in its parse processes
        self._warming = False
        self._data_ready = False

    @property
    def classifier(self):
        """The model, loaded on first use (None when it cannot be loaded)."""
        if self._load is not None:
            with self._lock:
                if self._load is not None:
                    self._classifier, self._model_error = self._load()
                    self._load = None
        return self._classifier

    def warm_up(self) -> None:
        """Start loading the model (and the language, country and mineral data, unless the
        poll finds those in its parse processes) in a background thread, so that they are
        ready when the first batch arrives (the poll calls this when the first feed answers
        with a body: the loading overlaps fetching and parsing). Does nothing once loaded or
        while loading."""
        with self._warm_lock:               # never the model's lock: that one is held while
            if self._warming or (self._load is None and self._data_ready):    # loading
                return
            self._warming = True
        threading.Thread(target=self._warm, name="monitor-model-load", daemon=True).start()

    def _warm(self) -> None:
        try:
            self.classifier                 # noqa: B018 - loads the model
            if not self.extracted_elsewhere:
                from monitor.extract import extract

                extract([("warm up", "the language and country data load", None)])
            self._data_ready = True
        except Exception:                   # noqa: BLE001 - the batch will load and say why
            log.debug("warming up failed; the first batch loads instead", exc_info=True)
        finally:
            self._warming = False

    @property
    def model_error(self) -> str | None:
        self.classifier                 # noqa: B018 - loads the model if not done yet
        return self._model_error

    @property
    def model_in_use(self) -> bool:
        """Whether a model has been loaded and classifies (never loads one itself)."""
        return self._load is None and self._classifier is not None

    @property
    def loaded(self) -> bool:
        """Whether the model has been loaded (or tried)."""
        return self._load is None

    @property
    def thresholds(self) -> Thresholds:
        """What flags a model topic: ``classifier.threshold`` from the config when set (one
        number for every topic and language), else the thresholds chosen at training."""
        if self.threshold is not None:
            return Thresholds.uniform(self.threshold)
        classifier = self.classifier
        if classifier is None or not hasattr(type(classifier), "thresholds"):
            return Thresholds()             # no model, or one without a card (a test's fake)
        return classifier.thresholds        # checked when the model was loaded

    @classmethod
    def from_config(cls, config, lazy: bool = False) -> Analyzer:
        """The config's keyword rules and model; ``lazy``: the model is loaded when first
        needed. A missing model file is said at once either way."""
        from monitor.keywords import KeywordRules

        rules = KeywordRules.compile(config.keywords.spec())
        path = config.classifier.model_path()
        if lazy and not path.is_file():
            log.error("classifier unavailable, flagging by keywords only: %s: model file is "
                      "missing", path)

        def load() -> tuple[Any, str | None]:
            from monitor.classify import SkopsClassifier

            try:
                return SkopsClassifier.load(path), None
            except ClassifierError as exc:
                if not (lazy and not path.is_file()):       # said already
                    log.error("classifier unavailable, flagging by keywords only: %s", exc)
                return None, str(exc)

        analyzer = cls(None, rules, config.classifier.fixed_threshold(), load=load)
        if not lazy:
            analyzer.classifier                 # noqa: B018 - load now
        return analyzer

    @property
    def model_version(self) -> str | None:
        return self.classifier.version if self.classifier is not None else None

    extracts = True         # the poll may find language, countries, minerals beside the parse

    def analyse(self, docs: Sequence[tuple[str, str, str | None]],
                found: Sequence[Extraction | None] | None = None) -> list[Analysis]:
        """(title, text, language hint) → Analysis, in order; one model call for all.
        ``found``: what a parse process already extracted (None where it did not)."""
        from monitor.classify import classify_articles
        from monitor.extract import extract

        given = list(found) if found is not None else [None] * len(docs)
        missing = iter(extract([doc for doc, e in zip(docs, given) if e is None]))
        done = [e if e is not None else next(missing) for e in given]
        pairs = [(title, text) for title, text, _ in docs]
        verdicts = classify_articles(pairs, self.classifier, self.rules, self.thresholds,
                                     [e.language for e in done])
        return [Analysis(language=e.language, verdict=verdict, countries=e.countries,
                         minerals=e.minerals) for e, verdict in zip(done, verdicts)]

    def __call__(self, articles: Sequence[ParsedArticle], feed: FeedState) -> list[ArticleWrite]:
        return self.analyse_feeds([(articles, feed)])[0]

    def analyse_feeds(self, groups: Sequence[tuple[Sequence[ParsedArticle], FeedState]]
                      ) -> list[list[ArticleWrite]]:
        """``self(articles, feed)`` for several feeds at once: one batch, one model call
        (the poll's writer takes the feeds that finished parsing while it was busy)."""
        articles = [(a, feed) for group, feed in groups for a in group]
        docs = [(a.title, a.text, a.language or feed.lang) for a, feed in articles]
        results = iter(self.analyse(docs, [a.extracted for a, _ in articles]))
        return [[ArticleWrite(parsed=a, language=r.language, verdict=r.verdict,
                              countries=r.countries, minerals=r.minerals)
                 for a, r in zip(group, results)] for group, _feed in groups]
