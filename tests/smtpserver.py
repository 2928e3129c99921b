"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests: plain, STARTTLS, AUTH, SMTPUTF8 (or not), and
scripted faults (a reply code per recipient for the next N attempts)."""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import subprocess
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], object]] = []
        self.faults: dict[str, list[str]] = {}     # recipient → replies for the next RCPTs
        self.drop_after_data: set[str] = set()     # take the message, then hang up unanswered
        self.data_delay = 0.0                      # seconds before answering each DATA
        self.data_started = threading.Event()      # set when the first DATA arrives

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        queue = self.faults.get(address)
        if queue:
            return queue.pop(0)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.data_started.set()
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        message = message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((list(envelope.rcpt_tos), message))
        if self.drop_after_data & set(envelope.rcpt_tos):
            server.transport.close()               # the reply is never written
        return "250 Message accepted"

    def received_by(self, recipient: str) -> list:
        return [m for rcpts, m in self.messages if recipient in rcpts]


class SmtpServer:
    def __init__(self, tls_files: tuple[Path, Path] | None = None, auth: tuple[str, str] | None = None,
                 implicit_tls: bool = False, auth_reply: str | None = None,
                 smtputf8: bool = True) -> None:
        self.recorder = Recorder()
        self.port = free_port()
        kwargs: dict = {"enable_SMTPUTF8": smtputf8}      # (aiosmtpd offers it by default)
        if tls_files and not implicit_tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls_files)
            kwargs.update(tls_context=context, require_starttls=True)
        if tls_files and implicit_tls:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(*tls_files)
            kwargs.update(ssl_context=context)
        if auth:
            user, password = auth

            def authenticator(server, session, envelope, mechanism, data):
                ok = data.login.decode() == user and data.password.decode() == password
                if auth_reply:          # every sign-in answered so ("454 4.7.0 …": try later)
                    return AuthResult(success=False, handled=False, message=auth_reply)
                return AuthResult(success=ok, handled=False)
            kwargs.update(authenticator=authenticator, auth_require_tls=bool(tls_files))
        self._kwargs = kwargs
        self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port, **kwargs)

    def start(self) -> SmtpServer:
        """Start on the free port found; if another test (another pytest worker) took it
        in between, on a new one."""
        for attempt in range(5):
            try:
                self.controller.start()
                return self
            except (OSError, RuntimeError):
                if attempt == 4:
                    raise
                self.port = free_port()
                self.controller = Controller(self.recorder, hostname="127.0.0.1", port=self.port,
                                             **self._kwargs)
        return self

    def stop(self) -> None:
        self.controller.stop()
