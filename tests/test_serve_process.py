"""``lifecycle-es serve`` as real processes: two of them on one store share sessions (the
same secret), a user signs in over HTTP, and a page shows the store's data."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from cli_helpers import cli
from web_helpers import PASSWORD, SERVE_SECRET, free_port, start_serve, wait_up

pytestmark = pytest.mark.slow
def test_two_serve_processes_share_sessions(durable_store_url: str) -> None:
    store = durable_store_url
    cli(store, "demo", "--customers", "5", "--until", "2025-01-01")
    cli(store, "users", "add", "ann", "--team", "success", "--role", "admin",
        "--password-stdin", input=PASSWORD + "\n")
    ports = [free_port(), free_port()]
    procs = [start_serve(store, p) for p in ports]
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for proc, base in zip(procs, bases, strict=True):
            wait_up(proc, base)
        with httpx.Client(base_url=bases[0]) as one:
            form = one.get("/signin").text
            token = re.search(r'name="csrf_token" value="([^"]+)"', form)
            assert token is not None
            r = one.post("/signin", data={"user": "ann", "password": PASSWORD,
                                          "csrf_token": token.group(1), "next": "/"})
            assert r.status_code == 303 and r.headers["location"] == "/"
            page = one.get("/")
            assert page.status_code == 200 and "open gap(s)" in page.text
            assert "Data as of event" in page.text
            cookies = dict(one.cookies)
        with httpx.Client(base_url=bases[1], cookies=cookies) as two:
            assert two.get("/operations").status_code == 200  # the session, in another process
        with httpx.Client(base_url=bases[1]) as anonymous:
            assert anonymous.get("/operations").status_code == 303
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            _, err = proc.communicate(timeout=30)
            assert PASSWORD not in err and SERVE_SECRET not in err


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # ended meanwhile
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


@pytest.mark.parametrize("secret", [SERVE_SECRET, None], ids=["secret", "no-secret"])
def test_workers_share_one_port_and_the_sessions(durable_store_url: str,
                                                 secret: str | None) -> None:
    store = durable_store_url
    cli(store, "demo", "--customers", "5", "--until", "2025-01-01")
    cli(store, "users", "add", "ann", "--team", "success", "--role", "admin",
        "--password-stdin", input=PASSWORD + "\n")
    port = free_port()
    proc = start_serve(store, port, "--workers", "2", secret=secret)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(proc, base, 180)  # three processes starting on a shared machine
        workers = [c for c in _children(proc.pid)
                   if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
        assert len(workers) == 2
        with httpx.Client(base_url=base) as one:
            token = re.search(r'name="csrf_token" value="([^"]+)"', one.get("/signin").text)
            assert token is not None
            r = one.post("/signin", data={"user": "ann", "password": PASSWORD,
                                          "csrf_token": token.group(1), "next": "/"})
            assert r.status_code == 303
            cookies = dict(one.cookies)
        for _ in range(12):  # a new connection each: both workers answer, one session
            with httpx.Client(base_url=base, cookies=cookies) as again:
                page = again.get("/")
                assert page.status_code == 200 and "Data as of event" in page.text
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert PASSWORD not in err and SERVE_SECRET not in err
    assert ("console.session_secret_generated" in err) == (secret is None)
    assert not _children(proc.pid)  # the workers stopped with it


@pytest.mark.parametrize("bad", ["0", "65", "-1", "99999999999999999999", "two", "<b>2</b>"])
def test_workers_out_of_range_are_refused(tmp_path: Path, bad: str) -> None:
    store = f"sqlite:///{tmp_path / 'w.db'}"
    r = cli(store, "serve", "--workers", bad, check=False)
    assert r.returncode == 2 and "--workers" in r.stderr
    assert not (tmp_path / "w.db").exists()  # nothing written
