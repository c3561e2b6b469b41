"""What ``projections status`` shows of each read model."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lifecycle_es.reading.projection.base import Projection
from lifecycle_es.reading.projection.state import ModelState


@dataclass(frozen=True)
class ProjectionStatus:
    """One read model's state, as ``projections status`` shows it."""

    name: str
    version: int
    stored_version: int | None
    position: int
    head: int
    lag: int
    rows: int
    rebuilt_at: str | None
    #: "up to date" | "behind" | "rebuild needed" | "not built" | "failed", then
    #: ", rebuilding ..." or ", rebuild failed" while a rebuild is under way
    state: str
    rebuild_position: int | None  # position of a rebuild in its second phase
    failure: dict[str, Any] | None = None  # the live tables' Failure (as a dict)
    rebuild_failure: dict[str, Any] | None = None  # the rebuild's Failure (as a dict)


def live_state(p: Projection, st: ModelState | None, head: int) -> str:
    """"up to date", "behind", "rebuild needed", "not built" or "failed"."""
    if st is None or not st.built:
        return "not built"
    if st.version != p.version:
        return "rebuild needed"
    if st.failure is not None:
        return "failed"
    return "up to date" if st.position >= head else "behind"


def rebuild_state(st: ModelState | None) -> str:
    """", rebuilding", ", rebuilding (by aggregate)", ", rebuild failed" or ''."""
    if st is None or not st.rebuilding:
        return ""
    if st.shadow_failure is not None:
        return ", rebuild failed"
    return ", rebuilding" + (" (by aggregate)" if st.phase_one else "")


def status_of(p: Projection, st: ModelState | None, head: int, rows: int) -> ProjectionStatus:
    """The status of ``p`` from its state row ``st`` (``rows``: its live tables' rows)."""
    state = live_state(p, st, head) + rebuild_state(st)
    if st is None:
        return ProjectionStatus(name=p.name, version=p.version, stored_version=None,
                                position=0, head=head, lag=head, rows=rows, rebuilt_at=None,
                                state=state, rebuild_position=None)
    position = st.position if st.built else 0
    return ProjectionStatus(
        name=p.name, version=p.version, stored_version=st.version if st.built else None,
        position=position, head=head, lag=max(0, head - position), rows=rows,
        rebuilt_at=str(st.rebuilt_at) if st.rebuilt_at else None, state=state,
        rebuild_position=(int(st.shadow_position or 0)
                          if st.rebuilding and not st.phase_one else None),
        failure=asdict(st.failure) if st.failure else None,
        rebuild_failure=(asdict(st.shadow_failure)
                         if st.rebuilding and st.shadow_failure else None),
    )
