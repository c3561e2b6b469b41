"""Exact arithmetic and calendar helpers for the metrics: instants, UTC months, medians.

Rates are :class:`fractions.Fraction` so a rate defined exactly is computed exactly; rounding
happens only when printing.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction

from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.limits import utc_instant

_DAY_US = 86_400_000_000
#: average days per month, used to scale a period that is not whole calendar months
DAYS_PER_MONTH = Fraction(36525, 1200)  # 365.25 / 12

When = date | datetime | str


def instant(value: When, field: str) -> datetime:
    """A date (midnight UTC), an aware datetime, or ISO 8601 text as an aware UTC datetime.

    Text without an offset is read as UTC; bad text raises InvalidInput naming ``field``.
    """
    if isinstance(value, str):
        try:
            value = (date.fromisoformat(value) if len(value.strip()) == 10
                     else datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
        except ValueError:
            raise InvalidInput([FieldProblem(
                field, value, "expected a date YYYY-MM-DD or an ISO 8601 time")]) from None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return utc_instant(field, value)  # UTC, in the supported range


def check_period(start: datetime, end: datetime) -> None:
    if end <= start:
        raise InvalidInput([FieldProblem("to", end.isoformat(),
                                         f"must be after from={start.isoformat()}")])


def month_start(t: datetime) -> datetime:
    """Midnight UTC on the first day of ``t``'s UTC month."""
    t = t.astimezone(UTC)
    return datetime(t.year, t.month, 1, tzinfo=UTC)


def add_months(t: datetime, k: int) -> datetime:
    """The first of the month ``k`` months after month-start ``t``."""
    n = t.year * 12 + t.month - 1 + k
    return datetime(n // 12, n % 12 + 1, 1, tzinfo=UTC)


def month_label(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m")


def label_start(label: str) -> datetime:
    """``YYYY-MM`` as the first instant of that month."""
    return datetime(int(label[:4]), int(label[5:7]), 1, tzinfo=UTC)


def months_between(a: str, b: str) -> int:
    """Whole months from month label ``a`` to ``b`` (``2024-01`` -> ``2024-03`` is 2)."""
    return (int(b[:4]) - int(a[:4])) * 12 + int(b[5:7]) - int(a[5:7])


def period_months(start: datetime, end: datetime) -> Fraction:
    """Length of [start, end) in months: whole calendar months when both ends are the first
    of a month at midnight UTC, else days / (365.25 / 12)."""
    if start == month_start(start) and end == month_start(end):
        return Fraction((end.year - start.year) * 12 + end.month - start.month)
    return days(end - start) / DAYS_PER_MONTH


def days(delta: timedelta) -> Fraction:
    """A duration in days, exactly (microsecond resolution)."""
    return Fraction(micros(delta), _DAY_US)


def micros(delta: timedelta) -> int:
    """A duration in whole microseconds (the resolution of the stored times)."""
    return delta // timedelta(microseconds=1)


def seconds_to_micros(seconds: float) -> int:
    """A stored float of seconds (``timedelta.total_seconds()``) back to exact microseconds:
    the float holds them exactly for any duration under ~285 years."""
    return round(seconds * 1_000_000)


def micros_to_days(value: Fraction | int | None) -> Fraction | None:
    """Microseconds (e.g. a median of durations) as exact days; None stays None."""
    return None if value is None else Fraction(value) / _DAY_US


def ratio(numerator: int | Fraction, denominator: int | Fraction) -> Fraction | None:
    """numerator / denominator, or None (undefined) when the denominator is 0."""
    return None if denominator == 0 else Fraction(numerator) / Fraction(denominator)


def median(values: Sequence[Fraction | int]) -> Fraction | None:
    """The median (mean of the two middle values for an even count); None when empty."""
    if not values:
        return None
    s = sorted(values)
    mid = len(s) // 2
    return Fraction(s[mid]) if len(s) % 2 else (Fraction(s[mid - 1]) + Fraction(s[mid])) / 2


def percentile(values: Sequence[Fraction | int], p: int) -> Fraction | None:
    """The ``p``-th percentile by the nearest-rank method: the value at rank ceil(p/100 * n)
    of the sorted values. None when empty."""
    if not values:
        return None
    s = sorted(values)
    return Fraction(s[max(1, math.ceil(Fraction(p, 100) * len(s))) - 1])
