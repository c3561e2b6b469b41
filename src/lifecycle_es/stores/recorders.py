"""Application recorders for SQLite and PostgreSQL: bulk inserts plus the hash chain.

They keep the ``eventsourcing`` tables, notification ids and guarantees (optimistic
concurrency through the primary key; on PostgreSQL the table lock that makes notification ids
commit in order, and the NOTIFY that wakes subscribers) and change two things:

- inserts are bulk: ``executemany`` on SQLite (the library inserts row by row), ``COPY`` on
  PostgreSQL (the library sends a composite array the driver must escape);
- the same transaction appends every event to the hash chain (``stores/chain.py``) and
  stores the data keys made or erased for its events (``stores/keys.py``).

Both also offer :meth:`bulk`: one transaction for many batches of rows (a whole import), with
the chain heads stored once at the end, and the record of the import (``imports`` table,
``stores/imports.py``) when it came from a file. A single ``insert_events`` is a bulk write of
one batch.

Every method that touches the store raises store faults as
:class:`~lifecycle_es.stores.faults.StoreFault` (a ``StoreError``), within the store URL's
``timeout`` (``stores/faults.py``). ``memory://`` uses :class:`MemoryRecorder`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar
from uuid import UUID

import psycopg
from eventsourcing.persistence import IntegrityError, Notification, StoredEvent
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore
from psycopg.rows import dict_row
from psycopg.sql import SQL, Identifier

from lifecycle_es.errors import StoreError
from lifecycle_es.stores.chain import (
    DIGESTS_TABLE,
    HEADS_TABLE,
    LOG_SCOPE,
    SET,
    SETTINGS_HISTORY_TABLE,
    SETTINGS_TABLE,
    Chain,
    Row,
    Run,
    SettingsLog,
    canonical_id,
)
from lifecycle_es.stores.faults import guarded, raised_as_faults, unwrapped
from lifecycle_es.stores.imports import ANSWERS_TABLE, IMPORTS_TABLE, ImportRecord
from lifecycle_es.stores.key_table import MASTER_TABLE, KeyTable, create_statements
from lifecycle_es.stores.keys import KEYS_TABLE, KeyChange, Keyring, KeyWrites
from lifecycle_es.stores.url import StoreURL

_SQLITE_VARS = 900  # stay under SQLite's bound-parameter limit in IN (...) lists
#: SQLite page cache (KiB) of a bulk write's connection while it writes
BULK_CACHE_KIB = 128 * 1024
_SQLITE_SETTINGS = {"settings": SETTINGS_TABLE, "history": SETTINGS_HISTORY_TABLE,
                    "heads": HEADS_TABLE}

#: writes one batch of rows inside a bulk transaction; returns their notification ids
WriteRows = Callable[[Sequence[Row]], list[int]]
T = TypeVar("T")


class Bulk:
    """The open transaction of a recorder's ``bulk()``: call it with a batch of rows to write
    them (returns their notification ids); :meth:`record_import` stores the record of the
    import it commits, in the same transaction."""

    def __init__(self, write: WriteRows, record: Callable[[ImportRecord], None]) -> None:
        self._write, self._record = write, record

    def __call__(self, rows: Sequence[Row]) -> list[int]:
        return self._write(rows)

    def record_import(self, record: ImportRecord) -> None:
        """Store ``record``; a digest recorded before raises ``IntegrityError`` (a conflict)."""
        self._record(record)


class Guarded:
    """The store calls of the library's recorders, with store faults raised as
    ``StoreFault`` within :attr:`store`'s timeout (``stores/faults.py``). Reads on
    PostgreSQL are tried again on a new connection when theirs broke (``retry_lost``)."""

    store: StoreURL
    retry_lost = False
    #: the store's data keys (set by the engine); their changes are written with the events
    keyring: Keyring | None = None

    def _key_writes(self) -> KeyWrites | None:
        return None if self.keyring is None else self.keyring.writes()

    def _keys_of(self, table: KeyTable, keys: KeyWrites | None, rows: Sequence[Row]) -> None:
        """Write the key changes of the aggregates of ``rows`` (in their transaction)."""
        if keys is not None:
            changes = keys.take(r[0] for r in rows)
            if changes:
                assert self.keyring is not None
                table.write(changes, self.keyring.master.fingerprint)

    def _call(self, method: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        run: Callable[..., T] = unwrapped(method)
        return guarded(self.store, lambda: run(*args, **kwargs), retry_lost=self.retry_lost)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with raised_as_faults(self.store):  # a write is not tried again
            return super().insert_events(stored_events, **kwargs)  # type: ignore[misc, no-any-return]

    def select_events(self, originator_id: UUID | str, **kwargs: Any) -> Sequence[StoredEvent]:
        return self._call(super().select_events, originator_id, **kwargs)  # type: ignore[misc]

    def select_notifications(self, start: int | None, limit: int, stop: int | None = None,
                             topics: Sequence[str] = (), **kwargs: Any) -> Sequence[Notification]:
        return self._call(super().select_notifications,  # type: ignore[misc]
                          start, limit, stop, topics, **kwargs)

    def max_notification_id(self) -> Any:  # int (SQLite) or int | None (PostgreSQL)
        return self._call(super().max_notification_id)  # type: ignore[misc]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """The subclass's own store calls get the same treatment: :data:`_READS` through
        :func:`guarded`, :data:`_WRITES` and ``bulk`` (a context manager) raising faults as
        ``StoreFault`` without another try."""
        super().__init_subclass__(**kwargs)
        for name, wrap in [*((n, _guarded_read) for n in _READS),
                           *((n, _guarded_write) for n in _WRITES)]:
            if name in cls.__dict__:
                setattr(cls, name, wrap(cls.__dict__[name]))
        if "bulk" in cls.__dict__:
            setattr(cls, "bulk", _guarded_bulk(cls.__dict__["bulk"]))  # noqa: B010


#: recorder methods of the subclasses safe to run again on a new connection
_READS = ("get_setting", "find_import", "select_keys", "master_fingerprint")
#: and those that write (not run again: a lost connection may have committed)
_WRITES = ("put_setting", "claim_master_fingerprint", "rewrap_keys")


def _guarded_read(method: Callable[..., T]) -> Callable[..., T]:
    @wraps(method)
    def call(self: Guarded, *args: Any, **kwargs: Any) -> T:
        return self._call(method, self, *args, **kwargs)
    return call


def _guarded_write(method: Callable[..., T]) -> Callable[..., T]:
    @wraps(method)
    def call(self: Guarded, *args: Any, **kwargs: Any) -> T:
        with raised_as_faults(self.store):
            return method(self, *args, **kwargs)
    return call


def _guarded_bulk(
        bulk: Callable[..., AbstractContextManager[Bulk]],
) -> Callable[..., AbstractContextManager[Bulk]]:
    @contextmanager
    @wraps(bulk)
    def guarded_bulk(self: Guarded, **kwargs: Any) -> Iterator[Bulk]:
        with raised_as_faults(self.store), bulk(self, **kwargs) as write:
            yield write
    return guarded_bulk


def rows_of(stored_events: Sequence[StoredEvent]) -> list[Row]:
    """Stored events as chain rows (canonical aggregate id, version, topic, state)."""
    return [(canonical_id(e.originator_id), e.originator_version, e.topic, e.state)
            for e in stored_events]


def created_names(statements: Sequence[str]) -> frozenset[str] | None:
    """The tables and indexes ``CREATE ... IF NOT EXISTS`` statements make (None when one
    is of another shape)."""
    names = [_CREATED.match(s) for s in statements]
    return None if None in names else frozenset(m.group(1) for m in names if m)


_CREATED = re.compile(r"CREATE (?:UNIQUE )?(?:TABLE|INDEX) IF NOT EXISTS (\w+)")


class ChainedSQLiteRecorder(Guarded, SQLiteApplicationRecorder):
    """SQLite: one ``executemany`` per batch, chain rows in the same transaction."""

    #: the store's tables and indexes as :meth:`create_table` found them (None: unknown)
    tables: frozenset[str] | None = None
    _opening: tuple[dict[str, str], str | None] | None = None

    #: reads while a bulk transaction is open run in it, seeing what it wrote (the import's
    #: writer process reads back its events: writing/bulk_write.py); else on their own
    #: connection
    reads_in_bulk = False

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = "stored_events"):
        pool = datastore.pool
        self.store = StoreURL(kind="sqlite", path=pool.db_name, timeout=pool.lock_timeout or 5)
        pool.pool_timeout = float(self.store.timeout)  # threads waiting for the writer's turn
        create = pool._create_connection

        def secure_delete() -> Any:  # an erased key leaves no bytes in the file (privacy.md)
            conn = create()
            conn._sqlite_conn.execute("PRAGMA secure_delete = ON")
            return conn

        pool._create_connection = secure_delete  # type: ignore[method-assign]
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
            *SettingsLog(_no_run, _SQLITE_SETTINGS).create_statements("BLOB", "INTEGER"),
            f"CREATE TABLE IF NOT EXISTS {IMPORTS_TABLE} (digest TEXT PRIMARY KEY, "
            "lines INTEGER NOT NULL, events INTEGER NOT NULL, imported_at TEXT NOT NULL)",
            f"CREATE TABLE IF NOT EXISTS {ANSWERS_TABLE} (digest TEXT PRIMARY KEY, "
            "answer TEXT NOT NULL)",
            *create_statements("TEXT", "BLOB"),
        ]

    def _create_table(self, c: SQLiteCursor) -> None:
        super()._create_table(c)
        _sqlite_settings(c).adopt()  # a store made before the settings were chained

    def create_table(self) -> None:
        """Create what is missing, then adopt unchained settings. A store whose tables all
        exist is opened by one read (no DDL, no write lock): its schema (:attr:`tables`),
        settings and master key's fingerprint, which serve the engine's opening until
        :meth:`opened`."""
        needed = created_names(self.create_table_statements)
        # autocommit reads: no write lock, and no transaction to begin and end
        with self.datastore.get_connection(commit=False) as conn:
            c = conn.cursor()
            c.execute("SELECT name FROM sqlite_master")
            self.tables = frozenset(str(row[0]) for row in c.fetchall())
            if needed is not None and self.tables.issuperset(needed):
                c.execute(f"SELECT 1, key, value FROM {SETTINGS_TABLE} UNION ALL "
                          f"SELECT 0, NULL, fingerprint FROM {MASTER_TABLE} WHERE id = 1")
                rows = c.fetchall()
                settings = {str(k): str(v) for setting, k, v in rows if setting}
                fingerprint = next((str(v) for setting, _, v in rows if not setting), None)
                if not (settings and _sqlite_settings(c).needs_adopting(has_settings=True)):
                    self._opening = (settings, fingerprint)
                    return
        self.tables = None  # made or adopted now: asked again when needed
        super().create_table()

    def opened(self) -> None:
        """The engine is open: settings and fingerprint are read from the store again."""
        self._opening = None

    def max_notification_id(self) -> Any:
        """The head of the log: one statement in autocommit (no transaction to begin and
        end), tried again as the library's reads are."""
        return self._call(self._head)

    def _head(self) -> Any:
        with self.datastore.get_connection(commit=False) as conn:
            c = conn.cursor()
            c.execute(self.select_max_notification_id_statement)
            return c.fetchone()[0]

    def get_setting(self, key: str) -> str | None:
        """A store-wide setting (e.g. the stage model), or None."""
        if self._opening is not None:
            return self._opening[0].get(key)
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT value FROM {SETTINGS_TABLE} WHERE key=?", (key,))
            row = c.fetchone()
        return None if row is None else str(row[0])

    def put_setting(self, key: str, value: str, origin: str = SET) -> None:
        """Store a setting and record the change in the settings chain (one transaction)."""
        self.opened()
        with self.datastore.transaction(commit=True) as c:
            # the upsert comes first: it takes the write lock before the history is read
            _sqlite_settings(c).put(
                key, value, f"INSERT OR REPLACE INTO {SETTINGS_TABLE} VALUES (?, ?)", origin)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.bulk(big=False) as write:
            return write(rows_of(stored_events))

    @contextmanager
    def bulk(self, *, big: bool = True) -> Iterator[Bulk]:
        """One transaction for many batches: commits when the block ends, else rolls back.

        For a ``big`` one the connection's page cache is raised to :data:`BULK_CACHE_KIB`
        meanwhile: with SQLite's default (2 MB) a large transaction keeps evicting the
        primary-key index pages it is about to need (1.25M events: 29 µs per event
        written, 20 with 128 MB).
        """
        keys = self._key_writes()
        committed = False
        try:
            with self.datastore.transaction(commit=True) as c, self._reads_on(c):
                cache_size = None
                if big:
                    c.execute("PRAGMA cache_size")
                    cache_size = int(c.fetchone()[0])
                    c.execute(f"PRAGMA cache_size = -{BULK_CACHE_KIB}")
                try:
                    chain = Chain()
                    yield Bulk(lambda rows: self._append(c, rows, chain, keys),
                               lambda record: _record_sqlite(c, record))
                    self._save_heads(c, chain)
                finally:
                    if cache_size is not None:
                        with suppress(Exception):  # best effort: never hide why it ended
                            c.execute(f"PRAGMA cache_size = {cache_size}")
            committed = True
        finally:
            if keys is not None:
                keys.close(committed)

    def select_keys(self, start: str, limit: int) -> list[KeyChange]:
        """Up to ``limit`` rows of the keys table from aggregate id ``start`` on."""
        with self.datastore.transaction(commit=False) as c:
            return _sqlite_keys(c).select(start, limit)

    @contextmanager
    def _reads_on(self, c: SQLiteCursor) -> Iterator[None]:
        """With :attr:`reads_in_bulk`, meanwhile every read transaction of the datastore
        (the library's reads, the keys') is ``c``, the bulk transaction's cursor."""
        if not self.reads_in_bulk:
            yield
            return
        datastore, opened = self.datastore, self.datastore.transaction

        @contextmanager
        def transaction(*, commit: bool) -> Iterator[SQLiteCursor]:
            if commit:  # not a read: as ever
                with opened(commit=True) as other:
                    yield other
            else:
                yield c

        datastore.transaction = transaction  # type: ignore[method-assign]
        try:
            yield
        finally:
            del datastore.transaction

    def master_fingerprint(self) -> str | None:
        """The fingerprint of the master key the store's data keys are wrapped by."""
        if self._opening is not None:
            return self._opening[1]
        with self.datastore.transaction(commit=False) as c:
            return _sqlite_keys(c).fingerprint()

    def claim_master_fingerprint(self, fingerprint: str) -> str:
        """Record the master key of a store that has none; the store's fingerprint."""
        self.opened()
        with self.datastore.transaction(commit=True) as c:
            return _sqlite_keys(c).claim(fingerprint)

    def rewrap_keys(self, rewrap: Callable[[str, bytes], bytes], old: str, new: str) -> int:
        """Re-wrap every data key under a new master key, in one transaction."""
        self.opened()
        with self.datastore.transaction(commit=True) as c:
            return _sqlite_keys(c).rewrap(rewrap, old, new)

    def checkpoint(self) -> bool:
        """Copy the write-ahead log into the database file and empty it (old page images,
        erased data among them, leave the disk); False when a reader kept it from
        finishing."""
        with self.datastore.transaction(commit=False) as c:
            c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            row = c.fetchone()
        return row is None or int(row[0]) == 0

    def _append(self, c: SQLiteCursor, rows: Sequence[Row], chain: Chain,
                keys: KeyWrites | None = None) -> list[int]:
        if not rows:
            return []
        c.executemany(self.insert_events_statement,
                      [(agg.replace("-", ""), v, t, s) for agg, v, t, s in rows])
        self._keys_of(_sqlite_keys(c), keys, rows)  # after the insert: see below
        # The write lock is ours now (taken by the insert, so reads below see the latest
        # commit): rowids were assigned consecutively after the old maximum.
        c.execute(self.select_max_notification_id_statement)
        last = int(c.fetchone()[0])
        ids = range(last - len(rows) + 1, last + 1)
        if not chain.started:
            c.execute(f"SELECT digest FROM {HEADS_TABLE} WHERE scope=?", (LOG_SCOPE,))
            row = c.fetchone()
            chain.start(None if row is None else bytes(row[0]))
        unknown = chain.unknown(rows)
        found: dict[str, bytes] = {}
        for start in range(0, len(unknown), _SQLITE_VARS):
            chunk = unknown[start : start + _SQLITE_VARS]
            c.execute(f"SELECT scope, digest FROM {HEADS_TABLE} "
                      f"WHERE scope IN ({', '.join('?' * len(chunk))})", chunk)
            found.update((scope, bytes(d)) for scope, d in c.fetchall())
        chain.learn(unknown, found)
        digests = chain.link(ids, rows)
        c.executemany(f"INSERT INTO {DIGESTS_TABLE} VALUES (?, ?, ?, ?)",
                      [(nid, r[0], r[1], d) for nid, r, d in zip(ids, rows, digests, strict=True)])
        return list(ids)

    def _save_heads(self, c: SQLiteCursor, chain: Chain) -> None:
        c.executemany(
            f"INSERT INTO {HEADS_TABLE} VALUES (?, ?, ?, ?) ON CONFLICT (scope) DO UPDATE SET "
            "notification_id = excluded.notification_id, "
            "originator_version = excluded.originator_version, digest = excluded.digest",
            chain.heads(),
        )

    def find_import(self, digest: str) -> ImportRecord | None:
        """The record of the committed import of the bytes with this SHA-256, or None."""
        with self.datastore.transaction(commit=False) as c:
            c.execute(f"SELECT i.digest, lines, events, imported_at, answer FROM {IMPORTS_TABLE}"
                      f" i LEFT JOIN {ANSWERS_TABLE} a ON a.digest = i.digest "
                      "WHERE i.digest=?", (digest,))
            row = c.fetchone()
        return None if row is None else ImportRecord(
            str(row[0]), int(row[1]), int(row[2]), datetime.fromisoformat(row[3]), row[4])


