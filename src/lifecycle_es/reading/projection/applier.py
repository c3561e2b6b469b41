"""The batch applier: hands each event of a batch to the handlers of the read models that
take it, re-folding a customer's rows when one of its events is voided."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import partial
from typing import Any

from lifecycle_es.domain.customer import Customer
from lifecycle_es.reading.projection.base import BoundHandler, Projection
from lifecycle_es.reading.projection.db import is_transient
from lifecycle_es.reading.projection.decoding import Undecodable, fail_undecodable
from lifecycle_es.reading.projection.erasure import blank_personal, has_personal
from lifecycle_es.reading.projection.machinery import Machinery
from lifecycle_es.reading.projection.writer import Tables

Route = list[tuple[Tables, BoundHandler]]


class Routes(dict[type, Route]):
    """Per event class, the (tables, handler) pairs that apply it, each built on first use."""

    def __init__(self, build: Callable[[type], Route]) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, event_class: type) -> Route:
        route = self[event_class] = self._build(event_class)
        return route


class Applier:
    """Applies batches of (position, event) to the read models' :class:`Tables`."""

    def __init__(self, m: Machinery) -> None:
        self.m = m
        self._history_cache: tuple[Any, list[Any]] = (None, [])
        #: phase one of a rebuild: the current aggregate's events decoded so far
        self.aggregate_events: list[Any] = []

    def routes(self, group: list[Projection], tables: dict[str, Tables]) -> Routes:
        """Routes of ``group``'s handlers, in group order: a void re-folds the customer in
        read models that ask for it."""

        def build(event_class: type) -> Route:
            route: Route = []
            for p in group:
                t = tables[p.name]
                if event_class is Undecodable:  # an unknown type: no read model can tell
                    route.append((t, fail_undecodable))
                elif issubclass(event_class, Customer.EventVoided) and p.refold_on_void:
                    route.append((t, partial(self._refold, p)))
                else:
                    route.extend((t, h) for h in p.handlers_of(event_class))
                    if issubclass(event_class, Customer.Erased) and has_personal(p):
                        route.append((t, blank_personal))
            return route

        return Routes(build)

    @staticmethod
    def dispatch(routes: Routes, batch: Iterable[tuple[int, Any]],
                 claimed: dict[Tables, int] | None) -> set[Tables]:
        """Apply each (position, event) through ``routes`` (to the tables whose claimed
        position is below it); returns the tables a handler raised on, which get no later
        event of the batch. A fault of the database itself is raised."""
        broken: set[Tables] = set()
        for position, event in batch:
            cls = type(event)
            if cls is Undecodable:
                cls = event.event_class
            for t, handler in routes[cls]:
                if (claimed is not None and position <= claimed[t]) or (broken and t in broken):
                    continue
                t.position = position  # for handlers that need it
                try:
                    handler(event, t)
                except Exception as exc:
                    if is_transient(exc):
                        raise
                    broken.add(t)
        return broken

    def _history_before(self, void: Customer.EventVoided) -> list[Any]:
        """The customer's events before ``void`` (read once for all read models)."""
        key = (void.originator_id, void.originator_version)
        known = self.aggregate_events
        if known and known[0].originator_id == void.originator_id \
                and known[0].originator_version == 1:  # the whole history is in this batch
            return [e for e in known if e.originator_version < void.originator_version]
        if self._history_cache[0] != key:
            stored = self.m.log.stored(void.originator_id, lte=void.originator_version - 1)
            events = [self.m.decode(e.topic, e.state, e.originator_id, e.originator_version)
                      for e in stored]
            self._history_cache = (key, events)
        return self._history_cache[1]

    def _refold(self, p: Projection, void: Customer.EventVoided, tables: Tables) -> None:
        """Re-fold one customer's rows from its events before ``void``, without voided ones
        (and without undecodable ones: the read model stopped at them or skipped them)."""
        for rows in tables.all():
            if rows.table.partition:
                rows.delete_partition(void.customer)
        history = self._history_before(void)
        voided = {e.voided_version for e in history if isinstance(e, Customer.EventVoided)}
        voided.add(void.voided_version)
        for e in history:
            if not isinstance(e, Customer.EventVoided) and e.originator_version not in voided:
                p.apply(e, tables)
                if isinstance(e, Customer.Erased) and has_personal(p):
                    blank_personal(e, tables)
