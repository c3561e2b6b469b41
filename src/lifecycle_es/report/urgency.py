"""Which gaps to act on first.

Kinds in order of urgency (:data:`KIND_ORDER`); within a kind, the most pressing first:
renewals by the soonest contract end, stale handovers by the oldest past their SLA,
detractors by the newest answer (a fresh complaint is still recoverable), the rest oldest
first. The "act on these first" list is the first :data:`FIRST_PER_KIND` of each of the
:data:`URGENT` kinds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

KIND_ORDER = ("renewal_at_risk", "handover_stale", "detractor_ignored", "lapsing", "unowned",
              "unknown_offer", "stalled", "promoter_not_asked")
#: the kinds of the "act on these first" list
URGENT = KIND_ORDER[:3]
#: gaps of each urgent kind in the "act on these first" list
FIRST_PER_KIND = 5


def urgency_key(kind: str, since: datetime, contract_end: date | None) -> tuple[Any, ...]:
    """Sort key: kind by :data:`KIND_ORDER`, then the kind's own order."""
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    if kind == "renewal_at_risk":
        return rank, contract_end or date.max, since.timestamp()
    if kind == "detractor_ignored":
        return rank, -since.timestamp()
    return rank, since.timestamp()


def act_first(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per urgent kind: its first rows (``rows`` sorted by urgency) and how many more."""
    out = []
    for kind in URGENT:
        of_kind = [r for r in rows if r["kind"] == kind]
        out.append({"kind": kind, "rows": list(of_kind[:FIRST_PER_KIND]),
                    "more": max(0, len(of_kind) - FIRST_PER_KIND)})
    return out
