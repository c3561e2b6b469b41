"""``serve --workers N``: N console processes on one port (uvicorn's worker processes, each
with its own engine and background views), one live follower in the parent process.

The parent passes what each worker needs through its environment: the store URLs, stage
model and read-model folders (``LIFECYCLE_ES_CONSOLE``, JSON, no secret), and the session
secret (``$LIFECYCLE_ES_SESSION_SECRET``, generated once when none is configured, so that the
workers accept each other's sessions).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Sequence

import orjson
from starlette.applications import Starlette

from lifecycle_es.engine import LifecycleEngine
from lifecycle_es.logs import get_logger
from lifecycle_es.web.app import START_WAIT, create_app
from lifecycle_es.web.follower import Follower
from lifecycle_es.web.settings import SECRET_ENV, SECRET_FILE_ENV, Settings

log = get_logger("lifecycle_es.web")

#: what the workers are started on (JSON, set by :func:`run` for its workers only)
SPEC_ENV = "LIFECYCLE_ES_CONSOLE"


def run(*, store: str | None, read_store: str | None, stage_model: str | None,
        projections_path: Sequence[str], auth_header: str | None, workers: int,
        host: str, port: int, forwarded_allow_ips: str,
        api_max_body: int = Settings.api_max_body) -> None:
    """Serve the console with ``workers`` processes until interrupted."""
    import uvicorn

    if not os.environ.get(SECRET_ENV) and not os.environ.get(SECRET_FILE_ENV):
        log.warning("console.session_secret_generated",
                    detail=f"neither ${SECRET_ENV} nor ${SECRET_FILE_ENV} is set: one secret "
                           "for these workers; sessions end when serve stops")
        os.environ[SECRET_ENV] = secrets.token_urlsafe(32)
    os.environ[SPEC_ENV] = orjson.dumps({
        "store": store, "read_store": read_store, "stage_model": stage_model,
        "projections_path": list(projections_path), "auth_header": auth_header,
        "api_max_body": api_max_body}).decode()
    engine = None if read_store is not None else LifecycleEngine(
        store, stage_model=stage_model, projections_path=projections_path, create=False)
    follower = None if engine is None else Follower(engine, Settings.poll_seconds,
                                                    own_engine=False)  # nothing else uses it
    try:
        if follower is not None:
            follower.start()
            follower.ready.wait(START_WAIT)
        uvicorn.run("lifecycle_es.web.workers:worker_app", factory=True, workers=workers,
                    host=host, port=port, proxy_headers=True,
                    forwarded_allow_ips=forwarded_allow_ips, log_level="warning",
                    server_header=False)
    finally:
        if follower is not None:
            follower.stop()
        if engine is not None:
            engine.close()


def worker_app() -> Starlette:
    """One worker's console (uvicorn calls it in each worker process): no follower, the
    parent's keeps the read models current."""
    spec = orjson.loads(os.environ[SPEC_ENV])
    engine = LifecycleEngine(spec["store"], read_store=spec["read_store"],
                             stage_model=spec["stage_model"],
                             projections_path=spec["projections_path"], create=False)
    return create_app(engine, Settings.from_environment(auth_header=spec["auth_header"],
                                                        follow=False,
                                                        api_max_body=spec["api_max_body"]))
