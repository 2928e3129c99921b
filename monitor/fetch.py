"""Fetching feeds politely with httpx (with ``monitor.asyncnet``, its transport on asyncio
sockets, the only module that imports httpx).

Conditional GET (ETag / If-Modified-Since), connect and total read deadlines, a maximum
body size enforced while reading, at most ``max_redirects`` redirects, a bounded number of
fetches at once and at most ``per_host`` per host. Every failure becomes a
:class:`FeedError` here; no other module sees an httpx exception.

Hostile servers:
- The deadline (connect + read timeout) covers the whole fetch, redirects and body
  included, so a server trickling one byte at a time (slow-loris) or a chunked body that
  never ends is cut off at the deadline, not kept alive by each byte it sends.
- ``max_bytes`` bounds the raw body *and* each decompressed layer. The body is read raw
  and inflated here with ``zlib`` and ``max_length``, 256 KiB at a time, so a gzip bomb
  stops after at most ``max_bytes + 1`` inflated bytes (httpx's own decoder would inflate
  each network chunk whole, ~64 KB into ~64 MB). Only gzip and deflate are asked for and accepted.
- Memory: a body larger than ``LARGE_BODY`` is read on only while it holds one of
  ``LARGE_READS`` slots (waiting for one counts against its deadline), so however many
  fetches are in flight, at most ``LARGE_READS`` bodies grow past 1 MiB at a time: a cycle
  that meets several gzip bombs or endless bodies holds about ``LARGE_READS × max_bytes``
  of them, not ``concurrency × max_bytes``. A body is in memory at most twice (the growing
  buffer and the finished body, for the moment of the copy).
- Redirects are followed here, one hop at a time: each target is checked *before* it is
  requested (scheme http/https only, private-address rule below), and the hops counted.

SSRF stance: this is a self-hosted service whose operator chooses the feed URLs, so a
configured URL may point anywhere, including a private address. A *redirect* is another
matter: a redirect to another host whose address is not globally routable (private,
loopback, link-local — a cloud metadata endpoint —, shared, reserved) is refused before
any request is sent to it, unless ``poll.allow_private_redirects``. Residual risk: the
name is resolved for the check and again for the connection, so a DNS server that
answers differently each time (rebinding) could still steer a redirect; operators who
need more isolate the service at the network level.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import ipaddress
import re
import ssl
import typing
import zlib
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit

import httpx

from monitor import __version__
from monitor.asyncnet import AsyncioTransport
from monitor.exceptions import FeedError
from monitor.numbers import is_whole


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
    def from_config(cls, poll) -> FetchSettings:
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
    moved: str | None = None     # where permanent redirects (301, 308 only) led


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if is_whole(value):
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - now).total_seconds())


def parse_max_age(value: str | None) -> float | None:
    """Seconds of a Cache-Control header's ``max-age``, else of its ``s-maxage`` (meant for
    shared caches: a poller heeds it only when the server says nothing to others), wherever
    each stands in the header; None when it has neither."""
    if not value:
        return None
    found: dict[str, float] = {}
    for part in value.split(","):
        name, _, arg = part.strip().partition("=")
        if name.lower() in ("max-age", "s-maxage") and is_whole(arg.strip().strip('"')):
            found.setdefault(name.lower(), float(arg.strip().strip('"')))
    return found.get("max-age", found.get("s-maxage"))


async def _is_private(host: str) -> bool:
    """True when ``host`` is, or resolves to, an address that is not globally routable.
    A name that cannot be resolved raises the resolver's ``OSError`` (``socket.gaierror``):
    it is neither private nor public, and the caller says which name failed."""
    try:
        addresses = {ipaddress.ip_address(host.strip("[]"))}
    except ValueError:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
        addresses = {ipaddress.ip_address(str(info[4][0]).partition("%")[0]) for info in infos}
    return any(not _routable(a) for a in addresses)


def _routable(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


LARGE_BODY = 1024 * 1024      # a body growing past this many bytes needs a slot
STEP = 256 * 1024             # the most one inflation step produces
LARGE_READS = 2               # bodies that may grow past LARGE_BODY at a time


class _Inflater:
    """One Content-Encoding layer (gzip or deflate), never yielding more than ``limit``
    bytes in all: ``zlib``'s ``max_length`` stops the inflation at the limit."""

    def __init__(self, encoding: str, limit: int) -> None:
        self.encoding = encoding
        self.limit = limit
        self.produced = 0
        self._raw_fallback = encoding == "deflate"   # zlib-wrapped, else raw deflate
        bits = zlib.MAX_WBITS | 16 if encoding == "gzip" else zlib.MAX_WBITS
        self._z = zlib.decompressobj(bits)

    def pieces(self, data: bytes):
        """``data`` inflated, in pieces of at most ``STEP`` bytes (a gzip bomb's 64 KiB
        chunk is never inflated whole in one block)."""
        while data and not self._z.eof:     # bytes after the end of the stream are ignored
            try:
                out = self._z.decompress(data, min(STEP, self.limit - self.produced + 1))
            except zlib.error as exc:
                if self._raw_fallback:
                    self._raw_fallback = False
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise FeedError(f"cannot decode the {self.encoding} body: {exc}",
                                kind="decoding", status=200) from None
            self._raw_fallback = False
            data = self._z.unconsumed_tail
            if out:
                yield self._count(out)

    def flush(self) -> bytes:
        """The rest of the stream; an error when the body ended before the compressed
        stream did (a connection cut mid-body must not pass for a complete feed, or its
        validators would be saved and the missing items never fetched)."""
        try:
            out = self._count(self._z.flush())
        except zlib.error as exc:
            raise FeedError(f"cannot decode the {self.encoding} body: {exc}",
                            kind="decoding", status=200) from None
        if not self._z.eof:
            raise FeedError(f"the {self.encoding} body ends before its compressed stream "
                            f"does (truncated after {self.produced:,} bytes)",
                            kind="decoding", status=200)
        return out

    def _count(self, out: bytes) -> bytes:
        self.produced += len(out)
        if self.produced > self.limit:
            raise FeedError(f"body exceeds the limit of {self.limit:,} bytes once decompressed "
                            f"({self.encoding}; stopped inflating)", kind="too-large", status=200)
        return out


