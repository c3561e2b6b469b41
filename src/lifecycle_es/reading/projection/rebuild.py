"""Rebuilding read models without downtime: replay the whole log into ``<table>__shadow``
tables while readers keep the live ones, then swap every table of a read model in one
transaction that first applies the events recorded meanwhile.

A rebuild records its own position as it goes (``shadow_*`` columns of the read model's
state), so a killed rebuild resumes; ``jobs`` > 1 fills the shadows of groups of read
models in worker processes (``parallel.py``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from lifecycle_es.gcpause import without_cyclic_gc
from lifecycle_es.logs import get_logger
from lifecycle_es.progress import Progress, track
from lifecycle_es.reading.projection.base import Projection
from lifecycle_es.reading.projection.batches import Batches
from lifecycle_es.reading.projection.by_aggregate import ByAggregate
from lifecycle_es.reading.projection.failures import Failure, ProjectionFailed
from lifecycle_es.reading.projection.machinery import SHADOW, Machinery
from lifecycle_es.reading.projection.parallel import fill_in_workers, plan
from lifecycle_es.reading.projection.state import ModelState
from lifecycle_es.reading.projection.writer import Tables

if TYPE_CHECKING:
    from lifecycle_es.reading.projection.source import LogSource

log = get_logger("lifecycle_es.projection")


class Rebuild:
    """Fills shadow tables and swaps them in."""

    def __init__(self, m: Machinery, batches: Batches, by_aggregate: ByAggregate) -> None:
        self.m, self.batches, self.by_aggregate = m, batches, by_aggregate

    def run(self, group: list[Projection], batch_size: int, progress: Progress | None,
            skip_failing: bool, jobs: int) -> int:
        """Rebuild ``group``; returns the events replayed (see ``ProjectionManager``)."""
        opener: Callable[[], Callable[[], LogSource]] | None = getattr(
            self.m.source, "opener", None)
        parts = plan(group, jobs) if opener is not None and self.m.source.store.kind != \
            "memory" else [group]
        if len(parts) > 1 and opener is not None:
            done, failures = fill_in_workers(opener(), [[p.name for p in g] for g in parts],
                                             batch_size, skip_failing, progress)
            states = self.m.state.all([p.name for p in group])
            tables = {p.name: self._shadow_tables(p, states.get(p.name), complete=False)
                      for p in group}
        else:
            tables, done, failures = self.fill_shadows(group, batch_size, progress,
                                                       skip_failing)
        return self._swap_in(group, tables, done, failures, batch_size, skip_failing)

    @without_cyclic_gc  # batches of rows that form no cycles: collections free nothing
    def fill_shadows(self, group: list[Projection], batch_size: int,
                     progress: Progress | None, skip_failing: bool,
                     ) -> tuple[dict[str, Tables], int, dict[str, Failure]]:
        """Everything of a rebuild but the swap: start or resume the shadow tables of
        ``group``, replay the log into them (by aggregate, then the tail) and build their
        indexes. Returns the shadows' Tables, the events replayed and the read models that
        stopped on an event."""
        started = time.perf_counter()
        tables, by_aggregate = self._start_or_resume(group)
        failures: dict[str, Failure] = {}
        done = self.by_aggregate.replay(by_aggregate, tables, batch_size, progress,
                                        skip_failing, failures)
        replayed = done
        group = [p for p in group if p.name not in failures]
        done += self.batches.advance(
            group, tables, "shadow_position", batch_size,
            progress and (lambda d, t: progress(d + replayed, t + replayed)),
            skip_failing, failures,
        )
        indexed = time.perf_counter()
        group = [p for p in group if p.name not in failures]
        self._index(group)
        log.info("rebuild.filled", projections=[p.name for p in group], events=done,
                 replay_s=round(indexed - started, 3),
                 indexes_s=round(time.perf_counter() - indexed, 3))
        return tables, done, failures

    def _index(self, group: list[Projection]) -> None:
        """Build the shadows' secondary indexes and statistics, one table at a time (its
        own progress: the replay's counts events, this counts tables)."""
        states = self.m.state.all([p.name for p in group])
        todo = [(p, t) for p in group for t in p.tables]
        with track("indexes", unit="tables") as progress:
            for n, (p, t) in enumerate(todo, 1):
                # one transaction per table: SQLite's write lock is shared
                with self.m.read.transaction([p.name]):
                    self.m.read.create_indexes(t, t.name + SHADOW,
                                               str(states[p.name].shadow_build))
                self.m.read.analyze(t.name + SHADOW)  # statistics move with the swap
                progress(n, len(todo))

    def _start_or_resume(self, group: list[Projection],
                         ) -> tuple[dict[str, Tables], list[Projection]]:
        """The shadows' Tables of ``group`` and the read models still in phase one."""
        tables: dict[str, Tables] = {}
        by_aggregate = []
        states = self.m.state.all([p.name for p in group])
        for p in group:
            st = states.get(p.name)
            resumable = (
                st is not None and st.rebuilding and st.shadow_version == p.version
                and all(self.m.read.table_exists(t.name + SHADOW) for t in p.tables)
            )
            if not resumable:
                self._start_shadow(p, st)
                st = self.m.state.get(p.name)
            assert st is not None
            phase_one = st.shadow_cursor is not None
            # In phase one the shadow tables hold only rows of finished aggregates.
            tables[p.name] = self._shadow_tables(p, st, complete=phase_one or not resumable)
            if phase_one:
                by_aggregate.append(p)
            log.info("rebuild.start", projection=p.name, resumed=bool(resumable),
                     by_aggregate=phase_one)
        return tables, by_aggregate

    def _swap_in(self, group: list[Projection], tables: dict[str, Tables], done: int,
                 failures: dict[str, Failure], batch_size: int, skip_failing: bool) -> int:
        """Apply the events recorded meanwhile and swap every filled shadow in, in one
        transaction holding the read models' locks; raise :class:`ProjectionFailed` for
        the read models that stopped on an event."""
        group = [p for p in group if p.name not in failures]
        if group:
            with self.m.read.transaction([p.name for p in group]):
                done += self.batches.until_head(group, tables, "shadow_position", batch_size,
                                                skip_failing, failures)
                group = [p for p in group if p.name not in failures]
                states = self.m.state.all([p.name for p in group])
                for p in group:
                    self._swap(p, states[p.name])
        for p in group:
            log.info("rebuild.done", projection=p.name)
        if failures:
            raise ProjectionFailed(list(failures.values()), rebuild=True,
                                   rebuilt=[p.name for p in group], events=done)
        return done

    def _shadow_tables(self, p: Projection, st: ModelState | None, complete: bool) -> Tables:
        tables = self.m.tables(p, SHADOW, complete)
        tables.build = None if st is None else st.shadow_build
        return tables

    def _start_shadow(self, p: Projection, st: ModelState | None) -> None:
        build = uuid.uuid4().hex[:8]
        with self.m.read.transaction([p.name]):
            for t in p.tables:
                self.m.read.drop_table(t.name + SHADOW)
                # Secondary indexes are built once at the end: faster than maintaining them.
                # Phase one loads rows in aggregate order, not key order: the primary key
                # too is built once, when phase one ends (see by_aggregate.py).
                self.m.read.create_table(t, t.name + SHADOW, build, indexes=False,
                                         key=not p.replay_by_aggregate)
            self.m.state.started_shadow(p.name, p.version, build, p.replay_by_aggregate, st)

    def _swap(self, p: Projection, st: ModelState) -> None:
        for t in p.tables:
            self.m.read.drop_table(t.name)
            self.m.read.rename_table(t.name + SHADOW, t.name)
        self.m.state.swapped(p.name, str(st.shadow_build))
