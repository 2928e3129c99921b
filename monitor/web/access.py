"""Who may use `monitor serve`, and who they are.

- On a loopback address (the default) every request from this machine is let in; verdicts
  are recorded under the name of the user who started the server (as `monitor review
  mark` records $USER), or under the name a review link or Basic credentials give.
- A request a proxy passed on (a forwarding header says so) is refused there: behind a
  proxy, ``serve.behind_proxy`` makes the rules those of a server bound elsewhere.
- Bound beyond this machine (or behind a proxy), a request needs a session opened by a valid review link from
  the digest, or HTTP Basic credentials (``serve.username`` and the password in the
  environment variable ``serve.password_env`` names). The server refuses to start bound
  elsewhere with neither configured.
- Every form carries a CSRF token: a random value kept in an HttpOnly, SameSite=Strict
  cookie and repeated in the form; a POST without both, or whose Origin is another site,
  changes nothing.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from monitor.tokens import read_session, same_secret, session_value

FAILED_SIGN_INS = 10                  # wrong Basic passwords from one address within …
FAILED_WINDOW = timedelta(minutes=10)  # … this long, after which it is refused (429) until
                                       # the oldest falls out of the window
SESSION_COOKIE = "monitor_session"
CSRF_COOKIE = "monitor_csrf"
MAX_SESSION = timedelta(days=30)


MAX_COUNTED = 10_000                  # addresses with wrong passwords kept before aged ones go


def _counted_as(client: str) -> str:
    """What wrong passwords are counted against: the IPv4 address, or the /64 network of an
    IPv6 one (one machine may use any address of its /64)."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (what --host was given) is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class Access:
    """The server's access rules (one per process)."""

    loopback: bool
    link_key: bytes | None            # signs the digest's review links (from the environment)
    username: str | None = None
    password: str | None = None
    local_user: str = "local"
    behind_proxy: bool = False        # a proxy passes requests on: its X-Forwarded-Host counts

    def __post_init__(self) -> None:
        # Sessions are signed with the link key when there is one (so they survive a
        # restart), else with a key of this process.
        self.session_key = self.link_key or secrets.token_bytes(32)
        self._failed: dict[str, list[datetime]] = {}       # client address -> failed sign-ins

    def wait_before_sign_in(self, client: str, now: datetime) -> int:
        """Seconds ``client`` must wait before its next Basic sign-in is even checked (0:
        none): after ``FAILED_SIGN_INS`` wrong passwords within ``FAILED_WINDOW``."""
        client = _counted_as(client)
        recent = [t for t in self._failed.get(client, ()) if t > now - FAILED_WINDOW]
        self._failed[client] = recent
        if not recent:
            del self._failed[client]
        if len(recent) < FAILED_SIGN_INS:
            return 0
        return max(1, int((recent[0] + FAILED_WINDOW - now).total_seconds()) + 1)

    def failed_sign_in(self, header: str | None, client: str, now: datetime) -> str | None:
        """The user name of a Basic header whose credentials are wrong (recorded against
        ``client``), else None."""
        if not (self.basic and header and header[:6].lower() == "basic ") \
                or self._basic_user(header) is not None:
            return None
        if len(self._failed) >= MAX_COUNTED:       # addresses that never came back
            self._failed = {c: ts for c, ts in self._failed.items() if ts[-1] > now - FAILED_WINDOW}
        self._failed.setdefault(_counted_as(client), []).append(now)
        given = _basic_credentials(header)
        return given[0] if given is not None else "(unreadable)"

    @property
    def basic(self) -> bool:
        return bool(self.username and self.password)

    def problem(self) -> str | None:
        """Why the server must not start with these rules (None: it may)."""
        if self.username and not self.password:
            return ("serve.username is set but serve.password_env names no variable that is set: "
                    "Basic sign-in would be impossible")
        if not self.loopback and not (self.basic or self.link_key):
            return ("bound beyond this machine or behind a proxy, monitor serve needs access "
                    "control: set the review link key (the variable digest.review_key_env "
                    "names, at least 16 characters) or serve.username and serve.password_env")
        return None

    def reviewer(self, cookies: dict[str, str], authorization: str | None, now: datetime) -> str | None:
        """The reviewer of a request, or None when it must not be let in."""
        session = cookies.get(SESSION_COOKIE)
        if session:
            who = read_session(self.session_key, session, now)
            if who:
                return who
        if self.basic and authorization:
            user = self._basic_user(authorization)
            if user:
                return user
        return self.local_user if self.loopback else None

    def _basic_user(self, header: str) -> str | None:
        given = _basic_credentials(header)
        if given is None:
            return None
        user, password = given
        ok_user = same_secret(user, self.username or "")
        ok_password = same_secret(password, self.password or "")
        return user if ok_user and ok_password else None

    def session_for(self, who: str, expires: datetime, now: datetime) -> tuple[str, int]:
        """(cookie value, max-age seconds) of a session for ``who``."""
        until = min(expires, now + MAX_SESSION)
        return session_value(self.session_key, who, until), max(1, int((until - now).total_seconds()))


def _basic_credentials(header: str) -> tuple[str, str] | None:
    """(user, password) of a Basic ``Authorization`` header; None for another scheme or a
    value that cannot be read."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


_TOKEN = re.compile(r"^[A-Za-z0-9_-]{40,64}$")       # what new_csrf_token makes


def usable_csrf_cookie(value: str | None) -> bool:
    return value is not None and _TOKEN.match(value) is not None


def csrf_ok(cookie: str | None, submitted: str | None) -> bool:
    return usable_csrf_cookie(cookie) and same_secret(submitted, cookie or "")


def same_origin(origin: str | None, scheme: str, host: str | None) -> bool:
    """A missing Origin is allowed (older browsers, curl with the token); a present one
    must be this server's own (compared without case or a default port: "M.example:443"
    over https is "m.example")."""
    if not origin:
        return True
    return host is not None and _origin(origin.rstrip("/")) == _origin(f"{scheme}://{host}")


def _origin(value: str) -> str:
    scheme, _, host = value.lower().partition("://")
    default = {"https": ":443", "http": ":80"}.get(scheme, "")
    return f"{scheme}://{host.removesuffix(default) if default else host}"
