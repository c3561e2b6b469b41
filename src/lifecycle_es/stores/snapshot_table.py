"""The store's snapshot table: the ``eventsourcing`` library's aggregate recorder, per store.

Snapshots are a cache of folds (``domain/customer_snapshot.py``): a table beside the events
(``stored_snapshots`` on SQLite, ``<schema>.lifecycle_snapshots`` on PostgreSQL), written
after the events they summarise and never needed to read them.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.persistence import AggregateRecorder, InfrastructureFactory
from eventsourcing.popo import POPOAggregateRecorder
from eventsourcing.postgres import PostgresAggregateRecorder, PostgresFactory
from eventsourcing.sqlite import SQLiteAggregateRecorder, SQLiteFactory

from lifecycle_es.stores.chain_snapshot import SQLITE_SNAPSHOTS
from lifecycle_es.stores.recorders import Guarded
from lifecycle_es.stores.url import StoreURL

#: the snapshot table's name on SQLite; PostgreSQL prefixes it with the application's name
SQLITE_TABLE = SQLITE_SNAPSHOTS


class SQLiteSnapshotRecorder(Guarded, SQLiteAggregateRecorder):
    """The library's SQLite aggregate recorder, its store faults raised as the events' are."""

    def __init__(self, datastore: Any, events_table_name: str, store: StoreURL) -> None:
        self.store = store
        super().__init__(datastore, events_table_name)


class PostgresSnapshotRecorder(Guarded, PostgresAggregateRecorder):
    """The library's PostgreSQL aggregate recorder, its store faults raised as the events'
    are (reads tried again on a new connection)."""

    retry_lost = True

    def __init__(self, datastore: Any, events_table_name: str, store: StoreURL) -> None:
        self.store = store
        super().__init__(datastore, events_table_name=events_table_name)


def snapshot_recorder(factory: InfrastructureFactory[Any], store: StoreURL, *, create: bool,
                      known: frozenset[str] | None = None) -> AggregateRecorder | None:
    """The snapshot table's recorder on ``store`` (the events' store). ``create``: make the
    table if it is missing; else None when it is (a store opened only to read gets no
    table: its loads replay). ``known``: the SQLite store's tables, just read (else the
    table is looked for)."""
    recorder: AggregateRecorder
    if isinstance(factory, SQLiteFactory):
        recorder = SQLiteSnapshotRecorder(factory.datastore, SQLITE_TABLE, store)
        exists = (SQLITE_TABLE in known if known is not None
                  else _sqlite_has(factory.datastore, SQLITE_TABLE))
    elif isinstance(factory, PostgresFactory):
        name = f"{factory.env.name.lower()}_snapshots"
        recorder = PostgresSnapshotRecorder(factory.datastore, name, store)
        exists = _postgres_has(factory.datastore, name)
    else:
        return POPOAggregateRecorder()
    if not exists:
        if not create:
            return None
        recorder.create_table()
    return recorder


def _sqlite_has(datastore: Any, table: str) -> bool:
    with datastore.transaction(commit=False) as c:
        c.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,))
        return c.fetchone() is not None


def _postgres_has(datastore: Any, table: str) -> bool:
    with datastore.get_connection() as conn, conn.cursor() as curs:
        curs.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text)) IS NOT NULL "
                     "AS ok", (datastore.schema, table))
        row = curs.fetchone()
    return bool(row is not None and (row["ok"] if isinstance(row, dict) else row[0]))
