"""Optimistic concurrency: racing writers on the same customers lose nothing and duplicate
nothing. Several processes on PostgreSQL through ``retry_on_conflict``, and a forced race
between two engines in one process on both durable stores.

Every test makes its race happen (a barrier, or a write forced between a load and its save)
and asserts that it did: a test whose writers never collided would prove nothing.
"""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from typing import Any

import pytest

from lifecycle_es import (
    ConcurrencyConflict,
    InvariantViolation,
    LifecycleEngine,
    retry_on_conflict,
)
from lifecycle_es.domain import Customer

CUSTOMERS = ["c0", "c1", "c2"]
WORKERS = 4
PAYMENTS = 12  # per worker and customer
AT: dict[str, Any] = {"at": "2024-03-01T09:00:00Z", "actor": "ann", "team": "sales"}


def _worker(url: str, worker: int, start: Any, loaded: Any, results: Any) -> None:
    """One process: PAYMENTS payments on every customer, retried on conflicts.

    Its first load waits at ``loaded`` until every worker has loaded: all of them then hold
    the same version of c0 and try to save the next one, so WORKERS - 1 saves must conflict.
    """
    engine = LifecycleEngine(url)
    conflicts = 0
    real_get = engine.writer.repository.get
    waited: list[bool] = []

    def get_then_wait(*args: Any, **kwargs: Any) -> Any:
        aggregate = real_get(*args, **kwargs)
        if not waited:
            waited.append(True)
            loaded.wait(60)
        return aggregate

    engine.writer.repository.get = get_then_wait  # type: ignore[method-assign]

    def pay(customer: str, n: int) -> int:
        nonlocal conflicts
        try:
            return engine.payment(customer=customer, amount=100 * worker + n, currency="EUR",
                                  correlation_id=f"w{worker}-{customer}-{n}", **AT)
        except ConcurrencyConflict:
            conflicts += 1
            raise

    start.wait(30)
    try:
        for n in range(PAYMENTS):
            for customer in CUSTOMERS:
                retry_on_conflict(pay, customer, n, attempts=100)
        results.put((worker, conflicts, None))
    except Exception as exc:  # report to the parent instead of dying silently
        results.put((worker, conflicts, repr(exc)))
    finally:
        engine.close()


