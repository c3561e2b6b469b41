"""Pages from Jinja2 templates, autoescaped: stored text is always rendered inert (escaped,
non-printable characters shown as escapes), never as markup or a link target."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from starlette.requests import Request
from starlette.responses import HTMLResponse

from lifecycle_es.display import money_text, visible
from lifecycle_es.report import labels
from lifecycle_es.web.auth import session_of
from lifecycle_es.web.reads import Freshness
from lifecycle_es.web.sessions import csrf_token


def _when(value: datetime | None) -> str:
    return "" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86_400:.0f} days"


ENV = Environment(loader=PackageLoader("lifecycle_es.web", "templates"), autoescape=True,
                  undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True,
                  auto_reload=False)  # the package's templates: no stat per request
ENV.filters.update(visible=visible, money=money_text, when=_when, duration=_duration,
                   factor=labels.factor, factor_value=labels.factor_value)

#: (path, label, permission needed to see it or None)
NAV = (("/", "Cockpit", None), ("/handovers", "Handovers", None),
       ("/campaigns", "Campaigns", None), ("/metrics", "Metrics", None),
       ("/audit", "Audit", "audit"), ("/operations", "Operations", "operations"))


def page(request: Request, template: str, *, fresh: Freshness | None = None,
         status: int = 200, **context: Any) -> HTMLResponse:
    """``template`` rendered with the signed-in user, the CSRF token and the freshness."""
    settings = request.app.state.console.settings
    html = ENV.get_template(template).render(
        user=request.scope.get("lifecycle.user"), path=request.url.path, nav=NAV,
        csrf=csrf_token(session_of(request), settings.session_secret), fresh=fresh,
        now=datetime.now(UTC), **context)
    return HTMLResponse(html, status)
