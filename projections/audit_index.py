"""audit_index: one row per event of the log, for ``lifecycle-es audit events``.

Customer, campaign, user and API token events all get a row; ``aggregate`` says which (a user's
password hash and a token's hash are personal: never in the summary). The audit
trail shows what was recorded, not only what still counts. A voided event's row stays; the
void is kept in ``audit_voided`` (customer, voided version -> version of the void), which the
queries join to mark it.
"""

from __future__ import annotations

from typing import Any

from lifecycle_es.domain import (
    CAMPAIGN_EVENTS,
    CUSTOMER_EVENTS,
    TOKEN_EVENTS,
    USER_EVENTS,
    ApiToken,
    Campaign,
    Customer,
    User,
)
from lifecycle_es.projection import Projection, Table, Tables, on, summary


class AuditIndex(Projection):
    name = "audit_index"
    version = 3
    rebuild_cost = 5.0  # relative, for rebuild --jobs: a row per event, nine indexes
    replay_by_aggregate = True  # handlers touch only rows of the event's own aggregate
    description = "one row per event: who, when (business and recorded time), what"
    refold_on_void = False  # a void marks the voided row; nothing is re-folded
    tables = (
        Table(
            "audit_index",
            key=("position",),
            partition=None,
            columns={
                "position": "int",
                "aggregate": "text",
                "customer": "text",
                "campaign": "text",
                "version": "int",
                "type": "text",
                "actor": "text",
                "team": "text",
                "occurred_at": "timestamp",
                "recorded_at": "timestamp",
                "correlation_id": "text",
                "causation_id": "text",
                "summary": "text",
            },
            indexes=(
                ("customer", "version"),
                ("campaign", "position"),
                ("actor", "position"),
                ("actor", "occurred_at"),
                ("team", "position"),
                ("type", "position"),
                ("correlation_id", "position"),
                ("occurred_at",),
                ("recorded_at",),
            ),
            doc={
                "position": "the event's position in the log (notification id), unique",
                "aggregate": "'customer', 'campaign', 'user' (a console user) or 'token' "
                             "(an API token)",
                "customer": "external id of the customer (NULL for campaign events)",
                "campaign": "campaign id: the campaign's own events, and touchpoints citing it",
                "version": "the event's version within its customer or campaign (1 = first)",
                "type": "event type name (e.g. stage_changed)",
                "actor": "who did it",
                "team": "the team the actor acted for",
                "occurred_at": "business time: when it happened, as the caller said",
                "recorded_at": "the time the engine recorded the event",
                "correlation_id": "the caller's correlation id, if any",
                "causation_id": "the caller's causation id, if any",
                "summary": "one line: the event's non-personal fields",
            },
        ),
        Table(
            "audit_voided",
            key=("customer", "version"),
            partition=None,
            columns={"customer": "text", "version": "int", "voided_by": "int"},
            doc={
                "customer": "external id of the customer",
                "version": "version of the voided event",
                "voided_by": "version of the event_voided event that voided it",
            },
        ),
    )

    def _row(self, e: Any, db: Tables, aggregate: str, customer: str | None,
             campaign: str | None) -> dict[str, Any]:
        return {
            "position": db.position, "aggregate": aggregate, "customer": customer,
            "campaign": campaign, "version": e.originator_version, "type": e.TYPE,
            "actor": e.actor, "team": e.team, "occurred_at": e.occurred_at,
            "recorded_at": e.timestamp, "correlation_id": e.correlation_id,
            "causation_id": e.causation_id, "summary": summary(e),
        }

    @on(*CUSTOMER_EVENTS.values())
    def customer_event(self, e: Customer.Event, db: Tables) -> None:
        cited = getattr(e, "campaign_id", None) if isinstance(e, Customer.Touchpoint) else None
        db["audit_index"].put(self._row(e, db, "customer", e.customer, cited))
        if isinstance(e, Customer.EventVoided):
            db["audit_voided"].put({"customer": e.customer, "version": e.voided_version,
                                    "voided_by": e.originator_version})

    @on(*CAMPAIGN_EVENTS.values())
    def campaign_event(self, e: Campaign.Event, db: Tables) -> None:
        db["audit_index"].put(self._row(e, db, "campaign", None, e.campaign))

    @on(*USER_EVENTS.values())
    def user_event(self, e: User.Event, db: Tables) -> None:
        db["audit_index"].put(self._row(e, db, "user", None, None))

    @on(*TOKEN_EVENTS.values())
    def token_event(self, e: ApiToken.Event, db: Tables) -> None:
        db["audit_index"].put(self._row(e, db, "token", None, None))
