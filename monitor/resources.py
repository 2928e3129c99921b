"""Where the templates, the example config and the model are found.

The rule: a folder named ``templates``, ``config`` or ``models`` next to the ``monitor``
package (a checkout, or an editable install) wins; otherwise the copy bundled into the
wheel under ``monitor/_bundled/`` is used. So `pip install .` works from any directory.
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CHECKOUT_DIR = PACKAGE_DIR.parent
BUNDLED_DIR = PACKAGE_DIR / "_bundled"


def resource_dir(name: str) -> Path:
    """The folder holding resource ``name`` (templates, config or models)."""
    local = CHECKOUT_DIR / name
    if local.is_dir() and (CHECKOUT_DIR / "pyproject.toml").is_file():
        return local
    return BUNDLED_DIR / name


def default_config_path() -> Path:
    return resource_dir("config") / "monitor.toml"


def default_model_path() -> Path:
    return resource_dir("models") / "classifier.skops"


def templates_dir() -> Path:
    return resource_dir("templates")


def is_bundled(path: str | Path) -> bool:
    """Whether ``path`` is one of the copies inside the installed package (its example
    config, its model), which an upgrade or reinstall replaces."""
    try:
        Path(path).resolve().relative_to(BUNDLED_DIR.resolve())
    except ValueError:
        return False
    return True


def file_stamp(path: str | Path) -> tuple[int, int, int] | None:
    """(mtime, size, inode) of a file, None when it is missing or unreadable: it changes
    when the file is edited or replaced, so that a process that runs for days (`monitor
    run`, `monitor serve`) reads its config and model again."""
    try:
        stat = Path(path).stat()
    except OSError:
        return None
    return (stat.st_mtime_ns, stat.st_size, stat.st_ino)
