"""A large import keeps only each customer's last events in memory (issue 30).

Once the writer process runs, a customer of the import holds its state, the state before its
last 16 to 32 events, and those events (``Customer.rebase``); a void of an older event reads
the customer's events back from the writer's open transaction. Whichever process checks a
customer, and however far back a void reaches, the import must reach exactly the verdicts,
states and log of an import that keeps everything (``memory://``: nothing is folded away).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from test_import_shared_checking import import_counting_routes, stored_log, summary

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain.customer import Customer, CustomerState
from lifecycle_es.errors import InvalidInput
from lifecycle_es.writing import bulk_write
from lifecycle_es.writing.import_check import KEEP_EVENTS

CUSTOMERS = 16
EVENTS = 96  # per customer: well past 2 * KEEP_EVENTS, so each one is folded away twice
T0 = datetime(2024, 1, 1, tzinfo=UTC)
WHO = {"actor": "ann", "team": "success"}


def life(n: int, *, spoiled: bool) -> list[dict[str, Any]]:
    """Customer ``n``'s commands, one per version: payments and check-ins, two NPS answers,
    a handover accepted late, and voids of the latest event and of old ones (whose
    effects — total paid, last NPS, the handover — outlive the events kept in memory).
    ``spoiled`` adds commands the rules refuse only once the old events are known."""
    key = f"c{n:03d}"
    out: list[dict[str, Any]] = [
        {"type": "customer_registered", "name": f"Customer {n}", "segment": "smb",
         "source": "web", "team": "marketing", "actor": "mia"},
        {"type": "purchase", "plan": "pro", "mrr": 1000, "currency": "EUR",
         "contract_start": "2024-01-02", "contract_end": "2025-01-01"},
        {"type": "payment", "amount": 1000, "currency": "EUR"},  # version 3
        {"type": "handover_sent", "handover_id": "h1", "from_team": "sales",
         "to_team": "success", "team": "sales"},  # version 4
        {"type": "nps_answer", "score": 3},  # version 5
    ]
    while len(out) < EVENTS:
        v = len(out) + 1
        if v == 45:
            out.append({"type": "nps_answer", "score": 9})
        elif v == 60:  # an old payment (folded away at version 48): total_paid drops
            out.append({"type": "event_voided", "voided_version": 3, "reason": "twice"})
        elif v == 62:  # the latest event (kept in memory)
            out.append({"type": "event_voided", "voided_version": 61, "reason": "typo"})
        elif v == 70:  # an old NPS answer (folded away at 64): last_nps back to 3
            out.append({"type": "event_voided", "voided_version": 45, "reason": "wrong"})
        elif v == 80 and spoiled and n % 2:  # the handover of version 4 is voided: ...
            out.append({"type": "event_voided", "voided_version": 4, "reason": "wrong"})
        elif v == 85:  # ... so accepting it is refused for odd customers of a spoiled file
            out.append({"type": "handover_accepted", "handover_id": "h1"})
        elif v == 88 and spoiled:  # refused: voided at version 60, 28 events before
            out.append({"type": "event_voided", "voided_version": 3, "reason": "again"})
        elif v == 90 and spoiled:  # refused: a void cannot be voided
            out.append({"type": "event_voided", "voided_version": 62, "reason": "undo"})
        elif v % 2:
            out.append({"type": "payment", "amount": 1000 + v, "currency": "EUR"})
        else:
            out.append({"type": "check_in", "notes": f"call {v}"})
    return [{**WHO, **cmd, "customer": key} for cmd in out]


def history(*, spoiled: bool = False) -> list[bytes]:
    """The customers' lives interleaved, each starting a little after the one before (so
    that some register before the writer process starts and some after)."""
    lives = [life(n, spoiled=spoiled) for n in range(CUSTOMERS)]
    lines, at = [], T0
    for step in range(EVENTS + 3 * CUSTOMERS):
        for n, commands in enumerate(lives):
            i = step - 3 * n
            if 0 <= i < len(commands):
                at += timedelta(minutes=7)
                lines.append(orjson.dumps({**commands[i], "at": at.isoformat()}))
    return lines


def states(engine: LifecycleEngine) -> list[CustomerState]:
    return [engine.customer(f"c{n:03d}").state for n in range(CUSTOMERS)]


@pytest.fixture
def read_backs(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, int]]:
    """The engine's reads of a customer's events back from the writer process."""
    calls: list[tuple[Any, int]] = []
    events = bulk_write.BulkWrite.events

    def counting(self: bulk_write.BulkWrite, aggregate_id: Any, lte: int) -> list[Any]:
        calls.append((aggregate_id, lte))
        return events(self, aggregate_id, lte)

    monkeypatch.setattr(bulk_write.BulkWrite, "events", counting)
    return calls


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_old_voids_are_checked_against_the_events_read_back(
        durable_store_url: str, share: float, monkeypatch: pytest.MonkeyPatch,
        read_backs: list[tuple[Any, int]]) -> None:
    """share 0: the engine checks every customer and reads back for each old void; share
    1: the writer process checks those registered after it started, reading its own."""
    lines = history()
    reference = LifecycleEngine("memory://")
    expected = summary(reference.import_lines(lines))
    result, log, routed = import_counting_routes(durable_store_url, lines, share, monkeypatch)
    assert summary(result) == expected
    assert log == stored_log(reference)
    engine = LifecycleEngine(durable_store_url)
    try:
        assert states(engine) == states(reference)
    finally:
        engine.close()
    first = states(reference)[0]
    assert first.total_paid == sum(1000 + v for v in range(7, EVENTS + 1, 2)
                                   if v not in (45, 61, 85))  # payments 3 and 61 voided
    assert first.last_nps == 3 and first.handovers["h1"].status == "accepted"
    if share == 0.0:  # two old voids per customer, none for the void of the latest event
        assert len(read_backs) == 2 * CUSTOMERS and routed == 0
    else:
        assert routed > 0 and len(read_backs) < 2 * CUSTOMERS


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_problems_that_need_old_events_are_reported_as_by_one_process(
        durable_store_url: str, share: float, monkeypatch: pytest.MonkeyPatch,
        read_backs: list[tuple[Any, int]]) -> None:
    lines = history(spoiled=True)
    with pytest.raises(InvalidInput) as expected:
        LifecycleEngine("memory://").import_lines(lines)
    outcome, log, _ = import_counting_routes(durable_store_url, lines, share, monkeypatch)
    assert isinstance(outcome, InvalidInput) and log == []
    assert outcome.problems == expected.value.problems
    reasons = {p.reason.split(": ", 1)[1] for p in outcome.problems}
    assert reasons == {"no such handover was sent", "already voided by version 60",
                       "a voiding event cannot be voided"}
    assert len(outcome.problems) == CUSTOMERS // 2 + 2 * CUSTOMERS
    if share == 0.0:  # the writing went on after the first problem: still readable
        assert len(read_backs) >= 2 * CUSTOMERS


def test_rebase_keeps_the_state_whatever_is_voided() -> None:
    """The domain's part: a customer folded down to its last events reaches the same state
    as one holding its whole history, for voids before and after its base."""
    lines = [orjson.loads(line) for line in history()]
    engine = LifecycleEngine("memory://")
    engine.import_lines([orjson.dumps(c) for c in lines if c["customer"] == "c000"])
    events = engine.writer.history("c000")
    def stored(lte: int) -> list[Customer.Event]:
        return [e for e in events if e.originator_version <= lte]

    full = Customer.replay(None, events[:40])
    assert full is not None
    full.origin.stored = stored
    folded = Customer.replay(None, events[:40])
    assert folded is not None
    folded.recent = list(events[:40])  # as if applied here, not loaded
    folded.origin.version = 0
    folded.rebase(KEEP_EVENTS, 40, stored)
    assert folded.origin.version == 40 - KEEP_EVENTS and len(folded.recent) == KEEP_EVENTS
    assert folded.origin.base is not None and folded.state == full.state
    meta = {"occurred_at": T0, "actor": "ann", "team": "success", "correlation_id": None,
            "causation_id": None}
    for agg in (full, folded):
        agg.void(38, "recent", meta)  # after the base: folded from it
        agg.void(5, "old", meta)  # before the base: read back through ``stored``
    assert folded.state == full.state and folded.state.last_nps is None
    assert folded.origin.base is not None and folded.origin.base.last_nps is None


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_customers_continued_from_the_store_fold_and_read_back_alike(
        durable_store_url: str, share: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """A second import continues customers the store holds (loaded at version 40 to 50):
    their base state is read from the store first, their old voids from store and
    transaction together."""
    lines = history()
    half = len(lines) // 2
    reference = LifecycleEngine("memory://")
    reference.import_lines(lines[:half])
    expected = summary(reference.import_lines(lines[half:]))
    engine = LifecycleEngine(durable_store_url)
    try:
        engine.import_lines(lines[:half], batch_size=100)
    finally:
        engine.close()
    result, log, _ = import_counting_routes(durable_store_url, lines[half:], share, monkeypatch)
    assert summary(result) == expected
    assert log == stored_log(reference)
    engine = LifecycleEngine(durable_store_url)
    try:
        assert states(engine) == states(reference)
    finally:
        engine.close()


def test_the_writer_process_keeps_the_events_it_has_not_written_yet(
        durable_store_url: str, monkeypatch: pytest.MonkeyPatch,
        read_backs: list[tuple[Any, int]]) -> None:
    """The writer process holds its own rows until no row of the engine's comes before
    them. Here the engine's first batch never fills (its rows stay queued to the end), so
    every event the writer process checks stays unwritten: its customers must not fold them
    away, or a void of one 20 events back finds nothing to read back (a mutant that ignored
    ``upto`` in ``Customer.rebase`` passed the tests above)."""
    at = iter(T0 + timedelta(minutes=m) for m in range(10_000))
    engine_side = [{**WHO, "customer": f"e{n}", "at": next(at).isoformat(),
                    **({"type": "customer_registered", "name": f"E {n}", "segment": "smb",
                        "source": "web", "team": "marketing", "actor": "mia"} if v == 0
                       else {"type": "check_in", "notes": f"call {v}"})}
                   for n in range(10) for v in range(25)]  # 250 rows: the writer starts
    writer_side = []
    for v in range(1, 61):
        for n in range(4):
            if v == 1:
                cmd: dict[str, Any] = {"type": "customer_registered", "name": f"W {n}",
                                       "segment": "smb", "source": "web",
                                       "team": "marketing", "actor": "mia"}
            elif v == 50:  # 19 events back: past KEEP_EVENTS, never written yet
                cmd = {"type": "event_voided", "voided_version": 31, "reason": "twice"}
            elif v % 2:
                cmd = {"type": "payment", "amount": 100 + v, "currency": "EUR"}
            else:
                cmd = {"type": "check_in", "notes": f"call {v}"}
            writer_side.append({**WHO, **cmd, "customer": f"w{n}",
                                "at": next(at).isoformat()})
    lines = [orjson.dumps(c) for c in engine_side + writer_side]
    reference = LifecycleEngine("memory://")
    expected = summary(reference.import_lines(lines))
    result, log, routed = import_counting_routes(durable_store_url, lines, 1.0, monkeypatch,
                                                 batch_size=400)
    assert routed >= len(writer_side) and read_backs == []  # the writer checks them
    assert summary(result) == expected
    assert log == stored_log(reference)
    engine = LifecycleEngine(durable_store_url)
    try:
        got = [engine.customer(f"w{n}").state for n in range(4)]
        assert got == [reference.customer(f"w{n}").state for n in range(4)]
        assert got[0].total_paid == sum(100 + v for v in range(3, 61, 2) if v != 31)
    finally:
        engine.close()
