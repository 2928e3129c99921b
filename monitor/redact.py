"""Secrets out of what is printed and logged: the password in a URL's user info.

A feed URL may carry credentials (``https://user:secret@host/feed``); the fetcher sends
them as HTTP Basic auth, and everything that prints or logs a URL shows it through
``masked_url``: ``https://user:***@host/feed``. No third-party import.
"""

from __future__ import annotations

import re

_PASSWORD = re.compile(r"(://[^:/@\s]+:)[^@/\s]*@")


def masked_url(url: str) -> str:
    """The URL with the password of its user info replaced by ``***``."""
    return _PASSWORD.sub(r"\1***@", url)
