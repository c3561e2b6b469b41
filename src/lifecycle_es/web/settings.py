"""The console's settings: the session secret, the trusted sign-on header, time limits."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from lifecycle_es.errors import ConfigError
from lifecycle_es.logs import get_logger

log = get_logger("lifecycle_es.web")

#: the session secret (at least 32 characters); several processes sharing it share sessions
SECRET_ENV = "LIFECYCLE_ES_SESSION_SECRET"
#: a file holding the session secret (its first line), used when the variable is not set
SECRET_FILE_ENV = "LIFECYCLE_ES_SESSION_SECRET_FILE"
SECRET_MIN = 32


@dataclass(frozen=True)
class Settings:
    """How the console runs (``create_app(engine, settings)``)."""

    #: signs session cookies and CSRF tokens; never shown, logged or put in a page
    session_secret: bytes
    #: trust this request header for the user name (a single sign-on proxy sets it)
    auth_header: str | None = None
    #: a session ends this long after sign-in
    session_seconds: int = 12 * 3600
    #: how long an action waits for the read models to include its events
    write_wait_seconds: float = 5.0
    #: how long a failed sign-in takes at least (slows password guessing)
    failed_signin_seconds: float = 1.0
    #: run the live follower inside the app (off: the read models are kept current elsewhere,
    #: ``--read-store``)
    follow: bool = True
    #: the follower's poll interval where the store cannot notify (SQLite)
    poll_seconds: float = 0.2
    #: how often the background views (web/views.py) look for new events: the cockpit's
    #: open gaps are renewed for the customers they touched
    views_seconds: float = 1.0
    #: the open gaps of every customer are computed again at most this often (gaps that
    #: open as time passes); this process's writes renew their customer's at once
    gaps_full_seconds: float = 120.0
    #: the metrics of one period are computed at most this often (the default period's in
    #: the background, another's by the first request asking; 0: on every request)
    metrics_cache_seconds: float = 300.0
    #: the largest request body the API reads (bytes; a larger one is answered 413)
    api_max_body: int = 10 * 1024 * 1024

    def __repr__(self) -> str:  # the secret never in a log or traceback
        return (f"Settings(auth_header={self.auth_header!r}, "
                f"session_seconds={self.session_seconds}, follow={self.follow})")

    @classmethod
    def from_environment(cls, **options: object) -> Settings:
        """Settings with the secret of ``$LIFECYCLE_ES_SESSION_SECRET`` or the file named by
        ``$LIFECYCLE_ES_SESSION_SECRET_FILE``; without either, a random one for this
        process (sessions end when it stops and are not shared: a warning says so)."""
        return cls(session_secret=session_secret(), **options)  # type: ignore[arg-type]


def session_secret() -> bytes:
    """The configured session secret (ConfigError naming its source when too short)."""
    text = os.environ.get(SECRET_ENV)
    source = f"${SECRET_ENV}"
    if not text and (path := os.environ.get(SECRET_FILE_ENV)):
        source = f"${SECRET_FILE_ENV}={path!r}"
        try:
            text = Path(path).read_text(encoding="utf-8").splitlines()[0]
        except (OSError, IndexError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{source}: cannot read a secret from it "
                              f"({type(exc).__name__})") from None
    if not text:
        log.warning("console.session_secret_generated",
                    detail=f"neither ${SECRET_ENV} nor ${SECRET_FILE_ENV} is set: sessions "
                           "end when this process stops and other processes do not share them")
        return secrets.token_bytes(32)
    text = text.strip()
    if len(text) < SECRET_MIN:
        raise ConfigError(f"{source}: the session secret has {len(text)} characters; at least "
                          f"{SECRET_MIN} expected (e.g. `python -c 'import secrets; "
                          "print(secrets.token_urlsafe(32))'`)")
    return text.encode()
