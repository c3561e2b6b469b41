"""The console's security, in one place: every route refuses the anonymous, CSRF on every
state-changing request, security headers, inert stored markup, sessions and sign-in."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from markupsafe import escape
from starlette.routing import Mount, Route
from web_helpers import PASSWORD, add_customer, add_users, client, csrf_of, settings, sign_in

from lifecycle_es import LifecycleEngine
from lifecycle_es.web import api, create_app
from lifecycle_es.web.auth import PUBLIC, PUBLIC_PREFIXES, safe_next
from lifecycle_es.web.sessions import COOKIE

MARKUP = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "javascript:alert(1)",
          "[link=https://evil.example/x]ann[/link]", "a\"b'c&d"]


@pytest.fixture
def engine() -> Iterator[LifecycleEngine]:
    e = LifecycleEngine("memory://")
    add_users(e)
    add_customer(e)
    e.projections.catch_up()  # the follower is off in these tests: requests never catch up
    yield e
    e.close()


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x", path)


def test_every_route_refuses_an_anonymous_request(engine: LifecycleEngine) -> None:
    app = create_app(engine, settings(follow=False))
    checked = 0
    api_checked = 0
    with client(engine, follow=False) as c:
        for route in app.routes:
            if isinstance(route, Mount) and route.path == api.PREFIX:  # bearer tokens: 401
                for inner in route.routes:
                    assert isinstance(inner, Route)
                    for method in sorted(inner.methods or ()):
                        if method == "HEAD" or inner.path in api.PUBLIC:
                            continue
                        r = c.request(method, api.PREFIX + _concrete(inner.path),
                                      follow_redirects=False)
                        assert r.status_code == 401, (method, inner.path, r.status_code)
                        assert r.headers["www-authenticate"].startswith("Bearer")
                        api_checked += 1
                continue
            if isinstance(route, Mount):  # static files: public by design
                assert route.path.rstrip("/") + "/" in PUBLIC_PREFIXES
                continue
            assert isinstance(route, Route)
            for method in sorted(route.methods or ()):
                if method == "HEAD":
                    continue
                if route.path in PUBLIC:
                    continue
                r = c.request(method, _concrete(route.path), follow_redirects=False)
                assert r.status_code in (303, 403), (method, route.path, r.status_code)
                if r.status_code == 303:
                    assert r.headers["location"].startswith("/signin?next=")
                checked += 1
    assert checked >= 8  # the pages and the actions, not a walk over nothing
    assert api_checked >= 8  # the API's commands and reads
    with client(engine, follow=False) as c:
        assert c.get("/healthz").text == "ok"
        assert c.get("/static/htmx.min.js").status_code == 200
        assert c.get("/signin").status_code == 200


def test_state_changing_requests_need_the_csrf_token(engine: LifecycleEngine) -> None:
    with client(engine, follow=False) as c:
        token = sign_in(c, "ann")
        before = engine.customer("acme").version
        for data in ({}, {"csrf_token": "0" * 64}):
            r = c.post("/customers/acme/handovers/h1/accept", data=data)
            assert r.status_code == 403
            r = c.post("/customers/acme/check-in", data={**data, "notes": "x"})
            assert r.status_code == 403
        assert engine.customer("acme").version == before  # nothing written
        r = c.post("/signout", data={})
        assert r.status_code == 403 and c.get("/").status_code == 200  # still signed in
        r = c.post("/customers/acme/check-in", data={"csrf_token": token, "notes": "call"},
                   follow_redirects=False)
        assert r.status_code == 303
        assert engine.customer("acme").version == before + 1
    with client(engine, follow=False) as other:  # another session's token is refused
        sign_in(other, "ann")
        r = other.post("/customers/acme/check-in", data={"csrf_token": token})
        assert r.status_code == 403


def test_every_state_changing_route_needs_the_csrf_token(engine: LifecycleEngine) -> None:
    """Every POST route of the app (the customer and campaign actions included) refuses a
    request without its session's token, or with another one, and writes nothing."""
    engine.announce_campaign(campaign="x", name="X", offer="o", starts="2024-01-01",
                             ends="2024-12-31", owning_team="support", at="2024-01-01T00:00:00Z",
                             actor="adam", team="support")
    add_customer(engine, "x")  # the paths' parameters are "x": each action would succeed
    engine.projections.catch_up()
    app = create_app(engine, settings(follow=False))
    posts = [r.path for r in app.routes if isinstance(r, Route) and "POST" in (r.methods or ())
             and r.path != "/signin"]
    assert {"/campaigns", "/campaigns/{campaign:path}/amend", "/campaigns/{campaign:path}/end",
            "/customers/{customer:path}/check-in"} <= set(posts)
    head = engine.projections.head()
    with client(engine, follow=False) as c:
        sign_in(c, "adam")  # an admin: may do every action
        for path in posts:
            for data in ({}, {"csrf_token": "0" * 64}):
                r = c.post(_concrete(path), data={**data, "name": "Y", "reason": "r",
                                                 "confirm": "x"})
                assert r.status_code == 403, (path, data)
    assert engine.projections.head() == head  # nothing written


