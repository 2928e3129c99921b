"""The store: every article, its verdict, countries and minerals, feed state and ledgers.

SQLModel/SQLAlchemy are used only inside this package; callers get plain values from
monitor.types. SQLite is the default (WAL, busy timeout); any SQLAlchemy URL works.
"""

from monitor.storage.store import Store, open_store

__all__ = ["Store", "open_store"]
