"""The batch applier: hands each event of a batch to the handlers of the read models that
take it, re-folding a customer's rows when one of its events is voided."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
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
    """Per event class, the (tables, handler) pairs that apply it, each built on first use.

    Events at the positions in :attr:`settled` go through :attr:`without_refold` instead:
    the routes without the read models that re-fold on a void (a rebuild's replay by
    aggregate marks the voided events and their voids, see :meth:`Applier.settle_voids`).
    """

    def __init__(self, build: Callable[[type], Route],
                 build_without_refold: Callable[[type], Route] | None = None) -> None:
        super().__init__()
        self._build = build
        self.settled: set[int] = set()
        self.without_refold: Routes = (self if build_without_refold is None
                                       else Routes(build_without_refold))

    def __missing__(self, event_class: type) -> Route:
        route = self[event_class] = self._build(event_class)
        return route

    def of(self, position: int, event_class: type) -> Route:
        """The route of the event of ``event_class`` at ``position``."""
        settled = self.settled
        return (self.without_refold if settled and position in settled
                else self)[event_class]


class Applier:
    """Applies batches of (position, event) to the read models' :class:`Tables`."""

    def __init__(self, m: Machinery) -> None:
        self.m = m
        self._history_cache: tuple[Any, list[Any]] = (None, [])

    def routes(self, group: list[Projection], tables: dict[str, Tables]) -> Routes:
        """Routes of ``group``'s handlers, in group order: a void re-folds the customer in
        read models that ask for it."""

        def build(event_class: type, refolding: bool = True) -> Route:
            route: Route = []
            for p in group:
                t = tables[p.name]
                if event_class is Undecodable:  # an unknown type: no read model can tell
                    route.append((t, fail_undecodable))
                elif p.refold_on_void and not refolding:
                    continue
                elif issubclass(event_class, Customer.EventVoided) and p.refold_on_void:
                    route.append((t, partial(self._refold, p)))
                else:
                    route.extend((t, h) for h in p.handlers_of(event_class))
                    if issubclass(event_class, Customer.Erased) and has_personal(p):
                        route.append((t, blank_personal))
            return route

        return Routes(build, partial(build, refolding=False))

    @staticmethod
    def settle_voids(routes: Routes, batch: Sequence[tuple[int, Any]]) -> None:
        """Mark in ``routes`` the events of ``batch`` voided by a later event of the batch,
        and those voids: the read models that re-fold on a void skip both, which leaves the
        rows the void's re-fold would (a re-fold per void reads the customer's whole
        history: quadratic in its length). For a batch of whole aggregates in version order
        (a rebuild's replay by aggregate)."""
        settled = routes.settled
        settled.clear()
        at: dict[tuple[Any, int], int] = {}
        for position, event in batch:
            at[event.originator_id, event.originator_version] = position
            if isinstance(event, Customer.EventVoided):
                voided = at.get((event.originator_id, event.voided_version))
                if voided is not None:
                    settled.add(voided)
                    settled.add(position)

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
            for t, handler in routes.of(position, cls):
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
