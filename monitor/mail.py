"""Delivering the digest: SMTP (smtplib, the only module that uses it) or .eml files.

One message per recipient (never Bcc): each recipient's delivery is its own ledger entry,
so a failure for one is retried for that one alone. A message is multipart/alternative
(plain text, then HTML) with Date, Message-ID, From, To and Subject; header values are
single lines with control characters removed, so feed text can never inject a header.

Errors are classified once, here: 4xx replies, refused or dropped connections and timeouts
are temporary (retried with backoff); 5xx replies are permanent for that recipient. A
connection lost *after* the whole message went out in DATA, before the server's reply, is
neither: the server may well have accepted it, so the error says ``unknown`` and the
delivery is never re-sent without an explicit command.
"""

from __future__ import annotations

import hashlib
import os
import re
import smtplib
import ssl
import time
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import EmailMessage
from email.policy import default as _default_policy
from email.utils import format_datetime, make_msgid, parseaddr
from pathlib import Path
from typing import Protocol

from monitor.exceptions import DeliveryError

_UNSAFE = re.compile(r"[\x00-\x1f\x7f]+")
# parts in 7-bit transfer encodings (quoted-printable or base64 for non-ASCII text): raw
# 8-bit bytes are for a server that offers 8BITMIME and a MAIL FROM that says BODY=8BITMIME,
# which smtplib sends only with SMTPUTF8 (a quiet day's short text part had gone out 8-bit)
POLICY = _default_policy.clone(cte_type="7bit")


def header_value(value: str) -> str:
    return " ".join(_UNSAFE.sub(" ", value).split())


def mail_address(address: str) -> str:
    """``address`` as mail servers take it: a domain beyond ASCII as its IDNA A-label
    ("ana@bücher.example" is "ana@xn--bcher-kva.example", which needs no SMTPUTF8); a local
    part beyond ASCII stays as written (only a server offering SMTPUTF8 takes it)."""
    import idna

    local, _, domain = address.rpartition("@")
    if domain.isascii():
        return address
    try:
        return f"{local}@{idna.encode(domain, uts46=True).decode('ascii')}"
    except idna.IDNAError:          # not a name the DNS could hold: the server will say so
        return address


def build_message(*, sender: str, recipient: str, subject: str, html: str, text: str,
                  when: datetime, message_id: str | None = None) -> EmailMessage:
    sender, recipient = mail_address(header_value(sender)), mail_address(header_value(recipient))
    domain = sender.rpartition("@")[2]
    message = EmailMessage(policy=POLICY)
    # as text, as the To header: an Address refuses a local part beyond ASCII ("zoë@"), which
    # SMTPUTF8 and an outbox copy (RFC 6532) carry as written
    message["From"] = f"monitor digest <{sender}>"
    message["To"] = recipient
    _set_subject(message, header_value(subject))
    message["Date"] = format_datetime(when)
    message["Message-ID"] = message_id or make_msgid(domain=domain or None)
    message["Auto-Submitted"] = "auto-generated"
    message["List-Id"] = f"monitor digest <digest.{domain or 'localhost'}>"
    message.set_content(text, subtype="plain", charset="utf-8")
    message.add_alternative(html, subtype="html", charset="utf-8")
    return message


def _set_subject(message: EmailMessage, subject: str) -> None:
    """The Subject, folded so that it reads back as written. The standard library's own
    folding of non-ASCII text loses or doubles the spaces around encoded words ("중국
    희토류" came back as "중국희토류", "— Zölle" as "  —Zölle"), so such a subject is encoded
    here, spaces inside the encoded words, in lines short enough to be sent as they are."""
    if subject.isascii():
        message["Subject"] = subject
        return
    message.set_raw("Subject", Header(subject, "utf-8", header_name="Subject").encode(linesep="\n"))


class Mailer(Protocol):
    def send(self, message: EmailMessage, recipient: str) -> str | None:
        """Deliver one message to one recipient; DeliveryError(permanent=…) on failure.
        Returns the file it was written to when it was written rather than mailed."""


