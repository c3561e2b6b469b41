"""Batched row writes for projection handlers.

Handlers read and write rows through :class:`Rows`; changes stay in memory until the batch is
flushed with one ``executemany`` per table and statement shape, in the transaction that also
records the projection's position. Rows read or written stay cached across batches (up to a
bound), and while a table is known to be fully cached (a rebuild into an empty shadow table)
a cache miss means "no such row" without asking the database.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

from lifecycle_es.projection.base import Table
from lifecycle_es.projection.db import ReadStore

_MISSING: dict[str, Any] = {}
_CACHE_LIMIT = 50_000  # rows kept per table between batches (the oldest half is evicted)


class Rows:
    """The rows of one read-model table, as a handler sees them."""

    def __init__(self, store: ReadStore, table: Table, physical: str, complete: bool) -> None:
        self.store, self.table, self.physical = store, table, physical
        self.complete = complete  # True: every row of the table is in the cache
        self.cache: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.dirty: set[tuple[Any, ...]] = set()
        cols = list(table.columns)
        ph = ", ".join([store.param] * len(cols))
        updates = ", ".join(f"{c}=excluded.{c}" for c in cols if c not in table.key)
        conflict = f"DO UPDATE SET {updates}" if updates else "DO NOTHING"
        self._upsert = (
            f"INSERT INTO {physical} ({', '.join(cols)}) VALUES ({ph}) "
            f"ON CONFLICT ({', '.join(table.key)}) {conflict}"
        )
        where = " AND ".join(f"{k}={store.param}" for k in table.key)
        self._delete = f"DELETE FROM {physical} WHERE {where}"
        self._select = f"SELECT {', '.join(cols)} FROM {physical} WHERE {where}"
        self._types = [table.columns[c] for c in cols]
        self._cols = cols
        self._encoders = [store.encoder(t) for t in self._types]
        # While complete: keys of the rows already written to the table, so new rows are
        # plain inserts (COPY on PostgreSQL) instead of upserts.
        self.in_db: set[tuple[Any, ...]] = set()
        # Cached keys by partition value, so a void's delete_partition does not scan the
        # whole cache (only when the partition column is part of the key).
        part = table.partition
        self._part_pos = table.key.index(part) if part in table.key else None
        self._by_part: dict[Any, set[tuple[Any, ...]]] = {}

    def _remember(self, key: tuple[Any, ...]) -> None:
        if self._part_pos is not None:
            self._by_part.setdefault(key[self._part_pos], set()).add(key)

    def get(self, *key: Any) -> dict[str, Any] | None:
        """The row with this primary key, or None. Modify it only through put/update."""
        row = self.cache.get(key)
        if row is None:
            if self.complete:
                return None
            row = self._load(key)
            self.cache[key] = row
            self._remember(key)
        return None if row is _MISSING else row

    def put(self, row: dict[str, Any]) -> None:
        """Insert or replace a whole row (every column must be present)."""
        key = tuple(row[k] for k in self.table.key)
        self.cache[key] = row
        self._remember(key)
        self.dirty.add(key)

    def update(self, *key: Any, **changes: Any) -> dict[str, Any] | None:
        """Change some columns of an existing row; returns it, or None if there is none."""
        row = self.get(*key)
        if row is None:
            return None
        row = {**row, **changes}
        self.cache[key] = row
        self.dirty.add(key)
        return row

    def delete(self, *key: Any) -> None:
        self.cache[key] = _MISSING
        self.dirty.add(key)

    def delete_partition(self, value: Any) -> None:
        """Delete every row whose partition column equals ``value`` (used on voids)."""
        part = self.table.partition
        assert part is not None
        cached = (self._by_part.pop(value, set()) if self._part_pos is not None
                  else list(self.cache))
        for key in cached:
            row = self.cache.get(key)
            if row is not None and row is not _MISSING and row.get(part) == value:
                self.delete(*key)
        if self.complete:
            return
        keys = ", ".join(self.table.key)
        sql = f"SELECT {keys} FROM {self.physical} WHERE {part}=?"
        types = [self.table.columns[k] for k in self.table.key]
        for raw in self.store.fetchall(sql, (value,)):
            key = tuple(self.store.decode(t, v) for t, v in zip(types, raw, strict=True))
            if key not in self.cache or self.cache[key] is not _MISSING:
                self.delete(*key)

    def where(self, **equal: Any) -> Iterator[dict[str, Any]]:
        """Rows matching column equalities (flushes nothing; sees this batch's changes)."""
        seen = set()
        for key, row in self.cache.items():
            seen.add(key)
            if row is not _MISSING and all(row.get(c) == v for c, v in equal.items()):
                yield row
        if self.complete:
            return
        cond = " AND ".join(f"{c}=?" for c in equal) or "1=1"
        sql = f"SELECT {', '.join(self._cols)} FROM {self.physical} WHERE {cond}"
        for raw in self.store.fetchall(sql, tuple(self._enc(c, v) for c, v in equal.items())):
            row = self._decode(raw)
            key = tuple(row[k] for k in self.table.key)
            if key not in seen:
                self.cache[key] = row
                self._remember(key)
                yield row

    # ------------------------------------------------------------ internals

    def _enc(self, col: str, value: Any) -> Any:
        return self.store.encode(self.table.columns[col], value)

    def _decode(self, raw: tuple[Any, ...]) -> dict[str, Any]:
        dec = self.store.decode
        return {c: dec(t, v) for c, t, v in zip(self._cols, self._types, raw, strict=True)}

    def _load(self, key: tuple[Any, ...]) -> dict[str, Any]:
        params = tuple(self._enc(k, v) for k, v in zip(self.table.key, key, strict=True))
        raw = self.store.fetchone(self._select, params)
        return _MISSING if raw is None else self._decode(raw)

    def flush(self) -> int:
        """Write the batch's changes (inside the caller's transaction); returns rows touched."""
        if not self.dirty:
            return 0
        complete, in_db = self.complete, self.in_db
        cols, encoders = self._cols, self._encoders
        upserts, inserts, deletes = [], [], []
        for key in self.dirty:
            row = self.cache[key]
            if row is _MISSING:
                if not complete or key in in_db:
                    deletes.append(tuple(self._enc(k, v) for k, v in zip(self.table.key, key,
                                                                          strict=True)))
                    in_db.discard(key)
                continue
            values = tuple(
                v if f is None or v is None else f(v)
                for f, v in zip(encoders, [row[c] for c in cols], strict=True)
            )
            if complete and key not in in_db:
                inserts.append(values)
                in_db.add(key)
            else:
                upserts.append(values)
        if deletes:
            self.store.executemany(self.store.q(self._delete), deletes)
        if inserts:
            self.store.insert_rows(self.physical, cols, inserts)
        if upserts:
            self.store.executemany(self._upsert, upserts)
        touched = len(self.dirty)
        self.dirty.clear()
        if len(self.cache) > _CACHE_LIMIT:
            self._evict()
        return touched

    def _evict(self) -> None:
        """Drop the oldest half of the cache (rows are all flushed); misses now ask the DB."""
        for key in list(itertools.islice(self.cache, len(self.cache) - _CACHE_LIMIT // 2)):
            del self.cache[key]
        self.complete = False
        self.in_db.clear()
        self._by_part.clear()
        for key in self.cache:
            self._remember(key)

    def discard(self) -> None:
        """Forget unflushed changes (after a rolled-back batch)."""
        self.cache.clear()
        self._by_part.clear()
        self.dirty.clear()
        self.in_db.clear()
        self.complete = False


class Tables:
    """The tables of one projection during a run: ``db["table_name"]`` gives its Rows."""

    def __init__(self, rows: dict[str, Rows]) -> None:
        self._rows = rows
        self.build: str | None = None  # build id of the physical tables the rows belong to
        self.seen: int | None = None  # position this run last wrote (None: unknown)
        #: notification id (log position) of the event being dispatched
        self.position = 0

    def __getitem__(self, name: str) -> Rows:
        return self._rows[name]

    def all(self) -> list[Rows]:
        return list(self._rows.values())

    def flush(self) -> int:
        return sum(r.flush() for r in self._rows.values())

    def discard(self) -> None:
        """Forget cached rows (they may be stale or rolled back)."""
        self.seen = None
        for r in self._rows.values():
            r.discard()
