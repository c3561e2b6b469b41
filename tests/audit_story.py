"""A customer story for the audit tests: a back-filled NPS answer and a voided owner.

Versions of customer ``acme``:
  1 registered (2024-01-02)           5 nps_answer 9 (occurred 2024-01-20, recorded after T1)
  2 stage -> consideration (01-10)    6 event_voided v3 (occurred 2024-02-05)
  3 owner_assigned bob (01-11)        7 handover_sent h1 sales -> success (02-10), recorded
  4 purchase 5000 EUR (02-01)            after T2
Plus customer ``beta`` (registered by dan, correlation id ``req-7``) and campaign ``spring``
with a touchpoint of ``beta`` citing it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from lifecycle_es import LifecycleEngine


@dataclass(frozen=True)
class Story:
    t1: datetime  # after version 4 was recorded, before version 5
    t2: datetime  # after version 6 was recorded, before version 7


def _mark() -> datetime:
    time.sleep(0.002)
    at = datetime.now(UTC)
    time.sleep(0.002)
    return at


def tell(engine: LifecycleEngine) -> Story:
    m = {"actor": "ann", "team": "marketing"}
    s = {"actor": "bob", "team": "sales"}
    engine.register(customer="acme", at="2024-01-02T09:00:00Z", name="Acme", segment="smb",
                    source="web", **m)
    engine.change_stage(customer="acme", at="2024-01-10T09:00:00Z", to_stage="consideration",
                        **s)
    engine.assign_owner(customer="acme", at="2024-01-11T09:00:00Z", owner="bob", **s)
    engine.purchase(customer="acme", at="2024-02-01T09:00:00Z", plan="pro", mrr=5000,
                    currency="EUR", contract_start="2024-02-01", contract_end="2025-01-31",
                    correlation_id="req-1", **s)
    t1 = _mark()
    engine.nps_answer(customer="acme", at="2024-01-20T09:00:00Z", score=9, comment="great",
                      actor="cat", team="success")
    engine.void_event(customer="acme", at="2024-02-05T09:00:00Z", voided_version=3,
                      reason="assigned to the wrong person", **s)
    t2 = _mark()
    engine.send_handover(customer="acme", at="2024-02-10T09:00:00Z", handover_id="h1",
                         from_team="sales", to_team="success", to_person="cat", **s)
    engine.announce_campaign(campaign="spring", at="2024-03-01T09:00:00Z", name="Spring",
                             offer="20% off", discount_percent=20, starts="2024-03-01",
                             ends="2024-05-31", owning_team="marketing", **m)
    engine.register(customer="beta", at="2024-03-02T09:00:00Z", name="Beta", segment="mid",
                    source="event", actor="dan", team="sales", correlation_id="req-7")
    engine.touchpoint(customer="beta", at="2024-03-03T09:00:00Z", channel="email",
                      campaign_id="spring", **m)
    return Story(t1, t2)
