"""A real HTTP server on 127.0.0.1 for tests: serves feed documents with ETag and
Last-Modified (answering 304), gzip, chosen statuses, Retry-After, delays and oversized
bodies. Threaded, so concurrent fetches are real."""

from __future__ import annotations

import gzip
import hashlib
import ssl
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    content_type: str = "application/rss+xml; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    gzip: bool = False
    conditional: bool = True
    last_modified: str = "Tue, 03 Jun 2025 12:00:00 GMT"
    stream_bytes: int = 0          # send this many bytes of filler after body (chunked)
    handler: object = None         # optional callable(request_handler) that does it all

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        server: FeedServer = self.server.owner
        server.hits[self.path] += 1
        server.requests.append((self.path, dict(self.headers)))
        server.peers.append(self.client_address)
        route = server.routes.get(self.path)
        if route is None:
            return self._send(404, b"not found", "text/plain")
        if route.handler:
            return route.handler(self)
        if route.delay:
            time.sleep(route.delay)
        inm = self.headers.get("If-None-Match")
        if route.status == 200 and route.conditional and (
                inm == route.etag
                or (inm is None and self.headers.get("If-Modified-Since") == route.last_modified)):
            return self._send(304, b"", None, {"ETag": route.etag})
        if route.stream_bytes:
            return self._stream(route)
        body, extra = route.body, dict(route.headers)
        if route.status == 200 and route.conditional:
            extra.update({"ETag": route.etag, "Last-Modified": route.last_modified})
        if route.gzip:
            body = gzip.compress(body)
            extra["Content-Encoding"] = "gzip"
        self._send(route.status, body, route.content_type, extra)

    def _send(self, status, body, content_type, headers=None):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _stream(self, route: Route):
        self.send_response(200)
        self.send_header("Content-Type", route.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        chunk = b"<!-- filler -->" * 4096
        sent = 0
        try:
            for part in (route.body, *([chunk] * (route.stream_bytes // len(chunk) + 1))):
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                sent += len(part)
                if sent > route.stream_bytes:
                    break
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass


class FeedServer:
    def __init__(self, backlog: int = 5, tls: tuple | None = None) -> None:
        """``backlog``: the listen queue (socketserver's default is 5; raise it when many
        clients connect at once, or connects time out under load). ``tls``: (certificate,
        key) files to serve HTTPS instead of HTTP."""
        self.routes: dict[str, Route] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict]] = []
        self.peers: list[tuple[str, int]] = []     # the client's address of each request
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler, bind_and_activate=False)
        self._httpd.request_queue_size = backlog
        try:
            self._httpd.server_bind()
            self._httpd.server_activate()
            if tls:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                context.load_cert_chain(*map(str, tls))
                self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        except OSError:
            self._httpd.server_close()
            raise
        self._httpd.daemon_threads = True
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._scheme = "https" if tls else "http"

    @property
    def base(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def add(self, path: str, body: bytes | str = b"", **kwargs) -> str:
        if isinstance(body, str):
            body = body.encode("utf-8")
        self.routes[path] = Route(body=body, **kwargs)
        return self.url(path)

    def start(self) -> FeedServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
