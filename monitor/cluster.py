"""Near-duplicate clusters: the same story from several feeds shows once in the digest.

Two articles are near duplicates when the Jaccard similarity of their shingle sets is at
least ``THRESHOLD`` (0.5). Shingles are word 3-grams of the normalised title + text (lower
case, punctuation and agency tails such as "- Reuters" dropped); for Chinese and Japanese,
character 3-grams. Syndicated wire copy that an outlet re-headlines or trims keeps well
above 0.5; two different stories on the same subject ("China curbs gallium" from two
days) stay well below 0.3 (see tests/test_cluster.py for the pairs this was set on).

Candidates come from MinHash with LSH banding (64 hashes, 16 bands of 4 rows: a pair at
Jaccard 0.5 becomes a candidate with probability ≈ 0.65 per band, > 0.999 overall); each
candidate pair is then checked with the exact Jaccard, so there are no false merges.
Clusters are the connected components; each is named by its smallest article id.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence

THRESHOLD = 0.5
NUM_HASHES = 64
BANDS = 16
_PRIME = (1 << 61) - 1
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_TAIL = re.compile(r"\s[-–|]\s[^-–|]{2,40}$")


def shingles(title: str, text: str) -> frozenset[int]:
    """Hashed shingles of an article (word 3-grams; character 3-grams for CJK)."""
    doc = f"{_TAIL.sub('', title)} {text}".lower()
    if len(_CJK.findall(doc)) > len(doc) / 4:
        tokens = [c for c in doc if not c.isspace() and c.isalnum()]
    else:
        tokens = _WORD.findall(doc)
    if len(tokens) < 3:
        return frozenset({zlib.crc32(" ".join(tokens).encode())})
    return frozenset(zlib.crc32("\x1f".join(tokens[i:i + 3]).encode())
                     for i in range(len(tokens) - 2))


def jaccard(a: frozenset[int], b: frozenset[int]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)


def _signatures(sets: Sequence[frozenset[int]]):
    import numpy as np

    rng = np.random.default_rng(20250603)
    a = rng.integers(1, _PRIME, NUM_HASHES, dtype=np.uint64)
    b = rng.integers(0, _PRIME, NUM_HASHES, dtype=np.uint64)
    signatures = np.empty((len(sets), NUM_HASHES), dtype=np.uint64)
    for row, shingle_set in enumerate(sets):
        values = np.fromiter(shingle_set, dtype=np.uint64, count=len(shingle_set))
        hashed = (values[:, None] * a[None, :] + b[None, :]) % np.uint64(_PRIME)
        signatures[row] = hashed.min(axis=0)
    return signatures


def _candidate_pairs(sets: Sequence[frozenset[int]]) -> set[tuple[int, int]]:
    signatures = _signatures(sets)
    rows = NUM_HASHES // BANDS
    pairs: set[tuple[int, int]] = set()
    for band in range(BANDS):
        buckets: dict[bytes, list[int]] = defaultdict(list)
        block = signatures[:, band * rows:(band + 1) * rows]
        for index in range(len(sets)):
            buckets[block[index].tobytes()].append(index)
        for members in buckets.values():
            pairs.update((members[i], members[j]) for i in range(len(members))
                         for j in range(i + 1, len(members)))
    return pairs


def cluster(ids: Sequence[int], docs: Sequence[tuple[str, str]],
            threshold: float = THRESHOLD) -> dict[int, int]:
    """article id → cluster id (the smallest id of its cluster), for every id given."""
    sets = [shingles(title, text) for title, text in docs]
    pairs = ((i, j) for i, j in _candidate_pairs(sets) if jaccard(sets[i], sets[j]) >= threshold)
    groups: dict[int, list[int]] = defaultdict(list)
    for index, root in enumerate(components(len(ids), pairs if len(ids) > 1 else ())):
        groups[root].append(ids[index])
    return {member: min(members) for members in groups.values() for member in members}


def components(n: int, pairs: Iterable[tuple[int, int]]) -> list[int]:
    """For items 0..n-1 joined by ``pairs``, one representative item per connected
    component, per item (union-find with path halving)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in pairs:
        parent[root(i)] = root(j)
    return [root(i) for i in range(n)]
