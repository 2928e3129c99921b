"""Language of an article as an ISO 639-1 code.

A hint from the feed or entry metadata ("en-US", "de_DE", "deu", "German") is normalised
and used when it is plausible: the text is too short to judge, or the language identifier
gives the hinted language a fair probability. Otherwise the language is detected with
py3langid's model, which ships inside its wheel (nothing is downloaded), read as an index of
its automaton (``_Identifier``: py3langid's answers, for many texts at once), loaded lazily,
once per process (memory-mapped from an unpacked copy after the first time:
``monitor.langcache``), and restricted to ``_DETECTABLE``: languages that have an ISO 639-1
code and a sizeable news output.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from collections.abc import Sequence
from typing import Any

log = logging.getLogger("monitor.language")

MIN_LETTERS = 20          # fewer letters than this: too short to contradict a hint
MIN_HINT_PROBABILITY = 0.1  # the hint is plausible when the identifier gives it this much
MAX_CHARS = 200           # detection reads the start of title + text only: on 12,000 pool items
                          # that the scripts do not decide (nearly all in Latin script), 200 and
                          # 300 characters give the same language for all but one (300 and 500:
                          # all but one of 20,000)
MIN_HAN = 20              # Han characters that make a text without kana or Hangul Chinese
IDENTIFY_CHUNK = 64       # texts identified at once (their features times the languages'
                          # weights are one array: ~3 MB for 64 texts)

_NAMES = {
    "english": "en", "german": "de", "deutsch": "de", "french": "fr", "français": "fr",
    "francais": "fr", "spanish": "es", "español": "es", "espanol": "es", "polish": "pl",
    "polski": "pl", "japanese": "ja", "chinese": "zh", "korean": "ko", "italian": "it",
    "italiano": "it", "portuguese": "pt", "português": "pt", "dutch": "nl",
    "nederlands": "nl", "russian": "ru", "ukrainian": "uk", "czech": "cs",
    "swedish": "sv", "turkish": "tr", "arabic": "ar", "vietnamese": "vi", "indonesian": "id",
}
_ALIASES = {  # ISO 639-2/3 codes and withdrawn two-letter codes
    "iw": "he", "in": "id", "ji": "yi", "heb": "he",
    "eng": "en", "deu": "de", "ger": "de", "fra": "fr", "fre": "fr", "spa": "es",
    "pol": "pl", "jpn": "ja", "zho": "zh", "chi": "zh", "cmn": "zh", "yue": "zh",
    "wuu": "zh", "kor": "ko", "ita": "it", "por": "pt", "nld": "nl", "dut": "nl",
    "rus": "ru", "ukr": "uk", "ces": "cs", "cze": "cs", "swe": "sv", "tur": "tr",
    "ara": "ar", "vie": "vi", "ind": "id", "nor": "no", "nob": "nb", "dan": "da",
    "fin": "fi", "hun": "hu", "ron": "ro", "rum": "ro", "ell": "el", "gre": "el",
}
# ISO 639-1 (the 183 two-letter codes, plus "nb"/"nn" Norwegian and "sh").
_ISO_639_1 = frozenset("""
aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv
cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho
hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku
kv kw ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn
no nr nv ny oc oj om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg sh si sk sl
sm sn so sq sr ss st su sv sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve
vi vo wa wo xh yi yo za zh zu""".split())
# Detection is restricted to languages with a sizeable news output: short English or
# German headlines are otherwise often taken for Latin, Occitan, Frisian or Luxembourgish.
# A feed's hint may still name any ISO 639-1 language.
_DETECTABLE = frozenset("""
af am ar az be bg bn bs ca cs cy da de el en es et eu fa fi fr ga gl gu he hi hr hu hy id
is it ja ka kk km kn ko lo lt lv mk ml mn mr ms my ne nl no pa pl ps pt ro ru si sk sl so
sq sr sv sw ta te th tl tr uk ur uz vi zh zu""".split())
_CODE = re.compile(r"[a-z]{2,3}")
_HANGUL = re.compile(r"[\u1100-\u11ff\u3130-\u318f\uac00-\ud7a3]")
_KANA = re.compile(r"[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_NOT_LETTERS = re.compile(r"[\W\d_]+")    # what is left after removing them: the letters


def normalise_hint(hint: str | None) -> str | None:
    """ISO 639-1 code for a language tag or name, or None when it is not one."""
    if not hint:
        return None
    value = hint.strip().lower()
    if value in _NAMES:
        return _NAMES[value]
    primary = re.split(r"[-_.@\s]", value, maxsplit=1)[0]
    if not _CODE.fullmatch(primary):
        return None
    code = _ALIASES.get(primary, primary)
    return code if code in _ISO_639_1 else None


def detect_language(title: str, text: str, hint: str | None = None) -> str | None:
    """ISO 639-1 code of the article's language; None when title and text are empty."""
    return detect_languages([(title, text, hint)])[0]


