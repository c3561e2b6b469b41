"""Phase one of a rebuild: the log up to a bound, one aggregate's events together.

In ``projection_state`` phase one is ``shadow_cursor`` not NULL (the id of the last
aggregate done, '' before the first) with ``shadow_position`` the bound (0 until fixed to
the head at the start). Each batch holds whole aggregates and commits with the cursor, so a
killed rebuild resumes after the last batch. Its rows are final: they are written once
(plain inserts) and forgotten, so memory is bounded by the batch. Events after the bound are
applied afterwards in recording order (``batches.py``).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.progress import Progress
from lifecycle_es.reading.projection.applier import Applier
from lifecycle_es.reading.projection.base import Projection
from lifecycle_es.reading.projection.failures import Failure
from lifecycle_es.reading.projection.isolation import Isolation
from lifecycle_es.reading.projection.machinery import Machinery
from lifecycle_es.reading.projection.writer import Tables

log = get_logger("lifecycle_es.projection")


class _Stopped(Exception):
    """Rolls back a rebuild batch of a read model that stopped on an event."""


class ByAggregate:
    """Replays the log aggregate by aggregate into shadow tables."""

    def __init__(self, m: Machinery, applier: Applier, isolation: Isolation) -> None:
        self.m, self.applier, self.isolation = m, applier, isolation

    def replay(self, group: list[Projection], tables: dict[str, Tables], batch_size: int,
               progress: Progress | None, skip: bool, failures: dict[str, Failure]) -> int:
        """Phase one of ``group`` (read models whose rebuild is in it); events replayed."""
        if not group:
            return 0
        with self.m.read.transaction([p.name for p in group]):
            head = self.m.head()
            for p in group:
                self.m.state.bound_phase_one(p.name, head)
        states = self.m.state.all([p.name for p in group])
        phases: dict[tuple[int, str], list[Projection]] = {}
        for p in group:  # rebuilds resumed at different bounds or cursors replay separately
            st = states[p.name]
            phases.setdefault((st.reached("shadow_position"), str(st.shadow_cursor)),
                              []).append(p)
        done = 0
        for (bound, _), members in phases.items():
            done += self._until(members, tables, bound, batch_size, progress, done, skip,
                                failures)
        return done

    def _until(self, group: list[Projection], tables: dict[str, Tables], bound: int,
               batch_size: int, progress: Progress | None, offset: int, skip: bool,
               failures: dict[str, Failure]) -> int:
        group = list(group)
        names = [p.name for p in group]
        with self.m.read.transaction(names):
            cursor = self._cursor(group, tables)
            states = self.m.state.all(names)
            for p in group:
                # the shadow holds rows of the aggregates before the cursor only
                tables[p.name].forget()
                tables[p.name].stored_failure = states[p.name].shadow_failure
        pages = self.m.log.pages_by_aggregate(cursor, bound, batch_size)
        done = 0
        try:
            for rows, after in pages:
                self._batch(group, tables, rows, cursor, after, skip, failures)
                cursor = after
                group = [p for p in group if p.name not in failures]
                names = [p.name for p in group]
                done += len(rows)
                if progress is not None:
                    progress(offset + done, max(bound, offset + done))
                if not group:
                    break
            if group:
                with self.m.read.transaction(names):  # phase one done: NULL cursor
                    self._cursor(group, tables, cursor)
                    for p in group:
                        self.isolation.create_keys(tables[p.name])
                        self.m.state.ended_phase_one(p.name)
        finally:  # what follows replays in recording order: it must trust no cached row
            pages.close()
            for t in tables.values():
                t.discard()
        log.info("rebuild.replayed_by_aggregate", projections=names, events=done, bound=bound)
        return done

    def _batch(self, group: list[Projection], tables: dict[str, Tables],
               rows: Sequence[Any], cursor: str, after: str, skip: bool,
               failures: dict[str, Failure]) -> None:
        """One page of whole aggregates: applied outside the transaction, written in one
        with the cursor ``after``."""
        routes = self.applier.routes(group, tables)
        batch: list[tuple[int, Any]] = []
        # Outside the transaction: phase one's handlers see only the batch's own rows (the
        # tables are "complete"), so they never read the database, and on SQLite other
        # rebuild processes may write meanwhile (--jobs).
        self._decode(rows, batch)
        self.applier.settle_voids(routes, batch)
        broken = self.applier.dispatch(routes, batch, None)
        with self.m.read.transaction([p.name for p in group]):
            self._cursor(group, tables, cursor)
            for p in group:
                t = tables[p.name]
                try:  # a rebuild that stops keeps none of the batch (the cursor)
                    with self.m.read.savepoint():
                        failure, skipped = self.isolation.settle(p, t, batch, 0, routes,
                                                                 t in broken, skip, False)
                        if failure is not None:
                            raise _Stopped
                except _Stopped:
                    pass
                self.isolation.record(p, t, "shadow_cursor", cursor if failure else after,
                                      failure, skipped, failures)
        for p in group:
            tables[p.name].forget()

    def _decode(self, rows: Sequence[Any], batch: list[tuple[int, Any]]) -> None:
        """The page's events decoded, as (position, event), into ``batch``."""
        decode = self.m.decode
        last, originator_id = "", None
        for position, key, version, topic, data in rows:
            if key != last:  # the next aggregate
                last, originator_id = key, uuid.UUID(key)
            batch.append((position, decode(topic, data, originator_id, version)))

    def _cursor(self, group: list[Projection], tables: dict[str, Tables],
                expected: str | None = None) -> str:
        """The shared cursor of the group (inside the locked transaction); it must be
        ``expected`` when given (where this process left it)."""
        states = self.m.state.all([p.name for p in group])
        cursors = set()
        for p in group:
            st = states.get(p.name)
            if st is None or st.shadow_build != tables[p.name].build:
                raise LifecycleError(
                    f"projection {p.name}: the rebuild was restarted by another process")
            cursors.add(st.shadow_cursor)
        if len(cursors) != 1 or None in cursors or (
                expected is not None and cursors != {expected}):
            raise LifecycleError(
                f"projections {', '.join(p.name for p in group)}: another process is "
                "rebuilding them; run one rebuild at a time")
        return str(cursors.pop())
