"""Health score: a configurable weighted scorecard, 0-100 per customer, for any time.

Each factor turns a value (last NPS, days since the last check-in, open gaps, MRR trend,
days stalled beyond the stage's limit, advocacy given) into points 0-100 by configured steps;
the score is the weighted mean of the points. Each factor's *contribution* is
``weight x points / total weight``, so the contributions add up to the score.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from lifecycle_es.config import Config, Factor, load_config
from lifecycle_es.domain.ids import parse_id
from lifecycle_es.domain.stage_model import CHURNED
from lifecycle_es.errors import UnknownCustomer
from lifecycle_es.gcpause import without_cyclic_gc
from lifecycle_es.reading.lifecycle_checks.buying import figures
from lifecycle_es.reading.lifecycle_checks.facts import (
    CustomerFacts,
    as_utc,
    days,
    reader_for,
)
from lifecycle_es.reading.lifecycle_checks.gaps import (
    Detector,
    check_owner,
    check_page,
    check_team,
    lapsing_of,
    page,
    stall_limit,
    team_scope,
)
from lifecycle_es.reading.metrics.calc import When

if TYPE_CHECKING:
    from lifecycle_es.reading.source import Source

#: up to this many customers, queries name them (``customer IN (...)``) rather than read all
_FEW = 1_000


@dataclass(frozen=True)
class FactorScore:
    """One factor of one customer's score."""

    name: str
    value: float | None  # None: the customer has no value for it
    points: float  # 0-100
    weight: float
    contribution: float  # weight x points / total weight


@dataclass(frozen=True)
class Health:
    """A customer's score at a time, and why."""

    customer: str
    score: float
    band: str  # healthy | at risk | critical
    stage: str
    owner: str | None
    factors: tuple[FactorScore, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "customer": self.customer, "score": self.score, "band": self.band,
            "stage": self.stage, "owner": self.owner,
            "factors": {f.name: {"value": f.value, "points": f.points, "weight": f.weight,
                                 "contribution": f.contribution} for f in self.factors},
        }


@without_cyclic_gc  # thousands of rows and answers that form no cycles
def health_scores(engine: Source, customer: str | None = None,
                  as_of: When | None = None, *, config: Config | None = None,
                  team: str | None = None, owner: str | None = None,
                  limit: int | None = None, offset: int = 0) -> list[Health]:
    """Scores at ``as_of`` (default now): of ``customer``, or of every paying customer and
    every customer buying without a contract (one the prediction has, not churned; every
    customer when ``health.paying_only`` is false), worst first; only those in a stage of
    ``team`` / owned by ``owner`` (at ``as_of``) if given; with ``limit``/``offset`` one
    page of that list."""
    if customer is not None:
        customer = parse_id("customer", customer)
    team = check_team(engine.stage_model, team, "health query")
    owner = check_owner(owner, "health query")
    limit, offset = check_page(limit, offset, "health query")
    at = as_utc(as_of)
    cfg = config or load_config()
    reader = reader_for(engine)
    scope = team_scope(engine.stage_model, team, owner)
    if customer is None and cfg.health.paying_only:
        scope = replace(scope, paying=True)
    buying = _buying(engine, cfg, at)
    facts = reader.customers(at, customer, scope)
    if customer is None and cfg.health.paying_only and buying:
        others = tuple(sorted(buying.keys() - facts.keys()))
        facts.update(reader.customers(at, None, replace(scope, paying=False, ids=others if
                                                        len(others) <= _FEW else None)))
    if customer is not None and customer not in facts and (
            (team is None and owner is None) or customer not in reader.customers(at, customer)):
        raise UnknownCustomer(customer)  # (one outside the team or owner's: no score)
    # a few customers (one owner's): the other queries read only theirs
    who = customer if customer is not None or len(facts) > _FEW else tuple(facts)
    detector = Detector(engine.stage_model, cfg.gaps, at)
    open_gaps = Counter(g.customer for g in detector.all(reader, facts, who))
    if buying:
        open_gaps.update(g.customer for g in detector.lapsing(
            reader, lapsing_of(engine, reader, cfg.gaps, at), who))
    before = reader.mrr_at(at - timedelta(days=cfg.health.trend_days), who)
    out = []
    card = Scorecard(cfg)
    for f in facts.values():
        if customer is None and cfg.health.paying_only and not f.paying and (
                f.customer not in buying or f.stage == CHURNED):
            continue
        values = factor_values(engine, cfg, f, at, open_gaps[f.customer],
                               before.get(f.customer), stall=detector.stall_limit,
                               p_alive=buying.get(f.customer))
        out.append(card.score(f, values))
    return page(out, _worst_first, limit, offset)


