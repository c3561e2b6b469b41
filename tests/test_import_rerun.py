"""Re-running an import is safe: the store records each committed import of a file (SHA-256
of its bytes, lines, events, time) in the same transaction as its events, and the same bytes
again are a no-op that says when they were imported; an import killed before its commit wrote
nothing (and no record), so running it again imports it."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import CLI, cli
from lifecycle_samples import ACME_VERSION, FULL_LIFECYCLE, jsonl

from lifecycle_es import LifecycleEngine, StoreError
from lifecycle_es.errors import UnknownCustomer

TEXT = jsonl(FULL_LIFECYCLE)
LINES = len(TEXT.splitlines())
DIGEST = hashlib.sha256(TEXT.encode()).hexdigest()


def children(pid: int) -> list[int]:
    """Pids of the children of ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(stat.parent.name))
    return found


def written(engine: LifecycleEngine) -> int:
    return engine.writer.recorder.max_notification_id() or 0


@pytest.fixture
def history(tmp_path: Path) -> Path:
    path = tmp_path / "history.jsonl"
    path.write_text(TEXT)
    return path


@pytest.mark.parametrize("batch_size", [25_000, 5], ids=["in-process", "writer-process"])
def test_a_committed_import_is_recorded_and_not_repeated(
        engine: LifecycleEngine, history: Path, batch_size: int) -> None:
    """The record is written by whichever process commits (batch_size 5: the writer
    process); the same file again writes nothing and returns the record."""
    before = datetime.now(UTC)
    first = engine.import_file(history, batch_size=batch_size)
    assert first.already_imported is None and first.digest == DIGEST
    record = engine.find_import(DIGEST)
    assert record is not None
    assert (record.digest, record.lines, record.events) == (DIGEST, LINES, first.events)
    assert before - timedelta(seconds=1) <= record.imported_at <= datetime.now(UTC)
    events = written(engine)

    again = engine.import_file(history, batch_size=batch_size)
    assert again.already_imported == record
    assert (again.commands, again.events) == (0, 0)
    assert written(engine) == events
    assert record.describe() == f"already imported on {record.when()} ({LINES:,} lines)"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record.when())


def test_other_bytes_are_another_import(engine: LifecycleEngine, history: Path,
                                        tmp_path: Path) -> None:
    engine.import_file(history)
    more = tmp_path / "more.jsonl"
    more.write_text('{"type": "check_in", "customer": "acme", "at": "2025-06-01T09:00:00Z", '
                    '"actor": "sue", "team": "success"}\n')
    assert engine.import_file(more).events == 1
    assert engine.customer("acme").version == ACME_VERSION + 1


def test_the_same_bytes_from_stdin_or_lines_are_recognised(engine: LifecycleEngine,
                                                           history: Path) -> None:
    """``import_lines(once=True)`` digests what it reads (as stdin is): after the file, the
    same bytes as lines are a no-op, found once read to the end (their problems — every
    customer already registered — are not reported)."""
    engine.import_file(history)
    events = written(engine)
    again = engine.import_lines(TEXT.splitlines(keepends=True), once=True)
    assert again.already_imported is not None and again.already_imported.digest == DIGEST
    assert written(engine) == events
    # without once=True nothing is recorded or looked up: the lines are checked as ever
    with pytest.raises(Exception, match="already registered"):
        engine.import_lines(TEXT.splitlines())


@pytest.mark.parametrize("batch_size", [25_000, 5], ids=["in-process", "writer-process"])
def test_the_record_commits_with_the_events(engine: LifecycleEngine, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch,
                                            batch_size: int) -> None:
    """Same transaction: when the record cannot be written (another run of the same file
    recorded it in between), the events are not written either."""
    engine.register(customer="acme", at="2024-01-02T09:00:00Z", actor="ann",
                    team="marketing", name="Acme", segment="smb", source="web")
    touches = tmp_path / "touches.jsonl"  # valid twice: touchpoints of a known customer
    touches.write_text("".join(
        f'{{"type": "touchpoint", "customer": "acme", "at": "2024-02-{d:02d}T09:00:00Z", '
        f'"actor": "ann", "team": "marketing", "channel": "email"}}\n' for d in range(1, 21)))
    engine.import_file(touches, batch_size=batch_size)
    events = written(engine)
    monkeypatch.setattr(engine.writer, "find_import", lambda digest: None)  # the race: not seen yet
    with pytest.raises(StoreError, match="nothing written: another run of the same file"):
        engine.import_file(touches, batch_size=batch_size)
    assert written(engine) == events


def test_an_interrupted_import_leaves_no_record(engine: LifecycleEngine,
                                                history: Path) -> None:
    """Interrupted before its commit: nothing written, no record; run again, it imports."""
    def lines() -> Iterator[str]:
        for n, text in enumerate(TEXT.splitlines(keepends=True), start=1):
            if n == 16:
                raise KeyboardInterrupt
            yield text

    with pytest.raises(KeyboardInterrupt):
        engine.import_lines(lines(), batch_size=5, once=True)
    assert written(engine) == 0 and engine.find_import(DIGEST) is None
    assert engine.import_file(history, batch_size=5).already_imported is None
    assert engine.customer("acme").version == ACME_VERSION


def test_cli_rerun_says_when_and_exits_0(durable_store_url: str, history: Path) -> None:
    first = cli(durable_store_url, "import", str(history))
    assert first.stdout.startswith(f"imported {LINES} commands")
    again = cli(durable_store_url, "import", str(history))
    assert again.returncode == 0
    assert re.fullmatch(rf"already imported on \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ \({LINES} "
                        r"lines\): nothing written\n", again.stdout), again.stdout
    # stdin is digested too: the same bytes piped in are recognised
    piped = cli(durable_store_url, "import", "-", input=TEXT)
    assert piped.stdout == again.stdout
    as_json = cli(durable_store_url, "import", str(history), "--json")
    assert '"digest": "' + DIGEST in as_json.stdout and '"already_imported": {' in as_json.stdout


def test_cli_killed_before_commit_then_rerun(durable_store_url: str, history: Path) -> None:
    """``kill -9`` of an import reading stdin (it cannot commit before the end of its input):
    nothing written, no record; the file then imports, and a third run is a no-op."""
    proc = subprocess.Popen([*CLI, "--store", durable_store_url, "import", "-",
                             "--batch-size", "5"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdin is not None and proc.stderr is not None
    half = TEXT.splitlines(keepends=True)[:20]
    proc.stdin.write("".join(half))  # past three batches of 5: the writer process writes
    proc.stdin.flush()
    deadline = time.monotonic() + 30
    while not children(proc.pid):  # the writer process holds the open transaction
        assert time.monotonic() < deadline, "the writer process should have started"
        time.sleep(0.05)
    time.sleep(0.5)  # its batches are written, not committed
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdin.close()
    proc.stderr.read()  # until the writer process (which shares it) has gone too
    proc.stderr.close()
    assert proc.stdout is not None
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    engine = LifecycleEngine(durable_store_url)
    try:
        assert written(engine) == 0 and engine.find_import(DIGEST) is None
        with pytest.raises(UnknownCustomer):
            engine.customer("acme")
    finally:
        engine.close()
    assert cli(durable_store_url, "import", str(history)).stdout.startswith("imported")
    assert cli(durable_store_url, "import", str(history)).stdout.startswith("already imported")
