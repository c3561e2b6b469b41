"""Files that hold names or keys are private (mode 0600) whatever the umask: the SQLite store
with its -wal and -shm files, the HTML report, the default master key file; a key file other
users may read or write is refused with one line (docs/privacy.md, "Files")."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_helpers import cli

from lifecycle_es import LifecycleEngine

KEY = "bGlmZWN5Y2xlLWVzIHRlc3Qgc3VpdGUgbWFzdGVyIGs="  # the suite's (conftest.py)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def loose_umask() -> None:
    os.umask(0o022)  # the usual default: new files 0644


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_sqlite_store_and_its_wal_and_shm_are_private(tmp_path: Path, umask_022: None) -> None:
    path = tmp_path / "s.db"
    cli(f"sqlite:///{path}", "init", preexec_fn=loose_umask)
    assert mode(path) == 0o600
    engine = LifecycleEngine(f"sqlite:///{path}")  # in this process: umask 022 as well
    engine.register(customer="acme", at="2024-01-02T09:00:00Z", actor="ann",
                    team="marketing", name="Acme", segment="smb", source="web")
    wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
    assert wal.exists() and shm.exists()
    assert (mode(wal), mode(shm)) == (0o600, 0o600)
    engine.close()
    other = tmp_path / "lib.db"  # made by the library alone
    LifecycleEngine(f"sqlite:///{other}").close()
    assert mode(other) == 0o600


def test_report_is_private(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 's.db'}"
    cli(store, "init")
    out = tmp_path / "report.html"
    cli(store, "report", "--out", str(out), preexec_fn=loose_umask)
    assert mode(out) == 0o600 and "<html" in out.read_text()


def test_default_key_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIFECYCLE_ES_MASTER_KEY")
    env = {**os.environ, "XDG_CONFIG_HOME": str(tmp_path / "cfg")}
    cli(f"sqlite:///{tmp_path / 's.db'}", "init", env=env, preexec_fn=loose_umask)
    key = tmp_path / "cfg" / "lifecycle-es" / "master.key"
    assert mode(key) == 0o600 and mode(key.parent) == 0o700


@pytest.mark.parametrize(("bits", "refused"), [
    (0o600, False), (0o400, False), (0o640, False),  # the group may read (a service group)
    (0o644, True), (0o604, True), (0o620, True), (0o666, True), (0o602, True),
])
def test_a_key_file_open_to_others_is_refused(tmp_path: Path, bits: int, refused: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LIFECYCLE_ES_MASTER_KEY")
    key = tmp_path / "master.key"
    key.write_text(KEY + "\n")
    key.chmod(bits)
    env = {**os.environ, "LIFECYCLE_ES_MASTER_KEY_FILE": str(key)}
    proc = cli(f"sqlite:///{tmp_path / 's.db'}", "init", env=env, check=False)
    if not refused:
        assert proc.returncode == 0, proc.stderr
        return
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: master key file "), proc.stderr
    assert f"mode {bits:04o}" in lines[0] and "chmod 600" in lines[0]
    assert KEY not in proc.stderr
