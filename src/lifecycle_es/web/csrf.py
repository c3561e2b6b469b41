"""CSRF: every state-changing request carries its session's token, or is refused with 403.

The token is in every form (a hidden ``csrf_token`` field) and may come as the
``X-CSRF-Token`` header instead (htmx requests). The check runs before any route, so a route
cannot forget it; the body is read here (bounded) and handed on unchanged.
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lifecycle_es.logs import get_logger
from lifecycle_es.web.auth import API_PREFIX
from lifecycle_es.web.sessions import Session, csrf_token

log = get_logger("lifecycle_es.web")

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FIELD = "csrf_token"
HEADER = "x-csrf-token"
#: the largest request body read (forms of the console are small)
MAX_BODY = 256 * 1024


class CsrfCheck:
    """ASGI middleware refusing unsafe requests without the session's CSRF token."""

    def __init__(self, app: ASGIApp, secret: bytes) -> None:
        self.app = app
        self.secret = secret

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in SAFE_METHODS \
                or scope["path"].startswith(API_PREFIX):  # bearer tokens, no cookie
            await self.app(scope, receive, send)
            return
        body = bytearray()
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_BODY:
                await PlainTextResponse("request too large", 413)(scope, receive, send)
                return
        session: Session | None = scope.get("lifecycle.session")
        given = Headers(scope=scope).get(HEADER) or _form_token(bytes(body))
        if session is None or not given or not hmac.compare_digest(
                given, csrf_token(session, self.secret)):
            log.warning("console.csrf_refused", path=scope["path"], method=scope["method"])
            await PlainTextResponse("refused: missing or wrong CSRF token (reload the page)",
                                    403)(scope, receive, send)
            return
        sent = False

        async def replay() -> Message:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)


def _form_token(body: bytes) -> str | None:
    try:
        values = parse_qs(body.decode("utf-8"), max_num_fields=200).get(FIELD)
    except (UnicodeDecodeError, ValueError):
        return None
    return values[0] if values else None
