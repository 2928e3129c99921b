"""Wiring: from a validated Config to a store, an analyser and a poller."""

from __future__ import annotations

import logging
from datetime import datetime

from monitor.config import Config
from monitor.pipeline import Poller, unclassified, utcnow
from monitor.storage import Store, open_store

log = logging.getLogger("monitor")


def open_configured_store(config: Config, now: datetime | None = None) -> Store:
    """Open the store named by the config and make its feed table match the config."""
    store = open_store(config.store_url(), config.store.busy_timeout_seconds)
    store.sync_feeds(config.feeds, now or utcnow(), config.poll.interval_minutes,
                     config.poll.silent_after_days)
    return store


def build_poller(config: Config, store: Store, **kwargs) -> Poller:
    return Poller(store, config, analyze=unclassified, **kwargs)
