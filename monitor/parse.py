"""Parsing fetched feed bytes into plain-text articles (the only module using feedparser).

An article is plain text: HTML stripped, entities decoded, whitespace folded. Its URL is
canonical (scheme and host lower-cased, default port, fragment and tracking parameters
removed). Its identity within a feed is its guid together with its URL, else its URL, else
a hash of title and text (see :func:`article_key`).
"""

from __future__ import annotations

import calendar
import hashlib
import re
import warnings
from datetime import datetime, timezone
from html import unescape
from html.parser import HTMLParser
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.exceptions import FeedError
from monitor.types import ParsedArticle

MAX_TITLE = 1_000
MAX_TEXT = 20_000
TRACKING = re.compile(r"^(utm_\w*|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|yclid|_hsenc|_hsmi|"
                      r"igshid|ocid|cmpid|icid|ncid|sr_share|wt\.mc_id|at_medium|at_campaign)$", re.I)
_BLOCK = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
          "table", "blockquote", "section", "article", "figure", "figcaption", "pre", "hr"}
_SKIP = {"script", "style", "noscript", "iframe", "object", "template", "head"}
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b\ufeff\ud800-\udfff]")
_SPACE = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200a\u202f\u205f\u3000]+")


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
    if "<" in value:
        extractor = _TextExtractor()
        extractor.feed(value)
        extractor.close()
        value = "".join(extractor.parts)
    else:
        value = unescape(value)
    return fold_whitespace(value)[:limit]


def fold_whitespace(value: str) -> str:
    value = _CONTROL.sub("", value)
    lines = (_SPACE.sub(" ", line).strip() for line in value.split("\n"))
    text = "\n".join(line for line in lines if line)
    return re.sub(r"\n{2,}", "\n", text)


def one_line(value: str, limit: int = MAX_TITLE) -> str:
    return " ".join(fold_whitespace(value).split())[:limit]


def canonical_url(url: str | None) -> str | None:
    """Scheme/host lower-cased, default port and fragment dropped, tracking params removed."""
    if not url:
        return None
    url = url.strip()
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
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not TRACKING.match(k)]
    return urlunsplit((scheme, host, parts.path or "/", urlencode(query, doseq=True), ""))


def content_hash(title: str, text: str) -> str:
    return hashlib.sha256(f"{title}\n{text}".encode("utf-8", "surrogatepass")).hexdigest()[:32]


def article_key(guid: str | None, url: str | None, digest: str) -> str:
    """Identity within a feed: guid+URL, guid, URL, else the content hash.

    guid and URL together, because some feeds reuse one guid for different stories."""
    if guid and url:
        return f"g:{guid}|{url}"[:1000]
    if guid:
        return f"g:{guid}"[:1000]
    if url:
        return f"u:{url}"[:1000]
    return f"h:{digest}"


def normalise_language(value: str | None) -> str | None:
    """'en-US', 'de_DE', 'EN' → 'en'; anything else → None."""
    if not value:
        return None
    code = re.split(r"[-_;, ]", value.strip().lower(), maxsplit=1)[0]
    return code if re.fullmatch(r"[a-z]{2}", code) else None


def _timestamp(entry) -> datetime | None:
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = entry.get(key)
        if value:
            try:
                return datetime.fromtimestamp(calendar.timegm(value), tz=timezone.utc)
            except (OverflowError, ValueError, OSError):
                continue
    return None


def _entry_text(entry) -> str:
    candidates = [c.get("value", "") for c in entry.get("content", []) or []]
    candidates.append(entry.get("summary", "") or "")
    best = max(candidates, key=len)
    return html_to_text(best)


def _entry_language(entry, feed_lang: str | None) -> str | None:
    for detail in ("title_detail", "summary_detail"):
        lang = normalise_language((entry.get(detail) or {}).get("language"))
        if lang:
            return lang
    return feed_lang


def _to_article(entry, feed_lang: str | None) -> ParsedArticle | None:
    title = one_line(html_to_text(entry.get("title", "")))
    text = _entry_text(entry)
    if not title and not text:
        return None
    url = canonical_url(entry.get("link"))
    guid = one_line(entry.get("id") or "", 500) or None
    digest = content_hash(title, text)
    return ParsedArticle(key=article_key(guid, url, digest), guid=guid, url=url, title=title,
                         text=text, published=_timestamp(entry),
                         language=_entry_language(entry, feed_lang), content_hash=digest)


def parse_feed(content: bytes, headers: dict[str, str] | None = None,
               base_url: str | None = None) -> list[ParsedArticle]:
    """Articles of a feed document; FeedError when it is not a feed at all.

    The response headers (Content-Type with its charset, Content-Location, Content-Language)
    are passed to feedparser, and ``base_url`` resolves relative links.
    """
    import feedparser

    warnings.filterwarnings("ignore", category=DeprecationWarning, module="feedparser")

    response_headers = dict(headers or {})
    if base_url:
        response_headers.setdefault("content-location", base_url)
    parsed = feedparser.parse(content, response_headers=response_headers,
                              sanitize_html=False, resolve_relative_uris=True)
    if not parsed.get("version") and not parsed.entries:
        raise FeedError(f"not a feed: {_bozo_reason(parsed, response_headers)}", kind="not-a-feed")
    feed_lang = normalise_language(parsed.feed.get("language")
                                   or response_headers.get("content-language"))
    articles: dict[str, ParsedArticle] = {}
    for entry in parsed.entries:
        article = _to_article(entry, feed_lang)
        if article is not None and article.key not in articles:
            articles[article.key] = article
    return list(articles.values())


def _bozo_reason(parsed, headers: dict[str, str]) -> str:
    kind = headers.get("content-type", "unknown content type")
    error = parsed.get("bozo_exception")
    detail = f"{type(error).__name__}: {error}" if error else "no RSS, Atom or RDF document found"
    return f"{detail} (content type {kind})"[:500]