def _inflaters(content_encoding: str, limit: int) -> list[_Inflater]:
    """The decoders for a Content-Encoding header, in the order to apply them."""
    names = [n.strip().lower() for n in content_encoding.split(",") if n.strip()]
    names = ["gzip" if n == "x-gzip" else n for n in names if n != "identity"]
    unknown = [n for n in names if n not in ("gzip", "deflate")]
    if unknown:
        raise FeedError(f"unsupported Content-Encoding {', '.join(unknown)!r} "
                        "(only gzip and deflate are accepted)", kind="decoding", status=200)
    return [_Inflater(n, limit) for n in reversed(names)]


_ACCEPT = ("application/atom+xml, application/rss+xml, application/rdf+xml;q=0.9, "
           "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.5")
_REDIRECTS = (301, 302, 303, 307, 308)


@functools.cache
def _ssl_context():
    """The TLS settings of every connection: CA bundle read once per process (~20 ms)."""
    return httpx.create_ssl_context(trust_env=False)   # certifi, as before: no env lookups


class _Slots:
    """Connection slots: each slot is an httpx transport (``AsyncioTransport``) holding at
    most one connection.

    A fetch takes a slot of its feed's host (at most ``per_host`` exist per host) and gives it
    back when done, so the next feed on that host reuses the open connection. One shared
    pool would do the same, but httpx's pool re-examines every pooled connection on each
    request and costs several times more than the request itself on a local network; one
    connection per transport keeps that check O(1). Idle slots beyond ``max_idle`` (least
    recently used first) are closed, so a cycle over many hosts holds few sockets open."""

    def __init__(self, settings: FetchSettings, max_idle: int) -> None:
        self.settings = settings
        self.max_idle = max_idle
        self._ssl = _ssl_context()
        self._idle: dict[str, list[AsyncioTransport]] = defaultdict(list)
        self._order: list[tuple[str, AsyncioTransport]] = []   # idle, oldest first
        self._count: dict[str, int] = defaultdict(int)
        self._waiters: dict[str, asyncio.Condition] = defaultdict(asyncio.Condition)

    async def take(self, host: str) -> AsyncioTransport:
        cond = self._waiters[host]
        async with cond:
            await cond.wait_for(lambda: self._idle[host] or self._count[host] < self.settings.per_host)
            if self._idle[host]:
                transport = self._idle[host].pop()
                self._order.remove((host, transport))
                return transport
            self._count[host] += 1
        return AsyncioTransport(self._ssl)

    async def give(self, host: str, transport: AsyncioTransport, reuse: bool) -> None:
        cond = self._waiters[host]
        evicted = []
        async with cond:
            if reuse:
                self._idle[host].append(transport)
                self._order.append((host, transport))
                while len(self._order) > self.max_idle:
                    old_host, old = self._order.pop(0)
                    self._idle[old_host].remove(old)
                    self._count[old_host] -= 1
                    evicted.append((old_host, old))
            else:
                self._count[host] -= 1
                evicted.append((host, transport))
            cond.notify()
        for other_host, old in evicted:
            await old.aclose()
            if other_host != host:
                async with self._waiters[other_host]:
                    self._waiters[other_host].notify()

    async def aclose(self) -> None:
        for _host, transport in self._order:
            await transport.aclose()
        self._order.clear()
        self._idle.clear()


