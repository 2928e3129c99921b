"""Parsing fetched feed bytes into plain-text articles (the only module using feedparser).

An article is plain text: HTML stripped, entities decoded, whitespace folded. Its URL is
canonical (scheme and host lower-cased, default port, fragment and tracking parameters
removed). Its identity within a feed is its guid together with its URL, else its URL, else
its title and publish date, else a hash of its text (see :func:`article_key`; a relative
guid or URL read against the feed's key base, its URL for display against where the
document came from: see :func:`read_feed`); stories
under one such key in a document (a guid and link reused for every item) are each known by
it with their title (see :func:`titled_key`), wherever they stand. A date
whose fields are out of range is no date (see :func:`sane_date`).

Hostile documents (before feedparser sees the bytes, see :func:`defuse`):
- The document is decoded the way feedparser decodes it (HTTP charset, BOM, prolog), so
  what follows holds in every encoding, UTF-16 and UTF-7 included.
- A DTD's internal subset is removed, and any ``<!ENTITY`` left before the root element:
  no declared entity is ever expanded (no "billion laughs", no quadratic blow-up of one
  large entity referenced many times) and no external entity is read (XXE). feedparser
  already refuses external entities and nested ones, but lets one large flat entity
  through, which expat then expands up to a hundredfold. A feed that relied on a declared
  entity such as ``&nbsp;`` is parsed by feedparser's lenient parser, which knows the
  HTML entities.
- Control characters that XML forbids are dropped, as bytes and as numeric character
  references, and so is a reference to a lone surrogate or past U+10FFFF (a surrogate
  pair written as two references becomes its character): the strict parser does not
  fail on them, and no NUL or surrogate reaches the store.
- A document whose first bytes are ASCII (``<?xml``, ``<rss``) cannot be UTF-16 or
  UTF-32, whatever its prolog or Content-Type claims: such a claim is ignored.
- At most ``MAX_ENTRIES`` (1,000) entries are read per fetch, the first ones in document
  order (feeds list the newest first): the document is cut before the next entry, so
  parsing time and memory do not grow with a feed of 100,000 items. The cut is one of the
  notes :func:`read_feed` returns (the poll logs them as warnings).
- A document that does not decode in the encoding it declares is read as mostly-UTF-8 or
  in the encoding chardet detects, and a note says so (see :func:`_readable`).
- Under a server's single-byte charset label (ISO-8859-1, windows-1252 …), a document is
  read as UTF-8 when it is valid UTF-8 (see :func:`_utf8_under_legacy_label`); under a
  server's default one (ISO-8859-1, windows-1252, ISO-8859-15, US-ASCII, not a regional
  one such as windows-1251), in the multi-byte encoding its XML declaration names (GB2312
  and GBK read as GB18030, Big5, Shift_JIS, EUC-KR …) when it reads as Chinese, Japanese
  or Korean in it and not as natural text in the header's charset (see
  :func:`_multibyte_under_legacy_label`); a note says so.
- Titles are cut at ``MAX_TITLE`` characters and text at ``MAX_TEXT``; an entry's HTML is
  read up to ``MAX_HTML`` characters. Control characters, NUL and lone surrogates never
  reach the store (titles, text, guids and URLs).
"""

from __future__ import annotations

import calendar
import dataclasses
import functools
import hashlib
import itertools
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timezone
from xml.parsers import expat
from xml.sax import SAXParseException
from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit, urlunsplit

from monitor.exceptions import FeedError
from monitor.types import ParsedArticle

MAX_TITLE = 1_000
MAX_PUBLISHER = 120
MAX_TEXT = 20_000
MAX_HTML = 1_000_000              # characters of one entry's HTML read to find MAX_TEXT of text
MAX_ENTRIES = 1_000               # entries read per fetch, the first in document order
TRACKING = re.compile(r"^(utm_\w*|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|yclid|_hsenc|_hsmi|"
                      r"igshid|ocid|cmpid|icid|ncid|sr_share|wt\.mc_id|at_medium|at_campaign)$", re.I)
_BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
          "table", "blockquote", "section", "article", "figure", "figcaption", "pre", "hr"}
