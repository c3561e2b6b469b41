"""The event log as the read side reads it: its head, pages in recording order, one
aggregate's events, and pages of whole aggregates — decoded by the store's codec.

The read side (``lifecycle_es.reading``) reads events only through this interface, never
through SQL of the events table, so it depends on the recorder interface alone
(``eventsourcing``'s ``ApplicationRecorder`` plus ``stores/by_aggregate.py``).
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from lifecycle_es.stores.codec import FastMapper

if TYPE_CHECKING:
    from eventsourcing.persistence import (
        ApplicationRecorder,
        EventStore,
        Notification,
        StoredEvent,
    )

    from lifecycle_es.stores.by_aggregate import EventRow


class EventLog:
    """Read-only access to one store's events (positions are notification ids)."""

    def __init__(self, recorder: ApplicationRecorder, mapper: Any,
                 events: EventStore[UUID]) -> None:
        assert isinstance(mapper, FastMapper)  # the engine's codec
        self.recorder, self.mapper, self._events = recorder, mapper, events

    @property
    def channel(self) -> str | None:
        """PostgreSQL's NOTIFY channel of new events, else None."""
        channel = getattr(self.recorder, "channel_name", None)
        return str(channel) if channel else None

    def head(self) -> int:
        """The position of the last recorded event (0 for an empty log)."""
        return int(self.recorder.max_notification_id() or 0)

    def page(self, start: int, limit: int, stop: int | None = None) -> Sequence[Notification]:
        """Up to ``limit`` events from position ``start`` on (to ``stop``), stored form."""
        return self.recorder.select_notifications(start, limit, stop=stop)

    def stored(self, aggregate_id: UUID, *, lte: int | None = None,
               limit: int | None = None) -> Sequence[StoredEvent]:
        """One aggregate's stored events in version order (to version ``lte``)."""
        return self.recorder.select_events(aggregate_id, lte=lte, limit=limit)

    def events(self, aggregate_id: UUID) -> list[Any]:
        """One aggregate's domain events in version order."""
        return list(self._events.get(aggregate_id))

    def pages_by_aggregate(self, after: str, stop: int, limit: int,
                           ) -> Generator[tuple[list[EventRow], str], None, None]:
        """Pages of whole aggregates after the cursor ``after`` (``stores/by_aggregate.py``)."""
        from lifecycle_es.stores.by_aggregate import aggregate_pages  # imports the drivers

        return aggregate_pages(self.recorder, after, stop, limit)

    def decode(self, topic: str, data: bytes, originator_id: UUID, version: int) -> Any:
        """The domain event stored as ``topic`` and ``data`` on that aggregate."""
        return self.mapper.event_from(topic, data, originator_id, version)

    def to_domain_event(self, stored: StoredEvent | Notification) -> Any:
        """The domain event of a stored event or notification."""
        return self.mapper.to_domain_event(stored)

    def decode_state(self, topic: str, data: bytes) -> dict[str, Any]:
        """The fields of the event stored as ``topic`` and ``data``."""
        return self.mapper.decode_topic(topic, data)
