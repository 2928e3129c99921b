"""Language of an article as an ISO 639-1 code.

A hint from the feed or entry metadata ("en-US", "de_DE", "deu", "German") is normalised
and used when it is plausible: the text is too short to judge, or the language identifier
gives the hinted language a fair probability. Otherwise the language is detected with
py3langid, whose model ships inside its wheel (nothing is downloaded); it is imported and
loaded lazily, once per process (memory-mapped from an unpacked copy after the first time:
``monitor.langcache``), and restricted to ``_DETECTABLE``: languages that have an ISO 639-1
code and a sizeable news output.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
from array import array
from collections.abc import Sequence

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
        texts = [doc for _, doc, _ in asked]
        bests = [best for start in range(0, len(texts), IDENTIFY_CHUNK)
                 for best in _identify(texts[start:start + IDENTIFY_CHUNK])]
        for (position, doc, code), best in zip(asked, bests, strict=True):
            plausible = code and (code == best or _probability(identifier, doc, code) >= MIN_HINT_PROBABILITY)
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


def _identify(docs: list[str]) -> list[str]:
    """py3langid's ``classify(doc)[0]`` for each doc, the same answers, computed for all of
    them at once.

    py3langid walks a text's bytes through an Aho-Corasick automaton one byte at a time in
    Python (~0.27 µs a byte) and counts the features of the states it passes. The state
    after any byte is that of the longest suffix of the text that is a node of the
    automaton, so it depends only on the last ``depth`` bytes (its deepest node; 6 for
    py3langid 0.4's model, found when it is unpacked and cached, ``langcache``): walking
    ``depth`` steps from the start state over the bytes before each position gives the
    same state, and numpy does that for every position of every text at once. The
    features are counted per text and scored with py3langid's formula (naive Bayes, the
    softmax over the languages with their aliases folded), for all texts at once; sums
    taken in another order may differ in the last bits of a float, so an exact tie could
    go the other way: on 50,000 pool items the answers are all those of ``classify``."""
    identifier = _identifier()
    depth, arrays = _loaded[1:]
    if len(docs) < 2:
        return [identifier.classify(doc)[0] for doc in docs]
    import numpy as np

    texts = [identifier._encode(doc) for doc in docs]
    lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    data = np.frombuffer(b"".join(texts), dtype=np.uint8).astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    within = np.arange(len(data)) - np.repeat(starts, lengths)     # byte's place in its text
    nextmove, rowbase, output = arrays
    state = np.zeros(len(data), dtype=np.int64)
    for back in range(depth - 1, -1, -1):   # the byte `back` places before each position
        step = nextmove[rowbase[state] + np.roll(data, back)]
        state = np.where(within >= back, step, state)             # not before the text's start
    features = output[state]
    seen = np.flatnonzero(features >= 0)
    width = len(identifier.nb_ptc)
    row_of = np.repeat(np.arange(len(texts)), lengths)[seen]
    keys, counts = np.unique(row_of * width + features[seen], return_counts=True)
    rows, features = keys // width, keys % width
    weights = np.log1p(counts.astype(np.float32))[:, None] * identifier.nb_ptc[features]
    scores = np.zeros((len(texts), len(identifier.nb_pc)), dtype=np.float32)   # no feature:
    found = np.flatnonzero(np.bincount(rows, minlength=len(texts)))            # even scores
    if len(found):
        scores[found] = np.add.reduceat(weights, np.searchsorted(rows, found), axis=0)
        scores[found] += identifier.nb_pc
    scores *= (1.0 / np.sqrt(np.maximum(lengths, 1))).astype(np.float32)[:, None]
    scores = np.exp(scores - scores.max(axis=1, keepdims=True))
    scores /= scores.sum(axis=1, keepdims=True)
    for first_column, alias in identifier._alias_pairs:
        scores[:, first_column] += scores[:, alias]
        scores[:, alias] = 0.0
    return [identifier.nb_classes[i] for i in scores.argmax(axis=1).tolist()]


def _automaton_depth(identifier) -> int:  # noqa: ANN001 - py3langid's
    """The deepest node of the identifier's automaton, in bytes (breadth first from the
    start state: a state first reached at depth d + 1 from one at depth d is that one's
    child). ~0.15 s for py3langid 0.4's model (it reads the whole transition table): done
    when the model is unpacked, and kept in the cache beside it."""
    import numpy as np

    nextmove, rowbase, _ = _arrays(identifier)
    depth = np.full(len(rowbase), -1, dtype=np.int64)
    depth[0] = 0
    level, frontier = 0, np.zeros(1, dtype=np.int64)
    while len(frontier):
        found = []
        for start in range(0, len(frontier), 4096):     # ~8 MB of indices at a time
            part = frontier[start:start + 4096]
            reached = nextmove[rowbase[part][:, None] + np.arange(256)].ravel()
            found.append(np.unique(reached[depth[reached] < 0]))
        frontier = np.unique(np.concatenate(found)).astype(np.int64)
        level += 1
        depth[frontier] = level
    return level - 1


def _arrays(identifier):  # noqa: ANN001, ANN202 - py3langid's
    """Its automaton's tables as numpy arrays over the same memory (no copy)."""
    import numpy as np

    def view(table):  # noqa: ANN001, ANN202
        buffer = memoryview(table)
        return np.frombuffer(buffer, dtype=np.dtype(buffer.format))

    return view(identifier.tk_nextmove), view(identifier._rowbase), view(identifier.tk_output)