_SKIP = {"script", "style", "noscript", "iframe", "object", "template", "head"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff\ud800-\udfff]")
_SPACE = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
_URL_JUNK = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
_PROLOG_ITEM = re.compile(rb"\s*(?:<\?.*?\?>|<!--.*?-->)", re.S)
_DTD_TOKEN = re.compile(rb"\"[^\"]*\"|'[^']*'|<!--.*?-->|<\?.*?\?>|[\[\]>]", re.S)
_FIRST_ELEMENT = re.compile(rb"<\w")
_SPACES = re.compile(rb"\s*")
_ENTITY_DECL = re.compile(rb"<!ENTITY[^>]*>?")
_C0_CONTROLS = bytes(set(range(32)) - {9, 10, 13})
_WIDE = rb"(?:utf|ucs)[-_]?(?:16|32|2|4)[\w-]*"
_WIDE_PROLOG = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])" + _WIDE + rb"([\"'])", re.I)
_CHAR_REF = re.compile(rb"&#([xX][0-9a-fA-F]+|[0-9]+);(?:&#([xX][0-9a-fA-F]+|[0-9]+);)?")
_ENTRY_TAG = re.compile(rb"<(?:[\w.-]+:)?(?:item|entry)[\s/>]")


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in _SKIP:
            self._skip += 1
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in _SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in _BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(value: str | None, limit: int = MAX_TEXT) -> str:
    """Plain text from an HTML fragment: tags dropped, entities decoded, spaces folded."""
    if not value:
        return ""
    value = value[:MAX_HTML]
    if "<" in value:
        extractor = _TextExtractor()
        extractor.feed(value)
        extractor.close()
        value = "".join(extractor.parts)
    else:
        value = unescape(value)
    return fold_whitespace(value)[:limit]


def fold_whitespace(value: str) -> str:
    """Control characters dropped, runs of spaces folded to one, lines stripped, empty
    lines dropped."""
    value = _SPACE.sub(" ", _CONTROL.sub("", value))
    if "\n" not in value:
        return value.strip()
    return "\n".join(filter(None, (line.strip() for line in value.split("\n"))))


def one_line(value: str, limit: int = MAX_TITLE) -> str:
    """All whitespace (str.split's, which covers _SPACE and line breaks) folded to one
    space, control characters dropped."""
    return " ".join(_CONTROL.sub("", value).split())[:limit]


def canonical_url(url: str | None) -> str | None:
    """Scheme/host lower-cased, default port and fragment dropped, tracking params removed."""
    if not url:
        return None
    url = _URL_JUNK.sub("", url).strip()
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = parts.query
    if query:
        query = urlencode([(k, v) for k, v in parse_qsl(query, keep_blank_values=True)
                           if not TRACKING.match(k)], doseq=True)
    return urlunsplit((scheme, host, parts.path or "/", query, ""))


def display_url(url: str | None) -> str | None:
    """The link kept for an analyst to follow: ``canonical_url``'s scheme, host and path,
    tracking parameters removed, but every other piece of the query kept as sent
    (``index.php?/archives/123``, ``news.php?12345``, ``id=7;lang=en`` lead to the story
    only as they are) and a fragment that is a page's route (``#/news/42``, ``#!/…``)
    kept. ``canonical_url`` of it is ``canonical_url`` of ``url``: identity (article keys,
    matching reviews to labels) is unchanged."""
    canonical = canonical_url(url)
    if canonical is None or url is None:
        return None
    parts = urlsplit(_URL_JUNK.sub("", url).strip())
    query = "&".join(piece for piece in parts.query.split("&")
                     if piece and not TRACKING.match(unquote_plus(piece.partition("=")[0])))
    fragment = parts.fragment if parts.fragment.startswith(("/", "!")) else ""
    scheme, host, path, _query, _fragment = urlsplit(canonical)
    return urlunsplit((scheme, host, path, query, fragment))


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def article_key(guid: str | None, url: str | None, digest: str, title: str = "",
                published: datetime | None = None, shared_link: bool = False) -> str:
    """Identity within a feed: guid+URL, guid, URL, else title and publish date, else the
    content hash.

    guid and URL together, because some feeds reuse one guid for different stories. An
    item with neither is known by its title and date, so that editing its text updates it
    instead of adding a copy on every poll; by its content only when it has no title. A
    ``shared_link`` (the site's or the feed's home page, which many feeds give every item)
    names no story: without a guid, such an item is known by the link with its title and
    date, so that the stories of one page are neither merged nor overwritten."""
    if guid and url:
        return f"g:{guid}|{url}"[:1000]
    if guid:
        return f"g:{guid}"[:1000]
    if url and not shared_link:
        return f"u:{url}"[:1000]
    if title:
        day = published.date().isoformat() if published else ""
        named = "t:" + _hashed(f"{title}\n{day}")
    else:
        named = f"h:{digest}"
    return f"u:{url[:900]}|{named}" if url else named


def titled_key(key: str, title: str) -> str:
    """The key of a story under a ``key`` that other stories of its feed share (a guid and
    link reused for every item): that key with its title's hash."""
    return f"{key[:900]}|t:{_hashed(title)}"


def _hashed(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def is_shared_link(url: str, home: str | None, feed_url: str | None) -> bool:
    """Whether an item's link is a page every item may share: a site's root (no path or an
    index page, no query), the feed's own home page (its channel link) or the feed's
    address — compared without scheme, case of the host or a trailing slash."""
    parts = urlsplit(url)
    if parts.path.lower() in _ROOT_PATHS and not parts.query:
        return True
    return _page(url) in {_page(u) for u in (home, feed_url) if u}


_ROOT_PATHS = ("", "/", "/index.html", "/index.htm", "/index.php", "/default.aspx")


def _page(url: str) -> tuple[str, str, str]:
    parts = urlsplit(url)
    return (parts.netloc.lower().removeprefix("www."), parts.path.rstrip("/"), parts.query)


def normalise_language(value: str | None) -> str | None:
    """'en-US', 'de_DE', 'EN' → 'en'; anything else → None."""
    if not value:
        return None
    code = re.split(r"[-_;, ]", value.strip().lower(), maxsplit=1)[0]
    return code if re.fullmatch(r"[a-z]{2}", code) else None


_ISO_DATE = re.compile(r"\s*(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?")
_MAIL_DATE = re.compile(r"(?:\w+,\s*)?(\d{1,2})\s+([A-Za-z]{3})[a-z]*\.?\s+(\d{4})"
                        r"(?:\s+(\d{1,2}):(\d{1,2})(?::(\d{1,2}))?)?")
_MONTHS = {m: n for n, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug",
                                       "sep", "oct", "nov", "dec"), 1)}


def sane_date(raw: str | None) -> bool:
    """False when ``raw`` is written as an ISO 8601 or RFC 822 date whose fields are out of
    range ("2025-13-45T99:99:99Z", "Mon, 45 Foo 2025"): feedparser would carry the excess
    over into a real but wrong date. Other forms are left to feedparser."""
    if not raw:
        return True
    if match := _ISO_DATE.match(raw):
        year, month, day, hour, minute, second = (int(g or 0) for g in match.groups())
    elif match := _MAIL_DATE.match(raw.strip()):
        named = _MONTHS.get(match.group(2).lower())
        if named is None:                  # another language's month: feedparser decides
            return True
        month = named
        day, year = int(match.group(1)), int(match.group(3))
        hour, minute, second = (int(g or 0) for g in match.groups()[3:])
    else:
        return True
    try:
        datetime(year, month, day, hour, minute, min(second, 59) if second == 60 else second)
    except ValueError:
        return False
    return True


def _timestamp(entry) -> datetime | None:
    for name in ("published", "updated", "created"):
        value = entry.get(f"{name}_parsed")
        if value and sane_date(entry.get(name)):
            try:
                return datetime.fromtimestamp(calendar.timegm(value) - _zone_offset(entry.get(name)),
                                              tz=timezone.utc)
            except (OverflowError, ValueError, OSError):
                continue
    return None


# Time zones named by abbreviations that feedparser does not know (it reads the time as
# UTC then): hours east of UTC. Only names with one meaning; "BST", "IST" and China's "CST"
# (feedparser's is the US one) are left as they are.
_ZONE_HOURS = {"wet": 0, "west": 1, "cet": 1, "cest": 2, "met": 1, "mest": 2, "mez": 1,
               "mesz": 2, "eet": 2, "eest": 3, "msk": 3, "hkt": 8, "sgt": 8, "awst": 8,
               "jst": 9, "kst": 9, "acst": 9.5, "acdt": 10.5, "aest": 10, "aedt": 11,
               "nzst": 12, "nzdt": 13}
_ZONE_NAME = re.compile(r"(?<![A-Za-z])([A-Za-z]{3,4})\s*$")


