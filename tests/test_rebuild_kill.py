"""A real `projections rebuild` killed (kill -9, Ctrl-C) half-way ends like a clean rebuild."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable

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


def _interrupt_mid_rebuild(url: str, sig: int) -> tuple[int, str, int]:
    """Start a rebuild, send ``sig`` once it has committed a few batches.

    Returns (exit code, stderr, shadow rows at the moment of the signal).
    """
    watcher = LifecycleEngine(url)
    pm = watcher.projections
    proc = popen(url, "projections", "rebuild", *BUILTIN, "--batch-size", "100")
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
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
        return proc.returncode, err, done
    finally:
        if proc.poll() is None:
            proc.kill()
        watcher.close()


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["kill-9", "ctrl-c"])
def test_interrupted_rebuild_resumes_and_equals_clean_rebuild(
        durable_store_url: str, store_url_factory: Callable[[str], str], sig: int) -> None:
    eng = LifecycleEngine(durable_store_url)
    write(eng, customers=CUSTOMERS)
    cli(durable_store_url, "projections", "run", "--once", *BUILTIN)
    before = snapshot(eng.projections)

    code, err, done = _interrupt_mid_rebuild(durable_store_url, sig)
    if sig == signal.SIGKILL:
        assert code == -signal.SIGKILL
    else:
        assert code == 130 and "Traceback" not in err, err
    # Readers still see the complete old model; the interrupted shadow is resumable.
    assert snapshot(eng.projections) == before
    status = {s.name: s for s in eng.projections.status(list(BUILTIN))}
    assert "rebuilding" in status["current_stage"].state
    assert _shadow_rows(eng.projections) >= done  # committed batches are kept, to resume

    cli(durable_store_url, "projections", "rebuild", *BUILTIN, "--batch-size", "100")
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
