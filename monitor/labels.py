"""Our labels of real news items, joined to the pool's text when a model is trained.

Real news trains the model, but its text belongs to the outlets and stays outside the
repository. ``models/labels/*.jsonl`` holds only what we wrote: one JSON object per line,

    {"id": "<pool id>", "topics": [...], "countries": [...], "minerals": [...],
     "by": "<labeller>", "how": "read"}

keyed by the ``id`` of the pool (``../shared/data/pool-unlabeled.jsonl``: real news items
with ``id``, ``lang``, ``title``, ``text``, ``source``, ``published``, ``url``). ``join_pool``
reads the pool and returns records in the format of LABELING.md, marked ``"real": True``,
with the item's ``url`` canonicalised as the store canonicalises an article's link
(``monitor.parse.canonical_url``): an analyst's review of the same article in the store
carries that url and the article's title, and overrides the label of the item with that
link and title (``monitor.train.apply_reviews``: one link may carry several stories).

Real items come in stories and days: a wire story copied by three outlets, or the items of
one evening bulletin, must never be split between a training and a testing fold.
``story_groups`` gives every record a group: records sharing a normalised title, or a
source and a day, are one group (connected components of both relations).

Pure apart from reading files; no third-party import.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from monitor import TOPICS
from monitor.exceptions import UsageError

POOL_NAME = "pool-unlabeled.jsonl"
_COUNTRY = re.compile(r"^[A-Z]{2}$")


def load_labels(labels_dir: str | Path) -> list[dict[str, Any]]:
    """Every label of every ``*.jsonl`` file in the folder (sorted by file name); a bad
    line or an id labelled twice is a UsageError naming file and line."""
    from monitor.minerals import mineral_ids

    known_minerals = set(mineral_ids())
    labels: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for path in sorted(Path(labels_dir).glob("*.jsonl")):
        for number, line in numbered_lines(path):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            label = check_label(_json(line, where), where, known_minerals)
            if label["id"] in seen:
                raise UsageError(f"{where}: id {label['id']!r} already labelled at "
                                 f"{seen[label['id']]}")
            seen[label["id"]] = where
            labels.append(label)
    return labels


def numbered_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of a UTF-8 file's lines; a line that is not UTF-8 is a
    UsageError naming file and line (a byte-order mark at the start is ignored)."""
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, 1):
            try:
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise UsageError(f"{path}:{number}: not valid UTF-8 ({exc.reason} at byte "
                                 f"{exc.start + 1} of the line)") from None


def _json(line: str, where: str) -> Any:
    try:
        return json.loads(line)
    except ValueError as exc:
        raise UsageError(f"{where}: not valid JSON: {exc}") from exc


def check_label(label: Any, where: str, known_minerals: set[str]) -> dict[str, Any]:
    """A copy of one label after checking its fields (UsageError naming ``where``)."""
    if not isinstance(label, Mapping) or not isinstance(label.get("id"), str):
        raise UsageError(f"{where}: expected an object with a string 'id'")
    for key, allowed in (("topics", set(TOPICS)), ("minerals", known_minerals)):
        values = label.get(key, [])
        if not isinstance(values, list) or any(v not in allowed for v in values):
            raise UsageError(f"{where}: {key!r} must be a list drawn from "
                             f"{', '.join(sorted(allowed))}")
    countries = label.get("countries", [])
    if not isinstance(countries, list) or not all(
            isinstance(c, str) and _COUNTRY.match(c) for c in countries):
        raise UsageError(f"{where}: 'countries' must be a list of ISO 3166-1 alpha-2 codes")
    from monitor.countries import known_code

    odd = next((c for c in countries if not known_code(c)), None)
    if odd is not None:         # never named by the extractor: it would count as a miss
        raise UsageError(f"{where}: country {odd!r} is not an ISO 3166-1 alpha-2 code"
                         + (" (the United Kingdom is GB)" if odd == "UK" else ""))
    if "text" in label or "title" in label:
        raise UsageError(f"{where}: a label holds no title or text (they stay in the pool)")
    return dict(label)