def _zone_offset(raw: str | None) -> float:
    """Seconds east of UTC of a date that ends with one of ``_ZONE_HOURS``'s names ("Tue,
    03 Jun 2025 07:15:00 CEST" is 05:15 UTC, not 07:15), else 0."""
    found = _ZONE_NAME.search(raw or "")
    return _ZONE_HOURS.get(found.group(1).lower(), 0) * 3600 if found else 0


def _entry_text(entry) -> str:
    candidates = [(c.get("value", "") or "", c.get("type")) for c in entry.get("content", []) or []]
    candidates.append((entry.get("summary", "") or "",
                       (entry.get("summary_detail") or {}).get("type")))
    best, kind = max(candidates, key=lambda candidate: len(candidate[0]))
    return _as_text(best, kind)


def _as_text(value: str | None, kind: str | None, limit: int = MAX_TEXT) -> str:
    """An element's text by the type feedparser gives it: HTML (RSS descriptions, Atom
    ``type="html"``/``"xhtml"``, a title that holds markup) with its tags dropped; plain
    text (Atom's default, an RSS title without markup) kept as it is, so that "Rio Tinto
    <RIO.AX>" or "a<b and c>d" lose nothing, its character references read (feeds that
    escape twice send "&amp;#8217;" for "’"). feedparser guesses an RSS title's type and
    calls one with a tag it would not keep (``<script>…</script>``) plain: plain text with
    an end tag is read as HTML."""
    if kind != "text/plain" or _END_TAG.search(value or ""):
        return html_to_text(value, limit)
    return fold_whitespace(unescape((value or "")[:MAX_HTML]))[:limit]


_END_TAG = re.compile(r"</[A-Za-z][A-Za-z0-9]*\s*>")


def _entry_language(entry, feed_lang: str | None) -> str | None:
    for detail in ("title_detail", "summary_detail"):
        lang = normalise_language((entry.get(detail) or {}).get("language"))
        if lang:
            return lang
    return feed_lang


def _to_article(entry, feed_lang: str | None, home: str | None = None,
                feed_url: str | None = None, keyed=None) -> ParsedArticle | None:
    """``entry`` as an article. ``keyed``: the same entry with its relative link and guid
    read against the feed's key base (see :func:`read_feed`), which its key and guid are
    made of; its link for display is ``entry``'s, read where the document came from.
    ``home`` and ``feed_url`` are read against the key base too."""
    title = one_line(_as_text(entry.get("title", ""), (entry.get("title_detail") or {}).get("type")))
    text = _entry_text(entry)
    if not title and not text:
        return None
    keyed = entry if keyed is None else keyed
    url = display_url(entry.get("link"))
    key_url = canonical_url(keyed.get("link"))
    guid = one_line(keyed.get("id") or "", 500) or None
    digest = content_hash(title, text)
    published = _timestamp(entry)
    shared = bool(key_url) and not guid and is_shared_link(key_url or "", home, feed_url)
    return ParsedArticle(key=article_key(guid, key_url, digest, title, published, shared),
                         guid=guid, url=url, title=title, text=text, published=published,
                         language=_entry_language(entry, feed_lang), content_hash=digest,
                         publisher=_publisher(entry))


_WITH_ADDRESS = (re.compile(r"^\S+@\S+\s*\((?P<name>[^()@]+)\)$"),    # "desk@wire.example (Wire Desk)"
                 re.compile(r"^(?P<name>[^()@]+?)\s*\(\S+@\S+\)$"))    # "Wire Desk (desk@wire.example)"


def _publisher(entry) -> str | None:
    """Who published an entry, where it says: its <source> (Google News names the outlet
    there), else its author (Atom <author><name>, RSS <author>/<dc:creator>, without the
    address); an address alone is not a name."""
    source = entry.get("source") or {}
    for value in (source.get("title"), entry.get("author")):
        name = one_line(html_to_text(value or ""), MAX_PUBLISHER)
        for pattern in _WITH_ADDRESS:
            if match := pattern.match(name):
                name = match.group("name").strip()
        if name and "@" not in name:
            return name
    return None


@functools.cache
def _feedparser():
    """feedparser, imported once per process, with its two URI-joining helpers memoised
    and its copies of content parameters made directly.

    feedparser re-resolves the xml:base of every start tag and the link of every entry,
    calling the same ``urljoin(base, uri)`` thousands of times per feed (~11 % of its
    parse time over 200 feeds × 30 items). Both helpers are pure functions of their string
    arguments (and of feedparser's constant list of allowed URI schemes), so a bounded cache
    in front of them returns the very same values. And for every title, summary and content
    element it ``copy.deepcopy``s the element's parameters (type, language, base: a dict of
    strings), ~9 % of its parse time; ``_ScalarCopies`` copies such a dict directly, and
    anything else with ``copy.deepcopy``."""
    import copy

    import feedparser
    from feedparser import mixin
    from feedparser.util import FeedParserDict

    for name in ("_urljoin", "make_safe_absolute_uri"):
        original = getattr(mixin, name, None)
        if callable(original) and not hasattr(original, "cache_info"):
            setattr(mixin, name, _memoised(original))
    if getattr(mixin, "copy", None) is copy:
        mixin.copy = _ScalarCopies(copy, (dict, FeedParserDict))
    return feedparser


_SCALARS = (str, int, float, bool, type(None))


class _ScalarCopies:
    """The ``copy`` module as feedparser's parser sees it: ``deepcopy`` of a dict whose
    values are all strings, numbers or None is a new dict of the same type and items (what
    ``copy.deepcopy`` returns for it, without its generic machinery); everything else goes
    to the real module."""

    def __init__(self, module, dict_types: tuple[type, ...]) -> None:
        self._module = module
        self._dict_types = dict_types

    def deepcopy(self, value, memo=None):
        if type(value) in self._dict_types and all(type(v) in _SCALARS for v in value.values()):
            return type(value)(value)
        return self._module.deepcopy(value, memo)

    def __getattr__(self, name: str):
        return getattr(self._module, name)


def _memoised(function):
    cached = functools.lru_cache(maxsize=4096)(function)

    @functools.wraps(function)
    def call(*args):
        try:
            return cached(*args)
        except TypeError:                # an unhashable argument: no cache for that call
            return function(*args)
    call.cache_info = cached.cache_info
    return call


@dataclass
class ParsedFeed:
    """A feed document's articles, and what the reader should know about how it was read
    (cut at ``MAX_ENTRIES``, an encoding that was not the declared one)."""
    articles: list[ParsedArticle]
    notes: list[str] = field(default_factory=list)
    # read leniently (not well-formed XML): items may be missing, so the feed's validators
    # are not saved and the next poll reads the whole document again
    partial: bool = False
    # the address relative links and guids in the articles' keys were read against (the
    # ``key_base`` asked for, else the document's own address): a feed without a key base
    # yet keeps this one (see :func:`read_feed`)
    key_base: str | None = None


