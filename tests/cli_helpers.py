"""Running the `lifecycle-es` CLI: in a subprocess (the real process) or in-process."""

from __future__ import annotations

import signal
import subprocess
import sys
from typing import Any

import pytest

from lifecycle_es import LifecycleEngine
from lifecycle_es.cli.main import run

CLI = [sys.executable, "-m", "lifecycle_es.cli.main"]


def cli(store: str, *args: str, check: bool = True,
        **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``lifecycle-es --store STORE ARGS...`` and return the finished process."""
    proc = subprocess.run([*CLI, "--store", store, *args], capture_output=True, text=True,
                          timeout=300, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def default_signals() -> None:
    """In a child before it runs: SIGINT and SIGTERM at their default disposition, so a
    test that interrupts it does not depend on how pytest was started (a background job
    inherits SIGINT ignored, and Python then never raises KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def popen(store: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    """Start ``lifecycle-es --store STORE ARGS...`` (signals at their defaults)."""
    kwargs.setdefault("preexec_fn", default_signals)
    return subprocess.Popen([*CLI, "--store", store, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def in_process(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
               store: str, *args: str) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr); closes the engines it opened."""
    opened: list[LifecycleEngine] = []
    original = LifecycleEngine.__init__

    def tracked(self: LifecycleEngine, *a: Any, **kw: Any) -> None:
        opened.append(self)
        original(self, *a, **kw)

    capsys.readouterr()
    monkeypatch.setattr(LifecycleEngine, "__init__", tracked)
    monkeypatch.setattr(sys, "argv", ["lifecycle-es", "--store", store, *args])
    try:
        with pytest.raises(SystemExit) as exc:
            run()
    finally:
        monkeypatch.setattr(LifecycleEngine, "__init__", original)
        for engine in opened:
            if hasattr(engine, "writer"):
                engine.close()
    out, err = capsys.readouterr()
    return int(exc.value.code or 0), out, err


def small_demo(tmp_path_factory: pytest.TempPathFactory, name: str) -> str:
    """The URL of a new store holding a demo of 40 customers up to 2026-01-01 (for a
    module's fixture)."""
    store = f"sqlite:///{tmp_path_factory.mktemp(name) / 'demo.db'}"
    cli(store, "demo", "--customers", "40", "--until", "2026-01-01")
    return store
