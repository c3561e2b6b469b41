"""``lifecycle-es users``: the people of the web console, their team and role.

Every change is an event of the store (``user_added``, ``user_role_changed``...), recorded
with the OS user as the actor, so the audit trail says who granted what to whom, when.
Passwords come from a prompt or the first line of stdin (``--password-stdin``), never from
the command line, and are stored only as an argon2 hash that nothing prints.
"""

from __future__ import annotations

import getpass
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from lifecycle_es.cli.context import add_list_command, state
from lifecycle_es.cli.output import say
from lifecycle_es.commands import ADMIN_TEAM, build_command
from lifecycle_es.domain.user import ROLES, hash_password

if TYPE_CHECKING:
    from lifecycle_es.commands import Role

users = typer.Typer(help="People of the web console: add, list, change role, disable.",
                    no_args_is_help=True)

RoleArg = Annotated[str, typer.Option(
    metavar="ROLE", help=f"one of {', '.join(ROLES)} (docs/console.md)")]
Actor = Annotated[str | None, typer.Option(
    metavar="NAME", help="who makes the change (default: the OS user)")]
PasswordStdin = Annotated[bool, typer.Option(
    "--password-stdin", help="read the password from the first line of stdin "
                             "instead of a prompt")]


def register(app: typer.Typer) -> None:
    app.add_typer(users, name="users")


def admin_meta(actor: str | None) -> dict[str, Any]:
    """The time, actor (default: the OS user) and team of an administrative change (users,
    API tokens)."""
    return {"at": datetime.now(UTC), "actor": actor or getpass.getuser(), "team": ADMIN_TEAM}


def _password(from_stdin: bool) -> str:
    """The new password, hashed (InvalidInput naming ``password`` when too short or long)."""
    if from_stdin:
        text = sys.stdin.readline().rstrip("\r\n")
    else:
        text = typer.prompt("password", hide_input=True, confirmation_prompt=True)
    return hash_password(text)


@users.command("add")
def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="the user name to sign in with")],
    team: Annotated[str, typer.Option(help="the team the user acts for (a stage model team)")],
    role: RoleArg = "member",
    password_stdin: PasswordStdin = False,
    actor: Actor = None,
) -> None:
    """Add a person who can sign in to the console (``lifecycle-es serve``)."""
    engine = state(ctx).engine(create=True)
    fields = {"user": name, "user_team": team, "role": role, **admin_meta(actor)}
    # bad fields are said before the password is asked for
    build_command("user_added", {**fields, "password_hash": "-"}).check_teams(
        engine.stage_model.teams)
    version = engine.add_user(**fields, password_hash=_password(password_stdin))
    say(f"added user {name!r} (team {team}, role {role}; event {version})")


add_list_command(users, "users", "USER_COLUMNS",
                 "The console's users with their team and role (never their password).")


@users.command("role")
def role(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="the user name")],
    new_role: Annotated[str, typer.Argument(metavar="ROLE",
                                            help=f"one of {', '.join(ROLES)}")],
    actor: Actor = None,
) -> None:
    """Give a user another role (recorded: who granted what to whom, when)."""
    given = cast("Role", new_role)  # as typed: the command's model refuses another role
    version = state(ctx).engine().change_user_role(user=name, role=given, **admin_meta(actor))
    say(f"user {name!r} now has role {new_role} (event {version})")


@users.command("password")
def password(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="the user name")],
    password_stdin: PasswordStdin = False,
    actor: Actor = None,
) -> None:
    """Set a user's new password."""
    engine = state(ctx).engine()
    engine.user(name)  # an unknown user is said before the prompt
    version = engine.change_user_password(user=name, password_hash=_password(password_stdin),
                                          **admin_meta(actor))
    say(f"changed the password of user {name!r} (event {version})")


@users.command("disable")
def disable(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(metavar="NAME", help="the user name")],
    reason: Annotated[str | None, typer.Option(help="why (recorded)")] = None,
    actor: Actor = None,
) -> None:
    """Stop a user from signing in (their sessions end on their next request)."""
    version = state(ctx).engine().disable_user(user=name, reason=reason, **admin_meta(actor))
    say(f"disabled user {name!r} (event {version})")
