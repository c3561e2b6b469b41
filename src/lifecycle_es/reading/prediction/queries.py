"""``engine.predict(...)``: BG/NBD and Gamma-Gamma fitted on the ``metrics`` read model's
purchases and payments (voided ones are gone from it) as of a date, and each customer's
probability alive, expected occasions and expected value over a horizon.

A fit depends on the date, the time unit and the purchases: it is kept per (store, date,
unit), found by the ``metrics`` read model's position and build and, after new events (a
higher position) or a rebuild, by the purchases read again — fitted again only when they
changed. Definitions: docs/metrics.md, "Predictive CLV".
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import TYPE_CHECKING, Any

import numpy as np

from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.reading.metrics.calc import When, instant
from lifecycle_es.reading.prediction import bgnbd, gamma_gamma
from lifecycle_es.reading.prediction.results import (
    UNITS,
    CustomerPrediction,
    ModelFit,
    ModelNotFitted,
    MonetaryFit,
    Prediction,
)
from lifecycle_es.reading.prediction.summary import Purchase, Summary, summarise

if TYPE_CHECKING:
    from lifecycle_es.reading.source import Source

READ_MODELS = ("metrics",)
#: default horizon of the expected occasions and value, days
HORIZON_DAYS = 90
MAX_HORIZON_DAYS = 36_525  # a century
#: below these counts a fit is reported with a warning that it is not to be trusted
FEW_CUSTOMERS, FEW_REPEATERS = 100, 30
#: |correlation| of frequency and monetary value above which Gamma-Gamma's independence
#: assumption is doubtful (a warning)
DEPENDENT = 0.3
#: days of a discounting step (as ``lifetimes.customer_lifetime_value`` discounts monthly)
_STEP_DAYS = 30
_WHAT = "predict query"
_CACHE_SIZE = 16  # fits kept (each under two keys), least recently used dropped


@dataclass(frozen=True)
class Fitted:
    """What a date's fit keeps: the summary, the models and the warnings."""

    summary: Summary
    model: ModelFit
    bgnbd: bgnbd.BgNbd
    monetary: dict[str, tuple[MonetaryFit, gamma_gamma.GammaGamma]]
    on_contract: frozenset[str]
    warnings: tuple[str, ...]


_fits: OrderedDict[Hashable, Fitted] = OrderedDict()
_fits_lock = threading.Lock()


def _kept(key: Hashable) -> Fitted | None:
    with _fits_lock:
        found = _fits.get(key)
        if found is not None:
            _fits.move_to_end(key)
        return found


def _keep(key: Hashable, fitted: Fitted) -> None:
    with _fits_lock:
        _fits[key] = fitted
        _fits.move_to_end(key)
        while len(_fits) > _CACHE_SIZE:
            _fits.popitem(last=False)


def check_options(unit: str, horizon: int, discount: float) -> tuple[str, int, float]:
    """The options, validated (InvalidInput naming the field)."""
    if not isinstance(unit, str) or unit not in UNITS:
        raise InvalidInput([FieldProblem("unit", unit, f"must be one of {', '.join(UNITS)}")],
                           _WHAT)
    if isinstance(horizon, bool) or not isinstance(horizon, int) \
            or not 1 <= horizon <= MAX_HORIZON_DAYS:
        raise InvalidInput([FieldProblem("horizon", horizon, f"must be a whole number of "
                                         f"days from 1 to {MAX_HORIZON_DAYS}")], _WHAT)
    if isinstance(discount, bool) or not isinstance(discount, int | float) \
            or not math.isfinite(discount) or not 0 <= discount < 1:
        raise InvalidInput([FieldProblem("discount", discount, "must be an annual rate "
                                         ">= 0 and < 1")], _WHAT)
    return unit, horizon, float(discount)


def as_of_date(as_of: When | None) -> date:
    """The date a prediction is made as of: a time is taken to its UTC date."""
    return (datetime.now(UTC) if as_of is None else instant(as_of, "as_of")).date()