def parse_feed(content: bytes, headers: dict[str, str] | None = None,
               base_url: str | None = None, key_base: str | None = None) -> list[ParsedArticle]:
    """Articles of a feed document; FeedError when it is not a feed at all."""
    return read_feed(content, headers, base_url, key_base).articles


def read_feed(content: bytes, headers: dict[str, str] | None = None,
              base_url: str | None = None, key_base: str | None = None) -> ParsedFeed:
    """Articles of a feed document with notes on how it was read; FeedError when it is not
    a feed at all.

    The response headers (Content-Type with its charset, Content-Language) are passed to
    feedparser, and ``base_url`` (the address the document came from, after redirects)
    resolves relative links: an article's link leads where the document says. A
    Content-Location header does not: HTTP no longer makes it the base of relative
    references (RFC 7231, Appendix B), and servers send internal addresses (a proxy's
    ``http://10.0.0.5/rss``) or relative ones (``rss.xml``) in it. Only without
    ``base_url`` is an absolute one used.

    An article's key and guid are read against ``key_base`` instead, when given: the
    address the feed's first document came from, which the feed keeps (``feed.key_base``).
    So a relative link or guid ("/news/a1.html", a ``<guid>12345</guid>`` that feedparser
    reads as a link) keeps its key when the server starts redirecting the feed to another
    host, scheme or path, or the configured address changes: the story is not stored, nor
    mailed, again. Absolute links and guids are the same whatever the base. Without
    ``key_base`` (a feed's first document), keys are read against the document's own
    address, which ``ParsedFeed.key_base`` then names. The document is parsed a second
    time, against the key base, only when the two differ and one of its links, guids or
    its home page is at the document's own origin (scheme, host and port): only then can a
    relative reference be among them.
    """
    feedparser = _feedparser()
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="feedparser")

    received = {name: value for name, value in (headers or {}).items()
                if name.lower() != "content-location"}
    located = next((value for name, value in (headers or {}).items()
                    if name.lower() == "content-location"), None)
    base_url = base_url or (located if _is_absolute(located) else None)
    if base_url:
        received["content-location"] = base_url     # how feedparser is told the base
    if not content or content.isspace():
        kind = received.get("content-type", "unknown content type")
        raise FeedError(f"not a feed: the response body is empty (content type {kind})",
                        kind="not-a-feed")
    notes: list[str] = []
    content, response_headers = defuse(content, received, notes)
    # resolve_relative_uris only rewrites links inside HTML content, which becomes plain
    # text here; entry links are resolved against xml:base and base_url regardless.
    parsed = feedparser.parse(content, response_headers=response_headers,
                              sanitize_html=False, resolve_relative_uris=False)
    if not parsed.get("version") and not parsed.entries:
        raise FeedError(f"not a feed: {_bozo_reason(parsed, received, content)}", kind="not-a-feed")
    feed_lang = normalise_language(parsed.feed.get("language")
                                   or response_headers.get("content-language"))
    error = parsed.get("bozo_exception")
    partial = isinstance(error, SAXParseException)
    if partial:
        notes.append(f"not well-formed XML ({error.getMessage()}): read leniently, so items "
                     "may be missing or cut short")
    document_base = base_url
    key_base = key_base or document_base
    found = parsed.entries[:MAX_ENTRIES]
    keyed = parsed
    if key_base != document_base and _relative_possible(parsed.feed, found, document_base,
                                                        key_base):
        keyed = feedparser.parse(content, response_headers={**response_headers,
                                                            "content-location": key_base},
                                 sanitize_html=False, resolve_relative_uris=False)
        if len(keyed.entries) < len(found):         # cannot happen: the same bytes, parser
            keyed = parsed
    home = canonical_url(keyed.feed.get("link"))
    feed_url = canonical_url(key_base)
    entries = [a for a in (_to_article(e, feed_lang, home, feed_url, k)
                           for e, k in zip(found, keyed.entries)) if a is not None]
    titles: dict[str, set[str]] = {}
    for article in entries:
        titles.setdefault(article.key, set()).add(article.title)
    articles: dict[str, ParsedArticle] = {}
    for article in entries:
        if len(titles[article.key]) > 1:
            # stories under one key (a guid and link reused for every item): each is known
            # by its title too, the first as well, so that a story's key does not depend on
            # where it stands in the document
            article = dataclasses.replace(article, key=titled_key(article.key, article.title),
                                          shared_key=article.key)
        articles.setdefault(article.key, article)       # a repeat of a story is dropped
    return ParsedFeed(list(articles.values()), notes, partial, key_base)


def _relative_possible(feed, entries, base: str | None, key_base: str | None) -> bool:
    """Whether a relative link, guid or home page may be among those of a document read
    against ``base`` that would read otherwise against ``key_base``: one of them is at
    ``base``'s origin (a relative reference read against it is; an absolute one may be),
    or has its scheme when ``key_base`` has another (``//host/path`` takes the base's)."""
    origin, other = _origin(base), _origin(key_base)
    if origin is None or other is None:
        return True
    values = [feed.get("link")]
    for entry in entries:
        values += (entry.get("link"), entry.get("id"))
    found = {_origin(v) for v in values if isinstance(v, str)}
    return origin in found or (other[0] != origin[0] and any(
        o is not None and o[0] == origin[0] for o in found))


def _is_absolute(url: str | None) -> bool:
    """An http(s) address with a host (not ``rss.xml``, ``/rss`` or ``//host/rss``)."""
    origin = _origin(url)
    return origin is not None and origin[0] in ("http", "https")


def _origin(url: str | None) -> tuple[str, str] | None:
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return None
    return (parts.scheme.lower(), parts.netloc.lower()) if parts.netloc else None


def start_worker(pid: int) -> None:
    """A parse process's start: end with the service (``watch_service``), and the
    allocator's settings of the service (``monitor.memory``): the language and country
    data's loading leaves ~15 MB less behind, and large bodies are given back when freed.
    Ctrl-C in a terminal signals the whole process group: the service stops its parse
    processes itself, so they ignore SIGINT (each died with a KeyboardInterrupt traceback
    on stderr, one mid-parse losing its work)."""
    import signal

    from monitor.memory import limit_malloc_arenas

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    limit_malloc_arenas()
    watch_service(pid)


