"""Views the pages share, kept current by a background thread, so that a request only
filters and slices what is in memory and never recomputes a whole list.

* **Open gaps** (the cockpit): every open gap, most urgent first. Computed once in full,
  then, each time the read models moved (at most every ``Settings.views_seconds``), only
  the gaps of the customers the new events touched (``engine.audit.changed``); in full
  again every ``Settings.gaps_full_seconds`` (gaps that open as time passes) or when a
  campaign changed. After an action, the request that wrote renews its customer's gaps at
  once (:meth:`Views.renew_customer`: read-your-writes in this process).
* **Periodic views** (:meth:`Views.add`): a value recomputed every ``seconds`` once the read
  models moved since the last one, e.g. the metrics of the default period.

Each view carries the freshness of the read models it was computed from; the pages show it.
"""

from __future__ import annotations

import heapq
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.report.urgency import urgency_key
from lifecycle_es.web.reads import Freshness, Gap, fresh, queries, read_models

if TYPE_CHECKING:
    from lifecycle_es.config import Config
    from lifecycle_es.engine import LifecycleEngine
    from lifecycle_es.web.settings import Settings

log = get_logger("lifecycle_es.web")

#: what the open gaps are computed from (audit_index: which customers new events touched)
GAP_MODELS = ["current_stage", "gaps_facts", "handover_history", "audit_index"]
#: seconds the thread waits after a failed refresh
RETRY_AFTER = 5.0


def urgency(g: Gap) -> tuple[Any, ...]:
    """The cockpit's order: the report's urgency, then the customer and the subject."""
    return *urgency_key(g.kind, g.since, None), g.customer, g.ref or ""


#: the first item of a pair (the key a merge compares)
_first = itemgetter(0)


#: a gap with its :func:`urgency` (computed once per gap)
Ranked = tuple[tuple[Any, ...], Gap]
#: customers renewed since the last full list, before they are folded into a new one
FOLD_AFTER = 256


@dataclass(frozen=True)
class OpenGaps:
    """Every open gap, most urgent first, computed at ``at`` from read models that included
    at least ``fresh.position``: a list indexed by kind, team, owner and customer, and the
    gaps of the customers renewed since (``renewed``: customer -> its gaps now, replacing
    the list's), merged when read. A renewal costs its customer's gaps, not the list's."""

    fresh: Freshness
    at: datetime
    #: ("all", None), ("kind", k), ("team", t), ("owner", o), ("customer", c) -> most
    #: urgent first
    by: dict[tuple[str, str | None], list[Ranked]]
    renewed: dict[str, list[Ranked]] = field(default_factory=dict)

    @classmethod
    def of(cls, ranked: list[Ranked], fresh: Freshness, at: datetime) -> OpenGaps:
        """The open gaps ``ranked`` (most urgent first), indexed."""
        by: dict[tuple[str, str | None], list[Ranked]] = {("all", None): ranked}
        for pair in ranked:  # in order: each list is most urgent first too
            g = pair[1]
            for key in (("kind", g.kind), ("team", g.team), ("owner", g.owner),
                        ("customer", g.customer)):
                by.setdefault(key, []).append(pair)
        return cls(fresh, at, by)

    def with_renewed(self, gaps: dict[str, list[Ranked]], fresh: Freshness,
                     at: datetime) -> OpenGaps:
        """These gaps with those of some customers renewed (customer -> its gaps now)."""
        return OpenGaps(fresh, at, self.by, {**self.renewed, **gaps})

    def folded(self) -> OpenGaps:
        """The same gaps as one indexed list (no renewal left to merge)."""
        return OpenGaps.of(list(self._merged(self.by[("all", None)], lambda g: True)),
                           self.fresh, self.at)

    def _merged(self, base: list[Ranked], ok: Callable[[Gap], bool]) -> Iterator[Ranked]:
        extra = sorted((pair for pairs in self.renewed.values() for pair in pairs
                        if ok(pair[1])), key=_first)
        kept = (pair for pair in base if pair[1].customer not in self.renewed)
        return heapq.merge(kept, extra, key=_first)

    def select(self, kind: str = "", team: str = "", owner: str = "",
               ) -> tuple[int, Iterator[Gap]]:
        """How many gaps are of ``kind``, ``team`` and ``owner`` (each ``""``: any), and
        them, most urgent first (lazily: a page reads only up to its end)."""
        def ok(g: Gap) -> bool:
            return (not kind or g.kind == kind) and (not team or g.team == team) \
                and (not owner or g.owner == owner)

        given = [(name, value) for name, value in (("kind", kind), ("team", team),
                                                    ("owner", owner)) if value]
        base = min((self.by.get(key, []) for key in given), key=len) if given \
            else self.by[("all", None)]
        if len(given) > 1:
            base = [pair for pair in base if ok(pair[1])]
        if not self.renewed:
            return len(base), (g for _, g in base)
        gone = sum(1 for c in self.renewed for _, g in self.by.get(("customer", c), [])
                   if ok(g))
        added = sum(1 for pairs in self.renewed.values() for _, g in pairs if ok(g))
        return len(base) - gone + added, (g for _, g in self._merged(base, ok))


