"""The web console (``lifecycle-es serve``): server-rendered pages on the engine's public API.

``create_app(engine, settings)`` builds the ASGI app; docs/console.md describes it.
"""

from lifecycle_es.web.app import create_app
from lifecycle_es.web.settings import Settings

__all__ = ["Settings", "create_app"]
