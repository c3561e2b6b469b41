"""`lifecycle-es record TYPE --field value ...`: one command from the shell.

Each command type of the JSON Lines import is a sub-command whose options are generated from
its pydantic model (a field ``to_stage`` is ``--to-stage``; its help is the field's
description). The options become the same JSON line the import reads, and go through the same
import path: the same checks, the same errors, all or nothing.
"""

from __future__ import annotations

import inspect
import json
import types
import typing
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer
from pydantic.fields import FieldInfo

from lifecycle_es.cli import completion
from lifecycle_es.cli.context import state
from lifecycle_es.cli.output import print_json, say
from lifecycle_es.commands import COMMANDS, AdvocacyKind, Command, HandoverDocument
from lifecycle_es.errors import FieldProblem, InvalidInput

#: environment variables giving ``--actor`` and ``--team`` when the option is not given
ACTOR_ENV = "LIFECYCLE_ES_ACTOR"
TEAM_ENV = "LIFECYCLE_ES_TEAM"
#: fields every command has, shown after its own
BASE_FIELDS = ("at", "actor", "team", "correlation_id", "causation_id")

group = typer.Typer(
    help="Record one command (one event) from the shell: `record TYPE --field value ...`, "
         "the fields of the JSON Lines import as options (see docs/commands.md). --at "
         f"defaults to now; --actor and --team to ${ACTOR_ENV} and ${TEAM_ENV}.",
    no_args_is_help=True)

#: value completion by field (stage and team names of the preset models; fixed choices)
_COMPLETERS: dict[str, Callable[[str], list[str]]] = {
    "to_stage": completion.STAGES, "stage": completion.STAGES,
    "team": completion.TEAMS, "from_team": completion.TEAMS, "to_team": completion.TEAMS,
    "owning_team": completion.TEAMS,
    "kind": completion.choices(typing.get_args(AdvocacyKind)),
}


def register(app: typer.Typer) -> None:
    """Add ``record`` and one sub-command per command type to the top-level app."""
    for type_, cls in COMMANDS.items():
        group.command(type_, short_help=_summary(cls), help=_summary(cls) + _DETAIL)(
            _command(type_, cls))
    app.add_typer(group, name="record")


_DETAIL = ("\n\nThe options are the fields of the JSON Lines import (docs/commands.md): the "
           "same checks and errors, and nothing is written on any. Exit 2 when refused.")


def _summary(cls: type[Command]) -> str:
    """The sub-command's help: what it records and its required fields."""
    required = [f"--{_option(n)}" for n, f in _fields(cls) if f.is_required()
                and n not in BASE_FIELDS]
    return (f"Record one {cls.model_fields['type'].default} event"
            + (f" (required: {', '.join(required)})" if required else "") + ".")


def _fields(cls: type[Command]) -> list[tuple[str, FieldInfo]]:
    """The command's fields as options: its own first, then those every command has."""
    own = [(n, f) for n, f in cls.model_fields.items() if n != "type" and n not in BASE_FIELDS]
    return own + [(n, cls.model_fields[n]) for n in BASE_FIELDS]


def _option(name: str) -> str:
    return name.replace("_", "-")


def _metavar(name: str, field: FieldInfo) -> str:
    """A word for the value: ID, N, DATE, TIME, JSON, TEXT or the choices."""
    shown = repr(field.annotation)
    if name == "at":
        return "TIME"
    if name == "document":
        return "JSON"
    if choices := _literal(field):
        return "|".join(choices)
    if "date" in shown:
        return "DATE"
    if "int" in shown:
        return "N"
    if name in ("customer", "campaign", "handover_id", "campaign_id", "referred_customer",
                "correlation_id", "causation_id"):
        return "ID"
    return "TEXT"


def _literal(field: FieldInfo) -> tuple[str, ...]:
    """The choices of a field typed as a Literal (advocacy kinds), else ()."""
    args = typing.get_args(field.annotation)
    for candidate in (field.annotation, *args):
        if typing.get_origin(candidate) is typing.Literal:
            return tuple(typing.get_args(candidate))
    return ()


