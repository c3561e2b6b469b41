"""``audit verify``'s check of the keys tables: every data key bound to its customer and to
the events it seals, every erasure recorded, the master key's fingerprint present.

The events' hash chain does not cover ``lifecycle_keys`` (a key is deleted on erasure, which
an append-only chain cannot hold), so its rows are checked against the chained events:

- a customer with sealed events has a key row (else ``deleted``: its personal fields can no
  longer be read);
- a live key opens with the master key *bound to that customer* (AES-GCM associated data:
  a key copied or moved from another customer, or changed, does not) and opens one of the
  customer's first chained sealed events (a key replaced by another one does not): else
  ``modified``;
- an erased key (``wrapped`` NULL) has its ``customer_erased`` event (else ``deleted``,
  "erased without an erasure event"); a live key of a customer with an erasure event was
  restored (``forged``);
- a key row of an aggregate that has no events and no chain head (``deleted``: a key is
  written only with its events, so they were deleted with their head);
- ``lifecycle_master_key`` holds the fingerprint of the store's master key once any data
  key exists (``deleted``).

Cost: one substring test per event until the customer's first sealed event is found, one
unwrap and one decryption per customer; no extra query per event.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.utils import get_topic

from lifecycle_es.domain.customer import Customer
from lifecycle_es.errors import StoreError
from lifecycle_es.stores.keys import KEYS_TABLE, unseal

if TYPE_CHECKING:
    from lifecycle_es.stores.chain_snapshot import ChainRow
    from lifecycle_es.stores.codec import FastMapper

#: ``Break.key`` of a break about the master key's fingerprint (aggregate ``keys``)
MASTER_KEY = "master_key"
#: sealed events per customer a key is tried on: it must open one (an altered event fails
#: to open, and is reported by the chain)
TRIED = 3
#: adds a break before it is named: (kind, aggregate id, version, position, detail)
Add = Callable[[str, str, int | None, int | None, str], object]

#: the stored topic of an erasure event
ERASED_TOPIC = get_topic(Customer.Erased)


class KeyCheck:
    """Fed every event row (:meth:`see`), then the keys tables (:meth:`check`)."""

    def __init__(self, mapper: FastMapper) -> None:
        self.mapper = mapper
        #: oid -> its first chained sealed events (version, token), up to TRIED
        self.sealed: dict[str, list[tuple[int, str]]] = {}
        self.erased: dict[str, int] = {}  # oid -> version of its erasure event
        self.done: set[str] = set()  # aggregates whose TRIED sealed events are known

    def see(self, ev: ChainRow, chained: bool) -> None:
        """An event row; ``chained``: its digest row is at its position (an inserted event
        is not, and is not taken as one the key must open). Callers skip rows of aggregates
        in :attr:`done` that are not erasures (nothing to learn from them)."""
        if not chained:
            return
        if ev.topic == ERASED_TOPIC:
            self.erased[ev.oid] = ev.version
        if ev.oid not in self.done:
            token = self.mapper.sealed_token(ev.state)
            if token is not None:
                tried = self.sealed.setdefault(ev.oid, [])
                tried.append((ev.version, token))
                if len(tried) == TRIED:
                    self.done.add(ev.oid)

    def check(self, keys: dict[str, tuple[bytes | None, str | None]],
              known: set[str], add: Add) -> None:
        """Report the rows of ``keys`` (the keys table) that do not match the events;
        ``known``: the aggregates the chain knows (events or a head)."""
        keyring = self.mapper.keyring
        for oid, sealed in self.sealed.items():
            if oid not in keys:
                add("deleted", oid, None, None,
                    f"data key row deleted from {KEYS_TABLE}: the customer's sealed "
                    f"personal fields (from version {sealed[0][0]}) can no longer be read")
        for oid, (wrapped, erased_at) in keys.items():
            erasure = self.erased.get(oid)
            if oid not in known:  # a key is written only with its events
                add("deleted", oid, None, None,
                    f"data key row of an aggregate that has no event in {KEYS_TABLE}: its "
                    "events and chain head were deleted (or the row was inserted)")
            elif wrapped is None:
                if erasure is None:
                    at = f", erased_at {erased_at!r}" if erased_at else ""
                    add("deleted", oid, None, None,
                        f"data key erased without an erasure event (wrapped set to NULL "
                        f"behind the engine's back{at})")
            elif erasure is not None:
                add("forged", oid, erasure, None,
                    "data key present although the customer was erased (restored?)")
            elif keyring is not None:
                self._opens(oid, wrapped, add)

    def _opens(self, oid: str, wrapped: bytes, add: Add) -> None:
        keyring = self.mapper.keyring
        assert keyring is not None
        try:
            raw = keyring.unwrap(oid, wrapped)
        except StoreError:
            add("modified", oid, None, None,
                "data key does not open with the master key bound to this customer: "
                "changed, or moved or copied from another customer")
            return
        sealed = self.sealed.get(oid)
        if not sealed:
            return
        key = AESGCM(raw)
        for version, token in sealed:
            try:
                unseal(key, token, oid, version)
                return
            except (StoreError, ValueError):
                continue
        add("modified", oid, sealed[0][0], None,
            "data key does not open the customer's sealed events (replaced by another key)")


def master_breaks(fingerprint: str | None, keys: int, sealed: int,
                  expected: str | None) -> list[tuple[str, str]]:
    """(kind, detail) of the master key's fingerprint row: present once the store has data
    keys or sealed events (``keys``, ``sealed``: how many), equal to the key in use
    (``expected``, when known)."""
    if fingerprint is None:
        if keys or sealed:
            return [("deleted", "the master key's fingerprint (lifecycle_master_key) is gone "
                                f"although the store holds {keys} data key(s)")]
        return []
    if expected is not None and fingerprint != expected:
        return [("modified", f"lifecycle_master_key names master key {fingerprint!r}, but "
                             f"the data keys open with {expected}")]
    return []
