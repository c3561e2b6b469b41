"""Reading a request's body within the API's cap (413 names the cap)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from lifecycle_es.web.api.answers import error

#: the default cap of a request body (``Settings.api_max_body``)
DEFAULT_MAX_BODY = 10 * 1024 * 1024


def size_text(limit: int) -> str:
    """``10,485,760 bytes (10 MiB)``."""
    mib = limit / (1024 * 1024)
    return f"{limit:,} bytes ({mib:g} MiB)" if limit >= 1024 * 1024 else f"{limit:,} bytes"


def too_large(limit: int) -> Response:
    return error(413, f"request body over the limit of {size_text(limit)}: send fewer "
                      "commands per request")


async def read_body(request: Request, limit: int) -> bytes | Response:
    """The body, or the 413 answer once it is known to exceed ``limit`` (from its
    Content-Length, or while it streams in: never more than ``limit`` bytes are kept)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        return too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return too_large(limit)
    return bytes(body)
