"""Fault isolation: a read model that cannot apply an event stops just before it (or passes
over it with ``skip_failing``) while the others go on.

A batch's rows are written in a savepoint; when a handler or the write fails, the batch is
applied again to that read model alone, halving a failing run of events until the event
that fails is found. What a read model reached, its failure and the events it skipped are
recorded in the batch's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.reading.projection.applier import Routes
from lifecycle_es.reading.projection.base import BoundHandler, Projection
from lifecycle_es.reading.projection.db import is_transient
from lifecycle_es.reading.projection.decoding import Undecodable, class_of
from lifecycle_es.reading.projection.failures import Failure, one_line
from lifecycle_es.reading.projection.machinery import Machinery
from lifecycle_es.reading.projection.personal_text import personal_hider
from lifecycle_es.reading.projection.writer import Tables

log = get_logger("lifecycle_es.projection")

#: (position, event, handlers of one read model) — what a failing batch is retried with
_Item = tuple[int, Any, list[BoundHandler]]


class Isolation:
    """Writes one read model's share of a batch, finding the event it fails on."""

    def __init__(self, m: Machinery) -> None:
        self.m = m

    def settle(self, p: Projection, t: Tables, batch: Sequence[tuple[int, Any]],
               claimed: int, routes: Routes, broken: bool, skip: bool,
               bounded: bool) -> tuple[Failure | None, list[Failure]]:
        """Write the batch's rows of ``p`` (in a savepoint); when a handler (``broken``) or
        the write failed, apply the batch again to ``p`` alone to find the event.

        Returns the failure ``p`` stopped at (its rows hold every event before it), or
        None, and the failures passed over (``skip``).
        """
        if not broken:
            try:
                with self.m.read.savepoint():
                    t.flush(bounded)
                return None, []
            except Exception as exc:
                if is_transient(exc):
                    raise
        t.discard()
        if not bounded:  # phase one: retried rows are upserts, which need the key
            self.create_keys(t)
        items: list[_Item] = []
        for position, event in batch:
            if position > claimed:
                cls = class_of(event)
                handlers = [h for tt, h in routes.of(position, cls) if tt is t]
                if handlers:
                    items.append((position, event, handlers))
        return self._isolate(p, t, items, skip, bounded)

    def create_keys(self, tables: Tables) -> None:
        """The primary keys of a phase-one shadow. Two rows with one key mean handlers
        wrote rows of another aggregate than the event's."""
        for rows in tables.all():
            try:
                with self.m.read.savepoint():
                    self.m.read.create_key(rows.table, rows.physical, str(tables.build))
            except Exception as exc:
                if is_transient(exc):
                    raise
                raise LifecycleError(
                    f"table {rows.table.name}: two rows with the same key "
                    f"({', '.join(rows.table.key)}) after a replay by aggregate: a handler "
                    "writes rows of another aggregate than its event's; set "
                    f"replay_by_aggregate = False on its read model ({one_line(exc)})"
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
                with self.m.read.savepoint():
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
                failure = _failure(p, t, chunk[0][0], chunk[0][1], exc)
                if not skip:
                    return failure, skipped
                skipped.append(failure)
                chunk = chunk[:1]
            items = items[len(chunk):]
            size = len(items)
        return None, skipped

    def record(self, p: Projection, t: Tables, column: str, reached: Any,
               failure: Failure | None, skipped: list[Failure],
               failures: dict[str, Failure]) -> None:
        """Store how far ``p`` got (``reached``, unless it stopped before a failing event),
        its failure and the events it passed over, in the batch's transaction."""
        live = column == "position"
        if failure is not None:
            failures[p.name] = failure
            if column != "shadow_cursor":  # phase one keeps the cursor of the last batch
                reached = failure.position - 1
            if failure != t.stored_failure:
                log.error("projection.failed", rebuild=not live, **asdict(failure))
        self.m.state.record(p.name, column, reached, failure)
        t.stored_failure = failure
        if column != "shadow_cursor":
            t.seen = reached
        for f in skipped:
            log.warning("projection.skipped_event", rebuild=not live, **asdict(f))
            self.m.state.skipped(p.name, t.build or "", f)


def _failure(p: Projection, t: Tables, position: int, event: Any,
             exc: BaseException) -> Failure:
    undecodable = type(event) is Undecodable
    cls = class_of(event)
    event_type = ("unknown event type" if cls is Undecodable
                  else getattr(cls, "TYPE", "") or cls.__name__)
    error = one_line(exc, hide=personal_hider(event))  # erasure must reach failures
    if undecodable:
        error = f"cannot decode the stored event: {error}"
    previous = t.stored_failure
    at = (previous.at if isinstance(previous, Failure) and previous.position == position
          else datetime.now(UTC).isoformat(timespec="seconds"))
    return Failure(p.name, position, event_type, getattr(event, "customer", None), error, at)