def _probability(identifier, doc: str, code: str) -> float:  # noqa: ANN001 - py3langid's
    """The identifier's probability of language ``code`` for ``doc`` (its softmax over the
    ``_DETECTABLE`` languages it is restricted to); 0 for a language it does not know."""
    return dict(identifier.rank(doc)).get(code, 0.0)


_lock = threading.Lock()
_loaded: list = []  # the one py3langid LanguageIdentifier, once loaded; its automaton's
                    # depth and its tables as numpy arrays


def _identifier():  # noqa: ANN202 - py3langid's LanguageIdentifier, imported lazily
    with _lock:
        if not _loaded:
            identifier, depth = _load_identifier()
            _loaded.extend([identifier, depth, _arrays(identifier)])
    return _loaded[0]


def cache_folder():  # noqa: ANN201 - a Path or None
    """Where this version keeps py3langid's unpacked model (``monitor.langcache``), or None
    when the cache is turned off."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    from monitor import langcache

    return langcache.folder_for(MODEL_DIR / MODEL_FILE, sorted(_DETECTABLE))


def _load_identifier():  # noqa: ANN202 - (py3langid's LanguageIdentifier, its depth)
    """py3langid's identifier restricted to ``_DETECTABLE`` (its softmax over them alone is
    what ``_probability`` reads anyway; half the memory and half the scoring work of the
    full table): memory-mapped from the unpacked copy in the cache folder when there is
    one (``monitor.langcache``), else unpacked from py3langid's file and the copy written."""
    from py3langid.langid import MODEL_DIR, MODEL_FILE, LanguageIdentifier

    from monitor import langcache

    model_file = MODEL_DIR / MODEL_FILE
    folder = None
    try:
        folder = cache_folder()
        tables = langcache.load(folder) if folder is not None else None
    except ValueError as exc:
        log.warning("language model cache not used, unpacking py3langid's model again: %s", exc)
        if folder is not None:
            shutil.rmtree(folder, ignore_errors=True)
        tables = None
    except OSError as exc:
        log.debug("language model cache not read: %s", exc)
        folder, tables = None, None
    if tables is not None:
        identifier = LanguageIdentifier(tables["ptc"], tables["pc"], tables["classes"],
                                        tables["nextmove"], tables["output"], norm_probs=True,
                                        tk_row=tables["row"])
        identifier._rowbase = array("q", identifier._rowbase)
        return identifier, tables["depth"]
    identifier = LanguageIdentifier.from_model_file(model_file, norm_probs=True)
    identifier.set_languages(sorted(_DETECTABLE.intersection(identifier.nb_classes)))
    identifier._full_model = (identifier.nb_ptc, identifier.nb_pc, identifier.nb_classes)
    # its DFA's per-state tables as machine integers rather than lists of int objects:
    # ~3 MB less and the walk over a text's bytes a little faster (same results)
    for name in ("_rowbase", "tk_output"):
        table = getattr(identifier, name, None)
        if isinstance(table, list):
            setattr(identifier, name, array("q", table))
    depth = _automaton_depth(identifier)
    if folder is not None:
        try:
            langcache.store(folder, identifier, depth)
        except OSError as exc:
            log.debug("language model cache not written to %s: %s", folder, exc)
    return identifier, depth
