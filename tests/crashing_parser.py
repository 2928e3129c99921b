"""A parse job for tests: kills its worker process on a marked feed, as a crash in a C
extension or the OOM killer would. Module-level so a parse process can import it."""

import os

from monitor.parse import parse_job

MARK = b"<!-- crash the parser here -->"


def extract_or_die(docs):
    """The extraction beside the parse, killing its worker when an article is marked."""
    from monitor.extract import extract

    if any("crash the extraction" in text for _, text, _ in docs):
        os._exit(71)
    return extract(docs)


def parse_or_die(content, headers, url, key_base=None):
    if MARK in content:
        os._exit(70)
    return parse_job(content, headers, url, key_base)


def die_now(_=None):
    """Kill the worker that runs it."""
    os._exit(72)


def slow_echo(value, seconds=2.0):
    """Return ``value`` after ``seconds`` (long enough to be in its worker when another job
    kills another worker)."""
    import time

    time.sleep(seconds)
    return value