class Fetcher:
    """Fetches feeds concurrently, within the limits of ``FetchSettings``."""

    def __init__(self, settings: FetchSettings) -> None:
        self.settings = settings
        self._global = asyncio.Semaphore(settings.concurrency)
        self._large = asyncio.Semaphore(LARGE_READS)
        self._slots: _Slots | None = None
        self._headers = {"User-Agent": settings.user_agent, "Accept": _ACCEPT,
                         "Accept-Encoding": "gzip, deflate"}
        self._timeout = {"connect": settings.connect_timeout, "read": settings.read_timeout,
                         "write": settings.read_timeout, "pool": settings.read_timeout}

    async def __aenter__(self) -> Fetcher:
        self._slots = _Slots(self.settings, max_idle=max(2 * self.settings.concurrency, 16))
        return self

    async def __aexit__(self, *exc) -> None:
        if self._slots is not None:
            await self._slots.aclose()

    async def fetch(self, url: str, etag: str | None = None,
                    last_modified: str | None = None) -> FetchResult:
        """Fetch one feed; raises FeedError for every kind of failure."""
        assert self._slots is not None, "use Fetcher as an async context manager"
        host = urlsplit(url).hostname or ""
        # the host's slot first, then a global one: a feed waiting for its busy host holds
        # no global slot, so feeds of other hosts go ahead (poll.concurrency at work)
        transport = await self._slots.take(host)
        reuse = False
        deadline = self.settings.connect_timeout + self.settings.read_timeout
        try:
            async with self._global:
                async with asyncio.timeout(deadline):
                    result = await self._get(transport, url, etag, last_modified)
            reuse = True
            return result
        except TimeoutError:
            raise FeedError(f"timed out after {deadline:g} s (total deadline)",
                            kind="timeout") from None
        except httpx.HTTPError as exc:
            raise _translate(exc, url) from exc
        except httpx.InvalidURL as exc:
            raise FeedError(f"invalid feed URL: {exc}", kind="url") from None
        finally:
            # a slot whose fetch failed or was cut off is closed, not reused
            await asyncio.shield(self._slots.give(host, transport, reuse))

    async def _get(self, transport: AsyncioTransport, url: str, etag: str | None,
                   last_modified: str | None) -> FetchResult:
        origin, auth = _credentials(_feed_url(url))
        # the validators go with every hop: after a redirect they belong to its target
        conditional = [(name, value) for name, value in (
            (b"If-None-Match", _header_value(etag)),
            (b"If-Modified-Since", _header_value(last_modified))) if value is not None]
        headers = _raw(dict(self._headers, **auth)) + conditional
        request = httpx.Request("GET", origin, headers=headers, extensions={"timeout": self._timeout})
        permanent: bool | None = None          # None: no redirect yet
        for _hop in range(self.settings.max_redirects + 1):
            response = await transport.handle_async_request(request)
            response.request = request
            try:
                target = self._redirect_target(response)
                if target is None:
                    result = await self._read(response)
                    return replace(result, moved=result.url) if permanent else result
            finally:
                await response.aclose()
            permanent = permanent is not False and response.status_code in (301, 308)
            await self._check_redirect(url, target)
            same_origin = (target.scheme, target.host, target.port) == (
                origin.scheme, origin.host, origin.port)
            request = httpx.Request("GET", target,   # credentials only to their own origin
                                    headers=_raw(dict(self._headers,
                                                      **(auth if same_origin else {})))
                                    + conditional,
                                    extensions={"timeout": self._timeout})
        raise FeedError(f"too many redirects (more than {self.settings.max_redirects}); "
                        f"last to {str(request.url)[:200]}", kind="redirect")

    @staticmethod
    def _redirect_target(response: httpx.Response) -> httpx.URL | None:
        if response.status_code not in _REDIRECTS:
            return None
        # whitespace around the value is no part of the URL: the HTTP parser drops spaces
        # and tabs, this the rest (a no-break space from a template); a blank value is
        # none (joined to the request's URL it was the same URL, asked again and again)
        # two Location headers: httpx joins them with ", " into one URL that is neither;
        # copies of one value are that value, two different ones are an error (as browsers
        # treat them), not a guess
        locations = list(dict.fromkeys(value.strip()
                                       for value in response.headers.get_list("location")))
        if len(locations) > 1:
            raise FeedError(f"HTTP {response.status_code} redirect with {len(locations)} "
                            "different Location headers: "
                            + ", ".join(repr(value[:200]) for value in locations),
                            kind="redirect", status=response.status_code)
        location = locations[0] if locations else ""
        if not location:
            raise FeedError(f"HTTP {response.status_code} redirect without a Location header "
                            "(or a blank one)", kind="redirect", status=response.status_code)
        try:
            target = response.request.url.join(location)
        except httpx.InvalidURL as exc:
            raise FeedError(f"redirected to an invalid URL: {exc}", kind="redirect") from None
        problem = _bad_address(target)
        if problem:
            raise FeedError(f"redirected to an invalid URL ({problem}): {location[:200]}",
                            kind="redirect")
        return target

    async def _check_redirect(self, origin_url: str, target: httpx.URL) -> None:
        """Refuse a redirect before it is followed: another scheme than http(s), or another
        host whose address is private (unless poll.allow_private_redirects)."""
        if target.scheme not in ("http", "https"):
            raise FeedError(f"redirected to an unsupported scheme ({target.scheme}:); only "
                            "http and https are followed", kind="redirect")
        if self.settings.allow_private_redirects:
            return
        host = target.host
        if host == urlsplit(origin_url).hostname:
            return
        try:    # the name the connection will look up: IDNA 2008, as httpx spells it
            private = await _is_private(target.raw_host.decode("ascii"))
        except OSError as exc:      # not a private address: no address at all
            raise FeedError(f"the feed {origin_url} redirects to {host}, a name that could "
                            f"not be resolved: {exc.strerror or exc}", kind="redirect") from None
        if private:
            raise FeedError(f"redirected to a private address ({host}); set "
                            "poll.allow_private_redirects to allow it", kind="redirect")

    async def _read(self, response: httpx.Response) -> FetchResult:
        status = response.status_code
        headers = {k.lower(): v for k, v in response.headers.items()}
        if status == 304:
            body = typing.cast(httpx.AsyncByteStream, response.stream)
            async for _ in body:               # the (empty) body, so the connection is reused;
                pass                           # straight from the transport, no decoders
            return FetchResult(304, str(response.url), None, headers, *_validators(response),
                               parse_max_age(headers.get("cache-control")))
        if status >= 400:
            raise _status_error(status, response.reason_phrase, headers)
        if status != 200:
            raise FeedError(f"HTTP {status} {response.reason_phrase}: no feed in the response",
                            kind="http", status=status)
        content = await self._body(response, headers)
        return FetchResult(status, str(response.url), content, headers, *_validators(response),
                           parse_max_age(headers.get("cache-control")))

    async def _body(self, response: httpx.Response, headers: dict[str, str]) -> bytes:
        limit = self.settings.max_bytes
        declared = headers.get("content-length", "")
        if is_whole(declared) and int(declared) > limit:
            raise FeedError(f"body of {int(declared):,} bytes exceeds the limit of {limit:,}",
                            kind="too-large", status=200)
        layers = _inflaters(headers.get("content-encoding", ""), limit)
        body, raw_size = bytearray(), 0     # one growing block, not a heap of chunks
        large = False
        if is_whole(declared) and int(declared) > LARGE_BODY:
            await self._large.acquire()
            large = True
        try:
            async for raw in response.aiter_raw():
                raw_size += len(raw)
                if raw_size > limit:
                    raise _too_large(limit)
                for piece in _decoded(layers, raw):
                    body += piece
                    if len(body) > limit:
                        raise _too_large(limit)
                    if not large and len(body) > LARGE_BODY:
                        await self._large.acquire()     # the server waits meanwhile (TCP)
                        large = True
            for piece in _decoded(layers, b"", final=True):
                body += piece
            if len(body) > limit:
                raise _too_large(limit)
            return bytes(body)
        finally:
            # emptied now: a failure's traceback holds this frame, and with it the partly
            # read body (up to max_bytes), until the cycle's end collects the cycle
            body.clear()
            if large:
                self._large.release()


