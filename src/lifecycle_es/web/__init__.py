"""The web console (``lifecycle-es serve``): server-rendered pages on the engine's public API.

``create_app(engine, settings)`` builds the ASGI app; docs/console.md describes it.
"""

from lifecycle_es.web.app import create_app
from lifecycle_es.web.settings import Settings


def cockpit_page_size() -> int:
    """Work items per page of the cockpit."""
    from lifecycle_es.web.pages.cockpit import PAGE_SIZE

    return PAGE_SIZE


__all__ = ["Settings", "cockpit_page_size", "create_app"]
