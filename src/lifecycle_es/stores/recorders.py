"""Application recorders for SQLite and PostgreSQL: bulk inserts plus the hash chain.

They keep the ``eventsourcing`` tables, notification ids and guarantees (optimistic
concurrency through the primary key; on PostgreSQL the table lock that makes notification ids
commit in order, and the NOTIFY that wakes subscribers) and change two things:

- inserts are bulk: ``executemany`` on SQLite (the library inserts row by row), ``COPY`` on
  PostgreSQL (the library sends a composite array the driver must escape);
- the same transaction appends every event to the hash chain (``stores/chain.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg.sql import SQL, Identifier

from lifecycle_es.stores.chain import (
    DIGESTS_TABLE,
    HEADS_TABLE,
    LOG_SCOPE,
    ZERO,
    canonical_id,
    chain_batch,
)

_SQLITE_VARS = 900  # stay under SQLite's bound-parameter limit in IN (...) lists
SETTINGS_TABLE = "lifecycle_settings"


class ChainedSQLiteRecorder(SQLiteApplicationRecorder):
    """SQLite: one ``executemany`` per batch, chain rows in the same transaction."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            f"CREATE TABLE IF NOT EXISTS {DIGESTS_TABLE} (notification_id INTEGER PRIMARY KEY, "
            "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, "
            "digest BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {HEADS_TABLE} (scope TEXT PRIMARY KEY, "
            "notification_id INTEGER NOT NULL, originator_version INTEGER NOT NULL, "
            "digest BLOB NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {SETTINGS_TABLE} (key TEXT PRIMARY KEY, value TEXT)",
        ]

    def get_setting(self, key: str) -> str | None:
        """A store-wide setting (e.g. the stage model), or None."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT value FROM {SETTINGS_TABLE} WHERE key=?", (key,))
            row = c.fetchone()
        return None if row is None else str(row[0])

    def put_setting(self, key: str, value: str) -> None:
        with self.datastore.transaction(commit=True) as c:
            c.execute(f"INSERT OR REPLACE INTO {SETTINGS_TABLE} VALUES (?, ?)", (key, value))

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **_: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        n = len(stored_events)
        c.executemany(
            self.insert_events_statement,
            [
                (e.originator_id.hex if isinstance(e.originator_id, UUID) else e.originator_id,
                 e.originator_version, e.topic, e.state)
                for e in stored_events
            ],
        )
        # The write lock is ours now: rowids were assigned consecutively after the old maximum.
        c.execute(self.select_max_notification_id_statement)
        last = int(c.fetchone()[0])
        first = last - n + 1
        aggs = [canonical_id(e.originator_id) for e in stored_events]
        log_head, agg_heads = ZERO, {}
        scopes = [LOG_SCOPE, *dict.fromkeys(aggs)]
        for start in range(0, len(scopes), _SQLITE_VARS):
            chunk = scopes[start : start + _SQLITE_VARS]
            c.execute(
                f"SELECT scope, digest FROM {HEADS_TABLE} "
                f"WHERE scope IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            for scope, d in c.fetchall():
                if scope == LOG_SCOPE:
                    log_head = bytes(d)
                else:
                    agg_heads[scope] = bytes(d)
        digests, log_head = chain_batch(log_head, agg_heads, aggs, stored_events)
        versions = [e.originator_version for e in stored_events]
        c.executemany(
            f"INSERT INTO {DIGESTS_TABLE} VALUES (?, ?, ?, ?)",
            zip(range(first, last + 1), aggs, versions, digests, strict=True),
        )
        c.executemany(
            f"INSERT INTO {HEADS_TABLE} VALUES (?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET "
            "notification_id = excluded.notification_id, "
            "originator_version = excluded.originator_version, digest = excluded.digest",
            [(LOG_SCOPE, last, versions[-1], log_head),
             *((agg, first + i, versions[i], digests[i]) for agg, i in _last_index(aggs))],
        )
        return list(range(first, last + 1))


class ChainedPostgresRecorder(PostgresApplicationRecorder):
    """PostgreSQL: ``COPY`` under the library's table lock, chain rows in the same transaction."""

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.table = SQL("{}.{}").format(schema, Identifier(self.events_table_name))
        self.digests = SQL("{}.{}").format(schema, Identifier(DIGESTS_TABLE))
        self.heads = SQL("{}.{}").format(schema, Identifier(HEADS_TABLE))
        self.settings = SQL("{}.{}").format(schema, Identifier(SETTINGS_TABLE))
        self.sql_create_statements.extend([
            SQL("CREATE TABLE IF NOT EXISTS {} (notification_id bigint PRIMARY KEY, "
                "originator_id text NOT NULL, originator_version bigint NOT NULL, "
                "digest bytea NOT NULL)").format(self.digests),
            # Heads are updated in place at every batch: free space on each page lets
            # PostgreSQL keep the new row versions on the same page (HOT updates).
            SQL("CREATE TABLE IF NOT EXISTS {} (scope text PRIMARY KEY, "
                "notification_id bigint NOT NULL, originator_version bigint NOT NULL, "
                "digest bytea NOT NULL) WITH (fillfactor = 50)").format(self.heads),
            SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text)").format(
                self.settings),
        ])

    def get_setting(self, key: str) -> str | None:
        """A store-wide setting (e.g. the stage model), or None."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT value FROM {} WHERE key=%s").format(self.settings), (key,))
            row = curs.fetchone()
        return None if row is None else str(_first(row))

    def put_setting(self, key: str, value: str) -> None:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(
                SQL("INSERT INTO {} VALUES (%s, %s) ON CONFLICT (key) DO UPDATE SET "
                    "value = EXCLUDED.value").format(self.settings),
                (key, value),
            )

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        try:
            with self.datastore.get_connection() as conn, conn.transaction(), \
                    conn.cursor() as curs:
                for statement in self.lock_table_statements:
                    curs.execute(statement)
                curs.execute(SQL("NOTIFY {}").format(Identifier(self.channel_name)))
                curs.execute(
                    SQL("SELECT COALESCE(MAX(notification_id), 0) AS m FROM {}").format(
                        self.table)
                )
                before = int(_first(curs.fetchone()))
                with curs.copy(SQL("COPY {} (originator_id, originator_version, topic, state) "
                                   "FROM STDIN (FORMAT BINARY)").format(self.table)) as copy:
                    copy.set_types(["uuid", "int8", "text", "bytea"])
                    for e in stored_events:
                        copy.write_row((e.originator_id, e.originator_version, e.topic, e.state))
                ids = self._new_ids(curs, before, len(stored_events))
                self._chain(curs, ids, stored_events)
                return ids
        except psycopg.errors.UniqueViolation as exc:
            raise IntegrityError(str(exc)) from exc

    def _new_ids(self, curs: Any, before: int, n: int) -> list[int]:
        """The notification ids the COPY just assigned to its ``n`` rows.

        The table lock is ours, so the rows above ``before`` are exactly those ``n``, with
        distinct ids: when the largest is ``before + n`` they are that range (one index
        lookup). After a sequence gap they are read one by one.
        """
        curs.execute(
            SQL("SELECT MAX(notification_id) AS m FROM {}").format(self.table)
        )
        last = int(_first(curs.fetchone()))
        if last == before + n:
            return list(range(before + 1, last + 1))
        curs.execute(
            SQL("SELECT notification_id FROM {} WHERE notification_id > %s "
                "ORDER BY notification_id").format(self.table),
            (before,),
        )
        return [int(_first(r)) for r in curs.fetchall()]

    def _chain(self, curs: Any, ids: list[int], stored_events: Sequence[StoredEvent]) -> None:
        aggs = [canonical_id(e.originator_id) for e in stored_events]
        log_head, agg_heads = ZERO, {}
        curs.execute(
            SQL("SELECT scope, digest FROM {} WHERE scope = ANY(%s)").format(self.heads),
            ([LOG_SCOPE, *dict.fromkeys(aggs)],),
        )
        for row in curs.fetchall():
            if row["scope"] == LOG_SCOPE:
                log_head = bytes(row["digest"])
            else:
                agg_heads[row["scope"]] = bytes(row["digest"])
        digests, log_head = chain_batch(log_head, agg_heads, aggs, stored_events)
        versions = [e.originator_version for e in stored_events]
        with curs.copy(SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(self.digests)) as copy:
            copy.set_types(["int8", "text", "int8", "bytea"])
            for row in zip(ids, aggs, versions, digests, strict=True):
                copy.write_row(row)
        # One statement for all heads (row-by-row upserts were a quarter of the insert time).
        last = list(_last_index(aggs))
        curs.execute(
            SQL("INSERT INTO {} SELECT * FROM unnest(%s::text[], %s::int8[], %s::int8[], "
                "%s::bytea[]) ON CONFLICT (scope) DO UPDATE SET "
                "notification_id = EXCLUDED.notification_id, "
                "originator_version = EXCLUDED.originator_version, "
                "digest = EXCLUDED.digest").format(self.heads),
            ([LOG_SCOPE, *(agg for agg, _ in last)],
             [ids[-1], *(ids[i] for _, i in last)],
             [versions[-1], *(versions[i] for _, i in last)],
             [log_head, *(digests[i] for _, i in last)]),
        )


def _last_index(aggs: Sequence[str]) -> Iterable[tuple[str, int]]:
    """(aggregate, index of its last event) for every aggregate of a batch."""
    return {agg: i for i, agg in enumerate(aggs)}.items()


def _first(row: Any) -> Any:
    """The first column of a row (the library's connections return dict rows)."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]
