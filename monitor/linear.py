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

Each block whose shape allows it (``_TermIndex.covers``: the shipped model's word and
character blocks) also carries a term index (``units_``, ``slots_``, ``slot_columns_``):
terms as integers in a hash table, so that a batch is cut into terms, looked up and
counted by numpy rather than term by term in Python (~2× the speed of the model's
arithmetic, and its terms need not be loaded: 0.05 s instead of 0.12 s). An export
without it (older files) counts terms in Python, with the same results.

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

from monitor.keytable import KeyTable

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
                                       # (empty when the file's term index is read)
    idf: Any                           # numpy array, by term index within the block
    offset: int
    index: Any = None                  # _TermIndex: from the file, or built on first use
                                       # from the vocabulary; False: the shape has none

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
        its known terms' l2-normalised tf-idf values times their coefficients."""
        import numpy as np

        if self.index is None:
            self.index = _TermIndex.build(self) or False
        found = self.index.count(rows, self.column) if self.index else self._count(rows)
        if found is None:
            return
        rows_at, cols, tf = found
        if self.sublinear:
            tf = 1.0 + np.log(tf)
        values = tf * self.idf[cols - self.offset]
        norms = np.sqrt(np.bincount(rows_at, weights=values * values, minlength=len(rows)))
        values /= norms[rows_at]
        for topic in range(decision.shape[1]):
            decision[:, topic] += np.bincount(rows_at, weights=values * coef[topic, cols],
                                              minlength=len(rows))

    def _count(self, rows: Sequence[Sequence[str]]) -> tuple[Any, Any, Any] | None:
        """(row, column, count) of every known term of every row, or None when there is
        none: the terms of a row cut and counted in Python (Counter, map, list.extend),
        for the shapes ``_TermIndex`` does not cover."""
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
            return None
        return (np.asarray(row_of, dtype=np.int64)[known], all_columns[known],
                np.asarray(counts, dtype=np.float64)[known])


# Token patterns that never match whitespace: a word n-gram term then splits back into
# its tokens at its spaces (the shipped model's "\w+").
_SPACELESS_PATTERNS = frozenset({r"\w+", r"(?u)\b\w\w+\b"})


