"""From purchases to the models' inputs: per customer, occasions (UTC calendar days with a
purchase or payment), frequency, recency, T and the mean value of the repeat occasions.

Days are whole UTC calendar days, as ``lifetimes.utils.summary_data_from_transaction_data``
counts them: an occasion is the day it happened on, and the last day observed is the day
before the as-of date (``observation_period_end``). So ``T`` of a customer first buying on
the last day observed is 0.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import numpy as np
from numpy.typing import NDArray

from lifecycle_es.display import major_units

Array = NDArray[np.float64]
#: days per time unit
UNITS = {"day": 1, "week": 7}


@dataclass(frozen=True)
class Purchase:
    """One purchase or payment event (``amount`` None for a purchase: a contract carries an
    MRR, not an amount paid)."""

    customer: str
    at: datetime
    amount: int | None = None
    currency: str | None = None


@dataclass(frozen=True)
class Summary:
    """The customers with an occasion before the as-of time, in customer order, and their
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


def summarise(purchases: Iterable[Purchase], as_of: datetime, unit: str = "day") -> Summary:
    """The :class:`Summary` of the ``purchases`` before ``as_of``, in ``unit`` (day|week)."""
    last = last_day_observed(as_of)
    days: dict[str, dict[date, int | None]] = {}
    currency: dict[str, tuple[datetime, str]] = {}
    for p in purchases:
        if p.at >= as_of:
            continue
        day = p.at.astimezone(UTC).date()
        occasions = days.setdefault(p.customer, {})
        if p.amount is None:
            occasions.setdefault(day, None)
            continue
        occasions[day] = (occasions.get(day) or 0) + p.amount
        if p.currency is not None and (p.customer not in currency
                                       or currency[p.customer][0] <= p.at):
            currency[p.customer] = (p.at, p.currency)
    customers = tuple(sorted(days))
    n = len(customers)
    freq, rec, T, valued, monetary = (np.zeros(n) for _ in range(5))
    currencies: list[str | None] = []
    for i, c in enumerate(customers):
        occasions = days[c]
        first, latest = min(occasions), max(occasions)
        cur = currency[c][1] if c in currency else None
        currencies.append(cur)
        freq[i] = len(occasions) - 1
        rec[i] = (latest - first).days
        T[i] = (last - first).days
        values = [v for d, v in occasions.items() if d != first and v is not None]
        if values and cur is not None:
            valued[i] = len(values)
            monetary[i] = major_units(sum(values), cur) / len(values)
    per = UNITS[unit]
    return Summary(customers, tuple(currencies), freq, rec / per, T / per, valued, monetary,
                   last)
