"""The keys tables' SQL, for both recorders (``?`` placeholders; PostgreSQL's run turns
them into ``%s``).

``lifecycle_keys`` holds one row per aggregate with personal data: its data key wrapped by
the master key, or NULL and the time of erasure once erased. ``lifecycle_master_key`` holds
the fingerprint of the master key the data keys are wrapped by (one row).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import IntegrityError

from lifecycle_es.errors import MasterKeyError
from lifecycle_es.stores.chain import Run
from lifecycle_es.stores.keys import KEYS_TABLE, KeyChange

MASTER_TABLE = "lifecycle_master_key"

#: runs one statement for many parameter rows
RunMany = Callable[[str, list[tuple[Any, ...]]], None]
#: inserts new keys unless their aggregate has one; returns the stored rows of those aggregates
InsertNew = Callable[[list[tuple[str, bytes]]], list[tuple[Any, ...]]]


def create_statements(text: str, blob: str, keys: str = KEYS_TABLE,
                      master: str = MASTER_TABLE) -> list[str]:
    """The tables, in the dialect's column types (names qualified by the caller)."""
    return [
        f"CREATE TABLE IF NOT EXISTS {keys} (aggregate_id {text} PRIMARY KEY, "
        f"wrapped {blob}, erased_at {text})",
        f"CREATE TABLE IF NOT EXISTS {master} (id integer PRIMARY KEY CHECK (id = 1), "
        f"fingerprint {text} NOT NULL, since {text} NOT NULL)",
    ]


class KeyTable:
    """The keys tables of one store, through ``run`` and ``runmany`` of one connection (in
    the caller's transaction)."""

    def __init__(self, run: Run, runmany: RunMany, keys: str = KEYS_TABLE,
                 master: str = MASTER_TABLE, insert_new: InsertNew | None = None) -> None:
        self.run, self.runmany, self.keys, self.master = run, runmany, keys, master
        self.insert_new = insert_new or self._insert_new

    def _insert_new(self, new: list[tuple[str, bytes]]) -> list[tuple[Any, ...]]:
        self.runmany(f"INSERT INTO {self.keys} VALUES (?, ?, NULL) "
                     "ON CONFLICT (aggregate_id) DO NOTHING", list(new))
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(new), 500):
            chunk = [aid for aid, _ in new[start:start + 500]]
            rows += self.run(f"SELECT aggregate_id, wrapped FROM {self.keys} "
                             f"WHERE aggregate_id IN ({', '.join('?' * len(chunk))})",
                             tuple(chunk))
        return rows

    def select(self, start: str, limit: int) -> list[KeyChange]:
        """Up to ``limit`` rows from aggregate id ``start`` on, in id order."""
        rows = self.run(f"SELECT aggregate_id, wrapped FROM {self.keys} WHERE aggregate_id >= ? "
                        "ORDER BY aggregate_id LIMIT ?", (start, limit))
        return [(str(a), None if w is None else bytes(w)) for a, w in rows]

    def fingerprint(self) -> str | None:
        """The fingerprint of the store's master key, or None before the first."""
        rows = self.run(f"SELECT fingerprint FROM {self.master} WHERE id = 1", ())
        return str(rows[0][0]) if rows else None

    def claim(self, fingerprint: str) -> str:
        """Record ``fingerprint`` unless the store has one; the store's (first wins)."""
        self.run(f"INSERT INTO {self.master} VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING",
                 (fingerprint, _now()))
        stored = self.fingerprint()
        assert stored is not None
        return stored

    def write(self, changes: Sequence[KeyChange], fingerprint: str) -> None:
        """Store new data keys, wrapped by the master key ``fingerprint``, and erasures (the
        wrapped key overwritten by NULL). The same key stored already (by another writer of
        this process) is left as it is; another key for the aggregate is a conflict: the
        transaction fails."""
        new: list[tuple[str, bytes]] = [(aid, wrapped) for aid, wrapped in changes
                                        if wrapped is not None]
        if new:
            stored = self.fingerprint()
            if stored is not None and stored != fingerprint:
                raise MasterKeyError(
                    f"the store's master key was changed to {stored} while this process "
                    f"wraps data keys with {fingerprint}: restart it with the new key")
            ours = dict(new)
            if any(bytes(w or b"") != ours[str(a)] for a, w in self.insert_new(new)):
                raise IntegrityError(f"{KEYS_TABLE}: another writer stored a data key "
                                     "for the same aggregate first")
        now = _now()
        erased = [(aid, now) for aid, wrapped in changes if wrapped is None]
        if erased:
            self.runmany(f"INSERT INTO {self.keys} VALUES (?, NULL, ?) ON CONFLICT "
                         "(aggregate_id) DO UPDATE SET wrapped = NULL, "
                         "erased_at = excluded.erased_at", erased)

    def rewrap(self, rewrap: Callable[[str, bytes], bytes], old: str, new: str) -> int:
        """Re-wrap every data key (``rewrap(aggregate id, wrapped)``) and record the new
        master key's fingerprint ``new``; the store's must be ``old``. Returns the count."""
        self.run(f"UPDATE {self.master} SET since = since WHERE id = 1", ())  # the write lock
        stored = self.fingerprint()
        if stored is None:
            raise MasterKeyError(f"the store's master key fingerprint ({MASTER_TABLE}) is gone: "
                                 "restore it before rotating (docs/privacy.md, 'Tamper "
                                 "evidence of the keys')")
        if stored != old:
            raise MasterKeyError(f"the store's master key is {stored}, not {old}")
        rows = self.run(f"SELECT aggregate_id, wrapped FROM {self.keys} "
                        "WHERE wrapped IS NOT NULL", ())
        self.runmany(f"UPDATE {self.keys} SET wrapped = ? WHERE aggregate_id = ?",
                     [(rewrap(str(a), bytes(w)), str(a)) for a, w in rows])
        self.run(f"UPDATE {self.master} SET fingerprint = ?, since = ? WHERE id = 1",
                 (new, _now()))
        return len(rows)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
