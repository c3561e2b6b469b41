"""``engine.predict``: what counts as an occasion, the figures per customer, the options'
checks, the errors and warnings, and the fit kept until new events arrive."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from prediction_helpers import START, WHO, at, pay, register, shop

from lifecycle_es import LifecycleEngine
from lifecycle_es.errors import InvalidInput
from lifecycle_es.reading.prediction import ModelNotFitted, bgnbd, gamma_gamma
from lifecycle_es.reading.prediction.queries import fit
from lifecycle_es.reading.prediction.summary import Purchase, summarise


def test_occasions_are_days_and_their_value_the_sum(engine: LifecycleEngine) -> None:
    shop(engine)
    register(engine, "amy")
    pay(engine, "amy", 0, 1_000)  # the first occasion: not in the monetary value
    pay(engine, "amy", 10, 2_000, hour=8)
    pay(engine, "amy", 10, 3_000, hour=20)  # the same day: one occasion of 50.00
    voided = pay(engine, "amy", 20, 99_900)
    engine.void_event(customer="amy", voided_version=voided, reason="refund", at=at(21), **WHO)
    pay(engine, "amy", 30, 1_000)
    pay(engine, "amy", 200, 5_000)  # after the as-of date
    p = engine.predict(START + timedelta(days=41))
    amy = p.of("amy")
    assert amy is not None
    assert (amy.frequency, amy.recency, amy.T) == (2, 30, 40)
    assert amy.monetary_value == pytest.approx((50.00 + 10.00) / 2)
    assert amy.currency == "EUR" and not amy.on_contract
    assert 0 < amy.p_alive < 1 and amy.expected_occasions > 0
    assert amy.expected_value is not None and amy.expected_value > 0
    weeks = engine.predict(START + timedelta(days=41), unit="week").of("amy")
    assert weeks is not None and (weeks.recency, weeks.T) == (pytest.approx(30 / 7),
                                                              pytest.approx(40 / 7))


def test_a_purchase_is_an_occasion_and_its_customer_on_a_contract(
        engine: LifecycleEngine) -> None:
    shop(engine)
    register(engine, "bob")
    engine.purchase(customer="bob", plan="pro", mrr=4_900, currency="EUR",
                    contract_start="2025-01-01", contract_end="2025-12-31", at=at(0), **WHO)
    pay(engine, "bob", 31, 4_900)
    p = engine.predict(START + timedelta(days=60))
    bob = p.of("bob")
    assert bob is not None and bob.frequency == 1 and bob.on_contract
    assert bob.monetary_value == pytest.approx(49.0)
    assert any("on a contract" in w for w in p.warnings)


def test_a_time_is_taken_to_its_date(engine: LifecycleEngine) -> None:
    shop(engine)
    p = engine.predict(f"{START + timedelta(days=100)}T18:30:00+00:00")
    assert p.as_of == START + timedelta(days=100)
    assert p.to_dict()["as_of"] == str(START + timedelta(days=100))


def test_the_fit_is_kept_until_new_events(engine: LifecycleEngine) -> None:
    shop(engine)
    day = START + timedelta(days=160)
    first = engine.predict(day)
    again = engine.predict(day, horizon=30)
    assert again.model is first.model  # the same fit, another horizon
    assert all(b.expected_occasions < a.expected_occasions
               for a, b in zip(first.customers, again.customers, strict=True)
               if a.expected_occasions > 0)
    engine.check_in(customer="c001", at=at(156), **WHO)  # a new event, the same purchases
    assert engine.predict(day).model is first.model
    pay(engine, "c001", 155, 1_000)
    assert engine.predict(day).model != first.model


def test_discounting_lowers_the_value(engine: LifecycleEngine) -> None:
    shop(engine)
    day = START + timedelta(days=160)
    plain = engine.predict(day, horizon=365)
    discounted = engine.predict(day, horizon=365, discount=0.2)
    for a, b in zip(plain.customers, discounted.customers, strict=True):
        assert a.expected_occasions == b.expected_occasions
        if a.expected_value:
            assert b.expected_value is not None and 0 < b.expected_value < a.expected_value


def test_expected_value_is_occasions_times_the_conditional_spend() -> None:
    purchases = [Purchase(f"k{i}", date(2025, 1, 1 + d), 100 * (i + d + 1), "USD")
                 for i in range(30) for d in range(0, 1 + i % 4 * 3, 3)]
    fitted = fit(purchases, frozenset(), date(2025, 3, 1), "day")
    s, (m, gg) = fitted.summary, fitted.monetary["USD"]
    occasions = fitted.bgnbd.expected_purchases(90, s.frequency, s.recency, s.T)
    spend = gg.expected_spend(s.valued, s.monetary)
    assert spend[s.valued == 0] == pytest.approx(m.mean_spend)
    from lifecycle_es.reading.prediction.queries import _predict

    p = _predict(fitted, date(2025, 3, 1), "day", 90, 0.0)
    assert [c.expected_value for c in p.customers] == pytest.approx(list(occasions * spend))


def test_no_purchase_and_no_repeat_are_errors_that_say_so(engine: LifecycleEngine) -> None:
    with pytest.raises(ModelNotFitted, match="no customer without a contract has a purchase"):
        engine.predict("2025-06-01")
    register(engine, "once")
    pay(engine, "once", 0, 1_000)
    with pytest.raises(ModelNotFitted, match="cannot be fitted without repeat purchases"):
        engine.predict("2025-06-01")


def test_few_customers_give_a_warning(engine: LifecycleEngine) -> None:
    shop(engine, customers=12)
    p = engine.predict("2025-07-01")
    assert any("too few for a reliable fit" in w for w in p.warnings)


@pytest.mark.parametrize(("options", "field"), [
    ({"unit": "month"}, "unit"), ({"unit": "day\x00"}, "unit"),
    ({"unit": "<b>week</b>"}, "unit"), ({"unit": "w" * 100_000}, "unit"),
    ({"unit": 7}, "unit"), ({"horizon": 0}, "horizon"), ({"horizon": -5}, "horizon"),
    ({"horizon": 10**30}, "horizon"), ({"horizon": True}, "horizon"),
    ({"horizon": 1.5}, "horizon"), ({"discount": math.nan}, "discount"),
    ({"discount": math.inf}, "discount"), ({"discount": 1.0}, "discount"),
    ({"discount": -0.01}, "discount"), ({"discount": "0.1"}, "discount"),
    ({"as_of": "2025-13-01"}, "as_of"), ({"as_of": "1997\x00-10-01"}, "as_of"),
    ({"as_of": "0001-01-01T00:00:00+14:00"}, "as_of"),
])
def test_bad_options_name_the_field(options: dict[str, Any], field: str) -> None:
    with LifecycleEngine("memory://") as engine:
        with pytest.raises(InvalidInput) as caught:
            engine.predict(**options)
        assert caught.value.problems[0].field == field
        assert engine.event_log.head() == 0  # nothing written


def test_fits_recover_simulated_parameters() -> None:
    """A BG/NBD and Gamma-Gamma population simulated with known parameters is fitted back."""
    rng = np.random.default_rng(11)
    n, T = 8_000, 52.0
    lam = rng.gamma(0.5, 1 / 2.0, n)  # r = 0.5, alpha = 2
    p = rng.beta(1.0, 4.0, n)  # a = 1, b = 4
    x, t_x = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / lam[i])
            if t > T:
                break
            x[i], t_x[i] = x[i] + 1, t
            if rng.random() < p[i]:
                break
    result = bgnbd.fit(x, t_x, np.full(n, T))
    assert result.converged
    got = result.params
    assert (got.r, got.alpha, got.a, got.b) == (pytest.approx(0.5, rel=0.15),
                                                pytest.approx(2.0, rel=0.2),
                                                pytest.approx(1.0, rel=0.25),
                                                pytest.approx(4.0, rel=0.3))
    nu = rng.gamma(6.0, 1 / 4.0, 3_000)  # q = 6, gamma = 4
    k = rng.integers(1, 8, 3_000).astype(float)
    means = np.array([rng.gamma(3.0, 1 / v, int(c)).mean() for v, c in zip(nu, k,
                                                                           strict=True)])
    gg = gamma_gamma.fit(k, means)
    assert gg.converged
    assert (gg.params.p, gg.params.q) == (pytest.approx(3.0, rel=0.15),
                                          pytest.approx(6.0, rel=0.25))


def test_summary_counts_to_the_day_before_the_as_of_date() -> None:
    s = summarise([Purchase("a", date(2025, 1, 1), 100, "EUR"),
                   Purchase("a", date(2025, 1, 9), 300, "EUR"),
                   Purchase("a", date(2025, 1, 9)),  # a contract bought the same day
                   Purchase("a", date(2025, 1, 10), 300, "EUR"),
                   Purchase("b", date(2025, 1, 3), 500, "JPY"),
                   Purchase("b", date(2025, 1, 5)),  # a day with only a contract
                   Purchase("b", date(2025, 1, 7), 700, "JPY")],
                  datetime(2025, 1, 10, tzinfo=UTC))
    assert s.last_day == date(2025, 1, 9) and s.customers == ("a", "b")
    assert s.currencies == ("EUR", "JPY")
    assert list(s.frequency) == [1, 2] and list(s.recency) == [8, 4]
    assert list(s.T) == [8, 6] and list(s.valued) == [1, 1]
    assert list(s.monetary) == [3.0, 700.0]  # JPY has no minor units
