"""``lifecycle-es serve`` as real processes: two of them on one store share sessions (the
same secret), a user signs in over HTTP, and a page shows the store's data."""

from __future__ import annotations

import re

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