def test_security_headers_on_every_kind_of_response(engine: LifecycleEngine) -> None:
    with client(engine, follow=False) as c:
        responses = [c.get("/signin"), c.get("/healthz"), c.get("/", follow_redirects=False),
                     c.get("/static/console.css")]
        sign_in(c, "ann")
        responses += [c.get("/"), c.get("/customers/acme"), c.get("/operations"),
                      c.post("/customers/acme/check-in", data={})]
    for r in responses:
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert r.headers["x-frame-options"] == "DENY"
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    page = responses[5].text
    assert "<script>" not in page.replace('<script src="/static/htmx.min.js" defer></script>',
                                          "")
    assert " style=" not in page and " on" not in re.sub(r"\s+", " ", page).replace(
        " only", "")  # no inline handler attribute


@pytest.mark.parametrize("text", MARKUP)
def test_stored_markup_is_rendered_inert(text: str) -> None:
    engine = LifecycleEngine("memory://")
    add_users(engine)
    add_customer(engine, key=text, name=text)
    engine.check_in(customer=text, at="2024-01-04T00:00:00Z", actor=text, team="success",
                    notes=text)
    engine.projections.catch_up()
    try:
        with client(engine, follow=False) as c:
            sign_in(c, "adam")
            pages = [c.get("/"), c.get("/customers/" + text.replace("#", "%23")),
                     c.get("/handovers")]
    finally:
        engine.close()
    for r in pages:
        assert r.status_code == 200
        body = r.text
        assert "<script>alert" not in body and "<img src=x" not in body
        assert 'href="javascript:' not in body
    assert str(escape(text)) in pages[1].text  # shown, as text


def test_session_cookie_flags_and_tampering(engine: LifecycleEngine) -> None:
    with client(engine, https=True, follow=False) as c:
        token = csrf_of(c.get("/signin").text)
        r = c.post("/signin", data={"user": "ann", "password": PASSWORD, "csrf_token": token},
                   follow_redirects=False)
        cookie = r.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
        value = c.cookies[COOKIE]
        assert c.get("/", follow_redirects=False).status_code == 200
    with client(engine, follow=False) as c:
        c.cookies.set(COOKIE, value)
        assert c.get("/", follow_redirects=False).status_code == 200  # same secret: valid
        forged = value[:-2] + ("AA" if not value.endswith("AA") else "BB")
        c.cookies.set(COOKIE, forged)
        assert c.get("/", follow_redirects=False).status_code == 303
    with client(engine, follow=False) as c:
        token = csrf_of(c.get("/signin").text)
        r = c.post("/signin", data={"user": "ann", "password": PASSWORD, "csrf_token": token},
                   follow_redirects=False)
        assert "Secure" not in r.headers["set-cookie"]  # plain HTTP: no Secure flag
    app = create_app(engine, settings(follow=False, session_secret=b"another secret " * 3))
    from starlette.testclient import TestClient
    with TestClient(app) as c:
        c.cookies.set(COOKIE, value)
        assert c.get("/", follow_redirects=False).status_code == 303  # another secret


