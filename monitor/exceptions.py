"""The one exception tree of monitor.

    MonitorError                 every error this package raises on purpose
     ├── ConfigError             the config file or an environment value is wrong
     ├── FeedError               one feed could not be fetched or parsed (a value, not a crash)
     ├── StorageError            the store cannot be opened, migrated or written
     ├── ClassifierError         the model is missing, tampered with or incompatible
     ├── ClockError              this machine's clock is behind what the store has recorded
     └── DeliveryError           the digest could not be rendered or delivered

Each carries the context a person needs (file and key, feed URL, recipient) in its message;
the original exception, where there is one, is chained as ``__cause__``.
"""

from monitor.redact import masked_url


class MonitorError(Exception):
    """Root of every error monitor raises on purpose."""

    exit_code = 1


class ConfigError(MonitorError):
    """The configuration is invalid; the message names the file and the key."""

    exit_code = 2


class UsageError(MonitorError):
    """A command was given something it cannot work with (unknown id, bad file)."""

    exit_code = 2


class FeedError(MonitorError):
    """A feed failed: network, HTTP status, size limit or content that is not a feed.

    Its message is stored on the feed, logged and printed: a URL in it (a redirect's target,
    httpx's text) is shown masked, as the feed's own URL is."""

    def __init__(self, message: str, *, kind: str = "error", status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(masked_url(message))
        self.kind = kind
        self.status = status
        self.retry_after = retry_after
        self.reached = kind != "connect"   # the server answered (a TLS failure: fetch sets it)


class StorageError(MonitorError):
    """The store cannot be opened, migrated, read or written."""


class ClassifierError(MonitorError):
    """The model file is missing, tampered with, or from an incompatible scikit-learn."""


class ClockError(MonitorError):
    """The machine's clock is behind times the store already holds (booted before time
    synchronisation): what it would stamp now would be wrong, so nothing is stamped."""


class DeliveryError(MonitorError):
    """The digest could not be rendered or handed to the mail server."""

    def __init__(self, message: str, *, permanent: bool = False, unknown: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.unknown = unknown      # the whole message went out, its reply did not come back


def refuse_unknown_ids(wanted, found) -> None:
    """UsageError naming the article ids of ``wanted`` not in ``found`` (nothing is written):
    the one check `monitor review mark` and the store make before writing verdicts."""
    known = set(found)
    unknown = [i for i in wanted if i not in known]
    if unknown:
        word = "id" if len(unknown) == 1 else "ids"
        raise UsageError(f"unknown article {word}: {', '.join(map(str, unknown))} "
                         f"(nothing was written)")
