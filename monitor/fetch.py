"""Fetching feeds politely with httpx (the only module that imports httpx).

Conditional GET (ETag / If-Modified-Since), connect and total read deadlines, a maximum
body size enforced while reading (also after decompression, so a gzip bomb stops at the
limit), at most ``max_redirects`` redirects, a bounded number of fetches at once and at
most ``per_host`` per host. Every failure becomes a :class:`FeedError` here; no other
module sees an httpx exception.

SSRF stance: this is a self-hosted service whose operator chooses the feed URLs, so a
configured URL may point anywhere, including a private address. A *redirect* is another
matter: a public feed redirecting to a private, loopback or link-local address (a cloud
metadata endpoint, an intranet host) is refused unless ``poll.allow_private_redirects``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import defaultdict
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from datetime import datetime, timezone
from urllib.parse import urlsplit

import httpx

from monitor import __version__
from monitor.exceptions import FeedError


@dataclass(frozen=True)
class FetchSettings:
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_bytes: int = 15 * 1024 * 1024
    max_redirects: int = 5
    concurrency: int = 8
    per_host: int = 2
    user_agent: str = f"monitor/{__version__}"
    allow_private_redirects: bool = False

    @classmethod
    def from_config(cls, poll) -> "FetchSettings":
        agent = poll.user_agent.format(version=__version__, contact=poll.contact_url)
        return cls(connect_timeout=poll.connect_timeout_seconds,
                   read_timeout=poll.read_timeout_seconds, max_bytes=poll.max_bytes,
                   max_redirects=poll.max_redirects, concurrency=poll.concurrency,
                   per_host=poll.per_host, user_agent=agent,
                   allow_private_redirects=poll.allow_private_redirects)


@dataclass(frozen=True)
class FetchResult:
    """A response worth parsing (200) or a 304 (``content`` is None)."""

    status: int
    url: str
    content: bytes | None
    headers: dict[str, str]
    etag: str | None
    last_modified: str | None
    max_age: float | None        # Cache-Control max-age, seconds


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def parse_max_age(value: str | None) -> float | None:
    if not value:
        return None
    for part in value.split(","):
        name, _, arg = part.strip().partition("=")
        if name.lower() in ("max-age", "s-maxage") and arg.strip().strip('"').isdigit():
            return float(arg.strip().strip('"'))
    return None


def _is_private(host: str) -> bool:
    try:
        addresses = {ipaddress.ip_address(host)}
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except OSError:
            return False          # the fetch itself will fail with a clear DNS error
        addresses = {ipaddress.ip_address(info[4][0]) for info in infos}
    return any(a.is_private or a.is_loopback or a.is_link_local or a.is_reserved
               for a in addresses)


class Fetcher:
    """Fetches feeds concurrently, within the limits of ``FetchSettings``."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self._global = asyncio.Semaphore(settings.concurrency)
        self._hosts: dict[str, asyncio.Semaphore] = defaultdict(
            lambda: asyncio.Semaphore(settings.per_host))
        self._client: httpx.AsyncClient | None = None

    async def __aenter__(self) -> "Fetcher":
        s = self.settings
        limits = httpx.Limits(max_connections=s.concurrency, max_keepalive_connections=s.concurrency)
        self._client = httpx.AsyncClient(
            follow_redirects=True, max_redirects=s.max_redirects, limits=limits,
            timeout=httpx.Timeout(s.read_timeout, connect=s.connect_timeout),
            headers={"User-Agent": s.user_agent,
                     "Accept": "application/atom+xml, application/rss+xml, "
                               "application/rdf+xml;q=0.9, application/xml;q=0.8, "
                               "text/xml;q=0.8, */*;q=0.5",
                     "Accept-Encoding": "gzip, deflate"},
            trust_env=False)
        return self

    async def __aexit__(self, *exc) -> None:
        if self._client is not None:
            await self._client.aclose()

    async def fetch(self, url: str, etag: str | None = None,
                    last_modified: str | None = None) -> FetchResult:
        """Fetch one feed; raises FeedError for every kind of failure."""
        host = urlsplit(url).hostname or ""
        async with self._global, self._hosts[host]:
            deadline = self.settings.connect_timeout + self.settings.read_timeout
            try:
                async with asyncio.timeout(deadline):
                    return await self._get(url, etag, last_modified)
            except TimeoutError:
                raise FeedError(f"timed out after {deadline:g} s (total deadline)",
                                kind="timeout") from None
            except httpx.HTTPError as exc:
                raise _translate(exc, url) from exc

    async def _get(self, url: str, etag: str | None, last_modified: str | None) -> FetchResult:
        headers = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        assert self._client is not None, "use Fetcher as an async context manager"
        request = self._client.build_request("GET", url, headers=headers)
        response = await self._client.send(request, stream=True)
        try:
            self._check_redirects(url, response)
            return await self._read(response)
        finally:
            await response.aclose()

    def _check_redirects(self, url: str, response: httpx.Response) -> None:
        if self.settings.allow_private_redirects or not response.history:
            return
        origin = urlsplit(url).hostname
        for hop in [*response.history[1:], response]:
            host = hop.request.url.host
            if host != origin and _is_private(host):
                raise FeedError(f"redirected to a private address ({host}); set "
                                "poll.allow_private_redirects to allow it", kind="redirect")

    async def _read(self, response: httpx.Response) -> FetchResult:
        status = response.status_code
        headers = {k.lower(): v for k, v in response.headers.items()}
        if status == 304:
            return FetchResult(304, str(response.url), None, headers, headers.get("etag"),
                               headers.get("last-modified"), parse_max_age(headers.get("cache-control")))
        if status >= 400:
            raise _status_error(status, response.reason_phrase, headers)
        if status != 200:
            raise FeedError(f"HTTP {status} {response.reason_phrase}: no feed in the response",
                            kind="http", status=status)
        content = await self._body(response, headers)
        return FetchResult(status, str(response.url), content, headers, headers.get("etag"),
                           headers.get("last-modified"), parse_max_age(headers.get("cache-control")))

    async def _body(self, response: httpx.Response, headers: dict[str, str]) -> bytes:
        limit = self.settings.max_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FeedError(f"body of {int(declared):,} bytes exceeds the limit of {limit:,}",
                            kind="too-large", status=200)
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > limit:
                raise FeedError(f"body exceeds the limit of {limit:,} bytes (stopped reading)",
                                kind="too-large", status=200)
            chunks.append(chunk)
        return b"".join(chunks)