_HOST_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9_-]+)*\.?")


def _bad_address(url: httpx.URL) -> str | None:
    """What is wrong with a redirect target's host or port (None: nothing): a port out of
    1–65535 or a host that is no name or address ("[bad") would fail deep in the socket
    layer with a message that names neither."""
    port = url.port
    if port is not None and not 0 < port < 65536:
        return f"port {port} is not 1-65535"
    try:
        host = url.host
    except UnicodeError:                    # idna decodes the host here: "xn--zz" is none
        return f"host {url.raw_host[:100].decode('ascii', 'replace')!r} is not a valid name"
    if not host:
        return "no host"
    try:
        ipaddress.ip_address(host)
        return None
    except ValueError:
        pass
    name = url.raw_host.decode("ascii", "replace")     # as httpx connects to it (IDNA 2008)
    if not _HOST_RE.fullmatch(name):
        return f"host {host[:100]!r} is not a valid name"
    if len(name.rstrip(".")) > 253 or any(len(label) > 63 for label in name.split(".")):
        # the resolver would refuse it with a UnicodeError, no FeedError
        return f"host {host[:100]!r} is not a valid name (longer than DNS allows)"
    return None


def _feed_url(url: str) -> httpx.URL:
    """A feed's URL as httpx reads it; a FeedError for one it cannot use (idna refuses
    the host "xn--zz", but only when asked for it, deep in the request)."""
    try:
        parsed = httpx.URL(url)
        if not parsed.host:
            raise FeedError("invalid feed URL: no host", kind="url")
    except (httpx.InvalidURL, UnicodeError) as exc:
        raise FeedError(f"invalid feed URL: {exc}", kind="url") from None
    return parsed


