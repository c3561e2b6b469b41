"""Progress of long work: a rich bar on a terminal's stderr, structured log lines when stderr
is piped, nothing on stdout (``--json`` stays valid), nothing for work shorter than a second,
and nothing at all from the library unless its host installs a reporter."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest
from cli_helpers import in_process
from rich.console import Console

from lifecycle_es import LifecycleEngine
from lifecycle_es.cli import output
from lifecycle_es.cli import progress as cli_progress
from lifecycle_es.cli.progress import CliReporter
from lifecycle_es.demo import generate
from lifecycle_es.domain.stage_model import load_stage_model
from lifecycle_es.progress import reporting, track

UNTIL = date(2025, 1, 1)


@pytest.fixture
def history(tmp_path: Path) -> Path:
    """A JSON Lines history of 25 demo customers."""
    file = tmp_path / "history.jsonl"
    commands = generate(25, 3, load_stage_model("classic"), UNTIL)
    file.write_bytes(b"".join(orjson.dumps(c) + b"\n" for c in commands))
    return file


@pytest.fixture(autouse=True)
def logging_restored() -> Iterator[None]:
    """These tests configure logs at info level on a captured stderr: undo it after each,
    so that later tests do not log into a closed stream."""
    root = logging.getLogger("lifecycle_es")
    saved = (list(root.handlers), root.level, root.propagate)
    yield
    root.handlers, root.level, root.propagate = saved


@pytest.fixture
def show_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Show every piece of work, however short, and log every report."""
    monkeypatch.setattr(cli_progress, "SHOW_AFTER", 0.0)
    monkeypatch.setattr(cli_progress, "LOG_EVERY", 0.0)


def progress_lines(stderr: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("logger") == "lifecycle_es.progress"]


def test_piped_progress_is_structured_lines_on_stderr_and_stdout_stays_json(
        tmp_path: Path, history: Path, show_at_once: None, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = f"sqlite:///{tmp_path / 'piped.db'}"
    total_lines = len(history.read_bytes().splitlines())
    code, out, err = in_process(capsys, monkeypatch, store, "--log-level", "INFO",
                                "import", str(history), "--json")
    assert code == 0, err
    events = json.loads(out)["events"]  # stdout is exactly the JSON answer
    imports = [line for line in progress_lines(err) if line["event"] == "import"]
    assert imports and imports[-1]["finished"] is True
    assert imports[-1]["done"] == imports[-1]["total"] == total_lines
    assert imports[-1]["unit"] == "lines" and imports[-1]["rate_per_s"] > 0

    # A query catches the read models up first: its progress too, on stderr only.
    code, out, err = in_process(capsys, monkeypatch, store, "--log-level", "INFO",
                                "stage", "--json")
    assert code == 0, err
    assert sum(row["customers"] for row in json.loads(out)) == 25
    catch_up = [line for line in progress_lines(err) if line["event"] == "catch-up"]
    assert catch_up[-1]["done"] == catch_up[-1]["total"] == events
    assert all(set(line) >= {"done", "total", "unit", "rate_per_s", "eta_s", "elapsed_s"}
               for line in catch_up)


def test_progress_lines_respect_the_log_level(
        tmp_path: Path, history: Path, show_at_once: None, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    store = f"sqlite:///{tmp_path / 'quiet.db'}"
    code, out, err = in_process(capsys, monkeypatch, store, "import", str(history), "--json")
    assert code == 0 and json.loads(out)["commands"] > 0
    assert progress_lines(err) == [] and err == ""


def test_terminal_progress_is_a_bar_with_rate_and_eta_on_stderr(
        tmp_path: Path, history: Path, show_at_once: None, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    terminal = io.StringIO()
    monkeypatch.setattr(output, "err_console", Console(file=terminal, force_terminal=True,
                                                       width=120))
    store = f"sqlite:///{tmp_path / 'tty.db'}"
    code, out, _ = in_process(capsys, monkeypatch, store, "import", str(history), "--json")
    assert code == 0
    assert json.loads(out)["events"] > 0  # no bar, no escape sequence on stdout
    shown = terminal.getvalue()
    total_lines = len(history.read_bytes().splitlines())
    assert "import" in shown and f"{total_lines}/{total_lines}" in shown
    assert "100%" in shown and "/s" in shown and "ETA" in shown and "\x1b[" in shown


def test_the_bar_counts_up_to_the_total() -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=120)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cli_progress, "SHOW_AFTER", 0.0)
        with reporting(CliReporter(console)), track("catch-up") as progress:
            for done in range(0, 1001, 100):
                progress(done, 1000)
    assert "catch-up" in terminal.getvalue() and "1000/1000" in terminal.getvalue()


def test_short_work_shows_nothing() -> None:
    terminal = io.StringIO()
    console = Console(file=terminal, force_terminal=True, width=120)
    with reporting(CliReporter(console)), track("catch-up") as progress:
        progress(10, 10)
    assert terminal.getvalue() == ""


def test_work_that_fails_is_not_shown_as_finished(
        show_at_once: None, capsys: pytest.CaptureFixture[str]) -> None:
    from lifecycle_es import logs

    logs.configure("INFO", json=True)
    with pytest.raises(RuntimeError), reporting(CliReporter(Console(file=io.StringIO()))), \
            track("import", "lines") as progress:
        progress(5, 10)
        raise RuntimeError("the store went away")
    last = progress_lines(capsys.readouterr().err)[-1]
    assert (last["done"], last["total"], last["finished"]) == (5, 10, False)


def test_without_a_reporter_the_library_reports_nowhere(
        tmp_path: Path, history: Path, show_at_once: None, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG", logger="lifecycle_es")
    engine = LifecycleEngine(f"sqlite:///{tmp_path / 'lib.db'}")
    try:
        engine.import_file(history)
        assert engine.projections.catch_up() > 0
    finally:
        engine.close()
    assert capsys.readouterr().out == ""
    assert not [r for r in caplog.records if r.name == "lifecycle_es.progress"]


def test_a_reporter_sees_the_library_s_catch_up(tmp_path: Path, history: Path) -> None:
    seen: dict[str, list[tuple[int, int]]] = {}

    class Recording:
        def __call__(self, what: str, unit: str) -> Any:
            from contextlib import nullcontext

            calls = seen.setdefault(f"{what} ({unit})", [])
            return nullcontext(lambda done, total: calls.append((done, total)))

    engine = LifecycleEngine(f"sqlite:///{tmp_path / 'rec.db'}")
    try:
        with reporting(Recording()):
            events = engine.import_file(history).events
            engine.projections.catch_up(batch_size=100)
    finally:
        engine.close()
    assert seen["import (lines)"][-1][0] == seen["import (lines)"][-1][1] > 0
    steps = seen["catch-up (events)"]
    assert len(steps) > 1 and steps[-1] == (events, events)
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)
