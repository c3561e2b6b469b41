"""Store URLs: ``sqlite:///path.db`` (default ``./lifecycle.db``), ``postgresql://...``,
``memory://``. Parsed once into the environment the ``eventsourcing`` library expects.

``?timeout=SECONDS`` (SQLite and PostgreSQL; whole seconds, default
:data:`DEFAULT_TIMEOUT`) bounds every wait of the event store: for a lock (SQLite's busy
timeout, PostgreSQL's ``lock_timeout``) and for a connection (PostgreSQL's connect timeout and
its pool's wait). A wait that runs out raises :class:`~lifecycle_es.errors.StoreError`.

Passwords never appear in :meth:`StoreURL.redacted`, in logs or in error messages: every text
shown that may hold one goes through :func:`redact`, which works on the raw URL text, parsed or
not.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import parse_qs, quote, quote_plus, unquote, unquote_plus, urlsplit

from lifecycle_es.errors import StoreError, first_line

DEFAULT_STORE = "sqlite:///lifecycle.db"
ENV_VAR = "LIFECYCLE_ES_STORE"
#: seconds a store call waits for a lock or a connection before it raises StoreError
DEFAULT_TIMEOUT = 5
MAX_TIMEOUT = 86_400
#: PostgreSQL connections of one engine process: the pool (events, read models, catch-up,
#: queries; an import's writer process uses its own pool of one) and its overflow
DEFAULT_POOL_SIZE = 1
DEFAULT_MAX_OVERFLOW = 1
POOL_ENV = {"pool_size": "LIFECYCLE_ES_POOL_SIZE", "max_overflow": "LIFECYCLE_ES_MAX_OVERFLOW"}
#: query parameters the project reads itself; every other one goes to libpq as it is
OWN_PARAMS = ("schema", "timeout", "pool_size", "max_overflow", "read_only")
#: values of ``?read_only=`` that mean yes (what ``--read-store`` sets)
_YES = ("1", "on", "true", "yes")
#: a schema name the engine can use unquoted (``<schema>_read`` must fit PostgreSQL's 63)
#: the session setting of a read-only store: PostgreSQL itself refuses any write
READ_ONLY_OPTION = "-c default_transaction_read_only=on"
_SCHEMA = re.compile(r"^[a-z_][a-z0-9_]{0,57}$")


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
    #: the text it was parsed from (may hold the password: never show it, see :func:`redact`)
    raw: str = field(default="", repr=False, compare=False)
    timeout: int = DEFAULT_TIMEOUT  # seconds (``?timeout=``)
    #: PostgreSQL: the libpq URL without the project's own parameters (holds the password)
    libpq: str = field(default="", repr=False, compare=False)
    pool_size: int = DEFAULT_POOL_SIZE
    max_overflow: int = DEFAULT_MAX_OVERFLOW
    #: a store only read (``?read_only=on``, or ``--read-store``): no DDL, no catch-up, and
    #: on PostgreSQL every session is ``default_transaction_read_only``
    read_only: bool = False

    @classmethod
    def parse(cls, url: StoreURL | str | None = None) -> StoreURL:
        """Parse ``url``, or ``$LIFECYCLE_ES_STORE``, or the default SQLite file."""
        if isinstance(url, StoreURL):
            return url
        raw = url or os.environ.get(ENV_VAR) or DEFAULT_STORE
        problem = ""
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
                query = parse_qs(parts.query)
                return cls(kind="sqlite", path=path, timeout=_timeout(query),
                           read_only=_read_only(query))
            if scheme in ("postgresql", "postgres"):
                return _parse_postgres(cls, raw, scheme)
        except ValueError as exc:  # bad port and the like
            problem = redact(str(exc), raw)
        if problem:  # raised here, not in the handler: the chain must not hold the URL
            raise StoreError(f"store URL {redact(raw)!r}: {problem}")
        raise StoreError(
            f"store URL {redact(raw)!r}: unknown scheme {redact(scheme, raw)!r} "
            "(use sqlite:///file.db, postgresql://user@host:port/db or memory://)"
        )

    def as_read_only(self) -> StoreURL:
        """This store, only read: what ``--read-store`` and ``read_store=`` open. The flag
        is written into the raw URL too, so the recorder (which parses it again) sees it."""
        if self.kind == "memory":
            raise StoreError("a memory:// store cannot be a read store (it is private to "
                             "one engine): use a SQLite or PostgreSQL URL")
        if self.read_only:
            return self
        raw = self.raw
        if self.kind == "postgresql":
            raw += ("&" if "?" in raw else "?") + "read_only=on"
        return replace(self, read_only=True, raw=raw)

    def redacted(self) -> str:
        """The URL with any password replaced by ``***``."""
        if self.kind == "memory":
            return "memory://"
        if self.kind == "sqlite":
            return f"sqlite:///{self.path}"
        auth = self.user + (":***" if self.password else "") + ("@" if self.user else "")
        schema = f"?schema={self.schema}" if self.schema != "public" else ""
        return f"postgresql://{auth}{self.host}:{self.port}/{self.dbname}{schema}"

    def scrub(self, text: str) -> str:
        """``text`` (an error message, a log line) without this URL's password."""
        return redact(text, self)

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
                # a read-only store runs no DDL (PostgreSQL: the recorder's create_table)
                **({"CREATE_TABLE": "no"} if self.read_only else {}),
            }
        return {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            # the whole URL: the recorder (stores/recorders.py) parses it again and gives
            # the pool every libpq setting of it (the library's own kwargs know five)
            "POSTGRES_DBNAME": self.raw,
            "POSTGRES_HOST": self.host,
            "POSTGRES_PORT": str(self.port),
            "POSTGRES_USER": self.user,
            "POSTGRES_PASSWORD": self.password,
            "POSTGRES_SCHEMA": self.schema,
            "POSTGRES_POOL_SIZE": str(self.pool_size),
            "POSTGRES_MAX_OVERFLOW": str(self.max_overflow),
            # the pool's wait for a connection, and lock_timeout while taking the table lock
            "POSTGRES_CONNECT_TIMEOUT": str(self.timeout),
            "POSTGRES_LOCK_TIMEOUT": str(self.timeout),
            # the library's default (5 s) aborts long all-or-nothing imports; 0 = PostgreSQL's
            # default (no limit): a dead client's session ends with its connection anyway
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": "0",
            "APPLICATION_RECORDER_TOPIC": "lifecycle_es.stores.recorders:ChainedPostgresRecorder",
        }

    def psycopg_conninfo(self) -> str:
        """A libpq connection string for psycopg (contains the password: never log it).

        Every libpq parameter of the URL (host lists, ``sslmode``, ``sslrootcert``,
        ``application_name``, ``target_session_attrs``, ``options``, ``passfile``...) is
        kept; what the URL leaves out libpq takes from the ``PG*`` environment variables,
        as psql does. ``connect_timeout`` defaults to the store's ``timeout``.
        """
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        given = conninfo_to_dict(self.libpq) if self.libpq else {
            "host": self.host, "port": self.port, "user": self.user,
            "password": self.password or None, "dbname": self.dbname}
        given.setdefault("connect_timeout", self.timeout)
        if self.read_only:
            own = str(given.get("options") or os.environ.get("PGOPTIONS") or "").strip()
            given["options"] = f"{own} {READ_ONLY_OPTION}".strip()
        return make_conninfo("", **given)

    def session_options(self) -> str:
        """libpq ``options`` of the event store's sessions: the URL's own (or
        ``$PGOPTIONS``), then ``lock_timeout`` set to the store's timeout."""
        from psycopg.conninfo import conninfo_to_dict

        given = conninfo_to_dict(self.libpq).get("options") if self.libpq else None
        mine = f"-c lock_timeout={self.timeout * 1000}"
        if self.read_only:
            mine += f" {READ_ONLY_OPTION}"
        own = str(given or os.environ.get("PGOPTIONS") or "").strip()
        return f"{own} {mine}" if own else mine


