"""Shared fixtures: every storage test runs on memory, SQLite and PostgreSQL.

PostgreSQL comes from $LIFECYCLE_ES_TEST_POSTGRES (default
postgresql://postgres@127.0.0.1:5432/test); each test gets its own schema, dropped after.
When PostgreSQL cannot be reached its tests skip with one reason, unless
LIFECYCLE_ES_REQUIRE_POSTGRES=1 (CI), which turns the skip into a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import pytest

from lifecycle_es import LifecycleEngine

#: the suite's master key (set for every test and the processes they start), so no test
#: writes the default key file of the user running it; tests of the key's configuration
#: change it themselves
TEST_MASTER_KEY = "bGlmZWN5Y2xlLWVzIHRlc3Qgc3VpdGUgbWFzdGVyIGs="
os.environ["LIFECYCLE_ES_MASTER_KEY"] = TEST_MASTER_KEY
os.environ.pop("LIFECYCLE_ES_MASTER_KEY_FILE", None)

PG_URL = os.environ.get("LIFECYCLE_ES_TEST_POSTGRES",
                        "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_PG = os.environ.get("LIFECYCLE_ES_REQUIRE_POSTGRES") == "1"
STORES = ["memory", "sqlite", "postgres"]


@cache
def postgres_problem() -> str | None:
    """None when PostgreSQL answers, else why not."""
    import psycopg

    from lifecycle_es.stores.url import StoreURL

    try:
        with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo()) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL not reachable at {StoreURL.parse(PG_URL).redacted()}: " + (
            str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return None


def need_postgres() -> None:
    problem = postgres_problem()
    if problem is not None:
        if REQUIRE_PG:
            pytest.fail(f"LIFECYCLE_ES_REQUIRE_POSTGRES=1 but {problem}")
        pytest.skip(problem)


def drop_schema(schema: str) -> None:
    import psycopg

    from lifecycle_es.stores.url import StoreURL

    with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo(), autocommit=True) as conn:
        for s in (schema, f"{schema}_read"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


@pytest.fixture
def store_url_factory(tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """Make a fresh, isolated store URL of a kind ("memory", "sqlite", "postgres")."""
    schemas: list[str] = []

    def make(kind: str) -> str:
        if kind == "memory":
            return "memory://"
        if kind == "sqlite":
            return f"sqlite:///{tmp_path / f'lc_{uuid.uuid4().hex[:8]}.db'}"
        need_postgres()
        schema = f"t_{uuid.uuid4().hex[:12]}"
        schemas.append(schema)
        sep = "&" if "?" in PG_URL else "?"
        return f"{PG_URL}{sep}schema={schema}"

    yield make
    for schema in schemas:
        drop_schema(schema)


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_url(store_kind: str, store_url_factory: Callable[[str], str]) -> str:
    """A fresh store URL, once per store kind."""
    return store_url_factory(store_kind)


@pytest.fixture
def engine(store_url: str) -> Iterator[LifecycleEngine]:
    """A fresh engine on each store kind."""
    eng = LifecycleEngine(store_url)
    yield eng
    eng.close()


@pytest.fixture(params=["sqlite", "postgres"])
def durable_store_url(request: pytest.FixtureRequest,
                      store_url_factory: Callable[[str], str]) -> str:
    """A fresh store URL on the two durable stores (for subprocess/CLI tests)."""
    return store_url_factory(str(request.param))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Finalise the engines tests left unclosed while the interpreter is whole: the library's
    PostgreSQL datastore closes itself in ``__del__``, which fails noisily ("Exception
    ignored ... 'NoneType' object has no attribute 'suppress'") once shutdown has begun."""
    import gc

    gc.collect()
