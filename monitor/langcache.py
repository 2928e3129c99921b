"""py3langid's model as ``monitor.language`` reads it, unpacked once into plain files and
memory-mapped after that.

py3langid ships its model xz-compressed: an automaton over bytes (a 37 MB transition
table) and naive-Bayes weights per feature and language. Unpacking it and indexing its
n-grams (``language._index``) takes ~1.5 s; it is done once and the result written to a
cache folder: the index of the automaton's nodes (two arrays of 262,144 integers, 3 MB)
and the weights restricted to the languages ``monitor.language`` detects (float16, 15 MB).
From then on they are memory-mapped: loading takes a few milliseconds, the pages come
from the operating system's file cache and are shared by every process that reads them,
and only the weights of features that texts contain become resident.

Where: ``$MONITOR_CACHE_DIR``, else ``$XDG_CACHE_HOME/monitor``, else ``~/.cache/monitor``;
``MONITOR_CACHE_DIR=""`` turns the cache off. One folder per model, language set and
format (named by the SHA-256 of py3langid's model file, of that set and of ``FORMAT``),
written under a temporary name and renamed into place, so processes starting together
never see half a cache. A cache that does not fit its description (a truncated or
foreign file) is said once and unpacked again; a folder that cannot be written costs only
the speed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

log = logging.getLogger("monitor.language")

FORMAT = 3                  # 3: the n-gram index instead of the automaton's tables
_ARRAYS = ("keys", "values", "ptc", "pc")
MAX_DEPTH = 7               # node labels of up to 7 bytes: 56 bits and the length above them


def cache_root() -> Path | None:
    """The cache folder, or None when ``MONITOR_CACHE_DIR`` is set empty."""
    configured = os.environ.get("MONITOR_CACHE_DIR")
    if configured is not None:
        return Path(configured).expanduser() if configured.strip() else None
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except (RuntimeError, KeyError):        # no home folder to be found: no cache
            return None
    return Path(base) / "monitor"


def folder_for(model_file: Path, languages: list[str]) -> Path | None:
    root = cache_root()
    if root is None:
        return None
    digest = hashlib.sha256()
    with open(model_file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    digest.update(json.dumps([FORMAT, languages]).encode())
    return root / f"langid-{digest.hexdigest()[:20]}"


def load(folder: Path) -> dict[str, Any] | None:
    """The arrays in ``folder``, memory-mapped, and its meta (``classes``, ``depth``);
    None when there is no cache there yet. ValueError (naming the file) when one does not
    fit the description."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None
    import numpy as np

    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{meta_file}: unreadable ({exc})") from None
    if not isinstance(meta, dict):
        raise ValueError(f"{meta_file}: not a description of the tables")
    arrays: dict[str, Any] = {}
    for name in _ARRAYS:
        path = folder / f"{name}.npy"
        try:
            arrays[name] = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ValueError(f"{path}: unreadable ({exc})") from None
    classes, depth = meta.get("classes"), meta.get("depth")
    keys, values, ptc, pc = (arrays[name] for name in _ARRAYS)
    size = len(keys)
    if (meta.get("format") != FORMAT or not isinstance(classes, list)
            or not isinstance(depth, int) or not 1 <= depth <= MAX_DEPTH
            or keys.dtype != np.int64 or values.dtype != np.int32 or values.shape != keys.shape
            or size < 16 or size & (size - 1) or keys.ndim != 1
            or ptc.ndim != 2 or ptc.shape[1] != len(classes) or pc.shape != (len(classes),)
            or int(values.max()) > ptc.shape[0] or int(values.min()) < 0):
        raise ValueError(f"{meta_file}: the tables do not fit together")
    return {"classes": classes, "depth": depth, **arrays}


def store(folder: Path, arrays: dict[str, Any], classes: list[str], depth: int) -> None:
    """Write the index and weights (``language._index``: ``keys``, ``values``, ``ptc``,
    ``pc``) to ``folder``, atomically."""
    import numpy as np

    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        for name in _ARRAYS:
            np.save(temporary / f"{name}.npy", np.ascontiguousarray(arrays[name]))
        meta = {"format": FORMAT, "classes": classes, "depth": depth}
        (temporary / "meta.json").write_text(json.dumps(meta), encoding="utf-8")   # last
        try:
            os.replace(temporary, folder)
        except OSError:
            if not (folder / "meta.json").is_file():   # not another process's finished copy
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
