"""httpx on asyncio's own sockets: the transport that ``monitor.fetch`` gives httpx.

httpx's default transport runs httpcore's HTTP/1.1 code over anyio, which wraps every socket
read and write in cancel scopes and task lookups. For a poller that sends hundreds of
conditional GETs, most of them answered by a 304 of a few hundred bytes, that wrapping
cost more than the requests (~17 % of a warm cycle over 200 local feeds). This module
plugs an asyncio network backend into httpcore through its public extension point
(``httpcore.AsyncNetworkBackend``) and exposes it as an ``httpx.AsyncBaseTransport``:
requests and responses stay httpx objects, HTTP/1.1 stays httpcore's connection (on h11),
and keep-alive checks and timeouts keep their httpcore semantics.

Only what the poller needs: HTTP/1.1 over TCP, optionally TLS; no proxies, no HTTP/2,
no Unix sockets. Errors are raised as the httpx exception of the same name as httpcore's
(``httpx.ConnectError``, ``httpx.ReadTimeout`` …), as httpx's own transport does.
"""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import typing

import httpcore
import httpx

_HIGH_WATER = 256 * 1024        # pause reading from the socket above this much unread data


class _Protocol(asyncio.Protocol):
    """Receives into a buffer that ``_Stream.read`` drains; tracks end of stream, errors
    and write back-pressure."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._data_waiter: asyncio.Future | None = None
        self._drain_waiter: asyncio.Future | None = None

    # --- asyncio callbacks
    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > _HIGH_WATER and not self._reading_paused and self.transport:
            self.transport.pause_reading()
            self._reading_paused = True
        self._wake_reader()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake_reader()
        return False                            # let the transport close itself

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.error = exc
        self._wake_reader()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        self._wake_writer()

    # --- used by _Stream
    def take(self, max_bytes: int) -> bytes:
        data = bytes(self.buffer[:max_bytes])
        del self.buffer[:max_bytes]
        if self._reading_paused and len(self.buffer) <= _HIGH_WATER // 4 and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()
        return data

    async def data(self) -> None:
        self._data_waiter = asyncio.get_running_loop().create_future()
        try:
            await self._data_waiter
        finally:
            self._data_waiter = None

    async def drained(self) -> None:
        while self._writing_paused and self.error is None and not self.eof:
            self._drain_waiter = asyncio.get_running_loop().create_future()
            try:
                await self._drain_waiter
            finally:
                self._drain_waiter = None

    def _wake_reader(self) -> None:
        if self._data_waiter is not None and not self._data_waiter.done():
            self._data_waiter.set_result(None)

    def _wake_writer(self) -> None:
        if self._drain_waiter is not None and not self._drain_waiter.done():
            self._drain_waiter.set_result(None)


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, transport: asyncio.Transport, protocol: _Protocol) -> None:
        self._transport = transport
        self._protocol = protocol

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        protocol = self._protocol
        if not protocol.buffer and not protocol.eof:
            try:
                async with asyncio.timeout(timeout):
                    await protocol.data()
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no data within {timeout:g} s") from None
        if protocol.buffer:
            return protocol.take(max_bytes)
        if protocol.error is not None:
            raise httpcore.ReadError(_describe(protocol.error)) from protocol.error
        return b""                              # the server closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        protocol = self._protocol
        if protocol.error is not None or self._transport.is_closing():
            raise httpcore.WriteError(_describe(protocol.error) if protocol.error
                                      else "the connection is closed")
        self._transport.write(buffer)
        try:
            async with asyncio.timeout(timeout):
                await protocol.drained()
        except TimeoutError:
            raise httpcore.WriteTimeout(f"could not send within {timeout:g} s") from None
        if protocol.error is not None:
            raise httpcore.WriteError(_describe(protocol.error)) from protocol.error

    async def aclose(self) -> None:
        # nothing is left to send when httpcore closes a connection: drop it at once
        # (a TLS close_notify exchange could wait on a server that never answers)
        self._transport.abort()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> _Stream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(self._transport, self._protocol, ssl_context,
                                                 server_hostname=server_hostname)
        except TimeoutError:
            self._transport.abort()
            raise httpcore.ConnectTimeout(f"TLS handshake not done within {timeout:g} s") from None
        except (OSError, ssl.SSLError, ConnectionError) as exc:
            self._transport.abort()
            raise httpcore.ConnectError(_describe(exc)) from exc
        if transport is None:                  # the connection went away during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._protocol.transport = transport
        return _Stream(transport, self._protocol)

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":              # an idle connection the server closed or wrote to
            return bool(self._protocol.buffer) or self._protocol.eof
        key = {"ssl_object": "ssl_object", "client_addr": "sockname",
               "server_addr": "peername", "socket": "socket"}.get(info)
        return self._transport.get_extra_info(key) if key else None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """TCP connections from the running asyncio loop (happy eyeballs as anyio does)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: typing.Iterable | None = None) -> _Stream:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, happy_eyeballs_delay=0.25,
                    local_addr=(local_address, 0) if local_address else None)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"no connection within {timeout:g} s") from None
        except socket.gaierror as exc:         # the name has no address (or DNS failed)
            raise httpcore.ConnectError(f"the name {host} could not be resolved: "
                                        f"{exc.strerror or _describe(exc)}") from exc
        except UnicodeError as exc:            # a name the resolver cannot encode (a label
            raise httpcore.ConnectError(      # of more than 63 characters)
                f"the name {host} is not a valid DNS name: {_describe(exc)}") from exc
        except OSError as exc:                 # refused, unreachable …
            # asyncio words a refusal "Connect call failed"; say what the system said
            reason = (os.strerror(exc.errno) if isinstance(exc.errno, int) and exc.errno > 0
                      else _describe(exc))
            raise httpcore.ConnectError(f"{reason} ({host}:{port})") from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return _Stream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _httpx_error(exc: Exception) -> Exception:
    """httpx's exception of the same name as httpcore's (httpx names them alike)."""
    cls = getattr(httpx, type(exc).__name__, None)
    if not (isinstance(cls, type) and issubclass(cls, httpx.TransportError)):
        cls = httpx.TransportError
    return cls(str(exc))


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: typing.AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except httpcore.TimeoutException as exc:
            raise _httpx_error(exc) from exc
        except (httpcore.NetworkError, httpcore.ProtocolError) as exc:
            raise _httpx_error(exc) from exc

    async def aclose(self) -> None:
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()


