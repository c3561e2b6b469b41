"""`lifecycle-es import` as a user runs it (a real subprocess, SQLite and PostgreSQL): exit
codes, one-line errors without tracebacks, stdin, and store URLs whose password never shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from lifecycle_samples import ACME_VERSION, FULL_LIFECYCLE, jsonl

from lifecycle_es import LifecycleEngine

pytestmark = pytest.mark.slow

BAD_LINES = (
    '{"type": "check_in", "customer": "acme", "at": "2024-03-01T09:00:00Z", "actor": "ann", '
    '"team": "legal"}\n'
    '{"type": "payment"\n'
    '{"type": "nps_answer", "customer": "ghost", "at": "2024-03-01T09:00:00Z", '
    '"actor": "ann", "team": "sales", "score": 7}\n'
)


def lifecycle_es(*args: str, stdin: str | None = None,
                 cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lifecycle_es.cli.main", *args],
                          input=stdin, capture_output=True, text=True, timeout=120, cwd=cwd)


def assert_one_line_error(proc: subprocess.CompletedProcess[str], code: int) -> str:
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_import_file_then_stdin(durable_store_url: str, tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    path.write_text(jsonl(FULL_LIFECYCLE[:10]))
    proc = lifecycle_es("--store", durable_store_url, "import", str(path))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("imported 10 commands (10 events, 1 new customer, 1 new "
                                  "campaign) in ")
    proc = lifecycle_es("--store", durable_store_url, "import", "-", "--json",
                        "--batch-size", "3", stdin=jsonl(FULL_LIFECYCLE[10:]))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["commands"], result["events"]) == (len(FULL_LIFECYCLE) - 10,) * 2
    engine = LifecycleEngine(durable_store_url)
    try:
        assert engine.customer("acme").version == ACME_VERSION
        assert engine.writer.recorder.max_notification_id() == len(FULL_LIFECYCLE)
    finally:
        engine.close()


def test_bad_file_exits_2_lists_every_line_and_writes_nothing(
    durable_store_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(jsonl(FULL_LIFECYCLE[:3]) + BAD_LINES)
    proc = lifecycle_es("--store", durable_store_url, "import", str(path))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines() == [
        "line 4: team='legal': unknown team (known: marketing, sales, success, support)",
        "line 5: command='{\"type\": \"payment\"': Invalid JSON: EOF while parsing an object "
        "at the end of the line",
        "line 6: customer='ghost': no such customer is registered",
        f"error: 3 problems in {path}; nothing was written",
    ]
    assert proc.stdout == ""
    engine = LifecycleEngine(durable_store_url)
    try:
        assert (engine.writer.recorder.max_notification_id() or 0) == 0
    finally:
        engine.close()


def test_stdin_with_bad_lines_and_many_problems_are_capped(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'x.db'}"
    proc = lifecycle_es("--store", store, "import", "-", stdin="not json\n" * 60)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert lines[0] == "line 1: command='not json': Invalid JSON: expected ident at column 2"
    assert lines[49].startswith("line 50: ") and lines[50] == "... and 10 more problems"
    assert lines[51] == "error: 60 problems in -; nothing was written"


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 'x.db'}"
    line = assert_one_line_error(lifecycle_es("--store", store, "import",
                                              str(tmp_path / "absent.jsonl")), 2)
    assert line == f"error: file={str(tmp_path / 'absent.jsonl')!r}: No such file or directory"
    line = assert_one_line_error(lifecycle_es("--store", "sqlite:////no/such/dir/x.db",
                                              "import", "-", stdin=""), 3)
    assert line == "error: sqlite store: folder '/no/such/dir' does not exist"
    line = assert_one_line_error(lifecycle_es("--store", store, "--stage-model", "nope",
                                              "import", "-", stdin=""), 2)
    assert "stage_model='nope': not a preset" in line
    proc = lifecycle_es("--store", store, "import", "-", "--batch-size", "0", stdin="")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "batch-size" in proc.stderr


@pytest.mark.parametrize("url", [
    "postgresql://u:secret@127.0.0.1:1/x",
    "postgresql://u:secret@127.0.0.1:notaport/x",
    "mysql://u:secret@127.0.0.1/x",
])
def test_bad_store_url_never_shows_the_password(url: str) -> None:
    line = assert_one_line_error(lifecycle_es("--store", url, "import", "-", stdin=""), 3)
    assert "secret" not in line
    assert "u:***@127.0.0.1" in line
