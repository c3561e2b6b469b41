"""current_stage: per customer the stage, since when, owner, owning team, paying, regressions.

Counts per stage are a ``GROUP BY stage`` over this table (``lifecycle-es stage``).
"""

from __future__ import annotations

from lifecycle_es.domain import Customer, Money
from lifecycle_es.projection import Column, Projection, Table, Tables, on


class CurrentStage(Projection):
    name = "current_stage"
    version = 1
    rebuild_cost = 0.5  # relative, for rebuild --jobs: a row per customer
    replay_by_aggregate = True  # handlers touch only rows of the event's own aggregate
    description = "per customer: stage, since, owner, owning team, paying, regressions"
    tables = (
        Table(
            "current_stage",
            key=("customer",),
            columns={
                "customer": "text",
                "name": Column("text", personal=True),  # blanked on erasure
                "segment": "text",
                "stage": "text",
                "since": "timestamp",
                "stage_team": "text",
                "owner": "text",
                "owner_team": "text",
                "paying": "bool",
                "mrr": "int",
                "currency": "text",
                "regressions": "int",
                "registered_at": "timestamp",
                "last_event_at": "timestamp",
            },
            indexes=(("stage",), ("owner",)),
            doc={
                "customer": "external id of the customer",
                "name": "customer name (personal data)",
                "segment": "segment given at registration",
                "stage": "current stage, or 'churned'",
                "since": "business time the customer entered the stage",
                "stage_team": "team owning the stage in the stage model",
                "owner": "person owning the customer, NULL when unowned",
                "owner_team": "team of the owner",
                "paying": "has a purchase or win-back not followed by churn",
                "mrr": "current MRR in minor units",
                "currency": "ISO 4217 currency of the customer's money",
                "regressions": "number of backward stage moves",
                "registered_at": "business time of registration",
                "last_event_at": "business time of the latest event",
            },
        ),
    )

    def _set(self, db: Tables, e: Customer.Event, **changes: object) -> None:
        db["current_stage"].update(e.customer, last_event_at=e.occurred_at, **changes)

    def _team(self, stage: str) -> str:
        return self.model.stage(stage).team if self.model.has_stage(stage) else ""

    @on(Customer.Registered)
    def registered(self, e: Customer.Registered, db: Tables) -> None:
        db["current_stage"].put({
            "customer": e.customer, "name": e.name, "segment": e.segment, "stage": e.stage,
            "since": e.occurred_at, "stage_team": self._team(e.stage), "owner": None,
            "owner_team": None, "paying": False, "mrr": 0, "currency": None,
            "regressions": 0, "registered_at": e.occurred_at, "last_event_at": e.occurred_at,
        })

    @on(Customer.StageChanged)
    def moved(self, e: Customer.StageChanged, db: Tables) -> None:
        row = db["current_stage"].get(e.customer)
        if row is not None:
            self._set(db, e, stage=e.to_stage, since=e.occurred_at,
                      stage_team=self._team(e.to_stage),
                      regressions=row["regressions"] + int(e.regression))

    @on(Customer.OwnerAssigned)
    def owner_assigned(self, e: Customer.OwnerAssigned, db: Tables) -> None:
        self._set(db, e, owner=e.owner, owner_team=e.team)

    @on(Customer.OwnerReleased)
    def owner_released(self, e: Customer.OwnerReleased, db: Tables) -> None:
        self._set(db, e, owner=None, owner_team=None)

    @on(Customer.HandoverAccepted)
    def handover_accepted(self, e: Customer.HandoverAccepted, db: Tables) -> None:
        self._set(db, e, owner=e.actor, owner_team=e.team)

    def _money(self, db: Tables, e: Customer.Event, **changes: object) -> None:
        """Set the row's money from the event's money fold (``Customer.Event.money``)."""
        row = db["current_stage"].get(e.customer)
        if row is not None:
            m = e.money(Money(row["paying"], row["mrr"], row["currency"]))
            self._set(db, e, paying=m.paying, mrr=m.mrr, currency=m.currency, **changes)

    @on(Customer.Purchased, Customer.PaymentReceived, Customer.Renewed, Customer.Expanded,
        Customer.Contracted)
    def money_changed(self, e: Customer.Event, db: Tables) -> None:
        self._money(db, e)

    @on(Customer.Churned)
    def churned(self, e: Customer.Churned, db: Tables) -> None:
        self._money(db, e, stage="churned", since=e.occurred_at,
                    stage_team=self._team("churned"))

    @on(Customer.WonBack)
    def won_back(self, e: Customer.WonBack, db: Tables) -> None:
        self._money(db, e, stage=e.stage, since=e.occurred_at, stage_team=self._team(e.stage))


    @on(Customer.Touchpoint, Customer.HandoverSent, Customer.HandoverRejected,
        Customer.NpsAnswered, Customer.CsatAnswered, Customer.CheckedIn,
        Customer.AdvocacyRequested, Customer.AdvocacyGiven)
    def touched(self, e: Customer.Event, db: Tables) -> None:
        self._set(db, e)
