"""A real `projections rebuild` killed (kill -9, Ctrl-C) half-way ends like a clean rebuild."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cli_helpers import cli, popen
from projection_gen import snapshot, write

from lifecycle_es import LifecycleEngine

pytestmark = pytest.mark.slow
BUILTIN = ("current_stage", "handover_history")
CUSTOMERS = 1000


def _kind(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgres"


def _shadow_rows(pm: object) -> int:
    """Customers already in the shadow table of the rebuild under way (committed batches)."""
    read = pm.read  # type: ignore[attr-defined]
    return read.count("current_stage__shadow") if read.table_exists(
        "current_stage__shadow") else 0


def _children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (a parallel rebuild's workers)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")  # a zombie is dead; it only waits for its reaper
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def _interrupt_mid_rebuild(url: str, sig: int, jobs: int) -> tuple[int, str, int]:
    """Start a rebuild, send ``sig`` once it has committed a few batches.

    Returns (exit code, stderr, shadow rows at the moment of the signal). With ``jobs`` > 1
    the rebuild's worker processes must be gone soon after it.
    """
    watcher = LifecycleEngine(url)
    pm = watcher.projections
    proc = popen(url, "projections", "rebuild", *BUILTIN, "--batch-size", "100",
                 "--jobs", str(jobs))
    try:
        deadline = time.monotonic() + 120
        done = 0
        while time.monotonic() < deadline and proc.poll() is None:
            done = _shadow_rows(pm)
            if done >= 50:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "rebuild finished before it could be interrupted"
        assert 50 <= done < CUSTOMERS
        workers = _children(proc.pid)
        assert len(workers) == (jobs if jobs > 1 else 0), workers
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        deadline = time.monotonic() + 10
        while any(_alive(w) for w in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not [w for w in workers if _alive(w)], "a rebuild worker outlived the rebuild"
        return proc.returncode, err, done
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.close()


@pytest.mark.parametrize("jobs", [1, 2], ids=["jobs-1", "jobs-2"])
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_rebuild_resumes_and_equals_clean_rebuild(
        durable_store_url: str, store_url_factory: Callable[[str], str], sig: int,
        jobs: int) -> None:
    eng = LifecycleEngine(durable_store_url)
    write(eng, customers=CUSTOMERS)
    cli(durable_store_url, "projections", "run", "--once", *BUILTIN)
    before = snapshot(eng.projections)

    code, err, done = _interrupt_mid_rebuild(durable_store_url, sig, jobs)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 130 and "Traceback" not in err, err
    # Readers still see the complete old model; the interrupted shadow is resumable.
    assert snapshot(eng.projections) == before
    status = {s.name: s for s in eng.projections.status(list(BUILTIN))}
    assert "rebuilding" in status["current_stage"].state
    assert _shadow_rows(eng.projections) >= done  # committed batches are kept, to resume

    cli(durable_store_url, "projections", "rebuild", *BUILTIN, "--batch-size", "100",
        "--jobs", str(jobs))
    after = snapshot(eng.projections)
    eng.close()

    clean = LifecycleEngine(store_url_factory(_kind(durable_store_url)))
    try:
        write(clean, customers=CUSTOMERS)
        clean.projections.rebuild(list(BUILTIN))
        assert snapshot(clean.projections) == after == before
        assert len(after["current_stage"]) == CUSTOMERS
    finally:
        clean.close()
