"""The configuration: a TOML file loaded into a validated, frozen model.

Every key of ``config/monitor.toml`` is declared here; an unknown key, a value of the wrong
type, a bad URL, a duplicate feed or a keyword regex that does not compile is a
:class:`ConfigError` whose message names the file and the key. Secrets never live in the
file: the SMTP password is read from the environment variable that ``smtp.password_env``
names, and is masked whenever the config is printed.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Mapping
from datetime import time
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from monitor.exceptions import ConfigError
from monitor.redact import masked_url
from monitor.resources import default_config_path, default_model_path

ENV_CONFIG = "MONITOR_CONFIG"
ENV_STORE_URL = "MONITOR_STORE_URL"
MIB = 1024 * 1024


class _Section(BaseModel):
    # strict: "yes" is no bool and true no number (TOML has the real types); lists → tuples
    # and "07:00" → a time are converted where a field says strict=False
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {masked_url(value)!r}")
    if any(c.isspace() or ord(c) < 32 for c in parts.hostname):
        raise ValueError(f"the host of {masked_url(value)!r} contains a space")
    try:
        port = parts.port
    except ValueError:          # "abc", 99999
        raise ValueError(f"not a valid port in {masked_url(value)!r} "
                         "(a number from 1 to 65535)") from None
    if port == 0:
        raise ValueError(f"not a valid port in {masked_url(value)!r} (a number from 1 to 65535)")
    return value


def _same_resource(url: str) -> tuple:
    """What tells two feed URLs apart: not the case of the scheme and host, a default port
    or a #fragment (the server never sees it)."""
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port, parts.username,
            parts.path or "/", parts.query)


_DATABASE_URL = re.compile(r"[A-Za-z][A-Za-z0-9+._-]*://")


def _only_fields(value: str, names: tuple[str, ...], what: str) -> str:
    """``value`` when it is a format string using only ``{name}`` of ``names`` (no
    attribute, index or unclosed brace, which would fail at every use), else ValueError."""
    import string

    allowed = f"{what} may use only " + ", ".join(f"{{{n}}}" for n in names)
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(value) if name is not None]
        odd = [name for name in fields if name not in names]
        if odd:                 # an attribute or index ({date.year}, {0}) included
            raise ValueError(f"not {{{odd[0]}}}")
        value.format(**{n: "" for n in names})
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as exc:
        raise ValueError(f"{allowed}: {exc}") from exc
    return value


class StoreConfig(_Section):
    url: str = "sqlite:///var/monitor.db"
    busy_timeout_seconds: float = Field(30.0, gt=0, le=600)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not _DATABASE_URL.match(value):
            raise ValueError(f"not a database URL: {masked_url(value)!r} (for example "
                             "sqlite:///var/monitor.db or postgresql+psycopg://user@host/db)")
        return value


class PollConfig(_Section):
    interval_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    connect_timeout_seconds: float = Field(10.0, gt=0, le=300)
    read_timeout_seconds: float = Field(30.0, gt=0, le=600)
    max_bytes: int = Field(15 * MIB, ge=1024)
    max_redirects: int = Field(5, ge=0, le=20)
    concurrency: int = Field(8, ge=1, le=256)
    per_host: int = Field(2, ge=1, le=16)
    user_agent: str = "monitor/{version} (critical-minerals news monitor; +{contact})"
    contact_url: str = "https://example.org/monitor-contact"
    max_backoff_hours: float = Field(24.0, gt=0, le=24 * 31)
    silent_after_days: float = Field(3.0, gt=0, le=365)
    broken_after_errors: int = Field(3, ge=1)
    allow_private_redirects: bool = False
    lease_seconds: float = Field(300.0, ge=5, le=86400)
    parse_processes: int | str = "auto"

    @field_validator("contact_url")
    @classmethod
    def _contact(cls, value: str) -> str:
        return _check_http_url(value)

    @field_validator("parse_processes", mode="before")
    @classmethod
    def _processes(cls, value: object) -> int | str:
        if value == "auto" or (type(value) is int and 0 <= value <= 64):
            return value
        raise ValueError(f'must be "auto" or a whole number from 0 to 64, not {value!r}')

    @field_validator("user_agent")
    @classmethod
    def _ua(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n"):
            raise ValueError("must be one line")
        return _only_fields(value, ("version", "contact"), "user_agent")


class FeedConfig(_Section):
    name: str = Field(min_length=1, max_length=200)
    url: str
    lang: str | None = Field(None, pattern=r"^[a-z]{2}$")
    interval_minutes: int | None = Field(None, ge=1, le=7 * 24 * 60)
    silent_after_days: float | None = Field(None, gt=0, le=365)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        """The name without blanks around it ("a" and "a " would be two feeds that look
        alike); one line of text."""
        if any(ord(c) < 32 or 0x7f <= ord(c) < 0xa0 for c in value):
            raise ValueError(f"{value!r} holds a control character (a line break, an escape): "
                             "give one line of text")
        if not value.strip():
            raise ValueError("is blank: give the feed a name")
        return value.strip()

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _check_http_url(value)


class ClassifierConfig(_Section):
    model: str = ""
    threshold: Any = "auto"

    @field_validator("threshold")
    @classmethod
    def _threshold(cls, value: Any) -> str | float:
        if value == "auto":
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1:
            return float(value)
        raise ValueError(f'expected "auto" or a number between 0 and 1, got {value!r}')

    def fixed_threshold(self) -> float | None:
        """One threshold for every topic and language, or None: the model card's (chosen
        per topic and language when the model was trained)."""
        return None if self.threshold == "auto" else float(self.threshold)

    def model_path(self) -> Path:
        return Path(self.model) if self.model else default_model_path()


class KeywordsConfig(_Section):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    critical_minerals: tuple[str, ...] = Field((), alias="critical-minerals", strict=False)
    export_controls: tuple[str, ...] = Field((), alias="export-controls", strict=False)
    mute: tuple[str, ...] = Field((), strict=False)

    def spec(self) -> dict[str, tuple[str, ...]]:
        return {"critical-minerals": self.critical_minerals,
                "export-controls": self.export_controls, "mute": self.mute}

    def has_phrases(self) -> bool:
        """Whether any phrase flags a topic (mute phrases alone flag nothing)."""
        return bool(self.critical_minerals or self.export_controls)


_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\"]+$")


