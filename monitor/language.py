"""Language of an article as an ISO 639-1 code.

A hint from the feed or entry metadata ("en-US", "de_DE", "deu", "German") is normalised
and used when it is plausible: the text is too short to judge, or the language identifier
gives the hinted language a fair probability. Otherwise the language is detected with
py3langid, whose model ships inside its wheel (nothing is downloaded); it is imported and
loaded lazily, once per process, and restricted to ``_DETECTABLE``: languages that have an
ISO 639-1 code and a sizeable news output.
"""

from __future__ import annotations

import re
import threading

MIN_LETTERS = 20          # fewer letters than this: too short to contradict a hint
MIN_HINT_PROBABILITY = 0.1  # the hint is plausible when the identifier gives it this much
MAX_CHARS = 300           # detection reads the start of title + text only: on 20,000 items of the
                          # pool, 300 and 500 characters give the same language for all but one

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
_LETTER = re.compile(r"[^\W\d_]")


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
    doc = f"{title or ''}\n{text or ''}".strip()[:MAX_CHARS]
    code = normalise_hint(hint)
    if not doc:
        return None
    if code and len(_LETTER.findall(doc)) < MIN_LETTERS:
        return code
    ranking = _ranking(doc)
    best = next(iter(ranking))
    if code and (code == best or ranking.get(code, 0.0) >= MIN_HINT_PROBABILITY):
        return code
    return best


def _ranking(doc: str) -> dict[str, float]:
    """Probability of each ``_DETECTABLE`` language, best first (the identifier's softmax
    renormalised over these languages: the same as a softmax over them alone)."""
    ranking = [(lang, p) for lang, p in _identifier().rank(doc) if lang in _DETECTABLE]
    total = sum(p for _lang, p in ranking) or 1.0
    return {lang: p / total for lang, p in ranking}


_lock = threading.Lock()
_loaded: list = []  # the one py3langid LanguageIdentifier, once loaded


def _identifier():  # noqa: ANN202 - py3langid's LanguageIdentifier, imported lazily
    with _lock:
        if not _loaded:
            _loaded.append(_load_identifier())
    return _loaded[0]


def _load_identifier():  # noqa: ANN202
    """py3langid's identifier restricted to ``_DETECTABLE`` (its softmax over them alone is
    what ``_ranking`` computes anyway); the full table is dropped: half the memory (~14 MB)
    and half the scoring work."""
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    identifier = LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)
    identifier.set_languages(sorted(_DETECTABLE.intersection(identifier.nb_classes)))
    identifier._full_model = (identifier.nb_ptc, identifier.nb_pc, identifier.nb_classes)
    return identifier
