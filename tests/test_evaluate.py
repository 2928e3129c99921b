"""Scoring predictions against gold labels."""

from __future__ import annotations

import pytest

from monitor.evaluate import evaluate, format_report, scores

CM, EC = "critical-minerals", "export-controls"

GOLD = [
    {"id": "a", "lang": "en", "topics": [CM], "countries": ["CN", "US"]},
    {"id": "b", "lang": "en", "topics": [CM, EC], "countries": ["CN"]},
    {"id": "c", "lang": "en", "topics": [], "countries": []},
    {"id": "d", "lang": "de", "topics": [EC], "countries": ["DE"]},
    {"id": "e", "lang": "de", "topics": [], "countries": ["FR"]},
]
PRED = [
    {"id": "a", "topics": [CM], "countries": ["CN"]},
    {"id": "b", "topics": [CM], "countries": ["CN"]},
    {"id": "c", "topics": [EC], "countries": ["JP"]},
    {"id": "d", "topics": [], "countries": ["DE"]},
    {"id": "e", "topics": [], "countries": ["FR"]},
]


def test_flagged_and_topic_scores() -> None:
    report = evaluate(GOLD, PRED)
    assert report["items"] == 5
    flagged = report["flagged"]
    assert (flagged["tp"], flagged["fp"], flagged["fn"]) == (2, 1, 1)
    assert flagged["precision"] == pytest.approx(2 / 3)
    assert flagged["recall"] == pytest.approx(2 / 3)
    assert flagged["f1"] == pytest.approx(2 / 3)
    assert report["topics"][CM] == scores((2, 0, 0))
    assert report["topics"][EC]["support"] == 2
    assert report["topics"][EC]["f1"] == 0.0


def test_per_language() -> None:
    report = evaluate(GOLD, PRED)
    assert list(report["languages"]) == ["de", "en"]
    de = report["languages"]["de"]
    assert de["items"] == 2
    assert de["flagged"]["recall"] == 0.0
    assert de["flagged"]["precision"] is None  # nothing predicted
    assert de["topics"][CM]["f1"] is None  # nothing to find, nothing found
    assert report["languages"]["en"]["flagged"]["f1"] == pytest.approx(0.8)


def test_countries_micro_overall_and_per_language() -> None:
    report = evaluate(GOLD, PRED)
    countries = report["countries"]
    assert (countries["tp"], countries["fp"], countries["fn"]) == (4, 1, 1)
    assert countries["f1"] == pytest.approx(0.8)
    assert report["languages"]["de"]["countries"]["f1"] == 1.0


def test_no_country_figures_without_predicted_countries() -> None:
    report = evaluate(GOLD, [{"id": p["id"], "topics": p["topics"]} for p in PRED])
    assert "countries" not in report
    assert "countries" not in report["languages"]["en"]


def test_countries_are_scored_only_over_gold_records_that_have_them() -> None:
    topic_only = [{k: v for k, v in g.items() if k != "countries"} for g in GOLD]
    report = evaluate(topic_only, PRED)
    assert "countries" not in report and "countries" not in report["languages"]["en"]
    assert report["countries_not_scored"] == "no gold record has a countries list"
    text = format_report(report)
    assert "countries (micro)" not in text and "countries F1" not in text
    assert "countries not scored: no gold record has a countries list" in text
    some = topic_only[:3] + GOLD[3:]                # only d and e (de) carry countries
    report = evaluate(some, PRED)
    assert (report["countries"]["tp"], report["countries"]["fp"], report["countries"]["fn"]) == (2, 0, 0)
    assert report["countries_items"] == 2 and "countries" not in report["languages"]["en"]
    assert "countries scored over the 2 of 5 items" in format_report(report)
    assert "countries scored over" not in format_report(evaluate(GOLD, PRED))


def test_pairs_by_id_whatever_the_order() -> None:
    assert evaluate(GOLD, list(reversed(PRED))) == evaluate(GOLD, PRED)


def test_pairs_by_position_without_ids() -> None:
    gold = [{"topics": [CM], "lang": "fr"}, {"topics": []}]
    report = evaluate(gold, [{"topics": [CM]}, {"topics": [CM]}])
    assert report["flagged"]["precision"] == 0.5
    assert list(report["languages"]) == ["fr", "und"]


def test_missing_prediction_is_an_error() -> None:
    with pytest.raises(ValueError, match="no prediction"):
        evaluate(GOLD, PRED[:-1] + [{"id": "zzz", "topics": []}])
    with pytest.raises(ValueError, match="2 gold records but 1 predictions"):
        evaluate([{"topics": []}, {"topics": []}], [{"topics": []}])


def test_empty_input() -> None:
    report = evaluate([], [])
    assert report["items"] == 0
    assert report["flagged"]["f1"] is None
    assert report["languages"] == {}


def test_scores_undefined_values_are_none() -> None:
    assert scores((0, 0, 0))["f1"] is None
    assert scores((0, 0, 3))["precision"] is None
    assert scores((0, 2, 0))["recall"] is None
    assert scores((0, 2, 0))["f1"] == 0.0


def test_format_report_is_a_readable_table() -> None:
    text = format_report(evaluate(GOLD, PRED))
    lines = text.splitlines()
    assert lines[0] == "5 items, 3 flagged in the gold labels"
    assert any(line.startswith("flagged") and "0.667" in line for line in lines)
    assert any(line.startswith("countries (micro)") and "0.800" in line for line in lines)
    assert any(line.startswith("de") and "-" in line for line in lines)
    assert "countries F1" in text


def test_format_report_without_countries() -> None:
    text = format_report(evaluate(GOLD, [{"id": p["id"], "topics": p["topics"]} for p in PRED]))
    assert "countries" not in text
