"""``audit verify``'s check of the stored snapshots (``domain/customer_snapshot.py``).

A snapshot is a cache of a customer's fold, which commands act on, so it is checked too:

- signed under the store's master key (``stores/codec.py``) and its MAC matches: written by
  the engine, the fold of the events it summarises (which the chain covers);
- its MAC does not match: ``modified`` (its state altered, or copied from another customer
  or version);
- unsigned (written before snapshots were signed, or inserted) or signed under an earlier
  master key: commands never use it; it is compared with the fold of the customer's events
  up to its version, and reported (``forged``) only when it differs;
- of a version the customer's chain never reached, or of an aggregate without events:
  ``forged``.

Snapshots made by another fold (``fold``) are ignored by every load, so they are not
compared. Cost: one HMAC per snapshot; for the untrusted ones, one read of their customer's
events, each folded once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from lifecycle_es.domain.customer import Customer
from lifecycle_es.domain.customer_snapshot import CustomerSnapshot, fold_fingerprint
from lifecycle_es.stores.codec import SnapshotUntrusted

if TYPE_CHECKING:
    from lifecycle_es.stores.event_log import EventLog

#: adds a break before it is named: (kind, aggregate id, version, position, detail)
Add = Callable[[str, str, int | None, int | None, str], object]


def check_snapshots(rows: Iterable[tuple[str, int, str, bytes]], log: EventLog,
                    reached: dict[str, int], add: Add) -> int:
    """Report the snapshots of ``rows`` (in aggregate, then version order) that fail (see
    the module doc); ``reached``: the last chained version of every aggregate. Returns how
    many were read."""
    count = 0
    folds = _Folds(log)
    for oid, version, topic, state in rows:
        count += 1
        last = reached.get(oid)
        if last is None or version > last:
            add("forged", oid, version, None,
                "snapshot of a version the customer's events never reached"
                if last is not None else "snapshot of an aggregate that has no event")
            continue
        try:
            log.mapper.event_from(topic, state, UUID(oid), version)
        except SnapshotUntrusted as exc:
            if exc.reason == "altered":
                add("modified", oid, version, None,
                    "snapshot fails its MAC: its stored state was changed, or copied from "
                    "another customer or version (commands replay the events instead)")
            else:
                _compare(oid, version, topic, state, folds, add)
        except Exception as exc:
            add("modified", oid, version, None,
                f"snapshot cannot be decoded ({type(exc).__name__})")
    return count


class _Folds:
    """The fold of one customer's events at growing versions: its events read once, each
    folded once (unless a void reaches back before the last version asked)."""

    def __init__(self, log: EventLog) -> None:
        self.log = log
        self.oid: str | None = None
        self.events: list[Any] = []
        self.agg: Customer | None = None

    def at(self, oid: str, version: int) -> Customer | None:
        if oid != self.oid:
            self.oid, self.events, self.agg = oid, self.log.events(UUID(oid)), None
        agg, have = self.agg, self.agg.version if self.agg is not None else 0
        if agg is not None and version >= have:
            agg = Customer.replay(agg, [e for e in self.events
                                        if have < e.originator_version <= version])
        else:
            agg = None
        if agg is None:
            prefix = [e for e in self.events if e.originator_version <= version]
            agg = Customer.replay(None, prefix) if prefix else None
        self.agg = agg
        return agg


def _compare(oid: str, version: int, topic: str, state: bytes, folds: _Folds,
             add: Add) -> None:
    """An untrusted snapshot against the fold of the customer's events to its version."""
    try:
        snap: Any = folds.log.mapper.event_from(topic, state, UUID(oid), version, check=False)
    except Exception as exc:
        add("modified", oid, version, None,
            f"snapshot cannot be decoded ({type(exc).__name__})")
        return
    if not isinstance(snap, CustomerSnapshot) or snap.fold != fold_fingerprint():
        return  # another fold's: never used by a load
    try:
        held = snap.mutate(None)
    except Exception:  # a malformed state
        held = None
    folded = folds.at(oid, version)
    if folded is None or held is None or (held.version, held.state, held.voided) != (
            folded.version, folded.state, folded.voided):
        add("forged", oid, version, None,
            "unsigned snapshot differs from the fold of the events it summarises "
            "(commands do not use it)")
