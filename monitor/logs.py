"""Logging setup: plain text lines or JSON objects (one per line) for log shippers."""

from __future__ import annotations

import json
import logging
import sys


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {"time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"), "level": record.levelname.lower(),
                "logger": record.name, "message": record.getMessage()}
        data.update(getattr(record, "fields", {}))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(level: str = "info", fmt: str = "text") -> None:
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.addFilter(_skipped_run_is_debug)    # (a logger's filter misses its children's)
    root = logging.getLogger("monitor")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
    # the scheduler's own warnings in the same format, not Python's bare last-resort lines
    # that break a JSON log (its "skipped: maximum number of running instances reached",
    # a tick during a long cycle, only at debug: _skipped_run_is_debug)
    scheduler = logging.getLogger("apscheduler")
    scheduler.handlers[:] = [handler]
    scheduler.setLevel(max(logging.WARNING, root.level))
    scheduler.propagate = False


def _skipped_run_is_debug(record: logging.LogRecord) -> bool:
    """A tick skipped while the previous cycle still runs is how the jobs coalesce (the
    README says they never overlap), not a warning: shown only at --log-level debug."""
    if "maximum number of running instances reached" not in record.getMessage():
        return True
    record.levelno, record.levelname = logging.DEBUG, "DEBUG"
    return logging.getLogger("monitor").isEnabledFor(logging.DEBUG)