class AsyncioTransport(httpx.AsyncBaseTransport):
    """An httpx transport holding at most one HTTP/1.1 connection (httpcore's
    ``AsyncHTTPConnection`` on ``AsyncioBackend``), for one request at a time.

    The fetcher's connection slots already decide which fetch may use which connection, so
    no pool sits in between: before each request the connection is kept only if it serves
    the request's origin, is idle and neither expired nor closed by the server (the checks
    httpcore's pool makes); otherwise it is closed and a new one opened."""

    def __init__(self, ssl_context: ssl.SSLContext) -> None:
        self._ssl_context = ssl_context
        self._backend = AsyncioBackend()
        self._connection: httpcore.AsyncHTTPConnection | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        origin = httpcore.Origin(url.raw_scheme, url.raw_host, url.port
                                 or (443 if url.raw_scheme == b"https" else 80))
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=url.raw_scheme, host=url.raw_host, port=url.port,
                             target=url.raw_path),
            headers=request.headers.raw, content=request.stream,
            extensions=request.extensions)
        for attempt in (1, 2):
            connection = await self._connection_for(origin)
            try:
                response = await connection.handle_async_request(core_request)
                break
            except httpcore.ConnectionNotAvailable:    # closed between check and use
                await self._drop()
                if attempt == 2:
                    raise httpx.TransportError("no usable connection") from None
            except httpcore.TimeoutException as exc:
                raise _httpx_error(exc) from exc
            except (httpcore.NetworkError, httpcore.ProtocolError,
                    httpcore.UnsupportedProtocol) as exc:
                raise _httpx_error(exc) from exc
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_ResponseStream(typing.cast(
                                  typing.AsyncIterable[bytes], response.stream)),
                              extensions=response.extensions)

    async def _connection_for(self, origin: httpcore.Origin) -> httpcore.AsyncHTTPConnection:
        connection = self._connection
        if connection is not None and not (connection.can_handle_request(origin)
                                           and connection.is_idle()
                                           and not connection.has_expired()):
            await self._drop()
            connection = None
        if connection is None:
            connection = self._connection = httpcore.AsyncHTTPConnection(
                origin, ssl_context=self._ssl_context, http1=True, http2=False,
                network_backend=self._backend)
        return connection

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            await connection.aclose()

    async def aclose(self) -> None:
        await self._drop()
