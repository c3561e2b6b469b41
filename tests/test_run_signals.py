"""`projections run` stops cleanly on SIGTERM (how service managers stop it) as on SIGINT
(Ctrl-C): exit 0, the same "projections.stopped" log line, no traceback.

The runner starts with both signals at their default disposition (``preexec_fn``), so the test
does not depend on how pytest was started (a background job inherits SIGINT ignored)."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest
from cli_helpers import default_signals

from lifecycle_es import LifecycleEngine


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_run_stops_cleanly(durable_store_url: str, sig: signal.Signals) -> None:
    engine = LifecycleEngine(durable_store_url)
    engine.register(customer="a", name="A", segment="smb", source="web",
                    at="2024-01-01T00:00:00Z", actor="ann", team="sales")
    proc = subprocess.Popen(
        [sys.executable, "-m", "lifecycle_es.cli.main", "--log-level", "INFO", "--store",
         durable_store_url, "projections", "run", "--poll", "0.2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_signals)
    try:
        pm = engine.projections
        pm.queries_catch_up = False  # see what the runner did, not catch up here
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if pm.read.table_exists("current_stage") and pm.fetch("current_stage"):
                break
            time.sleep(0.1)
        assert proc.poll() is None, proc.communicate()[1]
        time.sleep(0.3)  # following now: the next poll is under way
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        engine.close()
    assert proc.returncode == 0, (proc.returncode, err)
    assert "projections.stopped" in err and "Traceback" not in err, err
