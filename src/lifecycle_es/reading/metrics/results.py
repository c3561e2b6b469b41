"""Typed results of the metric queries. Every result has ``to_dict()`` for JSON.

In Python, rates and averages are exact :class:`~fractions.Fraction` values (None when
undefined, e.g. a rate over zero customers). ``to_dict()`` turns them into the nearest float
(counts and money stay integers, money in minor units), times into ISO 8601 text.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass
from datetime import date, datetime
from fractions import Fraction
from typing import Any


def plain(value: Any) -> Any:
    """A result value as JSON-ready Python (Fraction -> float, datetime -> ISO text)."""
    if isinstance(value, Fraction):
        return float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    return value


class Result:
    """Mixin: ``to_dict()`` of a dataclass result."""

    def to_dict(self) -> dict[str, Any]:
        out = plain(self)
        assert isinstance(out, dict)
        return out


# ----------------------------------------------------------------- summary


@dataclass(frozen=True)
class RevenueRetention(Result):
    """GRR and NRR of one currency over the customers paying at the period start (S)."""

    currency: str
    customers: int  # customers of S paying in this currency
    mrr_start: int  # sum of MRR at start over S
    mrr_end: int  # sum of MRR at end over S (0 for those who churned)
    mrr_retained: int  # sum over S of min(MRR at end, MRR at start)
    grr: Fraction | None
    nrr: Fraction | None


@dataclass(frozen=True)
class Nps(Result):
    answers: int
    promoters: int  # 9-10
    passives: int  # 7-8
    detractors: int  # 0-6
    score: Fraction | None  # 100 * (promoters - detractors) / answers


@dataclass(frozen=True)
class Csat(Result):
    answers: int
    satisfied: int  # 4-5
    share: Fraction | None  # satisfied / answers


@dataclass(frozen=True)
class HistoricalClv(Result):
    """Sum of payments per customer before the period end, over customers who paid."""

    currency: str
    customers: int
    total: int
    mean: Fraction
    median: Fraction


@dataclass(frozen=True)
class PredictiveClv(Result):
    """ARPA x margin / monthly churn rate, with its inputs; ``value`` None when undefined."""

    currency: str
    arpa: Fraction | None  # mean MRR at start over the customers of S in this currency
    margin: Fraction
    monthly_churn_rate: Fraction | None  # churn rate / months in the period
    value: Fraction | None
    undefined: str | None  # why value is None


@dataclass(frozen=True)
class Summary(Result):
    """Every period metric for [start, end)."""

    start: datetime
    end: datetime
    months: Fraction  # length of the period in months (see calc.period_months)
    paying_at_start: int  # S
    paying_at_end: int  # E
    new: int  # N: paying at end, not at start
    retained: int  # E - N
    churned: int  # customers of S with a churn in the period
    retention_rate: Fraction | None  # (E - N) / S
    churn_rate: Fraction | None  # churned / S
    revenue: list[RevenueRetention]
    nps: Nps
    csat: Csat
    historical_clv: list[HistoricalClv]
    predictive_clv: list[PredictiveClv]


# ------------------------------------------------------------------ funnel


@dataclass(frozen=True)
class FunnelStage(Result):
    stage: str
    team: str
    reached: int  # customers at this stage or a later one (cumulative)
    entered: int  # of those, customers who actually entered this stage
    skipped: int  # reached - entered: counted here though they never entered it
    conversion_to_next: Fraction | None  # reached(next) / reached(this)
    median_days_to_next: Fraction | None  # first entry here -> first entry of the next stage
    to_next_samples: int  # customers the median is over


@dataclass(frozen=True)
class Funnel(Result):
    start: datetime | None  # None: ever
    end: datetime | None
    customers: int  # customers in the funnel (reached the first stage)
    stages: list[FunnelStage]


# ------------------------------------------------------------ time in stage


@dataclass(frozen=True)
class StageTime(Result):
    stage: str
    completed: int  # completed stays
    median_days: Fraction | None
    p90_days: Fraction | None
    open: int  # stays open at as_of
    open_median_days: Fraction | None  # age of the open stays at as_of
    open_p90_days: Fraction | None


@dataclass(frozen=True)
class TimeInStage(Result):
    start: datetime | None
    end: datetime | None
    as_of: datetime
    stages: list[StageTime]


@dataclass(frozen=True)
class StageSummary(Result):
    """One customer's history in one stage as of a time (the stage_history read model)."""

    stage: str
    first_entered: datetime
    last_entered: datetime
    last_exited: datetime | None
    entries: int
    cumulative_days: Fraction  # time in the stage, re-entries counted, up to as_of
    in_stage: bool


# ----------------------------------------------------------------- cohorts


@dataclass(frozen=True)
class CohortRow(Result):
    cohort: str  # YYYY-MM
    size: int
    active: list[int]  # active[k]: customers active in month k after the cohort month
    shares: list[Fraction]  # active[k] / size


@dataclass(frozen=True)
class Cohorts(Result):
    activity: str  # "paying" | "payments"
    as_of: datetime
    last_month: str | None  # latest complete month shown
    rows: list[CohortRow]


# ------------------------------------------------------------------ series


@dataclass(frozen=True)
class MrrPoint(Result):
    month: str  # YYYY-MM; values at the end of the month
    currency: str
    mrr: int
    paying: int  # customers paying in this currency at the end of the month


@dataclass(frozen=True)
class NpsPoint(Result):
    month: str
    answers: int
    promoters: int
    detractors: int
    score: Fraction | None