def watch_service(pid: int, interval: float = 1.0) -> None:
    """In a parse process: end it soon after the service process ``pid`` is gone.

    A pool worker waits on a queue that its siblings also hold open, so when the service is
    killed (SIGKILL, the OOM killer) nothing would ever wake it: the workers and the fork
    server would stay behind forever. A daemon thread checks once a second instead."""
    import os
    import threading
    import time

    def watch() -> None:
        while True:
            time.sleep(interval)
            try:
                os.kill(pid, 0)
            except (ProcessLookupError, PermissionError):   # gone (or its pid reused)
                os._exit(0)

    threading.Thread(target=watch, name="monitor-watch-service", daemon=True).start()


def parse_job(content: bytes, headers: dict[str, str], url: str, key_base: str | None = None):
    """``read_feed`` as run in a parse process: (ParsedFeed, None) or (None, (message, kind)).
    A FeedError comes back as plain values: exceptions with keyword arguments do not
    survive pickling intact. Here, not in the pipeline, so that a parse process imports
    only this module (the fork server preloads it), not httpx and the rest."""
    try:
        return read_feed(content, headers, url, key_base), None
    except FeedError as exc:
        return None, (str(exc), exc.kind)


_HTML_START = re.compile(rb"\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html)[\s>]",
                         re.I | re.S)                   # (the re-encoding adds an XML prolog)


def _bozo_reason(parsed, headers: dict[str, str], content: bytes = b"") -> str:
    kind = headers.get("content-type", "unknown content type")
    if _HTML_START.match(content[:2000].removeprefix(b"\xef\xbb\xbf")):
        return f"the response is an HTML page, not RSS, Atom or RDF (content type {kind})"
    error = parsed.get("bozo_exception")
    detail = f"{type(error).__name__}: {error}" if error else "no RSS, Atom or RDF document found"
    return f"{detail} (content type {kind})"[:500]


def defuse(content: bytes, headers: dict[str, str],
           notes: list[str] | None = None) -> tuple[bytes, dict[str, str]]:
    """The document as feedparser would decode it, re-encoded as UTF-8, without entity
    declarations and cut after ``MAX_ENTRIES`` entries; the headers then say UTF-8.

    A document that decodes in none of the encodings it declares is made readable first
    (see :func:`_readable`); that, and a cut, are said in ``notes``."""
    from feedparser.encodings import convert_to_utf8, parse_content_type

    notes = [] if notes is None else notes
    headers = _bom_over_label(content, headers, parse_content_type, notes)
    if _ascii_start(content):
        content, headers = _without_wide_claims(content, headers, parse_content_type)
        content, headers = _utf8_under_legacy_label(content, headers, parse_content_type, notes)
        content, headers = _multibyte_under_legacy_label(content, headers, parse_content_type, notes)
        content, headers = _readable(content, headers, parse_content_type, notes)
    probe: dict = {}
    data = convert_to_utf8(headers, content, probe)
    if probe.get("encoding"):                      # UTF-8 now: a C0 byte is a character
        data = data.translate(None, _C0_CONTROLS)   # that XML forbids (tab, LF, CR aside)
    data = _valid_char_refs(data)
    data = _without_entity_declarations(data)
    cut = first_entries(data, MAX_ENTRIES)
    if len(cut) < len(data):
        notes.append(f"only the first {MAX_ENTRIES:,} entries were read: the feed has more")
    data = cut
    mime, _ = parse_content_type(headers.get("content-type") or "")
    if probe.get("encoding") and mime:
        headers = {**headers, "content-type": f"{mime}; charset=utf-8"}
    return data, headers


_PROLOG_ENCODING = re.compile(rb"^(\s*<\?xml[^>]*?encoding\s*=\s*[\"'])([\w.:-]+)", re.I)
# encodings a detector's guess is taken from: a multi-byte one whenever the whole document
# decodes in it; a single-byte one at a confidence of 0.08 or more (chardet's guesses from
# a few accented letters, such as MacRoman or ISO-8859-4, score below that); otherwise
# windows-1252 is assumed, as feedparser would
_MULTIBYTE = {"gb18030", "gbk", "gb2312", "big5", "big5hkscs", "shift_jis", "cp932",
              "euc_jp", "iso2022_jp", "euc_kr", "cp949"}
_WEB_ENCODINGS = {*_MULTIBYTE, "koi8_r", "koi8_u",
                  *(f"cp{n}" for n in range(1250, 1259)),
                  *(f"iso8859_{n}" for n in range(1, 17)), "latin_1"}


def _codec(name: str | None) -> str | None:
    import codecs

    try:
        return codecs.lookup(name).name.replace("-", "_") if name else None
    except LookupError:
        return None


def _decodes(content: bytes, codec: str | None) -> bool:
    try:
        return codec is not None and bool(content.decode(codec) or True)
    except (UnicodeDecodeError, LookupError):
        return False


def _readable(content: bytes, headers: dict[str, str], parse_content_type,
              notes: list[str]) -> tuple[bytes, dict[str, str]]:
    """An ASCII-started document that decodes in none of the encodings it may be in (its
    Content-Type charset, its prolog's encoding, UTF-8), re-encoded as UTF-8 and said so.

    - Mostly UTF-8 (at least four characters decode for each invalid sequence): read
      as UTF-8, each invalid sequence replaced by U+FFFD. feedparser would fall back to
      windows-1252 and turn every other non-ASCII character into mojibake.
    - Otherwise in the encoding chardet finds (a GBK page declared as UTF-8) when the
      guess is sound (see ``_WEB_ENCODINGS``), else windows-1252.
    A document that decodes in one of its encodings is left to feedparser as it is."""
    mime, charset = parse_content_type(headers.get("content-type") or "")
    prolog = _PROLOG_ENCODING.match(content[:300])
    declared = [charset, prolog.group(2).decode("ascii") if prolog else None]
    codecs_ = [c for c in dict.fromkeys(_codec(n) for n in declared + ["utf-8"]) if c]
    if any(_decodes(content, c) for c in codecs_):
        return content, headers
    claim = next((n for n in declared if n), "UTF-8 (XML's default)")
    text = content.decode("utf-8", "replace")
    bad = text.count("\ufffd") - content.count("\ufffd".encode("utf-8"))
    good = sum(1 for ch in text if ch > "\x7f") - bad        # characters UTF-8 did decode
    if bad * 4 <= good:
        notes.append(f"declared as {claim}: {bad} invalid UTF-8 byte sequence{'s' if bad != 1 else ''} "
                     f"replaced by U+FFFD, the rest read as UTF-8")
    else:
        import chardet

        found = chardet.detect(content[:200_000])
        guess = _codec(found.get("encoding"))
        sure = guess in _MULTIBYTE or (found.get("confidence") or 0) >= 0.08
        codec = guess if guess in _WEB_ENCODINGS and sure and _decodes(content, guess) else "cp1252"
        text = content.decode(codec, "replace")
        how = "detected" if codec == guess else "assumed: no encoding was detected with confidence"
        notes.append(f"declared as {claim}, but it does not decode as such: read as "
                     f"{codec.replace('_', '-')} ({how})")
    data = text.encode("utf-8")
    if prolog:
        data = _PROLOG_ENCODING.sub(rb"\1utf-8", data, count=1)
    return data, {**headers, "content-type": f"{mime or 'application/xml'}; charset=utf-8"}


