"""``lifecycle-es serve``: the web console on the store (docs/console.md)."""

from __future__ import annotations

from typing import Annotated

import typer

from lifecycle_es.cli.context import state
from lifecycle_es.cli.output import say


def register(app: typer.Typer) -> None:
    app.command("serve")(serve)


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(metavar="ADDRESS",
                                      help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to listen on")] = 8000,
    auth_header: Annotated[str | None, typer.Option(
        metavar="HEADER",
        help="trust this request header for the user name, e.g. X-Forwarded-User (only "
             "behind a sign-on proxy that sets it and strips it from clients: "
             "docs/console.md)")] = None,
    forwarded_allow_ips: Annotated[str, typer.Option(
        metavar="IPS",
        help="proxies whose X-Forwarded-Proto/-For are trusted (comma-separated)")]
        = "127.0.0.1",
    workers: Annotated[int, typer.Option(
        min=1, max=64, help="console processes on the port (each with its own connections; "
                            "one live follower for all: docs/console.md)")] = 1,
    notifications: Annotated[str | None, typer.Option(
        metavar="FILE",
        help="also send alerts of gaps as this notifications file says "
             "(env LIFECYCLE_ES_NOTIFICATIONS; docs/notifications.md)")] = None,
    api_max_body: Annotated[int, typer.Option(
        metavar="BYTES", min=1024, max=1 << 30,
        help="the largest request body the HTTP API reads (docs/api.md)")] = 10 * 1024 * 1024,
) -> None:
    """Serve the web console (the cockpit, customers, handovers, operations) and the HTTP
    API at /api/v1 (tokens: `lifecycle-es tokens add`; docs/api.md).

    The live follower keeps the read models current while it runs (with --read-store, the
    read store's are read as they are: a `projections run` keeps them current). Users are
    added with `lifecycle-es users add`; the session secret comes from
    $LIFECYCLE_ES_SESSION_SECRET or $LIFECYCLE_ES_SESSION_SECRET_FILE.
    """
    import uvicorn

    from lifecycle_es.engine import load_notifications
    from lifecycle_es.web import Settings, create_app

    cli = state(ctx)
    alerts = load_notifications(notifications)
    if workers > 1:
        from lifecycle_es.web.workers import run

        say(f"lifecycle-es console on http://{host}:{port}, {workers} workers", err=True)
        # one sender for all the workers, in this (the supervising) process
        sender = None if alerts is None else cli.engine().notifier_thread(alerts)
        if sender is not None:
            sender.start()
        try:
            run(store=cli.store, read_store=cli.read_store, stage_model=cli.stage_model,
                projections_path=cli.projections_path, auth_header=auth_header,
                workers=workers, host=host, port=port,
                forwarded_allow_ips=forwarded_allow_ips, api_max_body=api_max_body)
        finally:
            if sender is not None:
                sender.stop()
        return
    if cli.read_store is None:
        engine = cli.engine()
    else:  # queries go to the read store (engine.reader); commands to the store
        from lifecycle_es.engine import LifecycleEngine

        engine = LifecycleEngine(cli.store, read_store=cli.read_store,
                                 stage_model=cli.stage_model,
                                 projections_path=cli.projections_path, create=False)
        ctx.call_on_close(engine.close)
    settings = Settings.from_environment(auth_header=auth_header,
                                         follow=cli.read_store is None,
                                         api_max_body=api_max_body)
    app = create_app(engine, settings)
    say(f"lifecycle-es console on http://{host}:{port} (store {engine.store.redacted()})",
        err=True)
    sender = None if alerts is None else engine.notifier_thread(alerts)
    if sender is not None:
        sender.start()
    try:
        uvicorn.run(app, host=host, port=port, proxy_headers=True,
                    forwarded_allow_ips=forwarded_allow_ips, log_level="warning",
                    server_header=False)
    finally:
        if sender is not None:
            sender.stop()