def _status_error(status: int, reason: str, headers: dict[str, str]) -> FeedError:
    retry = parse_retry_after(headers.get("retry-after"), datetime.now(timezone.utc))
    message = f"HTTP {status} {reason}".strip()
    if retry is not None:
        message += f" (Retry-After {retry:g} s)"
    return FeedError(message, kind="http", status=status, retry_after=retry)


def _translate(exc: httpx.HTTPError, url: str) -> FeedError:
    """httpx's exceptions → FeedError; the one place that knows them."""
    if isinstance(exc, httpx.TooManyRedirects):
        return FeedError(f"too many redirects: {exc}", kind="redirect")
    if isinstance(exc, httpx.UnsupportedProtocol):
        return FeedError(f"redirect or URL with an unsupported scheme: {exc}", kind="redirect")
    if isinstance(exc, httpx.TimeoutException):
        return FeedError(f"timed out: {type(exc).__name__}", kind="timeout")
    if isinstance(exc, httpx.ConnectError):
        return FeedError(f"cannot connect: {exc or type(exc).__name__}", kind="connect")
    if isinstance(exc, httpx.DecodingError):
        return FeedError(f"cannot decode the response body: {exc}", kind="decoding")
    return FeedError(f"{type(exc).__name__}: {exc}", kind="network")
