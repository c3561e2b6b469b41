"""Retrying with back-off: the one formula every retry loop of the project uses.

Exponential back-off with *full jitter*: the pause before try ``n + 1`` is drawn uniformly from
``[0, min(cap, first * 2**(n - 1))]``, which spreads racing clients best (no two wake up in
step). :func:`retry` runs a call until it succeeds, fails for good, runs out of tries or would
pass its deadline. Used by ``writing/retry.py`` (a command that lost a race), ``stores/faults.py``
(a lost PostgreSQL connection) and the read models' live runner (reconnecting).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Pauses doubling from ``first`` seconds up to ``cap``, each drawn with full jitter."""

    first: float
    cap: float

    def ceiling(self, attempt: int) -> float:
        """The longest pause after failed try ``attempt`` (1, 2, ...)."""
        return min(self.cap, self.first * 2.0 ** min(max(attempt - 1, 0), 64))

    def pause(self, attempt: int) -> float:
        """A pause after failed try ``attempt``: uniform in ``[0, ceiling(attempt)]``."""
        return random.uniform(0, self.ceiling(attempt))


def retry(
    call: Callable[[], T], *, retryable: Callable[[Exception], bool], backoff: Backoff,
    deadline: float, attempts: int | None = None,
    on_retry: Callable[[int, Exception, float], None] | None = None,
) -> T:
    """``call()``, tried again after a :class:`Backoff` pause while it raises an exception
    ``retryable`` accepts.

    Gives up — raising the last exception — after ``attempts`` tries (if given) or when the
    next pause would end past ``deadline`` (a ``time.monotonic()`` value). ``on_retry(try,
    exception, pause)`` is called before each pause (to log it). Other exceptions pass
    through at once.
    """
    tries = 0
    while True:
        tries += 1
        try:
            return call()
        except Exception as exc:
            if not retryable(exc):
                raise
            pause = backoff.pause(tries)
            if (attempts is not None and tries >= attempts) or \
                    time.monotonic() + pause >= deadline:
                raise
            if on_retry is not None:
                on_retry(tries, exc, pause)
            time.sleep(pause)