def _buying(engine: Source, cfg: Config, at: datetime) -> dict[str, float]:
    """The probability alive of each customer buying without a contract (none when the
    ``still_buying`` factor weighs nothing or no model can be fitted)."""
    factor = cfg.health.factors.get("still_buying")
    if factor is None or factor.weight == 0:
        return {}
    prediction = figures(engine, at)
    if prediction is None:
        return {}
    return {c.customer: c.p_alive for c in prediction.customers if not c.on_contract}


def _worst_first(h: Health) -> tuple[float, str]:
    return h.score, h.customer


def factor_values(engine: Source, cfg: Config, f: CustomerFacts, at: datetime,
                  open_gaps: int, mrr_before: int | None, *,
                  stall: Callable[[str], int | None] | None = None,
                  p_alive: float | None = None) -> dict[str, float | None]:
    """The raw value of every factor for one customer at ``at`` (``stall``: the stall limit
    of a stage, default :func:`stall_limit` of the engine's model and ``cfg``; ``p_alive``:
    its probability alive when it buys without a contract). A factor left out is off for
    the customer: ``still_buying`` for a customer on a contract or without purchases."""
    limit = (stall(f.stage) if stall is not None
             else stall_limit(engine.stage_model, cfg.gaps, f.stage))
    stalled = 0.0 if limit is None else max(0.0, days(at - f.stage_since) - limit)
    trend = None
    if mrr_before:
        now = f.mrr if f.paying else 0
        trend = round(100 * (now - mrr_before) / mrr_before, 2)
    values: dict[str, float | None] = {
        "last_nps": f.last_nps,
        "days_since_check_in": None if f.last_check_in is None
        else round(days(at - f.last_check_in), 2),
        "open_gaps": open_gaps,
        "mrr_trend": trend,
        "stalled_days": round(stalled, 2),
        "advocacy_given": f.advocacy_given,
    }
    if p_alive is not None and not f.paying:
        values["still_buying"] = round(p_alive, 3)
    return values


def score(cfg: Config, f: CustomerFacts, values: dict[str, float | None]) -> Health:
    """Weigh the factors' points into a score."""
    return Scorecard(cfg).score(f, values)


class Scorecard:
    """The configured factors, weighing many customers' values: equal values of a factor
    share one :class:`FactorScore` (they are immutable), computed once."""

    def __init__(self, cfg: Config) -> None:
        self.factors = list(cfg.health.factors.items())
        self.total = sum(factor.weight for _, factor in self.factors)
        self.bands = cfg.health.bands
        self._scored: dict[tuple[str, type, float | None, float], FactorScore] = {}

    def _factor(self, name: str, factor: Factor, value: float | None,
                total: float) -> FactorScore:
        points = factor.points(value)
        scored = FactorScore(name, value, points, factor.weight,
                             round(factor.weight * points / total, 2))
        self._scored[name, type(value), value, total] = scored
        return scored

    def score(self, f: CustomerFacts, values: dict[str, float | None]) -> Health:
        """Weigh the factors' points into a score (a factor missing from ``values`` is off
        for the customer: left out, the others weighed without it)."""
        known = self._scored
        on = [(name, factor) for name, factor in self.factors if name in values]
        total = self.total if len(on) == len(self.factors) else \
            sum(factor.weight for _, factor in on)
        scored = []
        weighted: float = 0  # summed in the factors' order, as sum() would
        for name, factor in on:
            value = values[name]
            s = known.get((name, type(value), value, total)) or self._factor(name, factor,
                                                                              value, total)
            scored.append(s)
            weighted += factor.weight * s.points
        value = round(weighted / total, 2) if total else 0.0
        return Health(f.customer, value, self.bands.band(value), f.stage, f.owner,
                      tuple(scored))