@dataclass
class SmtpMailer:
    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    ssl_context: ssl.SSLContext | None = None
    ca_file: str | None = None          # trusted instead of the system's CAs

    @classmethod
    def from_config(cls, smtp) -> SmtpMailer:
        return cls(host=smtp.host, port=smtp.port, security=smtp.security,
                   username=smtp.username, password=smtp.password(), timeout=smtp.timeout_seconds,
                   ca_file=smtp.ca_file)

    def _context(self) -> ssl.SSLContext:
        if self.ssl_context is not None:
            return self.ssl_context
        try:
            return ssl.create_default_context(cafile=self.ca_file)
        except (OSError, ssl.SSLError) as exc:      # missing, unreadable, not PEM certificates
            # retried, as `config check` promises ("until it is there"): a file put in place
            # (or a config fixed) within the retry window lets the copies go out
            raise DeliveryError(f"smtp.ca_file {self.ca_file}: cannot be read as PEM certificates: "
                                f"{exc}", permanent=False) from None

    def _connect(self, reached: list[bool] | None = None) -> _TrackedSMTP | _TrackedSMTP_SSL:
        """A client signed in as the config says; ``reached`` gets True once the server took
        the connection (before its greeting)."""
        context = self._context()
        client: _TrackedSMTP | _TrackedSMTP_SSL
        reached = reached if reached is not None else []
        if self.security == "ssl":
            client = _TrackedSMTP_SSL(self.host, self.port, timeout=self.timeout, context=context,
                                      reached=reached)
        else:
            client = _TrackedSMTP(self.host, self.port, timeout=self.timeout, reached=reached)
        try:
            if self.security == "starttls":
                client.starttls(context=context)
            if self.username:
                client.login(self.username, self.password or "")
        except BaseException:
            client.close()              # not left open until collected
            raise
        return client

    def _reply_error(self, code: int, reply: bytes | str, what: str) -> DeliveryError:
        """The server's refusal, naming the server and what it refused (a 421 at the
        greeting is the server's, a 550 at RCPT the recipient's); 5xx is permanent."""
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return DeliveryError(f"SMTP {self.host}:{self.port} {what}: {code} {header_value(text)}",
                             permanent=500 <= code < 600)

    def send(self, message: EmailMessage, recipient: str) -> None:
        client: _TrackedSMTP | _TrackedSMTP_SSL | None = None
        reached: list[bool] = []
        try:
            client = self._connect(reached)
            try:
                address = mail_address(recipient)
                client.ehlo_or_helo_if_needed()
                sender = parseaddr(str(message["From"]))[1]
                if not (address + sender).isascii() and not client.has_extn("smtputf8"):
                    whose = (f"the address {address}" if not address.isascii()
                             else f"the sender's address {sender} (digest.sender)")
                    raise DeliveryError(
                        f"SMTP {self.host}:{self.port} does not offer SMTPUTF8, which {whose} "
                        "needs (letters beyond ASCII before its @); give it an address in ASCII, "
                        "or use a server that offers SMTPUTF8", permanent=True)
                client.send_message(message, to_addrs=[address])
            finally:
                _quit(client)
        except smtplib.SMTPRecipientsRefused as exc:
            code, reply = next(iter(exc.recipients.values()))
            raise self._reply_error(code, reply, f"refused the recipient {recipient}") from None
        except smtplib.SMTPAuthenticationError as exc:
            # as every reply: 535 (wrong credentials) is permanent, a 4xx ("454 Temporary
            # authentication failure": the password backend away for a moment) is retried
            raise self._reply_error(exc.smtp_code, exc.smtp_error,
                                    "refused the sign-in (authentication failed)") from None
        except smtplib.SMTPNotSupportedError as exc:     # no STARTTLS, no AUTH: the settings
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {exc}; check smtp.security, "
                                "smtp.port and smtp.username", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            what = {smtplib.SMTPConnectError: "refused the connection",
                    smtplib.SMTPSenderRefused: "refused the sender",
                    smtplib.SMTPDataError: "refused the message",
                    smtplib.SMTPHeloError: "refused the greeting"}.get(type(exc), "answered")
            raise self._reply_error(exc.smtp_code, exc.smtp_error, what) from None
        except ssl.SSLCertVerificationError as exc:
            # (retried: a certificate expired overnight may be renewed within the day)
            raise DeliveryError(
                f"SMTP {self.host}:{self.port}: the server's certificate is not trusted "
                f"({exc.verify_message}); a server with a certificate of its own or of a "
                "company's CA is trusted through smtp.ca_file (that certificate, PEM)",
                permanent=False) from None
        except (TimeoutError, smtplib.SMTPException, OSError) as exc:
            if client is not None and client.message_sent:
                raise DeliveryError(
                    f"SMTP {self.host}:{self.port}: the whole message was sent but no reply "
                    f"came back ({type(exc).__name__}: {exc}); the server may have accepted "
                    "it, so it is not re-sent automatically", unknown=True) from None
            raise DeliveryError(f"SMTP {self.host}:{self.port}: {type(exc).__name__}: {exc}"
                                f"{self._security_hint(exc, client, bool(reached))}",
                                permanent=False) from None

    def _security_hint(self, exc: BaseException, client, reached: bool) -> str:
        """What a wrong ``smtp.security`` for the port looks like, said: TLS from the first
        byte to a plain or STARTTLS port fails the handshake ("wrong version number"); a
        plain greeting awaited from a port that speaks TLS from the first byte (465) never
        comes. Both were retried for a day with OpenSSL's or smtplib's words alone."""
        if self.security == "ssl" and isinstance(exc, ssl.SSLError):
            return ("; the server did not answer in TLS: with smtp.security = \"ssl\" TLS starts "
                    "at the first byte (port 465); a port for STARTTLS (587, 25) needs "
                    "smtp.security = \"starttls\"")
        # (only once the server took the connection: a connection that timed out, a firewall
        # dropping port 25 or a host down, says nothing about smtp.security)
        if (self.security != "ssl" and client is None and reached
                and isinstance(exc, (TimeoutError, smtplib.SMTPServerDisconnected))):
            return ("; no greeting came: a port that speaks TLS from the first byte (465) needs "
                    "smtp.security = \"ssl\"")
        return ""


