"""The flag decision: model probabilities and keyword hits in, a ``Verdict`` out. Pure.

Rules, in order:

1. Model topics: every topic whose probability is at least its threshold: one number for
   every topic, or a ``{topic: threshold}`` mapping (``Thresholds.for_language`` gives the
   one chosen for the article's language when the model was trained).
2. Keyword topics: every topic with at least one keyword hit.
3. ``topics`` = model topics ∪ keyword topics, in the order of ``monitor.TOPICS``.
4. Mute: when any mute phrase matched, ``topics`` is emptied: a mute hit suppresses model
   topics and keyword topics alike (mute phrases are meant to be reliable noise, such as
   "mineral water"). The reasons still list every probability and hit, then
   ``muted by "<phrase>"``, so the analyst can see what was suppressed.
5. ``flagged`` = ``topics`` is non-empty.
6. ``score`` = the highest model probability over all topics (whether flagged or not).
   When the model is unavailable (``probabilities is None``) it is 1.0 if keywords flagged
   the article and 0.0 otherwise.

Reasons look like ``classifier critical-minerals 0.97``, ``keyword "seltene Erden"``,
``muted by "gold price"``, or ``classifier unavailable`` when there are no probabilities
(the decision is then made from keywords alone). When the model's highest probability came
from one story of a multi-story item rather than from the whole, ``from story "<its
headline>"`` follows the probabilities, so the analyst knows which part of a long bulletin
was the reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monitor import TOPICS
from monitor.keywords import KeywordMatch
from monitor.types import Verdict


DEFAULT_THRESHOLD = 0.5
Threshold = float | Mapping[str, float]


@dataclass(frozen=True)
class Thresholds:
    """Per-topic thresholds, with per-language exceptions where training chose them.

    Stored in the model card as ``{"default": {topic: t}, "languages": {lang: {topic: t}}}``;
    a card without them (older models) gives ``DEFAULT_THRESHOLD`` for every topic.
    """

    default: Mapping[str, float] = field(
        default_factory=lambda: dict.fromkeys(TOPICS, DEFAULT_THRESHOLD))
    languages: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @classmethod
    def uniform(cls, threshold: float) -> Thresholds:
        return cls(dict.fromkeys(TOPICS, threshold))

    @classmethod
    def from_card(cls, card: Mapping[str, Any]) -> Thresholds:
        """The card's thresholds; a ``ValueError`` naming the field when they are not
        numbers between 0 and 1 (exclusive) for known topics: ``thresholds.default`` must
        give every topic, ``thresholds.languages.<lang>`` any of them (the others follow
        the default)."""
        stored = card.get("thresholds")
        if stored is None:
            return cls.uniform(_limit(card.get("threshold", DEFAULT_THRESHOLD), "threshold"))
        if not isinstance(stored, Mapping):
            raise ValueError("thresholds: must be an object {\"default\": ..., "
                             "\"languages\": ...}")
        given = stored.get("default")
        if not isinstance(given, Mapping):
            raise ValueError("thresholds.default: must be an object {topic: threshold}")
        default = _limits(given, "thresholds.default")
        missing = [t for t in TOPICS if t not in default]
        if missing:
            raise ValueError(f"thresholds.default.{missing[0]}: missing")
        per_language = stored.get("languages", {})
        if not isinstance(per_language, Mapping):
            raise ValueError("thresholds.languages: must be an object {language: {topic: "
                             "threshold}}")
        languages = {}
        for lang, per in per_language.items():
            if not isinstance(per, Mapping):
                raise ValueError(f"thresholds.languages.{lang}: must be an object "
                                 "{topic: threshold}")
            languages[str(lang)] = {**default, **_limits(per, f"thresholds.languages.{lang}")}
        return cls(default, languages)

    def for_language(self, lang: str | None) -> Mapping[str, float]:
        return self.languages.get(lang or "", self.default)

    def to_card(self) -> dict[str, Any]:
        return {"default": dict(self.default),
                "languages": {lang: dict(per) for lang, per in sorted(self.languages.items())}}


def _limits(given: Mapping[str, Any], where: str) -> dict[str, float]:
    unknown = [t for t in given if t not in TOPICS]
    if unknown:
        raise ValueError(f"{where}.{unknown[0]}: not a topic ({', '.join(TOPICS)})")
    return {t: _limit(given[t], f"{where}.{t}") for t in TOPICS if t in given}


def _limit(value: Any, where: str) -> float:
    """A threshold: a number strictly between 0 and 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 1:
        raise ValueError(f"{where}: {value!r} is not a number between 0 and 1")
    return float(value)


def decide(probabilities: Mapping[str, float] | None, match: KeywordMatch,
           threshold: Threshold, model_version: str | None, story: str | None = None) -> Verdict:
    """Combine model probabilities and keyword hits into a Verdict (see module doc)."""
    found = set(model_topics(probabilities, threshold)) | set(match.topics)
    topics = () if match.muted else tuple(t for t in TOPICS if t in found)
    return Verdict(
        flagged=bool(topics),
        topics=topics,
        score=_score(probabilities, match),
        reasons=reasons(probabilities, match, story),
        probabilities=dict(probabilities or {}),
        model_version=model_version,
    )


def model_topics(probabilities: Mapping[str, float] | None,
                 threshold: Threshold) -> tuple[str, ...]:
    """Topics whose model probability reaches their threshold, in TOPICS order."""
    if not probabilities:
        return ()
    if isinstance(threshold, Mapping):
        return tuple(t for t in TOPICS
                     if probabilities.get(t, 0.0) >= threshold.get(t, DEFAULT_THRESHOLD))
    return tuple(t for t in TOPICS if probabilities.get(t, 0.0) >= threshold)


def reasons(probabilities: Mapping[str, float] | None, match: KeywordMatch,
            story: str | None = None) -> tuple[str, ...]:
    """Human-readable reasons: model probabilities (and the story they came from), keyword
    hits, mute hits."""
    if probabilities is None:
        model = ["classifier unavailable"]
    else:
        model = [f"classifier {t} {probabilities[t]:.2f}" for t in TOPICS
                 if t in probabilities]
        if story:
            model.append(f'from story "{story}"')
    phrases = dict.fromkeys(p for t in TOPICS for p in match.hits.get(t, ()))
    keyword = [f'keyword "{p}"' for p in phrases]
    muted = [f'muted by "{p}"' for p in match.muted]
    return tuple(model + keyword + muted)


def _score(probabilities: Mapping[str, float] | None, match: KeywordMatch) -> float:
    if probabilities is None:
        return 1.0 if match.topics and not match.muted else 0.0
    return max(probabilities.values(), default=0.0)
