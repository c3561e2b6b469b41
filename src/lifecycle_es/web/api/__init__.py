"""The HTTP API (``/api/v1``, docs/api.md): bearer tokens, ``POST /commands`` and the
``GET`` endpoints, with its OpenAPI description. Mounted by the console's app; it takes no
cookie and needs no CSRF token (a token in a header is not sent by a browser on its own)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware

from lifecycle_es.web.api import commands, openapi, reads
from lifecycle_es.web.api.auth import PUBLIC, BearerAuth

if TYPE_CHECKING:
    from starlette.routing import BaseRoute

    from lifecycle_es.engine import LifecycleEngine
    from lifecycle_es.web.context import Console

#: where the console mounts the API
PREFIX = openapi.PREFIX


def routes() -> list[BaseRoute]:
    """Every route of the API (the anonymous-refusal test walks them all)."""
    return [*commands.routes(), *reads.routes(), *openapi.routes()]


def create_api(engine: LifecycleEngine, console: Console) -> Starlette:
    """The API on ``engine``; it shares the console's state (settings, caches)."""
    api = Starlette(routes=routes(), middleware=[Middleware(BearerAuth, engine=engine)])
    api.state.console = console
    api.state.max_body = console.settings.api_max_body
    return api


__all__ = ["PREFIX", "PUBLIC", "create_api", "routes"]