_SINGLE_BYTE = _WEB_ENCODINGS - _MULTIBYTE


def _utf8_under_legacy_label(content: bytes, headers: dict[str, str], parse_content_type,
                             notes: list[str]) -> tuple[bytes, dict[str, str]]:
    """A document declared (in its Content-Type or its prolog) in a single-byte encoding
    such as ISO-8859-2 or windows-1250 that is valid UTF-8 with non-ASCII characters is
    UTF-8: text in those encodings almost never forms valid UTF-8 sequences, while a
    server's default charset label on a UTF-8 file is common. Such a label would decode
    every accented letter as two wrong ones; it is dropped, and a note says so."""
    if content.isascii() or not _decodes(content, "utf-8"):
        return content, headers
    mime, charset = parse_content_type(headers.get("content-type") or "")
    prolog = _PROLOG_ENCODING.match(content[:300])
    declared = [n for n in (charset, prolog.group(2).decode("ascii") if prolog else None) if n]
    legacy = [n for n in declared if _codec(n) in _SINGLE_BYTE]
    if not legacy:
        return content, headers
    notes.append(f"declared as {legacy[0]}, but it is UTF-8: read as UTF-8")
    if prolog:
        content = _PROLOG_ENCODING.sub(rb"\1utf-8", content, count=1)
    return content, {**headers, "content-type": f"{mime or 'application/xml'}; charset=utf-8"}


# the labels a server gives by default (Apache's AddDefaultCharset, HTTP/1.1's default for
# text/*, RFC 3023's us-ascii for text/xml): ISO-8859-1, windows-1252, ISO-8859-15 (Latin-1
# with the euro sign), US-ASCII. Under one of them, a document's own declaration of a
# multi-byte encoding is believed when the document reads as such (see
# _multibyte_under_legacy_label). A regional label (windows-1250/1251/1253, ISO-8859-2/5/7,
# KOI8-R …) is never overridden: it is chosen for the text it labels, so it is the likelier
# of the two to be right, and in a Cyrillic or Greek charset a short Chinese text reads as
# plausible words ("欧盟" as "ХЗУЫ" in ISO-8859-5): a document wrongly declaring GB2312 there
# could not be told from a GB2312 one by its letters alone.
_DEFAULT_LABELS = {"latin_1", "iso8859_1", "cp1252", "iso8859_15", "ascii"}
# labels of the WHATWG encoding standard that browsers read as GBK (GB18030's decoder) and
# Big5 but Python's codecs do not know
_WHATWG_LABELS = {"x-gbk": "gbk", "csgb2312": "gb2312", "gb_2312": "gb2312", "gb_2312-80": "gb2312",
                  "cn-big5": "big5", "x-x-big5": "big5"}
# the codecs a declared encoding is tried in, in turn: GB2312 and GBK are read as GB18030,
# their superset, as browsers read them (a GBK-only character such as 镕 in a page declared
# GB2312; A1AA is "—", not "―"); Big5 is read as Big5 and, when that fails, as Big5-HKSCS
# (Hong Kong characters and the ETEN extensions such as 碁: Big5-HKSCS reads a few codes of
# plain Big5, kana and Cyrillic at C6A1-C8FE, as other characters, so it is only a fallback);
# Shift_JIS and EUC-KR fall back to their Windows supersets, which browsers read them as
# (CP932: ①, ㈱, NEC and IBM extensions; CP949: the Hangul syllables EUC-KR lacks)
_DECODED_AS = {"gb2312": ("gb18030",), "gbk": ("gb18030",), "big5": ("big5", "big5hkscs"),
               "shift_jis": ("shift_jis", "cp932"), "euc_kr": ("euc_kr", "cp949")}
_NON_ASCII_RUN = re.compile(r"[^\x00-\x7f]+")
# letters of Chinese, Japanese and Korean: Hangul Jamo, kana, CJK extension A and unified
# ideographs, Hangul syllables, compatibility ideographs, and the ideographs past U+FFFF
# (not half-width katakana: Shift_JIS reads a lone Latin-1 letter or « as one)
_CJK_LETTER = re.compile("[\u1100-\u11ff\u3040-\u30ff\u3130-\u318f\u31f0-\u31ff\u3400-\u4dbf"
                         "\u4e00-\u9fff\uac00-\ud7a3\uf900-\ufaff\U00020000-\U0003134f]")


def _reads_as_cjk(text: str) -> bool:
    """Whether most non-ASCII characters of ``text`` are in Chinese, Japanese or Korean
    words: in a run of non-ASCII characters that holds a CJK letter and is two characters
    or more long, or stands apart from ASCII letters ("稀土", "“中国”", "iPhone手机",
    "3月", " 및 ").

    Text in a single-byte encoding read as GBK, Big5 or Shift_JIS instead gives lone
    characters inside Latin words: each accented letter, with the ASCII letter after it,
    becomes one ideograph or a half-width katakana ("Größe" → "Gr" + one ideograph + "e")."""
    total = sound = 0
    for run in _NON_ASCII_RUN.finditer(text):
        chars = run.group()
        total += len(chars)
        before, after = text[run.start() - 1:run.start()], text[run.end():run.end() + 1]
        if _CJK_LETTER.search(chars) and (len(chars) > 1 or not (before.isalpha() or after.isalpha())):
            sound += len(chars)
    return sound * 2 > total


