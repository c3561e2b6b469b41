"""Running projections: catch up from the log, rebuild into shadow tables and swap.

Positions (notification ids) are stored in ``projection_state`` in the same transaction as the
rows they produced, so an event is never applied twice nor skipped, whoever is killed when.
A rebuild writes ``<table>__shadow`` tables while readers keep the live ones, records its own
position as it goes (so a killed rebuild resumes), and swaps all tables of a projection in one
transaction.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any, ClassVar

import orjson
from eventsourcing.utils import resolve_topic

from lifecycle_es.backoff import Backoff
from lifecycle_es.display import visible
from lifecycle_es.domain.customer import Customer
from lifecycle_es.errors import LifecycleError, StoreError, first_line
from lifecycle_es.gcpause import without_cyclic_gc
from lifecycle_es.logs import get_logger
from lifecycle_es.progress import Progress, track
from lifecycle_es.reading.projection.base import BoundHandler, Projection, Table
from lifecycle_es.reading.projection.db import ERRORS_TABLE, STATE_TABLE, ReadStore, is_transient
from lifecycle_es.reading.projection.parallel import fill_in_workers, plan
from lifecycle_es.reading.projection.personal_text import personal_hider
from lifecycle_es.reading.projection.registry import discover
from lifecycle_es.reading.projection.writer import Rows, Tables
from lifecycle_es.stores.codec import FastMapper

if TYPE_CHECKING:
    from lifecycle_es.reading.projection.source import LogSource

log = get_logger("lifecycle_es.projection")

DEFAULT_BATCH = 5_000
SHADOW = "__shadow"

class UnknownProjection(LifecycleError):
    def __init__(self, unknown: Sequence[str], known: Sequence[str]) -> None:
        super().__init__(
            f"unknown projection(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


class RebuildNeeded(LifecycleError):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__(
            f"projection(s) {', '.join(names)} changed version: run "
            f"'lifecycle-es projections rebuild {' '.join(names)}' first"
        )


#: longest error text kept for a failure (one line, cut with its full length named)
ERROR_TEXT_MAX = 300
#: a following runner retries a failed read model at most this often (seconds)
FAILED_RETRY_EVERY = 30.0
#: reconnect back-off of a following runner: first delay, cap (seconds); each delay is
#: drawn uniformly from [0, d] where d doubles from the first to the cap (lifecycle_es.backoff)
BACKOFF_FIRST, BACKOFF_CAP = 0.1, 5.0


@dataclass(frozen=True)
class Failure:
    """The event a read model could not apply: it stopped just before ``position``."""

    projection: str
    position: int
    event_type: str
    customer: str | None
    error: str
    at: str  # when it was first recorded (ISO 8601 UTC)

    def describe(self) -> str:
        who = f" of customer {self.customer!r}" if self.customer is not None else ""
        return (f"{self.projection} since position {self.position} "
                f"({self.event_type}{who}: {self.error})")


class ProjectionFailed(LifecycleError):
    """Read models stopped at an event they could not apply: their rows are stale.

    ``failures`` says where and why; in a rebuild, ``rebuilt`` names the read models that
    were rebuilt and swapped in all the same and ``events`` the events replayed.
    """

    exit_code: ClassVar[int] = 4

    def __init__(self, failures: Sequence[Failure], *, rebuild: bool = False,
                 rebuilt: Sequence[str] = (), events: int = 0) -> None:
        self.failures, self.rebuilt, self.events = list(failures), list(rebuilt), events
        what = "rebuild stopped" if rebuild else "read model stale"
        fix = ("fix the read model (or void the event), then rebuild again, or pass "
               "--skip-failing" if rebuild else
               "see 'lifecycle-es projections status'; a catch-up retries it")
        super().__init__(f"{what}: {'; '.join(f.describe() for f in self.failures)}; {fix}")


@dataclass(frozen=True)
class ProjectionStatus:
    """One read model's state, as ``projections status`` shows it."""

    name: str
    version: int
    stored_version: int | None
    position: int
    head: int
    lag: int
    rows: int
    rebuilt_at: str | None
    #: "up to date" | "behind" | "rebuild needed" | "not built" | "failed", then
    #: ", rebuilding ..." or ", rebuild failed" while a rebuild is under way
    state: str
    rebuild_position: int | None  # position of a rebuild in its second phase
    failure: dict[str, Any] | None = None  # the live tables' Failure (as a dict)
    rebuild_failure: dict[str, Any] | None = None  # the rebuild's Failure (as a dict)


class _Undecodable:
    """A stored event that cannot be decoded: any handler touching it raises the error."""

    def __init__(self, event_class: type, error: Exception, customer: str | None,
                 originator_id: uuid.UUID, originator_version: int) -> None:
        d = self.__dict__
        d["event_class"], d["error"], d["customer"] = event_class, error, customer
        d["originator_id"], d["originator_version"] = originator_id, originator_version

    def __getattr__(self, name: str) -> Any:
        raise self.__dict__["error"]


def _fail_undecodable(event: Any, tables: Tables) -> None:
    """The handler of an event whose type is unknown: every read model fails on it."""
    raise event.error


