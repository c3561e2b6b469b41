"""Running the real `lifecycle-es` CLI in a subprocess (for projection CLI tests)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

CLI = [sys.executable, "-m", "lifecycle_es.cli.main"]


def cli(store: str, *args: str, check: bool = True,
        **kwargs: Any) -> subprocess.CompletedProcess[str]:
    """Run ``lifecycle-es --store STORE ARGS...`` and return the finished process."""
    proc = subprocess.run([*CLI, "--store", store, *args], capture_output=True, text=True,
                          timeout=300, **kwargs)
    if check and proc.returncode != 0:
        raise AssertionError(f"exit {proc.returncode}: {proc.stderr}")
    return proc


def popen(store: str, *args: str, **kwargs: Any) -> subprocess.Popen[str]:
    return subprocess.Popen([*CLI, "--store", store, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)