def detect_languages(docs: Sequence[tuple[str, str, str | None]]) -> list[str | None]:
    """``detect_language`` for each (title, text, hint), in order; the texts the scripts
    do not decide go to the identifier together (``_identify``)."""
    found: list[str | None] = []
    asked: list[tuple[int, str, str | None]] = []      # (position, text, hint's code)
    for title, text, hint in docs:
        doc = f"{title or ''}\n{text or ''}".strip()[:MAX_CHARS]
        code = normalise_hint(hint)
        letters = len(_NOT_LETTERS.sub("", doc)) if doc else 0
        if not doc or (code and letters < MIN_LETTERS):
            found.append(code if doc else None)
            continue
        found.append(_by_script(doc, letters, code))
        if found[-1] is None:
            asked.append((len(found) - 1, doc, code))
    if asked:
        identifier = _identifier()
        for start in range(0, len(asked), IDENTIFY_CHUNK):
            part = asked[start:start + IDENTIFY_CHUNK]
            probabilities = identifier.probabilities([doc for _, doc, _ in part])
            for (position, _, code), row in zip(part, probabilities, strict=True):
                best = identifier.classes[int(row.argmax())]
                plausible = code and (code == best or identifier.probability(row, code) >= MIN_HINT_PROBABILITY)
                found[position] = code if plausible else best
    return found


def _by_script(doc: str, letters: int, hint: str | None) -> str | None:
    """Korean, Japanese or Chinese told apart by their scripts, where that is certain: mostly
    Hangul is Korean; Han with kana is Japanese (the identifier takes short Japanese
    headlines with one kana, "中国住宅、47都市で下落", for Chinese); at least ``MIN_HAN`` Han
    characters, most of the letters, without kana or Hangul and not hinted Japanese or
    Korean, are Chinese. Anything else (None) goes to the identifier. On the pool's 23,700
    items that these rules decide, they and the identifier disagree on 14 short Japanese
    headlines; they are also the identifier's slowest texts (three bytes a character)."""
    if not letters or max(doc) < "\u1100":          # no character of these scripts at all
        return None
    hangul = len(_HANGUL.findall(doc))
    if hangul * 2 > letters:
        return "ko"
    kana, han = len(_KANA.findall(doc)), len(_HAN.findall(doc))
    if kana and (kana + han) * 2 > letters and kana * 20 >= han:
        return "ja"
    if (han >= MIN_HAN and han * 2 > letters and not kana and not hangul
            and hint not in ("ja", "ko")):
        return "zh"
    return None


