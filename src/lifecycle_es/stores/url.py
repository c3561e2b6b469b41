"""Store URLs: ``sqlite:///path.db`` (default ``./lifecycle.db``), ``postgresql://...``,
``memory://``. Parsed once into the environment the ``eventsourcing`` library expects.

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
                return cls(kind="sqlite", path=path)
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
            "POSTGRES_CONNECT_TIMEOUT": "5",
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
            dbname=self.dbname, connect_timeout=5,
        )


def redact(url: str) -> str:
    """Hide the password of a URL that may not even parse."""
    try:
        parts = urlsplit(url)
        if parts.password:
            return url.replace(f":{parts.password}@", ":***@")
    except ValueError:
        pass
    return url
