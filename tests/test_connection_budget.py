"""Issue 18: 20 engine processes on one database (commands, catch-up, queries at once) stay
within 60 PostgreSQL connections (3 each), and one process stays within 3 whatever it does
(live runner, import with its writer process, queries, audit verify). Counted by
application_name, so other clients of the shared test server do not count."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
import psycopg
import pytest
from conftest import PG_URL, drop_schema, need_postgres

from lifecycle_es import LifecycleEngine
from lifecycle_es.stores.url import StoreURL

WORKER = """
import sys
from lifecycle_es import LifecycleEngine
engine = LifecycleEngine(sys.argv[1])
who = dict(at="2025-03-01T10:00:00Z", actor="ann", team="sales")
for i in range(5):
    engine.register(customer=f"c{sys.argv[2]}-{i}", name="x", segment="smb", source="web", **who)
engine.projections.catch_up()
engine.projections.read.fetchall("SELECT stage FROM current_stage")
engine.gaps()
engine.close()
"""


def test_twenty_processes_stay_within_sixty_connections() -> None:
    need_postgres()
    name = f"lc_budget_{uuid.uuid4().hex[:8]}"
    schema = f"t_{uuid.uuid4().hex[:10]}"
    sep = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{sep}schema={schema}&application_name={name}"
    LifecycleEngine(url).close()  # the store exists before the processes race
    peaks: list[int] = []
    try:
        with watching(name, peaks):
            procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(n)],
                                      stderr=subprocess.PIPE, text=True) for n in range(20)]
            results = [(p.wait(), p.stderr.read() if p.stderr else "") for p in procs]
    finally:
        drop_schema(schema)
    assert [r for r in results if r[0] != 0] == []
    print(f"peak connections of 20 processes: {peaks[0]}")
    assert 0 < peaks[0] <= 60, peaks[0]


#: one process doing everything at once: a live runner (LISTEN), commands from two
#: threads, an import big enough for its writer process, catch-ups, queries, audit verify
EVERYTHING = """
import sys, threading, time
from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.audit.verify import verify
engine = LifecycleEngine(sys.argv[1])
stop = threading.Event()
follower = threading.Thread(target=engine.projections.follow,
                            kwargs=dict(poll_interval=60, stop=stop))
follower.start()
def commands(tag):
    who = dict(at="2025-03-01T10:00:00Z", actor="ann", team="sales")
    for i in range(15):
        engine.register(customer=f"{tag}-{i}", name="x", segment="smb", source="web", **who)
threads = [threading.Thread(target=commands, args=(t,)) for t in ("a", "b")]
for t in threads:
    t.start()
result = engine.import_file(sys.argv[2], batch_size=200)
for t in threads:
    t.join()
head = engine.projections.head()
deadline = time.monotonic() + 30  # the follower wakes on NOTIFY (its poll is 60 s)
while min(s.position for s in engine.projections.status()) < head:
    assert time.monotonic() < deadline, "the live runner did not follow"
    time.sleep(0.1)
engine.gaps(); engine.metrics.summary("2024-01-01", "2026-01-01"); engine.audit.events()
assert verify(engine).clean
stop.set(); follower.join()
engine.close()
print(result.events)
"""


def test_one_process_doing_everything_stays_within_three(tmp_path: Path) -> None:
    """The per-process budget, whatever the process does: its pool (2), the read models'
    connection (1), which also carries the live runner's LISTEN and is closed while an
    import's writer process (a pool of 1) runs."""
    need_postgres()
    history, name, schema, url = demo_store(tmp_path, "all", 60)
    LifecycleEngine(url).close()
    peaks: list[int] = []
    try:
        with watching(name, peaks):
            done = subprocess.run([sys.executable, "-c", EVERYTHING, url, str(history)],
                                  capture_output=True, text=True, timeout=300, check=False)
    finally:
        drop_schema(schema)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout.split()[-1]) > 1000  # big enough for the writer process
    print(f"peak connections of one process doing everything: {peaks[0]}")
    assert 0 < peaks[0] <= 3, peaks[0]


@pytest.mark.parametrize("command", [
    ["import", "HISTORY", "--batch-size", "200"], ["projections", "run", "--once"],
    ["projections", "rebuild"], ["stage"], ["gaps"], ["report", "--out", "REPORT"],
    ["audit", "verify"], ["audit", "events"],
], ids=lambda c: " ".join(c[:2]))
def test_each_cli_command_stays_within_three(command: list[str], tmp_path: Path) -> None:
    need_postgres()
    history, name, schema, url = demo_store(tmp_path, "cli", 40)
    if command[0] != "import":
        filler = LifecycleEngine(url)
        filler.import_file(str(history))
        filler.close()
    args = [{"HISTORY": str(history), "REPORT": str(tmp_path / "r.html")}.get(a, a)
            for a in command]
    peaks: list[int] = []
    try:
        with watching(name, peaks):
            done = subprocess.run([sys.executable, "-m", "lifecycle_es.cli.main", "--store",
                                   url, *args], capture_output=True, text=True, timeout=300,
                                  check=False)
    finally:
        drop_schema(schema)
    assert done.returncode == 0, done.stderr
    assert 0 < peaks[0] <= 3, (command, peaks[0])


def demo_store(tmp_path: Path, tag: str, customers: int) -> tuple[Path, str, str, str]:
    """A demo history file for ``customers`` customers, and a fresh store URL whose
    connections carry their own application_name: (file, name, schema, URL)."""
    from lifecycle_es.demo import default_until, generate
    from lifecycle_es.domain.stage_model import CLASSIC

    history = tmp_path / "history.jsonl"
    history.write_bytes(b"".join(orjson.dumps(c) + b"\n"
                                 for c in generate(customers, 3, CLASSIC, default_until())))
    name = f"issue18_{tag}_{uuid.uuid4().hex[:8]}"
    schema = f"issue18_{tag}_s{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in PG_URL else "?"
    return history, name, schema, f"{PG_URL}{sep}schema={schema}&application_name={name}"


@contextmanager
def watching(name: str, peaks: list[int]) -> Iterator[None]:
    """Sample the connections named ``name`` meanwhile; their peak is put in ``peaks``."""
    peak, stop = [0], threading.Event()

    def watch() -> None:
        with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo(), autocommit=True) as c:
            while not stop.is_set():
                row = c.execute("SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name = %s", (name,)).fetchone()
                peak[0] = max(peak[0], int(row[0]) if row else 0)
                stop.wait(0.01)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        yield
    finally:
        stop.set()
        watcher.join()
        peaks.append(peak[0])