# a word of _reads_as_alphabetic: a run of anything but spaces, digits and ASCII punctuation
# other than the apostrophe and the hyphen, which join two words ("l'État", "Nord-Pas")
_TOKEN = re.compile(r"[^\s0-9!-&(-,./:-@\[-`{-~]+")
_WORD_JOINERS = re.compile("[-'\u2019\u02bc\u2010\u2011]")
# punctuation a word may start or end with: quotation marks, brackets and dashes, ¡ and ¿
# before it, … after it; not ° ¹ ± · ÷ ¤ …, which end words in mojibake ("°ÍÎ÷" for "巴西"),
# nor ‚ at its start (Shift_JIS's hiragana in windows-1252: "‚Ì" for "の")
_EDGE_CATEGORIES = {"Ps", "Pe", "Pi", "Pf", "Pd"}
_SCRIPTS = {"LATIN", "CYRILLIC", "GREEK", "HEBREW", "ARABIC", "ARMENIAN", "GEORGIAN", "THAI"}


def _reads_as_alphabetic(text: str) -> bool:
    """Whether ``text``, decoded in a single-byte charset, reads as natural text of an
    alphabetic script: nine in ten or more of the non-ASCII characters of its words are in
    sound words ("Größe", "Żółć", "Москва", "Сбербанк", "Αθήνα", "l'État", "«Уран»").

    A word is a run of letters and other non-ASCII characters between spaces, digits and
    ASCII punctuation (an apostrophe or a hyphen joins two words into one), quotation marks,
    brackets and dashes at its edges set aside; a word with no non-ASCII letter is not
    counted. It is sound when it is letters only (with combining marks), all of one script
    (ASCII letters are Latin), in lower case, in upper case, or with only its first letter
    a capital; and it is not two or more of ISO-8859-1's accented letters (À-ÿ) alone: no
    word of a language written in ISO-8859-1 is (Polish "Żółć" has letters past ÿ).

    Chinese, Japanese or Korean text read in a single-byte charset gives long runs of
    letters in mixed case with symbols among them instead ("ÖÐ¹úÏ¡ÍÁ³ö¿Ú" for 中国稀土出口
    in ISO-8859-1, "ЦР№ъПЎНБ" in windows-1251, "‚Ì“ú–{" in windows-1252), and short ones
    of accented capitals only ("ÖÐ" for 中)."""
    total = sound = 0
    for token in _TOKEN.findall(text):
        if token.isascii():
            continue
        start, end = 0, len(token)
        while start < end and (token[start] in "\u00a1\u00bf" or token[start] != "\u201a"
                               and unicodedata.category(token[start]) in _EDGE_CATEGORIES):
            start += 1
        while end > start and (token[end - 1] == "\u2026"
                               or unicodedata.category(token[end - 1]) in _EDGE_CATEGORIES):
            end -= 1
        word = token[start:end]
        if not any(not ch.isascii() and ch.isalpha() for ch in word):
            continue
        weight = sum(1 for ch in word if not ch.isascii())
        total += weight
        if all(_natural_word(part) for part in _WORD_JOINERS.split(word) if part):
            sound += weight
    return total > 0 and sound * 10 >= total * 9


def _natural_word(word: str) -> bool:
    """Letters (and combining marks) of one script, in lower or upper case or capitalised,
    and not two or more of ISO-8859-1's accented letters alone."""
    scripts = set()
    for ch in word:
        if ch.isalpha():
            script = unicodedata.name(ch, "").split(" ", 1)[0]
            scripts.add(script if script in _SCRIPTS else "")    # (ª, º, µ: of none here)
        elif not unicodedata.category(ch).startswith("M"):
            return False                            # a symbol or punctuation inside a word
    scripts.discard("")
    if len(scripts) > 1:
        return False
    letters = [ch for ch in word if ch.isalpha()]
    if len(letters) > 1 and all("\u00c0" <= ch <= "\u00ff" for ch in letters):
        return False                                # "ÖÐ": no word of a Latin-1 language
    cased = "".join(ch for ch in letters if ch.isupper() or ch.islower())
    return len(cased) < 2 or cased[1:].islower() or cased.isupper()


def _multibyte_under_legacy_label(content: bytes, headers: dict[str, str], parse_content_type,
                                  notes: list[str]) -> tuple[bytes, dict[str, str]]:
    """A document whose Content-Type names a server's default single-byte charset
    (ISO-8859-1, windows-1252, ISO-8859-15, US-ASCII: see ``_DEFAULT_LABELS``) while its XML
    declaration names a multi-byte encoding (GB2312, GBK, GB18030, Big5, Shift_JIS, EUC-JP,
    ISO-2022-JP, EUC-KR) is read in the declared encoding when it decodes in it without
    error (GB2312 and GBK as GB18030, see ``_DECODED_AS``) and reads as Chinese, Japanese or
    Korean there and not as natural text in the header's charset (see
    :func:`_reads_as_cjk` and :func:`_reads_as_alphabetic`); a note says so. feedparser
    believes the header, and ISO-8859-1 decodes any bytes: every character would become two
    letters of mojibake. A document in the header's charset that wrongly declares a
    multi-byte encoding ("Größe" declared as GBK, which decodes as "Gr鲞e") keeps the
    header's charset, as does one under a regional label such as windows-1251."""
    if content.isascii() and b"\x1b" not in content:     # (ISO-2022-JP is 7-bit)
        return content, headers
    mime, charset = parse_content_type(headers.get("content-type") or "")
    prolog = _PROLOG_ENCODING.match(content[:300])
    label = _codec(charset)
    if label not in _DEFAULT_LABELS or not prolog:
        return content, headers
    declared = prolog.group(2).decode("ascii")
    codec = _codec(_WHATWG_LABELS.get(declared.lower(), declared))
    if codec not in _MULTIBYTE:
        return content, headers
    for name in _DECODED_AS.get(codec, (codec,)):
        try:
            text = content.decode(name)
            break
        except UnicodeDecodeError:
            continue
    else:
        return content, headers
    if not _reads_as_cjk(text) or _reads_as_alphabetic(content.decode(label, "replace")):
        return content, headers
    notes.append(f"declared as {charset} in its Content-Type but as {declared} in the document, which "
                 f"it is: the document's declaration overrides the header's charset, read as {declared}")
    data = _PROLOG_ENCODING.sub(rb"\1utf-8", text.encode("utf-8"), count=1)
    return data, {**headers, "content-type": f"{mime or 'application/xml'}; charset=utf-8"}


_BOMS = ((b"\x00\x00\xfe\xff", "utf-32-be"), (b"\xff\xfe\x00\x00", "utf-32-le"),
         (b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))


