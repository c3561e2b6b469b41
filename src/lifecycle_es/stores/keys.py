"""Per-customer data keys (envelope encryption) and the sealing of personal fields.

Every aggregate whose events hold personal data gets its own data key (AES-256-GCM), made
with its first such event and stored, wrapped by the master key (``stores/master_key.py``),
in the store's keys table in the same transaction as that event. The personal fields of an
event (its class's ``PERSONAL``) are sealed together under that key, bound to the
aggregate and version (``seal``); erasure replaces the key by a tombstone, after which they
read as placeholders (``lifecycle_es.privacy``). See docs/privacy.md.

The :class:`Keyring` is one store's view of the keys table: unwrapped keys cached for
:data:`KEY_CACHE_SECONDS` (so an erasure made by another process is seen within that time),
new keys and erasures held until the transaction that writes their events commits
(:class:`KeyWrites`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifecycle_es.errors import LifecycleError, MasterKeyError, StoreError
from lifecycle_es.stores.master_key import MasterKey

#: the keys table: one row per aggregate, ``wrapped`` NULL once erased
KEYS_TABLE = "lifecycle_keys"
#: the store setting holding the master key's fingerprint
FINGERPRINT_SETTING = "master_key_fingerprint"
#: seconds an unwrapped key is used before it is read again from the store
KEY_CACHE_SECONDS = 60.0
#: unwrapped keys kept at most (the cache is emptied when it grows past this); raw bytes
KEY_CACHE_SIZE = 50_000
#: ready ciphers kept at most: each holds an OpenSSL context (about 2.6 KB, against some
#: 150 bytes for a raw key), so 50,000 of them cost 130 MB; a replay uses one key for all
#: of a customer's events, then the next
CIPHERS_KEPT = 64
#: keys read ahead (in aggregate id order) when one is missing from the cache
READ_AHEAD = 256
_NONCE = 12
_SNAPSHOT_MAC_TEXT = b"lifecycle-es snapshot mac v1"

#: a row of the keys table: (aggregate id, wrapped key, or None once erased)
KeyChange = tuple[str, bytes | None]


class KeyTable(Protocol):
    """What the keyring needs of a recorder."""

    def select_keys(self, start: str, limit: int) -> Sequence[KeyChange]:
        """Up to ``limit`` rows of the keys table from aggregate id ``start`` on, in order."""


class Erased(LifecycleError):
    """The aggregate's key was erased: nothing with personal data can be written on it."""

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(f"aggregate {aggregate_id} was erased: its data key is gone")


