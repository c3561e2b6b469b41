"""``lifecycle-es notify``: alerts of gaps by webhook and e-mail (docs/notifications.md).

``run`` evaluates the open gaps and delivers the outbox until stopped (SIGTERM or Ctrl-C);
``status`` counts the outbox and lists the dead alerts; ``retry`` queues dead alerts again.
"""

from __future__ import annotations

import signal
import threading
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from lifecycle_es.cli.context import state
from lifecycle_es.cli.output import print_json, say
from lifecycle_es.config import load_config
from lifecycle_es.engine import NOTIFICATIONS_ENV_VAR, LifecycleEngine, load_notifications
from lifecycle_es.errors import FieldProblem, InvalidInput
from lifecycle_es.logs import get_logger

notify = typer.Typer(help="Alerts of gaps by webhook and e-mail: run the sender, status, "
                          "retry.", no_args_is_help=True)

NotificationsFile = Annotated[str | None, typer.Option(
    "--notifications", metavar="FILE",
    help=f"the notifications TOML file (env {NOTIFICATIONS_ENV_VAR}; docs/notifications.md)")]
Json = Annotated[bool, typer.Option("--json", help="print JSON")]


def register(app: typer.Typer) -> None:
    app.add_typer(notify, name="notify")


def _engine(ctx: typer.Context) -> LifecycleEngine:
    return state(ctx).engine()


@notify.command("run")
def run(
    ctx: typer.Context, notifications: NotificationsFile = None,
    config: Annotated[str | None, typer.Option(
        metavar="FILE", help="gap thresholds (env LIFECYCLE_ES_CONFIG)")] = None,
    once: Annotated[bool, typer.Option(
        "--once", help="evaluate the gaps and deliver what is due once, then exit")] = False,
) -> None:
    """Evaluate the open gaps into the outbox and deliver it until stopped (SIGTERM or
    Ctrl-C). The first run of a store records its start: gaps open then are history and
    are not alerted. Several senders may run on one store: each alert goes out once."""
    settings = load_notifications(notifications)
    if settings is None:
        raise InvalidInput([FieldProblem("notifications", None, "no notifications file: give "
                                         f"--notifications FILE or ${NOTIFICATIONS_ENV_VAR}")],
                           "notify run")
    notifier = _engine(ctx).notifier(settings, config=load_config(config))
    if once:
        done = notifier.tick()
        say(f"queued {done.queued}, sent {done.sent}, failed {done.failed}, dead {done.dead}")
        return
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        notifier.run(stop)
    except KeyboardInterrupt:
        get_logger("lifecycle_es.cli").info("notify.stopped")
    finally:
        signal.signal(signal.SIGTERM, previous)


@notify.command("status")
def status(ctx: typer.Context, json: Json = False) -> None:
    """The outbox: alerts pending, sent and dead, the oldest pending one's age, and the dead
    ones with their last error."""
    notifier = _engine(ctx).notifier(None)
    counts = notifier.status()
    now = datetime.now(UTC)
    age = None if counts.oldest_pending is None else \
        round((now - counts.oldest_pending).total_seconds(), 1)
    dead = [{"id": a.id, "attempts": a.attempts, "last_error": a.last_error}
            for a in notifier.alerts("dead", limit=100)]
    base = notifier.outbox_baseline()
    answer: dict[str, Any] = {"pending": counts.pending, "sent": counts.sent,
                              "dead": counts.dead, "oldest_pending_age_s": age,
                              "dead_alerts": dead,
                              "started_at": base and base.started_at.isoformat(),
                              "start_position": base and base.position}
    if json:
        print_json(answer)
        return
    say(f"pending {counts.pending}, sent {counts.sent}, dead {counts.dead}"
        + ("" if age is None else f"; oldest pending {age:g} s old")
        + ("; never started" if base is None else
           f"; first started {base.started_at:%Y-%m-%d %H:%M:%S} UTC at event {base.position}"))
    for row in dead:
        say(f"dead: {row['id']} after {row['attempts']} attempts: {row['last_error']}")


@notify.command("retry")
def retry(
    ctx: typer.Context,
    alert_id: Annotated[str | None, typer.Argument(metavar="ID", help="a dead alert's id")]
        = None,
    dead: Annotated[bool, typer.Option("--dead", help="every dead alert")] = False,
) -> None:
    """Queue dead alerts again (one by id, or every one with --dead): delivered on the
    sender's next round, retried for the whole retry time again."""
    if (alert_id is None) == (not dead) or (alert_id is not None and dead):
        raise InvalidInput([FieldProblem("ID", alert_id, "give one dead alert's ID or --dead")],
                           "notify retry")
    if alert_id is not None and (len(alert_id) > 1000 or not alert_id.isprintable()):
        raise InvalidInput([FieldProblem("ID", alert_id, "not an alert id (printable, at "
                                         "most 1000 characters)")], "notify retry")
    count = _engine(ctx).notifier(None).retry(alert_id)
    if alert_id is not None and count == 0:
        raise InvalidInput([FieldProblem("ID", alert_id, "no dead alert has this id")],
                           "notify retry")
    say(f"queued again: {count}")