class ChainedPostgresRecorder(Guarded, PostgresApplicationRecorder):
    """PostgreSQL: ``COPY`` under the library's table lock, chain rows in the same transaction.

    Its connections wait at most the store's timeout for any lock (``lock_timeout``); reads
    and the start of a write get a new connection when theirs broke.
    """

    retry_lost = True
    #: reads while a bulk transaction is open run on its connection (the import's writer
    #: process: a pool of one, docs/operations.md); else each read takes a pooled one
    reads_in_bulk = False

    def __init__(self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"):
        pool = datastore.pool
        kw: dict[str, Any] = pool.kwargs  # type: ignore[assignment]
        # POSTGRES_DBNAME holds the store URL (StoreURL.eventsourcing_env): the pool connects
        # with all its libpq settings, and with PG* variables for what it leaves out.
        self.store = StoreURL.parse(str(kw["dbname"]))
        pool.conninfo = self.store.psycopg_conninfo()
        kw.clear()
        kw["row_factory"] = dict_row
        # Before the pool's first connection: every session waits at most that for a lock
        # (reads too, e.g. behind an ACCESS EXCLUSIVE lock); the library's SET LOCAL before
        # its table lock uses the same value (POSTGRES_LOCK_TIMEOUT).
        kw["options"] = self.store.session_options()
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.table = SQL("{}.{}").format(schema, Identifier(self.events_table_name))
        self.digests = SQL("{}.{}").format(schema, Identifier(DIGESTS_TABLE))
        self.heads = SQL("{}.{}").format(schema, Identifier(HEADS_TABLE))
        self.settings = SQL("{}.{}").format(schema, Identifier(SETTINGS_TABLE))
        self.settings_history = SQL("{}.{}").format(schema, Identifier(SETTINGS_HISTORY_TABLE))
        self.imports = SQL("{}.{}").format(schema, Identifier(IMPORTS_TABLE))
        self.answers = SQL("{}.{}").format(schema, Identifier(ANSWERS_TABLE))
        self.keys = SQL("{}.{}").format(schema, Identifier(KEYS_TABLE))
        self.master = SQL("{}.{}").format(schema, Identifier(MASTER_TABLE))
        self.sql_create_statements.extend([
            SQL("CREATE TABLE IF NOT EXISTS {} (notification_id bigint PRIMARY KEY, "
                "originator_id text NOT NULL, originator_version bigint NOT NULL, "
                "digest bytea NOT NULL)").format(self.digests),
            # Heads are updated in place at every write transaction: free space on each
            # page lets PostgreSQL keep the new row versions on the same page (HOT updates).
            SQL("CREATE TABLE IF NOT EXISTS {} (scope text PRIMARY KEY, "
                "notification_id bigint NOT NULL, originator_version bigint NOT NULL, "
                "digest bytea NOT NULL) WITH (fillfactor = 50)").format(self.heads),
            SQL("CREATE TABLE IF NOT EXISTS {} (key text PRIMARY KEY, value text)").format(
                self.settings),
            *(SQL(s).format() for s in  # built from fixed, quoted names
              self._settings_log(_no_run).create_statements("bytea", "bigint")),
            SQL("CREATE TABLE IF NOT EXISTS {} (digest text PRIMARY KEY, lines bigint NOT NULL, "
                "events bigint NOT NULL, imported_at timestamptz NOT NULL)").format(self.imports),
            SQL("CREATE TABLE IF NOT EXISTS {} (digest text PRIMARY KEY, "
                "answer text NOT NULL)").format(self.answers),
            *(SQL(s).format() for s in  # built from fixed, quoted names
              create_statements("text", "bytea", *self._key_names())),
        ])

    def _settings_log(self, run: Run) -> SettingsLog:
        schema = Identifier(self.datastore.schema).as_string()
        return SettingsLog(run, {
            "settings": f"{schema}.{Identifier(SETTINGS_TABLE).as_string()}",
            "history": f"{schema}.{Identifier(SETTINGS_HISTORY_TABLE).as_string()}",
            "heads": f"{schema}.{Identifier(HEADS_TABLE).as_string()}",
        })

    def get_setting(self, key: str) -> str | None:
        """A store-wide setting (e.g. the stage model), or None."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT value FROM {} WHERE key=%s").format(self.settings), (key,))
            row = curs.fetchone()
        return None if row is None else str(_first(row))

    def put_setting(self, key: str, value: str, origin: str = SET) -> None:
        """Store a setting and record the change in the settings chain (one transaction)."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
                self.settings_history))  # one change at a time: seq and digest follow the last
            self._settings_log(_pg_run(curs)).put(
                key, value, SQL("INSERT INTO {} VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET "
                                "value = EXCLUDED.value").format(self.settings).as_string(curs),
                origin)

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events:
            return []
        with self.bulk() as write:
            return write(rows_of(stored_events))

    def _begin(self) -> tuple[ExitStack, Any]:
        """A pooled connection in a transaction holding the library's table lock, and its
        cursor; closing the stack ends the transaction (commit, or rollback on an error) and
        returns the connection. A broken connection fails here, before anything is written,
        so :func:`guarded` may try again on another."""
        pool = self.datastore.pool
        stack = ExitStack()
        conn = pool.getconn()
        stack.callback(pool.putconn, conn)  # a broken one is dropped (the pool replaces it)
        try:
            stack.enter_context(conn.transaction())
            curs = stack.enter_context(conn.cursor())
            for statement in self.lock_table_statements:
                curs.execute(statement)
        except BaseException as exc:
            stack.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return stack, curs

    @contextmanager
    def bulk(self) -> Iterator[Bulk]:
        """One transaction for many batches: commits when the block ends, else rolls back.

        The library's table lock is held throughout (notification ids commit in order).
        """
        stack, curs = self._call(self._begin)
        if self.reads_in_bulk:
            self._read_on(curs.connection, stack)
        keys = self._key_writes()
        committed = False
        try:
            with stack:
                curs.execute(SQL("NOTIFY {}").format(Identifier(self.channel_name)))
                curs.execute(SQL("SELECT digest FROM {} WHERE scope = %s").format(self.heads),
                             (LOG_SCOPE,))
                row = curs.fetchone()
                chain = Chain()
                chain.start(None if row is None else bytes(row["digest"]))
                yield Bulk(lambda rows: self._append(curs, rows, chain, keys),
                           lambda record: self._record_import(curs, record))
                self._save_heads(curs, chain)
            committed = True
        except psycopg.errors.UniqueViolation as exc:
            raise IntegrityError(str(exc)) from exc
        finally:
            if keys is not None:
                keys.close(committed)

    def _read_on(self, conn: Any, stack: ExitStack) -> None:
        """Until ``stack`` closes, every use of the datastore's connections (the library's
        reads, the keys') gets ``conn``, the bulk transaction's."""
        @contextmanager
        def the_bulk_connection() -> Iterator[Any]:
            yield conn

        self.datastore.get_connection = the_bulk_connection  # type: ignore[method-assign]
        stack.callback(self.datastore.__dict__.pop, "get_connection", None)

    def _key_names(self) -> tuple[str, str]:
        schema = Identifier(self.datastore.schema).as_string()
        return (f"{schema}.{Identifier(KEYS_TABLE).as_string()}",
                f"{schema}.{Identifier(MASTER_TABLE).as_string()}")

    def _key_table(self, curs: Any) -> KeyTable:
        def runmany(sql: str, params: list[tuple[Any, ...]]) -> None:
            curs.executemany(sql.replace("?", "%s"), params)

        def insert_new(new: list[tuple[str, bytes]]) -> list[tuple[Any, ...]]:
            ids, wrapped = [a for a, _ in new], [w for _, w in new]
            curs.execute(SQL("INSERT INTO {} SELECT a, w, NULL FROM unnest(%s::text[], "
                             "%s::bytea[]) AS t(a, w) ON CONFLICT (aggregate_id) DO NOTHING"
                             ).format(self.keys), (ids, wrapped))
            curs.execute(SQL("SELECT aggregate_id, wrapped FROM {} WHERE aggregate_id = "
                             "ANY(%s)").format(self.keys), (ids,))
            return [(r["aggregate_id"], r["wrapped"]) for r in curs.fetchall()]

        return KeyTable(_pg_run(curs), runmany, *self._key_names(), insert_new=insert_new)

    def select_keys(self, start: str, limit: int) -> list[KeyChange]:
        """Up to ``limit`` rows of the keys table from aggregate id ``start`` on."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self._key_table(curs).select(start, limit)

    def master_fingerprint(self) -> str | None:
        """The fingerprint of the master key the store's data keys are wrapped by."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            return self._key_table(curs).fingerprint()

    def claim_master_fingerprint(self, fingerprint: str) -> str:
        """Record the master key of a store that has none; the store's fingerprint."""
        with self.datastore.transaction(commit=True) as curs:
            return self._key_table(curs).claim(fingerprint)

    def rewrap_keys(self, rewrap: Callable[[str, bytes], bytes], old: str, new: str) -> int:
        """Re-wrap every data key under a new master key, in one transaction, with the
        events table locked (no writer adds a key wrapped by the old one meanwhile)."""
        stack, curs = self._call(self._begin)
        with stack:
            return self._key_table(curs).rewrap(rewrap, old, new)

    def _append(self, curs: Any, rows: Sequence[Row], chain: Chain,
                keys: KeyWrites | None = None) -> list[int]:
        if not rows:
            return []
        self._keys_of(self._key_table(curs), keys, rows)
        if chain.log_last[0]:
            before = chain.log_last[0]  # the lock is ours: nobody else added rows since
        else:
            curs.execute(SQL("SELECT COALESCE(MAX(notification_id), 0) AS m FROM {}").format(
                self.table))
            before = int(_first(curs.fetchone()))
        uuids = _uuids(rows)
        with curs.copy(SQL("COPY {} (originator_id, originator_version, topic, state) "
                           "FROM STDIN (FORMAT BINARY)").format(self.table)) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea"])
            write_row = copy.write_row
            for agg, version, topic, state in rows:
                write_row((uuids[agg], version, topic, state))
        ids = self._new_ids(curs, before, len(rows))
        unknown = chain.unknown(rows)
        found: dict[str, bytes] = {}
        if unknown:
            curs.execute(SQL("SELECT scope, digest FROM {} WHERE scope = ANY(%s)").format(
                self.heads), (unknown,))
            found = {r["scope"]: bytes(r["digest"]) for r in curs.fetchall()}
        chain.learn(unknown, found)
        digests = chain.link(ids, rows)
        with curs.copy(SQL("COPY {} FROM STDIN (FORMAT BINARY)").format(self.digests)) as copy:
            copy.set_types(["int8", "text", "int8", "bytea"])
            write_row = copy.write_row
            for nid, r, d in zip(ids, rows, digests, strict=True):
                write_row((nid, r[0], r[1], d))
        return ids

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

    def _save_heads(self, curs: Any, chain: Chain) -> None:
        heads = chain.heads()
        if not heads:
            return
        # One statement for all heads (row-by-row upserts were a quarter of the insert time).
        curs.execute(
            SQL("INSERT INTO {} SELECT * FROM unnest(%s::text[], %s::int8[], %s::int8[], "
                "%s::bytea[]) ON CONFLICT (scope) DO UPDATE SET "
                "notification_id = EXCLUDED.notification_id, "
                "originator_version = EXCLUDED.originator_version, "
                "digest = EXCLUDED.digest").format(self.heads),
            [list(column) for column in zip(*heads, strict=True)],
        )

    def find_import(self, digest: str) -> ImportRecord | None:
        """The record of the committed import of the bytes with this SHA-256, or None."""
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(SQL("SELECT i.digest, lines, events, imported_at, answer FROM {} i "
                             "LEFT JOIN {} a ON a.digest = i.digest "
                             "WHERE i.digest = %s").format(self.imports, self.answers),
                         (digest,))
            row = curs.fetchone()
        return None if row is None else ImportRecord(
            row["digest"], row["lines"], row["events"], row["imported_at"], row["answer"])

    def _record_import(self, curs: Any, record: ImportRecord) -> None:
        curs.execute(SQL("INSERT INTO {} VALUES (%s, %s, %s, %s)").format(self.imports),
                     (record.digest, record.lines, record.events, record.imported_at))
        if record.answer is not None:
            curs.execute(SQL("INSERT INTO {} VALUES (%s, %s)").format(self.answers),
                         (record.digest, record.answer))

    def analyze(self, *others: str) -> None:
        """``ANALYZE`` the events, their digests and the tables named ``others`` (of this
        schema): after a bulk write, until autovacuum gets to them (if it runs at all), the
        planner has no statistics and plans a customer's load as a parallel scan of the
        whole table (10M events: 60 to 100 ms a load instead of about 1 ms)."""
        schema = Identifier(self.datastore.schema)
        tables = [self.table, self.digests,
                  *(SQL("{}.{}").format(schema, Identifier(n)) for n in others)]
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("ANALYZE {}").format(SQL(", ").join(tables)))

    def create_table(self) -> None:
        """Create what is missing, then adopt unchained settings (one path for new and old
        stores). When every table exists no DDL is run: ``CREATE INDEX IF NOT EXISTS`` would
        wait for the lock an import holds (an engine opened meanwhile would wait for the
        import's end)."""
        names = [self.events_table_name, self.notification_id_index_name, DIGESTS_TABLE,
                 HEADS_TABLE, SETTINGS_TABLE, SETTINGS_HISTORY_TABLE, IMPORTS_TABLE, KEYS_TABLE,
                 MASTER_TABLE]
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute("SELECT bool_and(to_regclass(format('%%I.%%I', %s::text, n)) "
                         "IS NOT NULL) AS ok FROM unnest(%s::text[]) AS n",
                         (self.datastore.schema, names))
            row = curs.fetchone()
        if row is not None and _first(row):
            self.datastore.register_type_adapters()
        elif self.store.read_only:  # a replica or a read-only role: nothing is created
            raise StoreError(f"read store {self.store.redacted()!r}: tables of the event "
                             "store are missing (it was never created, or not replicated)")
        else:
            super().create_table()
        if self.store.read_only:  # the adoption below takes a write lock
            return
        with self.datastore.transaction(commit=False) as curs:  # a role that only reads or
            if not self._settings_log(_pg_run(curs)).needs_adopting():  # writes events
                return  # needs no lock (nor the privilege to take it) to open the store
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE").format(
                self.settings_history))  # two openers of an older store: one adopts
            # a store made before the settings were chained; cheap reads unless it adopts
            self._settings_log(_pg_run(curs)).adopt()


