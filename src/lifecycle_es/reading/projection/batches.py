"""Applying the log in recording order, batch by batch: each batch in one transaction
holding the read models' locks, with the positions it reached (live tables, or a
rebuild's shadow tables after its phase one)."""

from __future__ import annotations

import time
from typing import Any

from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.progress import Progress
from lifecycle_es.reading.projection.applier import Applier
from lifecycle_es.reading.projection.base import Projection
from lifecycle_es.reading.projection.failures import Failure, RebuildNeeded
from lifecycle_es.reading.projection.isolation import Isolation
from lifecycle_es.reading.projection.machinery import Machinery
from lifecycle_es.reading.projection.state import ModelState
from lifecycle_es.reading.projection.writer import Tables

log = get_logger("lifecycle_es.projection")


class Batches:
    """Brings read models to the head of the log in recording order."""

    def __init__(self, m: Machinery, applier: Applier, isolation: Isolation) -> None:
        self.m, self.applier, self.isolation = m, applier, isolation

    def advance(self, group: list[Projection], tables: dict[str, Tables], column: str,
                batch_size: int, progress: Progress | None, skip: bool,
                failures: dict[str, Failure]) -> int:
        """Apply batches, each in its own transaction, until the positions reach the head
        (read models that fail on an event drop out, see :meth:`step`)."""
        if not group:
            return 0
        states = self.m.state.all([p.name for p in group])
        start = min((states[p.name].reached(column) if p.name in states else 0)
                    for p in group)
        target = self.m.head()
        done = 0
        started = time.perf_counter()
        names = [p.name for p in group]
        while group:
            with self.m.read.transaction([p.name for p in group]):
                applied = self.step(group, tables, column, batch_size, skip, failures)
            if applied is None:
                break
            group = [p for p in group if p.name not in failures]
            done += applied
            if progress is not None:
                progress(done, max(target - start, done))
        log.info("projections.advanced", projections=names, events=done,
                 seconds=round(time.perf_counter() - started, 3))
        return done

    def until_head(self, group: list[Projection], tables: dict[str, Tables], column: str,
                   batch_size: int, skip: bool, failures: dict[str, Failure]) -> int:
        """Batches inside the caller's transaction until the head."""
        done = 0
        while group and (applied := self.step(group, tables, column, batch_size, skip,
                                               failures)) is not None:
            done += applied
            group = [p for p in group if p.name not in failures]
        return done

    def step(self, group: list[Projection], tables: dict[str, Tables], column: str,
             batch_size: int, skip: bool, failures: dict[str, Failure]) -> int | None:
        """One batch inside the caller's transaction; None when already at the head.

        A read model whose handler or row write fails on an event stops just before it
        (or, with ``skip``, passes over it): see :class:`Isolation`; the others go on.
        """
        try:
            states = self.m.state.all([p.name for p in group])
            positions = {p.name: self._claim(p, states.get(p.name), tables[p.name], column)
                         for p in group}
            start = min(positions.values())
            head = self.m.head()
            if start >= head:
                return None
            notes = self.m.log.page(start + 1, batch_size, stop=head)
            decode = self.m.decode
            batch = [(n.id, decode(n.topic, n.state, n.originator_id, n.originator_version))
                     for n in notes]
            customers = {getattr(e, "customer", None) for _, e in batch}
            customers.discard(None)
            for p in group:
                tables[p.name].prefetch(customers)
            routes = self.applier.routes(group, tables)
            claimed = {tables[p.name]: positions[p.name] for p in group}
            broken = self.applier.dispatch(routes, batch, claimed)
            last = notes[-1].id if len(notes) == batch_size else head
            for p in group:
                t = tables[p.name]
                failure, skipped = self.isolation.settle(p, t, batch, claimed[t], routes,
                                                         t in broken, skip, True)
                # a read model already past this batch (caught up alone before) stays there
                self.isolation.record(p, t, column, max(last, claimed[t]), failure, skipped,
                                      failures)
            return len(notes)
        except BaseException:
            for t in tables.values():
                t.discard()
            raise

    @staticmethod
    def _claim(p: Projection, st: ModelState | None, tables: Tables, column: str) -> int:
        """The stored position of ``p`` (read inside the locked transaction).

        Another runner may have advanced it, or a rebuild swapped the tables, since this
        runner's last batch: then cached rows are stale and are dropped.
        """
        if st is None:
            raise LifecycleError(f"projection {p.name}: its state row disappeared")
        if column == "position":
            if st.version != p.version:
                raise RebuildNeeded([p.name])
            build: Any = st.build
        else:
            build = st.shadow_build
            if build != tables.build:
                raise LifecycleError(
                    f"projection {p.name}: the rebuild was restarted by another process"
                )
        position = st.reached(column)
        tables.stored_failure = st.failure_of(column)
        swapped = tables.build is not None and build != tables.build
        # A fresh run trusts "complete" (empty tables) only at position 0.
        moved = position != 0 if tables.seen is None else tables.seen != position
        if swapped or moved:
            tables.discard()
        tables.build = build
        return position
