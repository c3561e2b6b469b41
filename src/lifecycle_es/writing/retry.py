"""Retrying a command that lost a race for its aggregate (:class:`ConcurrencyConflict`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from lifecycle_es.backoff import Backoff, retry
from lifecycle_es.errors import ConcurrencyConflict
from lifecycle_es.logs import get_logger

log = get_logger("lifecycle_es.writing")
T = TypeVar("T")


#: seconds :func:`retry_on_conflict` goes on retrying by default: 16 writers x 100 commands
#: on the same 5 customers took up to 8.5 s for one command on a loaded 2-core machine
RETRY_BUDGET = 30.0
#: the longest pause between two tries of :func:`retry_on_conflict` (longer pauses starve
#: the unlucky: the others win meanwhile)
RETRY_MAX_PAUSE = 0.05


def retry_on_conflict(
    func: Callable[..., T], *args: Any, budget: float = RETRY_BUDGET,
    attempts: int | None = None, backoff: float = 0.005, **kwargs: Any,
) -> T:
    """Call ``func`` and retry it on :class:`ConcurrencyConflict` (reloading is up to ``func``).

    Retries go on for ``budget`` seconds (and at most ``attempts`` calls, if given), after a
    pause drawn at random up to ``backoff * 2**tries``, capped at :data:`RETRY_MAX_PAUSE`
    (full jitter spreads the racers; ``lifecycle_es.backoff``). When the budget or the tries
    run out, the last :class:`ConcurrencyConflict` is raised. Engine command methods reload
    the aggregate on every call, so ``retry_on_conflict(engine.payment, customer=..., ...)``
    is safe.
    """
    def conflict(exc: Exception) -> bool:
        return isinstance(exc, ConcurrencyConflict)

    try:
        return retry(lambda: func(*args, **kwargs), retryable=conflict,
                     backoff=Backoff(first=backoff * 2, cap=RETRY_MAX_PAUSE),
                     deadline=time.monotonic() + budget, attempts=attempts)
    except ConcurrencyConflict:
        log.info("retry_on_conflict.gave_up", budget=budget)
        raise
