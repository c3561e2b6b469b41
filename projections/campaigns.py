"""campaigns: the shared registry of campaigns, one row each: offer, discount, dates, target
segment, owning team, who announced it, whether it ended early.

The console's campaigns page reads it; the customers a campaign touched are the touchpoints
citing it (``audit_index.campaign``).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from lifecycle_es.domain import Campaign
from lifecycle_es.projection import Projection, Table, Tables, on

FIELDS = ("name", "offer", "discount_percent", "starts", "ends", "segment")


class Campaigns(Projection):
    name = "campaigns"
    version = 1
    rebuild_cost = 0.1  # relative, for rebuild --jobs: a row per campaign
    replay_by_aggregate = True  # handlers touch only the row of the event's own campaign
    description = "per campaign: offer, discount, dates, segment, owning team, ended"
    tables = (
        Table(
            "campaigns",
            key=("campaign",),
            partition=None,
            columns={
                "campaign": "text",
                "name": "text",
                "offer": "text",
                "discount_percent": "int",
                "starts": "date",
                "ends": "date",
                "segment": "text",
                "owning_team": "text",
                "announced_by": "text",
                "announced_at": "timestamp",
                "ended_at": "timestamp",
            },
            indexes=(("ends",),),
            doc={
                "campaign": "campaign id in the shared registry",
                "name": "campaign name",
                "offer": "what customers are offered",
                "discount_percent": "discount in percent (0-100)",
                "starts": "first day the offer runs",
                "ends": "last day the offer runs",
                "segment": "target segment, NULL for every segment",
                "owning_team": "team that owns the campaign",
                "announced_by": "who announced it",
                "announced_at": "business time of the announcement",
                "ended_at": "when it was ended early (NULL: not ended)",
            },
        ),
    )

    @on(Campaign.Announced)
    def announced(self, e: Campaign.Announced, db: Tables) -> None:
        db["campaigns"].put({
            "campaign": e.campaign, **{f: getattr(e, f) for f in FIELDS},
            "owning_team": e.owning_team, "announced_by": e.actor,
            "announced_at": e.occurred_at, "ended_at": None})

    @on(Campaign.Amended)
    def amended(self, e: Campaign.Amended, db: Tables) -> None:
        changes: dict[str, Any] = {}
        for key, value in e.changes.items():
            if key in FIELDS:
                changes[key] = date.fromisoformat(value) if key in ("starts", "ends") \
                    and isinstance(value, str) else value
        db["campaigns"].update(e.campaign, **changes)

    @on(Campaign.Ended)
    def ended(self, e: Campaign.Ended, db: Tables) -> None:
        db["campaigns"].update(e.campaign, ended_at=e.occurred_at)
