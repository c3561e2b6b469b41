"""Who is asking the API: a bearer token (``Authorization: Bearer TOKEN``), never a cookie.

Every path but :data:`PUBLIC` (the OpenAPI description and its page) needs an active token:
the check is this middleware's, before any route, so a new route is protected without
saying so. Missing, malformed, unknown and revoked tokens get the same 401. A route that
records needs a ``write`` token (:func:`require_write`). The token is looked up on every
request (one read of its aggregate), so a revocation holds from the next request on.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.web.api.answers import error

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

log = get_logger("lifecycle_es.web.api")

#: paths (within the API) anyone may read: its description
PUBLIC = ("/openapi.json", "/docs")
#: the longest Authorization header looked at (a token is about 70 characters)
MAX_HEADER = 512
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="lifecycle-es"'}


@dataclass(frozen=True)
class TokenPrincipal:
    """The token of a request: its name (the actor of what it records), scope, and whether
    it may name another actor."""

    name: str
    scope: str
    act_for_others: bool


def token_of(request: Request) -> TokenPrincipal:
    """The request's token (the middleware guarantees one on every non-public route)."""
    token: TokenPrincipal | None = request.scope.get("lifecycle.api_token")
    assert token is not None
    return token


class BearerAuth:
    """ASGI middleware: the token of the ``Authorization`` header, or 401."""

    def __init__(self, app: ASGIApp, engine: LifecycleEngine) -> None:
        self.app = app
        self.engine = engine

    async def load(self, secret: str) -> TokenPrincipal | None:
        def read() -> TokenPrincipal | None:
            try:
                t = self.engine.token_for(secret)
            except LifecycleError:
                return None
            return None if t is None else TokenPrincipal(t.name, t.scope, t.act_for_others)

        return await anyio.to_thread.run_sync(read)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"].removeprefix(scope.get("root_path", "")) in PUBLIC:
            await self.app(scope, receive, send)
            return
        header = Headers(scope=scope).get("authorization", "")[:MAX_HEADER]
        kind, _, secret = header.partition(" ")
        token = await self.load(secret.strip()) if kind.lower() == "bearer" else None
        if token is None:
            log.warning("api.unauthenticated", path=scope["path"],
                        client=(scope.get("client") or ("?",))[0],
                        given="bearer" if kind.lower() == "bearer" else "none")
            response = error(401, "missing, unknown or revoked API token (send "
                                  "'Authorization: Bearer TOKEN'; docs/api.md)", CHALLENGE)
            await response(scope, receive, send)
            return
        scope["lifecycle.api_token"] = token
        await self.app(scope, receive, send)


def require_write(endpoint: Callable[[Request], Awaitable[Response]],
                  ) -> Callable[[Request], Awaitable[Response]]:
    """Route decorator: 403 unless the request's token has the ``write`` scope."""

    async def guarded(request: Request) -> Response:
        token = token_of(request)
        if token.scope != "write":
            return error(403, f"token {token.name!r} has scope {token.scope!r}; recording "
                              "needs a 'write' token")
        return await endpoint(request)

    guarded.__name__ = endpoint.__name__
    guarded.__doc__ = endpoint.__doc__
    guarded.scope = "write"  # type: ignore[attr-defined]
    return guarded
