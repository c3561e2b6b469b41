"""Structured logging through structlog on top of the standard ``logging`` module.

The library only emits: as any library, it is silent until the host application configures
logging. The CLI calls :func:`configure`, which renders JSON lines when stderr is not a
terminal and readable key=value lines when it is.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import structlog

_PROCESSORS: list[Any] = [
    structlog.stdlib.filter_by_level,
    structlog.stdlib.add_logger_name,
    structlog.stdlib.add_log_level,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
    structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
]

logging.getLogger("lifecycle_es").addHandler(logging.NullHandler())


def get_logger(name: str) -> Any:
    """A structlog logger writing through stdlib logger ``name`` (under ``lifecycle_es``)."""
    return structlog.wrap_logger(
        logging.getLogger(name),
        processors=_PROCESSORS,
        wrapper_class=structlog.stdlib.BoundLogger,
    )


def _visible_values(_: Any, __: str, event: dict[str, Any]) -> dict[str, Any]:
    """Text values with their non-printable characters escaped (the console renderer
    writes text as it is; stored data must not reach a terminal raw)."""
    from lifecycle_es.display import visible

    return {k: visible(v) if isinstance(v, str) else v for k, v in event.items()}


def configure(level: str = "INFO", json: bool | None = None) -> None:
    """Send ``lifecycle_es`` logs to stderr: JSON when not a terminal (or when ``json``)."""
    as_json = (not sys.stderr.isatty()) if json is None else json
    renderer: list[Any] = (
        [structlog.processors.JSONRenderer()]  # JSON escapes control characters itself
        if as_json
        else [_visible_values, structlog.dev.ConsoleRenderer(colors=False)]
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *renderer]
        )
    )
    root = logging.getLogger("lifecycle_es")
    root.handlers = [handler]
    root.setLevel(level.upper())
    root.propagate = False
