"""The live follower: catch up, then apply new events as they are recorded, surviving lost
connections (capped, jittered back-off) and retrying failed read models now and then."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from lifecycle_es.backoff import Backoff
from lifecycle_es.logs import get_logger
from lifecycle_es.reading.projection.catch_up import CatchUp
from lifecycle_es.reading.projection.db import ReadStore, is_transient
from lifecycle_es.reading.projection.failures import RebuildNeeded, one_line

if TYPE_CHECKING:
    from lifecycle_es.reading.projection.source import LogSource

log = get_logger("lifecycle_es.projection")

#: a following runner retries a failed read model at most this often (seconds)
FAILED_RETRY_EVERY = 30.0
#: reconnect back-off of a following runner: first delay, cap (seconds); each delay is
#: drawn uniformly from [0, d] where d doubles from the first to the cap (lifecycle_es.backoff)
BACKOFF_FIRST, BACKOFF_CAP = 0.1, 5.0


class Follower:
    """Keeps read models current until stopped (``projections run``)."""

    def __init__(self, catch_up: CatchUp) -> None:
        self.catch_up = catch_up
        self.m = catch_up.m

    def run(self, selected: Sequence[str], batch_size: int, poll_interval: float,
            stop: threading.Event, skip_failing: bool) -> int:
        """Follow ``selected`` until ``stop`` is set; returns events applied."""
        source = self.m.source
        total, attempts = 0, 0
        retry_at: dict[str, float] = {}  # failed read model -> when to retry it
        waiter = Waiter(source, self.m.read)
        try:
            while not stop.is_set():
                try:
                    total += self._round(selected, batch_size, skip_failing, retry_at, waiter)
                    if attempts:
                        log.warning("projections.reconnected", attempts=attempts)
                        attempts = 0
                    waiter.wait(poll_interval, stop)
                except Exception as exc:
                    if not is_transient(exc):
                        raise
                    attempts += 1
                    waiter.close()
                    delay = _backoff(attempts)
                    log.warning("projections.connection_lost", attempt=attempts,
                                retry_in_s=round(delay, 3), store=source.store.redacted(),
                                error=one_line(exc, source.store.password))
                    stop.wait(delay)
        finally:
            waiter.close()
        return total

    def _round(self, selected: Sequence[str], batch_size: int, skip_failing: bool,
               retry_at: dict[str, float], waiter: Waiter) -> int:
        """One catch-up of the read models due (failed ones wait their retry time)."""
        self.m.read.ensure_open()
        waiter.connect()
        now = time.monotonic()
        due = [n for n in selected if retry_at.get(n, 0.0) <= now]
        applied, failed, stale = (self.catch_up.run(due, batch_size, None, skip_failing)
                                  if due else (0, [], []))
        if stale:
            raise RebuildNeeded(stale)
        for name in due:
            retry_at.pop(name, None)
        for f in failed:
            retry_at[f.projection] = now + FAILED_RETRY_EVERY
        if applied:
            log.info("projections.followed", events=applied, head=self.m.head())
        return applied


class Waiter:
    """Sleeps until new events may exist: PostgreSQL LISTEN on the store's channel, else poll.

    The LISTEN runs on the read models' own connection (``ReadStore``), not on one of its
    own: a live runner stays within the engine's connection budget (docs/operations.md).
    :meth:`connect` listens on that connection (again once it was reopened), :meth:`close`
    stops listening.
    """

    def __init__(self, source: LogSource, read: ReadStore) -> None:
        self.store = source.store
        self.channel = source.event_log.channel
        self.read = read
        self.conn: Any = None

    def connect(self) -> None:
        if self.store.kind != "postgresql" or not self.channel:
            return
        if self.conn is not None and self.conn is self.read.conn and not self.conn.closed:
            return
        from psycopg import sql

        self.read.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel))
                          .as_string(self.read.conn))
        self.conn = self.read.conn

    def close(self) -> None:
        if self.conn is not None:
            if self.conn is self.read.conn and not self.conn.closed:
                with suppress(Exception):
                    self.read.execute("UNLISTEN *")
            self.conn = None

    def wait(self, timeout: float, stop: threading.Event) -> None:
        """Return after a notification, after ``timeout`` seconds, or soon after ``stop``."""
        deadline = time.monotonic() + timeout
        while not stop.is_set() and (left := deadline - time.monotonic()) > 0:
            step = min(left, 0.2)
            if self.conn is None:
                stop.wait(step)
                continue
            with self.read.lock:  # other threads' queries wait at most one step
                if self.conn is not self.read.conn:  # reopened (an import set it aside)
                    self.connect()
                woke = list(self.conn.notifies(timeout=step, stop_after=1))
            if woke:
                with self.read.lock:
                    list(self.conn.notifies(timeout=0.001))  # drain a burst of NOTIFYs
                return


def _backoff(attempt: int) -> float:
    """Seconds to wait before reconnect attempt ``attempt`` (1, 2, ...): drawn from
    [0, d] (full jitter, ``lifecycle_es.backoff``), d = BACKOFF_FIRST doubled per attempt
    up to BACKOFF_CAP."""
    return Backoff(first=BACKOFF_FIRST, cap=BACKOFF_CAP).pause(attempt)
