"""What the subcommands share: the loaded config, the store they read, the clock."""

from __future__ import annotations

import getpass
import os
from datetime import datetime
from pathlib import Path

import click


def config_of(ctx: click.Context):
    """The config named by the root command's ``--config`` (loaded once per invocation)."""
    from monitor.config import load_config

    root = ctx.find_root()
    if "config" not in root.obj:
        root.obj["config"] = load_config(root.obj["config_file"])
    return root.obj["config"]


def config_file_of(ctx: click.Context) -> str | None:
    return ctx.find_root().obj["config_file"]


def check_store_of(ctx: click.Context) -> None:
    """Before a command opens the store: a store URL that is not one, or whose database
    driver is missing, is a config error naming the file and the key (exit 2)."""
    from monitor.config import config_path
    import os

    from monitor.config import ENV_STORE_URL
    from monitor.exceptions import ConfigError, StorageError
    from monitor.storage.store import check_store_url

    try:
        check_store_url(config_of(ctx).store_url())
    except StorageError as exc:
        if os.environ.get(ENV_STORE_URL):       # the variable overrides the file: name it
            raise ConfigError(f"${ENV_STORE_URL}: {str(exc).removeprefix('store.url: ')}") from None
        raise ConfigError(f"{config_path(config_file_of(ctx))}: {exc}") from None


def missing_store(config) -> Path | None:
    """The SQLite file the config names when it does not exist yet (None otherwise, and
    for PostgreSQL)."""
    from monitor.storage.reviews import sqlite_file

    path = sqlite_file(config.store_url())
    return path if path is not None and not path.is_file() else None


def now() -> datetime:
    from monitor.clock import utcnow

    return utcnow()


def refuse_missing_store(ctx: click.Context, what: str) -> None:
    """A command that only reads the store refuses (UsageError, exit 2) when the SQLite file
    the config names does not exist yet, rather than create an empty one: the message names
    the file, where its URL came from, and `monitor poll`, which creates it. ``what`` says
    what there is not yet ("nothing to review yet")."""
    from monitor.config import ENV_STORE_URL, config_path
    from monitor.exceptions import UsageError

    from monitor.storage.store import empty_database

    config = config_of(ctx)
    path = missing_store(config)
    database = None if path is not None else empty_database(config.store_url())
    if path is None and database is None:
        return
    source = (f"${ENV_STORE_URL}" if os.environ.get(ENV_STORE_URL)
              else f"store.url in {config_path(config_file_of(ctx))}")
    where = (f"no store at {path.absolute()}" if path is not None
             else f"no store in the database {database} (it has no monitor tables)")
    raise UsageError(f"{where} ({source}): {what}; "
                     f"run `monitor poll` first (it creates the store)")


def open_review_store(ctx: click.Context):
    """(config, store) for an existing store; UsageError if the SQLite file is missing."""
    from monitor.storage import open_store

    config = config_of(ctx)
    check_store_of(ctx)
    refuse_missing_store(ctx, "nothing to review yet")
    return config, open_store(config.store_url(), config.store.busy_timeout_seconds)


def reviewer_name() -> str:
    name = os.environ.get("USER")
    if name:
        return name
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"
