"""``POST /api/v1/commands``: one command (JSON) or a batch (JSON Lines), recorded as
``lifecycle-es import`` records them: the same validation and messages, all or nothing.

The token's name is the actor of each command that names none; a command naming another
actor is refused (403) unless the token may act for others. With an ``Idempotency-Key``
header, the answer is stored with the events, in their transaction: a retry with the same
key and body records nothing and gets the first answer again (``Idempotent-Replayed: true``);
the same key with another body is refused (422).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from lifecycle_es.commands import Command, parse_command
from lifecycle_es.engine import ImportConflict, RequestResult
from lifecycle_es.errors import FieldProblem, InvalidInput, LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.web.api.answers import error, json_answer, problems, refused
from lifecycle_es.web.api.auth import TokenPrincipal, require_write, token_of
from lifecycle_es.web.api.body import read_body
from lifecycle_es.web.context import blocking, console_of

log = get_logger("lifecycle_es.web.api")

#: media types of one command, and of a batch (one command per line)
ONE = ("application/json",)
BATCH = ("application/x-ndjson", "application/jsonl", "application/json-lines",
         "application/x-jsonlines")
KEY_HEADER = "idempotency-key"
#: an idempotency key: 1 to 255 printable ASCII characters (a UUID is typical)
KEY_MAX = 255


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def idempotency_key(request: Request) -> str | FieldProblem | None:
    """The request's key, None without one, or the problem with it."""
    key = request.headers.get(KEY_HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= KEY_MAX or not all(" " <= c <= "~" for c in key):
        return FieldProblem("Idempotency-Key", key[:KEY_MAX + 1],
                            f"1 to {KEY_MAX} printable ASCII characters expected")
    return key


def lines_of(body: bytes, batch: bool) -> Iterator[tuple[int, bytes]]:
    """The numbered non-blank lines of a batch; the whole body as line 1 of one command."""
    if not batch:
        yield 1, body
        return
    for number, line in enumerate(body.split(b"\n"), start=1):
        if line.strip():
            yield number, line


def with_actor(line: bytes, token: TokenPrincipal, number: int) -> bytes | FieldProblem:
    """``line`` with the token's name as its actor when it names none; the problem when it
    names another and the token may not act for others. A line that is not a JSON object
    is left as it is: the import's parsing says what is wrong with it."""
    try:
        data = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    if not isinstance(data, dict):
        return line
    if "actor" not in data:  # spliced in, so the line is parsed as sent (repeated keys...)
        start = line.index(b"{") + 1
        rest = line[start:]
        comma = b"," if rest.strip() != b"}" else b""
        return line[:start] + b'"actor":' + orjson.dumps(token.name) + comma + rest
    actor = data["actor"]
    if actor != token.name and not token.act_for_others:
        return FieldProblem("actor", actor, f"token {token.name!r} records as itself only "
                                            "(issue it with --act-as-others to name another "
                                            "actor)", number)
    return line


def parsed(body: bytes, batch: bool, token: TokenPrincipal,
           found: list[FieldProblem], forbidden: list[FieldProblem],
           ) -> Iterator[tuple[int, Command]]:
    """The commands of ``body``; problems go to ``found`` (``forbidden``: actors the token
    may not name)."""
    for number, line in lines_of(body, batch):
        given = with_actor(line, token, number)
        if isinstance(given, FieldProblem):
            forbidden.append(given)
            continue
        try:
            yield number, parse_command(given, number)
        except InvalidInput as exc:
            found.extend(exc.problems)


def answer_of(outcome: RequestResult, request: str) -> Response:
    """201 with where each command was recorded; a replay: the first answer again, or 422
    when the key was first used with another body."""
    if outcome.replayed is None:
        body = outcome.answer(request)
        headers = {}
    else:
        stored = orjson.loads(outcome.replayed.answer or "{}")
        if stored.get("request") != request:
            return error(422, "this Idempotency-Key was used with another request body: "
                              "use a new key for a new request")
        body, headers = stored, {"Idempotent-Replayed": "true"}
    body.pop("request", None)
    return json_answer(body, 201, headers)


@require_write
async def post_commands(request: Request) -> Response:
    """Record one command or a batch, all or nothing."""
    console = console_of(request)
    kind = media_type(request)
    if kind not in ONE + BATCH:
        return error(415, f"Content-Type {kind or '(none)'!r}: send application/json (one "
                          "command) or application/x-ndjson (one command per line)")
    key = idempotency_key(request)
    if isinstance(key, FieldProblem):
        return problems(422, [key], "the request")
    body = await read_body(request, console.settings.api_max_body)
    if isinstance(body, Response):
        return body
    token = token_of(request)
    batch = kind in BATCH
    digest = hashlib.sha256(kind.encode() + b"\0" + body).hexdigest()
    once = None if key is None else hashlib.sha256(
        f"api\0{token.name}\0{key}".encode()).hexdigest()
    found: list[FieldProblem] = []
    forbidden: list[FieldProblem] = []
    commands = list(parsed(body, batch, token, found, forbidden))
    if forbidden:
        return problems(403, forbidden, "the request")
    if not commands and not found:
        return problems(422, [FieldProblem("body", "", "no command in the request")],
                        "the request")
    try:
        outcome = await blocking(console.engine.record_request, commands, problems=found,
                                 once=once, request=digest)
    except InvalidInput as exc:
        return problems(422, exc.problems, "the request")
    except ImportConflict as exc:
        return error(409, f"{exc} (try again)")
    except LifecycleError as exc:
        return refused(exc)
    log.info("api.commands", token=token.name, commands=len(commands),
             replayed=outcome.replayed is not None)
    return answer_of(outcome, digest)


def routes() -> list[Route]:
    return [Route("/commands", post_commands, methods=["POST"])]