class _Identifier:
    """py3langid's model, read without its automaton: the same answers from an index of
    the automaton's nodes.

    py3langid walks a text's bytes through an automaton (one state per node of a trie of
    byte strings of up to ``depth`` bytes, 6 for py3langid 0.4's model) and counts the
    feature of each state it passes, if the state has one. The state after a byte is the
    node of the longest suffix of the text that is in the trie (checked when the model is
    unpacked, ``_index``, and for every state and byte in the tests), so the index maps each node's bytes
    to its feature and, for every position of every text at once, numpy looks up the
    suffixes of 1 to ``depth`` bytes ending there and keeps the longest found. The features
    are counted per text and scored with py3langid's formula (naive Bayes, the softmax
    over the languages, aliases folded); sums taken in another order may differ in the
    last bits of a float, so an exact tie could go the other way: on 50,000 pool items the
    answers are all those of its ``classify``. The index (a hash table a quarter full)
    takes 6 MB where the automaton's tables took 40, most of which a day's texts read:
    a process that identifies languages holds ~28 MB less, at ~3/4 of the speed."""

    def __init__(self, arrays: dict[str, Any], classes: list[str], depth: int) -> None:
        import numpy as np
        from py3langid.langid import LanguageIdentifier

        from monitor.keytable import KeyTable

        self.classes, self.depth = classes, depth
        # plain ndarray views of the cache's memory maps: indexing a np.memmap goes through
        # its Python-level __getitem__ (~10 µs a call, a dozen calls a batch)
        keys, values, ptc, pc = (np.asarray(arrays[name])
                                 for name in ("keys", "values", "ptc", "pc"))
        self.table = KeyTable.from_arrays(keys, values)
        every = np.arange(1 << 16, dtype=np.int64)
        self.single = self.table.get(every[:256] | (1 << 56))       # -1: not a node
        self.pairs = self.table.get(every | (2 << 56))
        self.ptc, self.pc = ptc, pc
        self.encode = LanguageIdentifier._encode       # NFC, lower case if all upper, UTF-8
        first: dict[str, int] = {}
        self.aliases = [(first.setdefault(code, i), i) for i, code in enumerate(classes)
                        if first.setdefault(code, i) != i]

    def probabilities(self, docs: Sequence[str]) -> Any:
        """Each doc's probability of every language (a row per doc, ``classes`` order; an
        alias's column folded into its language's first)."""
        import numpy as np

        texts = [self.encode(doc) for doc in docs]
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        data = np.frombuffer(b"".join(texts), dtype=np.uint8).astype(np.int64)
        starts = np.cumsum(lengths) - lengths
        within = np.arange(len(data)) - np.repeat(starts, lengths)     # byte's place in its text
        value = self._longest_nodes(data, within)
        seen = np.flatnonzero(value > 0)
        width = len(self.ptc)
        row_of = np.repeat(np.arange(len(texts)), lengths)[seen]
        keys, counts = np.unique(row_of * width + value[seen] - 1, return_counts=True)
        rows, features = keys // width, keys % width
        weights = np.log1p(counts.astype(np.float32))[:, None] * self.ptc[features]
        scores = np.zeros((len(texts), len(self.pc)), dtype=np.float32)   # no feature:
        found = np.flatnonzero(np.bincount(rows, minlength=len(texts)))  # even scores
        if len(found):
            scores[found] = np.add.reduceat(weights, np.searchsorted(rows, found), axis=0)
            scores[found] += self.pc
        scores *= (1.0 / np.sqrt(np.maximum(lengths, 1))).astype(np.float32)[:, None]
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        scores /= scores.sum(axis=1, keepdims=True)
        for first, alias in self.aliases:
            scores[:, first] += scores[:, alias]
            scores[:, alias] = 0.0
        return scores

    def _longest_nodes(self, data: Any, within: Any) -> Any:
        """For each byte of ``data`` (``within``: its place in its text), the feature + 1
        of the longest node that the text's bytes up to it end with; 0 when that node
        has no feature or there is none. A node's bytes less the last are a node too, so
        the suffix of n + 1 bytes at a position is only looked up where the suffix of n
        bytes before it was found; one and two bytes are looked up in plain arrays."""
        import numpy as np

        value = self.single[data]
        found = np.flatnonzero(value >= 0)
        key = data[found]
        for size in range(2, self.depth + 1):
            found = found + 1
            kept = found < len(data)
            kept[kept] = within[found[kept]] > 0                  # the same text
            found, key = found[kept], (key[kept] << 8) | data[found[kept]]
            if size == 2:
                got = self.pairs[key]
            else:
                got = self.table.get(key | (size << 56))
            hit = got >= 0
            found, key = found[hit], key[hit]
            value[found] = got[hit]
        return np.maximum(value, 0)

    def identify(self, docs: Sequence[str]) -> list[str]:
        """The most probable language of each doc (py3langid's ``classify(doc)[0]``)."""
        return [self.classes[i] for i in self.probabilities(docs).argmax(axis=1).tolist()]

    def probability(self, row: Any, code: str) -> float:
        """Language ``code``'s probability in a row of ``probabilities`` (py3langid's
        ``rank``); 0 for a language the identifier does not detect."""
        return float(row[self.classes.index(code)]) if code in self.classes else 0.0