def _parse_postgres(cls: type[StoreURL], raw: str, scheme: str) -> StoreURL:
    """A ``postgresql://`` URL: the project's parameters (:data:`OWN_PARAMS`) are read and
    removed, the rest is checked by libpq itself (as psql would parse it)."""
    from psycopg import ProgrammingError
    from psycopg.conninfo import conninfo_to_dict

    if not raw[len(scheme) + 1:].startswith("//"):
        raise StoreError(f"store URL {redact(raw)!r}: a {scheme} URL starts with "
                         f"{scheme}:// (postgresql://user@host:port/db)")
    head, _, query_text = raw.partition("?")
    query = parse_qs(query_text, keep_blank_values=True)
    kept = "&".join(p for p in query_text.split("&")
                    if p and p.split("=", 1)[0] not in OWN_PARAMS)
    libpq = head + (f"?{kept}" if kept else "")
    try:
        params = conninfo_to_dict(libpq)
    except ProgrammingError as exc:  # libpq's own message: invalid parameter, bad port...
        problem = redact(first_line(exc), raw)
    else:
        problem = ""
    if problem:  # raised outside the handler: libpq's message (in the chain) shows the text
        raise StoreError(f"store URL {redact(raw)!r}: {problem}")
    if not params.get("dbname") and not os.environ.get("PGDATABASE"):
        raise StoreError("postgresql URL needs a database name: .../dbname")
    schema = query.get("schema", ["public"])[-1]
    if not _SCHEMA.match(schema):
        raise StoreError(f"store URL: schema={schema[:70]!r}: a schema name is 1 to 58 "
                         "lower-case letters, digits or _ (not starting with a digit)")
    host = str(params.get("host") or os.environ.get("PGHOST") or "")
    ports = str(params.get("port") or os.environ.get("PGPORT") or "5432").split(",")
    for given in ports:
        if given and not (given.isdigit() and 0 < int(given) < 65536):
            raise StoreError(f"store URL {redact(raw)!r}: Port out of range 1-65535")
    port = ports[0]
    return cls(
        kind="postgresql",
        host=host,
        port=int(port) if port.isdigit() else 5432,
        user=str(params.get("user") or os.environ.get("PGUSER") or ""),
        password=str(params.get("password") or ""),
        dbname=str(params.get("dbname") or os.environ.get("PGDATABASE") or ""),
        schema=schema,
        raw=raw,
        timeout=_timeout(query),
        libpq=libpq,
        pool_size=_pool(query, "pool_size", DEFAULT_POOL_SIZE, 1),
        max_overflow=_pool(query, "max_overflow", DEFAULT_MAX_OVERFLOW, 0),
        read_only=_read_only(query),
    )


