"""Typed answers of the audit queries, and the helpers that describe an event.

Every record carries both times: ``occurred_at`` (business time, as the caller said) and
``recorded_at`` (the time the engine recorded the event: the event's ``timestamp``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date, datetime
from typing import Any

import orjson

from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.limits import utc_instant

#: attributes every event has that are not its own fields
META_FIELDS = frozenset({
    "originator_id", "originator_version", "originator_topic", "timestamp", "customer",
    "campaign", "occurred_at", "actor", "team", "correlation_id", "causation_id",
})
SUMMARY_WIDTH = 160
#: the fields of a timeline entry as ``audit customer ID --json`` and the API give them
TIMELINE_COLUMNS = ("version", "type", "occurred_at", "recorded_at", "actor", "team",
                    "correlation_id", "causation_id", "fields", "voided_by", "voids")


def fields_of(event: Any) -> dict[str, Any]:
    """The event's own fields (what happened), without the metadata every event carries."""
    return {k: v for k, v in vars(event).items() if k not in META_FIELDS}


def summary(event: Any) -> str:
    """One line describing the event from its non-personal fields (personal ones omitted)."""
    personal = set(getattr(event, "PERSONAL", ()))
    parts = []
    for key, value in fields_of(event).items():
        if key in personal or value is None:
            continue
        if isinstance(value, datetime | date):
            text = value.isoformat()
        elif isinstance(value, dict | list):
            text = orjson.dumps(value, default=str).decode()
        else:
            text = str(value)
        parts.append(f"{key}={text}")
    line = ", ".join(parts)
    return line if len(line) <= SUMMARY_WIDTH else line[: SUMMARY_WIDTH - 1] + "…"


def parse_time(name: str, value: str | date | datetime) -> datetime:
    """An ISO 8601 date or datetime as an aware UTC datetime.

    A date means midnight UTC at the start of that day; a datetime without an offset is UTC.
    """
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            parsed = (datetime.fromisoformat(text) if len(text) > 10
                      else datetime.combine(date.fromisoformat(text), datetime.min.time()))
        except ValueError:
            raise InvalidInput(
                [FieldProblem(name, value, "not an ISO 8601 date or datetime "
                                           "(e.g. 2024-03-01 or 2024-03-01T09:30:00+01:00)")],
                "audit filter",
            ) from None
    return utc_instant(name, parsed, "audit filter")  # UTC, in the supported range


def export_json(document: Any) -> bytes:
    """A customer's export (``Audit.export``) as indented JSON, times in ISO 8601."""
    return orjson.dumps(document, option=orjson.OPT_INDENT_2, default=str)


def as_row(record: Any) -> dict[str, Any]:
    """A record as a plain dict (for output)."""
    return asdict(record)


@dataclass(frozen=True)
class TimelineEntry:
    """One event of a customer's timeline."""

    customer: str
    version: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    actor: str
    team: str
    correlation_id: str | None
    causation_id: str | None
    fields: dict[str, Any]
    summary: str
    #: version of the event that voided this one, else None
    voided_by: int | None = None
    #: for an ``event_voided`` event: the version it voids
    voids: int | None = None

    @property
    def voided(self) -> bool:
        return self.voided_by is not None


@dataclass(frozen=True)
class AuditEvent:
    """One row of the audit index (any aggregate)."""

    position: int
    aggregate: str
    customer: str | None
    campaign: str | None
    version: int
    type: str
    actor: str
    team: str
    occurred_at: datetime
    recorded_at: datetime
    correlation_id: str | None
    causation_id: str | None
    summary: str
    voided_by: int | None


@dataclass(frozen=True)
class EventsPage:
    """A page of audit events and the cursor of the next page (None on the last page)."""

    events: list[AuditEvent]
    next_cursor: str | None


@dataclass(frozen=True)
class Changed:
    """What a range of the log touched (``engine.audit.changed(after, upto)``)."""

    customers: frozenset[str]
    campaigns: bool


@dataclass(frozen=True)
class OpenHandover:
    """A handover sent and neither accepted nor rejected (at the point in time asked)."""

    handover_id: str
    from_team: str
    to_team: str
    to_person: str | None
    sent_at: datetime


@dataclass(frozen=True)
class PointInTimeState:
    """A customer's state folded from the events selected by a point in time."""

    customer: str
    stage: str
    stage_since: datetime | None
    stage_team: str | None
    owner: str | None
    owner_team: str | None
    paying: bool
    mrr: int
    currency: str | None
    open_handovers: list[OpenHandover] = field(default_factory=list)
    last_nps: int | None = None
    last_nps_at: datetime | None = None
    #: events folded (voided ones and voids excluded) and the highest version considered
    events_applied: int = 0
    last_version: int = 0
    as_of: datetime | None = None
    as_known_at: datetime | None = None
    version: int | None = None
