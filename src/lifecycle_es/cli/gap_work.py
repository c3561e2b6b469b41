"""``lifecycle-es gaps assign|snooze|dismiss GAP_ID``: work on one gap (docs/commands.md).

Each records one event on the gap's customer (``gap_assigned``, ``gap_snoozed``,
``gap_dismissed``), so the audit trail says who did what to which gap, when and why. The
customer is the one the gap id names (``gaps --json`` gives the ids).
"""

from __future__ import annotations

import getpass
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from lifecycle_es.cli.context import state
from lifecycle_es.cli.output import print_json, say
from lifecycle_es.domain.gap_ids import customer_of

GapArg = Annotated[str, typer.Argument(
    metavar="GAP_ID", help="the gap's id, as `gaps --json` gives it (KIND:CUSTOMER:SUBJECT)")]
Team = Annotated[str, typer.Option(
    "--team", help="the team you act for (a team of the stage model)")]
Actor = Annotated[str | None, typer.Option(
    "--actor", metavar="NAME", help="who does it (default: the OS user)")]
At = Annotated[str | None, typer.Option(
    "--at", metavar="TIME", help="when, ISO 8601 with a timezone [default: now]",
    show_default=False)]
Reason = Annotated[str, typer.Option("--reason", help="why (recorded; personal data)")]
Json = Annotated[bool, typer.Option("--json", help="print the result as JSON")]


def register(gaps: typer.Typer) -> None:
    gaps.command("assign")(assign)
    gaps.command("snooze")(snooze)
    gaps.command("dismiss")(dismiss)


def _record(ctx: typer.Context, method: Callable[..., int], gap_id: str, done: str,
            as_json: bool, *, team: str, actor: str | None, at: str | None,
            **fields: Any) -> None:
    """Record one gap command on the gap's customer and say what was done."""
    customer = customer_of(gap_id, "gap")
    version = method(state(ctx).engine(), customer=customer, gap_id=gap_id, team=team,
                     actor=actor or getpass.getuser(), at=at or datetime.now(UTC), **fields)
    if as_json:
        print_json({"gap_id": gap_id.strip(), "customer": customer, "version": version,
                    **fields})
    else:
        say(f"{done} (event {version} of customer {customer!r})")


def assign(
    ctx: typer.Context, gap_id: GapArg,
    to: Annotated[str, typer.Option("--to", metavar="NAME",
                                    help="the person who is to close the gap")],
    team: Team, actor: Actor = None, at: At = None, as_json: Json = False,
) -> None:
    """Give a gap to a person: `gaps --assignee NAME` lists theirs."""
    from lifecycle_es.engine import LifecycleEngine

    _record(ctx, LifecycleEngine.assign_gap, gap_id, f"assigned gap {gap_id.strip()} to {to}",
            as_json, team=team, actor=actor, at=at, assignee=to)


def snooze(
    ctx: typer.Context, gap_id: GapArg,
    until: Annotated[str, typer.Option(
        "--until", metavar="DATE", help="the gap shows again from this day, YYYY-MM-DD "
                                        "(00:00 UTC; after today)")],
    reason: Reason, team: Team, actor: Actor = None, at: At = None, as_json: Json = False,
) -> None:
    """Put a gap aside until a day: `gaps` leaves it out until then."""
    from lifecycle_es.engine import LifecycleEngine

    _record(ctx, LifecycleEngine.snooze_gap, gap_id,
            f"snoozed gap {gap_id.strip()} until {until}", as_json, team=team, actor=actor,
            at=at, until=until, reason=reason)


def dismiss(
    ctx: typer.Context, gap_id: GapArg, reason: Reason, team: Team, actor: Actor = None,
    at: At = None, as_json: Json = False,
) -> None:
    """Close a gap without action: `gaps` leaves it out while its situation lasts."""
    from lifecycle_es.engine import LifecycleEngine

    _record(ctx, LifecycleEngine.dismiss_gap, gap_id, f"dismissed gap {gap_id.strip()}",
            as_json, team=team, actor=actor, at=at, reason=reason)
