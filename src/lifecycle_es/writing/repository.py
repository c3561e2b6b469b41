"""Loading aggregates: a customer from its latest snapshot plus the events after it.

The library's :class:`~eventsourcing.application.Repository` with its reconstruction replaced
for customers (campaigns keep the library's): the latest snapshot made by the current fold
(``domain/customer_snapshot.py``), then the events after it, folded by
:meth:`Customer.replay`. When one of those events voids an event older than the snapshot,
the snapshot no longer holds the right state: the whole history is replayed instead (and the
application snapshots the result). The loaded customer can re-read its own stored events
(``origin.stored``), which a new void of an old event needs. A snapshot that fails its own
check (its MAC, ``stores/codec.py``) is never used: the customer is replayed from its events,
and a warning logged.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Repository

from lifecycle_es.domain.customer import Customer
from lifecycle_es.domain.customer_snapshot import CustomerSnapshot, fold_fingerprint
from lifecycle_es.logs import get_logger
from lifecycle_es.stores.codec import SnapshotUntrusted

log = get_logger("lifecycle_es.writing")


class CustomerRepository(Repository[UUID]):
    """Customers from snapshot + tail; everything else as the library loads it."""

    def _reconstruct_aggregate(self, aggregate_id: UUID, version: int | None,
                               projector_func: Any) -> Any:
        snapshot = self._latest_snapshot(aggregate_id, version)
        gt = None if snapshot is None else snapshot.originator_version
        events: list[Any] = list(self.event_store.get(aggregate_id, gt=gt, lte=version))
        if snapshot is None and not (events and isinstance(events[0], Customer.Event)):
            return super()._reconstruct_aggregate(aggregate_id, version, projector_func)
        agg = None if snapshot is None else Customer.replay(snapshot.mutate(None), events)
        if agg is None and snapshot is not None:  # a void older than the snapshot: the
            # events it summarised, before the tail already read
            events[:0] = self.event_store.get(aggregate_id, lte=snapshot.originator_version)
        if agg is None and events:
            agg = Customer.replay(None, events)
        if agg is None:
            raise AggregateNotFoundError(f"Aggregate {aggregate_id!r} version {version!r} "
                                         "not found.")
        agg.origin.stored = self._reader(aggregate_id)
        return agg

    def _latest_snapshot(self, aggregate_id: UUID, version: int | None,
                         ) -> CustomerSnapshot | None:
        if self.snapshot_store is None:
            return None
        try:
            found = list(self.snapshot_store.get(aggregate_id, desc=True, limit=1,
                                                 lte=version))
        except SnapshotUntrusted as exc:  # never acted on: the events are replayed
            log.warning("snapshot.untrusted", aggregate=exc.aggregate_id,
                        version=exc.version, reason=exc.reason, detail=str(exc))
            return None
        if found and isinstance(found[0], CustomerSnapshot) \
                and found[0].fold == fold_fingerprint():
            return found[0]
        return None

    def _reader(self, aggregate_id: UUID) -> Any:
        def stored(lte: int) -> Iterable[Customer.Event]:
            return self.event_store.get(aggregate_id, lte=lte)  # type: ignore[return-value]
        return stored
