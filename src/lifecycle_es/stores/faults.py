"""Store faults as :class:`~lifecycle_es.errors.StoreError`, within the store's timeout.

The recorders (``stores/recorders.py``) run every call that touches the event store through
:func:`guarded`: a driver or library error other than a version clash (``IntegrityError``,
which the engine turns into :class:`~lifecycle_es.errors.ConcurrencyConflict`) leaves as a
:class:`StoreFault` with a one-line message that names the store (never its password) and
why: a lock not granted within the timeout, the server unreachable, a read-only file.

Every wait is bounded by the store URL's ``timeout`` (seconds; see ``stores/url.py``): the
SQLite busy timeout, the PostgreSQL connection-pool wait and ``lock_timeout``. A PostgreSQL
connection found broken (the server restarted, ``pg_terminate_backend``) is replaced and the
call tried again, within the same time.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import psycopg
from eventsourcing.persistence import IntegrityError, OperationalError, PersistenceError
from psycopg_pool import PoolClosed, PoolTimeout

from lifecycle_es.backoff import Backoff, retry
from lifecycle_es.errors import LifecycleError, StoreError, first_line
from lifecycle_es.logs import get_logger

if TYPE_CHECKING:
    from lifecycle_es.stores.url import StoreURL

log = get_logger("lifecycle_es.stores.faults")
T = TypeVar("T")

#: the errors a store call can raise besides a version clash
DRIVER_ERRORS: tuple[type[Exception], ...] = (PersistenceError, sqlite3.Error, psycopg.Error)
#: PostgreSQL error classes of a lost connection: 08 connection exception, 57P operator
#: intervention (admin shutdown: ``pg_terminate_backend``, crash shutdown, cannot connect now)
_LOST = ("08", "57P")
#: pauses before another try on a new connection: 10 ms doubling up to 0.2 s
RECONNECT = Backoff(first=0.01, cap=0.2)
_LOCKED_SQLITE = ("database is locked", "database table is locked", "database schema is locked")
#: PostgreSQL error classes of a store that refuses every write, whatever the statement:
#: 25006 read-only transaction (a replica, ``default_transaction_read_only``), 53 insufficient
#: resources (disk full, out of memory)
_REFUSING = ("25006", "53")
_FULL = "database or disk is full"


class StoreFault(StoreError, OperationalError):
    """The store failed or did not answer in time: a :class:`StoreError`.

    It is also ``eventsourcing``'s ``OperationalError``, so code written against the library
    (catching that) keeps working.
    """


def _cause(exc: BaseException) -> BaseException:
    """The driver's exception behind the library's wrapper (the library raises ``from``)."""
    while isinstance(exc, PersistenceError) and exc.__cause__ is not None:
        exc = exc.__cause__
    return exc


def lost_connection(exc: BaseException) -> bool:
    """Whether ``exc`` says a PostgreSQL connection broke (worth a new connection and another
    try), not that the server is unreachable, a lock timed out or a statement was wrong."""
    cause = _cause(exc)
    if isinstance(cause, (PoolTimeout, PoolClosed)) or not isinstance(
            cause, (psycopg.OperationalError, psycopg.InterfaceError)):
        return False
    state = cause.sqlstate
    return state is None or state.startswith(_LOST)


def refusing(exc: BaseException) -> bool:
    """Whether ``exc`` says the store refuses writes (read-only, full), not that the
    statement or its values were wrong: a store fault, not an event's."""
    cause = _cause(exc)
    return isinstance(cause, psycopg.Error) and (cause.sqlstate or "").startswith(_REFUSING)


def fault(exc: BaseException, store: StoreURL) -> StoreFault:
    """``exc`` (a driver or library error) as a one-line :class:`StoreFault`.

    :func:`guarded` raises it outside the ``except`` block that caught ``exc``, so that no
    chain leads to the driver's message (which could quote a connection string)."""
    cause = _cause(exc)
    detail = first_line(cause, store.password) or type(cause).__name__
    where = f"store {store.redacted()}"
    if isinstance(cause, psycopg.errors.LockNotAvailable) or (
            isinstance(cause, sqlite3.OperationalError) and detail.startswith(_LOCKED_SQLITE)):
        why = (f"locked by another transaction: gave up after {store.timeout} s "
               "(the store URL's timeout=)")
    elif isinstance(cause, PoolTimeout) or (
            isinstance(cause, psycopg.OperationalError) and lost_connection(cause)):
        why = f"unreachable (gave up after {store.timeout} s)"
    elif "readonly" in detail or "read-only" in detail:
        why = ("read-only (a replica or a read-only role: give it as --read-store to query it)"
               if store.kind == "postgresql" and not store.read_only else "read-only")
    elif isinstance(cause, psycopg.errors.DiskFull) or (
            isinstance(cause, sqlite3.OperationalError) and detail.startswith(_FULL)):
        why = "disk full (free space where the store lives, then run the command again)"
    elif isinstance(cause, sqlite3.OperationalError) and detail.startswith("disk I/O error"):
        why = "I/O error (a full disk cannot take the journal, or the disk fails)"
    else:
        why = type(cause).__name__
    return StoreFault(f"{where}: {why}: {detail}")


def guarded(store: StoreURL, call: Callable[[], T], *, retry_lost: bool = False) -> T:
    """``call()``, with its store faults raised as :class:`StoreFault`.

    With ``retry_lost`` (PostgreSQL, calls safe to repeat) a lost connection is tried again
    on another one after a short jittered pause (``lifecycle_es.backoff``), until
    ``store.timeout`` seconds have passed.
    """
    def lost(exc: Exception) -> bool:
        return retry_lost and isinstance(exc, DRIVER_ERRORS) and lost_connection(exc)

    def reconnect(attempt: int, exc: Exception, pause: float) -> None:
        log.warning("store.reconnect", store=store.redacted(), attempt=attempt,
                    error=first_line(_cause(exc), store.password))

    try:
        return retry(call, retryable=lost, backoff=RECONNECT, on_retry=reconnect,
                     deadline=time.monotonic() + store.timeout)
    except (IntegrityError, LifecycleError):
        raise
    except DRIVER_ERRORS as exc:
        failed = fault(exc, store)
    raise failed  # outside the handler: no chain to the driver's error (see fault)


@contextmanager
def raised_as_faults(store: StoreURL) -> Iterator[None]:
    """Store faults inside the block leave it as :class:`StoreFault` (not tried again)."""
    try:
        yield
    except (IntegrityError, LifecycleError):
        raise
    except DRIVER_ERRORS as exc:
        raise fault(exc, store) from None


def unwrapped(method: Callable[..., Any]) -> Callable[..., Any]:
    """A library method without its own retry decorator (ten tries with a full connection
    wait each: 50 s on an outage); :func:`guarded` bounds the time instead."""
    func = getattr(method, "__wrapped__", None)
    owner = getattr(method, "__self__", None)
    if func is None or owner is None:
        return method
    return func.__get__(owner)  # type: ignore[no-any-return]
