"""Signed values for `monitor serve`: the digest's per-recipient review links and the
browser session they open. Pure: a key, values and a clock in; strings out.

A review link carries ``v1.<recipient>.<article id>.<expiry>.<signature>`` (recipient
base64url-encoded, expiry in Unix seconds, signature HMAC-SHA256 over the other fields
with the key from the environment variable ``digest.review_key_env`` names). Whoever holds
the link is taken to be that recipient until it expires; it opens a page, it never casts
a verdict (that takes a POST with the page's CSRF token).

A session cookie is ``<base64url JSON>.<signature>`` over {"who", "exp"}; the same key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime, timezone

VERSION = "v1"


class TokenError(ValueError):
    """A link or cookie that cannot be trusted; ``reason`` is forged, expired or malformed."""

    def __init__(self, reason: str, message: str, expired_at: datetime | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.expired_at = expired_at


@dataclass(frozen=True)
class ReviewGrant:
    """What a valid review link says: who opens which article, until when."""

    recipient: str
    article_id: int
    expires: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: bytes, purpose: str, message: str) -> str:
    return _b64(hmac.new(key, f"{purpose}|{message}".encode(), hashlib.sha256).digest())


def _epoch(moment: datetime) -> int:
    return int(moment.timestamp())


def _moment(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


def review_token(key: bytes, recipient: str, article_id: int, expires: datetime) -> str:
    """The token of one recipient's link to one article."""
    body = f"{VERSION}.{_b64(recipient.encode())}.{article_id}.{_epoch(expires)}"
    return f"{body}.{_mac(key, 'review', body)}"


def read_review_token(key: bytes, token: str, now: datetime) -> ReviewGrant:
    """The grant of a token; TokenError when it is malformed, forged or expired (the
    signature is checked before anything else is believed)."""
    parts = token.strip().split(".")
    if len(parts) != 5 or parts[0] != VERSION:
        raise TokenError("malformed", "this review link is damaged (was it cut off when copied?)")
    body, signature = ".".join(parts[:4]), parts[4]
    if not hmac.compare_digest(signature, _mac(key, "review", body)):
        raise TokenError("forged", "this review link is not valid: its signature does not match "
                                   "(changed by hand, or made with another key)")
    try:
        recipient = _unb64(parts[1]).decode()
        article_id, expires = int(parts[2]), _moment(int(parts[3]))
    except (ValueError, UnicodeDecodeError):
        raise TokenError("malformed", "this review link is damaged") from None
    if expires <= now:
        raise TokenError("expired", f"this review link expired on {expires:%Y-%m-%d %H:%M} UTC",
                         expired_at=expires)
    return ReviewGrant(recipient, article_id, expires)


def session_value(key: bytes, who: str, expires: datetime) -> str:
    """A session cookie naming the reviewer until ``expires``."""
    body = _b64(json.dumps({"who": who, "exp": _epoch(expires)}, separators=(",", ":")).encode())
    return f"{body}.{_mac(key, 'session', body)}"


def read_session(key: bytes, value: str, now: datetime) -> str | None:
    """The reviewer a session cookie names, or None when it is forged, damaged or expired."""
    body, _, signature = value.partition(".")
    if not signature or not hmac.compare_digest(signature, _mac(key, "session", body)):
        return None
    try:
        data = json.loads(_unb64(body))
        who, expires = str(data["who"]), _moment(int(data["exp"]))
    except (ValueError, KeyError, TypeError):
        return None
    return who if expires > now else None


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a submitted secret (CSRF token, password)."""
    return given is not None and hmac.compare_digest(given.encode(), expected.encode())


@dataclass(frozen=True)
class ReviewLinks:
    """The review links of one recipient's copy of a digest (``base``: digest.review_url)."""

    base: str
    key: bytes
    recipient: str
    expires: datetime

    def url(self, article_id: int, verdict: str | None = None) -> str:
        token = review_token(self.key, self.recipient, article_id, self.expires)
        choice = f"&v={verdict}" if verdict else ""
        return f"{self.base}/items/{article_id}?t={token}{choice}"
