"""The API's OpenAPI 3.1 description (``/api/v1/openapi.json``), generated: the command
schemas are the pydantic command models' own (``model_json_schema``), the read endpoints
come from their table (``reads.READS``); and its page (``/api/v1/docs``), rendered on the
server from the same description (no script, nothing from another site)."""

from __future__ import annotations

from functools import cache
from typing import Any

from markupsafe import escape
from pydantic import TypeAdapter
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from lifecycle_es.commands import AnyCommand
from lifecycle_es.web.api.answers import json_answer
from lifecycle_es.web.api.body import DEFAULT_MAX_BODY, size_text
from lifecycle_es.web.api.commands import BATCH, KEY_MAX
from lifecycle_es.web.api.reads import PARAMS, READS

PREFIX = "/api/v1"
REF = "#/components/schemas/{model}"

_ERROR = {"type": "object", "properties": {"detail": {"type": "string"}},
          "required": ["detail"]}
_PROBLEMS = {
    "type": "object",
    "properties": {
        "detail": {"type": "array", "items": {"type": "object", "properties": {
            "line": {"type": ["integer", "null"]}, "field": {"type": "string"},
            "value": {}, "reason": {"type": "string"}, "message": {"type": "string"}}}},
        "message": {"type": "string"},
    },
}
_RECORDED = {
    "type": "object",
    "properties": {
        "commands": {"type": "integer"}, "events": {"type": "integer"},
        "recorded": {"type": "array", "items": {"type": "object", "properties": {
            "line": {"type": "integer"}, "type": {"type": "string"},
            "target": {"type": "string", "enum": ["customer", "campaign"]},
            "key": {"type": "string"},
            "versions": {"type": "array", "items": {"type": "integer"}}}}},
    },
}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    says = {401: "no valid token", 403: "the token may not do this",
            404: "no such customer", 409: "a concurrency conflict: try again",
            413: "the body is over the limit", 415: "another Content-Type",
            422: "invalid input: every problem with its line", 503: "the store cannot answer"}
    return {str(c): _json(_PROBLEMS if c in (403, 422) else _ERROR, says[c]) for c in codes}


@cache
def description(max_body: int = DEFAULT_MAX_BODY) -> dict[str, Any]:
    """The OpenAPI document."""
    schema = TypeAdapter(AnyCommand).json_schema(ref_template=REF)
    components = schema.pop("$defs", {})
    components["Command"] = schema
    command = {"$ref": REF.format(model="Command")}
    paths: dict[str, Any] = {
        "/commands": {"post": {
            "summary": "Record one command (JSON) or a batch (JSON Lines), all or nothing",
            "description": (
                "The commands of `lifecycle-es import` (docs/commands.md). `actor` may be "
                "left out: the token's name is the actor; naming another needs a token "
                "issued with --act-as-others. An `Idempotency-Key` header (1 to "
                f"{KEY_MAX} printable ASCII characters) makes a retry record nothing twice "
                f"and answer as the first time did. Bodies up to {size_text(max_body)}."),
            "parameters": [{"name": "Idempotency-Key", "in": "header", "required": False,
                            "schema": {"type": "string", "maxLength": KEY_MAX}}],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": command},
                **{t: {"schema": {"type": "string", "description": "one command (JSON) "
                                  "per line"}} for t in BATCH[:1]}}},
            "responses": {"201": _json(_RECORDED, "recorded: each command's events' "
                                                  "versions"),
                          **_errors(401, 403, 409, 413, 415, 422, 503)},
            "security": [{"bearer": ["write"]}],
        }},
    }
    for path, (_, summary) in READS.items():
        params = [{"name": "customer", "in": "path", "required": True,
                   "schema": {"type": "string"}}] if "{customer}" in path else []
        params += [{"name": n, "in": "query", "required": path == "/metrics" and n != "margin",
                    "description": d, "schema": {"type": "string"}}
                   for n, d in PARAMS.get(path, ())]
        paths[path] = {"get": {
            "summary": summary, "parameters": params,
            "responses": {"200": _json({}, "the CLI's --json answer"),
                          **_errors(401, 404, 422, 503)},
            "security": [{"bearer": ["read"]}],
        }}
    return {
        "openapi": "3.1.0",
        "info": {"title": "lifecycle-es API", "version": "1",
                 "description": "Record lifecycle commands and read customers, gaps, "
                                "handovers and metrics (docs/api.md)."},
        "servers": [{"url": PREFIX}],
        "paths": paths,
        "components": {"schemas": components, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "`lifecycle-es tokens add NAME --scope read|write`"}}},
    }


async def openapi_json(request: Request) -> Response:
    """The OpenAPI description."""
    return json_answer(description(request.app.state.max_body))


async def docs(request: Request) -> Response:
    """The description as a page: every endpoint, its parameters and answers."""
    spec = description(request.app.state.max_body)
    parts = [f"<h1>{escape(spec['info']['title'])}</h1>",
             f"<p>{escape(spec['info']['description'])} Machine-readable: "
             f"<a href=\"{PREFIX}/openapi.json\">openapi.json</a>.</p>"]
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            parts.append(f"<h2><code>{escape(method.upper())} {escape(PREFIX + path)}</code>"
                         f"</h2><p>{escape(op['summary'])}</p>")
            if "description" in op:
                parts.append(f"<p>{escape(op['description'])}</p>")
            params = op.get("parameters", [])
            if params:
                parts.append("<ul>" + "".join(
                    f"<li><code>{escape(p['name'])}</code> ({escape(p['in'])}"
                    f"{', required' if p.get('required') else ''})"
                    f"{': ' + escape(p['description']) if 'description' in p else ''}</li>"
                    for p in params) + "</ul>")
            parts.append("<p>Answers: " + ", ".join(
                f"{escape(code)} {escape(r['description'])}"
                for code, r in op["responses"].items()) + "</p>")
    types = sorted(spec["components"]["schemas"]["Command"]["discriminator"]["mapping"])
    parts.append("<h2>Command types</h2><p>" + ", ".join(
        f"<code>{escape(t)}</code>" for t in types) + " (fields: docs/commands.md)</p>")
    html = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>"
            "lifecycle-es API</title><link rel=\"stylesheet\" href=\"/static/console.css\">"
            "</head><body><main>" + "".join(parts) + "</main></body></html>")
    return HTMLResponse(html)


def routes() -> list[Route]:
    return [Route("/openapi.json", openapi_json, methods=["GET"]),
            Route("/docs", docs, methods=["GET"])]
