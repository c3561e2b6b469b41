"""Buying without a contract, as gaps and health see it: the prediction (BG/NBD and
Gamma-Gamma, ``reading/prediction``) as of a time's date, and the customers whose
probability alive fell below a threshold while their value at stake is in the top share
(the ``lapsing`` gap; docs/metrics.md, "Gaps").

The value at stake is the expected value over the horizon *if the customer is still
buying*: expected value / p_alive (BG/NBD's expected purchases are p_alive times those of
a customer alive). Ranking by the expected value itself would rank a lapsing customer low
for the very reason it is lapsing."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import TYPE_CHECKING

from lifecycle_es.reading.prediction.results import (
    UNITS,
    CustomerPrediction,
    ModelNotFitted,
    Prediction,
)

if TYPE_CHECKING:
    from lifecycle_es.reading.source import Source


def figures(engine: Source, at: datetime, horizon: int = 90) -> Prediction | None:
    """The prediction as of ``at``'s date (kept per date); None when no model can be
    fitted (no purchases, no repeat purchase). numpy and scipy are imported here, when
    first used (the CLI starts without them)."""
    from lifecycle_es.reading.prediction.queries import Predictor

    try:
        return Predictor(engine).predict(at, horizon=horizon)
    except ModelNotFitted:
        return None


@dataclass(frozen=True)
class Lapsing:
    """A customer lapsing: its figures, and when its probability alive fell below the
    threshold (by the model fitted as of the date)."""

    figures: CustomerPrediction
    since: datetime
    stake: float  # expected value if still buying
    p_alive: float  # the threshold
    top_share: float
    horizon_days: int


def stake(c: CustomerPrediction) -> float:
    """The expected value if still buying: expected value / p_alive (0 without one)."""
    return (c.expected_value or 0.0) / c.p_alive if c.p_alive > 0 else 0.0


def lapsing(prediction: Prediction, p_alive: float, top_share: float,
            eligible: set[str] | None = None) -> list[Lapsing]:
    """The customers (of ``eligible``, None: all) not on a contract whose probability alive
    is below ``p_alive`` and whose value at stake (:func:`stake`) is in the ``top_share``
    of those of its currency."""
    buyers = [c for c in prediction.customers
              if not c.on_contract and c.expected_value is not None
              and (eligible is None or c.customer in eligible)]
    import numpy as np

    from lifecycle_es.reading.prediction.bgnbd import BgNbd

    m = prediction.model
    model = BgNbd(m.r, m.alpha, m.a, m.b)
    per = UNITS[prediction.unit]
    midnight = datetime.combine(prediction.as_of, time(), UTC)
    out = []
    for currency in sorted({c.currency for c in buyers if c.currency is not None}):
        mine = sorted((c for c in buyers if c.currency == currency), key=lambda c: -stake(c))
        top = mine[:math.ceil(top_share * len(mine))]
        for c in top:
            if c.p_alive >= p_alive or c.frequency == 0:
                continue
            crossed = float(model.time_p_alive_falls_to(
                p_alive, np.array([float(c.frequency)]), np.array([c.recency]))[0])
            # T counts to the day before the as-of date: that day ends at ``midnight``
            since = midnight - timedelta(days=(c.T - crossed) * per)
            since = min(since, midnight).replace(microsecond=0)
            out.append(Lapsing(c, since, stake(c), p_alive, top_share,
                               prediction.horizon_days))
    return out