class Predictor:
    """The prediction models of one engine's read models."""

    def __init__(self, engine: Source, *, catch_up: bool = True) -> None:
        self.engine = engine
        self.catch_up = catch_up

    def predict(self, as_of: When | None = None, *, unit: str = "day",
                horizon: int = HORIZON_DAYS, discount: float = 0.0) -> Prediction:
        """The models fitted on the purchases before ``as_of`` (a date, default today;
        a time is taken to its UTC date), ``unit`` day|week, and every customer's figures
        over ``horizon`` days, the value discounted at the annual rate ``discount``."""
        unit, horizon, discount = check_options(unit, horizon, discount)
        day = as_of_date(as_of)
        fitted = self.fitted(day, unit)
        return _predict(fitted, day, unit, horizon, discount)

    def fitted(self, day: date, unit: str) -> Fitted:
        """The fit as of ``day`` in ``unit``, kept: looked up by the read model's version
        (no statement within a call, one otherwise); after new events by the purchases
        read again, fitted again only when they changed (a check-in changes nothing)."""
        projections = self.engine.projections
        projections.ensure_current(list(READ_MODELS), self.catch_up)
        store = (str(self.engine.store), id(projections.read), day, unit)
        by_version = (*store, projections.model_version("metrics"))
        found = _kept(by_version)
        if found is None:
            purchases, contracts = self._purchases(day)
            by_input = (*store, hash((tuple(purchases), contracts)))
            found = _kept(by_input) or fit(purchases, contracts, day, unit)
            _keep(by_input, found)
        _keep(by_version, found)
        return found

    def _midnight(self, day: date) -> datetime:
        return datetime.combine(day, time(), UTC)

    def _rows(self, sql: str, day: date) -> list[tuple[Any, ...]]:
        read = self.engine.projections.read
        t = read.encode("timestamp", self._midnight(day))
        return read.fetchall(sql, [t] * sql.count("?"))

    def _purchases(self, day: date) -> tuple[list[Purchase], frozenset[str]]:
        """The days with purchases or payments before ``day`` (one row per customer and UTC
        day, as a day number, payments summed), and the customers on a contract then: one
        statement, rows used as they come."""
        read = self.engine.projections.read
        day_number = (  # date.toordinal() of the UTC day
            "(CAST((at AT TIME ZONE 'UTC') AS date) - DATE '0001-01-01' + 1)"
            if read.dialect == "postgresql"  # SQLite keeps UTC ISO 8601 text:
            else "CAST(julianday(substr(at, 1, 10)) - 1721424.5 AS INTEGER)")
        rows = self._rows(
            f"SELECT 0, customer, {day_number}, SUM(amount), MAX(currency) "
            "FROM metrics_payments WHERE at < ? GROUP BY customer, 3 "
            f"UNION ALL SELECT DISTINCT 1, customer, {day_number}, {_NONE} FROM metrics_mrr "
            "WHERE kind = 'purchase' AND at < ? "
            f"UNION ALL SELECT DISTINCT 2, customer, CAST(NULL AS integer), {_NONE} "
            "FROM metrics_paying "
            "WHERE paying_from < ? AND (paying_to IS NULL OR paying_to >= ?)", day)
        purchases: list[Purchase] = [row[1:] for row in rows if row[0] != 2]  # type: ignore[misc]
        return purchases, frozenset(row[1] for row in rows if row[0] == 2)


#: no amount and no currency, typed (PostgreSQL's DISTINCT would take NULL for text)
_NONE = "CAST(NULL AS bigint), CAST(NULL AS text)"