class Keyring:
    """One store's data keys (see the module doc). Thread-safe."""

    def __init__(self, master: MasterKey, table: KeyTable) -> None:
        self.master = master
        self._wrapper = AESGCM(master.raw)
        self._mac_key = hmac.new(master.raw, _SNAPSHOT_MAC_TEXT, hashlib.sha256).digest()
        self._table = table
        self._cache: dict[str, tuple[float, bytes | None]] = {}  # unwrapped (None: erased)
        self._unsaved: dict[str, bytes | None] = {}  # changes not yet committed
        self._new: dict[str, bytes] = {}  # the unwrapped form of unsaved new keys
        self._ciphers: dict[str, AESGCM] = {}  # of the keys used last (CIPHERS_KEPT)
        self._lock = threading.Lock()
        self._changes = 0  # key changes settled in this process (reads outside the lock)

    # ------------------------------------------------------------ wrapping

    def wrap(self, aggregate_id: str, key: bytes, master: MasterKey | None = None) -> bytes:
        """``key`` wrapped by the master key (or ``master``), bound to the aggregate."""
        wrapper = self._wrapper if master is None else AESGCM(master.raw)
        nonce = os.urandom(_NONCE)
        return nonce + wrapper.encrypt(nonce, key, _wrap_aad(aggregate_id))

    def unwrap(self, aggregate_id: str, wrapped: bytes) -> bytes:
        """The data key of a keys-table row (raises MasterKeyError if it does not open)."""
        wrapped = bytes(wrapped)
        try:
            return self._wrapper.decrypt(wrapped[:_NONCE], wrapped[_NONCE:],
                                         _wrap_aad(aggregate_id))
        except InvalidTag:
            raise MasterKeyError(
                f"the data key of aggregate {aggregate_id} does not open with master key "
                f"{self.master.fingerprint} ({self.master.source}): the keys table was "
                f"altered or wrapped by another key") from None

    def snapshot_mac(self, aggregate_id: str, version: int, body: bytes) -> str:
        """The MAC of a snapshot's stored ``body`` at ``version`` of the aggregate, under a
        key derived from the master key (hex; only a holder of that key can make one)."""
        return hmac.new(self._mac_key, f"{aggregate_id}\x00{version}\x00".encode() + body,
                        hashlib.sha256).hexdigest()

    # ------------------------------------------------------------- lookups

    def for_write(self, aggregate_id: str, *, new: bool) -> AESGCM:
        """The key to seal an event of this aggregate with; made when it has none
        (``new``: the event creates the aggregate, so no lookup is needed)."""
        with self._lock:
            made = self._new.get(aggregate_id)
            if made is not None:
                return self._cipher(aggregate_id, made)
            if not new:
                found = self._cached(aggregate_id)
                if found is None:
                    found = self._load(aggregate_id)
                if found is not None and found[1] is not None:
                    return self._cipher(aggregate_id, found[1])
                if found is not None:
                    raise Erased(aggregate_id)
            raw = self._new[aggregate_id] = AESGCM.generate_key(bit_length=256)
            self._unsaved[aggregate_id] = self.wrap(aggregate_id, raw)
            self._ciphers.pop(aggregate_id, None)
            return self._cipher(aggregate_id, raw)

    def for_read(self, aggregate_id: str) -> AESGCM | None:
        """The key to open this aggregate's sealed fields with; None once erased. (Only
        committed keys: stored events are sealed by committed keys alone.)"""
        with self._lock:
            found, changes = self._cached(aggregate_id), self._changes
        if found is None:  # read without the lock: other threads' keys are not held up
            rows = self._table.select_keys(aggregate_id, READ_AHEAD)
            with self._lock:  # a key changed meanwhile (an erasure): read again, locked
                found = self._keep(aggregate_id, rows) if changes == self._changes \
                    else self._cached(aggregate_id) or self._load(aggregate_id)
        with self._lock:
            if found is None:
                raise StoreError(
                    f"aggregate {aggregate_id} has sealed personal fields but no data key in "
                    f"the store's {KEYS_TABLE} table (was the table restored from another "
                    "backup?)")
            return None if found[1] is None else self._cipher(aggregate_id, found[1])

    def _cipher(self, aggregate_id: str, raw: bytes) -> AESGCM:
        """The cipher of a data key (kept for the :data:`CIPHERS_KEPT` used last)."""
        cipher = self._ciphers.get(aggregate_id)
        if cipher is None:
            if len(self._ciphers) >= CIPHERS_KEPT:
                self._ciphers.clear()
            cipher = self._ciphers[aggregate_id] = AESGCM(raw)
        return cipher

    def _cached(self, aggregate_id: str) -> tuple[float, bytes | None] | None:
        entry = self._cache.get(aggregate_id)
        if entry is not None and time.monotonic() - entry[0] < KEY_CACHE_SECONDS:
            return entry
        return None

    def _load(self, aggregate_id: str) -> tuple[float, bytes | None] | None:
        """Read the keys from ``aggregate_id`` on (the next aggregates of a replay by
        aggregate come next); the entry of ``aggregate_id``, or None when it has none."""
        return self._keep(aggregate_id, self._table.select_keys(aggregate_id, READ_AHEAD))

    def _keep(self, aggregate_id: str, rows: Sequence[KeyChange],
              ) -> tuple[float, bytes | None] | None:
        """Cache the keys ``rows`` read from ``aggregate_id`` on (under the lock); the entry
        of ``aggregate_id``, or None when it has none."""
        now = time.monotonic()
        if len(self._cache) + len(rows) > KEY_CACHE_SIZE:
            self._cache.clear()
        for aid, wrapped in rows:
            self._cache[aid] = (now, None if wrapped is None else self.unwrap(aid, wrapped))
            self._ciphers.pop(aid, None)
        return self._cache.get(aggregate_id) if rows and rows[0][0] == aggregate_id else None

    def forget(self) -> None:
        """Drop the cached keys (they are read again when next needed)."""
        with self._lock:
            self._changes += 1
            self._cache.clear()
            self._ciphers.clear()

    # ------------------------------------------------------------- changes

    def erase(self, aggregate_id: str) -> None:
        """Erase the aggregate's key with the next write of its events (its tombstone)."""
        with self._lock:
            self._new.pop(aggregate_id, None)
            self._unsaved[aggregate_id] = None

    def cancel(self, aggregate_id: str) -> None:
        """Drop the aggregate's unsaved change, if it was not written."""
        with self._lock:
            self._unsaved.pop(aggregate_id, None)

    def adopt(self, changes: Iterable[KeyChange]) -> None:
        """Changes made by another process, to write with the events they belong to."""
        with self._lock:
            for aid, wrapped in changes:
                self._unsaved[aid] = wrapped

    def writes(self) -> KeyWrites:
        """The key changes of one write transaction (see :class:`KeyWrites`)."""
        return KeyWrites(self)

    def _peek(self, aggregate_ids: Iterable[str] | None,
              skip: set[str]) -> list[KeyChange]:
        """The unsaved changes of these aggregates (of all, when None) but ``skip``'s. They
        stay unsaved until a transaction writing them commits: two writers of one new
        aggregate in this process both write its key with their events, so whichever
        commits stores it."""
        with self._lock:
            unsaved = self._unsaved
            if not unsaved:
                return []
            wanted = unsaved if aggregate_ids is None else dict.fromkeys(
                a for a in aggregate_ids if a in unsaved)
            return [(a, unsaved[a]) for a in wanted if a not in skip]

    def _settle(self, changes: Sequence[KeyChange], committed: bool) -> None:
        """After the transaction that wrote ``changes``: committed, they are the store's;
        else a new key stays unsaved unless the store holds another for its aggregate
        (another writer's, committed first: that one is used from now on)."""
        if not committed:
            stored = {aid: self._table.select_keys(aid, 1) for aid, w in changes
                      if w is not None}
        with self._lock:
            now = time.monotonic()
            self._changes += 1
            for aid, wrapped in changes:
                self._cache.pop(aid, None)
                self._ciphers.pop(aid, None)
                if not committed:
                    rows = stored.get(aid)
                    if not rows or rows[0][0] != aid:
                        continue  # nobody stored a key for it: ours may still be written
                    if rows[0][1] != wrapped:  # another writer's, committed first
                        self._drop(aid, wrapped)
                        continue
                    # else a writer of this process stored ours: as if committed here
                key = self._new.get(aid)
                self._drop(aid, wrapped)
                self._cache[aid] = (now, None if wrapped is None
                                    else key or self.unwrap(aid, wrapped))

    def _drop(self, aggregate_id: str, wrapped: bytes | None) -> None:
        """Forget the unsaved change ``wrapped`` of the aggregate (not a newer one)."""
        if self._unsaved.get(aggregate_id, b"") == wrapped:
            del self._unsaved[aggregate_id]
            self._new.pop(aggregate_id, None)
            self._ciphers.pop(aggregate_id, None)


