"""Issue 25, item 9: one retry/back-off helper (exponential, full jitter, capped, a deadline)
used by the command retry, the store's reconnect and the live runner's reconnect."""

from __future__ import annotations

import time

import psycopg
import pytest

from lifecycle_es import backoff as helper
from lifecycle_es.backoff import Backoff, retry
from lifecycle_es.errors import ConcurrencyConflict
from lifecycle_es.reading.projection import follower as runner
from lifecycle_es.stores import faults
from lifecycle_es.stores.faults import StoreFault, guarded
from lifecycle_es.stores.url import StoreURL
from lifecycle_es.writing.retry import retry_on_conflict


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[tuple[float, float]]:
    """The bounds of every pause drawn; each pause is its upper bound, and not slept."""
    bounds: list[tuple[float, float]] = []
    monkeypatch.setattr(helper.random, "uniform", lambda a, b: bounds.append((a, b)) or b)
    monkeypatch.setattr(helper.time, "sleep", lambda s: None)
    return bounds


def test_ceilings_double_from_first_to_cap_and_pauses_are_full_jitter() -> None:
    b = Backoff(first=0.1, cap=1.0)
    assert [b.ceiling(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])
    assert b.ceiling(10_000) == 1.0  # no overflow
    pauses = [b.pause(3) for _ in range(2000)]
    assert min(pauses) >= 0 and max(pauses) <= 0.4
    assert min(pauses) < 0.04 and max(pauses) > 0.36  # the whole range, not [d/2, d]


def test_retry_stops_at_attempts_and_passes_other_errors(
        drawn: list[tuple[float, float]]) -> None:
    calls: list[int] = []
    seen: list[tuple[int, float]] = []

    def failing() -> int:
        calls.append(1)
        raise ConcurrencyConflict("customer 'a'")

    with pytest.raises(ConcurrencyConflict):
        retry(failing, retryable=lambda e: isinstance(e, ConcurrencyConflict),
              backoff=Backoff(0.01, 0.05), deadline=time.monotonic() + 60, attempts=4,
              on_retry=lambda n, e, p: seen.append((n, p)))
    assert len(calls) == 4 and seen == [(1, 0.01), (2, 0.02), (3, 0.04)]
    assert drawn == [(0, 0.01), (0, 0.02), (0, 0.04), (0, 0.05)]

    def wrong() -> int:
        calls.append(1)
        raise ValueError("not retried")

    calls.clear()
    with pytest.raises(ValueError, match="not retried"):
        retry(wrong, retryable=lambda e: isinstance(e, ConcurrencyConflict),
              backoff=Backoff(0.01, 0.05), deadline=time.monotonic() + 60)
    assert len(calls) == 1


def test_retry_gives_up_before_passing_its_deadline() -> None:
    calls: list[float] = []

    def failing() -> int:
        calls.append(time.monotonic())
        raise ConcurrencyConflict("customer 'a'")

    started = time.monotonic()
    with pytest.raises(ConcurrencyConflict):
        retry(failing, retryable=lambda e: True, backoff=Backoff(0.02, 0.05),
              deadline=started + 0.3)
    assert time.monotonic() - started < 0.3 + 0.05 and len(calls) > 2


def test_the_command_retry_uses_it(drawn: list[tuple[float, float]]) -> None:
    with pytest.raises(ConcurrencyConflict):
        retry_on_conflict(lambda: (_ for _ in ()).throw(ConcurrencyConflict("customer 'a'")),
                          attempts=3, backoff=0.005, budget=60)
    assert drawn == [(0, 0.01), (0, 0.02), (0, 0.04)]


def test_the_store_reconnect_uses_it(drawn: list[tuple[float, float]]) -> None:
    """A lost PostgreSQL connection is tried again with the helper's pauses; other driver
    errors become a StoreFault at once."""
    store = StoreURL.parse("postgresql://u@127.0.0.1:1/db?timeout=5")
    calls: list[int] = []

    def lost() -> int:
        calls.append(1)
        if len(calls) < 3:
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return 7

    assert guarded(store, lost, retry_lost=True) == 7
    assert drawn == [(0, faults.RECONNECT.ceiling(1)), (0, faults.RECONNECT.ceiling(2))]
    calls.clear()
    with pytest.raises(StoreFault, match="unreachable"):
        guarded(store, lost)  # not asked to retry: the first loss is a fault
    assert len(calls) == 1


def test_the_live_runner_reconnect_uses_it(drawn: list[tuple[float, float]]) -> None:
    assert [runner._backoff(n) for n in (1, 2, 10)] == pytest.approx(
        [runner.BACKOFF_FIRST, 2 * runner.BACKOFF_FIRST, runner.BACKOFF_CAP])
    assert [low for low, _ in drawn] == [0, 0, 0]
