"""The console's ASGI app: ``create_app(engine, settings)``.

Layers, outermost first: security headers (every response), authentication (every path but
the sign-in page, static files and ``/healthz`` needs a signed-in user), CSRF (every unsafe
request needs its session's token), then the routes of each page group.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import anyio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from lifecycle_es.errors import InvalidInput, LifecycleError, StoreError
from lifecycle_es.logs import get_logger
from lifecycle_es.web import api, auth
from lifecycle_es.web.auth import Authenticate, safe_next
from lifecycle_es.web.context import Console, console_of
from lifecycle_es.web.csrf import CsrfCheck
from lifecycle_es.web.follower import Follower
from lifecycle_es.web.pages import (
    actions,
    audit,
    campaign_actions,
    campaigns,
    cockpit,
    customers,
    downloads,
    handovers,
    metrics,
    operations,
)
from lifecycle_es.web.reads import read_models
from lifecycle_es.web.render import page
from lifecycle_es.web.security import SecurityHeaders
from lifecycle_es.web.sessions import Session
from lifecycle_es.web.settings import Settings
from lifecycle_es.web.timing import ServerTiming

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

log = get_logger("lifecycle_es.web")

#: seconds the start waits for the follower's first catch-up (pages work from then on)
START_WAIT = 60.0


async def refused(request: Request, exc: Exception) -> Response:
    """A library error a page did not expect: its one line (no traceback, no secret: the
    library's messages redact store passwords), 503 for a store fault, else 409/400."""
    status = 503 if isinstance(exc, StoreError) else 400 if isinstance(exc, InvalidInput) \
        else 409
    log.warning("console.request_failed", path=request.url.path, error=type(exc).__name__)
    title = "The store cannot answer now" if status == 503 else "Cannot do this"
    if request.scope.get("lifecycle.user") is None:  # no page chrome for the anonymous
        return PlainTextResponse(f"{title}: {exc}", status)
    return page(request, "message.html", title=title, message=str(exc), status=status)


async def healthz(request: Request) -> Response:
    """Liveness for a load balancer: no data, no session."""
    return PlainTextResponse("ok")


async def signin(request: Request) -> Response:
    if request.method == "GET":
        if request.scope.get("lifecycle.user") is not None:
            return RedirectResponse(safe_next(request.query_params.get("next")), 303)
        return page(request, "signin.html", next=safe_next(request.query_params.get("next")),
                    error="")
    console = console_of(request)
    form = await request.form()
    target = safe_next(str(form.get("next") or ""))
    user, error = await auth.sign_in(request, console.engine, console.throttle)
    if user is None:
        return page(request, "signin.html", next=target, error=error, status=401)
    return RedirectResponse(target, 303)


async def signout(request: Request) -> Response:
    user = auth.user_of(request)
    request.scope["lifecycle.session"] = Session()
    log.info("console.signout", user=user.name)
    return RedirectResponse("/signin", 303)


def routes(api_app: Starlette | None = None) -> list[BaseRoute]:
    """Every route of the console (the anonymous-refusal test walks them all), and the
    HTTP API mounted at ``/api/v1`` (docs/api.md)."""
    return [
        *([Mount(api.PREFIX, api_app, name="api")] if api_app is not None else []),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/signin", signin, methods=["GET", "POST"]),
        Route("/signout", signout, methods=["POST"]),
        Mount("/static", StaticFiles(packages=[("lifecycle_es.web", "static")]),
              name="static"),
        *cockpit.routes(), *customers.routes(), *handovers.routes(), *campaigns.routes(),
        *metrics.routes(), *audit.routes(), *operations.routes(), *actions.routes(),
        *campaign_actions.routes(), *downloads.routes(),
    ]


def create_app(engine: LifecycleEngine, settings: Settings | None = None) -> Starlette:
    """The console on ``engine`` (``settings``: :meth:`Settings.from_environment`). With
    ``settings.follow`` the app runs the live follower while it serves."""
    settings = settings or Settings.from_environment()
    read_models(engine)  # requests never catch up
    follower = Follower(engine, settings.poll_seconds) \
        if settings.follow and not engine.reader.store.read_only else None

    console = Console(engine, settings)
    metrics.share_default_period(console)
    operations.count_rows(console)
    handovers.share_decided(console)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if follower is not None:
            follower.start()
            await anyio.to_thread.run_sync(follower.ready.wait, START_WAIT)
        console.views.start()  # the shared views, computed once before the first request
        await anyio.to_thread.run_sync(console.views.wait_ready, START_WAIT)
        try:
            yield
        finally:
            console.views.stop()
            if follower is not None:
                follower.stop()

    app = Starlette(
        routes=routes(api.create_api(engine, console)),
        middleware=[Middleware(ServerTiming), Middleware(SecurityHeaders),
                    Middleware(Authenticate, engine=engine, settings=settings),
                    Middleware(CsrfCheck, secret=settings.session_secret)],
        lifespan=lifespan,
        exception_handlers={LifecycleError: refused},
    )
    app.state.console = console
    return app


__all__ = ["create_app"]