class KeyWrites:
    """The key changes one write transaction stores: :meth:`take` those of the aggregates
    of each batch of rows it writes, then :meth:`close` with whether it committed."""

    def __init__(self, keyring: Keyring) -> None:
        self._keyring = keyring
        self.taken: list[KeyChange] = []
        self._seen: set[str] = set()

    def take(self, aggregate_ids: Iterable[str] | None = None) -> list[KeyChange]:
        """The unsaved changes of these aggregates (of all, when None) this transaction
        has not taken yet: its to write."""
        changes = self._keyring._peek(aggregate_ids, self._seen)
        self._seen.update(a for a, _ in changes)
        self.taken.extend(changes)
        return changes

    def close(self, committed: bool) -> None:
        """Committed: the keys are the store's (else see ``Keyring._settle``)."""
        if self.taken:
            self._keyring._settle(self.taken, committed)
        self.taken = []


def _wrap_aad(aggregate_id: str) -> bytes:
    return b"lifecycle-es data key " + aggregate_id.encode()


def seal(key: AESGCM, fields: dict[str, Any], aggregate_id: str, version: int | str) -> str:
    """Personal ``fields`` encrypted under ``key``, bound to the event (base64 text)."""
    nonce = os.urandom(_NONCE)
    sealed = key.encrypt(nonce, orjson.dumps(fields), f"{aggregate_id}/{version}".encode())
    return base64.b64encode(nonce + sealed).decode("ascii")


def unseal(key: AESGCM, token: str, aggregate_id: str, version: int | str) -> dict[str, Any]:
    """The fields :func:`seal` sealed (raises StoreError when they do not open)."""
    try:
        data = base64.b64decode(token)
        fields: dict[str, Any] = orjson.loads(key.decrypt(
            data[:_NONCE], data[_NONCE:], f"{aggregate_id}/{version}".encode()))
    except (InvalidTag, ValueError, TypeError):
        raise StoreError(f"the personal fields of event {version} of aggregate {aggregate_id} "
                         f"do not open with its data key (altered bytes?)") from None
    return fields
