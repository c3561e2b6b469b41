"""Read-model storage: one connection, two dialects (SQLite, PostgreSQL).

Read models live beside the events: in the same SQLite file, or in their own schema of the
same PostgreSQL database (``lifecycle_read``, or ``<schema>_read`` for a non-public store
schema). With a ``memory://`` store they live in a private in-memory SQLite database.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

from lifecycle_es.reading.projection.sql_values import (
    decode,
    encode,
    encoder,
    is_transient,
    to_format_style,
)
from lifecycle_es.reading.projection.table import COLUMN_TYPES, Table
from lifecycle_es.stores.url import StoreURL

__all__ = ["ERRORS_TABLE", "STATE_TABLE", "ReadStore", "is_transient", "to_format_style"]

STATE_TABLE = "projection_state"
#: events a read model skipped (``--skip-failing``): one row per read model, build and event
ERRORS_TABLE = "projection_errors"
#: columns added to ``projection_state`` after its first release (added to older stores)
_LATER_STATE_COLUMNS = {"shadow_cursor": "TEXT", "failure": "TEXT", "shadow_failure": "TEXT"}


#: PostgreSQL upserts of at least this many rows go through a COPY-filled staging table
_STAGED_UPSERT_MIN = 500
#: values per ``IN (...)`` query (SQLite's default limit is 32,766 parameters)
_IN_CHUNK = 5_000


class ReadStore:
    """A connection to the read-model database with the few SQL shapes the machinery needs."""

    def __init__(self, store: StoreURL) -> None:
        self.store = store
        self.dialect = "postgresql" if store.kind == "postgresql" else "sqlite"
        self._lock = threading.RLock()
        self._savepoints = 0
        self._suspended = False
        self._open()

    @property
    def conn(self) -> Any:
        """The connection (reopened here after :meth:`suspend`)."""
        if self._suspended:
            self._suspended = False
            self._open()
        return self._conn

    @conn.setter
    def conn(self, value: Any) -> None:
        self._conn = value

    @property
    def lock(self) -> threading.RLock:
        """Held by every use of the connection (a live runner's LISTEN waits under it)."""
        return self._lock

    @contextmanager
    def set_aside(self) -> Iterator[None]:
        """Close a PostgreSQL connection for the block (reopened on the next use after it):
        an import's writer process takes its place in the connection budget
        (docs/operations.md). Other threads' uses wait for the block's end. A no-op on
        SQLite."""
        if self.dialect != "postgresql":
            yield
            return
        with self._lock:
            if not (self._suspended or self._savepoints
                    or self._conn.info.transaction_status):
                with suppress(Exception):
                    self._conn.close()
                self._suspended = True
            yield

    def _open(self) -> None:
        store = self.store
        if self.dialect == "postgresql":
            from lifecycle_es.stores.postgres import connect, ensure_schema, setup_lock

            self.schema = (
                "lifecycle_read" if store.schema == "public" else f"{store.schema}_read"
            )
            self.conn = connect(store, autocommit=True)
            self.param = "%s"
            if store.read_only:  # a replica or a read-only role: no lock, no DDL
                self.conn.execute(f'SET search_path TO "{self.schema}", public')
                self.conn.execute("SET TIME ZONE 'UTC'")
                self._require_state_table()
                return
            with self._faults(), setup_lock(self.conn, self.schema):
                ensure_schema(self.conn, self.schema)
                self.conn.execute(f'SET search_path TO "{self.schema}", public')
                self.conn.execute("SET TIME ZONE 'UTC'")
                self._create_state_table()
            return
        else:
            self.schema = ""
            path = store.path if store.kind == "sqlite" else ":memory:"
            with self._faults():
                if store.read_only and path != ":memory:":
                    from pathlib import Path

                    self.conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro",
                                                uri=True, isolation_level=None,
                                                check_same_thread=False, timeout=store.timeout)
                else:
                    self.conn = sqlite3.connect(path, isolation_level=None,
                                                check_same_thread=False, timeout=store.timeout)
            self.param = "?"
            if store.read_only:
                self._require_state_table()
                return
            if path != ":memory:":
                self.execute("PRAGMA journal_mode=WAL")
            self.execute("PRAGMA synchronous=NORMAL")
            # deleted and rewritten rows leave no bytes behind: an erased customer's name
            # must not stay in free space of a page (docs/privacy.md)
            self.execute("PRAGMA secure_delete=ON")
        self._create_state_table()

    def _require_state_table(self) -> None:
        """A read-only store must already hold read models: else one StoreError (exit 3)."""
        from lifecycle_es.errors import StoreError

        if not self.table_exists(STATE_TABLE):
            where = f"schema {self.schema!r}" if self.schema else "the file"
            self.conn.close()
            raise StoreError(
                f"read store {self.store.redacted()!r}: no read models in {where} (build "
                "them on the primary store: `lifecycle-es projections run` (--once "
                "to catch up and exit); a replica receives them)")

    def _create_state_table(self) -> None:
        if self.dialect == "sqlite" and self._state_tables_current():
            return  # opened again: one read, no DDL
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {STATE_TABLE} ("
            "name TEXT PRIMARY KEY, version INTEGER NOT NULL, position BIGINT NOT NULL, "
            "build TEXT NOT NULL, rebuilt_at TEXT, shadow_version INTEGER, "
            "shadow_position BIGINT, shadow_build TEXT, shadow_cursor TEXT, failure TEXT, "
            "shadow_failure TEXT)"
        )
        columns = [c[0] for c in self.execute(f"SELECT * FROM {STATE_TABLE} LIMIT 0")
                   .description]
        for column, typ in _LATER_STATE_COLUMNS.items():
            if column not in columns:  # a store made by an earlier version
                self.execute(f"ALTER TABLE {STATE_TABLE} ADD COLUMN {column} {typ}")
        self.execute(
            f"CREATE TABLE IF NOT EXISTS {ERRORS_TABLE} ("
            "model TEXT NOT NULL, build TEXT NOT NULL, position BIGINT NOT NULL, "
            "event_type TEXT, customer TEXT, error TEXT NOT NULL, skipped_at TEXT NOT NULL, "
            "PRIMARY KEY (model, build, position))"
        )

    def _state_tables_current(self) -> bool:
        """SQLite: whether the state and errors tables exist, the state table with every
        column (one read of the schema: its statements, which ``ADD COLUMN`` extends)."""
        made = dict(self.fetchall("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                                  "AND name IN (?, ?)", [STATE_TABLE, ERRORS_TABLE]))
        state = str(made.get(STATE_TABLE, ""))
        return ERRORS_TABLE in made and all(re.search(rf"\b{column}\b", state)
                                            for column in _LATER_STATE_COLUMNS)

    # ------------------------------------------------------------ primitives

    def q(self, sql: str) -> str:
        """The statement in the dialect's placeholder style: written with ``?`` (outside
        string literals and quoted names, where a ``?`` is text), bound by the driver."""
        return sql if self.param == "?" else to_format_style(sql)

    @contextmanager
    def _faults(self) -> Iterator[None]:
        """A fault of the database or the connection (:func:`is_transient`, or a store that
        refuses writes: read-only, full) leaves as a one-line ``StoreError`` (transient: the
        runner retries it, never records it as a read model's failure), and so does a
        missing privilege (a role without the grants of docs/operations.md); an error of the
        statement or its values (an event a read model cannot store) is left as it is.

        Every statement on the connection runs inside it: the primitives below, and
        :meth:`transaction` around its block (so that the batched writes of
        ``writer.py`` are covered too)."""
        from lifecycle_es.errors import StoreError, first_line
        from lifecycle_es.stores.faults import fault, refusing

        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            if is_transient(exc) or refusing(exc):
                raise fault(exc, self.store) from None
            if type(exc).__name__ == "InsufficientPrivilege":  # psycopg.errors, not imported
                raise StoreError(
                    f"read models of {self.store.redacted()}: "
                    f"{self.store.scrub(first_line(exc))} (the grants: docs/operations.md, "
                    "\"Roles and grants\")") from None
            raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        with self._lock, self._faults():
            return self.conn.execute(self.q(sql), params)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self._lock, self._faults():
            if self.dialect == "sqlite":
                self.conn.executemany(sql, rows)
            else:
                with self.conn.cursor() as cur:
                    cur.executemany(self.q(sql), list(rows))

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock, self._faults():
            return list(self.conn.execute(self.q(sql), params).fetchall())

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    @contextmanager
    def transaction(self, locks: Sequence[str] = ()) -> Iterator[None]:
        """One transaction holding the write lock of each named projection.

        PostgreSQL: transaction-scoped advisory locks (other runners wait). SQLite: ``BEGIN
        IMMEDIATE`` takes the database's write lock.
        """
        if self.store.read_only:
            from lifecycle_es.errors import StoreError

            raise StoreError(f"read store {self.store.redacted()!r} is only read: read "
                             "models are written on the primary store (--store)")
        with self._lock, self._faults():
            if self.dialect == "sqlite":
                self.conn.execute("BEGIN IMMEDIATE")
            else:
                self.conn.execute("BEGIN")
            try:
                for name in sorted(locks) if self.dialect == "postgresql" else ():
                    self.conn.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"lifecycle_es:{name}",)
                    )
                yield
                self.conn.execute("COMMIT")  # a full disk may refuse the commit itself
            except BaseException:
                self._rollback()
                raise

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A savepoint inside the current transaction: an exception in the block rolls back
        to it (the transaction goes on) and is re-raised."""
        with self._lock:
            self._savepoints += 1
            name = f"lc_sp{self._savepoints}"
            self.conn.execute(f"SAVEPOINT {name}")
            try:
                yield
            except Exception:  # not on Ctrl-C: the transaction's rollback handles that
                if self.dialect == "sqlite" and not self.conn.in_transaction:
                    raise  # SQLite ended the transaction itself (a full disk): nothing to undo
                # a connection that cannot roll back raises its own (transient) error
                with self._faults():
                    self.conn.execute(f"ROLLBACK TO SAVEPOINT {name}")
                    self.conn.execute(f"RELEASE SAVEPOINT {name}")
                raise
            finally:
                self._savepoints -= 1
            self.conn.execute(f"RELEASE SAVEPOINT {name}")

    def ensure_open(self) -> None:
        """Reopen a PostgreSQL connection that was lost (server restart, terminated
        session); a no-op on a working one and on SQLite."""
        if self.dialect == "postgresql" and (self.conn.closed or self.conn.broken):
            with suppress(Exception):
                self.conn.close()
            self._open()

    def _rollback(self) -> None:
        """Roll back; a PostgreSQL connection that cannot (broken, or interrupted
        mid-command by Ctrl-C) is closed instead, which rolls back too, and reopened."""
        if self.dialect == "sqlite" and not self.conn.in_transaction:
            return  # SQLite rolled back itself (a full disk, an I/O error): nothing to undo
        try:
            self.conn.execute("ROLLBACK")
        except Exception:
            if self.dialect != "postgresql":  # a private :memory: database cannot reopen
                raise
            self.conn.close()
            with suppress(Exception):  # the caller's error is the one to report
                self._open()

    def close(self) -> None:
        self.conn.close()

    # ------------------------------------------------------------- values

    def encode(self, typ: str, value: Any) -> Any:
        """A Python value as the dialect stores a column of portable type ``typ``."""
        return encode(self.dialect, typ, value)

    def encoder(self, typ: str) -> Callable[[Any], Any] | None:
        """The function :meth:`encode` applies to non-NULL values of ``typ`` (None: as is)."""
        return encoder(self.dialect, typ)

    def decode(self, typ: str, value: Any) -> Any:
        """A stored column value back as Python (datetime, date, bool, dict...)."""
        return decode(self.dialect, typ, value)

    def insert_rows(self, physical: str, columns: Sequence[str],
                    rows: Sequence[Sequence[Any]]) -> None:
        """Insert new rows (encoded values): PostgreSQL ``COPY``, SQLite ``executemany``."""
        with self._lock:
            if self.dialect == "sqlite":
                ph = ", ".join("?" * len(columns))
                self.conn.executemany(
                    f"INSERT INTO {physical} ({', '.join(columns)}) VALUES ({ph})", rows
                )
                return
            with self.conn.cursor() as cur, cur.copy(
                f"COPY {physical} ({', '.join(columns)}) FROM STDIN"
            ) as copy:
                for row in rows:
                    copy.write_row(row)

    def upsert_rows(self, physical: str, columns: Sequence[str], key: Sequence[str],
                    rows: Sequence[Sequence[Any]]) -> None:
        """Insert or replace rows (encoded values) by primary key.

        SQLite and small PostgreSQL batches: ``executemany`` of ``INSERT ... ON CONFLICT``.
        Large PostgreSQL batches: ``COPY`` into a temporary table and one ``INSERT ... SELECT
        ... ON CONFLICT`` (several times faster than a row-by-row upsert).
        """
        cols = ", ".join(columns)
        updates = ", ".join(f"{c}=excluded.{c}" for c in columns if c not in key)
        conflict = (f"ON CONFLICT ({', '.join(key)}) "
                    + (f"DO UPDATE SET {updates}" if updates else "DO NOTHING"))
        if self.dialect == "sqlite" or len(rows) < _STAGED_UPSERT_MIN:
            ph = ", ".join("?" * len(columns))
            self.executemany(f"INSERT INTO {physical} ({cols}) VALUES ({ph}) {conflict}", rows)
            return
        staging = f"_staged_{physical}"
        with self._lock:
            self.conn.execute(f"CREATE TEMP TABLE {staging} (LIKE {physical})")
            self.insert_rows(staging, columns, rows)
            self.conn.execute(
                f"INSERT INTO {physical} ({cols}) SELECT {cols} FROM {staging} {conflict}"
            )
            self.conn.execute(f"DROP TABLE {staging}")

    def select_in(self, physical: str, columns: Sequence[str], column: str,
                  values: Sequence[Any]) -> list[tuple[Any, ...]]:
        """Rows whose ``column`` is one of ``values`` (one query per chunk of values)."""
        out: list[tuple[Any, ...]] = []
        head = f"SELECT {', '.join(columns)} FROM {physical} WHERE {column}"
        for i in range(0, len(values), _IN_CHUNK):
            chunk = list(values[i:i + _IN_CHUNK])
            if self.dialect == "postgresql":
                out += self.fetchall(f"{head} = ANY(?)", (chunk,))
            else:
                out += self.fetchall(f"{head} IN ({', '.join('?' * len(chunk))})", chunk)
        return out

    # ---------------------------------------------------------------- DDL

    def table_exists(self, name: str) -> bool:
        if self.dialect == "sqlite":
            sql = "SELECT 1 FROM sqlite_master WHERE type='table' AND name=?"
            return self.fetchone(sql, (name,)) is not None
        sql = "SELECT 1 FROM information_schema.tables WHERE table_schema=? AND table_name=?"
        return self.fetchone(sql, (self.schema, name)) is not None

    def create_table(self, table: Table, physical: str, build: str,
                     indexes: bool = True, key: bool = True) -> None:
        """Create ``physical`` with ``table``'s columns, its primary key and its indexes
        (without ``key``: no primary key, see :meth:`create_key`)."""
        col_index = 0 if self.dialect == "sqlite" else 1
        cols = ", ".join(f"{c} {COLUMN_TYPES[t][col_index]}" for c, t in table.columns.items())
        pk = f", PRIMARY KEY ({', '.join(table.key)})" if key else ""
        self.execute(f"CREATE TABLE {physical} ({cols}{pk})")
        if indexes:
            self.create_indexes(table, physical, build)

    def create_key(self, table: Table, physical: str, build: str) -> None:
        """Give a table created without its primary key (a rebuild's shadow, loaded in
        any key order) that key, built in one sort: on PostgreSQL the primary key itself,
        on SQLite a unique index (what SQLite builds for a PRIMARY KEY of such columns).
        A no-op when the table has it."""
        cols = ", ".join(table.key)
        if self.dialect == "sqlite":
            self.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS pk_{table.name}_{build} "
                         f"ON {physical} ({cols})")
            return
        has = self.fetchone("SELECT 1 FROM pg_constraint WHERE contype='p' AND conrelid = "
                            "to_regclass(?)", (f'"{self.schema}"."{physical}"',))
        if has is None:
            self.execute(f"ALTER TABLE {physical} ADD CONSTRAINT pk_{table.name}_{build} "
                         f"PRIMARY KEY ({cols})")

    def create_indexes(self, table: Table, physical: str, build: str) -> None:
        """Create the secondary indexes of ``table`` on ``physical`` (names carry the build)."""
        for n, idx in enumerate(table.indexes):
            self.execute(
                f"CREATE INDEX IF NOT EXISTS ix_{table.name}_{n}_{build} "
                f"ON {physical} ({', '.join(idx)})"
            )

    def analyze(self, physical: str) -> None:
        """Give the planner statistics of a table just filled (PostgreSQL's ``ANALYZE``;
        a no-op on SQLite, whose planner does without)."""
        if self.dialect == "postgresql":
            self.execute(f"ANALYZE {physical}")

    def drop_table(self, physical: str) -> None:
        self.execute(f"DROP TABLE IF EXISTS {physical}")

    def rename_table(self, old: str, new: str) -> None:
        self.execute(f"ALTER TABLE {old} RENAME TO {new}")

    def count(self, physical: str) -> int:
        row = self.fetchone(f"SELECT COUNT(*) FROM {physical}")
        return int(row[0]) if row else 0