def _index(identifier, check_every: int = 61) -> tuple[dict[str, Any], int]:  # noqa: ANN001
    """The arrays of ``_Identifier`` from py3langid's identifier (restricted to the
    languages detected), and the longest node's length in bytes.

    The nodes are found breadth first from the start state: a state first reached at
    depth d + 1 from one at depth d is a child of that one, its bytes the parent's and
    one more. A node's key is its bytes as an integer (the last byte lowest) with their
    number above bit 56. The transitions of every ``check_every``-th state are checked to
    lead to the node of the longest suffix of their bytes (all of them in the tests); a
    model for which that does not hold, or with nodes of more than 7 bytes, cannot be read
    this way: RuntimeError. ~1.2 s for py3langid 0.4's model, once: the result is cached
    (``monitor.langcache``)."""
    import numpy as np

    from monitor.keytable import KeyTable
    from monitor.langcache import MAX_DEPTH

    moves = memoryview(identifier.tk_nextmove)
    nextmove = np.frombuffer(moves, dtype=np.dtype(moves.format)).astype(np.int64)
    rowbase = np.array(identifier._rowbase, dtype=np.int64)
    output = np.array(identifier.tk_output, dtype=np.int64)
    states = len(rowbase)
    label = np.zeros(states, dtype=np.int64)       # a node's bytes, the last one lowest
    length = np.full(states, -1, dtype=np.int64)
    length[0] = 0
    frontier = np.zeros(1, dtype=np.int64)
    while len(frontier):
        reached = []
        for start in range(0, len(frontier), 4096):        # ~8 MB of indices at a time
            parent, byte = _transitions(frontier[start:start + 4096])
            child = nextmove[rowbase[parent] + byte]
            new = length[child] < 0
            child, first = np.unique(child[new], return_index=True)
            parent, byte = parent[new][first], byte[new][first]
            if len(parent) and int(length[parent].max()) >= MAX_DEPTH:
                raise RuntimeError(f"py3langid's model has nodes longer than {MAX_DEPTH} bytes")
            label[child] = (label[parent] << 8) | byte
            length[child] = length[parent] + 1
            reached.append(child)
        frontier = np.unique(np.concatenate(reached))
    if (length < 0).any():
        raise RuntimeError("py3langid's automaton has states its start state does not reach")
    depth = int(length.max())
    nodes = KeyTable(label[1:] | (length[1:] << 56), np.arange(1, states), room=4)
    _check_suffixes(nodes, nextmove, rowbase, label, length, depth,
                    np.arange(0, states, check_every))
    features = np.where(nodes.keys >= 0, output[nodes.values] + 1, 0)   # 0: no feature
    arrays = {"keys": nodes.keys, "values": features.astype(np.int32),
              "ptc": np.ascontiguousarray(identifier.nb_ptc),
              "pc": np.asarray(identifier.nb_pc)}
    return arrays, depth


def _transitions(states):  # noqa: ANN001, ANN202 - arrays
    """(state, byte) for every byte after each of ``states``."""
    import numpy as np

    return np.repeat(states, 256), np.tile(np.arange(256), len(states))


def _check_suffixes(nodes, nextmove, rowbase, label, length, depth: int, states) -> None:  # noqa: ANN001
    """RuntimeError unless every transition from ``states`` leads to the node (its number
    in ``nodes``; 0 the start state) of the longest suffix of the state's bytes and the
    byte read."""
    import numpy as np

    for start in range(0, len(states), 4096):
        parent, byte = _transitions(states[start:start + 4096])
        suffix = ((label[parent] << 8) | byte) & ((1 << (8 * depth)) - 1)
        longest = np.zeros(len(parent), dtype=np.int64)
        for size in range(1, depth + 1):
            at = np.flatnonzero(length[parent] + 1 >= size)
            got = nodes.get((suffix[at] & ((1 << (8 * size)) - 1)) | (size << 56))
            longest[at[got >= 0]] = got[got >= 0]
        if not np.array_equal(longest, nextmove[rowbase[parent] + byte]):
            raise RuntimeError("py3langid's automaton is not the one of its nodes' suffixes")


_lock = threading.Lock()
_loaded: list = []  # the one _Identifier, once loaded


def _identifier() -> _Identifier:
    with _lock:
        if not _loaded:
            _loaded.append(_load_identifier())
    return _loaded[0]


def cache_folder():  # noqa: ANN201 - a Path or None
    """Where this version keeps py3langid's unpacked model (``monitor.langcache``), or None
    when the cache is turned off."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    from monitor import langcache

    return langcache.folder_for(MODEL_DIR / MODEL_FILE, sorted(_DETECTABLE))


def _load_identifier() -> _Identifier:
    """py3langid's model restricted to ``_DETECTABLE`` (its softmax over them alone is what
    ``_Identifier.probability`` reads anyway; half the memory and half the scoring work of
    the full table), memory-mapped from the unpacked copy in the cache folder when there
    is one (``monitor.langcache``), else unpacked and indexed from py3langid's file and the
    copy written."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    from monitor import langcache

    folder = None
    try:
        folder = cache_folder()
        cached = langcache.load(folder) if folder is not None else None
    except ValueError as exc:
        log.warning("language model cache not used, unpacking py3langid's model again: %s", exc)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        cached = None
    except OSError as exc:
        log.debug("language model cache not read: %s", exc)
        folder, cached = None, None
    if cached is not None:
        return _Identifier(cached, cached["classes"], cached["depth"])
    model = LanguageIdentifier.from_model_file(MODEL_DIR / MODEL_FILE, norm_probs=True)
    model.set_languages(sorted(_DETECTABLE.intersection(model.nb_classes)))
    arrays, depth = _index(model)
    classes = list(model.nb_classes)
    del model
    if folder is not None:
        try:
            langcache.store(folder, arrays, classes, depth)
        except OSError as exc:
            log.debug("language model cache not written to %s: %s", folder, exc)
    return _Identifier(arrays, classes, depth)
