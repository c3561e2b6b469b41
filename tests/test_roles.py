"""docs/operations.md, "Roles and grants", as written: its SQL blocks run (names made unique)
and each role's commands through the CLI — the owner creates the event store, the projector
builds and rebuilds the read models, the writer imports and erases, the auditor queries — and
what a role must not do fails with one line (exit 3), writing nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from conftest import PG_URL, need_postgres
from lifecycle_samples import FULL_LIFECYCLE, jsonl

from lifecycle_es.stores.url import StoreURL

DOC = Path(__file__).resolve().parents[1] / "docs" / "operations.md"
ROLES = ("owner", "writer", "projector", "auditor")


def sql_blocks() -> list[tuple[str, str]]:
    """(who runs it, SQL) of each ```sql block of the section, in order."""
    text = DOC.read_text()
    section = text[text.index("## Roles and grants"):]
    section = section[:section.index("\n## ", 3)]
    blocks = re.findall(r"```sql\n(.*?)```", section, flags=re.S)
    out = []
    for block in blocks:
        first = block.strip().splitlines()[0]
        who = re.fullmatch(r"-- as (a superuser|lc_\w+)", first.strip())
        assert who, f"each SQL block of the section starts with '-- as WHO': {first!r}"
        out.append((who.group(1), block))
    return out


class Cluster:
    """The roles and schemas of one run, under unique names."""

    def __init__(self) -> None:
        self.tag = f"rl{uuid.uuid4().hex[:6]}"
        self.base = StoreURL.parse(PG_URL)

    def name(self, sql: str) -> str:
        sql = re.sub(r"\bcrm_read\b", f"{self.tag}_read", sql)
        sql = re.sub(r"\bcrm\b", self.tag, sql)
        return re.sub(r"\blc_(\w+)", rf"{self.tag}_\1", sql)

    def url(self, role: str) -> str:
        return (f"postgresql://{self.tag}_{role}@{self.base.host}:{self.base.port}/"
                f"{self.base.dbname}?schema={self.tag}")

    def run_sql(self, who: str, sql: str) -> None:
        info = self.base.psycopg_conninfo()
        if who != "a superuser":
            info += f" user={self.name(who)}"
        with psycopg.connect(info, autocommit=True) as conn:
            conn.execute(self.name(sql).encode())

    def cli(self, role: str, *args: str, read: bool = False) -> subprocess.CompletedProcess[str]:
        store = ["--read-store" if read else "--store", self.url(role)]
        return subprocess.run([sys.executable, "-m", "lifecycle_es.cli.main", *store, *args],
                              capture_output=True, text=True, timeout=300, check=False)

    def events(self) -> int:
        with psycopg.connect(self.base.psycopg_conninfo()) as conn:
            row = conn.execute(f'SELECT count(*) FROM "{self.tag}".lifecycle_events').fetchone()
        assert row is not None
        return int(row[0])

    def drop(self) -> None:
        with psycopg.connect(self.base.psycopg_conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.tag}_read" CASCADE')
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.tag}" CASCADE')
            for role in ROLES:
                exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s",
                                      (f"{self.tag}_{role}",)).fetchone()
                if exists:
                    conn.execute(f"DROP OWNED BY {self.tag}_{role}")
                    conn.execute(f"DROP ROLE {self.tag}_{role}")


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    need_postgres()
    c = Cluster()
    try:
        yield c
    finally:
        c.drop()


def ok(done: subprocess.CompletedProcess[str], code: int = 0) -> str:
    assert done.returncode == code, (done.returncode, done.stdout[-500:], done.stderr[-800:])
    assert "Traceback" not in done.stderr
    return done.stdout


def refused(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 3, (done.returncode, done.stdout[-300:], done.stderr[-500:])
    assert "Traceback" not in done.stderr
    last = done.stderr.strip().splitlines()[-1]  # (an import also logs its failure)
    assert last.startswith("error: ")
    return last


def test_the_documented_roles_each_do_their_work_and_nothing_else(
        cluster: Cluster, tmp_path: Path) -> None:
    blocks = sql_blocks()
    assert [who for who, _ in blocks] == ["a superuser", "lc_owner", "lc_projector"]
    history = tmp_path / "history.jsonl"
    history.write_text(jsonl(FULL_LIFECYCLE))

    cluster.run_sql(*blocks[0])
    ok(cluster.cli("owner", "init", "--no-read-models"))
    cluster.run_sql(*blocks[1])
    cluster.run_sql(*blocks[2])
    ok(cluster.cli("projector", "projections", "run", "--once"))

    ok(cluster.cli("writer", "import", str(history)))
    written = cluster.events()
    assert written == len(FULL_LIFECYCLE)
    ok(cluster.cli("projector", "projections", "run", "--once"))
    stage = json.loads(ok(cluster.cli("auditor", "stage", "--customer", "acme", "--json",
                                      read=True)))
    assert [r["name"] for r in stage["result"]] == ["Acme Ltd"]
    assert "clean" in ok(cluster.cli("auditor", "audit", "verify", read=True))

    # the writer erases: the erasure is committed, the read models are the projector's
    erased = cluster.cli("writer", "erase", "acme", "--reason", "asked to be forgotten", "--yes")
    assert erased.returncode == 3 and "Traceback" not in erased.stderr
    said, error = erased.stderr.strip().splitlines()
    assert said.startswith("erased customer 'acme'") and "could not catch up" in said
    assert "permission denied" in error
    assert cluster.events() == written + 1
    ok(cluster.cli("projector", "projections", "run", "--once"))
    stage = json.loads(ok(cluster.cli("auditor", "stage", "--customer", "acme", "--json",
                                      read=True)))
    assert [r["name"] for r in stage["result"]] == ["[erased]"]

    # a rebuild swaps in new tables: the auditor still reads them
    ok(cluster.cli("projector", "projections", "rebuild"))
    ok(cluster.cli("auditor", "metrics", "--from", "2024-01-01", "--to", "2025-01-01",
                   read=True))

    # and nothing else
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"type": "customer_registered", "customer": "beta",
                                "name": "Beta", "segment": "smb", "source": "web",
                                "actor": "ann", "team": "sales",
                                "at": "2024-06-01T10:00:00Z"}) + "\n")
    refused(cluster.cli("projector", "import", str(more)))
    refused(cluster.cli("auditor", "import", str(more)))
    refused(cluster.cli("writer", "projections", "run", "--once"))
    assert "permission denied" in refused(cluster.cli("writer", "stage", "--no-catch-up"))
    assert cluster.events() == written + 1
