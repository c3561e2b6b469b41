"""The period the report compares with: the one before it.

A year-to-date period (from January 1, at most a year long; the report's default) is
compared with the same dates one year earlier, so the seasons match; any other period with
the period of the same length that ends where it starts. The as-of figures (customers, MRR
now, open gaps) are compared with the same shift of the as-of time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Shift = Callable[[datetime], datetime]


def _year_earlier(t: datetime) -> datetime:
    try:
        return t.replace(year=t.year - 1)
    except ValueError:  # February 29
        return t.replace(year=t.year - 1, day=28)


def previous_period(start: datetime, end: datetime) -> tuple[str, Shift]:
    """How to move an instant of [start, end) to the previous period: ("a year earlier",
    shift) for a year-to-date period, else ("just before", minus the period's length)."""
    year_start = datetime(start.year, 1, 1, tzinfo=UTC)
    if start == year_start and end <= year_start.replace(year=start.year + 1):
        return "the same dates a year earlier", _year_earlier
    length = end - start
    return "the period of the same length just before", lambda t: t - length