def _validators(response: httpx.Response) -> tuple[str | None, str | None]:
    """The response's ETag and Last-Modified as the server's own bytes, each byte one
    character (Latin-1), so that ``_header_value`` sends back exactly those bytes: httpx
    reads a header that is valid UTF-8 as UTF-8 ("café" sent as UTF-8 came back as the
    Latin-1 byte E9, and never matched).

    A response with two ETag (or Last-Modified) headers is malformed (RFC 9110 allows one);
    the first is kept, as sent: the origin's own comes first when a proxy or middleware
    adds another after it, and a single tag goes back as a single validator (httpx joins
    repeated headers, '"a", "b"', which If-None-Match would read as a list of two)."""
    found: dict[bytes, str] = {}
    for name, value in response.headers.raw:
        key = name.lower()
        if key in (b"etag", b"last-modified") and key not in found:
            found[key] = value.decode("latin-1")
    return found.get(b"etag"), found.get(b"last-modified")


def _raw(headers: dict[str, str]) -> list[tuple[bytes, bytes]]:
    return [(name.encode("ascii"), value.encode("ascii")) for name, value in headers.items()]


def _header_value(value: str | None) -> bytes | None:
    """A stored ETag or Last-Modified as it can be sent back: the server's own bytes (a
    header may carry Latin-1 bytes, RFC 9110's obs-text, decoded as such when read); None
    for a value that cannot have come from a header (it would fail every later request)."""
    if not value:
        return None
    if value.isascii():
        return value.encode("ascii") if value.isprintable() else None
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        return None
    return raw if all(b >= 0x20 and b != 0x7f for b in raw) else None


