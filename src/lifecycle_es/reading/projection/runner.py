"""The read models of one engine, as one facade: queries of their tables, catch-up, the
live follower, rebuild and status.

The work is done by small parts (docs/architecture.md, "The read side"): ``state.py`` (the
positions and failures of read models), ``applier.py`` (the batch applier),
``isolation.py`` (fault isolation), ``batches.py`` and ``catch_up.py`` (catch-up),
``by_aggregate.py`` and ``rebuild.py`` (rebuild and swap), ``follower.py`` (the live
follower), ``erasure.py`` (personal columns blanked on erasure). Positions are stored in
the same transaction as the rows they produced, so an event is never applied twice nor
skipped, whoever is killed when.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from lifecycle_es.errors import LifecycleError
from lifecycle_es.progress import Progress, track
from lifecycle_es.reading.projection.applier import Applier
from lifecycle_es.reading.projection.base import Projection, Table
from lifecycle_es.reading.projection.batches import Batches
from lifecycle_es.reading.projection.by_aggregate import ByAggregate
from lifecycle_es.reading.projection.catch_up import CatchUp, ReadScope
from lifecycle_es.reading.projection.failures import (
    Failure,
    ProjectionFailed,
    RebuildNeeded,
    UnknownProjection,
)
from lifecycle_es.reading.projection.follower import Follower
from lifecycle_es.reading.projection.isolation import Isolation
from lifecycle_es.reading.projection.machinery import DEFAULT_BATCH, SHADOW, Machinery
from lifecycle_es.reading.projection.rebuild import Rebuild
from lifecycle_es.reading.projection.status import ProjectionStatus, status_of
from lifecycle_es.reading.projection.writer import Tables

if TYPE_CHECKING:
    from lifecycle_es.reading.projection.source import LogSource

__all__ = ["DEFAULT_BATCH", "SHADOW", "Failure", "ProjectionFailed", "ProjectionManager",
           "ProjectionStatus", "RebuildNeeded", "UnknownProjection"]


class ProjectionManager:
    """The read models of one engine: ``catch_up()``, ``rebuild()``, ``status()``."""

    def __init__(self, engine: LogSource) -> None:
        self.engine = engine
        self.m = Machinery(engine)
        self.log, self.read = self.m.log, self.m.read
        self.classes, self.projections = self.m.classes, self.m.projections
        #: whether queries catch the read models up first (``ensure_current``): the embedded
        #: default; False with ``--no-catch-up`` and always on a read-only store
        self.queries_catch_up = not engine.store.read_only
        #: the read models queries read since this manager was opened (what freshness covers)
        self.consulted: set[str] = set()
        applier = Applier(self.m)
        isolation = Isolation(self.m)
        self._batches = Batches(self.m, applier, isolation)
        self._rebuild = Rebuild(self.m, self._batches, ByAggregate(self.m, applier, isolation))
        self._catch_up = CatchUp(self.m, self._batches, self._rebuild)
        self._scope = ReadScope()
        #: the recording time of the events freshness was asked at, by position (an event's
        #: time never changes; bounded by :func:`freshness`)
        self.recorded_at: dict[int, datetime] = {}

    @property
    def rebuild_backlog(self) -> int:
        """The backlog (events) from which a catch-up rebuilds a read model instead of
        applying batches (when it is also a quarter of the log; ``catch_up.py``)."""
        return self._catch_up.rebuild_backlog_min

    @rebuild_backlog.setter
    def rebuild_backlog(self, events: int) -> None:
        self._catch_up.rebuild_backlog_min = events

    # ----------------------------------------------------------------- queries

    @property
    def names(self) -> list[str]:
        return self.m.names

    def select(self, names: Sequence[str] | None) -> list[Projection]:
        return self.m.select(names)

    def head(self) -> int:
        return self.m.head()

    def table(self, name: str) -> Table:
        """The declared table called ``name`` (of any registered read model)."""
        for p in self.projections.values():
            for t in p.tables:
                if t.name == name:
                    return t
        known = sorted(t.name for p in self.projections.values() for t in p.tables)
        raise LifecycleError(f"table={name!r}: no read model declares it (known: "
                             f"{', '.join(known)})")

    def fetch(self, table: str, where: str = "", params: Sequence[Any] = (),
              order: str = "", *, columns: Sequence[str] | None = None,
              limit: int | None = None) -> list[dict[str, Any]]:
        """Rows of a live read-model table as dicts of Python values (of ``columns``, default
        all; at most ``limit`` rows).

        ``where`` / ``order`` are SQL fragments with ``?`` placeholders, bound by the
        driver (a ``?`` inside a string literal is text), e.g.
        ``fetch("handover_history", "status=?", ["pending"], "sent_at")``. Raises
        :class:`ProjectionFailed` when the read model of the table stopped on an event.
        """
        t = self.table(table)
        self.check_current([p.name for p in self.projections.values() if t in p.tables])
        cols = list(t.columns) if columns is None else [c for c in t.columns if c in columns]
        sql = f"SELECT {', '.join(cols)} FROM {t.name}"
        if where:
            sql += f" WHERE {where}"
        if order:
            sql += f" ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        dec = self.read.decode
        enc_params = [self.read.encode(_param_type(v), v) for v in params]
        return [
            {c: dec(t.columns[c], v) for c, v in zip(cols, raw, strict=True)}
            for raw in self.read.fetchall(sql, enc_params)
        ]

    def failures(self, names: Sequence[str] | None = None) -> list[Failure]:
        """The read models (of ``names``, default all) stopped on an event they could not
        apply, with where and why; a model is retried by every catch-up."""
        states = self.m.state.all([p.name for p in self.select(names)])
        return [st.failure for st in states.values() if st.failure is not None]

    def model_version(self, name: str) -> tuple[str, int]:
        """A read model's build and position: a pair that changes whenever its rows may
        have (new events applied, a rebuild swapped in), for answers kept across calls."""
        memo = self._scope.memo  # within a call, as its first catch-up found it current
        known = None if memo is None else memo.get(("projection", "versions"), {}).get(name)
        if known is not None:
            return known  # type: ignore[no-any-return]
        st = self.m.state.get(name)
        return ("", 0) if st is None else (st.build, st.position)

    def check_current(self, names: Sequence[str]) -> None:
        """Raise :class:`ProjectionFailed` when one of these read models stopped on an
        event (its rows are stale since then); inside :meth:`reading`, at most once per
        read model."""
        self.consulted.update(names)
        if names and not self._scope.covers(names):
            if failed := self.failures(names):
                raise ProjectionFailed(failed)
            self._scope.add(names)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One top-level read (the report, a CLI command, a web request): within the block
        each read model is caught up (or checked for a failure) at most once, by its first
        query (per thread)."""
        with self._scope.scope():
            yield

    @property
    def call_memo(self) -> dict[Hashable, Any] | None:
        """Within :meth:`reading`, answers kept for the rest of the call (the same facts
        asked twice are read once); None outside it."""
        return self._scope.memo

    def ensure_current(self, names: Sequence[str], catch_up: bool = True) -> None:
        """Before a query: catch the read models up (``catch_up``) or only check that none
        of them stopped on an event (:class:`ProjectionFailed` says since where). Never
        catches up when :attr:`queries_catch_up` is off (``--no-catch-up``, a read store);
        inside :meth:`reading`, at most once per read model."""
        if not (catch_up and self.queries_catch_up):
            self.check_current(names)
            return
        self.consulted.update(names)
        if self._scope.covers(names):
            return
        self.m.writable()
        versions: dict[str, tuple[str, int]] = {}
        current = self._catch_up.current(versions)
        self._scope.add(list(current))
        if (memo := self._scope.memo) is not None:  # dropped by a catch-up that applies
            memo["projection", "versions"] = versions
        if not current.issuperset(names):
            self.catch_up(names)
            self._scope.add(names)

    def skipped(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The events read models skipped (``skip_failing``), oldest first: model,
        position, event type, customer, error, skipped_at (UTC), build."""
        wanted = {p.name for p in self.select(names)}
        return [row for row in self.m.state.skips() if row["model"] in wanted]

    def status(self, names: Sequence[str] | None = None, *,
               rows: Mapping[str, int] | None = None) -> list[ProjectionStatus]:
        """Each read model's state; ``rows``: their row counts as the caller counted them
        before (by name), else counted now (a scan of each table)."""
        head = self.head()
        states = self.m.state.all()
        out = []
        for p in self.select(names):
            st = states.get(p.name)
            built = st is not None and st.built
            counted = rows.get(p.name, 0) if rows is not None else \
                sum(self.read.count(t.name) for t in p.tables) if built else 0
            out.append(status_of(p, st, head, counted))
        return out

    # ------------------------------------------------------- catch-up, follow

    def catch_up(
        self, names: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None, skip_failing: bool = False,
    ) -> int:
        """Apply every new event to the live read models; returns events applied.

        With nothing new this reads the head and the positions (two statements) and takes
        no lock. Builds a read model's tables on first use; one far behind (an imported
        history) is caught up by a rebuild, the faster bulk path. Read models whose code
        version differs from the stored one are not touched: the others are caught up,
        then :class:`RebuildNeeded` names the stale ones. A read model that cannot apply
        an event stops just before it (retried from there by the next catch-up) while the
        others go on; then :class:`ProjectionFailed` says which, where and why. With
        ``skip_failing`` such events are recorded (see :meth:`skipped`) and passed over.
        Without ``progress``, progress goes to the host's reporter
        (:mod:`lifecycle_es.progress`).
        """
        self.m.writable()
        if self._catch_up.current().issuperset(p.name for p in self.select(names)):
            return 0
        if progress is None:
            with track("catch-up") as reported:
                return self.catch_up(names, batch_size=batch_size, progress=reported,
                                     skip_failing=skip_failing)
        done, failed, stale = self._catch_up.run(names, batch_size, progress, skip_failing)
        self._scope.forget()  # rows kept in this call are older than what was applied
        if failed:
            raise ProjectionFailed(failed)
        if stale:
            raise RebuildNeeded(stale)
        return done

    def follow(
        self, names: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH,
        poll_interval: float = 2.0, stop: threading.Event | None = None,
        skip_failing: bool = False,
    ) -> int:
        """Catch up, then apply new events as they are recorded, until ``stop`` is set.

        PostgreSQL: wakes on the event store's NOTIFY (LISTEN on its channel), with a poll
        every ``poll_interval`` seconds as a fallback; SQLite: polls. Returns events applied.

        A read model that fails on an event stops there (retried every
        FAILED_RETRY_EVERY seconds) while the others go on. A lost connection, a locked
        or unreachable database is logged and retried with capped, jittered back-off
        (BACKOFF_FIRST doubling to BACKOFF_CAP); positions are stored with the rows, so
        work resumes exactly where it stopped.
        """
        self.m.writable()
        selected = [p.name for p in self.select(names)]
        return Follower(self._catch_up).run(selected, batch_size, poll_interval,
                                            stop or threading.Event(), skip_failing)

    # ----------------------------------------------------------------- rebuild

    def rebuild(
        self, names: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None, skip_failing: bool = False, jobs: int = 1,
    ) -> int:
        """Rebuild read models from the whole log without downtime; returns events replayed.

        Resumes a rebuild that was interrupted (same code version), else starts afresh.
        A read model whose rebuild fails on an event is not swapped in (its live tables
        stay; the next rebuild resumes it and retries the event) while the others are; then
        :class:`ProjectionFailed` says which, where and why. With ``skip_failing`` such
        events are recorded (see :meth:`skipped`) and passed over.

        ``jobs`` > 1 fills the shadow tables of groups of read models in that many worker
        processes (``parallel.py``); the swap of every read model is still one transaction
        of this process.
        """
        self.m.writable()
        return self._rebuild.run(self.select(names), batch_size, progress, skip_failing, jobs)

    def fill_shadows(self, group: list[Projection], batch_size: int,
                     progress: Progress | None, skip_failing: bool,
                     ) -> tuple[dict[str, Tables], int, dict[str, Failure]]:
        """Everything of a rebuild but the swap (a worker process's share of ``--jobs``)."""
        return self._rebuild.fill_shadows(group, batch_size, progress, skip_failing)


def _param_type(value: Any) -> str:
    """The portable column type a query parameter is encoded as."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    return "text"
