"""Per-customer figures agree with the ``lifetimes`` package (0.11.3) on the CDNOW sample:
the same summary fitted by both."""

from __future__ import annotations

import numpy as np
import pytest
from cdnow import cdnow_rows

from lifecycle_es.reading.prediction import bgnbd, gamma_gamma
from lifecycle_es.reading.prediction.queries import fit
from lifecycle_es.reading.prediction.summary import Purchase

lifetimes = pytest.importorskip("lifetimes", reason="lifetimes is not installed "
                                "(pip install lifetimes==0.11.3 for the comparison)")


@pytest.fixture(scope="module")
def cdnow() -> object:
    from datetime import date

    by_day: dict[tuple[str, date], int] = {}
    for c, d, cents in cdnow_rows():
        by_day[c, d] = by_day.get((c, d), 0) + cents
    purchases = [Purchase(c, d, cents, "USD") for (c, d), cents in by_day.items()]
    return fit(purchases, frozenset(), date(1997, 10, 1), "week")


def test_p_alive_and_expected_purchases_agree_with_lifetimes(cdnow: object) -> None:
    s, ours = cdnow.summary, cdnow.bgnbd  # type: ignore[attr-defined]
    theirs = lifetimes.BetaGeoFitter().fit(s.frequency, s.recency, s.T)
    for name in ("r", "alpha", "a", "b"):
        assert getattr(ours, name) == pytest.approx(theirs.params_[name], rel=1e-3)
    mine = ours.p_alive(s.frequency, s.recency, s.T)
    assert np.allclose(mine, theirs.conditional_probability_alive(s.frequency, s.recency, s.T),
                       atol=1e-4)
    horizon = 90 / 7
    expected = theirs.conditional_expected_number_of_purchases_up_to_time(
        horizon, s.frequency, s.recency, s.T)
    assert np.allclose(ours.expected_purchases(horizon, s.frequency, s.recency, s.T),
                       expected, atol=1e-4)
    # and the same functions given lifetimes' own parameters agree to rounding
    same = bgnbd.BgNbd(*(float(theirs.params_[n]) for n in ("r", "alpha", "a", "b")))
    assert np.allclose(same.p_alive(s.frequency, s.recency, s.T),
                       theirs.conditional_probability_alive(s.frequency, s.recency, s.T),
                       atol=1e-12)


def test_gamma_gamma_agrees_with_lifetimes(cdnow: object) -> None:
    s = cdnow.summary  # type: ignore[attr-defined]
    ours = cdnow.monetary["USD"][1]  # type: ignore[attr-defined]
    repeat = s.frequency > 0
    theirs = lifetimes.GammaGammaFitter().fit(s.frequency[repeat], s.monetary[repeat])
    for name, their_name in (("p", "p"), ("q", "q"), ("gamma", "v")):
        assert getattr(ours, name) == pytest.approx(theirs.params_[their_name], rel=1e-3)
    spend = theirs.conditional_expected_average_profit(s.frequency[repeat], s.monetary[repeat])
    assert np.allclose(ours.expected_spend(s.valued[repeat], s.monetary[repeat]), spend,
                       rtol=1e-3)
    assert isinstance(ours, gamma_gamma.GammaGamma)
