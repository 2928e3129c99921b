"""Copying a whole store into another database: a team that outgrows one machine moves
its SQLite file to PostgreSQL (or back) with every feed's state, article, verdict, digest
and delivery, so that nothing is polled, judged or mailed again.

Both stores are at the current schema (opening them migrates them); the target must hold
no rows yet. The source is read in one transaction (one consistent state, even while a
service writes to it) and the target written in one: a copy that fails leaves the target
as empty as it was. Rows whose parent row is missing (a verdict on an article deleted by
hand with the ``sqlite3`` shell, which keeps foreign keys off) cannot exist in a database
that checks them: they are left out and counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Table, and_, exists, func, select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from monitor.exceptions import StorageError, UsageError
from monitor.storage.migrations import _our_tables
from monitor.storage.store import reason

BATCH = 2_000        # rows per insert: a batch of ~4 KB articles is ~8 MB in memory


@dataclass
class CopyReport:
    copied: dict[str, int] = field(default_factory=dict)      # table → rows
    left_out: dict[str, int] = field(default_factory=dict)    # table → rows without a parent


def _data_tables() -> list[Table]:
    """The tables to copy, parents first (the schema version is the target's own)."""
    return [t for t in _our_tables() if t.name != "schema_version"]


def copy_store(source, target, progress: Callable[[str, int], None] = lambda table, rows: None
               ) -> CopyReport:
    """Copy every row of ``source`` (a Store) into ``target`` (a Store, empty), keeping ids."""
    if same_database(source.url, target.url):
        raise UsageError("the target is the store itself: name another database")
    report = CopyReport()
    try:
        with _snapshot(source.engine) as reader, target.engine.begin() as writer:
            held = _rows_held(writer)
            if held:
                raise UsageError(f"the target already holds {held}: copy only into a database "
                                 "with no monitor rows (a new SQLite file, an empty PostgreSQL "
                                 "database)")
            with reader.begin():                      # one consistent state of the source
                if reader.dialect.name == "sqlite":
                    # pysqlite begins no transaction for a SELECT: each read would see the
                    # writes of a running service since the last, and a row whose parent was
                    # copied before it was written failed the copy (a foreign key)
                    reader.exec_driver_sql("BEGIN")
                for table in _data_tables():
                    copied = _copy_table(reader, writer, table, progress)
                    total = reader.execute(select(func.count()).select_from(table)).scalar_one()
                    report.copied[table.name] = copied
                    if total - copied:
                        report.left_out[table.name] = total - copied
            _advance_sequences(writer)
    except SQLAlchemyError as exc:
        raise StorageError(f"copying the store failed, the target is left as it was: "
                           f"{reason(exc)}") from None
    return report


def _snapshot(engine):
    """A connection whose transaction reads one state of the store: PostgreSQL's default
    (READ COMMITTED) takes a new snapshot for every statement; REPEATABLE READ keeps the
    first. (SQLite: the BEGIN above, a WAL read transaction.)"""
    conn = engine.connect()
    if engine.dialect.name == "postgresql":
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
    return conn


def _copy_table(reader: Connection, writer: Connection, table: Table,
                progress: Callable[[str, int], None]) -> int:
    query = select(table).where(*_parents_present(table))
    key = [c for c in table.primary_key.columns]
    rows = reader.execution_options(yield_per=BATCH).execute(query.order_by(*key))
    copied = 0
    for batch in rows.partitions(BATCH):
        writer.execute(table.insert(), [dict(r._mapping) for r in batch])
        copied += len(batch)
        progress(table.name, copied)
    return copied


def _parents_present(table: Table) -> list:
    """Conditions that each foreign key of ``table`` finds its parent row."""
    conditions = []
    for fk in table.foreign_keys:
        parent = fk.column
        conditions.append(exists().where(and_(parent == fk.parent)))
    return conditions


def _rows_held(conn: Connection) -> str | None:
    """What the target already holds ("12 feeds, 480 articles"), None when nothing."""
    held = []
    for table in _data_tables():
        n = conn.execute(select(func.count()).select_from(table)).scalar_one()
        if n:
            held.append(f"{n:,} {table.name} row{'s' if n != 1 else ''}")
    return ", ".join(held) or None


def _advance_sequences(conn: Connection) -> None:
    """PostgreSQL numbers new rows from a sequence that copied ids do not move: set each to
    the largest id copied, so that the next feed, article or digest gets a new id. (SQLite
    numbers from the largest id in the table by itself.)"""
    if conn.dialect.name != "postgresql":
        return
    for table in _data_tables():
        if "id" not in table.c or not table.c.id.primary_key:
            continue
        sequence = conn.execute(text("SELECT pg_get_serial_sequence(:t, 'id')"),
                                {"t": table.name}).scalar()
        largest = conn.execute(select(func.max(table.c.id))).scalar()
        if sequence and largest:
            conn.execute(text("SELECT setval(:s, :n)"), {"s": sequence, "n": largest})


def foreign_tables(url: str) -> list[str]:
    """The tables of the database at ``url`` when it holds no monitor store but other
    tables (another program's SQLite file, a database in use): a copy would make the
    store's tables there (and put an SQLite file in WAL mode) before refusing, or fill
    another program's file with the feeds' passwords at that file's mode. None for a new
    database, or one that cannot be asked now (opening it then says why)."""
    from monitor.storage.store import database_tables

    tables = database_tables(url) or []
    return [] if "schema_version" in tables else tables


def same_database(a: str, b: str) -> bool:
    """``a`` and ``b`` name one database (one SQLite file, or one server's database)."""
    from sqlalchemy.engine import make_url

    from monitor.storage.reviews import sqlite_file

    file_a, file_b = sqlite_file(a), sqlite_file(b)
    if file_a is not None and file_b is not None:
        try:
            return file_a.resolve() == file_b.resolve()
        except OSError:
            return False
    url_a, url_b = make_url(a), make_url(b)
    return (url_a.get_backend_name() == url_b.get_backend_name()
            and (url_a.host, url_a.port, url_a.database) == (url_b.host, url_b.port, url_b.database))
