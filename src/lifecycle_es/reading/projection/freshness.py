"""How far behind the read models of a store are: what a query on a read store reports.

A read store (a replica, a read-only role) never catches its read models up, so an answer
read there is as fresh as the last event the read models include: its position, its
recording time and its age, beside the head of the log that store holds.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Sequence

    from lifecycle_es.reading.projection.runner import ProjectionManager


@dataclass(frozen=True)
class Freshness:
    """The oldest position among the read models read, and the event at it."""

    read_models: list[str]
    #: the last event every one of those read models includes (0: none yet)
    position: int
    #: recording time (UTC) of that event; None when position is 0
    recorded_at: datetime | None
    #: seconds from ``recorded_at`` to now; None when position is 0
    age_seconds: float | None
    #: the last event of the log on that store, and how many events the read models lack
    head: int
    behind: int

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["recorded_at"] = self.recorded_at.isoformat() if self.recorded_at else None
        return out

    def line(self) -> str:
        """One line for people (stderr)."""
        if self.position == 0:
            return (f"read models ({', '.join(self.read_models)}) include no event yet; "
                    f"the read store's log holds {self.head}")
        assert self.recorded_at is not None and self.age_seconds is not None
        return (f"read models ({', '.join(self.read_models)}) include events up to position "
                f"{self.position}, recorded {self.recorded_at:%Y-%m-%d %H:%M:%S} UTC "
                f"({_age(self.age_seconds)} ago); the read store's log head is {self.head} "
                f"({self.behind} not yet in the read models)")


def freshness(pm: ProjectionManager, names: Sequence[str] = (),
              now: datetime | None = None) -> Freshness:
    """The freshness of ``names`` (default: the read models queried through ``pm``, else
    all of them)."""
    chosen = sorted(names or pm.consulted or pm.names)
    placeholders = ", ".join("?" * len(chosen))
    row = pm.read.fetchone(
        f"SELECT MIN(position), COUNT(*) FROM projection_state WHERE version >= 0 "
        f"AND name IN ({placeholders})",
        chosen)
    built = int(row[1]) if row else 0
    position = int(row[0]) if row and row[0] is not None and built == len(chosen) else 0
    head = pm.head()
    recorded_at, age = None, None
    if position:
        recorded_at = _recorded_at(pm, position)
        if recorded_at is not None:
            age = max(0.0, ((now or datetime.now(UTC)) - recorded_at).total_seconds())
    return Freshness(read_models=chosen, position=position, recorded_at=recorded_at,
                     age_seconds=None if age is None else round(age, 3), head=head,
                     behind=max(0, head - position))


#: recording times kept per read-model manager (the latest positions asked)
_KEPT = 256


def _recorded_at(pm: ProjectionManager, position: int) -> datetime | None:
    """The recording time (UTC) of the event at ``position`` (None: no such event), read
    once: decoding an event costs more than the rest of a freshness."""
    kept = pm.recorded_at
    if position in kept:
        return kept[position]
    page = pm.log.page(position, 1)
    if not page:
        return None
    stamp: datetime = pm.log.to_domain_event(page[0]).timestamp.astimezone(UTC)
    if len(kept) >= _KEPT:
        kept.pop(next(iter(kept)))  # the oldest asked
    kept[position] = stamp
    return stamp


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.1f} days"