def _check_email(value: str) -> str:
    if not _EMAIL.match(value):
        raise ValueError(f"not an email address: {value!r}")
    return value


Email = Annotated[str, AfterValidator(_check_email)]


class DigestConfig(_Section):
    send_at: time = Field(time(7, 0), strict=False)        # "07:00" from the file
    timezone: str = "Europe/Berlin"
    recipients: tuple[Email, ...] = Field((), strict=False)
    sender: Email = "monitor@localhost.localdomain"
    subject: str = "Critical minerals & export controls {date}: {counts} — {lead}"
    max_items: int = Field(40, ge=1, le=1000)
    send_when_empty: bool = True
    outbox_dir: str = "var/outbox"
    review_url: str = ""
    review_key_env: str = Field("MONITOR_REVIEW_KEY", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    review_link_days: int = Field(14, ge=1, le=365)

    @field_validator("send_at")
    @classmethod
    def _send_at(cls, value: time) -> time:
        if value.microsecond or value.tzinfo is not None:
            raise ValueError("a local time of day, HH:MM or HH:MM:SS (the zone is digest.timezone)")
        return value

    @field_validator("outbox_dir")
    @classmethod
    def _outbox_dir(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("an empty path would write the digests into whatever folder a "
                             "command runs in: give a folder, such as var/outbox")
        return value

    @field_validator("review_url")
    @classmethod
    def _review_url(cls, value: str) -> str:
        if not value.strip():
            return ""
        parts = urlsplit(_check_http_url(value))
        # the links are "<review_url>/items/N?t=…": `monitor serve` answers at the root and
        # redirects to root paths, so a path, query or fragment would make links to nowhere
        extra = [what for what, given in (("a path", parts.path.strip("/")), ("a query", parts.query),
                                          ("a fragment", parts.fragment)) if given]
        if extra:
            raise ValueError(f"{masked_url(value)!r} has {' and '.join(extra)}: give the address "
                             "where `monitor serve` answers at its root, such as "
                             "\"https://monitor.example.org\" or \"http://127.0.0.1:8765\"")
        return value.rstrip("/")

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        return _only_fields(value, ("date", "count", "counts", "lead"), "subject")

    @field_validator("recipients")
    @classmethod
    def _recipients(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        seen: dict[str, int] = {}
        for i, address in enumerate(value):
            key = address.casefold()
            if key in seen:
                raise ValueError(f"{address!r} is listed twice ([{seen[key]}] and [{i}]): "
                                 "each recipient gets one copy")
            seen[key] = i
        return value

    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def review_key(self) -> bytes | None:
        """The key that signs review links, from the environment (None when unset or
        shorter than 16 characters: too easy to guess)."""
        value = os.environ.get(self.review_key_env, "")
        return value.encode() if len(value) >= MIN_KEY_LENGTH else None


MIN_KEY_LENGTH = 16


# a host name, an IPv4 address or an IPv6 one (bracketed or not, with a zone id)
SERVE_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?"
                        r"|\[?[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(?:%[\w.-]+)?\]?")


class ServeConfig(_Section):
    host: str = Field("127.0.0.1", min_length=1)
    port: int = Field(8765, ge=0, le=65535)
    username: str | None = None
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    page_size: int = Field(50, ge=5, le=500)
    behind_proxy: bool = False     # sign-in needed even on a loopback address (a proxy in front)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not SERVE_HOST.fullmatch(value):
            raise ValueError(f"{value!r} is not an address to listen on: a host name or an IP "
                             "address, such as 127.0.0.1, ::1 or 0.0.0.0")
        return value

    def password(self) -> str | None:
        """The Basic-auth password from the environment (never from the file)."""
        if not self.password_env:
            return None
        return os.environ.get(self.password_env) or None


class SmtpConfig(_Section):
    host: str = Field(min_length=1)
    port: int = Field(587, ge=1, le=65535)
    security: Literal["starttls", "ssl", "none"] = "starttls"
    username: str | None = None
    password_env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    timeout_seconds: float = Field(30.0, gt=0, le=600)
    # a PEM file of the certificates that may sign the server's (a company's own CA, or a
    # self-signed server certificate itself), trusted instead of the system's CAs
    ca_file: str | None = Field(None, min_length=1)
    max_attempts: int = Field(4, ge=1, le=20)
    retry_base_seconds: float = Field(30.0, ge=0, le=3600)

    def password(self) -> str | None:
        """The password from the environment (never from the file)."""
        if not self.password_env:
            return None
        value = os.environ.get(self.password_env)
        if value is None:
            raise ConfigError(f"smtp.password_env: environment variable {self.password_env} is not set")
        return value


class Config(_Section):
    store: StoreConfig = StoreConfig()
    poll: PollConfig = PollConfig()
    feeds: tuple[FeedConfig, ...] = Field((), strict=False)
    classifier: ClassifierConfig = ClassifierConfig()
    keywords: KeywordsConfig = KeywordsConfig()
    digest: DigestConfig = DigestConfig()
    smtp: SmtpConfig | None = None
    serve: ServeConfig = ServeConfig()

    @model_validator(mode="after")
    def _unique_feeds(self) -> Config:
        seen_names: dict[str, int] = {}
        seen_urls: dict[tuple, int] = {}
        for i, feed in enumerate(self.feeds):
            if feed.name in seen_names:
                raise ValueError(f"feeds[{i}].name: duplicate feed name {feed.name!r} "
                                 f"(also feeds[{seen_names[feed.name]}])")
            same = _same_resource(feed.url)
            if same in seen_urls:
                raise ValueError(f"feeds[{i}].url: duplicate feed URL {masked_url(feed.url)!r} "
                                 f"(also feeds[{seen_urls[same]}])")
            seen_names[feed.name] = i
            seen_urls[same] = i
        return self

    def store_url(self) -> str:
        return os.environ.get(ENV_STORE_URL) or self.store.url


def _format_error(error: Mapping[str, Any]) -> str:
    loc = ""
    for part in error["loc"]:
        loc += f"[{part}]" if isinstance(part, int) else (f".{part}" if loc else str(part))
    message = error["msg"].removeprefix("Value error, ")
    given = error.get("input")
    if error["type"] == "extra_forbidden":
        message = "unknown key"
    elif error["type"] in ("tuple_type", "list_type") and loc == "feeds":
        message = "expected a list of tables: write each feed as [[feeds]] (two brackets), not [feeds]"
    elif error["type"] in ("tuple_type", "list_type"):      # pydantic's "a valid tuple" means nothing here
        message = (f"expected a list such as [{json.dumps(given, ensure_ascii=False)}], got {given!r}"
                   if isinstance(given, str) else "expected a list such as [\"…\", \"…\"]")
    elif error["type"] == "model_type":         # pydantic's "… or instance of KeywordsConfig"
        message = (f"expected one table: write [{loc}] (one bracket), not [[{loc}]]"
                   if isinstance(given, list) and given and all(isinstance(g, dict) for g in given)
                   and "[" not in loc
                   else f"expected a table of keys, got {given!r}")
    elif error["type"] == "time_parsing":
        message = f'expected a local time of day, HH:MM or HH:MM:SS (e.g. "07:00"), got {given!r}'
    return f"{loc}: {message}" if loc else message


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The config file to use: explicit, else $MONITOR_CONFIG, else the example config."""
    if explicit:
        return Path(explicit)
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG])
    local = Path("config/monitor.toml")
    return local if local.is_file() else default_config_path()


def parse_config(data: dict[str, Any], source: str = "<config>") -> Config:
    """Validate a parsed TOML document; every problem names ``source`` and the key."""
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {_format_error(err)}" for err in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    _compile_keywords(config, source)
    return config


def _compile_keywords(config: Config, source: str) -> None:
    from monitor.keywords import KeywordRules

    try:
        KeywordRules.compile(config.keywords.spec())
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config file (see :func:`config_path` for which one)."""
    file = config_path(path)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    return parse_config(data, str(file))


def config_warnings(config: Config) -> list[str]:
    """What is valid but almost certainly not meant: a service with nothing to do."""
    found = []
    if not config.feeds:
        found.append("no [[feeds]] configured: `monitor run` and `monitor poll` poll nothing")
    if not config.digest.recipients:
        found.append("digest.recipients is empty: no digest is sent to anyone")
    digest = config.digest
    keywords = config.keywords
    if not keywords.has_phrases():
        found.append("no [keywords] phrases: articles are flagged by the model alone (the "
                     "example config's lists are not merged in; copy the ones you want)")
    smtp = config.smtp
    if smtp is not None and smtp.password_env and os.environ.get(smtp.password_env) is None:
        found.append(f"smtp.password_env: ${smtp.password_env} is not set: the digest cannot "
                     "log in to the mail server")
    if smtp is not None and smtp.security == "none" and smtp.username and not _loopback(smtp.host):
        found.append(f"smtp.security = \"none\" with smtp.username: the mail password goes to "
                     f"{smtp.host} unencrypted, readable on the way; use \"starttls\" (port 587) "
                     "or \"ssl\" (port 465)")
    if smtp is not None and smtp.ca_file and not Path(smtp.ca_file).is_file():
        found.append(f"smtp.ca_file: no file at {smtp.ca_file}: no copy of the digest can be "
                     "mailed until it is there")
    if digest.review_url and digest.review_key() is None:
        found.append(f"digest.review_url is set but ${digest.review_key_env} is not (or is shorter "
                     f"than {MIN_KEY_LENGTH} characters): the digest has no review links")
    model = config.classifier.model_path()
    if not model.is_file():
        found.append(f"classifier.model: no model file at {model}: every article is left "
                     "unflagged by the model (\"classifier unavailable\"); keywords alone flag")
    else:
        from monitor.classify import check_model_file
        from monitor.exceptions import ClassifierError

        try:
            check_model_file(model)
        except ClassifierError as exc:
            found.append(f"classifier.model: {exc}: every article is left unflagged by the "
                         "model; keywords alone flag")
    from monitor.storage.reviews import sqlite_file

    database = sqlite_file(config.store_url())      # the store in use: $MONITOR_STORE_URL wins
    problem = _cannot_make(database.parent) if database and not database.exists() else None
    if problem:
        key = f"${ENV_STORE_URL}" if os.environ.get(ENV_STORE_URL) else "store.url"
        found.append(f"{key}: the database's folder cannot be made: {problem}")
    problem = _cannot_make(Path(digest.outbox_dir)) if config.smtp is None else None
    if problem:
        found.append(f"digest.outbox_dir: the digest cannot be written there: {problem}")
    return found


def _loopback(host: str) -> bool:
    """``host`` is this machine (a relay on it sees no network between)."""
    import ipaddress

    if host.lower().rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _cannot_make(folder: Path) -> str | None:
    """Why ``folder`` could not be made or written (None: it can), without making it."""
    probe = folder
    while not probe.exists():
        if probe.parent == probe:
            return None
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file"
    if not os.access(probe, os.W_OK | os.X_OK):
        return f"{probe} is not writable"
    return None


def masked(config: Config) -> dict[str, Any]:
    """The effective config as plain data, with anything secret masked."""
    data = config.model_dump(mode="json", by_alias=True)
    smtp = data.get("smtp")
    if smtp and smtp.get("password_env"):
        present = os.environ.get(smtp["password_env"]) is not None
        smtp["password"] = f"******** (from ${smtp['password_env']})" if present else "(not set)"
    serve = data["serve"]
    if serve.get("password_env"):
        present = config.serve.password() is not None
        serve["password"] = f"******** (from ${serve['password_env']})" if present else "(not set)"
    key_env = config.digest.review_key_env
    data["digest"]["review_key"] = (f"******** (from ${key_env})" if config.digest.review_key()
                                    else f"(not set: ${key_env})")
    url = data["store"]["url"] = config.store_url()
    data["store"]["url"] = masked_url(url)
    for feed in data.get("feeds", ()):
        feed["url"] = masked_url(feed["url"])
    for section, key in (("digest", "review_url"), ("poll", "contact_url")):
        if data[section].get(key):
            data[section][key] = masked_url(data[section][key])
    return data
