"""``lifecycle-es tokens``: the API tokens of integrations (docs/api.md, "Tokens").

``tokens add NAME`` prints the new token alone on stdout, once: the store keeps only its
SHA-256. Issuing and revoking are events of the store (``token_added``, ``token_revoked``),
recorded with the OS user as the actor, so the audit trail says who issued what, when.
"""

from __future__ import annotations

from typing import Annotated, Any, cast

import typer

from lifecycle_es.cli.context import add_list_command, state
from lifecycle_es.cli.output import say
from lifecycle_es.cli.users import Actor, admin_meta
from lifecycle_es.domain.token import SCOPES, new_token, token_hash

tokens = typer.Typer(help="API tokens of integrations: add, list, revoke (docs/api.md).",
                     no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(tokens, name="tokens")


@tokens.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(
        metavar="NAME", help="the integration's name: the actor of what it records")],
    scope: Annotated[str, typer.Option(
        metavar="SCOPE", help=f"{' or '.join(SCOPES)}: read the GET endpoints, or also "
                              "record commands")] = "read",
    act_as_others: Annotated[bool, typer.Option(
        "--act-as-others", help="the token may record commands naming another actor "
                                "(e.g. the CRM user who made the change)")] = False,
    actor: Actor = None,
) -> None:
    """Issue a token; it is printed alone on stdout, once (only its SHA-256 is kept)."""
    engine = state(ctx).engine(create=True)
    token = new_token(name) if len(name) < 100 else "-"  # bad names are said by the command
    engine.add_token(token=name, scope=cast(Any, scope),  # the command model checks it
                     act_for_others=act_as_others,
                     token_hash=token_hash(token), **admin_meta(actor))
    print(token)  # stdout is the token alone, for `TOKEN=$(lifecycle-es tokens add ...)`


add_list_command(tokens, "api_tokens", "TOKEN_COLUMNS",
                 "The API tokens with their scope, whether revoked, who issued them (never "
                 "the token).")


@tokens.command("revoke")
def revoke(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="the token's name")],
    reason: Annotated[str | None, typer.Option(help="why (recorded)")] = None,
    actor: Actor = None,
) -> None:
    """Revoke a token: every request with it is refused (401) from then on."""
    version = state(ctx).engine().revoke_token(token=name, reason=reason, **admin_meta(actor))
    say(f"revoked token {name!r} (event {version})")


__all__ = ["register"]