def fit(purchases: list[Purchase], on_contract: frozenset[str], day: date,
        unit: str) -> Fitted:
    """Fit both models on the purchases before ``day`` (midnight UTC) of the customers
    not ``on_contract`` then."""
    s = summarise(purchases, datetime.combine(day, time(), UTC), unit)
    contracts = on_contract & set(s.customers)
    fitted_on = np.array([c not in contracts for c in s.customers], dtype=bool)
    n = int(np.count_nonzero(fitted_on))
    repeaters = int(np.count_nonzero(s.frequency[fitted_on]))
    left_out = (f" ({len(contracts)} more on a contract are left out)" if contracts else "")
    if n == 0:
        raise ModelNotFitted(f"no customer without a contract has a purchase or payment "
                             f"before {day}{left_out}: there is nothing to fit")
    if repeaters == 0:
        raise ModelNotFitted(f"none of the {n} customers with a purchase before {day}"
                             f"{left_out} has bought again on another day: BG/NBD cannot "
                             "be fitted without repeat purchases")
    warnings = []
    if n < FEW_CUSTOMERS or repeaters < FEW_REPEATERS:
        warnings.append(f"only {n} customers, {repeaters} of them with a repeat purchase: "
                        f"too few for a reliable fit (at least {FEW_CUSTOMERS} and "
                        f"{FEW_REPEATERS} are advised)")
    if contracts:
        warnings.append(f"{len(contracts)} customers on a contract on {day} are left out of "
                        "the fits (their payments follow the contract, not a decision to "
                        "buy): their figures are given, marked on_contract, and not used "
                        "by health or gaps")
    bg = bgnbd.fit(s.frequency[fitted_on], s.recency[fitted_on], s.T[fitted_on])
    if not bg.converged:
        warnings.append("BG/NBD: the fit did not converge (a parameter ran to its bound, "
                        "1e-6 or 1e6): the purchases do not look like buying and stopping "
                        "at random; the figures are not to be trusted")
    p = bg.params
    model = ModelFit(p.r, p.alpha, p.a, p.b, bg.log_likelihood, bg.customers, bg.converged)
    monetary: dict[str, tuple[MonetaryFit, gamma_gamma.GammaGamma]] = {}
    for currency in sorted({c for c, on in zip(s.currencies, fitted_on, strict=True)
                            if c is not None and on}):
        among = np.array([c == currency for c in s.currencies]) & (s.valued > 0) \
            & (s.monetary > 0) & fitted_on
        count = int(np.count_nonzero(among))
        if count < 2:
            warnings.append(f"{currency}: {count} customer(s) with a paid repeat purchase: "
                            "too few to fit Gamma-Gamma; no expected value in "
                            f"{currency}")
            continue
        gg = gamma_gamma.fit(s.valued[among], s.monetary[among])
        q = gg.params
        fitted = MonetaryFit(currency, q.p, q.q, q.gamma, gg.log_likelihood, gg.customers,
                             gg.converged)
        if q.q <= 1:
            warnings.append(f"{currency}: Gamma-Gamma's q = {q.q:.3g} <= 1: the mean "
                            f"spend is undefined; no expected value in {currency}")
        if not gg.converged:
            warnings.append(f"{currency}: Gamma-Gamma: the fit did not converge; its "
                            "expected values are not to be trusted")
        if count > 2:
            with np.errstate(divide="ignore", invalid="ignore"):  # all alike: NaN
                corr = float(np.corrcoef(s.valued[among], s.monetary[among])[0, 1])
            if abs(corr) > DEPENDENT:
                warnings.append(f"{currency}: frequency and monetary value correlate "
                                f"({corr:.2f}): Gamma-Gamma assumes they do not")
        monetary[currency] = (fitted, q)
    return Fitted(s, model, p, monetary, frozenset(contracts), tuple(warnings))


def _expected_value(fitted: Fitted, horizon: float, unit_days: int,
                    discount: float) -> tuple[np.ndarray, np.ndarray]:
    """Expected occasions over the horizon (in the unit) and their value, discounted by
    steps of :data:`_STEP_DAYS` (NaN where no monetary model applies)."""
    s, model = fitted.summary, fitted.bgnbd
    occasions = model.expected_purchases(horizon, s.frequency, s.recency, s.T)
    spend = np.full(len(s.customers), np.nan)
    for currency, (m, gg) in fitted.monetary.items():
        if m.q <= 1:
            continue
        among = np.array([c == currency for c in s.currencies])
        spend[among] = gg.expected_spend(s.valued[among], s.monetary[among])
    if discount == 0:
        return occasions, occasions * spend
    value = np.zeros(len(s.customers))
    before = np.zeros(len(s.customers))
    ends = [*range(_STEP_DAYS, int(horizon * unit_days), _STEP_DAYS),
            horizon * unit_days]
    for end in ends:
        upto = model.expected_purchases(end / unit_days, s.frequency, s.recency, s.T)
        value += (upto - before) / (1 + discount) ** (end / 365)
        before = upto
    return occasions, value * spend


def _predict(fitted: Fitted, day: date, unit: str, horizon: int,
             discount: float) -> Prediction:
    s = fitted.summary
    per = UNITS[unit]
    alive = fitted.bgnbd.p_alive(s.frequency, s.recency, s.T)
    occasions, value = _expected_value(fitted, horizon / per, per, discount)
    freq, rec, T, p = (a.tolist() for a in (s.frequency, s.recency, s.T, alive))
    expected, worth = occasions.tolist(), value.tolist()
    monetary, valued = s.monetary.tolist(), s.valued.tolist()
    contract = fitted.on_contract
    customers = tuple(
        CustomerPrediction(c, int(freq[i]), rec[i], T[i], p[i], expected[i],
                           None if math.isnan(worth[i]) else worth[i], s.currencies[i],
                           monetary[i] if valued[i] else None, c in contract)
        for i, c in enumerate(s.customers))
    return Prediction(day, unit, horizon, discount, fitted.model,
                      tuple(m for m, _ in fitted.monetary.values()), customers,
                      fitted.warnings)
