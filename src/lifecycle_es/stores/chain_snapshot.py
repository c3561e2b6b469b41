"""One consistent, read-only snapshot of a store's chained tables, for ``audit verify``.

Verifying compares the events with their digests, the chain heads and the settings history
as they stood at one instant: it needs one snapshot transaction over all of them (SQLite's
``BEGIN`` on a read-only connection, PostgreSQL's ``REPEATABLE READ READ ONLY``), which the
recorder interface — a pooled connection per call — does not give. So the verifier reads
through this class of the stores package rather than through the event log.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from lifecycle_es.errors import LifecycleError
from lifecycle_es.stores.chain import (
    DIGESTS_TABLE,
    HEADS_TABLE,
    SETTINGS_HISTORY_TABLE,
    SETTINGS_TABLE,
    canonical_id,
)
from lifecycle_es.stores.key_table import MASTER_TABLE
from lifecycle_es.stores.keys import KEYS_TABLE
from lifecycle_es.stores.url import StoreURL

BATCH = 5_000
#: the snapshot table's name on SQLite (``stores/snapshot_table.py``)
SQLITE_SNAPSHOTS = "stored_snapshots"


@dataclass
class ChainRow:
    """An event row or a digest row at one position."""

    oid: str
    version: int
    topic: str = ""
    state: bytes = b""
    digest: bytes = b""


class ChainSnapshot:
    """A read-only, consistent view of the events' tables (SQLite or PostgreSQL): events,
    digests, chain heads, settings and their history, and the read model ``naming_table``
    (position -> the aggregate's external id), all in one snapshot transaction."""

    def __init__(self, store: StoreURL, events_table: str, naming_table: str,
                 recorder: Any = None) -> None:
        """On PostgreSQL the snapshot borrows a connection of ``recorder``'s pool when
        given (the engine's connection budget, docs/operations.md), else opens its own."""
        self.kind = store.kind
        self._pool: Any = None
        names = {"events": events_table, "digests": DIGESTS_TABLE, "heads": HEADS_TABLE,
                 "settings": SETTINGS_TABLE, "history": SETTINGS_HISTORY_TABLE,
                 "keys": KEYS_TABLE, "master": MASTER_TABLE,
                 "snapshots": snapshots_table(store, events_table)}
        if store.kind == "sqlite":
            self.conn: Any = sqlite3.connect(f"file:{store.path}?mode=ro", uri=True,
                                             isolation_level=None)
            self.conn.execute("BEGIN")  # one read snapshot for every table
            self.nid, self.p = "rowid", "?"
            self.t = {**names, "naming": naming_table}
        elif store.kind == "postgresql":
            from psycopg import sql

            from lifecycle_es.stores.postgres import connect

            self._pool = getattr(getattr(recorder, "datastore", None), "pool", None)
            if self._pool is not None:
                from psycopg.rows import tuple_row

                self.conn = self._pool.getconn()
                self._row_factory = self.conn.row_factory
                self.conn.row_factory = tuple_row
            else:
                self.conn = connect(store)
            self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            self.nid, self.p = "notification_id", "%s"
            # read models live in the schema beside the store's (projection/db.py)
            read = "lifecycle_read" if store.schema == "public" else f"{store.schema}_read"
            self.t = {k: sql.SQL("{}.{}").format(sql.Identifier(schema), sql.Identifier(v))
                      .as_string(self.conn)
                      for k, schema, v in [*((k, store.schema, v) for k, v in names.items()),
                                           ("naming", read, naming_table)]}
        else:
            raise LifecycleError(
                f"audit verify: store {store.redacted()} keeps no hash chain "
                "(use a SQLite or PostgreSQL store)"
            )

    def rows(self, which: str) -> Iterator[tuple[int, ChainRow]]:
        """(position, row) of the events or the digests, in log order, in batches."""
        if which == "events":
            oid = "originator_id::text" if self.kind == "postgresql" else "originator_id"
            cols, nid = f"{self.nid}, {oid}, originator_version, topic, state", self.nid
        else:
            cols, nid = "notification_id, originator_id, originator_version, digest", \
                "notification_id"
        sql = (f"SELECT {cols} FROM {self.t[which]} WHERE {nid} > {self.p} "
               f"ORDER BY {nid} LIMIT {self.p}")
        last = -1
        while True:
            batch = self.conn.execute(sql, (last, BATCH)).fetchall()
            for r in batch:
                if which == "events":
                    yield int(r[0]), ChainRow(canonical_id(r[1]), int(r[2]), r[3], _bytes(r[4]))
                else:
                    yield int(r[0]), ChainRow(r[1], int(r[2]), digest=_bytes(r[3]))
            if len(batch) < BATCH:
                return
            last = int(batch[-1][0])

    def heads(self) -> dict[str, tuple[int, int, bytes]]:
        sql = f"SELECT scope, notification_id, originator_version, digest FROM {self.t['heads']}"
        return {r[0]: (int(r[1]), int(r[2]), _bytes(r[3]))
                for r in self.conn.execute(sql).fetchall()}

    def has(self, which: str) -> bool:
        """Whether the table exists (a store not yet opened by this version may lack it)."""
        if self.kind == "sqlite":
            return self.conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND "
                                     "name = ?", (self.t[which],)).fetchone() is not None
        return self.conn.execute("SELECT to_regclass(%s)", (self.t[which],)).fetchone()[0] \
            is not None

    def settings(self) -> dict[str, str]:
        sql = f"SELECT key, value FROM {self.t['settings']}"
        return {str(k): str(v) for k, v in self.conn.execute(sql).fetchall()}

    def history(self) -> list[tuple[int, str, str, int, str, str, str]]:
        """The settings history: (seq, key, origin, log position, recorded at, value, digest
        in hex), in order."""
        sql = (f"SELECT seq, key, origin, log_position, recorded_at, value, digest "
               f"FROM {self.t['history']} ORDER BY seq")
        return [(int(r[0]), str(r[1]), str(r[2]), int(r[3]), str(r[4]), str(r[5]),
                 _bytes(r[6]).hex()) for r in self.conn.execute(sql).fetchall()]

    def keys(self) -> dict[str, tuple[bytes | None, str | None]]:
        """The keys table: aggregate id -> (wrapped data key or None, erased at)."""
        sql = f"SELECT aggregate_id, wrapped, erased_at FROM {self.t['keys']}"
        return {str(a): (None if w is None else _bytes(w), None if e is None else str(e))
                for a, w, e in self.conn.execute(sql).fetchall()}

    def master_fingerprint(self) -> str | None:
        """The recorded fingerprint of the store's master key, or None when it has none."""
        row = self.conn.execute(f"SELECT fingerprint FROM {self.t['master']}").fetchone()
        return None if row is None else str(row[0])

    def snapshots(self) -> Iterator[tuple[str, int, str, bytes]]:
        """Every stored snapshot: (aggregate id, version, topic, state), a few per long
        customer (one row at a time from the cursor)."""
        oid = "originator_id::text" if self.kind == "postgresql" else "originator_id"
        sql = (f"SELECT {oid}, originator_version, topic, state FROM {self.t['snapshots']} "
               "ORDER BY originator_id, originator_version")
        for r in self.conn.execute(sql):
            yield canonical_id(r[0]), int(r[1]), str(r[2]), _bytes(r[3])

    def named(self, position: int) -> list[tuple[str, str]]:
        """(aggregate kind, external id) the naming read model holds at ``position``."""
        sql = (f"SELECT aggregate, COALESCE(customer, campaign) FROM {self.t['naming']} "
               f"WHERE position = {self.p}")
        return [(str(r[0]), str(r[1])) for r in self.conn.execute(sql, (position,)).fetchall()
                if r[1] is not None]

    def close(self) -> None:
        if self._pool is not None:  # back to the pool as it came
            try:
                self.conn.rollback()
                self.conn.row_factory = self._row_factory
            finally:
                self._pool.putconn(self.conn)
            return
        self.conn.rollback() if self.kind == "postgresql" else self.conn.execute("ROLLBACK")
        self.conn.close()


def snapshots_table(store: StoreURL, events_table: str) -> str:
    """The snapshot table beside ``events_table`` (``stores/snapshot_table.py``)."""
    if store.kind == "postgresql":
        return events_table.removesuffix("_events") + "_snapshots"
    return SQLITE_SNAPSHOTS


def _bytes(value: Any) -> bytes:
    """A BLOB/bytea column's bytes (a tampered SQLite cell may have become TEXT)."""
    return value.encode() if isinstance(value, str) else bytes(value)
