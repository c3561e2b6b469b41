"""Work on gaps as of a time: whom each gap is assigned to, the latest snooze, a dismissal.

Read from ``gap_work`` (the ``gaps_facts`` read model): one row per ``gap_assigned``,
``gap_snoozed`` or ``gap_dismissed`` event, each with its business time, so a past AS_OF
gives the work as it stood then. The latest of each (by business time, then version) counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Protocol

from lifecycle_es.reading.lifecycle_checks.facts import FactsReader


class Identified(Protocol):
    """A gap as far as its work is concerned: its customer and its id."""

    @property
    def customer(self) -> str: ...

    @property
    def id(self) -> str: ...


@dataclass(frozen=True)
class Work:
    """The work on one gap at a time."""

    assignee: str | None = None
    until: date | None = None  # the latest snooze's day (in effect or not)
    dismissed: str | None = None  # the latest dismissal's reason

    def snoozed_at(self, at: datetime) -> date | None:
        """The day the gap shows again, while it is snoozed at ``at`` (else None)."""
        if self.until is None or at >= datetime.combine(self.until, time(), UTC):
            return None
        return self.until


@dataclass(frozen=True)
class WorkOnGaps:
    """The work on every gap (by gap id) at one time, and the customers it concerns."""

    by_gap: dict[str, Work]
    customers: frozenset[str]

    def of(self, gap: Identified) -> Work | None:
        """The work on ``gap`` (None: none); its id is built only when its customer has
        work on some gap (building an id costs more than a set lookup)."""
        return self.by_gap.get(gap.id) if gap.customer in self.customers else None


def work_on_gaps(reader: FactsReader, at: datetime, customer: str | None = None) -> WorkOnGaps:
    """The work on gaps (of ``customer``, or everyone's) as it stood at ``at``."""
    latest: dict[str, dict[str, Any]] = {}
    customers = set()
    for r in reader.gap_work(at, customer):  # in business-time order: the later wins
        work = latest.setdefault(r["gap_id"], {})
        customers.add(r["customer"])
        if r["action"] == "assigned":
            work["assignee"] = r["assignee"]
        elif r["action"] == "snoozed":
            work["until"] = r["until"]
        else:
            work["dismissed"] = r["reason"]
    return WorkOnGaps({gap: Work(**w) for gap, w in latest.items()}, frozenset(customers))