def _help(name: str, field: FieldInfo) -> str:
    text = field.description or ""
    if name == "at":
        text += " (default: now)"
    elif field.is_required():
        text += " (required)"
    return text


def _command(type_: str, cls: type[Command]) -> Callable[..., None]:
    """A typer command function for ``type_`` whose keyword parameters are the fields."""
    params = [inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                annotation=typer.Context)]
    for name, field in _fields(cls):
        envvar = {"actor": ACTOR_ENV, "team": TEAM_ENV}.get(name)
        option = typer.Option(
            f"--{_option(name)}", help=_help(name, field), metavar=_metavar(name, field),
            envvar=envvar, show_envvar=envvar is not None, show_default=False,
            autocompletion=_COMPLETERS.get(name))
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=Annotated[str | None, option]))
    params.append(inspect.Parameter(
        "as_json", inspect.Parameter.KEYWORD_ONLY, default=False,
        annotation=Annotated[bool, typer.Option("--json", help="print the result as JSON")]))

    def command(ctx: typer.Context, **given: Any) -> None:
        as_json = given.pop("as_json")
        record(ctx, type_, cls, given, as_json)

    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__annotations__ = {p.name: p.annotation for p in params}
    command.__name__ = type_
    return command


def command_line(type_: str, cls: type[Command], given: dict[str, str | None],
                 now: datetime | None = None) -> bytes:
    """The JSON line the import would read for these option values (``at`` defaults to
    ``now``); raises InvalidInput for a ``--document`` that is not a JSON object."""
    data: dict[str, Any] = {"type": type_}
    for name, field in _fields(cls):
        value = given.get(name)
        if value is None:
            if name == "at":
                data["at"] = (now or datetime.now(UTC)).isoformat()
            continue
        data[name] = _value(name, field, value)
    return json.dumps(data).encode()  # json: integers of any size, as a JSON line may hold


def _value(name: str, field: FieldInfo, text: str) -> Any:
    """The option's text as the JSON value of the field: a number for an integer field
    (text that is no integer stays text: the model names the field), an object for the
    handover document, else the text."""
    if name == "document":
        try:
            document = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput([FieldProblem(name, text, f"not JSON: {exc}")], name) from None
        if not isinstance(document, dict):
            raise InvalidInput([FieldProblem(
                name, text, "expected a JSON object with the fields "
                f"{', '.join(HandoverDocument.model_fields)}")], name)
        return document
    if _is_int(field.annotation):
        try:
            return int(text.strip())
        except ValueError:
            return text
    return text


def _is_int(annotation: Any) -> bool:
    if annotation is int:
        return True
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated or origin in (typing.Union, types.UnionType):
        return any(_is_int(a) for a in typing.get_args(annotation))
    return False


def record(ctx: typer.Context, type_: str, cls: type[Command], given: dict[str, str | None],
           as_json: bool) -> None:
    """Write the command through the import path; on a refusal every problem is named
    (without the line number of the one line) and nothing is written."""
    line = command_line(type_, cls, given)
    engine = state(ctx).engine(create=True)
    try:
        engine.import_lines([line])
    except InvalidInput as exc:
        problems = [replace(p, line=None) for p in exc.problems]
        if any(p.field in ("actor", "team") and p.value is None for p in problems):
            say(f"(give --actor and --team, or set ${ACTOR_ENV} and ${TEAM_ENV})", err=True)
        raise InvalidInput(problems, type_) from None
    key_field = "campaign" if cls.target == "campaign" else "customer"
    key = json.loads(line)[key_field]
    aggregate = (engine.customer(key) if key_field == "customer" else engine.campaign(key))
    if as_json:
        print_json({"type": type_, key_field: aggregate_key(aggregate, key),
                    "version": aggregate.version})
    else:
        say(f"recorded {type_} for {key_field} {aggregate_key(aggregate, key)!r} "
            f"(version {aggregate.version})")


def aggregate_key(aggregate: Any, given: str) -> str:
    """The external id as stored (normalised: stripped, NFC)."""
    return str(getattr(aggregate, "external_id", None) or getattr(aggregate, "campaign", None)
               or given)
