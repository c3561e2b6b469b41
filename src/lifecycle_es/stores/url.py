"""Store URLs: ``sqlite:///path.db`` (default ``./lifecycle.db``), ``postgresql://...``,
``memory://``. Parsed once into the environment the ``eventsourcing`` library expects.

``?timeout=SECONDS`` (SQLite and PostgreSQL; whole seconds, default
:data:`DEFAULT_TIMEOUT`) bounds every wait of the event store: for a lock (SQLite's busy
timeout, PostgreSQL's ``lock_timeout``) and for a connection (PostgreSQL's connect timeout and
its pool's wait). A wait that runs out raises :class:`~lifecycle_es.errors.StoreError`.

Passwords never appear in :meth:`StoreURL.redacted`, in logs or in error messages.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from lifecycle_es.errors import StoreError

DEFAULT_STORE = "sqlite:///lifecycle.db"
ENV_VAR = "LIFECYCLE_ES_STORE"
#: seconds a store call waits for a lock or a connection before it raises StoreError
DEFAULT_TIMEOUT = 5
MAX_TIMEOUT = 86_400


@dataclass(frozen=True)
class StoreURL:
    """A parsed store URL."""

    kind: str  # "sqlite" | "postgresql" | "memory"
    path: str = ""  # sqlite file path
    host: str = "127.0.0.1"
    port: int = 5432
    user: str = "postgres"
    password: str = field(default="", repr=False)
    dbname: str = ""
    schema: str = "public"
    timeout: int = DEFAULT_TIMEOUT  # seconds (``?timeout=``)

    @classmethod
    def parse(cls, url: StoreURL | str | None = None) -> StoreURL:
        """Parse ``url``, or ``$LIFECYCLE_ES_STORE``, or the default SQLite file."""
        if isinstance(url, StoreURL):
            return url
        raw = url or os.environ.get(ENV_VAR) or DEFAULT_STORE
        try:
            parts = urlsplit(raw)
            scheme = parts.scheme
            if scheme == "memory":
                return cls(kind="memory")
            if scheme == "sqlite":
                path = unquote(parts.path[1:] if parts.path.startswith("/") else parts.path)
                if parts.netloc:
                    raise StoreError("sqlite URL takes no host: use sqlite:///path/to/file.db")
                if not path:
                    raise StoreError("sqlite URL needs a file path: sqlite:///path/to/file.db")
                return cls(kind="sqlite", path=path, timeout=_timeout(parse_qs(parts.query)))
            if scheme in ("postgresql", "postgres"):
                query = parse_qs(parts.query)
                dbname = unquote(parts.path.lstrip("/"))
                if not dbname:
                    raise StoreError("postgresql URL needs a database name: .../dbname")
                return cls(
                    kind="postgresql",
                    host=parts.hostname or "127.0.0.1",
                    port=parts.port or 5432,
                    user=unquote(parts.username or "postgres"),
                    password=unquote(parts.password or ""),
                    dbname=dbname,
                    schema=query.get("schema", ["public"])[0],
                    timeout=_timeout(query),
                )
        except ValueError as exc:  # bad port and the like
            raise StoreError(f"store URL {redact(raw)!r}: {exc}") from None
        raise StoreError(
            f"store URL {redact(raw)!r}: unknown scheme {scheme!r} "
            "(use sqlite:///file.db, postgresql://user@host:port/db or memory://)"
        )

    def redacted(self) -> str:
        """The URL with any password replaced by ``***``."""
        if self.kind == "memory":
            return "memory://"
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        auth = self.user + (":***" if self.password else "")
        schema = f"?schema={self.schema}" if self.schema != "public" else ""
        return f"postgresql://{auth}@{self.host}:{self.port}/{self.dbname}{schema}"

    def eventsourcing_env(self) -> dict[str, str]:
        """Settings for ``eventsourcing.application.Application``."""
        if self.kind == "memory":
            return {"PERSISTENCE_MODULE": "eventsourcing.popo"}
        if self.kind == "sqlite":
            parent = Path(self.path).parent
            if self.path != ":memory:" and not parent.exists():
                raise StoreError(f"sqlite store: folder {str(parent)!r} does not exist")
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": self.path,
                "SQLITE_LOCK_TIMEOUT": str(self.timeout),
                "APPLICATION_RECORDER_TOPIC": "lifecycle_es.stores.recorders:ChainedSQLiteRecorder",
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": self.dbname,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            # the pool's wait for a connection, and lock_timeout while taking the table lock
            "POSTGRES_CONNECT_TIMEOUT": str(self.timeout),
            "POSTGRES_LOCK_TIMEOUT": str(self.timeout),
            # the library's default (5 s) aborts long all-or-nothing imports; 0 = PostgreSQL's
            # default (no limit): a dead client's session ends with its connection anyway
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "0",
            "APPLICATION_RECORDER_TOPIC": "lifecycle_es.stores.recorders:ChainedPostgresRecorder",
        }

    def psycopg_conninfo(self) -> str:
        """A libpq connection string for psycopg (contains the password: never log it)."""
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.host, port=self.port, user=self.user, password=self.password or None,
            dbname=self.dbname, connect_timeout=self.timeout,
        )


def _timeout(query: dict[str, list[str]]) -> int:
    """The ``timeout`` query parameter: whole seconds, 1 to :data:`MAX_TIMEOUT`."""
    given = query.get("timeout", [str(DEFAULT_TIMEOUT)])[-1]
    if not (given.isascii() and given.isdigit() and 1 <= int(given) <= MAX_TIMEOUT):
        raise StoreError(f"store URL: timeout={given[:20]!r}: whole seconds from 1 to "
                         f"{MAX_TIMEOUT} expected")
    return int(given)


def redact(url: str) -> str:
    """Hide the password of a URL that may not even parse."""
    try:
        parts = urlsplit(url)
        if parts.password:
            return url.replace(f":{parts.password}@", ":***@")
    except ValueError:
        pass
    return url