class _Tracking:
    """Knows whether the message text has gone out in full: smtplib sends it in one
    ``send`` call that ends with the end-of-data marker, right before reading the reply."""

    message_sent = False

    def __init__(self, *args, reached: list[bool], **kwargs) -> None:
        self._reached = reached             # True appended once the TCP connection is made
        super().__init__(*args, **kwargs)

    def _get_socket(self, host, port, timeout):  # smtplib's signature
        sock = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        self._reached.append(True)
        return sock

    def send(self, s):  # smtplib's signature
        super().send(s)  # type: ignore[misc]
        if isinstance(s, bytes) and s.endswith(b"\r\n.\r\n"):
            self.message_sent = True


class _TrackedSMTP(_Tracking, smtplib.SMTP):
    pass


class _TrackedSMTP_SSL(_Tracking, smtplib.SMTP_SSL):
    pass


def _quit(client: smtplib.SMTP) -> None:
    try:
        client.quit()
    except (smtplib.SMTPException, OSError):
        client.close()


@dataclass
class OutboxMailer:
    """Writes each message as ``.eml`` (and its HTML part as ``.html``) into a folder."""

    folder: Path

    def send(self, message: EmailMessage, recipient: str) -> str:
        """Both files, each written under a temporary name and renamed when complete, the
        ``.eml`` last: a full disk leaves no partial or empty file behind. Returns the
        ``.eml`` file's path."""
        stem = _file_stem(message, recipient)
        html = message.get_body(("html",))
        preview = self.folder / f"{stem}.html"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _remove_stale_parts(self.folder, time.time())
            if html is not None:
                _write_whole(preview, html.get_content().encode("utf-8"))
            # an address beyond ASCII as written (RFC 6532): an encoded word, which the
            # default writes, is no part of an address to any mail client; every other copy
            # keeps its headers in ASCII (encoded words), which every client reads
            addresses = str(message["From"]) + str(message["To"])
            policy = POLICY if addresses.isascii() else POLICY.clone(utf8=True)
            _write_whole(self.folder / f"{stem}.eml", message.as_bytes(policy=policy))
        except OSError as exc:
            try:
                preview.unlink(missing_ok=True)
            except OSError:         # the folder itself is the problem (a file, unreadable)
                pass
            raise DeliveryError(f"cannot write to the outbox {self.folder}: {exc}") from None
        return str(self.folder / f"{stem}.eml")


STALE_PART_SECONDS = 3600     # a temporary file this old was left by a writer that was killed


def _remove_stale_parts(folder: Path, now: float) -> None:
    """Temporary files (``.digest-….part``) of writers killed mid-write: removed once an
    hour old, so that they do not pile up; a writer's own lives for milliseconds."""
    for partial in folder.glob(".digest-*.part"):
        try:
            if now - partial.stat().st_mtime > STALE_PART_SECONDS:
                partial.unlink()
        except OSError:         # gone meanwhile, or not ours to remove: left alone
            pass


def _write_whole(path: Path, data: bytes) -> None:
    """``data`` into ``path`` whole (a temporary file renamed over it), readable by the
    service's user only: an outbox copy holds its recipient's signed review links, each a
    sign-in to the review pages for ``digest.review_link_days``."""
    partial = path.with_name(f".{path.name}.part")
    try:
        partial.unlink(missing_ok=True)           # O_EXCL below: a stale part of a killed run
        with os.fdopen(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, path)
    except OSError:
        partial.unlink(missing_ok=True)
        raise


def _file_stem(message: EmailMessage, recipient: str) -> str:
    """``digest-<Date header>-<recipient>-<6 hex of the Message-ID>``: the time sorts the
    files, the Message-ID part keeps two copies written in one second (two digests, or a
    resend) from overwriting each other."""
    date = datetime.strptime(message["Date"], "%a, %d %b %Y %H:%M:%S %z").strftime("%Y%m%d-%H%M%S")
    unique = hashlib.sha256(str(message["Message-ID"]).encode()).hexdigest()[:6]
    return f"digest-{date}-" + re.sub(r"[^A-Za-z0-9@._-]", "_", recipient) + f"-{unique}"
