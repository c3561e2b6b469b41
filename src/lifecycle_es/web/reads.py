"""What the console reads, through the engine's public read API only: the read models'
queries, their freshness, and the wait of read-your-writes. Requests never catch up."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from lifecycle_es.engine import Freshness, ProjectionManager, freshness
from lifecycle_es.reading.audit.records import export_json
from lifecycle_es.reading.audit.verify import VerifyReport, verify
from lifecycle_es.reading.lifecycle_checks.gaps import Gap
from lifecycle_es.reading.projection import queries

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

__all__ = ["Freshness", "Gap", "VerifyReport", "export_json", "fresh", "queries",
           "read_models", "verify", "wait_until_read"]


def read_models(engine: LifecycleEngine) -> ProjectionManager:
    """The read models requests read (the read store's with ``--read-store``); they are
    never caught up by a request (the follower, or ``projections run``, does it)."""
    pm = engine.reader.projections
    pm.queries_catch_up = False
    return pm


def fresh(engine: LifecycleEngine, names: list[str]) -> Freshness:
    """How fresh the read models ``names`` are (shown at the foot of every page)."""
    return freshness(read_models(engine), names)


def wait_until_read(engine: LifecycleEngine, timeout: float) -> bool:
    """After a write: wait (at most ``timeout`` seconds) until every read model includes the
    log's head as it is now; whether they did."""
    target = engine.projections.head()
    pm = read_models(engine)
    deadline = time.monotonic() + timeout
    while True:
        if freshness(pm, pm.names).position >= target:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
