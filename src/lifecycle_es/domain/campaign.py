"""The Campaign aggregate: the shared registry of promotions and programmes.

Seed 000 asks for "a shared space for employees where teams can inform and learn about
campaigns", so sales and support know what a customer was promised. Touchpoints cite campaigns
by id; the gaps check flags a touchpoint citing an unknown or expired campaign.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, ClassVar

from eventsourcing.domain import Aggregate

from lifecycle_es.domain.ids import campaign_id
from lifecycle_es.domain.trigger import LeanTrigger
from lifecycle_es.errors import InvariantViolation


class Campaign(LeanTrigger, Aggregate):
    """One campaign, keyed by UUID5 of its external id."""

    class Event(Aggregate.Event):
        campaign: str
        occurred_at: datetime
        actor: str
        team: str
        correlation_id: str | None
        causation_id: str | None

        TYPE: ClassVar[str] = ""
        PERSONAL: ClassVar[tuple[str, ...]] = ()

    class Announced(Event, Aggregate.Created):
        name: str
        offer: str
        discount_percent: int
        starts: date
        ends: date
        segment: str | None
        owning_team: str
        TYPE = "campaign_announced"

        def apply(self, aggregate: Campaign) -> None:
            aggregate.campaign = self.campaign
            aggregate.details = {
                k: getattr(self, k) for k in CAMPAIGN_FIELDS
            }

    class Amended(Event):
        changes: dict[str, Any]
        TYPE = "campaign_amended"

        def apply(self, aggregate: Campaign) -> None:
            for key, value in self.changes.items():
                if key in ("starts", "ends") and isinstance(value, str):
                    value = date.fromisoformat(value)
                aggregate.details[key] = value

    class Ended(Event):
        reason: str | None
        TYPE = "campaign_ended"

        def apply(self, aggregate: Campaign) -> None:
            aggregate.ended_at = self.occurred_at

    def __init__(self) -> None:
        self.campaign = ""
        self.details: dict[str, Any] = {}
        self.ended_at: datetime | None = None

    @classmethod
    def announce(cls, *, campaign: str, meta: dict[str, Any], **fields: Any) -> Campaign:
        if fields["ends"] < fields["starts"]:
            raise InvariantViolation("ends", fields["ends"], "campaign ends before it starts")
        return cls._create(cls.Announced, id=campaign_id(campaign), campaign=campaign,
                           **meta, **fields)

    def _check_open(self, what: str) -> None:
        if self.ended_at is not None:
            raise InvariantViolation(
                "campaign", self.campaign, f"campaign already ended; cannot {what}"
            )

    def amend(self, changes: dict[str, Any], meta: dict[str, Any]) -> None:
        self._check_open("amend it")
        merged = {**self.details, **changes}
        if merged["ends"] < merged["starts"]:
            raise InvariantViolation("ends", merged["ends"], "campaign ends before it starts")
        self.trigger_event(self.Amended, campaign=self.campaign, changes=changes, **meta)

    def end(self, reason: str | None, meta: dict[str, Any]) -> None:
        self._check_open("end it again")
        self.trigger_event(self.Ended, campaign=self.campaign, reason=reason, **meta)

    def running_on(self, day: date) -> bool:
        """Whether the campaign ran on ``day`` (ends inclusive, ended early if ended)."""
        d = self.details
        if self.ended_at is not None and self.ended_at.date() < day:
            return False
        return bool(d["starts"] <= day <= d["ends"])


CAMPAIGN_FIELDS = ("name", "offer", "discount_percent", "starts", "ends", "segment",
                   "owning_team")

CAMPAIGN_EVENTS: dict[str, type[Campaign.Event]] = {
    c.TYPE: c for c in (Campaign.Announced, Campaign.Amended, Campaign.Ended)
}
