"""What the read side's queries need from their composition root: the projection machinery's
source (``reading/projection/source.py``) and the read models built on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from lifecycle_es.domain.ids import customer_id, parse_id
from lifecycle_es.errors import UnknownCustomer
from lifecycle_es.reading.projection.source import LogSource

if TYPE_CHECKING:
    from lifecycle_es.reading.projection.runner import ProjectionManager


class Source(LogSource, Protocol):
    """A store's event log and its read models (``lifecycle_es.bootstrap.ReadSide`` is one)."""

    @property
    def projections(self) -> ProjectionManager: ...


def customer_history(source: LogSource, external_id: str) -> list[Any]:
    """The customer's events in order (version 1 first), voided ones included; the id is
    normalised as commands do."""
    key = parse_id("customer", external_id)
    events = source.event_log.events(customer_id(key))
    if not events:
        raise UnknownCustomer(key)
    return events
