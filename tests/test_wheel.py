"""The built wheel (not the editable checkout) ships and loads the built-in read models."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=900, env=env)
    assert proc.returncode == 0, f"{args}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc.stdout


def test_installed_wheel_runs_builtin_read_models(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    _run(sys.executable, "-m", "pip", "wheel", ROOT, "--no-deps", "-q", "-w", dist, cwd=tmp_path)
    wheel = next(dist.glob("lifecycle_es-*.whl"))
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", venv, cwd=tmp_path)
    py = venv / "bin" / "python"
    _run(py, "-m", "pip", "install", "-q", wheel, cwd=tmp_path)

    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LIFECYCLE_ES_PROJECTIONS_PATH", "LIFECYCLE_ES_STORE")}
    where = _run(py, "-c", "import lifecycle_es.reading.projection.registry as r; "
                 "print(r.builtin_dir())", cwd=tmp_path, env=env).strip()
    assert where.endswith("lifecycle_es/_projections") and str(venv) in where
    assets = _run(py, "-c", "from importlib.resources import files; w = files('lifecycle_es.web');"
                  " print(all((w / p).is_file() for p in ('static/htmx.min.js', "
                  "'static/console.css', 'templates/base.html', 'templates/cockpit.html')))",
                  cwd=tmp_path, env=env)
    assert assets.strip() == "True"  # the console's templates and static files ship
    cli = venv / "bin" / "lifecycle-es"
    store = f"sqlite:///{tmp_path / 'x.db'}"
    commands = tmp_path / "c.jsonl"
    commands.write_text(json.dumps({
        "type": "customer_registered", "customer": "acme", "name": "Acme", "segment": "smb",
        "source": "web", "at": "2024-01-02T09:00:00Z", "actor": "ann", "team": "sales"}) + "\n")
    _run(cli, "--store", store, "import", commands, cwd=tmp_path, env=env)
    _run(cli, "--store", store, "projections", "run", "--once", cwd=tmp_path, env=env)
    status = json.loads(_run(cli, "--store", store, "projections", "status", "--json",
                             cwd=tmp_path, env=env))
    names = {s["name"]: s for s in status}
    assert {"current_stage", "handover_history"} <= set(names)
    assert all(s["state"] == "up to date" for s in names.values())
    assert (names["current_stage"]["rows"], names["current_stage"]["position"]) == (1, 1)