def default_pool_path() -> Path | None:
    """``$MONITOR_POOL``, else ``../shared/data/pool-unlabeled.jsonl`` beside the current
    folder or beside the checkout, whichever exists first; None when none does."""
    from monitor.resources import CHECKOUT_DIR

    if os.environ.get("MONITOR_POOL"):
        return Path(os.environ["MONITOR_POOL"])
    for base in (Path.cwd(), CHECKOUT_DIR):
        candidate = base.parent / "shared" / "data" / POOL_NAME
        if candidate.is_file():
            return candidate
    return None


def join_pool(labels: Sequence[Mapping[str, Any]], pool_path: str | Path
              ) -> tuple[list[dict[str, Any]], list[str]]:
    """Labelled records (LABELING.md format plus ``source``, ``published``, ``minerals``,
    ``real``, and ``url`` when the item has one that canonicalises) for every label whose
    id is in the pool, in label order; and the ids that are not in the pool."""
    from monitor.parse import canonical_url

    wanted = {label["id"]: label for label in labels}
    found: dict[str, dict[str, Any]] = {}
    for number, item in _pool_items(Path(pool_path)):
        label = wanted.get(item.get("id"))
        if label is not None:
            _check_pool_item(item, f"{pool_path}:{number}")
            found[label["id"]] = {
                "id": label["id"], "lang": item.get("lang") or "und",
                "title": _entities_read(item.get("title") or ""),
                "text": _entities_read(item.get("text") or ""),
                "source": item.get("source") or "", "published": item.get("published") or "",
                "topics": list(label.get("topics", [])),
                "countries": list(label.get("countries", [])),
                "minerals": list(label.get("minerals", [])), "real": True}
            url = canonical_url(item["url"]) if isinstance(item.get("url"), str) else None
            if url:
                found[label["id"]]["url"] = url
    records = [found[label["id"]] for label in labels if label["id"] in found]
    missing = [label["id"] for label in labels if label["id"] not in found]
    return records, missing


_ENTITY = re.compile(r"&(?:#[0-9]+|#[xX][0-9a-fA-F]+|[A-Za-z][A-Za-z0-9]*);")


def _entities_read(value: str) -> str:
    """A pool text with its HTML character references read ("kt&oacute;rego" → "którego",
    "&#8230;" → "…"): some RSS items of the pool keep them, while the service reads them
    when it parses a feed, so the model learns the words as it will see them."""
    return html.unescape(value) if _ENTITY.search(value) else value


def _check_pool_item(item: Mapping[str, Any], where: str) -> None:
    """A labelled pool item's text fields are strings (or null, read as empty): a
    UsageError naming the pool's file, line and id otherwise."""
    for key in ("title", "text", "lang"):
        if item.get(key) is not None and not isinstance(item[key], str):
            raise UsageError(f"{where}: pool item {item['id']!r}: {key!r} must be a string "
                             f"(or null), got {type(item[key]).__name__}")


def _pool_items(path: Path) -> Iterable[tuple[int, dict[str, Any]]]:
    try:
        for number, line in numbered_lines(path):
            if line.strip():
                item = _json(line, f"{path}:{number}")
                if isinstance(item, dict):
                    yield number, item
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the pool: {exc.strerror or exc}") from exc


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- groups ---------------------------------------------------------------------------------

def title_key(title: str) -> str:
    """Casefolded letters and digits of a title: copies of one story share it."""
    folded = unicodedata.normalize("NFKC", title or "").casefold()
    return "".join(ch for ch in folded if ch.isalnum())


def story_groups(records: Sequence[Mapping[str, Any]]) -> list[str]:
    """One group name per record: records that share a title key or a source and day are
    in one group (their connected component), named after one of its records' ids."""
    from monitor.cluster import components

    first: dict[str, int] = {}
    pairs = ((i, first.setdefault(key, i)) for i, record in enumerate(records)
             for key in _group_keys(record))
    return [str(records[root]["id"]) for root in components(len(records), pairs)]


def _group_keys(record: Mapping[str, Any]) -> list[str]:
    keys = []
    title = title_key(str(record.get("title") or ""))
    if len(title) >= 12:
        keys.append("t:" + title)
    day = str(record.get("published") or "")[:10]
    if record.get("source") and day:
        keys.append(f"d:{record['source']}:{day}")
    return keys