def _too_large(limit: int) -> FeedError:
    return FeedError(f"body exceeds the limit of {limit:,} bytes (stopped reading)",
                     kind="too-large", status=200)


def _decoded(layers: list[_Inflater], data: bytes, final: bool = False):
    """``data`` through every Content-Encoding layer (flushing them when final), in pieces
    of at most ``STEP`` bytes."""
    if not layers:
        if data:
            yield data
        return
    layer, rest = layers[0], layers[1:]
    for piece in layer.pieces(data):
        yield from _decoded(rest, piece)
    if final:
        yield from _decoded(rest, layer.flush())
        yield from _decoded(rest, b"", final=True)


def _status_error(status: int, reason: str, headers: dict[str, str]) -> FeedError:
    retry = parse_retry_after(headers.get("retry-after"), datetime.now(timezone.utc))
    message = f"HTTP {status} {reason}".strip()
    if retry is not None:
        message += f" (Retry-After {_span(retry)})"
    return FeedError(message, kind="http", status=status, retry_after=retry)


def _span(seconds: float) -> str:
    """A server's wait as people read it: 120 s, 2 h, 3 d (31 d or more: what the next
    check is capped at, ``monitor.scheduling.MAX_FLOOR``)."""
    if seconds >= 31 * 86400:
        return "31 d or more"
    for unit, size in (("d", 86400), ("h", 3600)):
        if seconds >= 2 * size:
            return f"{seconds / size:.0f} {unit}"
    return f"{seconds:.0f} s"


def _credentials(url: httpx.URL) -> tuple[httpx.URL, dict[str, str]]:
    """A URL's user info as an HTTP Basic ``Authorization`` header, and the URL without it
    (so no request line, log or error message ever carries the password)."""
    if not url.userinfo:
        return url, {}
    token = base64.b64encode(f"{url.username}:{url.password or ''}".encode()).decode("ascii")
    return url.copy_with(userinfo=b""), {"Authorization": f"Basic {token}"}


def _during_tls(exc: BaseException) -> bool:
    """An ssl.SSLError among the causes of ``exc`` (httpx → httpcore → ssl)."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, ssl.SSLError):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _translate(exc: httpx.HTTPError, url: str) -> FeedError:
    """httpx's exceptions → FeedError; the one place that knows them."""
    if isinstance(exc, httpx.UnsupportedProtocol):
        return FeedError(f"redirect or URL with an unsupported scheme: {exc}", kind="redirect")
    if isinstance(exc, httpx.TimeoutException):
        what = {"ConnectTimeout": "connecting", "ReadTimeout": "waiting for data",
                "WriteTimeout": "sending the request", "PoolTimeout": "waiting for a connection"}
        parts = ("timed out", what.get(type(exc).__name__), f"({exc})" if str(exc) else None)
        return FeedError(" ".join(p for p in parts if p), kind="timeout")
    if isinstance(exc, httpx.ConnectError):
        error = FeedError(f"cannot connect: {exc or type(exc).__name__}", kind="connect")
        # a TLS failure (a certificate nobody vouches for, a handshake cut off) is a
        # ConnectError too, but the server was reached and did a handshake: it backs off
        # as a server that answers does (monitor.scheduling.UNREACHED_CAP is for the others)
        error.reached = _during_tls(exc)
        return error
    if isinstance(exc, httpx.DecodingError):
        return FeedError(f"cannot decode the response body: {exc}", kind="decoding")
    return FeedError(f"{type(exc).__name__}: {exc}", kind="network")