def _one_line(exc: BaseException, secret: str = "",
              hide: Callable[[str], str] | None = None) -> str:
    """``Type: first line of the message`` (``hide``: personal values hidden, before it is
    cut) cut to ERROR_TEXT_MAX characters."""
    text = f"{type(exc).__name__}: {first_line(exc, secret)}".rstrip(": ")
    text = hide(text) if hide is not None else text
    text = visible(text)
    if len(text) > ERROR_TEXT_MAX:
        text = f"{text[:ERROR_TEXT_MAX]}... ({len(text)} characters)"
    return text


#: (position, event, handlers of one read model) — what a failing batch is retried with
_Item = tuple[int, Any, list[BoundHandler]]


class ProjectionManager:
    """The read models of one engine: ``catch_up()``, ``rebuild()``, ``status()``."""

    def __init__(self, engine: LogSource) -> None:
        self.engine = engine
        self.log = engine.event_log
        mapper = self.log.mapper
        assert isinstance(mapper, FastMapper)  # the engine's codec
        self._mapper = mapper
        self.read = ReadStore(engine.store)
        #: whether queries catch the read models up first (``ensure_current``): the embedded
        #: default; False with ``--no-catch-up`` and always on a read-only store
        self.queries_catch_up = not engine.store.read_only
        #: the read models queries read since this manager was opened (what freshness covers)
        self.consulted: set[str] = set()
        self.classes = discover(engine.projections_path)
        self._history_cache: tuple[Any, list[Any]] = (None, [])
        #: phase one of a rebuild: the current aggregate's events decoded so far
        self._aggregate_events: list[Any] = []
        self.projections: dict[str, Projection] = {
            name: cls(engine.stage_model) for name, cls in sorted(self.classes.items())
        }

    # ----------------------------------------------------------------- queries

    @property
    def names(self) -> list[str]:
        return list(self.projections)

    def select(self, names: Sequence[str] | None) -> list[Projection]:
        if not names:
            return list(self.projections.values())
        unknown = [n for n in names if n not in self.projections]
        if unknown:
            raise UnknownProjection(unknown, self.names)
        return [self.projections[n] for n in dict.fromkeys(names)]

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
              order: str = "") -> list[dict[str, Any]]:
        """Rows of a live read-model table as dicts of Python values.

        ``where`` / ``order`` are SQL fragments with ``?`` placeholders, e.g.
        ``fetch("handover_history", "status=?", ["pending"], "sent_at")``. Raises
        :class:`ProjectionFailed` when the read model of the table stopped on an event.
        """
        t = self.table(table)
        self.check_current([p.name for p in self.projections.values() if t in p.tables])
        cols = list(t.columns)
        sql = f"SELECT {', '.join(cols)} FROM {t.name}"
        if where:
            sql += f" WHERE {where}"
        if order:
            sql += f" ORDER BY {order}"
        dec = self.read.decode
        enc_params = [self.read.encode(_param_type(v), v) for v in params]
        return [
            {c: dec(t.columns[c], v) for c, v in zip(cols, raw, strict=True)}
            for raw in self.read.fetchall(sql, enc_params)
        ]

    def head(self) -> int:
        return self.log.head()

    def _state(self, name: str) -> dict[str, Any] | None:
        row = self.read.fetchone(
            f"SELECT version, position, build, rebuilt_at, shadow_version, shadow_position, "
            f"shadow_build, shadow_cursor, failure, shadow_failure FROM {STATE_TABLE} "
            "WHERE name=?",
            (name,),
        )
        if row is None:
            return None
        keys = ("version", "position", "build", "rebuilt_at", "shadow_version",
                "shadow_position", "shadow_build", "shadow_cursor", "failure", "shadow_failure")
        st = dict(zip(keys, row, strict=True))
        for key in ("failure", "shadow_failure"):
            st[key] = Failure(**orjson.loads(st[key])) if st[key] else None
        return st

    def failures(self, names: Sequence[str] | None = None) -> list[Failure]:
        """The read models (of ``names``, default all) stopped on an event they could not
        apply, with where and why; a model is retried by every catch-up."""
        out = []
        for p in self.select(names):
            st = self._state(p.name)
            if st is not None and st["failure"] is not None:
                out.append(st["failure"])
        return out

    def check_current(self, names: Sequence[str]) -> None:
        """Raise :class:`ProjectionFailed` when one of these read models stopped on an
        event (its rows are stale since then)."""
        self.consulted.update(names)
        if names and (failed := self.failures(names)):
            raise ProjectionFailed(failed)

    def ensure_current(self, names: Sequence[str], catch_up: bool = True) -> None:
        """Before a query: catch the read models up (``catch_up``) or only check that none
        of them stopped on an event (:class:`ProjectionFailed` says since where). Never
        catches up when :attr:`queries_catch_up` is off (``--no-catch-up``, a read store)."""
        if catch_up and self.queries_catch_up:
            self.consulted.update(names)
            self.catch_up(names)
        else:
            self.check_current(names)

    def skipped(self, names: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The events read models skipped (``skip_failing``), oldest first: model,
        position, event type, customer, error, skipped_at (UTC), build."""
        wanted = [p.name for p in self.select(names)]
        cols = ("model", "position", "event_type", "customer", "error", "skipped_at", "build")
        rows = self.read.fetchall(
            f"SELECT {', '.join(cols)} FROM {ERRORS_TABLE} ORDER BY model, position, build")
        return [dict(zip(cols, r, strict=True)) for r in rows if r[0] in wanted]

    def status(self, names: Sequence[str] | None = None) -> list[ProjectionStatus]:
        head = self.head()
        out = []
        for p in self.select(names):
            st = self._state(p.name)
            built = st is not None and st["version"] >= 0
            position = int(st["position"]) if built and st else 0
            rows = sum(self.read.count(t.name) for t in p.tables) if built else 0
            if not built:
                state = "not built"
            elif st and st["version"] != p.version:
                state = "rebuild needed"
            elif st and st["failure"] is not None:
                state = "failed"
            else:
                state = "up to date" if position >= head else "behind"
            phase_one = bool(st and st["shadow_build"] and st["shadow_cursor"] is not None)
            if st and st["shadow_build"]:
                state += (", rebuild failed" if st["shadow_failure"] is not None
                          else ", rebuilding" + (" (by aggregate)" if phase_one else ""))
            out.append(ProjectionStatus(
                name=p.name, version=p.version,
                stored_version=st["version"] if built and st else None,
                position=position, head=head, lag=max(0, head - position), rows=rows,
                rebuilt_at=str(st["rebuilt_at"]) if st and st["rebuilt_at"] else None,
                state=state,
                rebuild_position=(int(st["shadow_position"])
                                  if st and st["shadow_build"] and not phase_one else None),
                failure=asdict(st["failure"]) if st and st["failure"] else None,
                rebuild_failure=(asdict(st["shadow_failure"])
                                 if st and st["shadow_build"] and st["shadow_failure"]
                                 else None),
            ))
        return out

    # ---------------------------------------------------------------- catch up

    def catch_up(
        self, names: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None, skip_failing: bool = False,
    ) -> int:
        """Apply every new event to the live read models; returns events applied.

        Builds a read model's tables on first use. Read models whose code version differs
        from the stored one are not touched: the others are caught up, then
        :class:`RebuildNeeded` names the stale ones. A read model that cannot apply an
        event stops just before it (retried from there by the next catch-up) while the
        others go on; then :class:`ProjectionFailed` says which, where and why. With
        ``skip_failing`` such events are recorded (see :meth:`skipped`) and passed over.
        Without ``progress``, progress goes to the host's reporter (:mod:`lifecycle_es.progress`).
        """
        self._writable()
        if progress is None:
            with track("catch-up") as reported:
                return self.catch_up(names, batch_size=batch_size, progress=reported,
                                     skip_failing=skip_failing)
        done, failed, stale = self._catch_up(names, batch_size, progress, skip_failing)
        if failed:
            raise ProjectionFailed(failed)
        if stale:
            raise RebuildNeeded(stale)
        return done

    def _catch_up(self, names: Sequence[str] | None, batch_size: int,
                  progress: Progress | None, skip: bool,
                  ) -> tuple[int, list[Failure], list[str]]:
        """catch_up: (events applied, read models that failed, read models to rebuild)."""
        group, stale = [], []
        tables: dict[str, Tables] = {}
        for p in self.select(names):
            st = self._state(p.name)
            if st is None or st["version"] < 0:
                created = self._create_live(p)
                tables[p.name] = self._tables(p, "", complete=created)
                group.append(p)
            elif st["version"] != p.version:
                stale.append(p.name)
            else:
                tables[p.name] = self._tables(p, "", complete=False)
                group.append(p)
        failures: dict[str, Failure] = {}
        done = self._advance(group, tables, "position", batch_size, progress, skip, failures)
        return done, list(failures.values()), stale

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
        self._writable()
        stop = stop or threading.Event()
        selected = [p.name for p in self.select(names)]
        total, attempts = 0, 0
        retry_at: dict[str, float] = {}  # failed read model -> when to retry it
        waiter = _Waiter(self.engine, self.read)
        try:
            while not stop.is_set():
                try:
                    self.read.ensure_open()
                    waiter.connect()
                    now = time.monotonic()
                    due = [n for n in selected if retry_at.get(n, 0.0) <= now]
                    applied, failed, stale = self._catch_up(due, batch_size, None,
                                                            skip_failing) if due else (0, [], [])
                    if stale:
                        raise RebuildNeeded(stale)
                    for name in due:
                        retry_at.pop(name, None)
                    for f in failed:
                        retry_at[f.projection] = now + FAILED_RETRY_EVERY
                    if attempts:
                        log.warning("projections.reconnected", attempts=attempts)
                        attempts = 0
                    if applied:
                        log.info("projections.followed", events=applied, head=self.head())
                    total += applied
                    waiter.wait(poll_interval, stop)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    attempts += 1
                    waiter.close()
                    delay = _backoff(attempts)
                    log.warning("projections.connection_lost", attempt=attempts,
                                retry_in_s=round(delay, 3), store=self.engine.store.redacted(),
                                error=_one_line(exc, self.engine.store.password))
                    stop.wait(delay)
        finally:
            waiter.close()
        return total

    def _writable(self) -> None:
        """Refuse (StoreError) to write the read models of a read-only store."""
        if self.engine.store.read_only:
            raise StoreError(f"read store {self.engine.store.redacted()!r} is only read: "
                             "read models are caught up and rebuilt on the primary (--store)")

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
        self._writable()
        group = self.select(names)
        opener: Callable[[], Callable[[], LogSource]] | None = getattr(
            self.engine, "opener", None)
        parts = plan(group, jobs) if opener is not None and self.engine.store.kind != \
            "memory" else [group]
        if len(parts) > 1 and opener is not None:
            done, failures = fill_in_workers(opener(), [[p.name for p in g] for g in parts],
                                             batch_size, skip_failing, progress)
            tables = {p.name: self._shadow_tables(p, complete=False) for p in group}
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
        tables: dict[str, Tables] = {}
        by_aggregate = []
        started = time.perf_counter()
        for p in group:
            st = self._state(p.name)
            resumable = (
                st is not None and st["shadow_build"] and st["shadow_version"] == p.version
                and all(self.read.table_exists(t.name + SHADOW) for t in p.tables)
            )
            if not resumable:
                self._start_shadow(p, st)
            phase_one = self._state_value(p.name, "shadow_cursor") is not None
            # In phase one the shadow tables hold only rows of finished aggregates.
            tables[p.name] = self._shadow_tables(p, complete=phase_one or not resumable)
            if phase_one:
                by_aggregate.append(p)
            log.info("rebuild.start", projection=p.name, resumed=bool(resumable),
                     by_aggregate=phase_one)
        failures: dict[str, Failure] = {}
        done = self._replay_by_aggregate(by_aggregate, tables, batch_size, progress,
                                         skip_failing, failures)
        replayed = done
        group = [p for p in group if p.name not in failures]
        done += self._advance(
            group, tables, "shadow_position", batch_size,
            progress and (lambda d, t: progress(d + replayed, t + replayed)),
            skip_failing, failures,
        )
        indexed = time.perf_counter()
        for p in group:
            if p.name in failures:
                continue
            build = str(self._state_value(p.name, "shadow_build"))
            for t in p.tables:  # one transaction per table: SQLite's write lock is shared
                with self.read.transaction([p.name]):
                    self.read.create_indexes(t, t.name + SHADOW, build)
        log.info("rebuild.filled", projections=[p.name for p in group], events=done,
                 replay_s=round(indexed - started, 3),
                 indexes_s=round(time.perf_counter() - indexed, 3))
        return tables, done, failures

    def _swap_in(self, group: list[Projection], tables: dict[str, Tables], done: int,
                 failures: dict[str, Failure], batch_size: int, skip_failing: bool) -> int:
        """Apply the events recorded meanwhile and swap every filled shadow in, in one
        transaction holding the read models' locks; raise :class:`ProjectionFailed` for
        the read models that stopped on an event."""
        group = [p for p in group if p.name not in failures]
        if group:
            with self.read.transaction([p.name for p in group]):
                done += self._step_until_head(group, tables, "shadow_position", batch_size,
                                              skip_failing, failures)
                group = [p for p in group if p.name not in failures]
                for p in group:
                    self._swap(p)
        for p in group:
            log.info("rebuild.done", projection=p.name)
        if failures:
            raise ProjectionFailed(list(failures.values()), rebuild=True,
                                   rebuilt=[p.name for p in group], events=done)
        return done

    def _shadow_tables(self, p: Projection, complete: bool) -> Tables:
        tables = self._tables(p, SHADOW, complete)
        tables.build = self._state_value(p.name, "shadow_build")
        return tables

    # --------------------------------------------------------------- internals

    def _tables(self, p: Projection, suffix: str, complete: bool) -> Tables:
        return Tables({t.name: Rows(self.read, t, t.name + suffix, complete) for t in p.tables})

    def _create_live(self, p: Projection) -> bool:
        """Create the live tables unless another runner just did; True when created here."""
        build = uuid.uuid4().hex[:8]
        with self.read.transaction([p.name]):
            st = self._state(p.name)
            if st is not None and st["version"] >= 0:
                return False
            for t in p.tables:
                self.read.drop_table(t.name)
                self.read.create_table(t, t.name, build)
            if st is None:
                self.read.execute(
                    f"INSERT INTO {STATE_TABLE} (name, version, position, build) "
                    "VALUES (?,?,0,?)",
                    (p.name, p.version, build),
                )
            else:  # a first rebuild is under way: keep its shadow columns
                self.read.execute(
                    f"UPDATE {STATE_TABLE} SET version=?, position=0, build=?, failure=NULL "
                    "WHERE name=?",
                    (p.version, build, p.name),
                )
            self.read.execute(  # skipped events of tables that are no more
                f"DELETE FROM {ERRORS_TABLE} WHERE model=? AND build<>? AND build<>?",
                (p.name, build, (st or {}).get("shadow_build") or ""))
        return True

    def _start_shadow(self, p: Projection, st: dict[str, Any] | None) -> None:
        build = uuid.uuid4().hex[:8]
        with self.read.transaction([p.name]):
            for t in p.tables:
                self.read.drop_table(t.name + SHADOW)
                # Secondary indexes are built once at the end: faster than maintaining them.
                # Phase one loads rows in aggregate order, not key order: the primary key
                # too is built once, when phase one ends (see _replay_until).
                self.read.create_table(t, t.name + SHADOW, build, indexes=False,
                                       key=not p.replay_by_aggregate)
            if st is None:
                self.read.execute(
                    f"INSERT INTO {STATE_TABLE} (name, version, position, build) "
                    "VALUES (?,-1,0,'')",
                    (p.name,),
                )
            # shadow_cursor '' = replay aggregate by aggregate first (see _replay_by_aggregate)
            self.read.execute(
                f"UPDATE {STATE_TABLE} SET shadow_version=?, shadow_position=0, "
                "shadow_build=?, shadow_cursor=?, shadow_failure=NULL WHERE name=?",
                (p.version, build, "" if p.replay_by_aggregate else None, p.name),
            )
            if st is not None and st["shadow_build"]:  # an abandoned rebuild's skips
                self.read.execute(f"DELETE FROM {ERRORS_TABLE} WHERE model=? AND build=?",
                                  (p.name, st["shadow_build"]))

    def _swap(self, p: Projection) -> None:
        st = self._state(p.name)
        assert st is not None
        for t in p.tables:
            self.read.drop_table(t.name)
            self.read.rename_table(t.name + SHADOW, t.name)
        self.read.execute(
            f"UPDATE {STATE_TABLE} SET version=shadow_version, position=shadow_position, "
            "build=shadow_build, rebuilt_at=?, shadow_version=NULL, shadow_position=NULL, "
            "shadow_build=NULL, shadow_cursor=NULL, failure=NULL, shadow_failure=NULL "
            "WHERE name=?",
            (datetime.now(UTC).isoformat(timespec="seconds"), p.name),
        )
        self.read.execute(  # the skips of the tables just replaced
            f"DELETE FROM {ERRORS_TABLE} WHERE model=? AND build<>?",
            (p.name, st["shadow_build"]))

    def _state_value(self, name: str, key: str) -> Any:
        st = self._state(name)
        return None if st is None else st[key]

    def _positions(self, group: list[Projection], column: str) -> dict[str, int]:
        out = {}
        for p in group:
            row = self.read.fetchone(
                f"SELECT {column} FROM {STATE_TABLE} WHERE name=?", (p.name,)
            )
            out[p.name] = int(row[0]) if row and row[0] is not None else 0
        return out

    def _replay_by_aggregate(self, group: list[Projection], tables: dict[str, Tables],
                             batch_size: int, progress: Progress | None, skip: bool,
                             failures: dict[str, Failure]) -> int:
        """Phase one of a rebuild: the log up to a bound, one aggregate's events together.

        In ``projection_state`` phase one is ``shadow_cursor`` not NULL (the id of the last
        aggregate done, '' before the first) with ``shadow_position`` the bound (0 until
        fixed to the head at the start). Each batch holds whole aggregates and commits with
        the cursor, so a killed rebuild resumes after the last batch. Its rows are final:
        they are written once (plain inserts) and forgotten, so memory is bounded by the
        batch. Events after the bound are applied afterwards in recording order.
        """
        if not group:
            return 0
        with self.read.transaction([p.name for p in group]):
            head = self.head()
            for p in group:
                self.read.execute(
                    f"UPDATE {STATE_TABLE} SET shadow_position=? WHERE name=? "
                    "AND shadow_cursor='' AND shadow_position=0", (head, p.name))
        phases: dict[tuple[int, str], list[Projection]] = {}
        for p in group:  # rebuilds resumed at different bounds or cursors replay separately
            st = self._state(p.name)
            assert st is not None
            phases.setdefault((int(st["shadow_position"]), str(st["shadow_cursor"])),
                              []).append(p)
        done = 0
        for (bound, _), members in phases.items():
            done += self._replay_until(members, tables, bound, batch_size, progress, done,
                                       skip, failures)
        return done

    def _replay_until(self, group: list[Projection], tables: dict[str, Tables], bound: int,
                      batch_size: int, progress: Progress | None, offset: int, skip: bool,
                      failures: dict[str, Failure]) -> int:
        decode = self._decode
        known = self._aggregate_events
        group = list(group)
        names = [p.name for p in group]
        with self.read.transaction(names):
            cursor = self._phase_one_cursor(group, tables)
            for p in group:
                # the shadow holds rows of the aggregates before the cursor only
                tables[p.name].forget()
                tables[p.name].stored_failure = self._state_value(p.name, "shadow_failure")
        pages = self.log.pages_by_aggregate(cursor, bound, batch_size)
        done = 0
        try:
            for rows, after in pages:
                routes = self._routes(group, tables)
                batch: list[tuple[int, Any]] = []

                def events(rows: Sequence[Any] = rows, batch: list[Any] = batch,
                           ) -> Iterator[tuple[int, Any]]:
                    last, originator_id = "", None
                    for position, key, version, topic, data in rows:
                        if key != last:  # the next aggregate
                            last, originator_id = key, uuid.UUID(key)
                            known.clear()
                        event = decode(topic, data, originator_id, version)
                        known.append(event)
                        batch.append((position, event))
                        yield position, event

                # Outside the transaction: phase one's handlers see only the batch's own
                # rows (the tables are "complete"), so they never read the database, and
                # on SQLite other rebuild processes may write meanwhile (--jobs).
                broken = self._dispatch(routes, events(), None)
                known.clear()
                with self.read.transaction(names):
                    self._phase_one_cursor(group, tables, cursor)
                    for p in group:
                        t = tables[p.name]
                        try:  # a rebuild that stops keeps none of the batch (the cursor)
                            with self.read.savepoint():
                                failure, skipped = self._settle(p, t, batch, 0, routes,
                                                                t in broken, skip, False)
                                if failure is not None:
                                    raise _Stopped
                        except _Stopped:
                            pass
                        self._record(p, t, "shadow_cursor", cursor if failure else after,
                                     failure, skipped, failures)
                cursor = after
                for p in group:
                    tables[p.name].forget()
                group = [p for p in group if p.name not in failures]
                names = [p.name for p in group]
                done += len(rows)
                if progress is not None:
                    progress(offset + done, max(bound, offset + done))
                if not group:
                    break
            if group:
                with self.read.transaction(names):  # phase one done: NULL cursor
                    self._phase_one_cursor(group, tables, cursor)
                    for p in group:
                        self._create_keys(tables[p.name])
                        self.read.execute(
                            f"UPDATE {STATE_TABLE} SET shadow_cursor=NULL WHERE name=?",
                            (p.name,))
        finally:  # what follows replays in recording order: it must trust no cached row
            pages.close()
            known.clear()
            for t in tables.values():
                t.discard()
        log.info("rebuild.replayed_by_aggregate", projections=names, events=done, bound=bound)
        return done

    def _phase_one_cursor(self, group: list[Projection], tables: dict[str, Tables],
                          expected: str | None = None) -> str:
        """The shared cursor of the group (inside the locked transaction); it must be
        ``expected`` when given (where this process left it)."""
        cursors = set()
        for p in group:
            st = self._state(p.name)
            if st is None or st["shadow_build"] != tables[p.name].build:
                raise LifecycleError(
                    f"projection {p.name}: the rebuild was restarted by another process")
            cursors.add(st["shadow_cursor"])
        if len(cursors) != 1 or None in cursors or (
                expected is not None and cursors != {expected}):
            raise LifecycleError(
                f"projections {', '.join(p.name for p in group)}: another process is "
                "rebuilding them; run one rebuild at a time")
        return str(cursors.pop())

    def _advance(self, group: list[Projection], tables: dict[str, Tables], column: str,
                 batch_size: int, progress: Progress | None, skip: bool,
                 failures: dict[str, Failure]) -> int:
        """Apply batches, each in its own transaction, until the positions reach the head
        (read models that fail on an event drop out, see :meth:`_step`)."""
        if not group:
            return 0
        start = min(self._positions(group, column).values())
        target = self.head()
        done = 0
        started = time.perf_counter()
        names = [p.name for p in group]
        while group:
            with self.read.transaction([p.name for p in group]):
                applied = self._step(group, tables, column, batch_size, skip, failures)
            if applied is None:
                break
            group = [p for p in group if p.name not in failures]
            done += applied
            if progress is not None:
                progress(done, max(target, self.head()) - start)
        log.info("projections.advanced", projections=names, events=done,
                 seconds=round(time.perf_counter() - started, 3))
        return done

    def _step_until_head(self, group: list[Projection], tables: dict[str, Tables],
                         column: str, batch_size: int, skip: bool,
                         failures: dict[str, Failure]) -> int:
        done = 0
        while group and (applied := self._step(group, tables, column, batch_size, skip,
                                                failures)) is not None:
            done += applied
            group = [p for p in group if p.name not in failures]
        return done

    def _step(self, group: list[Projection], tables: dict[str, Tables], column: str,
              batch_size: int, skip: bool, failures: dict[str, Failure]) -> int | None:
        """One batch inside the caller's transaction; None when already at the head.

        A read model whose handler or row write fails on an event stops just before it
        (or, with ``skip``, passes over it): see :meth:`_settle`; the others go on.
        """
        try:
            positions = {p.name: self._claim(p, tables[p.name], column) for p in group}
            start = min(positions.values())
            head = self.head()
            if start >= head:
                return None
            notes = self.log.page(start + 1, batch_size, stop=head)
            decode = self._decode
            batch = [(n.id, decode(n.topic, n.state, n.originator_id, n.originator_version))
                     for n in notes]
            customers = {getattr(e, "customer", None) for _, e in batch}
            customers.discard(None)
            for p in group:
                tables[p.name].prefetch(customers)
            routes = self._routes(group, tables)
            claimed = {tables[p.name]: positions[p.name] for p in group}
            broken = self._dispatch(routes, batch, claimed)
            last = notes[-1].id if len(notes) == batch_size else head
            for p in group:
                t = tables[p.name]
                failure, skipped = self._settle(p, t, batch, claimed[t], routes, t in broken,
                                                skip, True)
                # a read model already past this batch (caught up alone before) stays there
                self._record(p, t, column, max(last, claimed[t]), failure, skipped, failures)
            return len(notes)
        except BaseException:
            for t in tables.values():
                t.discard()
            raise

    def _dispatch(self, routes: _Routes, batch: Iterable[tuple[int, Any]],
                  claimed: dict[Tables, int] | None) -> set[Tables]:
        """Apply each (position, event) through ``routes`` (to the tables whose claimed
        position is below it); returns the tables a handler raised on, which get no later
        event of the batch. A fault of the database itself is raised."""
        broken: set[Tables] = set()
        for position, event in batch:
            cls = type(event)
            if cls is _Undecodable:
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

    def _settle(self, p: Projection, t: Tables, batch: Sequence[tuple[int, Any]],
                claimed: int, routes: _Routes, broken: bool, skip: bool,
                bounded: bool) -> tuple[Failure | None, list[Failure]]:
        """Write the batch's rows of ``p`` (in a savepoint); when a handler (``broken``) or
        the write failed, apply the batch again to ``p`` alone to find the event.

        Returns the failure ``p`` stopped at (its rows hold every event before it), or
        None, and the failures passed over (``skip``).
        """
        if not broken:
            try:
                with self.read.savepoint():
                    t.flush(bounded)
                return None, []
            except Exception as exc:
                if is_transient(exc):
                    raise
        t.discard()
        if not bounded:  # phase one: retried rows are upserts, which need the key
            self._create_keys(t)
        items: list[_Item] = []
        for position, event in batch:
            if position > claimed:
                cls = event.event_class if type(event) is _Undecodable else type(event)
                handlers = [h for tt, h in routes[cls] if tt is t]
                if handlers:
                    items.append((position, event, handlers))
        return self._isolate(p, t, items, skip, bounded)

    def _create_keys(self, tables: Tables) -> None:
        """The primary keys of a phase-one shadow (see ``_start_shadow``). Two rows with
        one key mean handlers wrote rows of another aggregate than the event's."""
        for rows in tables.all():
            try:
                with self.read.savepoint():
                    self.read.create_key(rows.table, rows.physical, str(tables.build))
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise LifecycleError(
                    f"table {rows.table.name}: two rows with the same key "
                    f"({', '.join(rows.table.key)}) after a replay by aggregate: a handler "
                    "writes rows of another aggregate than its event's; set "
                    f"replay_by_aggregate = False on its read model ({_one_line(exc)})"
                ) from None

    def _isolate(self, p: Projection, t: Tables, items: list[_Item], skip: bool,
                 bounded: bool) -> tuple[Failure | None, list[Failure]]:
        """Apply ``items`` to ``t`` in savepoints, halving a failing run of events until
        the one that fails is found (a few retries per failing event)."""
        skipped: list[Failure] = []
        size = len(items)
        while items:
            chunk = items[:size]
            try:
                with self.read.savepoint():
                    for position, event, handlers in chunk:
                        t.position = position
                        for handler in handlers:
                            handler(event, t)
                    t.flush(bounded)
            except Exception as exc:
                if is_transient(exc):
                    raise
                t.discard()
                if size > 1:
                    size //= 2
                    continue
                failure = self._failure(p, t, chunk[0][0], chunk[0][1], exc)
                if not skip:
                    return failure, skipped
                skipped.append(failure)
                chunk = chunk[:1]
            items = items[len(chunk):]
            size = len(items)
        return None, skipped

    def _failure(self, p: Projection, t: Tables, position: int, event: Any,
                 exc: BaseException) -> Failure:
        undecodable = type(event) is _Undecodable
        cls = event.event_class if undecodable else type(event)
        event_type = ("unknown event type" if cls is _Undecodable
                      else getattr(cls, "TYPE", "") or cls.__name__)
        error = _one_line(exc, hide=personal_hider(event))  # erasure must reach failures
        if undecodable:
            error = f"cannot decode the stored event: {error}"
        previous = t.stored_failure
        at = (previous.at if isinstance(previous, Failure) and previous.position == position
              else datetime.now(UTC).isoformat(timespec="seconds"))
        return Failure(p.name, position, event_type, getattr(event, "customer", None), error,
                       at)

    def _record(self, p: Projection, t: Tables, column: str, reached: Any,
                failure: Failure | None, skipped: list[Failure],
                failures: dict[str, Failure]) -> None:
        """Store how far ``p`` got (``reached``, unless it stopped before a failing event),
        its failure and the events it passed over, in the batch's transaction."""
        live = column == "position"
        failure_column = "failure" if live else "shadow_failure"
        if failure is not None:
            failures[p.name] = failure
            if column != "shadow_cursor":  # phase one keeps the cursor of the last batch
                reached = failure.position - 1
            if failure != t.stored_failure:
                log.error("projection.failed", rebuild=not live, **asdict(failure))
        self.read.execute(
            f"UPDATE {STATE_TABLE} SET {column}=?, {failure_column}=? WHERE name=?",
            (reached, None if failure is None else orjson.dumps(asdict(failure)).decode(),
             p.name))
        t.stored_failure = failure
        if column != "shadow_cursor":
            t.seen = reached
        for f in skipped:
            log.warning("projection.skipped_event", rebuild=not live, **asdict(f))
            self.read.execute(
                f"INSERT INTO {ERRORS_TABLE} (model, build, position, event_type, customer, "
                "error, skipped_at) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (model, build, position) DO NOTHING",
                (p.name, t.build or "", f.position, f.event_type, f.customer, f.error,
                 datetime.now(UTC).isoformat(timespec="seconds")))

    def _decode(self, topic: str, data: bytes, originator_id: Any, version: int) -> Any:
        """The domain event, or an :class:`_Undecodable` standing for it."""
        if not isinstance(originator_id, uuid.UUID):
            originator_id = uuid.UUID(str(originator_id))
        try:
            return self._mapper.event_from(topic, data, originator_id, version)
        except Exception as exc:
            try:
                event_class: type = resolve_topic(topic)
            except Exception:
                event_class = _Undecodable
            match = _CUSTOMER.search(bytes(data))
            customer = None
            if match:
                with suppress(Exception):
                    customer = str(orjson.loads(match.group(1)))
            return _Undecodable(event_class, exc, customer, originator_id, version)

    def _claim(self, p: Projection, tables: Tables, column: str) -> int:
        """The stored position of ``p`` (inside the locked transaction).

        Another runner may have advanced it, or a rebuild swapped the tables, since this
        runner's last batch: then cached rows are stale and are dropped.
        """
        st = self._state(p.name)
        if st is None:
            raise LifecycleError(f"projection {p.name}: its state row disappeared")
        if column == "position":
            if st["version"] != p.version:
                raise RebuildNeeded([p.name])
            build = st["build"]
        else:
            build = st["shadow_build"]
            if build != tables.build:
                raise LifecycleError(
                    f"projection {p.name}: the rebuild was restarted by another process"
                )
        position = int(st[column] or 0)
        tables.stored_failure = st["failure" if column == "position" else "shadow_failure"]
        swapped = tables.build is not None and build != tables.build
        # A fresh run trusts "complete" (empty tables) only at position 0.
        moved = position != 0 if tables.seen is None else tables.seen != position
        if swapped or moved:
            tables.discard()
        tables.build = build
        return position

    def _routes(self, group: list[Projection], tables: dict[str, Tables]) -> _Routes:
        """Per event class, the (tables, handler) pairs that apply it, in group order: a
        void re-folds the customer in read models that ask for it."""

        def build(event_class: type) -> list[tuple[Tables, BoundHandler]]:
            route: list[tuple[Tables, BoundHandler]] = []
            for p in group:
                t = tables[p.name]
                if event_class is _Undecodable:  # an unknown type: no read model can tell
                    route.append((t, _fail_undecodable))
                elif issubclass(event_class, Customer.EventVoided) and p.refold_on_void:
                    route.append((t, partial(self._refold, p)))
                else:
                    route.extend((t, h) for h in p.handlers_of(event_class))
            return route

        return _Routes(build)

    def _history_before(self, void: Customer.EventVoided) -> list[Any]:
        """The customer's events before ``void`` (read once for all read models)."""
        key = (void.originator_id, void.originator_version)
        known = self._aggregate_events
        if known and known[0].originator_id == void.originator_id \
                and known[0].originator_version == 1:  # the whole history is in this batch
            return [e for e in known if e.originator_version < void.originator_version]
        if self._history_cache[0] != key:
            stored = self.log.stored(void.originator_id,
                                                        lte=void.originator_version - 1)
            events = [self._decode(e.topic, e.state, e.originator_id, e.originator_version)
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


class _Stopped(Exception):
    """Rolls back a rebuild batch of a read model that stopped on an event."""


_CUSTOMER = re.compile(rb'"customer"\s*:\s*("(?:[^"\\]|\\.)*")')


def _backoff(attempt: int) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (1, 2, ...): drawn from
    [0, d] (full jitter, ``lifecycle_es.backoff``), d = BACKOFF_FIRST doubled per attempt
    up to BACKOFF_CAP."""
    return Backoff(first=BACKOFF_FIRST, cap=BACKOFF_CAP).pause(attempt)


class _Routes(dict[type, list[tuple[Tables, BoundHandler]]]):
    """Routes of event classes, each built on first use."""

    def __init__(self, build: Callable[[type], list[tuple[Tables, BoundHandler]]]) -> None:
        super().__init__()
        self._build = build

    def __missing__(self, event_class: type) -> list[tuple[Tables, BoundHandler]]:
        route = self[event_class] = self._build(event_class)
        return route


def _param_type(value: Any) -> str:
    """The portable column type a query parameter is encoded as."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, datetime):
        return "timestamp"
    if isinstance(value, date):
        return "date"
    return "text"


class _Waiter:
    """Sleeps until new events may exist: PostgreSQL LISTEN on the store's channel, else poll.

    The LISTEN runs on the read models' own connection (``ReadStore``), not on one of its
    own: a live runner stays within the engine's connection budget (docs/operations.md).
    :meth:`connect` listens on that connection (again once it was reopened), :meth:`close`
    stops listening.
    """

    def __init__(self, engine: LogSource, read: ReadStore) -> None:
        self.store = engine.store
        self.channel = engine.event_log.channel
        self.read = read
        self.conn: Any = None

    def connect(self) -> None:
        if self.store.kind != "postgresql" or not self.channel:
            return
        if self.conn is not None and self.conn is self.read.conn and not self.conn.closed:
            return
        from psycopg import sql

        self.read.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel))
                          .as_string(self.read.conn))
        self.conn = self.read.conn

    def close(self) -> None:
        if self.conn is not None:
            if self.conn is self.read.conn and not self.conn.closed:
                with suppress(Exception):
                    self.read.execute("UNLISTEN *")
            self.conn = None

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return after a notification, after ``timeout`` seconds, or soon after ``stop``."""
        deadline = time.monotonic() + timeout
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            step = min(left, 0.2)
            if self.conn is None:
                stop.wait(step)
                continue
            with self.read.lock:  # other threads' queries wait at most one step
                if self.conn is not self.read.conn:  # reopened (an import set it aside)
                    self.connect()
                woke = list(self.conn.notifies(timeout=step, stop_after=1))
            if woke:
                with self.read.lock:
                    list(self.conn.notifies(timeout=0.001))  # drain a burst of NOTIFYs
                return
