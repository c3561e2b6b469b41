"""stage_history: every stay of every customer in every stage, and a per-stage summary.

``stage_stays`` has one row per stay (entered, exited — NULL while open), so time in stage is
exact for any past date: clip each stay to the date. ``stage_history`` summarises the stays of
a customer in one stage: first and last entered, last exited, entries, cumulative seconds of the
completed stays (add ``now - last_entered`` when ``in_stage``). ``stage_open`` points at each
customer's open stay. Stays follow the customer's events in version order: registration opens
the first stay; ``stage_changed``, ``churned`` and ``won_back`` close one and open the next.
"""

from __future__ import annotations

from datetime import datetime

from lifecycle_es.domain import Customer
from lifecycle_es.projection import Projection, Table, Tables, on

STAYS = Table(
    "stage_stays",
    key=("customer", "entered_version"),
    columns={
        "customer": "text",
        "entered_version": "int",
        "stage": "text",
        "entered_at": "timestamp",
        "exited_at": "timestamp",
        "seconds": "real",
    },
    indexes=(("stage", "entered_at"), ("stage", "exited_at")),
    doc={
        "customer": "external id of the customer",
        "entered_version": "version of the event that opened the stay",
        "stage": "stage name (or 'churned')",
        "entered_at": "business time the stay began",
        "exited_at": "business time the stay ended, NULL while open",
        "seconds": "exited_at - entered_at in seconds, NULL while open",
    },
)

SUMMARY = Table(
    "stage_history",
    key=("customer", "stage"),
    columns={
        "customer": "text",
        "stage": "text",
        "first_entered": "timestamp",
        "last_entered": "timestamp",
        "last_exited": "timestamp",
        "entries": "int",
        "cumulative_seconds": "real",
        "in_stage": "bool",
    },
    indexes=(("stage",),),
    doc={
        "customer": "external id of the customer",
        "stage": "stage name (or 'churned')",
        "first_entered": "first time the customer entered the stage",
        "last_entered": "latest time the customer entered the stage",
        "last_exited": "latest time the customer left the stage, NULL if never left",
        "entries": "number of stays (re-entries counted)",
        "cumulative_seconds": "total seconds of the completed stays",
        "in_stage": "the customer is in this stage now (open stay)",
    },
)

OPEN = Table(
    "stage_open",
    key=("customer",),
    columns={"customer": "text", "stage": "text", "entered_version": "int",
             "entered_at": "timestamp"},
    doc={"customer": "external id", "stage": "stage of the open stay",
         "entered_version": "key of the open stay in stage_stays",
         "entered_at": "when the open stay began"},
)


class StageHistory(Projection):
    name = "stage_history"
    version = 1
    rebuild_cost = 1.0  # relative, for rebuild --jobs: three tables
    replay_by_aggregate = True  # handlers touch only rows of the event's own aggregate
    description = "per customer and stage: stays, entries, first/last entered, time in stage"
    tables = (STAYS, SUMMARY, OPEN)

    def _leave(self, db: Tables, customer: str, at: datetime) -> None:
        cur = db["stage_open"].get(customer)
        if cur is None:
            return
        seconds = max(0.0, (at - cur["entered_at"]).total_seconds())
        db["stage_stays"].update(customer, cur["entered_version"], exited_at=at,
                                 seconds=seconds)
        row = db["stage_history"].get(customer, cur["stage"])
        if row is not None:
            db["stage_history"].update(
                customer, cur["stage"], last_exited=at, in_stage=False,
                cumulative_seconds=row["cumulative_seconds"] + seconds,
            )
        db["stage_open"].delete(customer)

    def _enter(self, db: Tables, e: Customer.Event, stage: str) -> None:
        self._leave(db, e.customer, e.occurred_at)
        at, version = e.occurred_at, e.originator_version
        db["stage_stays"].put({"customer": e.customer, "entered_version": version,
                               "stage": stage, "entered_at": at, "exited_at": None,
                               "seconds": None})
        db["stage_open"].put({"customer": e.customer, "stage": stage,
                              "entered_version": version, "entered_at": at})
        row = db["stage_history"].get(e.customer, stage)
        if row is None:
            db["stage_history"].put({
                "customer": e.customer, "stage": stage, "first_entered": at,
                "last_entered": at, "last_exited": None, "entries": 1,
                "cumulative_seconds": 0.0, "in_stage": True,
            })
        else:
            db["stage_history"].update(e.customer, stage, last_entered=at,
                                       entries=row["entries"] + 1, in_stage=True)

    @on(Customer.Registered)
    def registered(self, e: Customer.Registered, db: Tables) -> None:
        self._enter(db, e, e.stage)

    @on(Customer.StageChanged)
    def moved(self, e: Customer.StageChanged, db: Tables) -> None:
        self._enter(db, e, e.to_stage)

    @on(Customer.Churned)
    def churned(self, e: Customer.Churned, db: Tables) -> None:
        self._enter(db, e, "churned")

    @on(Customer.WonBack)
    def won_back(self, e: Customer.WonBack, db: Tables) -> None:
        self._enter(db, e, e.stage)