def _no_run(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    raise AssertionError("only the create statements are asked for")  # pragma: no cover


def _sqlite_run(c: SQLiteCursor) -> Run:
    def run(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        c.execute(sql, params)
        return [tuple(r) for r in c.fetchall()]

    return run


def _sqlite_settings(c: SQLiteCursor) -> SettingsLog:
    return SettingsLog(_sqlite_run(c), _SQLITE_SETTINGS)


def _sqlite_keys(c: SQLiteCursor) -> KeyTable:
    return KeyTable(_sqlite_run(c), lambda sql, params: c.executemany(sql, params))


def _pg_run(curs: Any) -> Run:
    def run(sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        curs.execute(sql.replace("?", "%s"), params, prepare=False)
        if curs.description is None:
            return []
        return [tuple(r.values()) if isinstance(r, dict) else tuple(r)
                for r in curs.fetchall()]

    return run


def _uuids(rows: Sequence[Row]) -> dict[str, UUID]:
    """The UUID of every aggregate of ``rows`` (made once per aggregate, not per row)."""
    return {agg: UUID(agg) for agg in dict.fromkeys(r[0] for r in rows)}


def _record_sqlite(c: Any, record: ImportRecord) -> None:
    """Insert the record of an import (and its answer, if any) on SQLite."""
    c.execute(f"INSERT INTO {IMPORTS_TABLE} VALUES (?, ?, ?, ?)",
              (record.digest, record.lines, record.events, record.imported_at.isoformat()))
    if record.answer is not None:
        c.execute(f"INSERT INTO {ANSWERS_TABLE} VALUES (?, ?)", (record.digest, record.answer))


def _first(row: Any) -> Any:
    """The first column of a row (the library's connections return dict rows)."""
    return next(iter(row.values())) if isinstance(row, dict) else row[0]


class MemoryRecorder(POPOApplicationRecorder):
    """``memory://``: the library's recorder, plus the records of imports (in memory too)."""

    keyring: Keyring | None = None

    def __init__(self) -> None:
        super().__init__()
        self._imports: dict[str, ImportRecord] = {}
        self._keys: dict[str, bytes | None] = {}
        self._fingerprint: str | None = None

    def select_keys(self, start: str, limit: int) -> list[KeyChange]:
        """The key of aggregate ``start`` (no read-ahead in memory)."""
        return [(start, self._keys[start])] if start in self._keys else []

    def master_fingerprint(self) -> str | None:
        return self._fingerprint

    def claim_master_fingerprint(self, fingerprint: str) -> str:
        self._fingerprint = self._fingerprint or fingerprint
        return self._fingerprint

    def rewrap_keys(self, rewrap: Callable[[str, bytes], bytes], old: str, new: str) -> int:
        with self._database_lock:
            live = {a: rewrap(a, w) for a, w in self._keys.items() if w is not None}
            self._keys.update(live)
            self._fingerprint = new
            return len(live)

    def find_import(self, digest: str) -> ImportRecord | None:
        """The record of the import of a file with this SHA-256 digest, or None."""
        return self._imports.get(digest)

    def insert_events(self, stored_events: Sequence[StoredEvent], *,
                      imported: ImportRecord | None = None,
                      **kwargs: Any) -> Sequence[int] | None:
        """Insert the events and, atomically with them, the record ``imported`` and the
        data keys made or erased for them."""
        writes = None if self.keyring is None else self.keyring.writes()
        committed = False
        try:
            with self._database_lock:
                if imported is not None and imported.digest in self._imports:
                    raise IntegrityError(
                        f"{IMPORTS_TABLE}: {imported.digest} is recorded already")
                changes = [] if writes is None else writes.take(
                    canonical_id(e.originator_id) for e in stored_events)
                if any(w is not None and self._keys.get(a, w) != w for a, w in changes):
                    raise IntegrityError(f"{KEYS_TABLE}: another data key is recorded")
                ids = super().insert_events(stored_events, **kwargs)
                self._keys.update(changes)
                if imported is not None:
                    self._imports[imported.digest] = imported
                committed = True
                return ids
        finally:
            if writes is not None:
                writes.close(committed)
