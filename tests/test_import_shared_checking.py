"""A large import's writer process checks a share of the customers itself.

Whatever the share, the import must store the same events in the same (file) order, report the
same problems and count the same things as an import checked in one process.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import orjson
import pytest

from lifecycle_es import LifecycleEngine
from lifecycle_es.demo import generate
from lifecycle_es.domain.stage_model import CLASSIC
from lifecycle_es.errors import InvalidInput
from lifecycle_es.reading.audit.verify import verify
from lifecycle_es.writing import bulk_write

BATCH = 100  # events per insert: the writer process starts after 50


@pytest.fixture(scope="module")
def history() -> list[bytes]:
    """About 1,000 commands of 40 customers and some campaigns, in time order."""
    return [orjson.dumps(c) for c in generate(40, 3, CLASSIC, date(2025, 1, 1))]


def stored_log(engine: LifecycleEngine) -> list[tuple[Any, ...]]:
    """Every stored event in log order, without its recording time (personal fields
    opened: their sealed form differs at every write)."""
    notes = engine.writer.recorder.select_notifications(1, 10**6)
    out = []
    for n in notes:
        state = dict(vars(engine.event_log.to_domain_event(n)))
        del state["timestamp"], state["originator_id"], state["originator_version"]
        out.append((str(n.originator_id), n.originator_version, n.topic, state))
    return out


def summary(result: Any) -> tuple[Any, ...]:
    return (result.commands, result.events, result.customers_created,
            result.campaigns_created, dict(sorted(result.by_type.items())))


def import_counting_routes(url: str, lines: list[bytes], share: float,
                           monkeypatch: pytest.MonkeyPatch,
                           batch_size: int = BATCH) -> tuple[Any, list[Any], int]:
    """Import ``lines`` with the writer process checking ``share`` of the new aggregates;
    (result or the InvalidInput raised, stored log, lines the writer process checked)."""
    monkeypatch.setattr(bulk_write, "WRITER_CHECK_SHARE", share)
    routed = 0
    route = bulk_write.BulkWrite.route

    def counting(self: bulk_write.BulkWrite, *args: Any) -> bool:
        nonlocal routed
        taken = route(self, *args)
        routed += taken
        return taken

    monkeypatch.setattr(bulk_write.BulkWrite, "route", counting)
    engine = LifecycleEngine(url)
    try:
        try:
            outcome: Any = engine.import_lines(lines, batch_size=batch_size)
        except InvalidInput as exc:
            outcome = exc
        return outcome, stored_log(engine), routed
    finally:
        engine.close()


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_any_share_stores_the_same_log(durable_store_url: str, history: list[bytes],
                                       share: float, monkeypatch: pytest.MonkeyPatch) -> None:
    reference = LifecycleEngine("memory://")  # one process checks and writes everything
    expected = summary(reference.import_lines(history))

    result, log, routed = import_counting_routes(durable_store_url, history, share,
                                                 monkeypatch)
    assert summary(result) == expected
    assert log == stored_log(reference)  # same events, same order (the file's)
    assert (routed > 0) == (share > 0)
    if share == 1.0:  # every customer registered after the writer started went to it
        assert routed > len(history) // 2
    engine = LifecycleEngine(durable_store_url)
    try:
        assert verify(engine).clean
    finally:
        engine.close()


def spoil(history: list[bytes]) -> list[bytes]:
    """``history`` with bad lines: a wrong currency, an unknown customer, a bad NPS score
    and a broken line, spread over the file (so over both checkers)."""
    out = list(history)
    for i in range(60, len(out), 97):
        cmd = orjson.loads(out[i])
        if cmd["type"] == "payment":
            cmd["currency"] = "XXX" if i % 2 else "usd"
        elif cmd["type"] == "nps_answer":
            cmd["score"] = 11
        elif i % 3 == 0:
            cmd["customer"] = "ghost"
        else:
            out[i] = out[i][:20]
            continue
        out[i] = orjson.dumps(cmd)
    return out


@pytest.mark.parametrize("share", [0.5, 1.0])
def test_any_share_reports_the_same_problems(durable_store_url: str, history: list[bytes],
                                             share: float,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    lines = spoil(history)
    with pytest.raises(InvalidInput) as expected:
        LifecycleEngine("memory://").import_lines(lines)

    outcome, log, routed = import_counting_routes(durable_store_url, lines, share, monkeypatch)
    assert isinstance(outcome, InvalidInput)
    assert outcome.problems == expected.value.problems and len(outcome.problems) >= 8
    assert log == [] and routed > 0


def test_after_the_engines_first_problem_the_writer_still_reports_its_own(
        durable_store_url: str, history: list[bytes],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine's problem means nothing is committed; the writer process still checks."""
    first, last = orjson.loads(history[0]), orjson.loads(history[-1])
    assert first["type"] == "campaign_announced" and last["type"] == "payment"
    registered = next(i for i, line in enumerate(history)
                      if b'"customer_registered"' in line and last["customer"].encode() in line)
    assert registered > BATCH  # so with share 1 the writer process checks this customer
    lines = list(history)
    middle = len(lines) // 2
    lines.insert(middle, history[0])  # announced again: the engine checks this campaign
    lines.append(orjson.dumps({**last, "team": "legal"}))  # the writer's customer

    outcome, log, routed = import_counting_routes(durable_store_url, lines, 1.0, monkeypatch)
    assert isinstance(outcome, InvalidInput) and log == [] and routed > 0
    assert [(p.line, p.field) for p in outcome.problems] == [
        (middle + 1, "campaign"), (len(lines), "team")]


def test_the_writer_loads_stored_customers_it_checks(durable_store_url: str,
                                                     history: list[bytes],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Onto a non-empty store, the writer process reads the stored state of its customers."""
    split = len(history) // 3
    reference = LifecycleEngine("memory://")
    reference.import_lines(history[:split])
    expected = summary(reference.import_lines(history[split:]))

    engine = LifecycleEngine(durable_store_url)
    try:
        engine.import_lines(history[:split])  # written in-process
    finally:
        engine.close()
    result, log, routed = import_counting_routes(durable_store_url, history[split:], 1.0,
                                                 monkeypatch)
    assert summary(result) == expected and routed > 0
    assert log == stored_log(reference)
    engine = LifecycleEngine(durable_store_url)
    try:
        assert verify(engine).clean
    finally:
        engine.close()
