"""A customer's state at one version, so loading it folds only the events after that version.

Through the ``eventsourcing`` library's snapshotting (its ``Snapshot`` event, snapshot store and
``take``/``mutate`` contract), with three differences the library's generic snapshot cannot know:

- **no personal data in clear**: the state's personal fields (``PERSONAL_STATE``) travel in the
  ``personal`` field, which the store seals under the customer's data key like an event's
  personal fields (an erased customer's snapshot holds none);
- **only the fold's result**: the state and the voids, not the object's in-memory helpers;
- **tied to the fold that made it**: ``fold`` is a fingerprint of the state's shape and of
  :data:`FOLD_VERSION`; a snapshot made by another fold is ignored (the customer is replayed
  from its events, and snapshotted again), so changing a fold never reads a stale state.
"""

from __future__ import annotations

import dataclasses
import hashlib
import typing
from datetime import date, datetime
from functools import cache
from typing import Any, ClassVar

from eventsourcing.domain import Snapshot
from eventsourcing.utils import get_topic

from lifecycle_es.domain.customer import Customer, CustomerState, Handover, Origin
from lifecycle_es.privacy import ERASED

#: bump when an event's ``fold`` changes what it folds (a snapshot made before is ignored)
FOLD_VERSION = 1

#: the fields of :class:`CustomerState` that hold personal data (folded from ``PERSONAL``
#: event fields)
PERSONAL_STATE = ("name",)


class CustomerSnapshot(Snapshot):
    """A customer's folded state at ``originator_version`` (``state``: non-personal fields
    and voids; ``personal``: the personal fields, sealed by the store)."""

    personal: dict[str, Any] | None
    fold: str

    PERSONAL: ClassVar[tuple[str, ...]] = ("personal",)
    #: the codec binds the sealed fields to ``<aggregate id>/snapshot/<version>``, so they
    #: cannot be swapped with an event's
    SEAL_CONTEXT: ClassVar[str] = "snapshot/"

    @classmethod
    def take(cls, aggregate: Any) -> CustomerSnapshot:
        """The snapshot of a customer (its current version and state)."""
        assert isinstance(aggregate, Customer)
        state = to_json(aggregate.state)
        erased = aggregate.state.erased_at is not None
        personal = None if erased else {n: state.pop(n) for n in PERSONAL_STATE}
        return cls(  # type: ignore[call-arg]  # the library's metaclass makes it a dataclass
            originator_id=aggregate.id, originator_version=aggregate.version,
            timestamp=cls.create_timestamp(), topic=get_topic(Customer),
            state={"customer": state, "voided": [[v, by] for v, by in aggregate.voided.items()],
                   "created_on": aggregate.created_on.isoformat(),
                   "modified_on": aggregate.modified_on.isoformat()},
            personal=personal, fold=fold_fingerprint(),
        )

    def mutate(self, _: Any) -> Customer:
        """The customer this snapshot holds (``origin`` at the snapshot's version)."""
        agg = object.__new__(Customer)
        agg.__base_init__(self.originator_id, self.originator_version,
                          datetime.fromisoformat(self.state["created_on"]))
        Customer.__init__(agg)
        agg._modified_on = datetime.fromisoformat(self.state["modified_on"])
        fields = dict(self.state["customer"])
        personal = self.personal or {}
        if not all(n in personal for n in PERSONAL_STATE):  # erased: placeholders
            personal = dict.fromkeys(PERSONAL_STATE, ERASED)
        fields.update(personal)
        agg.state = from_json(fields)
        agg.voided = {v: by for v, by in self.state["voided"]}
        agg.origin = Origin(self.originator_version, snapshot=self.originator_version)
        return agg


@cache
def fold_fingerprint() -> str:
    """A digest of :data:`FOLD_VERSION` and the shape of the state (field names and types):
    a snapshot is used only by the fold that made it."""
    shape: list[object] = [FOLD_VERSION]
    for cls in (CustomerState, Handover):
        hints = typing.get_type_hints(cls)
        shape.extend((f.name, str(hints[f.name])) for f in dataclasses.fields(cls))
    return hashlib.sha256(repr(shape).encode()).hexdigest()[:16]


def to_json(state: CustomerState) -> dict[str, Any]:
    """The state as JSON-ready values (dates and times as ISO 8601 text)."""
    out = {}
    for f in dataclasses.fields(state):
        value = getattr(state, f.name)
        if f.name == "handovers":
            value = [_plain(dataclasses.asdict(h)) for h in value.values()]
        out[f.name] = _iso(value)
    return out


def from_json(fields: dict[str, Any]) -> CustomerState:
    """The state :func:`to_json` wrote."""
    values = _revived(CustomerState, fields)
    values["handovers"] = {h["handover_id"]: Handover(**_revived(Handover, h))
                           for h in fields["handovers"]}
    return CustomerState(**values)


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, date) else value


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    return {k: _iso(v) for k, v in fields.items()}


@cache
def _temporal(cls: type) -> dict[str, type]:
    """The fields of a dataclass typed ``date`` or ``datetime`` (optional or not)."""
    out: dict[str, type] = {}
    for name, hint in typing.get_type_hints(cls).items():
        for t in (datetime, date):  # datetime first: it is a date
            if hint is t or t in typing.get_args(hint):
                out[name] = t
                break
    return out


def _revived(cls: type, fields: dict[str, Any]) -> dict[str, Any]:
    values = dict(fields)
    for name, t in _temporal(cls).items():
        if isinstance(values.get(name), str):
            values[name] = t.fromisoformat(values[name])  # type: ignore[attr-defined]
    return values
