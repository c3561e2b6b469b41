"""Gaps: customers slipping through the cracks between teams, as of any time.

Each :class:`Gap` names the customer, the kind, since when it is a gap (the moment the
threshold was crossed), the responsible team and owner. The kinds and their rules are in
``docs/metrics.md`` ("Gaps"); the thresholds in :class:`lifecycle_es.config.GapsConfig`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from lifecycle_es.config import Config, GapsConfig, load_config
from lifecycle_es.domain.stage_model import CHURNED, StageModel
from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.reading.lifecycle_checks.facts import (
    CustomerFacts,
    FactsReader,
    as_utc,
    days,
    reader_for,
)
from lifecycle_es.reading.metrics.calc import When

if TYPE_CHECKING:
    from lifecycle_es.reading.source import Source

KINDS = (
    "unowned", "handover_stale", "renewal_at_risk", "detractor_ignored", "stalled",
    "promoter_not_asked", "unknown_offer",
)


@dataclass(frozen=True)
class Gap:
    """One customer left hanging."""

    customer: str
    kind: str
    since: datetime  # when it became a gap
    team: str  # the team responsible for closing it
    owner: str | None  # the person responsible (None: nobody)
    stage: str | None  # the customer's stage at the time
    detail: str  # what happened, in words
    ref: str | None = None  # the handover id or campaign id concerned

    def as_dict(self, as_of: datetime) -> dict[str, Any]:
        """The gap as a JSON-ready row, with ``days_open`` at ``as_of``."""
        return {**asdict(self), "days_open": round(days(as_of - self.since), 2)}


def check_kind(kind: str | None) -> str | None:
    """A gap kind as given by a user (``handover-stale`` works too), validated."""
    if kind is None:
        return None
    norm = kind.strip().lower().replace("-", "_")
    if norm not in KINDS:
        raise InvalidInput([FieldProblem("kind", kind, f"unknown gap kind (known: "
                                         f"{', '.join(KINDS)})")], "gaps query")
    return norm


def stall_limit(model: StageModel, cfg: GapsConfig, stage: str) -> int | None:
    """Days a customer may stay in ``stage`` before it is stalled (None: no limit)."""
    if stage in cfg.stall_after_days:
        return cfg.stall_after_days[stage]
    if stage == CHURNED or not model.has_stage(stage):
        return None
    return model.stage(stage).stall_after_days


def find_gaps(engine: Source, as_of: When | None = None, kind: str | None = None,
              team: str | None = None, *, config: Config | None = None,
              customer: str | None = None) -> list[Gap]:
    """Open gaps at ``as_of`` (default now), optionally of one kind / for one team."""
    kind = check_kind(kind)
    if team is not None and team not in engine.stage_model.teams:
        raise InvalidInput([FieldProblem("team", team, f"unknown team (known: "
                                         f"{', '.join(engine.stage_model.teams)})")],
                           "gaps query")
    at = as_utc(as_of)
    cfg = (config or load_config()).gaps
    reader = reader_for(engine)
    facts = reader.customers(at, customer)
    gaps = list(Detector(engine.stage_model, cfg, at).all(reader, facts, customer))
    gaps = [g for g in gaps if (kind is None or g.kind == kind)
            and (team is None or g.team == team)]
    return sorted(gaps, key=lambda g: (g.since, g.customer, g.kind, g.ref or ""))


class Detector:
    """The rules, applied to one time ``at``."""

    def __init__(self, model: StageModel, cfg: GapsConfig, at: datetime) -> None:
        self.model, self.cfg, self.at = model, cfg, at

    def _team(self, stage: str) -> str:
        return self.model.stage(stage).team if self.model.has_stage(stage) else ""

    def _gap(self, f: CustomerFacts, kind: str, since: datetime, detail: str,
             **extra: Any) -> Gap:
        values: dict[str, Any] = {"team": self._team(f.stage), "owner": f.owner, **extra}
        return Gap(f.customer, kind, since, stage=f.stage, detail=detail, **values)

    def all(self, reader: FactsReader, facts: dict[str, CustomerFacts],
            customer: str | None = None) -> Iterator[Gap]:
        for f in facts.values():
            yield from self.customer_gaps(f)
        yield from self.stale_handovers(reader, facts, customer)
        yield from self.bad_offers(reader, facts, customer)

    def customer_gaps(self, f: CustomerFacts) -> Iterator[Gap]:
        """The gaps that depend on one customer's facts only."""
        cfg, at = self.cfg, self.at
        if f.owner is None and f.stage not in cfg.unowned_exclude_stages:
            since = f.owner_since or f.stage_since
            yield self._gap(f, "unowned", since, f"no owner in stage {f.stage}")
        if f.paying and f.contract_end is not None and (
            f.contract_end <= at.date() + timedelta(days=cfg.renewal_window_days)
        ):
            quiet = timedelta(days=cfg.renewal_check_in_days)
            if f.last_check_in is None or f.last_check_in < at - quiet:
                window = datetime.combine(
                    f.contract_end - timedelta(days=cfg.renewal_window_days), time(), UTC
                )
                since = window if f.last_check_in is None else max(window,
                                                                    f.last_check_in + quiet)
                last = f"last check-in {f.last_check_in:%Y-%m-%d}" if f.last_check_in \
                    else "never checked in"
                yield self._gap(f, "renewal_at_risk", since,
                                f"contract ends {f.contract_end}; {last}")
        if f.last_nps is not None and f.last_nps_at is not None:
            yield from self._nps_gaps(f, f.last_nps, f.last_nps_at)
        limit = stall_limit(self.model, cfg, f.stage)
        if limit is not None and at > f.stage_since + timedelta(days=limit):
            yield self._gap(f, "stalled", f.stage_since + timedelta(days=limit),
                            f"in {f.stage} since {f.stage_since:%Y-%m-%d} "
                            f"(limit {limit} days)")

    def _nps_gaps(self, f: CustomerFacts, score: int, answered: datetime) -> Iterator[Gap]:
        cfg, at = self.cfg, self.at
        due = answered + timedelta(days=cfg.detractor_follow_up_days)
        if score <= 6 and at > due and (f.last_check_in is None or f.last_check_in < answered):
            yield self._gap(f, "detractor_ignored", due,
                            f"NPS {score} on {answered:%Y-%m-%d}, no check-in since")
        due = answered + timedelta(days=cfg.promoter_ask_days)
        if score >= 9 and at > due and (
            f.last_advocacy_ask is None or f.last_advocacy_ask < answered
        ):
            yield self._gap(f, "promoter_not_asked", due,
                            f"NPS {score} on {answered:%Y-%m-%d}, never asked to advocate")

    def stale_handovers(self, reader: FactsReader, facts: dict[str, CustomerFacts],
                        customer: str | None) -> Iterator[Gap]:
        sla = timedelta(days=self.cfg.handover_sla_days)
        for h in reader.pending_handovers(self.at, self.at - sla, customer):
            f = facts.get(h["customer"])
            if f is None:
                continue
            yield Gap(
                h["customer"], "handover_stale", h["sent_at"] + sla, team=h["to_team"],
                owner=h["to_person"] or f.owner, stage=f.stage, ref=h["handover_id"],
                detail=f"handover {h['handover_id']} {h['from_team']} -> {h['to_team']} "
                       f"sent {h['sent_at']:%Y-%m-%d %H:%M} by {h['from_person']}, pending",
            )

    def bad_offers(self, reader: FactsReader, facts: dict[str, CustomerFacts],
                   customer: str | None) -> Iterator[Gap]:
        lookback = self.cfg.offer_lookback_days
        after = self.at - timedelta(days=lookback) if lookback is not None else None
        campaigns = reader.campaigns(self.at)
        for t in reader.offers(self.at, after, customer):
            f = facts.get(t["customer"])
            if f is None:
                continue
            cid, day = t["campaign"], t["at"].astimezone(UTC).date()
            c = campaigns.get(cid)
            if c is None:
                detail = f"touchpoint on {day} cites campaign {cid!r}, unknown to the registry"
            elif not c.running_on(day):
                ended = f", ended {c.ended_at:%Y-%m-%d}" if c.ended_at else ""
                detail = (f"touchpoint on {day} cites campaign {cid!r}, not running then "
                          f"(runs {c.starts}..{c.ends}{ended})")
            else:
                continue
            yield Gap(t["customer"], "unknown_offer", t["at"], team=t["team"],
                      owner=t["actor"], stage=f.stage, detail=detail, ref=cid)
