"""From purchases to the models' inputs: per customer, occasions (UTC calendar days with a
purchase or payment), frequency, recency, T and the mean value of the repeat occasions.

Days are whole UTC calendar days, as ``lifetimes.utils.summary_data_from_transaction_data``
counts them: an occasion is the day it happened on, and the last day observed is the day
before the as-of date (``observation_period_end``). So ``T`` of a customer first buying on
the last day observed is 0. Vectorised with numpy: 25,000 customers take milliseconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from lifecycle_es.display import major_units
from lifecycle_es.reading.prediction.results import UNITS

Array = NDArray[np.float64]


class Purchase(NamedTuple):
    """A day's purchases of one customer: the sum of its payments in minor units (None for
    a day with only a ``purchase``: a contract carries an MRR, not an amount paid). The
    day is a date or its number (``date.toordinal()``, as the read gives it)."""

    customer: str
    day: date | int
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Summary:
    """The customers with an occasion before the as-of date, in customer order, and their
    figures in the time unit (arrays aligned with ``customers``)."""

    customers: tuple[str, ...]
    currencies: tuple[str | None, ...]  # the currency of the customer's payments
    frequency: Array  # occasions after the first
    recency: Array  # first to last occasion
    T: Array  # first occasion to the last day observed
    valued: Array  # repeat occasions with a payment (the Gamma-Gamma x)
    monetary: Array  # their mean value in major units (0 without one)
    last_day: date  # the last day observed


def last_day_observed(as_of: datetime) -> date:
    """The last UTC calendar day before ``as_of`` (a date's midnight: the day before)."""
    return (as_of.astimezone(UTC) - timedelta(microseconds=1)).date()


def summarise(purchases: Sequence[Purchase], as_of: datetime, unit: str = "day") -> Summary:
    """The :class:`Summary` of the ``purchases`` on days before ``as_of``, in ``unit``."""
    last = last_day_observed(as_of).toordinal()
    kept = [(c, d if isinstance(d, int) else d.toordinal(), amount, cur)
            for c, d, amount, cur in purchases]
    kept = [p for p in kept if p[1] <= last]
    customers = sorted({p[0] for p in kept})
    index = {c: i for i, c in enumerate(customers)}
    currency: dict[str, str] = {p[0]: p[3] for p in kept if p[3]}
    who = np.fromiter((index[p[0]] for p in kept), np.int64, len(kept))
    day = np.fromiter((p[1] for p in kept), np.int64, len(kept))
    paid = np.fromiter((p[2] is not None for p in kept), bool, len(kept))
    amount = np.fromiter((p[2] or 0 for p in kept), np.float64, len(kept))
    span = 1 << 22  # past the largest day ordinal (3,652,059)
    keys, occasion = np.unique(who * span + day, return_inverse=True)
    value = np.bincount(occasion, weights=amount, minlength=len(keys))
    has_payment = np.bincount(occasion, weights=paid, minlength=len(keys)) > 0
    occ_who, occ_day = keys // span, keys % span  # sorted: by customer, then day
    _, first_at, count = np.unique(occ_who, return_index=True, return_counts=True)
    first = occ_day[first_at]
    latest = occ_day[first_at + count - 1]
    repeat = has_payment & (occ_day != first[occ_who])
    valued = np.bincount(occ_who[repeat], minlength=len(customers)).astype(np.float64)
    total = np.bincount(occ_who[repeat], weights=value[repeat], minlength=len(customers))
    currencies = tuple(currency.get(c) for c in customers)
    divisor = np.array([major_units(1, cur) if cur else 0.0 for cur in currencies])
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(valued > 0, total * divisor / np.maximum(valued, 1), 0.0)
    per = UNITS[unit]
    return Summary(tuple(customers), currencies, (count - 1).astype(np.float64),
                   (latest - first) / per, (last - first) / per, valued, monetary,
                   date.fromordinal(last))
