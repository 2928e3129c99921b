"""py3langid's model, unpacked once into plain files and memory-mapped after that.

py3langid ships its model xz-compressed; unpacking it takes ~0.4 s in every process that
detects a language (each poll cycle's parse process). The tables that ``monitor.language``
uses (restricted to the languages it detects) are written once, uncompressed, to a cache
folder and memory-mapped from then on: loading takes ~0.02 s, the pages come from the
operating system's file cache, only the parts of the 37 MB transition table that texts
actually reach become resident, and the languages found are the same (tests).

Where: ``$MONITOR_CACHE_DIR``, else ``$XDG_CACHE_HOME/monitor``, else ``~/.cache/monitor``;
``MONITOR_CACHE_DIR=""`` turns the cache off. One folder per model and language set (named
by the SHA-256 of py3langid's model file and of that set), written under a temporary name
and renamed into place, so processes starting together never see half a cache. A cache
that does not fit its description (a truncated or foreign file) is said once and unpacked
again; a folder that cannot be written costs only the speed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import shutil
import tempfile
from array import array
from pathlib import Path
from typing import Any, Literal

_Code = Literal["I", "H", "q"]

log = logging.getLogger("monitor.language")

FORMAT = 2                  # 2: meta.json also holds the automaton's depth
_FILES: dict[str, _Code] = {"nextmove": "I", "row": "H", "output": "q"}   # raw tables, item types


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
    """The tables in ``folder``, memory-mapped; None when there is no cache there yet.
    ValueError (naming the file) when one does not fit the description."""
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None
    import numpy as np

    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{meta_file}: unreadable ({exc})") from None
    tables: dict[str, Any] = {}
    for name, code in _FILES.items():
        path = folder / f"{name}.bin"
        tables[name] = _mapped(path, code, meta.get(name))
    ptc_file = folder / "ptc.npy"
    try:
        ptc = np.load(ptc_file, mmap_mode="r", allow_pickle=False)
        pc = np.load(folder / "pc.npy", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{ptc_file.parent}: unreadable tables ({exc})") from None
    classes = meta.get("classes")
    rows, states = len(tables["row"]), len(tables["output"])
    if (meta.get("format") != FORMAT or not isinstance(classes, list)
            or ptc.shape != (meta.get("features"), len(classes)) or pc.shape != (len(classes),)
            or rows != states or len(tables["nextmove"]) % 256
            or not isinstance(meta.get("depth"), int) or meta["depth"] < 1):
        raise ValueError(f"{meta_file}: the tables do not fit together")
    return {"ptc": ptc, "pc": pc, "classes": classes, "depth": meta["depth"], **tables}


def _mapped(path: Path, code: _Code, length: Any) -> memoryview:
    size = array(code).itemsize
    try:
        with open(path, "rb") as handle:
            view = memoryview(mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ))
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: cannot map it ({exc})") from None
    if not isinstance(length, int) or view.nbytes != length * size:
        raise ValueError(f"{path}: {view.nbytes:,} bytes, expected {length!r} items of {size}")
    return view.cast(code)


def store(folder: Path, identifier: Any, depth: int) -> None:
    """Write an identifier's tables (restricted already) and its automaton's depth
    (``language._automaton_depth``) to ``folder``, atomically."""
    import numpy as np

    folder.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=folder.name + ".", dir=folder.parent))
    try:
        meta: dict[str, Any] = {"format": FORMAT, "classes": list(identifier.nb_classes),
                                "features": int(identifier.nb_ptc.shape[0]), "depth": depth}
        for name, attribute in (("nextmove", "tk_nextmove"), ("row", "tk_row"),
                                ("output", "tk_output")):
            table = array(_FILES[name], getattr(identifier, attribute))
            (temporary / f"{name}.bin").write_bytes(table.tobytes())
            meta[name] = len(table)
        np.save(temporary / "ptc.npy", np.ascontiguousarray(identifier.nb_ptc))
        np.save(temporary / "pc.npy", np.asarray(identifier.nb_pc))
        (temporary / "meta.json").write_text(json.dumps(meta), encoding="utf-8")   # last
        try:
            os.replace(temporary, folder)
        except OSError:
            if not (folder / "meta.json").is_file():   # not another process's finished copy
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