def _read_only(query: dict[str, list[str]]) -> bool:
    """``?read_only=on`` (or 1, true, yes); anything else but off/0/false/no is refused."""
    given = query.get("read_only", ["off"])[-1].lower()
    if given not in (*_YES, "0", "off", "false", "no"):
        raise StoreError(f"store URL: read_only={given[:20]!r}: use on or off")
    return given in _YES


def _pool(query: dict[str, list[str]], name: str, default: int, least: int) -> int:
    """``pool_size`` / ``max_overflow`` from the URL, else the environment, else ``default``."""
    given = query.get(name, [os.environ.get(POOL_ENV[name], "")])[-1] or str(default)
    if not (given.isascii() and given.isdigit() and least <= int(given) <= 100):
        raise StoreError(f"store URL: {name}={given[:20]!r}: a whole number from {least} "
                         f"to 100 expected (or ${POOL_ENV[name]})")
    return int(given)


def _timeout(query: dict[str, list[str]]) -> int:
    """The ``timeout`` query parameter: whole seconds, 1 to :data:`MAX_TIMEOUT`."""
    given = query.get("timeout", [str(DEFAULT_TIMEOUT)])[-1]
    if not (given.isascii() and given.isdigit() and 1 <= int(given) <= MAX_TIMEOUT):
        raise StoreError(f"store URL: timeout={given[:20]!r}: whole seconds from 1 to "
                         f"{MAX_TIMEOUT} expected")
    return int(given)


