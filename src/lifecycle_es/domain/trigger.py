"""A lean ``trigger_event`` for our aggregates: the library's contract, less of its overhead.

``eventsourcing``'s ``Aggregate.trigger_event`` copies the keywords, builds the event through
the frozen dataclass ``__init__`` (one ``object.__setattr__`` per field, then a
``__post_init__``), then ``mutate`` re-checks the id and version it was just given and sets
both through properties. Every event of a bulk import went through that (about a third of the
domain time). :func:`trigger` does the same things directly:

- the event gets the aggregate's id, the next version and a timestamp (the library's
  ``create_timestamp`` unless one is given) and exactly the event class's fields, in the
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
from typing import Any

from eventsourcing.domain import Aggregate, datetime_now_with_tzinfo

Fields = tuple[tuple[str, ...], frozenset[str]] | None
_FIELDS: dict[type, Fields] = {}


def _fields(event_class: type) -> Fields:
    """The dataclass fields of ``event_class`` (in order, as a set); None if it overrides
    ``mutate``."""
    if event_class.mutate is not Aggregate.Event.mutate:  # type: ignore[attr-defined]
        return None
    names = tuple(f.name for f in dataclasses.fields(event_class))
    return names, frozenset(names)


def trigger(aggregate: Aggregate, event_class: type[Any], kwargs: dict[str, Any]) -> None:
    """Create the next event of ``aggregate`` from ``kwargs``, apply it and queue it."""
    try:
        fields = _FIELDS[event_class]
    except KeyError:
        fields = _FIELDS[event_class] = _fields(event_class)
    if fields is None:  # an event class with its own mutate: the library's generic path
        Aggregate.trigger_event(aggregate, event_class, **kwargs)
        return
    version = aggregate._version + 1
    kwargs["originator_id"] = aggregate._id
    kwargs["originator_version"] = version
    if kwargs.get("timestamp") is None:
        kwargs["timestamp"] = datetime_now_with_tzinfo()
    names, name_set = fields
    if len(kwargs) != len(names) or not kwargs.keys() >= name_set:
        try:
            event_class(**kwargs)  # raises the dataclass's TypeError naming the field
        except TypeError as exc:
            raise TypeError(f"Can't construct event {event_class}: {exc}") from None
        raise AssertionError("unreachable: fields differ but __init__ accepted them")
    state = {n: kwargs[n] for n in names}
    event = object.__new__(event_class)
    object.__setattr__(event, "__dict__", state)
    event.apply(aggregate)
    aggregate._version = version
    aggregate._modified_on = state["timestamp"]
    aggregate._pending_events.append(event)
