"""Thresholds of the gap checks and the health scorecard, loadable from TOML.

Every value has a documented default (``docs/metrics.md``, "Gaps" and "Health score"); a TOML
file only lists what it changes::

    [gaps]
    handover_sla_days = 1
    stall_after_days = { onboarding = 30 }

    [health.factors.last_nps]
    weight = 30
    steps = [[6, 0], [8, 60]]
    above = 100

The file is given with ``--config FILE`` or ``$LIFECYCLE_ES_CONFIG``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lifecycle_es.errors import ConfigError, FieldProblem

ENV_VAR = "LIFECYCLE_ES_CONFIG"


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GapsConfig(_Strict):
    """Thresholds of the gap checks (days)."""

    handover_sla_days: float = Field(2, gt=0, description="pending longer than this: stale")
    renewal_window_days: int = Field(30, ge=0, description="contract ends within this")
    renewal_check_in_days: int = Field(30, ge=1, description="...and no check-in within this")
    detractor_follow_up_days: float = Field(7, gt=0, description="check-in due after NPS 0-6")
    promoter_ask_days: float = Field(30, gt=0, description="advocacy ask due after NPS 9-10")
    offer_lookback_days: int | None = Field(
        365, ge=1, description="touchpoints older than this are not re-checked (None: all)"
    )
    unowned_exclude_stages: list[str] = Field(
        default_factory=lambda: ["churned"], description="stages where no owner is fine"
    )
    stall_after_days: dict[str, int | None] = Field(
        default_factory=dict,
        description="per stage, overrides the stage model's stall_after_days (None: never)",
    )
    lapsing_p_alive: float = Field(
        0.5, gt=0, lt=1, description="lapsing: probability alive (BG/NBD) fell below this"
    )
    lapsing_top_share: float = Field(
        0.2, gt=0, le=1,
        description="lapsing: ...while the value at stake is in this top share of buyers",
    )
    lapsing_horizon_days: int = Field(
        90, ge=1, le=36_525, description="lapsing: the expected value over this many days"
    )


class Factor(_Strict):
    """One scorecard factor: points by value steps, and its weight.

    ``steps`` are ``[upper bound, points]`` pairs in increasing bound order: the points of the
    first step whose bound is >= the value; ``above`` when the value exceeds every bound;
    ``missing`` when the customer has no value for the factor (e.g. never answered NPS).
    """

    weight: float = Field(ge=0)
    steps: list[tuple[float, float]] = Field(default_factory=list)
    above: float = Field(0, ge=0, le=100)
    missing: float = Field(0, ge=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> Factor:
        bounds = [b for b, _ in self.steps]
        if bounds != sorted(bounds):
            raise ValueError(f"steps: bounds must increase, got {bounds}")
        for _, points in self.steps:
            if not 0 <= points <= 100:
                raise ValueError(f"steps: points must be 0..100, got {points}")
        return self

    def points(self, value: float | None) -> float:
        """Points (0-100) this factor gives a value."""
        if value is None:
            return self.missing
        for bound, points in self.steps:
            if value <= bound:
                return points
        return self.above


def _default_factors() -> dict[str, Factor]:
    return {
        # the latest NPS answer, 0-10
        "last_nps": Factor(weight=25, steps=[(6, 0), (8, 60)], above=100, missing=50),
        # days since the latest check-in
        "days_since_check_in": Factor(weight=20, steps=[(30, 100), (60, 60), (90, 30)],
                                      above=0, missing=0),
        # gaps open for the customer at the time
        "open_gaps": Factor(weight=20, steps=[(0, 100), (1, 50)], above=0, missing=100),
        # MRR change in percent over health.trend_days
        "mrr_trend": Factor(weight=15, steps=[(-10, 0), (-0.5, 40), (0.5, 70)], above=100,
                            missing=70),
        # days beyond the stage's stall limit (0: not stalled)
        "stalled_days": Factor(weight=10, steps=[(0, 100), (30, 50)], above=0, missing=100),
        # advocacy given (testimonials, reviews, referrals...) so far
        "advocacy_given": Factor(weight=10, steps=[(0, 50)], above=100, missing=50),
        # probability alive (BG/NBD, 0-1) of a customer buying without a contract; left
        # out of the score of a customer on a contract or without purchases
        "still_buying": Factor(weight=20, steps=[(0.2, 0), (0.5, 40), (0.8, 70)],
                               above=100, missing=50),
    }


FACTOR_NAMES = tuple(_default_factors())


class Bands(_Strict):
    """Score bands: >= healthy is healthy, >= at_risk is at risk, below is critical."""

    healthy: float = Field(70, ge=0, le=100)
    at_risk: float = Field(40, ge=0, le=100)

    @model_validator(mode="after")
    def _check(self) -> Bands:
        if self.at_risk > self.healthy:
            raise ValueError(f"at_risk ({self.at_risk}) must not exceed healthy ({self.healthy})")
        return self

    def band(self, score: float) -> str:
        if score >= self.healthy:
            return "healthy"
        return "at risk" if score >= self.at_risk else "critical"


class HealthConfig(_Strict):
    """The health scorecard."""

    paying_only: bool = Field(True, description="score only customers paying at the time")
    trend_days: int = Field(90, ge=1, description="MRR trend: compare with this many days ago")
    bands: Bands = Field(default_factory=Bands)
    factors: dict[str, Factor] = Field(default_factory=_default_factors)

    @model_validator(mode="before")
    @classmethod
    def _merge_factors(cls, data: object) -> object:
        """A file's factors override the defaults one by one (field by field)."""
        if isinstance(data, dict) and isinstance(data.get("factors"), dict):
            defaults = _default_factors()
            merged = {}
            for name, value in data["factors"].items():
                if name not in defaults:
                    raise ValueError(f"factors.{name}: unknown factor "
                                     f"(known: {', '.join(FACTOR_NAMES)})")
                merged[name] = (
                    {**defaults[name].model_dump(), **value} if isinstance(value, dict)
                    else value
                )
            data = {**data, "factors": {**defaults, **merged}}
        return data

    @model_validator(mode="after")
    def _check(self) -> HealthConfig:
        if sum(f.weight for f in self.factors.values()) <= 0:
            raise ValueError("factors: the weights must not all be 0")
        return self


class Config(_Strict):
    """Everything ``--config FILE`` can set."""

    gaps: GapsConfig = Field(default_factory=GapsConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)

    @classmethod
    def from_toml(cls, path: str | Path) -> Config:
        return load_toml(cls, path, "config file")


M = TypeVar("M", bound=BaseModel)


def load_toml(model: type[M], path: str | Path, what: str) -> M:
    """Validate TOML file ``path`` into ``model``; any problem is a one-line ConfigError
    naming ``what``, the file and the offending key and value."""
    where = f"{what} {str(path)!r}"
    try:
        return model.model_validate(tomllib.loads(Path(path).read_text()))
    except OSError as exc:
        raise ConfigError(f"{where}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    except ValidationError as exc:
        err = exc.errors()[0]
        reason = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:  # a whole-model check: its message names the key
            raise ConfigError(f"{where}: {reason}") from None
        key = ".".join(str(p) for p in err["loc"])
        raise ConfigError(f"{where}: {FieldProblem(key, err.get('input'), reason)}") from None


def load_config(path: str | Path | None = None) -> Config:
    """The configuration in ``path``, else in ``$LIFECYCLE_ES_CONFIG``, else the defaults."""
    path = path or os.environ.get(ENV_VAR) or None
    return Config.from_toml(path) if path else Config()
