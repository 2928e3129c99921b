"""Secrets out of what is printed and logged: the password in a URL's user info, and the
values of query parameters that carry one (``?token=…``, ``&api_key=…``, ``&X-Amz-Signature=…``).

A feed URL may carry credentials (``https://user:secret@host/feed``); the fetcher sends
them as HTTP Basic auth, and everything that prints or logs a URL shows it through
``masked_url``: ``https://user:***@host/feed``. A private feed may instead take its key in
the query string (``https://host/feed?token=…``), and a redirect may lead to a signed URL;
those values are shown as ``***`` too. No third-party import.
"""

from __future__ import annotations

import re
from urllib.parse import quote, unquote

# the password runs to the authority's last "@" (``user:p@ss@host``: fetched with the password
# "p@ss", as urllib and httpx read it; an "@" in a password is often left unencoded), over a
# "?" or "#" in it too: SQLAlchemy reads a store URL's password up to its first "@" whatever
# it holds (``monitor:pa?ss@db``), and such a password was shown whole
_PASSWORD = re.compile(r"(://[^:/@\s?#]+:)[^/\s]*@")
# https://TOKEN@host/: a token as user name (HTTPS://TOKEN@ too: schemes have no case)
_USER_ONLY = re.compile(r"(\bhttps?://)[^:/@\s?#]+@", re.IGNORECASE)
# https://TOKEN:@host/: a token as user name with an empty password (curl's way to pass one)
_EMPTY_PASSWORD = re.compile(r"(://)[^:/@\s?#]+:@")

# parameter names (lower case, without "-", "_", "." and brackets) whose value is a secret:
# these, any name holding one of the words below, and any name ending in "key"
_SECRET_NAMES = frozenset({"sig", "sign", "hmac", "pwd", "pass", "auth", "authorization",
                           "session", "sid", "code", "hash"})
_SECRET_WORDS = ("token", "secret", "password", "passwd", "apikey", "signature", "credential",
                 "passphrase", "sessionid", "jwt", "bearer")
_NOT_KEYS = frozenset({"monkey", "turkey", "hockey", "jockey", "donkey", "whiskey", "sortkey",
                       "groupkey", "orderkey"})
_QUERY_PARAM = re.compile(r"([?&;])([^=&#;\s]+)=([^&#;\s]*)")


def _is_secret(name: str) -> bool:
    plain = re.sub(r"[-_.\[\]]", "", unquote(name).lower())     # api%5Fkey is api_key
    return (plain in _SECRET_NAMES or any(word in plain for word in _SECRET_WORDS)
            or (plain.endswith("key") and plain not in _NOT_KEYS))


def _mask_param(match: re.Match[str]) -> str:
    sep, name, value = match.groups()
    if value and _is_secret(name):
        return f"{sep}{name}=***"
    inner = unquote(value)
    if inner != value and ("?" in inner or "@" in inner):      # a URL inside: ?next=https%3A…
        masked = masked_url(inner)
        if masked != inner:
            return f"{sep}{name}={quote(masked, safe=':/*')}"
    return match.group(0)


def masked_url(url: str) -> str:
    """The URL with the password of its user info (or the user name of an http(s) URL that
    has no password: a token), and the values of query parameters named like a secret
    (token, key, api_key, anything ending in "key", signature, password …; a URL encoded
    in a value too), replaced by ``***``."""
    url = _USER_ONLY.sub(r"\1***@", _PASSWORD.sub(r"\1***@", _EMPTY_PASSWORD.sub(r"\1***:@", url)))
    if "?" not in url:
        return url
    head, _, rest = url.partition("?")
    return head + _QUERY_PARAM.sub(_mask_param, "?" + rest)
