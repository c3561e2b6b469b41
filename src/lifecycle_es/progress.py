"""Progress of long work behind a small interface: the library reports, the host renders.

Library code (catch-up, import, demo generation) wraps long work in :func:`track` and calls
the :data:`Progress` callback it gets with ``(done, total)``; it never knows how (or whether)
progress is shown. A host installs a :class:`Reporter` with :func:`reporting` (the CLI's
draws a rich bar on a terminal and logs structured lines otherwise, ``cli/progress.py``);
without one, :func:`track` hands out a callback that does nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Protocol

#: progress(units done, units to do; 0 when unknown) — called as the work goes on
Progress = Callable[[int, int], None]


class Reporter(Protocol):
    """Shows one piece of work: ``what`` (e.g. ``"catch-up"``) counted in ``unit``s."""

    def __call__(self, what: str, unit: str) -> AbstractContextManager[Progress]: ...


_REPORTER: ContextVar[Reporter | None] = ContextVar("lifecycle_es_progress", default=None)


def _ignore(done: int, total: int) -> None:
    """The callback of :func:`track` when no reporter is installed."""


def track(what: str, unit: str = "events") -> AbstractContextManager[Progress]:
    """The installed reporter's callback for this piece of work (a no-op without one)."""
    reporter = _REPORTER.get()
    return nullcontext(_ignore) if reporter is None else reporter(what, unit)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    """Show the progress of everything :func:`track`-ed inside the block with ``reporter``."""
    token = _REPORTER.set(reporter)
    try:
        yield
    finally:
        _REPORTER.reset(token)