def test_failed_sign_in_is_slowed_logged_and_says_nothing_of_the_password(
        engine: LifecycleEngine, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lifecycle_es")
    with client(engine, follow=False) as c:
        token = csrf_of(c.get("/signin").text)
        for user, password in (("ann", "wrong password here"), ("nobody", PASSWORD)):
            r = c.post("/signin", data={"user": user, "password": password,
                                        "csrf_token": token})
            assert r.status_code == 401
            assert "Wrong user name or password" in r.text
            assert c.get("/", follow_redirects=False).status_code == 303
    logged = caplog.text
    assert "signin_failed" in logged and "nobody" in logged
    assert "wrong password here" not in logged and PASSWORD not in logged


def test_no_open_redirect_after_sign_in(engine: LifecycleEngine) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example",
                   "javascript:alert(1)", "evil", "/\nx"):
        assert safe_next(target) == "/"
    assert safe_next("/customers/acme?as_of=2024-01-01") == "/customers/acme?as_of=2024-01-01"
    with client(engine, follow=False) as c:
        token = csrf_of(c.get("/signin?next=//evil.example/").text)
        r = c.post("/signin", data={"user": "ann", "password": PASSWORD, "csrf_token": token,
                                    "next": "https://evil.example/"}, follow_redirects=False)
        assert r.headers["location"] == "/"
    with client(engine, follow=False) as c:
        r = c.get("/customers/acme?as_of=2024-01-05", follow_redirects=False)
        token = csrf_of(c.get(r.headers["location"]).text)
        r = c.post("/signin", data={"user": "ann", "password": PASSWORD, "csrf_token": token,
                                    "next": "/customers/acme?as_of=2024-01-05"},
                   follow_redirects=False)
        assert r.headers["location"] == "/customers/acme?as_of=2024-01-05"


def test_a_disabled_user_is_signed_out_and_cannot_sign_in(engine: LifecycleEngine) -> None:
    with client(engine, follow=False) as c:
        sign_in(c, "ann")
        assert c.get("/", follow_redirects=False).status_code == 200
        engine.disable_user(user="ann", reason="left", **{"at": "2024-02-01T00:00:00Z",
                                                          "actor": "root", "team": "admin"})
        assert c.get("/", follow_redirects=False).status_code == 303
        token = csrf_of(c.get("/signin").text)
        r = c.post("/signin", data={"user": "ann", "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 401


def test_sign_out_ends_the_session(engine: LifecycleEngine) -> None:
    with client(engine, follow=False) as c:
        token = sign_in(c, "ann")
        assert c.post("/signout", data={"csrf_token": token},
                      follow_redirects=False).status_code == 303
        assert c.get("/", follow_redirects=False).status_code == 303


def test_trusted_sign_on_header(engine: LifecycleEngine) -> None:
    with client(engine, follow=False, auth_header="X-Forwarded-User") as c:
        assert c.get("/", headers={"X-Forwarded-User": "ann"},
                     follow_redirects=False).status_code == 200
        for who in ("nobody", ""):  # unknown users are not let in
            assert c.get("/", headers={"X-Forwarded-User": who},
                         follow_redirects=False).status_code == 303
    with client(engine, follow=False) as c:  # without the option the header means nothing
        assert c.get("/", headers={"X-Forwarded-User": "ann"},
                     follow_redirects=False).status_code == 303


def test_roles_guard_pages_and_actions(engine: LifecycleEngine) -> None:
    with client(engine, follow=False) as c:
        token = sign_in(c, "cora")  # compliance: sees, does not act, no operations
        assert c.get("/operations").status_code == 403
        r = c.post("/customers/acme/handovers/h1/accept", data={"csrf_token": token})
        assert r.status_code == 403
    with client(engine, follow=False) as c:
        token = sign_in(c, "adam")
        assert c.get("/operations").status_code == 200


def test_a_store_fault_is_one_line_with_the_headers() -> None:
    engine = LifecycleEngine("memory://")
    add_users(engine)  # the read models were never built: every query faults
    try:
        with client(engine, follow=False) as c:
            token = csrf_of(c.get("/signin").text)
            c.post("/signin", data={"user": "ann", "password": PASSWORD, "csrf_token": token})
            r = c.get("/handovers")
    finally:
        engine.close()
    assert r.status_code == 503
    assert "The store cannot answer now" in r.text and "Traceback" not in r.text
    assert r.headers["x-frame-options"] == "DENY"
