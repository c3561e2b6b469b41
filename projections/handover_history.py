"""handover_history: every handover with its document, teams, people, status and latency.

Pending handovers older than an SLA: ``status = 'pending' AND sent_at < now - SLA``
(``lifecycle-es handovers --pending --older-than 2d``).
"""

from __future__ import annotations

from lifecycle_es.domain import Customer
from lifecycle_es.projection import Column, Projection, Table, Tables, on


class HandoverHistory(Projection):
    name = "handover_history"
    version = 1
    rebuild_cost = 0.3  # relative, for rebuild --jobs: a row per handover
    replay_by_aggregate = True  # handlers touch only rows of the event's own aggregate
    description = "every handover: document, from/to team and person, status, latency"
    tables = (
        Table(
            "handover_history",
            key=("customer", "handover_id"),
            columns={
                "customer": "text",
                "handover_id": "text",
                "from_team": "text",
                "to_team": "text",
                "from_person": "text",
                "to_person": "text",
                "document": Column("json", personal=True),  # blanked on erasure
                "sent_at": "timestamp",
                "status": "text",
                "decided_by": "text",
                "decided_at": "timestamp",
                "latency_seconds": "real",
                "reject_reason": Column("text", personal=True),
            },
            indexes=(("status", "sent_at"), ("to_team",)),
            doc={
                "customer": "external id of the customer",
                "handover_id": "the caller's handover id (unique per customer)",
                "from_team": "sending team",
                "to_team": "receiving team",
                "from_person": "who sent it (the event's actor)",
                "to_person": "intended receiver, NULL when sent to the team",
                "document": "handover document: goals, features_of_interest, features_known, "
                            "risks, notes (personal data)",
                "sent_at": "business time it was sent",
                "status": "pending | accepted | rejected",
                "decided_by": "who accepted or rejected it",
                "decided_at": "business time of the decision",
                "latency_seconds": "decided_at - sent_at, in seconds",
                "reject_reason": "reason given on rejection (personal data)",
            },
        ),
    )

    @on(Customer.HandoverSent)
    def sent(self, e: Customer.HandoverSent, db: Tables) -> None:
        db["handover_history"].put({
            "customer": e.customer, "handover_id": e.handover_id, "from_team": e.from_team,
            "to_team": e.to_team, "from_person": e.actor, "to_person": e.to_person,
            "document": e.document, "sent_at": e.occurred_at, "status": "pending",
            "decided_by": None, "decided_at": None, "latency_seconds": None,
            "reject_reason": None,
        })

    @on(Customer.HandoverAccepted, Customer.HandoverRejected)
    def decided(self, e: Customer.HandoverAccepted | Customer.HandoverRejected,
                db: Tables) -> None:
        rows = db["handover_history"]
        row = rows.get(e.customer, e.handover_id)
        if row is None:
            return
        rejected = isinstance(e, Customer.HandoverRejected)
        reason = e.reason if isinstance(e, Customer.HandoverRejected) else None
        rows.update(
            e.customer, e.handover_id,
            status="rejected" if rejected else "accepted",
            decided_by=e.actor, decided_at=e.occurred_at,
            latency_seconds=(e.occurred_at - row["sent_at"]).total_seconds(),
            reject_reason=reason,
        )
