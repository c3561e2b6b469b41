"""``stage-model set``: change the store's stage model on purpose (no other command does)."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle_es.cli.context import state
from lifecycle_es.cli.output import print_json, say
from lifecycle_es.errors import FieldProblem, InvalidInput

stage_model = typer.Typer(help="The store's stage model: change it on purpose.",
                          no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(stage_model, name="stage-model")


def parse_mapping(pairs: list[str]) -> dict[str, str]:
    """``OLD=NEW`` pairs as a mapping (InvalidInput naming a malformed or repeated one)."""
    out: dict[str, str] = {}
    for pair in pairs:
        old, eq, new = pair.partition("=")
        if not eq or not old.strip() or not new.strip():
            raise InvalidInput([FieldProblem("--map", pair, "expected OLD=NEW, e.g. "
                                             "awareness=acquisition")], "stage_model")
        if old.strip() in out:
            raise InvalidInput([FieldProblem("--map", pair, f"{old.strip()!r} is mapped "
                                             "twice")], "stage_model")
        out[old.strip()] = new.strip()
    return out


@stage_model.command("set")
def set_(
    ctx: typer.Context,
    model: Annotated[str, typer.Argument(
        metavar="NAME|FILE", help="the new model: classic, customer-success or a TOML file")],
    map_: Annotated[list[str] | None, typer.Option(
        "--map", metavar="OLD=NEW",
        help="customers in stage OLD (which the new model lacks) move to its stage NEW; "
             "repeatable")] = None,
    actor: Annotated[str | None, typer.Option(
        metavar="NAME", help="who changes it (recorded; default: the OS user)")] = None,
    json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Change the store's stage model, recorded in the settings chain with who changed it.

    Refused, naming them, when customers sit in stages the new model lacks, unless --map
    says where each goes: their stage changes are then recorded as events. The same model
    again changes nothing. See docs/stage-model.md.
    """
    mapping = parse_mapping(map_ or [])
    cli = state(ctx)
    cli.stage_model = None  # the store's model is the one being changed, not checked
    engine = cli.engine()
    change = engine.set_stage_model(model, mapping=mapping, actor=actor)
    if json:
        print_json({"previous": change.previous, "model": change.model,
                    "changed": change.changed,
                    "moved": [{"from": old, "to": new, "customers": n}
                              for (old, new), n in sorted(change.moves().items())]})
        return
    if not change.changed and not change.moved:
        say(f"the store's stage model is already {change.model!r}: nothing changed")
        return
    say(f"stage model {change.previous!r} -> {change.model!r}")
    for (old, new), n in sorted(change.moves().items()):
        say(f"  {n} customer{'s' * (n != 1)} moved from {old!r} to {new!r} (stage_changed "
            "events recorded)")
    say("read models show the teams of the model they were built with: `lifecycle-es "
        "projections rebuild` shows the new model's everywhere")
