"""The API's answers: JSON bodies (the CLI's ``--json``, compact) and its errors, FastAPI's
way: ``{"detail": "one line"}``, or for invalid input ``{"detail": [problems...]}``."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from lifecycle_es.errors import (
    ECHO_CHARS,
    FieldProblem,
    InvalidInput,
    InvariantViolation,
    LifecycleError,
    StoreError,
    UnknownCampaign,
    UnknownCustomer,
)


def _default(value: Any) -> Any:
    return str(value)


def json_answer(data: Any, status: int = 200, headers: dict[str, str] | None = None,
                ) -> Response:
    """``data`` as JSON (sorted keys, ISO 8601 times, money in integer minor units)."""
    body = orjson.dumps(data, default=_default,
                        option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return Response(body, status, headers=headers, media_type="application/json")


def error(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    """An error answer: ``{"detail": ...}``."""
    return json_answer({"detail": detail}, status, headers)


def problems(status: int, found: list[FieldProblem], what: str, *,
             write: bool = True) -> Response:
    """Every problem with its line, field, value and reason, as the import says them
    (``message`` is the import's line), and what happened (a ``write``: nothing written)."""
    return json_answer({
        "detail": [{"line": p.line, "field": p.field, "value": _shown(p.value),
                    "reason": p.reason, "message": str(p)} for p in found],
        "message": f"{len(found)} problem{'s' if len(found) != 1 else ''} in {what}"
                   + ("; nothing was written" if write else ""),
    }, status)


def _shown(value: Any) -> Any:
    """A problem's value as JSON can carry it (a long text, a huge integer or any other
    object: as the text the message shows, cut)."""
    if value is None or isinstance(value, bool | float) or (
            isinstance(value, str) and len(value) <= ECHO_CHARS):
        return value
    if isinstance(value, int) and abs(value) < 2**63:
        return value
    return str(FieldProblem("", value, "")).removeprefix("=").removesuffix(": ")


def refused(exc: LifecycleError) -> Response:
    """A library error of a read as an answer: 422 invalid input, 404 an unknown customer
    or campaign, 409 a rule refused it, 503 the store cannot answer."""
    if isinstance(exc, InvalidInput):
        return problems(422, exc.problems, "the request", write=False)
    if isinstance(exc, UnknownCustomer | UnknownCampaign):
        return error(404, str(exc))
    if isinstance(exc, StoreError):
        return error(503, str(exc))
    if isinstance(exc, InvariantViolation):
        return error(409, str(exc))
    return error(400, str(exc))
