"""Batched row writes for projection handlers.

Handlers read and write rows through :class:`Rows`; changes stay in memory until the batch is
flushed with one bulk statement per table and statement shape, in the transaction that also
records the projection's position.

Memory stays bounded whatever the log's size: rows stay cached across batches up to
``_CACHE_LIMIT`` per table, tables handlers never read are not kept at all, and once a table
no longer fits, the runner prefetches the rows of each batch's customers in one query per
table (:meth:`Rows.prefetch`) instead of one query per miss. While a table is known to be
fully cached (a rebuild into an empty shadow table), or a customer's rows were prefetched, a
cache miss means "no such row" without asking the database.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from lifecycle_es.reading.projection.db import ReadStore
from lifecycle_es.reading.projection.table import Table

_MISSING: dict[str, Any] = {}
_CACHE_LIMIT = 20_000  # rows kept per table between batches (then the cache is dropped)


class Rows:
    """The rows of one read-model table, as a handler sees them."""

    def __init__(self, store: ReadStore, table: Table, physical: str, complete: bool) -> None:
        self.store, self.table, self.physical = store, table, physical
        self.complete = complete  # True: every row of the table is in the cache
        self.cache: dict[tuple[Any, ...], dict[str, Any]] = {}
        self.dirty: set[tuple[Any, ...]] = set()
        cols = list(table.columns)
        where = " AND ".join(f"{k}=?" for k in table.key)
        self._delete = f"DELETE FROM {physical} WHERE {where}"
        self._select = f"SELECT {', '.join(cols)} FROM {physical} WHERE {where}"
        self._types = [table.columns[c] for c in cols]
        self._cols = cols
        encoders = [store.encoder(t) for t in self._types]
        #: (column index, encoder) of the columns whose values need encoding
        self._encode_at = [(i, f) for i, f in enumerate(encoders) if f is not None]
        # While exact_keys: the keys of every row in the table, so new rows are plain
        # inserts (COPY on PostgreSQL) instead of upserts, and other keys need no lookup.
        self.exact_keys = complete
        self.in_db: set[tuple[Any, ...]] = set()
        # Cached keys by partition value, so a void's delete_partition does not scan the
        # whole cache (only when the partition column is part of the key).
        part = table.partition
        self._part_pos = table.key.index(part) if part in table.key else None
        self._by_part: dict[Any, set[tuple[Any, ...]]] = {}
        #: partition values (customers) whose rows are all in the cache
        self.known: set[Any] = set()
        #: whether a handler ever read this table (else nothing is worth caching)
        self.read = False

    def _remember(self, key: tuple[Any, ...]) -> None:
        if self._part_pos is not None:
            self._by_part.setdefault(key[self._part_pos], set()).add(key)

    def get(self, *key: Any) -> dict[str, Any] | None:
        """The row with this primary key, or None. Modify it only through put/update."""
        self.read = True
        row = self.cache.get(key)
        if row is None:
            if (self.complete or (self.exact_keys and key not in self.in_db)
                    or (self._part_pos is not None and key[self._part_pos] in self.known)):
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
        self.read = True
        row = self.cache.get(key)
        if row is None or row is _MISSING:
            row = self.get(*key)
            if row is None:
                return None
        row = row | changes
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
        self.read = True
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

    def prefetch(self, partitions: Iterable[Any]) -> None:
        """Load every row of these customers not cached yet, in one query per chunk.

        Only for tables that handlers read, keyed by their partition column, and not fully
        cached already.
        """
        if self.complete or not self.read or self._part_pos is None:
            return
        wanted = [v for v in set(partitions) if v not in self.known]
        if not wanted:
            return
        part = self.table.partition
        assert part is not None
        for raw in self.store.select_in(self.physical, self._cols, part, wanted):
            row = self._decode(raw)
            key = tuple(row[k] for k in self.table.key)
            if key not in self.cache:  # a cached row is as new or newer
                self.cache[key] = row
                self._remember(key)
        self.known.update(wanted)

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

    def flush(self, bounded: bool = True) -> int:
        """Write the batch's changes (inside the caller's transaction); returns rows touched.

        ``bounded``: then drop the cache if it outgrew its limit (or nobody reads it)."""
        if not self.dirty:
            return 0
        deletes, inserts, upserts = self._changes()
        if deletes:
            self.store.executemany(self._delete, deletes)
        if inserts:
            self.store.insert_rows(self.physical, self._cols, inserts)
        if upserts:
            self.store.upsert_rows(self.physical, self._cols, self.table.key, upserts)
        touched = len(self.dirty)
        self.dirty.clear()
        if bounded and (len(self.cache) > _CACHE_LIMIT or not self.read):
            self._evict()
        return touched

    def _changes(self) -> tuple[list[tuple[Any, ...]], list[list[Any]], list[list[Any]]]:
        """The dirty rows as (deleted keys, new rows, replaced rows), encoded."""
        exact, in_db = self.exact_keys, self.in_db
        cols, encode_at = self._cols, self._encode_at
        upserts: list[list[Any]] = []
        inserts: list[list[Any]] = []
        deletes = []
        for key in self.dirty:
            row = self.cache[key]
            if row is _MISSING:
                if not exact or key in in_db:
                    deletes.append(tuple(self._enc(k, v) for k, v in zip(self.table.key, key,
                                                                          strict=True)))
                    in_db.discard(key)
                continue
            values = [row[c] for c in cols]
            for i, f in encode_at:
                if (v := values[i]) is not None:
                    values[i] = f(v)
            if exact and key not in in_db:
                inserts.append(values)
                in_db.add(key)
            else:
                upserts.append(values)
        return deletes, inserts, upserts

    def forget(self) -> None:
        """Drop the cache and known keys, still trusting that the table holds no other row
        that a handler will touch (after a batch of whole aggregates in a by-aggregate
        replay: their rows are final and later aggregates never touch them), even when the
        batch had to be retried without that trust (a failing event)."""
        self.complete = self.exact_keys = True
        self.cache.clear()
        self._by_part.clear()
        self.known.clear()
        self.in_db.clear()

    def _evict(self) -> None:
        """Drop the cache (every row is flushed): later misses are prefetched or loaded.

        A table handlers never read keeps nothing but, while it still fits, the keys that
        let new rows be plain inserts.
        """
        self.cache.clear()
        self._by_part.clear()
        self.known.clear()
        self.complete = False
        if self.read or len(self.in_db) > _CACHE_LIMIT:
            self.exact_keys = False
            self.in_db.clear()

    def discard(self) -> None:
        """Forget unflushed changes (after a rolled-back batch)."""
        self.cache.clear()
        self._by_part.clear()
        self.known.clear()
        self.dirty.clear()
        self.in_db.clear()
        self.complete = self.exact_keys = False


class Tables:
    """The tables of one projection during a run: ``db["table_name"]`` gives its Rows."""

    def __init__(self, rows: dict[str, Rows]) -> None:
        self._rows = rows
        self.build: str | None = None  # build id of the physical tables the rows belong to
        self.seen: int | None = None  # position this run last wrote (None: unknown)
        #: notification id (log position) of the event being dispatched
        self.position = 0
        #: the failure stored for these tables when last claimed (a Failure, or None)
        self.stored_failure: Any = None

    def __getitem__(self, name: str) -> Rows:
        return self._rows[name]

    def all(self) -> list[Rows]:
        return list(self._rows.values())

    def flush(self, bounded: bool = True) -> int:
        return sum(r.flush(bounded) for r in self._rows.values())

    def forget(self) -> None:
        """After a batch of whole aggregates (see :meth:`Rows.forget`)."""
        for r in self._rows.values():
            r.forget()

    def prefetch(self, customers: Iterable[Any]) -> None:
        """Load the rows of these customers into the tables that need them (see Rows)."""
        for r in self._rows.values():
            r.prefetch(customers)

    def discard(self) -> None:
        """Forget cached rows (they may be stale or rolled back)."""
        self.seen = None
        for r in self._rows.values():
            r.discard()
