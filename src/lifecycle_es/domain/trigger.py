"""A lean ``trigger_event`` for our aggregates: the library's contract, less of its overhead.

``eventsourcing``'s ``Aggregate.trigger_event`` copies the keywords, builds the event through
the frozen dataclass ``__init__`` (one ``object.__setattr__`` per field, then a
``__post_init__``), then ``mutate`` re-checks the id and version it was just given and sets
both through properties. Every event of a bulk import went through that (about a third of the
domain time). :func:`emit` does the same things directly:

- the event gets the aggregate's id, the next version and a timestamp (``now()``, the
  library's clock, unless one is given) and exactly the event class's fields, in the
  dataclass's field order (so stored JSON is byte-for-byte what ``__init__`` produced);
  a missing or unknown field raises the dataclass's own ``TypeError``;
- the event's ``apply`` folds it into the aggregate (the domain's own code, unchanged); only
  then are the aggregate's version and ``modified_on`` advanced and the event queued, so a
  failing ``apply`` leaves the aggregate's version and pending events as they were.

The instance is built like the codec builds events read back from the store
(``object.__new__`` plus ``__dict__``): the same frozen dataclass, equal to one built by
``__init__``. Both the one-command API and bulk imports use it.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any, cast

from eventsourcing.domain import TZINFO, Aggregate

#: event class -> its dataclass field names in order (None: it overrides ``mutate``)
_FIELDS: dict[type, tuple[str, ...] | None] = {}


def now() -> datetime:
    """The recording time of a new event: the library's clock (``TZINFO``, UTC by default)."""
    return datetime.now(TZINFO)


def _fields(event_class: type) -> tuple[str, ...] | None:
    if event_class.mutate is not Aggregate.Event.mutate:  # type: ignore[attr-defined]
        fields = None
    else:
        fields = tuple(f.name for f in dataclasses.fields(event_class))
    _FIELDS[event_class] = fields
    return fields


def _in_field_order(event_class: type, names: tuple[str, ...],
                    state: dict[str, Any]) -> dict[str, Any]:
    """``state`` reordered as the dataclass orders its fields, or the dataclass's TypeError."""
    if len(state) == len(names) and state.keys() >= set(names):
        return {n: state[n] for n in names}
    try:
        event_class(**state)  # raises the dataclass's TypeError naming the field
    except TypeError as exc:
        raise TypeError(f"Can't construct event {event_class}: {exc}") from None
    raise AssertionError("unreachable: fields differ but __init__ accepted them")


def emit(aggregate: Aggregate, event_class: type[Any], state: dict[str, Any]) -> None:
    """Build the event whose fields are ``state`` (its ``originator_version`` the aggregate's
    next), apply it and queue it. ``event_class`` must not override ``mutate``."""
    try:
        names = _FIELDS[event_class]
    except KeyError:
        names = _fields(event_class)
    assert names is not None, f"{event_class} overrides mutate: use trigger()"
    if tuple(state) != names:  # one comparison checks the names and their order
        state = _in_field_order(event_class, names, state)
    event = object.__new__(event_class)
    object.__setattr__(event, "__dict__", state)
    event.apply(aggregate)
    aggregate._version = state["originator_version"]
    aggregate._modified_on = state["timestamp"]
    aggregate._pending_events.append(event)


def trigger(aggregate: Aggregate, event_class: type[Any], kwargs: dict[str, Any]) -> None:
    """Create the next event of ``aggregate`` from ``kwargs``, apply it and queue it."""
    try:
        names = _FIELDS[event_class]
    except KeyError:
        names = _fields(event_class)
    if names is None:  # an event class with its own mutate: the library's generic path
        Aggregate.trigger_event(aggregate, event_class, **kwargs)
        return
    emit(aggregate, event_class, {
        "originator_id": aggregate._id,
        "originator_version": aggregate._version + 1,
        "timestamp": kwargs.pop("timestamp", None) or now(),
        **kwargs,
    })


def take_pending(aggregate: Aggregate) -> list[Any]:
    """The aggregate's pending events, leaving none (``collect_events`` without its
    one-by-one ``pop(0)``)."""
    events: list[Any] = aggregate._pending_events
    aggregate._pending_events = []
    return events


class LeanTrigger:
    """Mixin of our aggregates (before ``Aggregate`` in the bases): :func:`trigger` as their
    ``trigger_event``, the library's contract built leaner."""

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        trigger(cast(Aggregate, self), event_class, kwargs)