@dataclass
class Periodic:
    """A periodic view: its function, its period, and its last value with the position and
    time it was computed at."""

    compute: Callable[[LifecycleEngine], Any]
    seconds: float
    value: Any = None
    position: int = -1
    computed: float = 0.0


class Views:
    """The shared views of one console process, refreshed by :meth:`start`'s thread."""

    def __init__(self, engine: LifecycleEngine, config: Config, settings: Settings) -> None:
        self.console_engine, self.config, self.settings = engine, config, settings
        self._own: LifecycleEngine | None = None
        self._gaps: OpenGaps | None = None
        self._full_at = 0.0  # monotonic time of the last full computation
        self._renewed: set[str] = set()  # customers renewed during a full computation
        self._renewed_at: dict[str, int] = {}  # customer -> position an action renewed it at
        self._lock = threading.Lock()  # guards _gaps and _renewed
        self._first = threading.Lock()  # one first computation
        self._periodic: dict[str, Periodic] = {}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._ready: tuple[threading.Event, ...] = ()

    @property
    def engine(self) -> LifecycleEngine:
        """The engine the views read: one of their own on the store the console reads (its
        own connections, so that a long computation holds no request up; a memory store
        is the console's engine itself)."""
        if self._own is None:
            reader = self.console_engine.reader
            self._own = reader if reader.store.kind == "memory" else reader.opener()()
            read_models(self._own)  # never caught up here either
        return self._own

    # ------------------------------------------------------------------ reading

    def open_gaps(self) -> OpenGaps:
        """The open gaps; the first request before the thread's first computation computes
        them (one at a time: the others wait for it)."""
        current = self._gaps
        if current is None:
            with self._first:
                if self._gaps is None:
                    self.refresh_gaps()
            current = self._gaps
            assert current is not None
        return current

    def get(self, name: str) -> Any:
        """The last value of the periodic view ``name`` (None before its first)."""
        view = self._periodic.get(name)
        return None if view is None else view.value

    def expire(self, name: str) -> None:
        """Make the periodic view ``name`` due: its thread computes it again at its next
        turn (within ``views_seconds``), whatever its period."""
        view = self._periodic.get(name)
        if view is not None:
            view.position, view.computed = -1, 0.0

    def add(self, name: str, compute: Callable[[LifecycleEngine], Any],
            seconds: float) -> None:
        """Keep ``compute(engine)`` (the views' engine) as the view ``name``, recomputed at
        most every ``seconds`` when the read models moved."""
        self._periodic[name] = Periodic(compute, seconds)

    # --------------------------------------------------------------- computing

    def _compute(self, customers: Iterable[str] | None) -> tuple[list[Ranked], datetime]:
        """The open gaps now, ranked: of every customer, or only of ``customers``."""
        now = datetime.now(UTC)
        with self.engine.reader.projections.reading():  # one failure check per read model
            if customers is None:
                gaps = self.engine.gaps(now, config=self.config)
            else:
                gaps = [g for c in customers
                        for g in self.engine.gaps(now, config=self.config, customer=c)]
        ranked = [(urgency(g), g) for g in gaps]
        ranked.sort(key=_first)
        return ranked, now

    def refresh_gaps(self) -> None:
        """Bring the open gaps up to the read models: in full when due, else the gaps of
        the customers touched since (folded into one list once there are many)."""
        at = fresh(self.engine, GAP_MODELS)  # before: the gaps include at least this
        current = self._gaps
        full = current is None or time.monotonic() - self._full_at >= \
            self.settings.gaps_full_seconds
        changed = None
        if not full and current is not None and at.position > current.fresh.position:
            changed = self.engine.audit.changed(current.fresh.position, at.position)
            full = changed.campaigns
        if full:
            with self._lock:
                self._renewed = set()
            self._full_at = time.monotonic()
            ranked, now = self._compute(None)
            with self._lock:  # renewed meanwhile by an action: theirs are newer
                renewed, self._renewed = self._renewed, set()
                self._gaps = OpenGaps.of(ranked, at, now)
            if renewed:
                self._patch(renewed, None)
            log.debug("console.gaps_computed", gaps=len(ranked), position=at.position)
        elif changed is not None:
            with self._lock:  # those an action renewed since: not again
                done = {c for c, p in self._renewed_at.items() if p >= at.position}
                self._renewed_at = {c: p for c, p in self._renewed_at.items()
                                    if p > at.position}
            self._patch(changed.customers - done, at)
        self._fold()

    def _fold(self) -> None:
        """Once many customers were renewed: one list again (the merge on each read grows
        with them)."""
        current = self._gaps
        if current is None or len(current.renewed) < FOLD_AFTER:
            return
        folded = current.folded()
        with self._lock:  # renewals made meanwhile stay renewals
            now = self._gaps
            assert now is not None
            later = {c: pairs for c, pairs in now.renewed.items()
                     if current.renewed.get(c) is not pairs}
            self._gaps = folded.with_renewed(later, now.fresh, now.at)

    def renew_customer(self, customer: str) -> None:
        """After this process wrote for ``customer`` (and the read models include it): its
        gaps now, so the next page shows the write's effect."""
        customer = queries.customer_stage(read_models(self.engine), customer,
                                          catch_up=False)["customer"]  # as stored
        position = fresh(self.engine, GAP_MODELS).position  # its gaps include at least this
        with self._lock:
            self._renewed.add(customer)
            self._renewed_at[customer] = position
        if self._gaps is not None:
            self._patch({customer}, None)

    def _patch(self, customers: set[str] | frozenset[str], at: Freshness | None) -> None:
        """The open gaps with those of ``customers`` computed again (``at``: the freshness
        the result then has; None: unchanged)."""
        ranked, now = self._compute(sorted(customers))
        gaps: dict[str, list[Ranked]] = {c: [] for c in customers}
        for pair in ranked:
            gaps.setdefault(pair[1].customer, []).append(pair)
        with self._lock:
            current = self._gaps
            assert current is not None
            self._gaps = current.with_renewed(gaps, current.fresh if at is None else at,
                                              current.at if at is None else now)

    def refresh_periodic(self) -> None:
        """Recompute each periodic view that is due and whose read models moved."""
        position = fresh(self.engine, self.engine.reader.projections.names).position
        for name, view in self._periodic.items():
            if view.value is not None and (position == view.position or time.monotonic()
                                           - view.computed < view.seconds):
                continue
            started = time.monotonic()
            with self.engine.projections.reading():
                view.value = view.compute(self.engine)
            view.position, view.computed = position, time.monotonic()
            log.debug("console.view_computed", view=name, seconds=round(
                view.computed - started, 3))

    # ------------------------------------------------------------------ threads

    def start(self) -> None:
        """Two threads: the open gaps (every ``views_seconds``), the periodic views (a slow
        one does not hold the gaps up)."""
        gaps_ready, periodic_ready = threading.Event(), threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(self.refresh_gaps, gaps_ready),
                             name="lifecycle-views-gaps", daemon=True),
            threading.Thread(target=self._run, args=(self.refresh_periodic, periodic_ready),
                             name="lifecycle-views-periodic", daemon=True)]
        self._ready = (gaps_ready, periodic_ready)
        for thread in self._threads:
            thread.start()

    def wait_ready(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until every view was computed (or failed)
        once; whether they were."""
        deadline = time.monotonic() + timeout
        return all(event.wait(max(0.0, deadline - time.monotonic())) for event in self._ready)

    def _run(self, refresh: Callable[[], None], ready: threading.Event) -> None:
        while not self._stop.is_set():
            try:
                refresh()
                ready.set()
                self._stop.wait(self.settings.views_seconds)
            except Exception as exc:  # the pages go on with the views they have
                ready.set()
                text = str(exc) if isinstance(exc, LifecycleError) else type(exc).__name__
                log.error("console.views_failed", error=text, retry_in_s=RETRY_AFTER)
                self._stop.wait(RETRY_AFTER)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        if self._own is not None and self._own is not self.console_engine.reader:
            self._own.close()


def aged(f: Freshness, head: int | None = None) -> Freshness:
    """``f`` with its age counted to now (and, given the log's ``head``, how far behind)."""
    age = None if f.recorded_at is None else \
        round(max(0.0, (datetime.now(UTC) - f.recorded_at).total_seconds()), 3)
    if head is None:
        return replace(f, age_seconds=age)
    return replace(f, age_seconds=age, head=head, behind=max(0, head - f.position))