_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
#: ``password=VALUE`` in any text (a URL query, a libpq connection string): VALUE is hidden
_PASSWORD_PARAM = re.compile(r"(?i)(password\s*=\s*)(?!\*\*\*)[^&\s'\"]+")
MASK = "***"
#: URLs that hold no secret (but a password= in them is still hidden)
_NO_SECRETS = ("sqlite:///", "memory:")


def _userinfo_password(head: str) -> str:
    """The password part of the text before an ``@``, however malformed the URL."""
    if "//" in head:  # scheme://user:password (any scheme, even a broken one)
        head = head.split("//", 1)[1]
    elif (m := _SCHEME.match(head)) and ":" in head[m.end():]:  # scheme:/user:password
        head = head[m.end():].lstrip("/")
    return head.split(":", 1)[1] if ":" in head else ""


def secrets_of(url: str) -> set[str]:
    """Every substring of the raw ``url`` that may be its password, parsed or not.

    Generous on purpose (a wrong guess only hides a little more): the text after the first
    ``:`` of what precedes the last ``@`` (also the last ``@`` before ``?``), the first
    segment of a URL without ``//`` (``postgres:PASSWORD/db``), a non-numeric
    "port" of an authority without ``@``, whatever follows ``password=`` (to the next ``&``,
    and to the end), and the password ``urlsplit`` finds.
    """
    found: set[str] = set()
    for m in re.finditer(r"(?i)password=", url):
        rest = url[m.end():]
        found.update((rest, rest.split("&")[0], rest.split("&")[0].split("#")[0]))
    if not url.lower().startswith(_NO_SECRETS):
        query = url.find("?")
        for end in {url.rfind("@"), url.rfind("@", 0, query) if query >= 0 else -1}:
            if end > 0:
                found.add(_userinfo_password(url[:end]))
                if "//" not in url[:end] and (lead := _SCHEME.match(url)):
                    found.add(url[lead.end():end].lstrip("/"))  # scheme:password@ (no user)
        if (lead := _SCHEME.match(url)) and not url[lead.end():].startswith("//"):
            # scheme:password/db, scheme:user:password/db (no //: libpq would not parse it,
            # but it is what was typed): the first segment, and what follows its first ":"
            segment = re.split(r"[/?#@]", url[lead.end():].lstrip("/"), maxsplit=1)[0]
            found.update((segment, segment.partition(":")[2]))
        authority = url.split("//", 1)[1] if "//" in url else ""
        authority = re.split(r"[/?#]", authority, maxsplit=1)[0]
        port = authority.split(":", 1)[1] if ":" in authority else ""
        if "@" not in authority and "[" not in authority and not port.isdigit():
            found.add(port)
    with contextlib.suppress(ValueError):  # a URL urlsplit refuses: the guesses above
        found.add(urlsplit(url).password or "")
    return {s for s in found if s}


def _forms(secret: str) -> set[str]:
    """The ways a secret can be written in a message: raw, percent-decoded and -encoded,
    Python-escaped (a repr), libpq-quoted."""
    out: set[str] = set()
    for s in {secret, unquote(secret), unquote_plus(secret)}:
        out.update((s, quote(s), quote(s, safe=""), quote_plus(s, safe=""), repr(s)[1:-1],
                    s.replace("\\", "\\\\").replace("'", "\\'")))
    return {f for f in out if f}


def redact(text: str, url: str | StoreURL | None = None) -> str:
    """``text`` with the password of ``url`` (default: ``text`` is the URL) hidden as ``***``.

    Works on the raw text of any URL, even one that does not parse: hides every guess of
    :func:`secrets_of` in its raw, percent-decoded, percent-encoded and escaped forms, and
    the value of any ``password=`` in ``text``.
    """
    raw = url.raw if isinstance(url, StoreURL) else text if url is None else url
    secrets = secrets_of(raw)
    if isinstance(url, StoreURL) and url.password:
        secrets.add(url.password)
    for form in sorted({f for s in secrets for f in _forms(s)}, key=len, reverse=True):
        text = text.replace(form, MASK)
    if raw.lower().startswith(_NO_SECRETS) and not secrets:
        return text  # a SQLite or memory store has no password: the text is shown as it is
    return _PASSWORD_PARAM.sub(lambda m: m.group(1) + MASK, text)
