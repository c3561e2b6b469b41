"""``lifecycle-es serve`` as real processes: two of them on one store share sessions (the
same secret), a user signs in over HTTP, and a page shows the store's data."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time

import httpx
import pytest
from cli_helpers import CLI, cli
from web_helpers import PASSWORD

pytestmark = pytest.mark.slow
SECRET = "a session secret of at least thirty-two characters"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(store: str, port: int) -> subprocess.Popen[str]:
    env = {**os.environ, "LIFECYCLE_ES_SESSION_SECRET": SECRET}
    return subprocess.Popen([*CLI, "--store", store, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_up(proc: subprocess.Popen[str], base: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(f"{base}/healthz", timeout=1).text == "ok":
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the console did not start")


def test_two_serve_processes_share_sessions(durable_store_url: str) -> None:
    store = durable_store_url
    cli(store, "demo", "--customers", "5", "--until", "2025-01-01")
    cli(store, "users", "add", "ann", "--team", "success", "--role", "admin",
        "--password-stdin", input=PASSWORD + "\n")
    ports = [_free_port(), _free_port()]
    procs = [_start(store, p) for p in ports]
    try:
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        for proc, base in zip(procs, bases, strict=True):
            _wait_up(proc, base)
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
            assert PASSWORD not in err and SECRET not in err