class _TermIndex:
    """A block's terms as integers, so that a whole batch is cut, looked up and counted
    by numpy instead of term by term in Python (same counts as ``_Block.terms``; tests
    compare both).

    Every term of the block is a sequence of at most ``n`` units — characters for
    ``char_wb``, tokens for ``word`` — and each unit has a number (1 and up; 0 is any
    unit the vocabulary does not hold), so a term is the integer ``n`` numbers of
    ``bits`` bits make, a term shorter than ``n`` padded with ``end``. A batch's text
    becomes one array of unit numbers; every window of the term lengths becomes an
    integer the same way, and a hash table of the term integers (``KeyTable``) finds the
    known ones; the (row, column) pairs are counted with ``np.unique``.

    Covered: ``char_wb`` with a single n-gram size (windows of the padded words: the
    text's words are joined by single spaces, so a window crossing two words has a space
    inside it, which no term has, and a word shorter than n - 1 characters is its own
    padded term), and ``word`` with a token pattern that never matches whitespace. Other
    shapes return None from ``build`` and are counted in Python."""

    def __init__(self, analyzer: str, ngram: tuple[int, int], units: list[str],
                 table_of_terms: KeyTable, pattern: re.Pattern[str] | None) -> None:
        self.analyzer, self.pattern = analyzer, pattern
        self.low, self.n = ngram
        self.units = {unit: number for number, unit in enumerate(units, start=1)}
        self.end = len(units) + 1                  # pads a term shorter than n
        self.bits = self.end.bit_length()
        self.table_of_terms = table_of_terms
        self.space = self.units.get(" ", 0)
        self.table: Any = None
        if analyzer == "char_wb":
            import numpy as np

            codes = [ord(c) for c in units]
            table = np.zeros(max(codes, default=0) + 2, dtype=np.int64)     # last: beyond
            table[codes] = list(self.units.values())
            self.table = table

    @staticmethod
    def covers(analyzer: str, ngram: tuple[int, int], pattern: re.Pattern[str] | None) -> bool:
        """Whether a block of this shape can be indexed."""
        low, high = ngram
        if analyzer == "char_wb":
            return low == high >= 2
        return pattern is not None and pattern.pattern in _SPACELESS_PATTERNS

    def arrays(self, i: int) -> dict[str, Any]:
        """What ``from_arrays`` reads back, as arrays of block ``i`` of the export file
        (columns counted within the block: ``build`` it from the block's own vocabulary)."""
        import numpy as np

        return {f"units_{i}": np.array(list(self.units), dtype=str),
                f"slots_{i}": self.table_of_terms.keys,
                f"slot_columns_{i}": self.table_of_terms.values}

    @classmethod
    def from_arrays(cls, block: _Block, units: list[str], slots: Any, columns: Any,
                    terms: int) -> _TermIndex:
        """The index ``arrays`` wrote; ValueError when the arrays cannot be one for a
        block of ``terms`` terms."""
        import numpy as np

        size = len(slots)
        used = slots >= 0
        if (not cls.covers(block.analyzer, block.ngram, block.pattern) or size < 16
                or size & (size - 1) or len(columns) != size or int(used.sum()) != terms
                or len(set(units)) != len(units) or "" in units
                or (used.any() and (columns[used].min() < 0 or columns[used].max() >= terms))):
            raise ValueError("its term index does not fit the block")
        table = KeyTable.from_arrays(np.asarray(slots, dtype=np.int64),
                                      np.asarray(columns, dtype=np.int64) + block.offset)
        return cls(block.analyzer, block.ngram, units, table, block.pattern)

    @classmethod
    def build(cls, block: _Block) -> _TermIndex | None:
        """The index of a block's vocabulary; None for a block it cannot cover. Built
        when the model is exported (``export``; ~0.3 s for the shipped model) and read
        back from the file after that."""
        import numpy as np

        low, high = block.ngram
        if not cls.covers(block.analyzer, block.ngram, block.pattern):
            return None
        terms = list(block.vocabulary)
        if block.analyzer == "char_wb":
            split = [list(term) for term in terms]
            if any(len(units) > high or "\0" in units for units in split):
                return None
        else:
            split = [term.split(" ") for term in terms]
            if any(not low <= len(units) <= high for units in split):
                return None
        extra = {" "} if block.analyzer == "char_wb" else set()
        names = sorted({unit for units in split for unit in units} | extra)
        numbers = {unit: number for number, unit in enumerate(names, start=1)}
        end = len(names) + 1
        bits = end.bit_length()
        if bits * high > 62 or any(name != name.rstrip("\0") for name in names):
            return None
        keys = np.array([_fold([numbers[u] for u in parts] + [end] * (high - len(parts)), bits)
                         for parts in split], dtype=np.int64)
        columns = np.array([block.vocabulary[t] for t in terms], dtype=np.int64)
        if len(np.unique(keys)) != len(keys):
            return None
        return cls(block.analyzer, block.ngram, names, KeyTable(keys, columns), block.pattern)

    def count(self, rows: Sequence[Sequence[str]], column: int) -> tuple[Any, Any, Any] | None:
        """(row, column, count) of every known term of every row, or None when none."""
        import numpy as np

        if self.analyzer == "char_wb":
            numbers, row_of = self._characters(rows, column)
            found = self._char_terms(numbers)
        else:
            numbers, row_of = self._tokens(rows, column)
            found = self._word_terms(numbers, row_of)
        if found is None:
            return None
        positions, columns = found
        width = int(columns.max()) + 1
        pairs, counts = np.unique(row_of[positions] * width + columns, return_counts=True)
        return pairs // width, pairs % width, counts.astype(np.float64)

    def _characters(self, rows: Sequence[Sequence[str]], column: int) -> tuple[Any, Any]:
        """Every row as " word word … " (words of ``str.split``, single spaces), all rows
        in one array of character numbers with a 0 after each row, and the row of each."""
        import numpy as np

        texts = [f" {' '.join(row[column].split())} " for row in rows]
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts)) + 1
        codes = np.frombuffer("\0".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
        numbers = np.zeros(len(codes) + 1, dtype=np.int64)
        numbers[:-1] = self.table[np.minimum(codes, len(self.table) - 1)]
        numbers[np.cumsum(lengths) - 1] = 0         # the separators, whatever character they are
        return numbers, np.repeat(np.arange(len(texts)), lengths)

    def _char_terms(self, numbers: Any) -> tuple[Any, Any] | None:

        n, space = self.n, self.space
        length = len(numbers)
        windows: list[tuple[Any, Any]] = []       # (window starts, their keys)
        if length >= n:             # windows with no separator and no space inside
            span = length - n + 1
            whole = numbers[:span] != 0
            for j in range(1, n):
                inner = numbers[j:span + j]
                whole &= inner != 0
                if j < n - 1:
                    whole &= inner != space
            windows.append(self._keyed(numbers, whole, n))
        for size in range(3, n):        # padded words shorter than n: " x " for n = 4
            if length < size:
                continue
            span = length - size + 1
            whole = (numbers[:span] == space) & (numbers[size - 1:] == space)
            for j in range(1, size - 1):
                inner = numbers[j:span + j]
                whole &= (inner != space) & (inner != 0)
            windows.append(self._keyed(numbers, whole, size))
        return self._look_up(windows)

    def _tokens(self, rows: Sequence[Sequence[str]], column: int) -> tuple[Any, Any]:
        """Every row's tokens as unit numbers (0: a token no term holds), one array for
        the batch, and the row of each token."""
        import numpy as np

        assert self.pattern is not None
        findall = self.pattern.findall
        tokens: list[str] = []
        lengths = []
        for row in rows:
            found = findall(row[column])
            tokens.extend(found)
            lengths.append(len(found))
        numbers = np.fromiter(map(self.units.get, tokens, repeat(0)), dtype=np.int64, count=len(tokens))
        return numbers, np.repeat(np.arange(len(rows)), lengths)

    def _word_terms(self, numbers: Any, row_of: Any) -> tuple[Any, Any] | None:

        length = len(numbers)
        windows: list[tuple[Any, Any]] = []       # (window starts, their keys)
        for size in range(self.low, self.n + 1):
            if length < size:
                continue
            span = length - size + 1
            whole = row_of[:span] == row_of[size - 1:]     # the n-gram stays within its row
            for j in range(size):
                whole &= numbers[j:span + j] != 0           # and holds known tokens only
            windows.append(self._keyed(numbers, whole, size))
        return self._look_up(windows)

    def _keyed(self, numbers: Any, whole: Any, size: int) -> tuple[Any, Any]:
        """The start of every window of ``size`` units that ``whole`` marks, and its key:
        its numbers packed ``bits`` apart, padded with ``end`` to ``n`` (as ``_fold``)."""
        import numpy as np

        at = np.flatnonzero(whole)
        key = numbers[at]
        for j in range(1, size):
            key <<= self.bits
            key |= numbers[at + j]
        for _ in range(self.n - size):
            key <<= self.bits
            key |= self.end
        return at, key

    def _look_up(self, windows: list[tuple[Any, Any]]) -> tuple[Any, Any] | None:
        """The starts of the windows whose keys are terms, and those terms' columns."""
        import numpy as np

        if not windows:
            return None
        columns = self.table_of_terms.get(np.concatenate([key for _, key in windows]))
        known = columns >= 0
        if not known.any():
            return None
        return np.concatenate([at for at, _ in windows])[known], columns[known]


def _fold(numbers: list[int], bits: int) -> int:
    key = 0
    for number in numbers:
        key = (key << bits) | number
    return key


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

    CHUNK = 256     # rows counted at once: a batch's arrays hold every character of its
                    # rows several times over, so a large batch is taken in parts

    def predict_proba(self, rows: Sequence[Sequence[str]]) -> list[list[float]]:
        import numpy as np

        if len(rows) == 0:
            return []
        decision = np.tile(self.intercept, (len(rows), 1))
        for start in range(0, len(rows), self.CHUNK):
            part = rows[start:start + self.CHUNK]
            for block in self.blocks:
                block.add_to(part, self.coef, decision[start:start + self.CHUNK])
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
                idf = np.asarray(data[f"idf_{i}"], dtype=np.float64)
                if block["analyzer"] not in _ANALYZERS:
                    raise ValueError(f"block {i}: unsupported analyzer")
                pattern = re.compile(block["token_pattern"]) if block["analyzer"] == "word" else None
                found = _Block(int(block["column"]), block["analyzer"],
                               (int(block["ngram"][0]), int(block["ngram"][1])), pattern,
                               bool(block["sublinear"]), {}, idf, offset)
                if f"units_{i}" in data.files:      # the term index: the terms are not needed
                    try:
                        found.index = _TermIndex.from_arrays(
                            found, data[f"units_{i}"].tolist(), data[f"slots_{i}"],
                            data[f"slot_columns_{i}"], len(idf))
                    except ValueError as exc:
                        raise ValueError(f"block {i}: {exc}") from None
                else:                               # an export without it: terms in Python
                    terms = data[f"terms_{i}"].tolist()
                    if len(terms) != len(idf):
                        raise ValueError(f"block {i}: {len(terms)} terms, {len(idf)} weights")
                    found.vocabulary = {str(t): offset + j for j, t in enumerate(terms)}
                blocks.append(found)
                offset += len(idf)
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
            pattern = re.compile(vec.token_pattern) if vec.analyzer == "word" else None
            index = _TermIndex.build(_Block(column, vec.analyzer, tuple(vec.ngram_range), pattern,
                                            bool(vec.sublinear_tf), dict(vec.vocabulary_),
                                            None, 0))
            if index is not None:
                arrays.update(index.arrays(i))
        estimators = clf.estimators_
        if any(type(e).__name__ != "LogisticRegression" or e.coef_.shape[0] != 1 for e in estimators):
            return None
        arrays["coef"] = np.vstack([e.coef_[0] for e in estimators]).astype(np.float64)
        arrays["intercept"] = np.array([e.intercept_[0] for e in estimators], dtype=np.float64)
        arrays["spec"] = np.array(json.dumps({"format": FORMAT, "blocks": blocks}))
        return arrays
    except (AttributeError, KeyError, TypeError):
        return None
