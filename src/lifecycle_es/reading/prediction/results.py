"""What ``engine.predict(...)`` answers: the fitted models and each customer's figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from lifecycle_es.errors import LifecycleError

#: days per time unit of frequency, recency and T
UNITS = {"day": 1, "week": 7}


class ModelNotFitted(LifecycleError):
    """The purchase history cannot support the model (no customer, no repeat purchase):
    the message says why."""


@dataclass(frozen=True)
class ModelFit:
    """The BG/NBD parameters (alpha in the time unit), fitted on ``customers``."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    customers: int
    converged: bool


@dataclass(frozen=True)
class MonetaryFit:
    """The Gamma-Gamma parameters of one currency (gamma in its major units), fitted on the
    ``customers`` with a repeat occasion paid in it."""

    currency: str
    p: float
    q: float
    gamma: float
    log_likelihood: float
    customers: int
    converged: bool

    @property
    def mean_spend(self) -> float | None:
        """The population's mean spend per occasion, p * gamma/(q-1) (None when q <= 1)."""
        return self.p * self.gamma / (self.q - 1) if self.q > 1 else None


@dataclass(frozen=True)
class CustomerPrediction:
    """One customer as of the date: frequency, recency and T in the time unit; the
    expected occasions and value over the horizon (value in major units of ``currency``;
    None without a monetary model for it)."""

    customer: str
    frequency: int
    recency: float
    T: float
    p_alive: float
    expected_occasions: float
    expected_value: float | None
    currency: str | None
    monetary_value: float | None  # mean value of the repeat occasions (None: none paid)
    on_contract: bool  # paying under a contract at the as-of date

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Prediction:
    """The models fitted as of a date and every customer's figures."""

    as_of: date
    unit: str
    horizon_days: int
    discount: float
    model: ModelFit
    monetary: tuple[MonetaryFit, ...]
    customers: tuple[CustomerPrediction, ...]
    warnings: tuple[str, ...]

    def of(self, customer: str) -> CustomerPrediction | None:
        """One customer's figures (None: no purchase before the date)."""
        for c in self.customers:
            if c.customer == customer:
                return c
        return None

    def to_dict(self) -> dict[str, Any]:
        """The JSON of ``lifecycle-es predict --json``."""
        return {
            "as_of": self.as_of.isoformat(), "unit": self.unit,
            "horizon_days": self.horizon_days, "discount": self.discount,
            "model": asdict(self.model),
            "monetary": [asdict(m) for m in self.monetary],
            "customers": [c.as_dict() for c in self.customers],
            "warnings": list(self.warnings),
        }
