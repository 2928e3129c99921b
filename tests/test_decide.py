"""The pure flag decision: model topics ∪ keyword topics, minus muted."""

from __future__ import annotations

from typing import Any

import pytest

from monitor.decide import decide, model_topics
from monitor.keywords import KeywordMatch

CM, EC = "critical-minerals", "export-controls"
NO_HITS = KeywordMatch()


def test_model_topics_at_or_above_threshold() -> None:
    verdict = decide({CM: 0.97, EC: 0.5}, NO_HITS, 0.5, "v1")
    assert verdict.flagged
    assert verdict.topics == (CM, EC)
    assert verdict.score == 0.97
    assert verdict.model_version == "v1"
    assert verdict.probabilities == {CM: 0.97, EC: 0.5}


def test_below_threshold_is_not_flagged_but_keeps_the_score() -> None:
    verdict = decide({CM: 0.3, EC: 0.1}, NO_HITS, 0.5, "v1")
    assert not verdict.flagged
    assert verdict.topics == ()
    assert verdict.score == 0.3
    assert verdict.reasons == (f"classifier {CM} 0.30", f"classifier {EC} 0.10")


def test_the_story_that_raised_the_probability_follows_the_probabilities() -> None:
    match = KeywordMatch(hits={EC: ("export control*",)})
    verdict = decide({CM: 0.8, EC: 0.1}, match, 0.5, "v1", story="Rare earth magnets")
    assert verdict.reasons == (f"classifier {CM} 0.80", f"classifier {EC} 0.10",
                               'from story "Rare earth magnets"', 'keyword "export control*"')


def test_keywords_add_topics_in_fixed_order() -> None:
    match = KeywordMatch(hits={EC: ("Ausfuhrkontroll*",)})
    verdict = decide({CM: 0.9, EC: 0.2}, match, 0.5, "v1")
    assert verdict.topics == (CM, EC)
    assert verdict.score == 0.9
    assert verdict.reasons == (f"classifier {CM} 0.90", f"classifier {EC} 0.20",
                               'keyword "Ausfuhrkontroll*"')


def test_keyword_phrase_listed_once_even_if_in_both_topics() -> None:
    match = KeywordMatch(hits={CM: ("稀土出口管制",), EC: ("稀土出口管制", "出口管制")})
    verdict = decide({CM: 0.1, EC: 0.1}, match, 0.5, None)
    assert verdict.topics == (CM, EC)
    assert verdict.reasons[2:] == ('keyword "稀土出口管制"', 'keyword "出口管制"')


def test_mute_suppresses_model_and_keyword_topics() -> None:
    match = KeywordMatch(hits={CM: ("lithium price*",)}, muted=("mineral water",))
    verdict = decide({CM: 0.99, EC: 0.7}, match, 0.5, "v1")
    assert not verdict.flagged
    assert verdict.topics == ()
    assert verdict.score == 0.99
    assert verdict.reasons[-2:] == ('keyword "lithium price*"', 'muted by "mineral water"')


def test_model_unavailable_decides_from_keywords_alone() -> None:
    match = KeywordMatch(hits={CM: ("seltene* Erden",)})
    verdict = decide(None, match, 0.5, None)
    assert verdict.flagged and verdict.topics == (CM,)
    assert verdict.score == 1.0
    assert verdict.reasons == ("classifier unavailable", 'keyword "seltene* Erden"')
    assert verdict.probabilities == {}


def test_model_unavailable_without_keywords_is_not_flagged() -> None:
    verdict = decide(None, NO_HITS, 0.5, None)
    assert (verdict.flagged, verdict.score, verdict.reasons) == (
        False, 0.0, ("classifier unavailable",))


def test_model_unavailable_and_muted() -> None:
    match = KeywordMatch(hits={CM: ("lithium",)}, muted=("Mineralwasser",))
    verdict = decide(None, match, 0.5, None)
    assert not verdict.flagged and verdict.score == 0.0
    assert verdict.reasons[-1] == 'muted by "Mineralwasser"'


def test_model_topics_helper() -> None:
    assert model_topics(None, 0.5) == ()
    assert model_topics({EC: 0.8, CM: 0.8}, 0.5) == (CM, EC)
    assert model_topics({CM: 0.49}, 0.5) == ()


