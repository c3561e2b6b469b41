"""Small hand-built histories for the gap, health and report tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import Config
from lifecycle_es.reading.lifecycle_checks.gaps import Gap

T0 = datetime(2024, 1, 1, tzinfo=UTC)
CFG = Config()  # the documented defaults, whatever $LIFECYCLE_ES_CONFIG says


def day(n: float, seconds: float = 0) -> datetime:
    """T0 plus ``n`` days and ``seconds``."""
    return T0 + timedelta(days=n, seconds=seconds)


class History:
    """Record commands on ``engine`` with short calls: ``h.cmd("check_in", "acme", 3)``."""

    TEAMS = {"marketing": "mia", "sales": "sam", "success": "sue", "support": "sid"}

    def __init__(self, engine: LifecycleEngine) -> None:
        self.engine = engine

    def cmd(self, type_: str, customer: str, at: float | datetime, team: str = "success",
            actor: str | None = None, **fields: Any) -> None:
        when = day(at) if not isinstance(at, datetime) else at
        self.engine.record(type_, customer=customer, at=when, team=team,
                           actor=actor or self.TEAMS[team], **fields)

    def register(self, customer: str, at: float = 0, stage: str | None = None) -> None:
        self.cmd("customer_registered", customer, at, team="marketing", name=customer.upper(),
                 segment="smb", source="web", stage=stage)

    def buy(self, customer: str, at: float, contract_end: str, mrr: int = 1000) -> None:
        """Move to purchase and buy (the customer must be registered in awareness)."""
        self.cmd("stage_changed", customer, at, team="sales", to_stage="purchase")
        self.cmd("purchase", customer, at, team="sales", plan="pro", mrr=mrr, currency="EUR",
                 contract_start=day(at).date().isoformat(), contract_end=contract_end)

    def campaign(self, campaign: str, at: float, starts: str, ends: str) -> None:
        self.engine.record("campaign_announced", campaign=campaign, at=day(at), actor="mia",
                           team="marketing", name=campaign, offer="20% off", starts=starts,
                           ends=ends, owning_team="marketing")


def gaps(engine: LifecycleEngine, at: datetime, kind: str | None = None,
         config: Config = CFG) -> list[tuple[str, datetime]]:
    """(customer, since) of the gaps of ``kind`` at ``at``."""
    return [(g.customer, g.since) for g in engine.gaps(at, kind, config=config)]


def only(engine: LifecycleEngine, at: datetime, kind: str, customer: str) -> Gap:
    found = [g for g in engine.gaps(at, kind, config=CFG) if g.customer == customer]
    assert len(found) == 1, found
    return found[0]
