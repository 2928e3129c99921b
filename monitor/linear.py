"""The trained model's arithmetic without scikit-learn: TF-IDF features and the logistic
regressions, for classifying in the poll.

The model is trained and saved by scikit-learn (``monitor train``, a skops file). Beside
it, ``save_model`` writes the same numbers as plain arrays (``classifier.linear.npz``:
each vectoriser's terms and idf weights, the coefficients and intercepts, a JSON spec);
the card records their SHA-256. Classifying with them gives the pipeline's probabilities
(to float rounding, tests/test_linear.py) at several times its speed, and the service
never imports scikit-learn (~100 MB, ~1 s): importing and loading this takes ~0.2 s.

Only the pipeline shape ``monitor train`` builds is exported: a ColumnTransformer of
TfidfVectorizers (analyzer "word" with a token pattern, or "char_wb"; no lowercasing or
accent stripping of their own, l2 norm, idf) feeding a one-vs-rest LogisticRegression per
topic. Anything else is not exported and the service uses scikit-learn as before.

Arrays are read with ``allow_pickle=False``: the file can hold numbers and strings only.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from itertools import repeat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 1
_ANALYZERS = ("word", "char_wb")


@dataclass
class _Block:
    """One vectoriser: which input column it reads, how it cuts terms, their weights."""

    column: int
    analyzer: str
    ngram: tuple[int, int]
    pattern: re.Pattern[str] | None
    sublinear: bool
    vocabulary: dict[str, int]         # term → column of the whole feature matrix
    idf: Any                           # numpy array, by term index within the block
    offset: int

    def terms(self, text: str) -> list[str]:
        low, high = self.ngram
        if self.analyzer == "char_wb":
            return _char_wb(text, low, high)
        assert self.pattern is not None
        tokens = self.pattern.findall(text)
        if high == 1:
            return tokens
        found = list(tokens) if low == 1 else []
        for n in range(max(low, 2), min(high, len(tokens)) + 1):
            found += [" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1)]
        return found

    def add_to(self, rows: Sequence[Sequence[str]], coef: Any, decision: Any) -> None:
        """Add this block's part of every row's decision (``decision``: rows × topics):
        its known terms' l2-normalised tf-idf values times their coefficients. The terms
        of a row are counted and looked up in C (Counter, map, list.extend); the
        arithmetic is numpy over the whole batch."""
        import numpy as np

        row_of: list[int] = []
        columns: list[int] = []
        counts: list[int] = []
        get = self.vocabulary.get
        for r, row in enumerate(rows):
            counted = Counter(self.terms(row[self.column]))
            columns.extend(map(get, counted, repeat(-1)))       # -1: not a feature
            counts.extend(counted.values())
            row_of.extend(repeat(r, len(counted)))
        all_columns = np.asarray(columns, dtype=np.int64)
        known = all_columns >= 0
        if not known.any():
            return
        rows_at = np.asarray(row_of, dtype=np.int64)[known]
        cols = all_columns[known]
        tf = np.asarray(counts, dtype=np.float64)[known]
        if self.sublinear:
            tf = 1.0 + np.log(tf)
        values = tf * self.idf[cols - self.offset]
        norms = np.sqrt(np.bincount(rows_at, weights=values * values, minlength=len(rows)))
        values /= norms[rows_at]
        for topic in range(decision.shape[1]):
            decision[:, topic] += np.bincount(rows_at, weights=values * coef[topic, cols],
                                              minlength=len(rows))


def _char_wb(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's ``char_wb`` n-grams: per whitespace-separated word, padded with a
    space either side; a word shorter than n gives itself once."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        length = len(padded)
        for n in range(low, high + 1):
            if length <= n:
                grams.append(padded)
                break
            grams += [padded[i:i + n] for i in range(length - n + 1)]
    return grams


class LinearModel:
    """The exported model: ``predict_proba(rows)`` as the pipeline's, one list per row."""

    def __init__(self, blocks: list[_Block], coef: Any, intercept: Any) -> None:
        self.blocks = blocks
        self.coef = coef                   # (topics, features)
        self.intercept = intercept         # (topics,)

    def predict_proba(self, rows: Sequence[Sequence[str]]) -> list[list[float]]:
        import numpy as np

        if len(rows) == 0:
            return []
        decision = np.tile(self.intercept, (len(rows), 1))
        for block in self.blocks:
            block.add_to(rows, self.coef, decision)
        return (1.0 / (1.0 + np.exp(-decision))).tolist()

    @classmethod
    def load(cls, path: Path) -> LinearModel:
        """Read an exported model; ValueError (with what is wrong) for a file that is not one."""
        import numpy as np

        with np.load(path, allow_pickle=False) as data:
            spec = json.loads(str(data["spec"]))
            if spec.get("format") != FORMAT:
                raise ValueError(f"format {spec.get('format')!r}, this code reads {FORMAT}")
            coef = np.asarray(data["coef"], dtype=np.float64)
            intercept = np.asarray(data["intercept"], dtype=np.float64)
            blocks, offset = [], 0
            for i, block in enumerate(spec["blocks"]):
                terms = data[f"terms_{i}"].tolist()
                idf = np.asarray(data[f"idf_{i}"], dtype=np.float64)
                if block["analyzer"] not in _ANALYZERS or len(terms) != len(idf):
                    raise ValueError(f"block {i}: unsupported or inconsistent")
                pattern = re.compile(block["token_pattern"]) if block["analyzer"] == "word" else None
                blocks.append(_Block(int(block["column"]), block["analyzer"],
                                     (int(block["ngram"][0]), int(block["ngram"][1])), pattern,
                                     bool(block["sublinear"]),
                                     {str(t): offset + j for j, t in enumerate(terms)}, idf, offset))
                offset += len(terms)
        if coef.ndim != 2 or coef.shape[1] != offset or intercept.shape != (coef.shape[0],):
            raise ValueError(f"coefficients {coef.shape} do not fit {offset} features")
        return cls(blocks, coef, intercept)


