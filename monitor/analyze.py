"""Everything derived from an article's text, in one batch per feed: language, the
classifier's probabilities (one call per batch), keyword rules, the decision, and the
countries and minerals it names.

If the model cannot be loaded (missing, tampered, another scikit-learn), the analyser
logs the ClassifierError once and goes on: articles are stored with keyword-only
verdicts, ``model_version`` empty and the reason "classifier unavailable", so that
``monitor reclassify`` can redo them once a good model is in place.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from monitor.decide import Thresholds
from monitor.exceptions import ClassifierError
from monitor.types import Analysis, ArticleWrite, FeedState, ParsedArticle

log = logging.getLogger("monitor.analyze")


class Analyzer:
    """Classifies and annotates batches of articles; callable as the pipeline's seam."""

    def __init__(self, classifier, rules, threshold: float | None = None,
                 model_error: str | None = None) -> None:
        self.classifier = classifier
        self.rules = rules
        self.threshold = threshold      # None: the model card's thresholds
        self.model_error = model_error

    @property
    def thresholds(self) -> Thresholds:
        """What flags a model topic: ``classifier.threshold`` from the config when set (one
        number for every topic and language), else the thresholds chosen at training."""
        if self.threshold is not None:
            return Thresholds.uniform(self.threshold)
        card_thresholds = getattr(self.classifier, "thresholds", None)
        return card_thresholds if isinstance(card_thresholds, Thresholds) else Thresholds()

    @classmethod
    def from_config(cls, config) -> Analyzer:
        from monitor.classify import SkopsClassifier
        from monitor.keywords import KeywordRules

        rules = KeywordRules.compile(config.keywords.spec())
        try:
            classifier, error = SkopsClassifier.load(config.classifier.model_path()), None
        except ClassifierError as exc:
            classifier, error = None, str(exc)
            log.error("classifier unavailable, flagging by keywords only: %s", exc)
        return cls(classifier, rules, config.classifier.fixed_threshold(), error)

    @property
    def model_version(self) -> str | None:
        return self.classifier.version if self.classifier is not None else None

    def analyse(self, docs: Sequence[tuple[str, str, str | None]]) -> list[Analysis]:
        """(title, text, language hint) → Analysis, in order; one model call for all."""
        from monitor.classify import classify_articles
        from monitor.countries import extract_countries
        from monitor.language import detect_language
        from monitor.minerals import extract_minerals

        pairs = [(title, text) for title, text, _ in docs]
        languages = [detect_language(title, text, hint) for title, text, hint in docs]
        verdicts = classify_articles(pairs, self.classifier, self.rules, self.thresholds,
                                     languages)
        return [Analysis(language=language, verdict=verdict,
                         countries=tuple(extract_countries(title, text)),
                         minerals=tuple(extract_minerals(title, text)))
                for (title, text), language, verdict in zip(pairs, languages, verdicts)]

    def __call__(self, articles: Sequence[ParsedArticle], feed: FeedState) -> list[ArticleWrite]:
        docs = [(a.title, a.text, a.language or feed.lang) for a in articles]
        return [ArticleWrite(parsed=a, language=r.language, verdict=r.verdict,
                             countries=r.countries, minerals=r.minerals)
                for a, r in zip(articles, self.analyse(docs))]
