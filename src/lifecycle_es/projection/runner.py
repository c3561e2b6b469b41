"""Running projections: catch up from the log, rebuild into shadow tables and swap.

Positions (notification ids) are stored in ``projection_state`` in the same transaction as the
rows they produced, so an event is never applied twice nor skipped, whoever is killed when.
A rebuild writes ``<table>__shadow`` tables while readers keep the live ones, records its own
position as it goes (so a killed rebuild resumes), and swaps all tables of a projection in one
transaction.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import TYPE_CHECKING, Any

from lifecycle_es.domain.customer import Customer
from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.projection.base import BoundHandler, Projection, Table
from lifecycle_es.projection.db import STATE_TABLE, ReadStore
from lifecycle_es.projection.registry import discover
from lifecycle_es.projection.writer import Rows, Tables
from lifecycle_es.stores.by_aggregate import aggregate_pages
from lifecycle_es.stores.codec import FastMapper

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

log = get_logger("lifecycle_es.projection")

DEFAULT_BATCH = 5_000
SHADOW = "__shadow"

#: progress(events done, events to do) — called after every batch
Progress = Callable[[int, int], None]


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
    state: str  # "up to date" | "behind" | "rebuild needed" | "not built", + ", rebuilding ..."
    rebuild_position: int | None  # position of a rebuild in its second phase


class ProjectionManager:
    """The read models of one engine: ``catch_up()``, ``rebuild()``, ``status()``."""

    def __init__(self, engine: LifecycleEngine) -> None:
        self.engine = engine
        self.read = ReadStore(engine.store)
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
        ``fetch("handover_history", "status=?", ["pending"], "sent_at")``.
        """
        t = self.table(table)
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
        return int(self.engine.recorder.max_notification_id() or 0)

    def _state(self, name: str) -> dict[str, Any] | None:
        row = self.read.fetchone(
            f"SELECT version, position, build, rebuilt_at, shadow_version, shadow_position, "
            f"shadow_build, shadow_cursor FROM {STATE_TABLE} WHERE name=?",
            (name,),
        )
        if row is None:
            return None
        keys = ("version", "position", "build", "rebuilt_at", "shadow_version",
                "shadow_position", "shadow_build", "shadow_cursor")
        return dict(zip(keys, row, strict=True))

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
            else:
                state = "up to date" if position >= head else "behind"
            phase_one = bool(st and st["shadow_build"] and st["shadow_cursor"] is not None)
            if st and st["shadow_build"]:
                state += ", rebuilding" + (" (by aggregate)" if phase_one else "")
            out.append(ProjectionStatus(
                name=p.name, version=p.version,
                stored_version=st["version"] if built and st else None,
                position=position, head=head, lag=max(0, head - position), rows=rows,
                rebuilt_at=str(st["rebuilt_at"]) if st and st["rebuilt_at"] else None,
                state=state,
                rebuild_position=(int(st["shadow_position"])
                                  if st and st["shadow_build"] and not phase_one else None),
            ))
        return out

    # ---------------------------------------------------------------- catch up

    def catch_up(
        self, names: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None,
    ) -> int:
        """Apply every new event to the live read models; returns events applied.

        Builds a read model's tables on first use. Read models whose code version differs
        from the stored one are not touched: the others are caught up, then
        :class:`RebuildNeeded` names the stale ones.
        """
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
        done = self._advance(group, tables, "position", batch_size, progress)
        if stale:
            raise RebuildNeeded(stale)
        return done

    def follow(
        self, names: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH,
        poll_interval: float = 2.0, stop: threading.Event | None = None,
    ) -> int:
        """Catch up, then apply new events as they are recorded, until ``stop`` is set.

        PostgreSQL: wakes on the event store's NOTIFY (LISTEN on its channel), with a poll
        every ``poll_interval`` seconds as a fallback; SQLite: polls. Returns events applied.
        """
        stop = stop or threading.Event()
        total = 0
        with _Waiter(self.engine) as waiter:
            while not stop.is_set():
                applied = self.catch_up(names, batch_size=batch_size)
                if applied:
                    log.info("projections.followed", events=applied, head=self.head())
                total += applied
                waiter.wait(poll_interval, stop)
        return total

    # ----------------------------------------------------------------- rebuild

    def rebuild(
        self, names: Sequence[str] | None = None, *, batch_size: int = DEFAULT_BATCH,
        progress: Progress | None = None,
    ) -> int:
        """Rebuild read models from the whole log without downtime; returns events replayed.

        Resumes a rebuild that was interrupted (same code version), else starts afresh.
        """
        group = self.select(names)
        tables: dict[str, Tables] = {}
        by_aggregate = []
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
            tables[p.name] = self._tables(p, SHADOW, complete=phase_one or not resumable)
            tables[p.name].build = self._state_value(p.name, "shadow_build")
            if phase_one:
                by_aggregate.append(p)
            log.info("rebuild.start", projection=p.name, resumed=bool(resumable),
                     by_aggregate=phase_one)
        done = self._replay_by_aggregate(by_aggregate, tables, batch_size, progress)
        replayed = done
        done += self._advance(
            group, tables, "shadow_position", batch_size,
            progress and (lambda d, t: progress(d + replayed, t + replayed)),
        )
        for p in group:
            with self.read.transaction([p.name]):
                build = str(self._state_value(p.name, "shadow_build"))
                for t in p.tables:
                    self.read.create_indexes(t, t.name + SHADOW, build)
        with self.read.transaction([p.name for p in group]):
            # Apply the tail that arrived meanwhile, then swap while holding the locks.
            done += self._step_until_head(group, tables, "shadow_position", batch_size)
            for p in group:
                self._swap(p)
        for p in group:
            log.info("rebuild.done", projection=p.name)
        return done

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
                    f"UPDATE {STATE_TABLE} SET version=?, position=0, build=? WHERE name=?",
                    (p.version, build, p.name),
                )
        return True

    def _start_shadow(self, p: Projection, st: dict[str, Any] | None) -> None:
        build = uuid.uuid4().hex[:8]
        with self.read.transaction([p.name]):
            for t in p.tables:
                self.read.drop_table(t.name + SHADOW)
                # Secondary indexes are built once at the end: faster than maintaining them.
                self.read.create_table(t, t.name + SHADOW, build, indexes=False)
            if st is None:
                self.read.execute(
                    f"INSERT INTO {STATE_TABLE} (name, version, position, build) "
                    "VALUES (?,-1,0,'')",
                    (p.name,),
                )
            # shadow_cursor '' = replay aggregate by aggregate first (see _replay_by_aggregate)
            self.read.execute(
                f"UPDATE {STATE_TABLE} SET shadow_version=?, shadow_position=0, "
                "shadow_build=?, shadow_cursor=? WHERE name=?",
                (p.version, build, "" if p.replay_by_aggregate else None, p.name),
            )

    def _swap(self, p: Projection) -> None:
        st = self._state(p.name)
        assert st is not None
        for t in p.tables:
            self.read.drop_table(t.name)
            self.read.rename_table(t.name + SHADOW, t.name)
        self.read.execute(
            f"UPDATE {STATE_TABLE} SET version=shadow_version, position=shadow_position, "
            "build=shadow_build, rebuilt_at=?, shadow_version=NULL, shadow_position=NULL, "
            "shadow_build=NULL, shadow_cursor=NULL WHERE name=?",
            (datetime.now(UTC).isoformat(timespec="seconds"), p.name),
        )

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
                             batch_size: int, progress: Progress | None) -> int:
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
        phases: dict[int, list[Projection]] = {}
        for p in group:  # rebuilds resumed at different bounds replay separately
            phases.setdefault(int(self._state_value(p.name, "shadow_position")), []).append(p)
        done = 0
        for bound, members in phases.items():
            done += self._replay_until(members, tables, bound, batch_size, progress, done)
        return done

    def _replay_until(self, group: list[Projection], tables: dict[str, Tables], bound: int,
                      batch_size: int, progress: Progress | None, offset: int) -> int:
        rec, mapper = self.engine.recorder, self.engine.mapper
        assert isinstance(mapper, FastMapper)  # the engine's codec
        decode = mapper.event_from
        known = self._aggregate_events
        routes = self._routes(group, tables)
        names = [p.name for p in group]
        with self.read.transaction(names):
            cursor = self._phase_one_cursor(group, tables)
        pages = aggregate_pages(rec, cursor, bound, batch_size)
        done = 0
        try:
            for rows, after in pages:
                with self.read.transaction(names):
                    self._phase_one_cursor(group, tables, cursor)
                    last = ""
                    for position, key, version, topic, data in rows:
                        if key != last:  # the next aggregate
                            last, originator_id = key, uuid.UUID(key)
                            known.clear()
                        event = decode(topic, data, originator_id, version)
                        known.append(event)
                        for t, handler in routes[type(event)]:
                            t.position = position
                            handler(event, t)
                    known.clear()
                    for p in group:
                        tables[p.name].flush(bounded=False)
                        self.read.execute(
                            f"UPDATE {STATE_TABLE} SET shadow_cursor=? WHERE name=?",
                            (after, p.name))
                cursor = after
                for p in group:
                    tables[p.name].forget()
                done += len(rows)
                if progress is not None:
                    progress(offset + done, max(bound, offset + done))
            with self.read.transaction(names):  # phase one done: NULL cursor
                self._phase_one_cursor(group, tables, cursor)
                for p in group:
                    self.read.execute(
                        f"UPDATE {STATE_TABLE} SET shadow_cursor=NULL WHERE name=?", (p.name,))
        finally:  # what follows replays in recording order: it must trust no cached row
            pages.close()
            known.clear()
            for p in group:
                tables[p.name].discard()
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
                 batch_size: int, progress: Progress | None) -> int:
        """Apply batches, each in its own transaction, until the positions reach the head."""
        if not group:
            return 0
        start = min(self._positions(group, column).values())
        target = self.head()
        done = 0
        started = time.perf_counter()
        while True:
            with self.read.transaction([p.name for p in group]):
                applied = self._step(group, tables, column, batch_size)
            if applied is None:
                break
            done += applied
            if progress is not None:
                progress(done, max(target, self.head()) - start)
        log.info("projections.advanced", projections=[p.name for p in group], events=done,
                 seconds=round(time.perf_counter() - started, 3))
        return done

    def _step_until_head(self, group: list[Projection], tables: dict[str, Tables],
                         column: str, batch_size: int) -> int:
        done = 0
        while (applied := self._step(group, tables, column, batch_size)) is not None:
            done += applied
        return done

    def _step(self, group: list[Projection], tables: dict[str, Tables], column: str,
              batch_size: int) -> int | None:
        """One batch inside the caller's transaction; None when already at the head."""
        try:
            positions = {p.name: self._claim(p, tables[p.name], column) for p in group}
            start = min(positions.values())
            head = self.head()
            if start >= head:
                return None
            notes = self.engine.recorder.select_notifications(start + 1, batch_size, stop=head)
            to_domain = self.engine.mapper.to_domain_event
            events = [to_domain(note) for note in notes]
            customers = {getattr(e, "customer", None) for e in events}
            customers.discard(None)
            for p in group:
                tables[p.name].prefetch(customers)
            routes = self._routes(group, tables)
            claimed = {tables[p.name]: positions[p.name] for p in group}
            for note, event in zip(notes, events, strict=True):
                for t, handler in routes[type(event)]:
                    if note.id > claimed[t]:
                        t.position = note.id  # for handlers that need it
                        handler(event, t)
            last = notes[-1].id if len(notes) == batch_size else head
            for p in group:
                tables[p.name].flush()
                self.read.execute(
                    f"UPDATE {STATE_TABLE} SET {column}=? WHERE name=?", (last, p.name)
                )
                tables[p.name].seen = last
            return len(notes)
        except BaseException:
            for t in tables.values():
                t.discard()
            raise

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
                if issubclass(event_class, Customer.EventVoided) and p.refold_on_void:
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
            events = list(self.engine.events.get(void.originator_id,
                                                 lte=void.originator_version - 1))
            self._history_cache = (key, events)
        return self._history_cache[1]

    def _refold(self, p: Projection, void: Customer.EventVoided, tables: Tables) -> None:
        """Re-fold one customer's rows from its events before ``void``, without voided ones."""
        for rows in tables.all():
            if rows.table.partition:
                rows.delete_partition(void.customer)
        history = self._history_before(void)
        voided = {e.voided_version for e in history if isinstance(e, Customer.EventVoided)}
        voided.add(void.voided_version)
        for e in history:
            if not isinstance(e, Customer.EventVoided) and e.originator_version not in voided:
                p.apply(e, tables)


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
    """Sleeps until new events may exist: PostgreSQL LISTEN on the store's channel, else poll."""

    def __init__(self, engine: LifecycleEngine) -> None:
        self.conn: Any = None
        channel = getattr(engine.recorder, "channel_name", None)
        if engine.store.kind == "postgresql" and channel:
            from psycopg import sql

            from lifecycle_es.stores.postgres import connect

            self.conn = connect(engine.store, autocommit=True)
            self.conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))

    def __enter__(self) -> _Waiter:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            self.conn.close()

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return after a notification, after ``timeout`` seconds, or soon after ``stop``."""
        deadline = time.monotonic() + timeout
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            step = min(left, 0.2)
            if self.conn is None:
                stop.wait(step)
                continue
            if list(self.conn.notifies(timeout=step, stop_after=1)):
                list(self.conn.notifies(timeout=0.001))  # drain a burst of NOTIFYs
                return
