"""Near-duplicate clusters: the same story from several feeds shows once in the digest.

Within a language. Two articles are near duplicates when their shingle sets have a
Jaccard similarity of at least ``THRESHOLD`` (0.5), or when the smaller set (at least
``MIN_CONTAINED`` shingles) lies for ``CONTAINMENT`` (0.8) or more inside the larger: a
wire copy that an outlet trimmed by a sentence or two. Shingles are word 3-grams of the
normalised title + text (lower case, punctuation, agency tails such as "- Reuters" and
datelines such as "BEIJING (Reuters) -", "FRANKFURT (dpa-AFX) -" or "新华社北京6月3日电"
dropped); for Chinese and Japanese, character 3-grams. Two different stories on the same
subject ("China curbs gallium" from two days) stay well below 0.3 (see
tests/test_cluster.py for the pairs this was set on).

Candidates come from MinHash with LSH banding (64 hashes, 16 bands of 4 rows: a pair at
Jaccard 0.5 becomes a candidate with probability ≈ 0.65 per band, > 0.999 overall) and
from articles that open with the same words or carry the same headline (which is how a
trimmed copy is found whatever its Jaccard); each candidate pair is then checked exactly.
A cluster is a leader, the fullest article not yet taken, with the articles that are near
duplicates of it (not of each other in a chain); headlines naming minerals, or countries,
with none in common keep two articles apart. Each cluster is named by its smallest article
id.

Across languages (``merge_languages``): two articles in different languages are one
story when they were published the same day (in the digest's time zone), have the same
topics, name the same countries (at least one) and the same minerals, and their headlines
share an anchor that
is neither a country nor a mineral: a number of two or more digits ("25.000" = "25,000")
or a name in Latin letters ("Codelco", "KGHM"). Without such an anchor they stay apart:
"China curbs gallium" in English and "China: Gallium-Exporte sinken" in German the same
day are often two stories.
"""

from __future__ import annotations

import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import timezone, tzinfo

THRESHOLD = 0.5
CONTAINMENT = 0.8
MIN_CONTAINED = 12
LEDE_WORDS = 8            # articles opening with the same words are candidates
SAME_HEADLINE_WORDS = 6   # two articles carrying one headline this long are one story
MAX_BUCKET = 50           # a lede or headline shared by more is boilerplate, not a candidate source
NUM_HASHES = 64
BANDS = 16
_PRIME = (1 << 61) - 1
_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")
_TAIL = re.compile(r"\s[-–|]\s[^-–|]{2,40}$")
_DATELINES = (
    # BEIJING (Reuters) - / Frankfurt (dpa-AFX) – / WASHINGTON, June 3 (AP) —
    re.compile(r"^\s*[A-ZÄÖÜ][\w.'’ -]{1,40}?(?:,\s*[\w. ]{1,20}?)?\s*\([^()]{2,30}\)\s*[-–—:]\s*"),
    # WASHINGTON — / LONDON, June 3 -
    re.compile(r"^\s*[A-Z][A-Z.'’ ]{2,30}(?:,\s*[A-Z][a-z]{2,8}\.?\s+\d{1,2})?\s*[-–—]\s+"),
    # 新华社北京6月3日电 / 【财联社6月3日电】
    re.compile(r"^\s*[【\[]?[\u4e00-\u9fff]{2,12}\d{1,2}月\d{1,2}日[电讯][】\]]?\s*"),
)


def without_dateline(text: str) -> str:
    """The text without a wire dateline at its start."""
    for pattern in _DATELINES:
        cut = pattern.sub("", text, count=1)
        if cut is not text and len(cut) < len(text):
            return cut
    return text


def shingles(title: str, text: str) -> frozenset[int]:
    """Hashed shingles of an article (word 3-grams; character 3-grams for CJK)."""
    doc = f"{_TAIL.sub('', title)} {without_dateline(text)}".lower()
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


def near_duplicates(a: frozenset[int], b: frozenset[int], threshold: float = THRESHOLD) -> bool:
    """Jaccard at least ``threshold``, or the smaller set mostly inside the larger."""
    if not a or not b:
        return False
    common = len(a & b)
    if common / len(a | b) >= threshold:
        return True
    smaller = min(len(a), len(b))
    return smaller >= MIN_CONTAINED and common / smaller >= CONTAINMENT


def _headline(title: str) -> tuple[str, ...]:
    """A headline's words, agency tails and punctuation aside."""
    return tuple(_WORD.findall(_TAIL.sub("", title).lower()))