def export(pipeline: Any) -> dict[str, Any] | None:
    """The arrays of ``LinearModel.load``'s file for a fitted pipeline, or None when the
    pipeline is not of the shape this module computes."""
    import numpy as np

    try:
        features, clf = pipeline.named_steps["features"], pipeline.named_steps["clf"]
        transformers = [(v, c) for _name, v, c in features.transformers_ if not isinstance(v, str)]
        if getattr(clf.label_binarizer_, "y_type_", None) != "multilabel-indicator":
            return None
        arrays: dict[str, Any] = {}
        blocks = []
        for i, (vec, column) in enumerate(transformers):
            if (vec.analyzer not in _ANALYZERS or vec.lowercase or vec.strip_accents
                    or vec.preprocessor or vec.tokenizer or vec.stop_words or vec.binary
                    or vec.norm != "l2" or not vec.use_idf or not isinstance(column, int)):
                return None
            terms = sorted(vec.vocabulary_, key=vec.vocabulary_.__getitem__)
            arrays[f"terms_{i}"] = np.array(terms, dtype=str)
            arrays[f"idf_{i}"] = np.asarray(vec.idf_, dtype=np.float64)
            blocks.append({"column": column, "analyzer": vec.analyzer,
                           "ngram": list(vec.ngram_range), "token_pattern": vec.token_pattern,
                           "sublinear": bool(vec.sublinear_tf)})
        estimators = clf.estimators_
        if any(type(e).__name__ != "LogisticRegression" or e.coef_.shape[0] != 1 for e in estimators):
            return None
        arrays["coef"] = np.vstack([e.coef_[0] for e in estimators]).astype(np.float64)
        arrays["intercept"] = np.array([e.intercept_[0] for e in estimators], dtype=np.float64)
        arrays["spec"] = np.array(json.dumps({"format": FORMAT, "blocks": blocks}))
        return arrays
    except (AttributeError, KeyError, TypeError):
        return None