def test_decide_does_not_keep_a_reference_to_the_input() -> None:
    probabilities = {CM: 0.6, EC: 0.1}
    verdict = decide(probabilities, NO_HITS, 0.5, "v")
    probabilities[CM] = 0.0
    assert verdict.probabilities[CM] == 0.6


# --- thresholds per topic and language ---------------------------------------------------------

def test_thresholds_from_a_card_per_topic_and_language() -> None:
    from monitor.decide import Thresholds

    card = {"thresholds": {"default": {"critical-minerals": 0.3, "export-controls": 0.6},
                           "languages": {"zh": {"export-controls": 0.7}}}}
    limits = Thresholds.from_card(card)
    assert limits.for_language("en") == {"critical-minerals": 0.3, "export-controls": 0.6}
    assert limits.for_language("zh") == {"critical-minerals": 0.3, "export-controls": 0.7}
    assert limits.for_language(None) == limits.default
    assert Thresholds.from_card({"threshold": 0.4}).for_language("de") == {
        "critical-minerals": 0.4, "export-controls": 0.4}          # an older card
    assert Thresholds.from_card({"thresholds": limits.to_card()}) == limits


def test_per_topic_thresholds_decide_each_topic() -> None:
    probs = {"critical-minerals": 0.35, "export-controls": 0.55}
    limits = {"critical-minerals": 0.3, "export-controls": 0.6}
    verdict = decide(probs, KeywordMatch(), limits, "v1")
    assert verdict.topics == ("critical-minerals",)


def test_a_per_topic_threshold_is_reached_at_equality() -> None:
    # "flagged when its probability reaches the topic's threshold": equal is enough, as with
    # one number for every topic
    limits = {CM: 0.35, EC: 0.6}
    assert decide({CM: 0.35, EC: 0.6}, NO_HITS, limits, "v1").topics == (CM, EC)
    assert decide({CM: 0.34, EC: 0.59}, NO_HITS, limits, "v1").topics == ()


def test_an_older_card_without_thresholds_flags_at_one_half() -> None:
    from monitor.decide import Thresholds

    limits = Thresholds.from_card({}).for_language("en")
    assert limits == {CM: 0.5, EC: 0.5}
    assert Thresholds().for_language("zh") == {CM: 0.5, EC: 0.5}
    assert decide({CM: 0.5, EC: 0.49}, NO_HITS, limits, "old").topics == (CM,)


def test_a_card_with_default_thresholds_and_no_languages_loads() -> None:
    from monitor.decide import Thresholds

    limits = Thresholds.from_card({"thresholds": {"default": {CM: 0.3, EC: 0.6}}})
    assert limits.for_language("zh") == {CM: 0.3, EC: 0.6}
    assert limits.languages == {}


@pytest.mark.parametrize("card, field", [
    ({"threshold": 0}, "threshold: 0"),                        # would flag everything
    ({"threshold": 0.0}, "threshold: 0.0"),
    ({"threshold": 1}, "threshold: 1"),                        # would flag nothing
    ({"threshold": 1.0}, "threshold: 1.0"),
    ({"thresholds": {"default": {CM: 0.0, EC: 0.5}}}, f"thresholds.default.{CM}: 0.0"),
    ({"thresholds": {"default": {CM: 0.5, EC: 1.0}}}, f"thresholds.default.{EC}: 1.0"),
    ({"thresholds": {}}, "thresholds.default: must be an object"),
    ({"thresholds": [0.5, 0.5]}, "thresholds: must be an object"),
    ({"thresholds": 0.5}, "thresholds: must be an object"),
    ({"thresholds": {"default": {CM: 0.5, EC: 0.5}, "languages": ["zh"]}},
     "thresholds.languages: must be an object"),
    ({"thresholds": {"default": {CM: 0.5, EC: 0.5}, "languages": {"zh": 0.7}}},
     "thresholds.languages.zh: must be an object"),
    ({"thresholds": {"default": {CM: 0.5, EC: 0.5}, "languages": {"zh": {EC: 0}}}},
     f"thresholds.languages.zh.{EC}: 0"),
])
def test_a_card_whose_thresholds_are_not_numbers_strictly_between_0_and_1_is_refused(
        card: dict[str, Any], field: str) -> None:
    from monitor.decide import Thresholds

    with pytest.raises(ValueError) as refused:
        Thresholds.from_card(card)
    assert str(refused.value).startswith(field)
