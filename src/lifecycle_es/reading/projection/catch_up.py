"""Catching read models up with the log: nothing to do costs two reads and no lock; a
small backlog is applied batch by batch into the live tables; a large one (an import of a
whole history, a follower down for a day) is caught up by a rebuild, the bulk path.

Queries catch up at most once per top-level call: inside :meth:`ReadScope.scope` (the
report, a CLI command, a web request), a read model caught up once is not caught up again.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Hashable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lifecycle_es.logs import get_logger
from lifecycle_es.progress import Progress
from lifecycle_es.reading.projection.base import Projection
from lifecycle_es.reading.projection.batches import Batches
from lifecycle_es.reading.projection.failures import Failure, ProjectionFailed
from lifecycle_es.reading.projection.machinery import Machinery
from lifecycle_es.reading.projection.rebuild import Rebuild
from lifecycle_es.reading.projection.state import ModelState
from lifecycle_es.reading.projection.writer import Tables

log = get_logger("lifecycle_es.projection")

#: a read model this many events behind (and :data:`REBUILD_BACKLOG_SHARE` of the log) is
#: caught up by a rebuild into shadow tables, several times faster per event than batches
#: of upserts into its live, indexed tables (docs/performance.md)
REBUILD_BACKLOG_MIN = 10_000
#: ... when its backlog is also at least this share of the log (a rebuild replays it all)
REBUILD_BACKLOG_SHARE = 0.25


class CatchUp:
    """Brings the live tables of read models to the head of the log."""

    def __init__(self, m: Machinery, batches: Batches, rebuild: Rebuild) -> None:
        self.m, self.batches, self.rebuild = m, batches, rebuild
        #: backlog from which a read model is caught up by a rebuild (tests lower it)
        self.rebuild_backlog_min = REBUILD_BACKLOG_MIN

    def current(self, versions: dict[str, tuple[str, int]] | None = None) -> set[str]:
        """The read models built, of their code version, without a failure and at the
        head: two reads (head, positions), no transaction, no lock. ``versions`` gets the
        build and position of each of them."""
        states = self.m.state.all()
        if not all(_built(states.get(p.name)) for p in self.m.projections.values()):
            return set()  # one never built: a catch-up creates its tables first
        head = self.m.head()
        found = {p.name for p in self.m.projections.values()
                 if _current(p, states.get(p.name), head)}
        if versions is not None:
            versions.update((n, (states[n].build, states[n].position)) for n in found)
        return found

    def run(self, names: Sequence[str] | None, batch_size: int, progress: Progress | None,
            skip: bool) -> tuple[int, list[Failure], list[str]]:
        """(events applied, read models that failed, read models to rebuild)."""
        selected = self.m.select(names)
        states = self.m.state.all()
        # a read model never built gets its (empty) tables before the log is read: they
        # are there to query even when the log cannot be read now (locked, unreachable)
        created = {p.name for p in selected
                   if not _built(states.get(p.name)) and self._create_live(p)}
        if created:
            states = self.m.state.all()
        head = self.m.head()
        if all(_current(p, states.get(p.name), head) for p in selected):
            return 0, [], []
        group, stale, by_rebuild = [], [], []
        tables: dict[str, Tables] = {}
        for p in selected:
            st = states.get(p.name)
            if st is not None and st.built and st.version != p.version:
                stale.append(p.name)
            elif self._by_rebuild(st, head):
                by_rebuild.append(p)
            else:
                tables[p.name] = self.m.tables(p, "", complete=p.name in created)
                group.append(p)
        failures: dict[str, Failure] = {}
        done = self._rebuild_backlog(by_rebuild, batch_size, progress, skip, group, tables)
        rebuilt = done
        done += self.batches.advance(
            group, tables, "position", batch_size,
            progress and (lambda d, t: progress(d + rebuilt, t + rebuilt)), skip, failures)
        return done, list(failures.values()), stale

    def _by_rebuild(self, st: ModelState | None, head: int) -> bool:
        """Whether a read model is so far behind that a rebuild catches it up faster (and
        no rebuild of it is under way or failed, and it did not stop on an event)."""
        if st is not None and (st.rebuilding or st.failure is not None):
            return False
        backlog = head - (st.position if st is not None and st.built else 0)
        return backlog > 0 and backlog >= max(self.rebuild_backlog_min,
                                              head * REBUILD_BACKLOG_SHARE)

    def _rebuild_backlog(self, group: list[Projection], batch_size: int,
                         progress: Progress | None, skip: bool, fallback: list[Projection],
                         tables: dict[str, Tables]) -> int:
        """Catch ``group`` up by a rebuild; a read model whose rebuild stops on an event
        joins ``fallback``, caught up in batches (which records where it stopped)."""
        if not group:
            return 0
        log.info("projections.catch_up_by_rebuild", projections=[p.name for p in group])
        try:
            return self.rebuild.run(group, batch_size, progress, skip, 1)
        except ProjectionFailed as exc:
            failed = {f.projection for f in exc.failures}
            states = self.m.state.all(list(failed))
            for p in group:
                if p.name in failed:
                    st = states.get(p.name)
                    created = (st is None or not st.built) and self._create_live(p)
                    tables[p.name] = self.m.tables(p, "", complete=created)
                    fallback.append(p)
            return exc.events

    def _create_live(self, p: Projection) -> bool:
        """Create the live tables unless another runner just did; True when created here."""
        build = uuid.uuid4().hex[:8]
        with self.m.read.transaction([p.name]):
            st = self.m.state.get(p.name)
            if st is not None and st.built:
                return False
            for t in p.tables:
                self.m.read.drop_table(t.name)
                self.m.read.create_table(t, t.name, build)
            self.m.state.built_live(p.name, p.version, build, st)
        return True


def _built(st: ModelState | None) -> bool:
    return st is not None and st.built


def _current(p: Projection, st: ModelState | None, head: int) -> bool:
    return (st is not None and st.version == p.version and st.failure is None
            and st.position >= head)


class ReadScope:
    """The read models caught up in the current top-level call, per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    @property
    def _covered(self) -> set[str] | None:
        covered: set[str] | None = getattr(self._local, "covered", None)
        return covered

    @contextmanager
    def scope(self) -> Iterator[None]:
        """Within the block, a read model is caught up at most once (nested: the outer
        block's); the answers read a consistent, current-at-the-start view."""
        if self._covered is not None:
            yield
            return
        self._local.covered = set()
        self._local.memo = {}
        try:
            yield
        finally:
            self._local.covered = None
            self._local.memo = None

    @property
    def memo(self) -> dict[Hashable, Any] | None:
        """Answers kept for the rest of the current top-level call (None outside one): the
        same facts asked twice in one call are read once."""
        memo: dict[Hashable, Any] | None = getattr(self._local, "memo", None)
        return memo

    def forget(self) -> None:
        """Drop the answers kept so far (the read models changed within the call)."""
        if self.memo is not None:
            self.memo.clear()

    def covers(self, names: Sequence[str]) -> bool:
        covered = self._covered
        return covered is not None and covered.issuperset(names)

    def add(self, names: Sequence[str]) -> None:
        covered = self._covered
        if covered is not None:
            covered.update(names)
