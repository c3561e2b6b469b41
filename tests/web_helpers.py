"""The web console in-process: an engine with users and a customer, a client, sign-in."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

import httpx
from cli_helpers import CLI, small_demo

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain.user import hash_password
from lifecycle_es.web import Settings, create_app

with warnings.catch_warnings():  # starlette prefers httpx2; httpx is what is installed
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

PASSWORD = "correct horse battery staple"
SECRET = b"s" * 40
ADMIN_META = {"at": "2024-01-01T00:00:00Z", "actor": "root", "team": "admin"}
#: user -> (team, role)
USERS = {"ann": ("success", "member"), "lea": ("sales", "lead"), "cora": ("success", "compliance"),
         "adam": ("support", "admin")}


@cache
def password_hash() -> str:
    """One argon2 hash for every test user (hashing costs about half a second)."""
    return hash_password(PASSWORD)


def add_users(engine: LifecycleEngine) -> None:
    for name, (team, role) in USERS.items():
        engine.add_user(user=name, user_team=team, role=role, password_hash=password_hash(),
                        **ADMIN_META)


def add_customer(engine: LifecycleEngine, key: str = "acme", name: str = "Acme",
                 handover_to: str = "success") -> None:
    engine.register(customer=key, at="2024-01-02T09:00:00Z", actor="bob", team="marketing",
                    name=name, segment="smb", source="web")
    engine.send_handover(customer=key, at="2024-01-03T09:00:00Z", actor="bob", team="sales",
                         handover_id="h1", from_team="sales", to_team=handover_to,
                         document={"goals": ["grow"], "risks": ["churn"]})


def demo_with_users(tmp_path_factory: Any, name: str,
                    customers: dict[str, str] | None = None) -> str:
    """A small demo store (``cli_helpers.small_demo``) with the users and ``customers``
    (key -> name, each with a handover to success)."""
    store = small_demo(tmp_path_factory, name)
    e = LifecycleEngine(store)
    try:
        add_users(e)
        for key, shown in (customers or {}).items():
            add_customer(e, key, shown)
    finally:
        e.close()
    return store


def settings(**changes: Any) -> Settings:
    return Settings(**{"session_secret": SECRET, "failed_signin_seconds": 0.05, **changes})


@contextmanager
def client(engine: LifecycleEngine, https: bool = False, **changes: Any,
           ) -> Iterator[TestClient]:
    """A client of the console on ``engine`` (its follower running while in the block)."""
    app = create_app(engine, settings(**changes))
    base = "https://testserver" if https else "http://testserver"
    with TestClient(app, base_url=base) as c:
        yield c


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "no CSRF field in the page"
    return found.group(1)


def sign_in(c: TestClient, user: str, password: str = PASSWORD) -> str:
    """Sign ``user`` in; returns the CSRF token of the new session."""
    token = csrf_of(c.get("/signin").text)
    r = c.post("/signin", data={"user": user, "password": password, "csrf_token": token,
                                "next": "/"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    return csrf_of(c.get("/").text)


#: the session secret of the real ``serve`` processes of the tests
SERVE_SECRET = "a session secret of at least thirty-two characters"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(store: str, port: int, *options: str,
                secret: str | None = SERVE_SECRET) -> subprocess.Popen[str]:
    """``lifecycle-es --store STORE serve --port PORT [OPTIONS]`` as a real process (with the
    session secret ``secret``; None: none configured)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_ES_SESSION")}
    if secret is not None:
        env["LIFECYCLE_ES_SESSION_SECRET"] = secret
    return subprocess.Popen([*CLI, "--store", store, "serve", "--port", str(port), *options],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_up(proc: subprocess.Popen[str], base: str, seconds: float = 60) -> None:
    """Wait (at most ``seconds``) until the console at ``base`` answers ``/healthz``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(f"{base}/healthz", timeout=1).text == "ok":
                return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError("the console did not start")


def add_token(engine: LifecycleEngine, name: str, scope: str = "write",
              act_for_others: bool = False) -> str:
    """Issue an API token on ``engine``; returns the token."""
    from lifecycle_es.domain.token import new_token, token_hash

    token = new_token(name)
    engine.add_token(token=name, scope=scope, act_for_others=act_for_others,
                     token_hash=token_hash(token), **ADMIN_META)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