def _lede_pairs(docs: Sequence[tuple[str, str]],
                headlines: Sequence[tuple[str, ...]]) -> set[tuple[int, int]]:
    """Pairs of articles that open with the same words or carry the same headline."""
    buckets: dict[tuple, list[int]] = defaultdict(list)
    for index, (_, text) in enumerate(docs):
        words = _WORD.findall(without_dateline(text).lower())
        if len(words) >= LEDE_WORDS:
            buckets[("lede", *words[:LEDE_WORDS])].append(index)
        if len(headlines[index]) >= 4:
            buckets[("title", *headlines[index])].append(index)
    pairs: set[tuple[int, int]] = set()
    for members in buckets.values():
        if 1 < len(members) <= MAX_BUCKET:
            pairs.update((members[i], members[j]) for i in range(len(members))
                         for j in range(i + 1, len(members)))
    return pairs


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
    """article id → cluster id (the smallest id of its cluster), for every id given.

    Each cluster gathers the copies of its leader, the fullest article not yet taken
    (largest shingle set first): an article joins the leader it is a near duplicate of,
    never a chain of them, so that ten items sharing an agency's boilerplate are not one
    story for being each like the next. Two articles whose headlines name minerals, or
    countries, and none of them in common are different stories however alike their
    texts ("China imposes export controls on antimony" / "… on tungsten")."""
    sets = [shingles(title, text) for title, text in docs]
    headlines = [_headline(title) for title, _ in docs]
    candidates = _candidate_pairs(sets) | _lede_pairs(docs, headlines) if len(ids) > 1 else set()
    subjects: dict[int, tuple[frozenset[str], frozenset[str]]] = {}

    def subject(i: int) -> tuple[frozenset[str], frozenset[str]]:
        if i not in subjects:
            subjects[i] = headline_subject(docs[i][0])
        return subjects[i]

    copies: dict[int, list[int]] = defaultdict(list)
    for i, j in candidates:
        # two outlets running one wire headline of SAME_HEADLINE_WORDS or more over ledes of
        # their own are one story however little their texts share, but only when the
        # headline says what or where (a mineral, a country): a recurring title ("What you
        # need to know today", an exchange's "Change of Director's Interest Notice",
        # "Weekly price report - Lithium" / "- Cobalt" with the tail cut) heads different
        # stories, and two copies of one headline never name other subjects, so
        # _other_subjects cannot keep them apart. (Every such pair is a candidate: the
        # same headline of 4+ words is one of _lede_pairs' buckets.)
        copy = near_duplicates(sets[i], sets[j], threshold) or (
            len(headlines[i]) >= SAME_HEADLINE_WORDS and headlines[i] == headlines[j]
            and any(subject(i)))
        if copy and not _other_subjects(subject(i), subject(j)):
            copies[i].append(j)
            copies[j].append(i)
    leader: dict[int, int] = {}
    for i in sorted(range(len(ids)), key=lambda k: (-len(sets[k]), ids[k])):
        leaders = [j for j in copies[i] if leader.get(j) == j]
        leader[i] = max(leaders, key=lambda j: (jaccard(sets[i], sets[j]), -ids[j])) if leaders else i
    groups: dict[int, list[int]] = defaultdict(list)
    for index in range(len(ids)):
        groups[leader[index]].append(ids[index])
    return {member: min(members) for members in groups.values() for member in members}


def headline_subject(title: str) -> tuple[frozenset[str], frozenset[str]]:
    """The minerals and the countries a headline names."""
    from monitor.countries import extract_countries
    from monitor.minerals import extract_minerals

    title = _TAIL.sub("", title)
    minerals = {_FAMILY.get(m.code, m.code) for m in extract_minerals(title, "")}
    return (frozenset(minerals - {"critical-minerals"}),      # the general term names none
            frozenset(c.code for c in extract_countries(title, "")))


# a copy may name the family where the other names a member ("rare earths" / "neodymium")
_FAMILY = {m: "rare-earths" for m in ("neodymium", "praseodymium", "dysprosium", "terbium",
                                      "scandium", "yttrium", "magnets")}


def _other_subjects(a: tuple[frozenset[str], frozenset[str]],
                    b: tuple[frozenset[str], frozenset[str]]) -> bool:
    """Headlines that both name minerals (or both countries) and share none."""
    return any(x and y and not x & y for x, y in zip(a, b))


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


_NUMBER = re.compile(r"\d(?:[\d.,' ]*\d)?")
_NAME = re.compile(r"\b[A-Z][A-Za-z0-9&-]{2,}")
_YEAR = re.compile(r"^(19|20)\d\d$")
_COMMON = frozenset("the and for with from new neue neuer die der das und mit von les des une pour "
                    "con los las per nel nowe nowy".split())


def title_anchors(title: str) -> frozenset[str]:
    """What a headline shares with its translation: numbers of two or more digits (not
    years) and names in Latin letters, countries and minerals excepted."""
    from monitor.countries import extract_countries
    from monitor.minerals import extract_minerals

    title = _TAIL.sub("", title)
    found = {digits for digits in (re.sub(r"\D", "", n) for n in _NUMBER.findall(title))
             if len(digits) >= 2 and not _YEAR.match(digits)}
    for word in _NAME.findall(title):
        if word.casefold() in _COMMON or extract_countries(word, "") or extract_minerals(word, ""):
            continue
        found.add(word.casefold())
    return frozenset(found)


def merge_languages(clusters: dict[int, int], articles: Sequence,
                    zone: tzinfo = timezone.utc) -> dict[int, int]:
    """``clusters`` (article id → cluster id) with the clusters of one story told in two
    languages joined (the rule is in the module's docstring; "the same day" is a day of
    ``zone``, the digest's time zone, as the digest shows the times). ``articles``: objects
    with id, language, published, topics, countries, minerals and title (DigestArticle)."""
    groups: dict[tuple, list] = defaultdict(list)
    for a in articles:
        if a.countries and a.language:
            day = a.published.astimezone(zone).date()
            groups[(day, tuple(sorted(a.topics)), tuple(sorted(a.countries)),
                    tuple(sorted(a.minerals)))].append(a)
    names = sorted(set(clusters.values()))
    index = {name: i for i, name in enumerate(names)}
    pairs = []
    for members in groups.values():
        if len({m.language for m in members}) < 2:
            continue
        anchors = {m.id: title_anchors(m.title) for m in members}
        pairs += [(index[clusters[a.id]], index[clusters[b.id]])
                  for i, a in enumerate(members) for b in members[i + 1:]
                  if a.language != b.language and anchors[a.id] & anchors[b.id]]
    if not pairs:
        return clusters
    joined: dict[int, list[int]] = defaultdict(list)
    for i, root in enumerate(components(len(names), pairs)):
        joined[root].append(names[i])
    rename = {name: min(group) for group in joined.values() for name in group}
    return {article: rename[name] for article, name in clusters.items()}