@pytest.mark.slow
def test_processes_racing_on_postgres_record_every_command_exactly_once(
    store_url_factory: Any,
) -> None:
    url = store_url_factory("postgres")
    setup = LifecycleEngine(url)
    for customer in CUSTOMERS:
        setup.register(customer=customer, name=customer, segment="smb", source="web", **AT)
    ctx = multiprocessing.get_context("spawn")
    start, loaded, results = ctx.Event(), ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, w, start, loaded, results))
             for w in range(WORKERS)]
    for p in procs:
        p.start()
    start.set()
    outcomes = [results.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(30)
    assert [err for _, _, err in outcomes] == [None] * WORKERS

    expected = {f"w{w}-{c}-{n}" for w in range(WORKERS) for c in CUSTOMERS
                for n in range(PAYMENTS)}
    seen: Counter[str] = Counter()
    for customer in CUSTOMERS:
        history = setup.history(customer)
        assert [e.originator_version for e in history] == list(range(1, len(history) + 1))
        payments = [e for e in history if isinstance(e, Customer.PaymentReceived)]
        assert len(payments) == WORKERS * PAYMENTS
        seen.update(e.correlation_id or "" for e in payments)
        state = setup.customer(customer).state
        assert state.total_paid == sum(e.amount for e in payments)
    assert set(seen) == expected and set(seen.values()) == {1}
    assert setup.writer.recorder.max_notification_id() is not None
    setup.close()
    # The race was real: every worker loaded c0 at version 1 before any saved, so all but
    # one of their first saves conflicted (and were retried).
    assert sum(n for _, n, _ in outcomes) >= WORKERS - 1


def test_two_engines_racing_one_gets_conflict_and_nothing_is_lost(
    durable_store_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Engine B loads the customer, engine A writes first, B's save must conflict."""
    a, b = LifecycleEngine(durable_store_url), LifecycleEngine(durable_store_url)
    try:
        a.register(customer="acme", name="Acme", segment="smb", source="web", **AT)
        real_get = b.writer.repository.get
        raced: list[int] = []

        def get_then_lose_the_race(*args: Any, **kwargs: Any) -> Any:
            aggregate = real_get(*args, **kwargs)
            if not raced:  # A writes between B's load and B's save, once
                raced.append(a.payment(customer="acme", amount=1, currency="EUR", **AT))
            return aggregate

        monkeypatch.setattr(b.writer.repository, "get", get_then_lose_the_race)
        with pytest.raises(ConcurrencyConflict, match=r"customer 'acme'.*retry"):
            b.payment(customer="acme", amount=2, currency="EUR", **AT)
        assert raced == [2]
        assert len(a.history("acme")) == 2  # B wrote nothing

        raced.clear()  # the retry loses the race once more, then wins
        assert retry_on_conflict(b.payment, customer="acme", amount=2, currency="EUR",
                                 **AT) == 4
        assert raced == [3]  # A's second payment came between B's load and save
        history = a.history("acme")
        assert [getattr(e, "amount", None) for e in history] == [None, 1, 1, 2]
        assert a.customer("acme").state.total_paid == 4
    finally:
        a.close()
        b.close()


def test_racing_registrations_of_one_customer_register_it_once(
    durable_store_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    a, b = LifecycleEngine(durable_store_url), LifecycleEngine(durable_store_url)
    try:
        real_get = b.writer.repository.get

        def get_then_lose_the_race(*args: Any, **kwargs: Any) -> Any:
            try:
                return real_get(*args, **kwargs)
            finally:
                a.register(customer="acme", name="A", segment="smb", source="web", **AT)

        monkeypatch.setattr(b.writer.repository, "get", get_then_lose_the_race)
        with pytest.raises(ConcurrencyConflict):
            b.register(customer="acme", name="B", segment="smb", source="web", **AT)
        monkeypatch.undo()
        with pytest.raises(InvariantViolation, match="already registered"):
            retry_on_conflict(b.register, customer="acme", name="B", segment="smb",
                              source="web", **AT)
        assert [e.name for e in a.history("acme")] == ["A"]  # type: ignore[attr-defined]
    finally:
        a.close()
        b.close()


OPENERS = 6
_opening: Any = None  # the barrier of a pool process, set by its initializer


def _set_barrier(barrier: Any) -> None:
    global _opening
    _opening = barrier


def _open_fresh_store(url: str) -> tuple[float, float, str]:
    """One process opening a store (event tables and read-model schema) for the first time,
    once every opener is ready; returns when it started and ended (``time.time()``)."""
    _opening.wait(60)
    started = time.time()
    try:
        engine = LifecycleEngine(url)
        engine.projections.catch_up()
        engine.close()
        return started, time.time(), "ok"
    except Exception as exc:
        return started, time.time(), repr(exc)


@pytest.mark.slow
def test_processes_opening_a_new_postgres_store_at_once_all_succeed(
    store_url_factory: Any,
) -> None:
    """CREATE SCHEMA/TABLE IF NOT EXISTS races with itself in PostgreSQL; opening must not.

    The openers start together (a barrier) and the test asserts they really overlapped: the
    last one started before the first one finished.
    """
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(OPENERS, initializer=_set_barrier,
                  initargs=(ctx.Barrier(OPENERS),)) as pool:
        for _ in range(3):
            url = store_url_factory("postgres")
            runs = pool.map(_open_fresh_store, [url] * OPENERS)
            assert [outcome for _, _, outcome in runs] == ["ok"] * OPENERS
            assert max(start for start, _, _ in runs) < min(end for _, end, _ in runs)
