"""Audit trail queries: a customer's timeline, its state at a point in time, filtered events.

``timeline`` and ``state`` read the customer's own events (cost: that customer's events);
``events`` reads the ``audit_index`` read model (caught up first) with keyset pagination.
Every filter value is bound as a query parameter, never spliced into SQL.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from lifecycle_es.domain import EVENT_TYPES, Customer
from lifecycle_es.domain.ids import customer_id, normalise_id, parse_id
from lifecycle_es.errors import FieldProblem, InvalidInput, LifecycleError, UnknownCustomer
from lifecycle_es.limits import checked, stripped_text
from lifecycle_es.reading.audit.records import (
    AuditEvent,
    Changed,
    EventsPage,
    OpenHandover,
    PointInTimeState,
    TimelineEntry,
    fields_of,
    parse_time,
    summary,
)
from lifecycle_es.reading.projection.queries import customer_stage, handovers
from lifecycle_es.reading.source import customer_history

if TYPE_CHECKING:
    from lifecycle_es.reading.source import Source

INDEX = "audit_index"
VOIDED = "audit_voided"
MAX_LIMIT = 10_000
Time = str | date | datetime
Order = Literal["newest", "oldest"]
Clock = Literal["occurred", "recorded"]
_CURSOR = re.compile(r"^[0-9]{1,18}$")
_MAX_POSITION = 2**63 - 1  # a position is a 64-bit integer in every store


class NotYetKnown(LifecycleError, LookupError):
    """The customer had no (registration) event at the point in time asked."""


def _bad(name: str, value: Any, reason: str) -> InvalidInput:
    return InvalidInput([FieldProblem(name, value, reason)], "audit filter")


class Audit:
    """Audit queries on one engine (``engine.audit``)."""

    def __init__(self, engine: Source) -> None:
        self.engine = engine

    # ---------------------------------------------------------------- timeline

    def timeline(self, customer: str) -> list[TimelineEntry]:
        """Every event of ``customer`` in version order, voided ones marked and linked."""
        customer = parse_id("customer", customer, "audit filter")
        events = customer_history(self.engine, customer)
        voided_by = {e.voided_version: e.originator_version
                     for e in events if isinstance(e, Customer.EventVoided)}
        return [
            TimelineEntry(
                customer=customer, version=e.originator_version, type=e.TYPE,
                occurred_at=e.occurred_at, recorded_at=e.timestamp, actor=e.actor,
                team=e.team, correlation_id=e.correlation_id, causation_id=e.causation_id,
                fields=fields_of(e), summary=summary(e),
                voided_by=voided_by.get(e.originator_version),
                voids=e.voided_version if isinstance(e, Customer.EventVoided) else None,
            )
            for e in events
        ]

    # ------------------------------------------------------------------- state

    def state(self, customer: str, *, as_of: Time | None = None,
              as_known_at: Time | None = None, version: int | None = None) -> PointInTimeState:
        """The customer's state from the events selected by a point in time.

        ``as_of``: events that happened (business time ``occurred_at``) by then;
        ``as_known_at``: events the engine had recorded by then; ``version``: the first
        ``version`` events. They combine (all must hold). A void counts only if it is itself
        selected. Selected events are folded in version order with the domain's own fold.
        """
        customer = parse_id("customer", customer, "audit filter")
        events = customer_history(self.engine, customer)
        if version is not None and not 1 <= version <= len(events):
            raise _bad("version", version, f"customer {customer!r} has versions 1..{len(events)}")
        of = parse_time("as_of", as_of) if as_of is not None else None
        known = parse_time("as_known_at", as_known_at) if as_known_at is not None else None
        chosen = [
            e for e in events
            if (version is None or e.originator_version <= version)
            and (of is None or e.occurred_at <= of)
            and (known is None or e.timestamp <= known)
        ]
        if not chosen or not isinstance(chosen[0], Customer.Registered):
            when = ", ".join(f"{k}={v.isoformat()}" for k, v in
                             (("as_of", of), ("as_known_at", known)) if v is not None)
            first = events[0]
            raise NotYetKnown(
                f"customer={customer!r}: not registered at {when} (registered "
                f"occurred_at={first.occurred_at.isoformat()}, "
                f"recorded_at={first.timestamp.isoformat()})"
            )
        agg = _fold(chosen)
        s = agg.state
        model = self.engine.stage_model
        return PointInTimeState(
            customer=customer, stage=s.stage, stage_since=s.stage_since,
            stage_team=model.stage(s.stage).team if model.has_stage(s.stage) else None,
            owner=s.owner, owner_team=s.owner_team, paying=s.paying, mrr=s.mrr,
            currency=s.currency,
            open_handovers=[
                OpenHandover(h.handover_id, h.from_team, h.to_team, h.to_person, h.sent_at)
                for h in s.handovers.values() if h.status == "pending"
            ],
            last_nps=s.last_nps, last_nps_at=s.last_nps_at,
            events_applied=sum(1 for e in chosen if e.originator_version not in agg.voided
                               and not isinstance(e, Customer.EventVoided)),
            last_version=chosen[-1].originator_version,
            as_of=of, as_known_at=known, version=version,
        )

    # ------------------------------------------------------------------ events

    def events(
        self, *, customer: str | None = None, actor: str | None = None,
        team: str | None = None, types: Sequence[str] | None = None,
        since: Time | None = None, until: Time | None = None, clock: Clock = "occurred",
        correlation_id: str | None = None, campaign: str | None = None, limit: int = 50,
        after: str | None = None, order: Order = "newest", before: Time | None = None,
    ) -> EventsPage:
        """A page of events matching every given filter, newest or oldest first.

        ``since``/``until`` bound (inclusively) the business time (``clock="occurred"``) or
        the recording time (``clock="recorded"``); ``before`` is an exclusive end (the rule
        of every other period: ``[since, before)``). Pass the returned ``next_cursor`` as
        ``after`` for the next page.
        """
        where: list[str] = []
        params: list[Any] = []
        read = self.engine.projections.read

        def equal(column: str, value: Any) -> None:
            where.append(f"{column} = ?")
            params.append(value)

        if customer is not None:
            customer = parse_id("customer", customer, "audit filter")
            if not list(self.engine.event_log.stored(customer_id(customer), limit=1)):
                raise UnknownCustomer(customer)
            equal("customer", customer)
        for column, value, check in (  # normalised as the commands' fields are
                ("actor", actor, stripped_text), ("team", team, stripped_text),
                ("campaign", campaign, normalise_id), ("correlation_id", correlation_id,
                                                       normalise_id)):
            if value is not None:
                equal(column, checked(column, value, check, "audit filter"))
        if types:
            unknown = [t for t in types if t not in EVENT_TYPES]
            if unknown:
                raise _bad("type", unknown[0], f"unknown event type (known: "
                                               f"{', '.join(sorted(EVENT_TYPES))})")
            where.append(f"type IN ({', '.join('?' * len(types))})")
            params.extend(types)
        if clock not in ("occurred", "recorded"):
            raise _bad("clock", clock, "use 'occurred' (business time) or 'recorded'")
        time_col = f"{clock}_at"
        for bound, name, op in ((since, "since", ">="), (until, "until", "<="),
                                (before, "before", "<")):
            if bound is not None:
                where.append(f"{time_col} {op} ?")
                params.append(read.encode("timestamp", parse_time(name, bound)))
        if order not in ("newest", "oldest"):
            raise _bad("order", order, "use 'newest' or 'oldest'")
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise _bad("limit", limit, f"must be an integer from 1 to {MAX_LIMIT}")
        if after is not None:
            if not _CURSOR.match(str(after)):
                raise _bad("after", after, "not a cursor returned by a previous page")
            where.append("position < ?" if order == "newest" else "position > ?")
            params.append(int(after))

        self.engine.projections.ensure_current([INDEX])
        table = self.engine.projections.projections[INDEX].tables[0]
        cols = list(table.columns)
        page = (f"SELECT {', '.join(cols)} FROM {INDEX}"
                f"{' WHERE ' + ' AND '.join(where) if where else ''} "
                f"ORDER BY position {'DESC' if order == 'newest' else 'ASC'} LIMIT ?")
        sql = (f"SELECT p.*, v.voided_by FROM ({page}) p LEFT JOIN {VOIDED} v "
               f"ON v.customer = p.customer AND v.version = p.version "
               f"ORDER BY p.position {'DESC' if order == 'newest' else 'ASC'}")
        raw = read.fetchall(sql, (*params, limit + 1))
        rows = [
            AuditEvent(**{c: read.decode(table.columns[c], v)
                          for c, v in zip(cols, r, strict=False)}, voided_by=r[-1])
            for r in raw[:limit]
        ]
        more = len(raw) > limit
        return EventsPage(rows, str(rows[-1].position) if more else None)


    # ----------------------------------------------------------------- changes

    def changed(self, after: int, upto: int) -> Changed:
        """What the events at positions ``after`` < position <= ``upto`` touched: their
        customers, and whether any of them is a campaign's event (an indexed range of the
        ``audit_index``, read as it is: the caller knows it includes ``upto``)."""
        for name, value in (("upto", upto), ("after", after)):
            if isinstance(value, bool) or not isinstance(value, int) \
                    or not 0 <= value <= _MAX_POSITION:
                raise _bad(name, value, f"must be a position from 0 to {_MAX_POSITION}")
        if after > upto:
            raise _bad("after", after, f"must not be after upto ({upto})")
        rows = self.engine.projections.read.fetchall(
            f"SELECT DISTINCT aggregate, customer FROM {INDEX} "
            "WHERE position > ? AND position <= ?", (after, upto))
        return Changed(customers=frozenset(c for a, c in rows if a == "customer" and c),
                       campaigns=any(a == "campaign" for a, _ in rows))

    # ------------------------------------------------------------------ export

    def export(self, customer: str) -> dict[str, Any]:
        """The right of access: everything the store holds about ``customer``, personal
        fields decrypted (``[erased]`` after an erasure): every event with all its fields,
        and its rows of the read models ``current_stage`` and ``handover_history``."""
        timeline = self.timeline(customer)
        key = timeline[0].customer
        pm = self.engine.projections
        return {
            "customer": key,
            "events": [asdict(e) for e in timeline],
            "read_models": {
                "current_stage": customer_stage(pm, key, catch_up=pm.queries_catch_up),
                "handover_history": handovers(pm, customer=key,
                                              catch_up=pm.queries_catch_up),
            },
        }


def _fold(events: list[Customer.Event]) -> Customer:
    """The Customer ``events`` (in version order, from the registration) fold into, by the
    domain's own replay."""
    agg = Customer.replay(None, events)
    assert agg is not None  # no snapshot: nothing to invalidate
    return agg
