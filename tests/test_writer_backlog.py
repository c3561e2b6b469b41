"""The engine's side of the writer process: it queues messages instead of waiting for the
child while the child is busy, waits once the queue is full, and an abort in the middle of a
message writes nothing. On SQLite and PostgreSQL, with a real writer process, paused with
SIGSTOP to stand for one busy writing a batch."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import pytest

from lifecycle_es import LifecycleEngine
from lifecycle_es.commands import parse_command
from lifecycle_es.demo import generate
from lifecycle_es.domain.stage_model import PRESETS
from lifecycle_es.reading.audit.verify import verify
from lifecycle_es.stores.chain import Row
from lifecycle_es.writing import bulk_write
from lifecycle_es.writing.bulk_write import BulkWrite, WriterProcess
from lifecycle_es.writing.import_check import Checker

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")


def pipe_size(writer: WriterProcess) -> int:
    """Bytes the pipe to the child holds (Linux; 64 KB elsewhere)."""
    import fcntl

    get = getattr(fcntl, "F_GETPIPE_SZ", None)
    return int(fcntl.fcntl(writer._fd, get)) if get is not None else 1 << 16


@pytest.fixture(scope="module")
def batches() -> list[list[tuple[int, list[Row]]]]:
    """The checked rows of a small demo history, in batches of 1,000 commands (not
    encrypted: the keys of the engine that checked them are not the store's, and audit
    verify checks a store's data keys against its sealed events)."""
    model = PRESETS["classic"]
    commands = generate(400, 3, model, date(2026, 1, 1))
    checker = Checker(LifecycleEngine("memory://", stage_model=model,
                                      encrypt=False).writer, [],
                      store_empty=True)
    lines = []
    for number, data in enumerate(commands, start=1):
        rows = checker.check(number, parse_command(data, number))
        assert rows is not None
        lines.append((number, rows))
    return [lines[i:i + 1000] for i in range(0, len(lines), 1000)]


def size(batches: list[list[tuple[int, list[Row]]]]) -> int:
    return sum(len(state) for batch in batches for _, rows in batch for *_, state in rows)


@pytest.fixture
def engine(durable_store_url: str) -> Iterator[LifecycleEngine]:
    eng = LifecycleEngine(durable_store_url, stage_model="classic", encrypt=False)
    yield eng
    eng.close()


@pytest.fixture
def paused(engine: LifecycleEngine) -> Iterator[tuple[WriterProcess, Callable[[], None]]]:
    """A writer process on ``engine``'s store, paused; and the call that resumes it."""
    writer = WriterProcess(engine.store, engine.stage_model, True, encrypt=False)
    pid = writer._process.pid
    os.kill(pid, signal.SIGSTOP)
    resumed = False

    def resume() -> None:
        nonlocal resumed
        os.kill(pid, signal.SIGCONT)
        resumed = True

    yield writer, resume
    if not resumed:
        resume()
    writer.abort()


def sent_in_background(writer: WriterProcess, batches: list[Any]) -> threading.Thread:
    thread = threading.Thread(target=lambda: [writer.send("rows", b) for b in batches],
                              daemon=True)
    thread.start()
    return thread


def stored(engine: LifecycleEngine) -> int:
    return engine.writer.recorder.max_notification_id() or 0


def test_the_engine_goes_on_while_the_writer_process_is_busy(
        engine: LifecycleEngine, paused: tuple[WriterProcess, Callable[[], None]],
        batches: list[Any]) -> None:
    writer, resume = paused
    assert 2 * pipe_size(writer) < size(batches) < bulk_write.BACKLOG_BYTES
    sending = sent_in_background(writer, batches)
    sending.join(timeout=20)
    assert not sending.is_alive(), "sending waited for the paused writer process"
    resume()
    problems, tally = writer.finish()
    writer.commit()
    assert (problems, tally.events) == ([], 0)  # it checked no lines of its own
    events = sum(len(rows) for batch in batches for _, rows in batch)
    assert stored(engine) == events
    report = verify(engine)
    assert report.clean and report.events == events


def test_over_the_backlog_the_engine_waits_for_the_writer_process(
        engine: LifecycleEngine, paused: tuple[WriterProcess, Callable[[], None]],
        batches: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    writer, resume = paused
    monkeypatch.setattr(bulk_write, "BACKLOG_BYTES", 1 << 16)
    sending = sent_in_background(writer, batches)
    sending.join(timeout=2)
    assert sending.is_alive(), "the queue grew past its bound"
    assert writer._backlog_bytes < (1 << 16) + max(
        size([b]) for b in batches) * 2  # bounded: the limit plus the message being queued
    resume()
    sending.join(timeout=60)
    assert not sending.is_alive()
    writer.finish()
    writer.commit()
    assert stored(engine) == sum(len(rows) for batch in batches for _, rows in batch)


def test_an_abort_in_the_middle_of_a_message_writes_nothing(
        engine: LifecycleEngine, paused: tuple[WriterProcess, Callable[[], None]],
        batches: list[Any]) -> None:
    writer, resume = paused
    writer.send("rows", batches[0])
    whole = [row for batch in batches[1:] for row in batch]
    writer.send("rows", whole)  # far more than the pipe holds: most of it still queued
    assert writer._backlog_bytes > 0
    resume()
    writer.abort()  # the child reads the end of its input inside a message
    assert writer._process.returncode is not None
    assert stored(engine) == 0
    assert engine.import_lines([]).events == 0  # the store takes writes again


@pytest.mark.parametrize("batch_size", [5, 10_000], ids=["writer-process", "in-process"])
def test_the_engine_drops_its_aggregates_while_the_import_commits(
        durable_store_url: str, batch_size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Once every line passed: while the writer process commits (between the commit
    message and its reply), or before an in-process write."""
    from lifecycle_samples import FULL_LIFECYCLE, jsonl

    seen: list[str] = []
    forget, queue, reply = Checker.forget, WriterProcess._queue, WriterProcess._reply

    def forgetting(self: Checker) -> list[Any]:
        assert self.known, "forget is called once, with the import's aggregates"
        seen.append("forget")
        return forget(self)

    def queueing(self: WriterProcess, message: Any) -> None:
        if isinstance(message, tuple) and message[0] in ("finish", "commit"):
            seen.append(message[0])
        queue(self, message)

    def replying(self: WriterProcess) -> Any:
        answer = reply(self)
        seen.append(f"reply {answer[0]}")
        return answer

    monkeypatch.setattr(Checker, "forget", forgetting)
    monkeypatch.setattr(WriterProcess, "_queue", queueing)
    monkeypatch.setattr(WriterProcess, "_reply", replying)
    engine = LifecycleEngine(durable_store_url)
    try:
        result = engine.import_lines(jsonl(FULL_LIFECYCLE).splitlines(), batch_size=batch_size)
        assert result.events == stored(engine) == len(FULL_LIFECYCLE)
    finally:
        engine.close()
    assert seen == (["finish", "reply report", "commit", "forget", "reply ok"]
                    if batch_size == 5 else ["forget"])


def test_new_aggregates_stay_with_the_engine_while_the_writer_process_is_behind(
        engine: LifecycleEngine, paused: tuple[WriterProcess, Callable[[], None]],
        batches: list[Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Routing by backlog; an aggregate given to the writer process stays with it."""
    writer, resume = paused
    monkeypatch.setattr(bulk_write, "WRITER_CHECK_SHARE", 1.0)  # every new one, if it keeps up
    monkeypatch.setattr(bulk_write, "ROUTE_BACKLOG_BYTES", 1 << 16)
    out = BulkWrite(engine.writer, 1000, store_empty=True)
    out._writer = writer
    a, b, c = ("customer", "a"), ("customer", "b"), ("customer", "c")
    assert not writer.behind and out.route(1, b"{}", a)
    for batch in batches:  # more than the pipe holds: the paused child reads none of it
        writer.send("rows", batch)
    assert writer.behind
    assert not out.route(2, b"{}", b), "a new aggregate went to a writer that is behind"
    assert out.route(3, b"{}", a), "the writer's aggregate left it"
    resume()
    writer.pump(wait=True)
    assert not writer.behind and out.route(4, b"{}", c)
    out._lines.clear()  # nothing to check: the child is aborted by the fixture
    out._writer = None
