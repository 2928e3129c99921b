"""Scoring predictions against labelled records (LABELING.md format). Pure: no I/O.

``evaluate(gold, predicted)`` pairs records by ``id`` (when every record has a unique id)
or else by position, and returns a JSON-ready dict:

    {"items": 476,
     "flagged": {"precision", "recall", "f1", "support", "predicted", "tp", "fp", "fn"},
     "topics": {"critical-minerals": {...same keys...}, "export-controls": {...}},
     "languages": {"de": {"items": 120, "flagged": {...}, "topics": {...},
                          "countries": {...}}, ...},
     "countries": {...micro P/R/F1 over country codes...}}

``support`` counts gold positives, ``predicted`` predicted positives. A precision with no
predicted positives, a recall with no gold positives, or an F1 with neither, is ``None``
(shown as "-"), not 0. Countries are scored over the gold records that carry a
``countries`` list (``countries_items`` says how many) and only when the predictions carry
one too; when predictions do but no gold record does, ``countries_not_scored`` says why
instead of a score of 0 against labels nobody gave. The language of an item is the gold
``lang`` (else the predicted one, else "und").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from monitor import TOPICS

Record = Mapping[str, Any]


def evaluate(gold: Sequence[Record], predicted: Sequence[Record]) -> dict[str, Any]:
    """Precision, recall and F1 per topic, for flagged, per language, and for countries."""
    pairs = _pair(gold, predicted)
    report = _block(pairs)
    by_lang: dict[str, list[tuple[Record, Record]]] = {}
    for g, p in pairs:
        by_lang.setdefault(_lang(g, p), []).append((g, p))
    report["languages"] = {lang: _block(by_lang[lang]) for lang in sorted(by_lang)}
    if "countries" not in report and any("countries" in p for _, p in pairs):
        report["countries_not_scored"] = "no gold record has a countries list"
    return report


def _block(pairs: Sequence[tuple[Record, Record]]) -> dict[str, Any]:
    block: dict[str, Any] = {
        "items": len(pairs),
        "flagged": scores(_counts((bool(_topics(g)), bool(_topics(p))) for g, p in pairs)),
        "topics": {t: scores(_counts((t in _topics(g), t in _topics(p)) for g, p in pairs))
                   for t in TOPICS},
    }
    with_countries = [(g, p) for g, p in pairs
                      if g.get("countries") is not None and "countries" in p]
    if with_countries:
        block["countries"] = scores(_set_counts(with_countries))
        block["countries_items"] = len(with_countries)
    return block


def scores(counts: tuple[int, int, int]) -> dict[str, Any]:
    """P/R/F1 (None where undefined) from (tp, fp, fn)."""
    tp, fp, fn = counts
    return {
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
        "support": tp + fn,
        "predicted": tp + fp,
        "tp": tp, "fp": fp, "fn": fn,
    }


def _counts(outcomes: Iterable[tuple[bool, bool]]) -> tuple[int, int, int]:
    tp = fp = fn = 0
    for truth, guess in outcomes:
        tp += truth and guess
        fp += guess and not truth
        fn += truth and not guess
    return tp, fp, fn


def _set_counts(pairs: Iterable[tuple[Record, Record]]) -> tuple[int, int, int]:
    tp = fp = fn = 0
    for g, p in pairs:
        truth, guess = set(g.get("countries") or ()), set(p.get("countries") or ())
        tp, fp, fn = tp + len(truth & guess), fp + len(guess - truth), fn + len(truth - guess)
    return tp, fp, fn


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _topics(record: Record) -> set[str]:
    return set(record.get("topics") or ())


def _lang(gold: Record, predicted: Record) -> str:
    """The item's language for the per-language rows: "EN", "en-US" and "en" are one."""
    from monitor.parse import normalise_language

    given = gold.get("lang") or predicted.get("lang") or "und"
    return normalise_language(str(given)) or str(given)


def _pair(gold: Sequence[Record], predicted: Sequence[Record]
          ) -> list[tuple[Record, Record]]:
    """Pairs by id when every record has a unique id, else by position."""
    gold_ids, pred_ids = _ids(gold), _ids(predicted)
    if gold_ids is not None and pred_ids is not None:
        by_id = dict(zip(pred_ids, predicted))
        missing = [i for i in gold_ids if i not in by_id]
        if missing:
            raise ValueError(f"{len(missing)} gold records have no prediction, "
                             f"e.g. id {missing[0]!r}")
        return [(g, by_id[i]) for i, g in zip(gold_ids, gold)]
    if len(gold) != len(predicted):
        raise ValueError(f"{len(gold)} gold records but {len(predicted)} predictions")
    return list(zip(gold, predicted))


def _ids(records: Sequence[Record]) -> list[str] | None:
    ids = [str(r["id"]) for r in records if r.get("id") is not None]
    return ids if len(ids) == len(records) and len(set(ids)) == len(ids) else None


def format_report(report: Mapping[str, Any]) -> str:
    """A plain-text table of an ``evaluate`` report."""
    flagged = report["flagged"]
    lines = [f"{report['items']} items, {flagged['support']} flagged in the gold labels", ""]
    lines += _overall_table(report)
    if "countries_not_scored" in report:
        lines.append(f"countries not scored: {report['countries_not_scored']}")
    elif report.get("countries_items", report["items"]) < report["items"]:
        lines.append(f"countries scored over the {report['countries_items']} of {report['items']} "
                     "items whose gold record has a countries list")
    if report.get("languages"):
        lines += ["", *_language_table(report)]
    return "\n".join(lines)


def _overall_table(report: Mapping[str, Any]) -> list[str]:
    rows = [("flagged", report["flagged"])]
    rows += [(t, report["topics"][t]) for t in TOPICS]
    if "countries" in report:
        rows.append(("countries (micro)", report["countries"]))
    head = f"{'':<20}{'precision':>10}{'recall':>8}{'F1':>7}{'support':>9}{'predicted':>11}"
    body = [f"{name:<20}{_num(s['precision']):>10}{_num(s['recall']):>8}{_num(s['f1']):>7}"
            f"{s['support']:>9}{s['predicted']:>11}" for name, s in rows]
    return [head, *body]


def _language_table(report: Mapping[str, Any]) -> list[str]:
    languages = report["languages"]
    countries = any("countries" in b for b in languages.values())
    head = (f"{'language':<10}{'items':>6}{'flagged':>8}{'P':>7}{'R':>7}{'F1':>7}"
            f"{'minerals F1':>13}{'controls F1':>13}" + (f"{'countries F1':>14}" if countries
                                                          else ""))
    return [head, *(_language_row(lang, b, countries) for lang, b in languages.items())]


def _language_row(lang: str, block: Mapping[str, Any], countries: bool) -> str:
    f, topics = block["flagged"], block["topics"]
    row = (f"{lang:<10}{block['items']:>6}{f['support']:>8}{_num(f['precision']):>7}"
           f"{_num(f['recall']):>7}{_num(f['f1']):>7}"
           f"{_num(topics[TOPICS[0]]['f1']):>13}{_num(topics[TOPICS[1]]['f1']):>13}")
    if countries:
        row += f"{_num(block.get('countries', {}).get('f1')):>14}"
    return row


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
