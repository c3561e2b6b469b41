"""metrics: the money and voice-of-customer facts every lifecycle metric is computed from.

Facts, not answers: paying intervals, MRR changes, payments and survey answers, each keyed by
the customer and the version of the event that produced it, so a period's retention, churn,
GRR/NRR, NPS, CSAT, CLV and cohorts are SQL over these tables
(``lifecycle_es.reading.metrics``) and a voided event disappears when the customer's rows are
re-folded. The state kept per customer takes paying, MRR and currency from the aggregate's own
money fold (``Customer.Event.money``).
Months are UTC calendar months (``YYYY-MM``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from lifecycle_es.domain import Customer, Money
from lifecycle_es.projection import Projection, Table, Tables, on

CUSTOMERS = Table(
    "metrics_customers",
    key=("customer",),
    columns={
        "customer": "text",
        "registered_at": "timestamp",
        "currency": "text",
        "paying": "bool",
        "mrr": "int",
        "open_version": "int",
        "first_purchase_at": "timestamp",
        "first_purchase_month": "text",
        "first_payment_at": "timestamp",
        "first_payment_month": "text",
    },
    indexes=(("first_purchase_month",), ("first_payment_month",)),
    doc={
        "customer": "external id of the customer",
        "registered_at": "business time of registration",
        "currency": "currency of the customer's money (NULL before any)",
        "paying": "paying now (purchase or win-back not followed by churn)",
        "mrr": "MRR now, minor units",
        "open_version": "key of the open paying interval, NULL when not paying",
        "first_purchase_at": "first purchase (cohort by acquisition)",
        "first_purchase_month": "UTC month of the first purchase, YYYY-MM",
        "first_payment_at": "first payment (cohort for --activity payments)",
        "first_payment_month": "UTC month of the first payment, YYYY-MM",
    },
)

PAYING = Table(
    "metrics_paying",
    key=("customer", "from_version"),
    columns={
        "customer": "text",
        "from_version": "int",
        "paying_from": "timestamp",
        "paying_to": "timestamp",
        "currency": "text",
        "opened_by": "text",
    },
    indexes=(("paying_from",), ("paying_to",)),
    doc={
        "customer": "external id of the customer",
        "from_version": "version of the purchase / won_back that opened the interval",
        "paying_from": "start: paying at t when paying_from <= t",
        "paying_to": "time of the churn that ended it (not paying at t >= paying_to); NULL=open",
        "currency": "currency of the customer",
        "opened_by": "purchase | won_back",
    },
)

MRR = Table(
    "metrics_mrr",
    key=("customer", "version"),
    columns={
        "customer": "text",
        "version": "int",
        "at": "timestamp",
        "kind": "text",
        "mrr_after": "int",
        "currency": "text",
    },
    indexes=(("at",),),
    doc={
        "customer": "external id of the customer",
        "version": "version of the event",
        "at": "business time of the change",
        "kind": "purchase | expansion | contraction | renewal | churned | won_back",
        "mrr_after": "the customer's MRR from this time on (minor units)",
        "currency": "currency of the customer",
    },
)

PAYMENTS = Table(
    "metrics_payments",
    key=("customer", "version"),
    columns={"customer": "text", "version": "int", "at": "timestamp", "month": "text",
             "amount": "int", "currency": "text"},
    indexes=(("at",), ("month",)),
    doc={"customer": "external id", "version": "version of the payment event",
         "at": "business time", "month": "UTC month YYYY-MM", "amount": "minor units",
         "currency": "ISO 4217"},
)

ANSWERS = Table(
    "metrics_answers",
    key=("customer", "version"),
    columns={"customer": "text", "version": "int", "kind": "text", "at": "timestamp",
             "month": "text", "score": "int"},
    indexes=(("kind", "at"),),
    doc={"customer": "external id", "version": "version of the answer event",
         "kind": "nps (0-10) | csat (1-5)", "at": "business time", "month": "UTC month YYYY-MM",
         "score": "the answer"},
)


def month_of(at: datetime) -> str:
    """The UTC calendar month of a time, ``YYYY-MM``."""
    return at.astimezone(UTC).strftime("%Y-%m")


#: the kind of MRR fact each MRR-changing event records
MRR_KINDS: dict[type, str] = {Customer.Expanded: "expansion", Customer.Contracted: "contraction",
                              Customer.Renewed: "renewal"}


class MetricsFacts(Projection):
    name = "metrics"
    version = 1
    rebuild_cost = 2.5  # relative, for rebuild --jobs: five tables
    replay_by_aggregate = True  # handlers touch only rows of the event's own aggregate
    description = "facts for metrics: paying intervals, MRR changes, payments, NPS/CSAT answers"
    tables = (CUSTOMERS, PAYING, MRR, PAYMENTS, ANSWERS)

    def _mrr(self, db: Tables, e: Customer.Event, kind: str, mrr: int) -> None:
        row = db["metrics_customers"].update(e.customer, mrr=mrr)
        db["metrics_mrr"].put({
            "customer": e.customer, "version": e.originator_version, "at": e.occurred_at,
            "kind": kind, "mrr_after": mrr, "currency": row["currency"] if row else None,
        })

    def _start_paying(self, db: Tables, e: Customer.Event, kind: str) -> None:
        row = db["metrics_customers"].get(e.customer)
        if row is None or row["paying"]:
            return  # already paying: the open interval goes on
        db["metrics_customers"].update(e.customer, paying=True,
                                       open_version=e.originator_version)
        db["metrics_paying"].put({
            "customer": e.customer, "from_version": e.originator_version,
            "paying_from": e.occurred_at, "paying_to": None, "currency": row["currency"],
            "opened_by": kind,
        })

    def _after(self, db: Tables, e: Customer.Event) -> tuple[dict[str, Any], Money] | None:
        """The customer's row and its money after ``e`` (``Customer.Event.money``)."""
        row = db["metrics_customers"].get(e.customer)
        if row is None:
            return None
        return row, e.money(Money(row["paying"], row["mrr"], row["currency"]))

    @on(Customer.Registered)
    def registered(self, e: Customer.Registered, db: Tables) -> None:
        db["metrics_customers"].put({
            "customer": e.customer, "registered_at": e.occurred_at, "currency": None,
            "paying": False, "mrr": 0, "open_version": None, "first_purchase_at": None,
            "first_purchase_month": None, "first_payment_at": None,
            "first_payment_month": None,
        })

    @on(Customer.Purchased)
    def purchased(self, e: Customer.Purchased, db: Tables) -> None:
        if (after := self._after(db, e)) is None:
            return
        row, m = after
        changes: dict[str, object] = {"currency": m.currency}
        if row["first_purchase_at"] is None:
            changes.update(first_purchase_at=e.occurred_at,
                           first_purchase_month=month_of(e.occurred_at))
        db["metrics_customers"].update(e.customer, **changes)
        self._start_paying(db, e, "purchase")
        self._mrr(db, e, "purchase", m.mrr)

    @on(Customer.WonBack)
    def won_back(self, e: Customer.WonBack, db: Tables) -> None:
        if (after := self._after(db, e)) is not None:
            self._start_paying(db, e, "won_back")
            self._mrr(db, e, "won_back", after[1].mrr)

    @on(Customer.Churned)
    def churned(self, e: Customer.Churned, db: Tables) -> None:
        if (after := self._after(db, e)) is None:
            return
        row, m = after
        if row["paying"] and row["open_version"] is not None:
            db["metrics_paying"].update(e.customer, row["open_version"],
                                        paying_to=e.occurred_at)
        db["metrics_customers"].update(e.customer, paying=m.paying, open_version=None)
        self._mrr(db, e, "churned", m.mrr)

    @on(Customer.Expanded, Customer.Contracted, Customer.Renewed)
    def mrr_changed(self, e: Customer.Expanded | Customer.Contracted | Customer.Renewed,
                    db: Tables) -> None:
        if isinstance(e, Customer.Renewed) and e.new_mrr is None:
            return  # the MRR goes on: no MRR fact
        if (after := self._after(db, e)) is not None:
            self._mrr(db, e, MRR_KINDS[type(e)], after[1].mrr)

    @on(Customer.PaymentReceived)
    def paid(self, e: Customer.PaymentReceived, db: Tables) -> None:
        if (after := self._after(db, e)) is None:
            return
        row, m = after
        month = month_of(e.occurred_at)
        changes: dict[str, object] = {"currency": m.currency}
        if row["first_payment_at"] is None:
            changes.update(first_payment_at=e.occurred_at, first_payment_month=month)
        db["metrics_customers"].update(e.customer, **changes)
        db["metrics_payments"].put({
            "customer": e.customer, "version": e.originator_version, "at": e.occurred_at,
            "month": month, "amount": e.amount, "currency": e.currency,
        })

    @on(Customer.NpsAnswered, Customer.CsatAnswered)
    def answered(self, e: Customer.NpsAnswered | Customer.CsatAnswered, db: Tables) -> None:
        db["metrics_answers"].put({
            "customer": e.customer, "version": e.originator_version,
            "kind": "nps" if isinstance(e, Customer.NpsAnswered) else "csat",
            "at": e.occurred_at, "month": month_of(e.occurred_at), "score": e.score,
        })