def _bom_over_label(content: bytes, headers: dict[str, str], parse_content_type,
                    notes: list[str]) -> dict[str, str]:
    """A document that starts with a byte-order mark is in the BOM's encoding, whatever the
    Content-Type's charset says (the XML and WHATWG rules: a server's default
    ``charset=ISO-8859-1`` on a UTF-16 file turned every character into two wrong ones and
    the document into "not well-formed" XML). The charset is dropped, so that the BOM
    decides, and a note says so when it said otherwise."""
    found = next((name for bom, name in _BOMS if content.startswith(bom)), None)
    if found is None:
        return headers
    mime, charset = parse_content_type(headers.get("content-type") or "")
    if not charset:
        return headers
    if _codec(charset) not in (_codec(found), _codec(found.rsplit("-", 1)[0])):
        notes.append(f"declared as {charset}, but its byte-order mark says {found.upper()}: "
                     f"read as {found.upper()}")
    return {**headers, "content-type": mime or "application/xml"}


def _ascii_start(content: bytes) -> bool:
    """True when the document starts (after a UTF-8 BOM and spaces) with ``<`` and an ASCII
    byte: the XML spec's sign of an ASCII-compatible encoding, never UTF-16/32."""
    head = content[3:64] if content.startswith(b"\xef\xbb\xbf") else content[:64]
    head = head.lstrip(b" \t\r\n")
    return len(head) > 1 and head[0] == ord("<") and 0 < head[1] < 0x80


def _without_wide_claims(content: bytes, headers: dict[str, str], parse_content_type):
    """Drop a UTF-16/32 claim from the prolog and the Content-Type of an ASCII-started
    document (it would be decoded into garbage otherwise)."""
    content = _WIDE_PROLOG.sub(rb"\1utf-8\2", content, count=1)
    mime, charset = parse_content_type(headers.get("content-type") or "")
    if charset and re.fullmatch(_WIDE, charset.encode("ascii", "replace"), re.I):
        headers = {**headers, "content-type": mime}
    return content, headers


def _valid_char_refs(data: bytes) -> bytes:
    """Numeric character references to lone surrogates or past U+10FFFF removed; a pair
    of references to a high and a low surrogate replaced by the character they encode."""
    return _CHAR_REF.sub(_fix_char_refs, data) if b"&#" in data else data


def _fix_char_refs(match: re.Match) -> bytes:
    first, second = (_code_point(g) for g in match.groups())
    if first is None:                      # the pattern always captures the first reference
        return match.group(0)
    if second is not None and 0xD800 <= first <= 0xDBFF and 0xDC00 <= second <= 0xDFFF:
        return b"&#x%x;" % (0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00))
    if all(c is None or _valid_code_point(c) for c in (first, second)):
        return match.group(0)
    return b"".join(b"&#x%x;" % c for c in (first, second) if c is not None and _valid_code_point(c))


def _code_point(group: bytes | None) -> int | None:
    if group is None:
        return None
    if len(group) > 12:
        return 0x110000                    # too long to be a character
    return int(group[1:], 16) if group[:1] in b"xX" else int(group)


def _valid_code_point(code: int) -> bool:
    """XML's Char: tab, newline, carriage return, and U+0020 on, less surrogates."""
    return code in (0x9, 0xA, 0xD) or (0x20 <= code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF
                                        and code not in (0xFFFE, 0xFFFF))


def _without_entity_declarations(data: bytes) -> bytes:
    """``data`` without the internal subset of its DOCTYPE (found by walking the prolog
    as expat does) and without any ``<!ENTITY`` left before the first element (where
    feedparser's own regular expressions look for them)."""
    pos = 0
    while match := _PROLOG_ITEM.match(data, pos):
        pos = match.end()
    if spaces := _SPACES.match(data, pos):          # always matches (maybe nothing)
        pos = spaces.end()
    if data.startswith(b"<!DOCTYPE", pos):
        data = _drop_internal_subset(data, pos)
    root = _FIRST_ELEMENT.search(data)
    head_end = root.start() if root else len(data)
    if b"<!ENTITY" in data[:head_end]:
        data = _ENTITY_DECL.sub(b"", data[:head_end]) + data[head_end:]
    return data


def _drop_internal_subset(data: bytes, start: int) -> bytes:
    """``<!DOCTYPE rss PUBLIC "…" "…" [ … ]>`` → ``<!DOCTYPE rss PUBLIC "…" "…">``; an
    unterminated DOCTYPE ends the document (no parser could read past it anyway)."""
    subset, depth = None, 0
    for token in _DTD_TOKEN.finditer(data, start + len(b"<!DOCTYPE")):
        kind = token.group()
        if kind == b"[":
            subset = token.start() if subset is None else subset
            depth += 1
        elif kind == b"]":
            depth -= 1
        elif kind == b">" and depth <= 0:
            return data if subset is None else data[:subset] + b">" + data[token.end():]
    return data[:start]


class _Cut(Exception):
    """Raised from expat's callback at the first entry past the limit."""

    def __init__(self, at: int, open_elements: list[str]) -> None:
        self.at = at
        self.open_elements = open_elements


class _EntryCounter:
    """Expat callbacks: the open elements, and the entries (``item`` or ``entry``, any
    prefix, all at the depth of the first one) counted until one too many."""

    def __init__(self, parser, limit: int) -> None:
        self.parser, self.limit = parser, limit
        self.open: list[str] = []
        self.depth: int | None = None
        self.count = 0
        parser.StartElementHandler = self.start
        parser.EndElementHandler = lambda _name: self.open.pop()

    def start(self, name: str, _attrs) -> None:
        if name.rpartition(":")[2] in ("item", "entry") and self.depth in (None, len(self.open)):
            self.depth = len(self.open)
            self.count += 1
            if self.count > self.limit:
                raise _Cut(self.parser.CurrentByteIndex, list(self.open))
        self.open.append(name)


def first_entries(data: bytes, limit: int) -> bytes:
    """The document cut before its entry number ``limit + 1``, the elements still open
    closed again so it stays well-formed XML.

    A document that is not well-formed is cut at the ``limit + 1``-th textual entry start
    tag instead (feedparser's lenient parser copes with what is left open)."""
    starts = list(itertools.islice(_ENTRY_TAG.finditer(data), limit + 1))
    if len(starts) <= limit:
        return data
    parser = expat.ParserCreate()
    _EntryCounter(parser, limit)
    try:
        parser.Parse(data, True)
    except _Cut as cut:
        closing = "".join(f"</{name}>" for name in reversed(cut.open_elements))
        return data[:cut.at] + closing.encode("utf-8")
    except expat.ExpatError:
        return data[:starts[limit].start()]
    return data
