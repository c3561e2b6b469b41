"""nps_latest: each customer's latest NPS answer and category (a worked custom read model)."""

from __future__ import annotations

from lifecycle_es.domain import Customer
from lifecycle_es.projection import Projection, Table, Tables, on


def category(score: int) -> str:
    """NPS category of a 0-10 score."""
    return "promoter" if score >= 9 else "passive" if score >= 7 else "detractor"


class NpsLatest(Projection):
    name = "nps_latest"
    version = 1
    description = "per customer: latest NPS score, its category, when, and how many answers"
    tables = (
        Table(
            "nps_latest",
            key=("customer",),
            columns={"customer": "text", "score": "int", "category": "text",
                     "answered_at": "timestamp", "answers": "int"},
            indexes=(("category",),),
            doc={"customer": "external id of the customer",
                 "score": "latest NPS score, 0-10",
                 "category": "promoter (9-10) | passive (7-8) | detractor (0-6)",
                 "answered_at": "business time of the latest answer",
                 "answers": "number of NPS answers given"},
        ),
    )

    @on(Customer.NpsAnswered)
    def answered(self, e: Customer.NpsAnswered, db: Tables) -> None:
        rows = db["nps_latest"]
        previous = rows.get(e.customer)
        rows.put({"customer": e.customer, "score": e.score, "category": category(e.score),
                  "answered_at": e.occurred_at,
                  "answers": 1 if previous is None else previous["answers"] + 1})
