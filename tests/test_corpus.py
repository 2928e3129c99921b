"""The training corpus: schema, labels, language shares, hard negatives, no near copies."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parents[1] / "models" / "corpus"
TOPICS = {"critical-minerals", "export-controls"}


@pytest.fixture(scope="module")
def records():
    rows = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            rows.append((f"{path.name}:{n}", json.loads(line)))
    return rows


def test_schema_and_label_vocabulary(records):
    ids = Counter(r["id"] for _, r in records)
    assert not [i for i, c in ids.items() if c > 1]
    for where, r in records:
        assert {"id", "lang", "title", "text", "topics", "countries"} <= set(r), where
        assert re.fullmatch(r"[a-z]{2}", r["lang"]), where
        assert r["title"] or r["text"], where
        assert set(r["topics"]) <= TOPICS, where
        assert r["countries"] == sorted(set(r["countries"])), where
        assert all(re.fullmatch(r"[A-Z]{2}", c) for c in r["countries"]), where
        if not r["topics"]:
            assert r.get("negative") in ("hard", "other"), where


def test_size_language_shares_and_label_mix(records):
    rows = [r for _, r in records]
    langs = Counter(r["lang"] for r in rows)
    assert len(rows) >= 1500
    assert langs["en"] / len(rows) >= 0.25 and langs["de"] / len(rows) >= 0.25
    for lang in ("fr", "es", "pl", "ja", "zh"):
        assert langs[lang] >= 60, lang
    for lang in ("it", "pt", "nl"):
        assert langs[lang] >= 20, lang
    assert langs["ko"] >= 100
    positive = sum(1 for r in rows if r["topics"]) / len(rows)
    assert 0.35 <= positive <= 0.45
    combos = Counter(tuple(sorted(r["topics"])) for r in rows)
    assert all(combos[c] >= 100 for c in [("critical-minerals",), ("export-controls",),
                                          ("critical-minerals", "export-controls")])
    negatives = [r for r in rows if not r["topics"]]
    assert sum(r["negative"] == "hard" for r in negatives) >= len(negatives) / 2


def _shingles(r):
    doc = (r["title"] + " " + r["text"]).lower()
    tokens = [c for c in doc if not c.isspace()] if r["lang"] in ("zh", "ja") else re.findall(r"\w+", doc)
    return {tuple(tokens[i:i + 3]) for i in range(len(tokens) - 2)}


def test_no_near_copies(records):
    rows = [r for _, r in records]
    sets = [_shingles(r) for r in rows]
    index = {}
    for i, s in enumerate(sets):                 # candidate pairs share a rare-ish shingle
        for g in s:
            index.setdefault(g, []).append(i)
    pairs = set()
    for members in index.values():
        if 1 < len(members) <= 40:
            pairs.update((a, b) for x, a in enumerate(members) for b in members[x + 1:])
    close = [(rows[a]["id"], rows[b]["id"]) for a, b in pairs
             if len(sets[a] & sets[b]) / len(sets[a] | sets[b]) > 0.6]
    assert close == []
