"""Whole numbers in text from outside (HTTP headers, form fields, arguments, lock files)."""

from __future__ import annotations


def is_whole(text: str) -> bool:
    """ASCII digits only. ``str.isdigit`` also accepts "²" or "①", which ``int()`` and
    ``float()`` refuse: a header or a form field holding one must be a bad value, not a
    crash."""
    return text.isascii() and text.isdigit()
