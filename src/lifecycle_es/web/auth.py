"""Who is asking: the signed session (or a trusted sign-on header), roles, sign-in, sign-out.

Every route but :data:`PUBLIC` requires a signed-in, active user: the check is this
middleware's, before any route, so a new route is protected without saying so. A user
disabled or removed is signed out on their next request. Failed sign-ins take at least
``Settings.failed_signin_seconds`` (longer after repeated failures for the same name) and
are logged with the name and the client address, never the password.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import anyio
from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.web import sessions
from lifecycle_es.web.sessions import Session

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine
    from lifecycle_es.web.settings import Settings

log = get_logger("lifecycle_es.web")

#: paths anyone may open: the sign-in page, static files, the health check
PUBLIC = ("/signin", "/healthz")
PUBLIC_PREFIXES = ("/static/",)
#: the HTTP API: its own bearer tokens (``web/api/auth.py``), no session, no cookie
API_PREFIX = "/api/"

#: what each role may do (docs/console.md, "Users and roles")
PERMISSIONS: dict[str, frozenset[str]] = {
    "act": frozenset({"member", "lead", "admin"}),          # act for their own team
    "act_any_team": frozenset({"lead", "admin"}),           # act for every team
    "audit": frozenset({"compliance", "admin"}),
    "erase": frozenset({"compliance", "admin"}),
    "export": frozenset({"compliance", "admin"}),
    "operations": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Principal:
    """The signed-in user of a request."""

    name: str
    team: str
    role: str

    def may(self, permission: str) -> bool:
        return self.role in PERMISSIONS[permission]

    def may_act_for(self, team: str) -> bool:
        """Whether this user may act on something of ``team`` (a handover to it...)."""
        return self.may("act_any_team") or (self.may("act") and team == self.team)


def is_public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def user_of(request: Request) -> Principal:
    """The signed-in user (the middleware guarantees one on every non-public route)."""
    user: Principal | None = request.scope.get("lifecycle.user")
    assert user is not None
    return user


def session_of(request: Request) -> Session:
    session: Session = request.scope["lifecycle.session"]
    return session


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a path of this console only (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.isprintable():
        return "/"
    return target


class Authenticate:
    """ASGI middleware: the session from its cookie, the user it names, and the refusal of
    anonymous requests to every non-public path (GET: to the sign-in page; others: 403)."""

    def __init__(self, app: ASGIApp, engine: LifecycleEngine, settings: Settings) -> None:
        self.app = app
        self.engine = engine
        self.settings = settings

    async def load(self, name: str) -> Principal | None:
        def read() -> Principal | None:
            try:
                u = self.engine.user(name)
            except LifecycleError:
                return None
            return Principal(u.name, u.user_team, u.role) if u.active else None

        return await anyio.to_thread.run_sync(read)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(API_PREFIX):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        cookie = _cookie(headers.get("cookie", ""), sessions.COOKIE)
        given = sessions.decode(cookie, self.settings.session_secret,
                                self.settings.session_seconds)
        session = given or Session()
        user = None
        if self.settings.auth_header:  # the header alone says who it is
            name = (headers.get(self.settings.auth_header) or "").strip()
            user = await self.load(name) if name else None
            if user is None and session.user is not None:
                session = Session()
            elif user is not None and session.user != user.name:
                session = session.signed_in(user.name)
        elif session.user is not None:
            user = await self.load(session.user)
            if user is None:  # disabled or removed since: signed out
                session = Session()
        scope["lifecycle.session"] = session
        scope["lifecycle.user"] = user
        path = scope["path"]
        if user is None and not is_public(path):
            response: Response
            if scope["method"] in ("GET", "HEAD"):
                target = path + (f"?{scope['query_string'].decode()}"
                                 if scope.get("query_string") else "")
                response = RedirectResponse(f"/signin?next={quote(target, safe='')}", 303)
            else:
                response = PlainTextResponse("sign in first", 403)
            await self._with_cookie(response, scope, given)(scope, receive, send)
            return
        await self.app(scope, receive, self._sender(scope, send, given))

    def _with_cookie(self, response: Response, scope: Scope,
                     given: Session | None) -> Callable[[Scope, Receive, Send],
                                                        Awaitable[None]]:
        async def run(scope: Scope, receive: Receive, send: Send) -> None:
            await response(scope, receive, self._sender(scope, send, given))

        return run

    def _sender(self, scope: Scope, send: Send, given: Session | None) -> Send:
        async def sender(message: Message) -> None:
            if message["type"] == "http.response.start":
                session: Session = scope["lifecycle.session"]
                if session != given and not scope["path"].startswith(PUBLIC_PREFIXES):
                    MutableHeaders(scope=message).append("set-cookie",
                                                         self.cookie(session, scope))
            await send(message)

        return sender

    def cookie(self, session: Session, scope: Scope) -> str:
        value = sessions.encode(session, self.settings.session_secret)
        secure = "; Secure" if scope.get("scheme") == "https" else ""
        return (f"{sessions.COOKIE}={value}; Path=/; Max-Age={self.settings.session_seconds}; "
                f"HttpOnly; SameSite=Lax{secure}")


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class SignInThrottle:
    """Failed sign-ins per user name (this process): each one costs more time, up to
    :data:`MAX_DELAY` seconds, until a success or :data:`FORGET_AFTER` seconds pass."""

    MAX_DELAY = 10.0
    FORGET_AFTER = 900.0

    def __init__(self, base: float) -> None:
        self.base = base
        self.failures: dict[str, tuple[int, float]] = {}

    def delay(self, name: str) -> float:
        count, last = self.failures.get(name, (0, 0.0))
        if time.monotonic() - last > self.FORGET_AFTER:
            count = 0
        return float(min(self.MAX_DELAY, self.base * 2 ** count))

    def failed(self, name: str) -> int:
        count, last = self.failures.get(name, (0, 0.0))
        if time.monotonic() - last > self.FORGET_AFTER:
            count = 0
        if len(self.failures) > 10_000:  # bounded memory under a spray of names
            self.failures.clear()
        self.failures[name] = (count + 1, time.monotonic())
        return count + 1

    def succeeded(self, name: str) -> None:
        self.failures.pop(name, None)


async def sign_in(request: Request, engine: LifecycleEngine, throttle: SignInThrottle,
                  ) -> tuple[Principal | None, str]:
    """Check the form's user and password: (the user, or None and the message to show)."""
    form = await request.form()
    name = str(form.get("user") or "").strip()[:200]
    password = str(form.get("password") or "")
    started = time.monotonic()
    wait = throttle.delay(name)
    found = await anyio.to_thread.run_sync(engine.authenticate, name, password) \
        if name and password else None
    if found is None:
        failures = throttle.failed(name)
        client = request.client.host if request.client else "?"
        log.warning("console.signin_failed", user=name, client=client, failures=failures)
        await asyncio.sleep(max(0.0, wait - (time.monotonic() - started)))
        return None, "Wrong user name or password, or the user is disabled."
    throttle.succeeded(name)
    request.scope["lifecycle.session"] = session_of(request).signed_in(found.name)
    log.info("console.signin", user=found.name,
             client=request.client.host if request.client else "?")
    return Principal(found.name, found.user_team, found.role), ""


def require(permission: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Route decorator: 403 unless the signed-in user's role has ``permission``."""

    def wrap(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        async def guarded(request: Request) -> Any:
            if not user_of(request).may(permission):
                return PlainTextResponse(f"your role may not do this ({permission})", 403)
            return await endpoint(request)

        guarded.__name__ = endpoint.__name__
        guarded.__doc__ = endpoint.__doc__
        guarded.permission = permission  # type: ignore[attr-defined]
        return guarded

    return wrap
