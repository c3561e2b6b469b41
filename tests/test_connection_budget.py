"""Issue 18: 20 engine processes on one database (commands, catch-up, queries at once) stay
within 60 PostgreSQL connections (3 each). Counted by application_name, so other clients of
the shared test server do not count."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid

import psycopg
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
    peak, stop = [0], threading.Event()

    def watch() -> None:
        with psycopg.connect(StoreURL.parse(PG_URL).psycopg_conninfo(), autocommit=True) as c:
            while not stop.is_set():
                row = c.execute("SELECT count(*) FROM pg_stat_activity "
                                "WHERE application_name = %s", (name,)).fetchone()
                peak[0] = max(peak[0], int(row[0]) if row else 0)
                stop.wait(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, str(n)],
                                  stderr=subprocess.PIPE, text=True) for n in range(20)]
        results = [(p.wait(), p.stderr.read() if p.stderr else "") for p in procs]
    finally:
        stop.set()
        watcher.join()
        drop_schema(schema)
    assert [r for r in results if r[0] != 0] == []
    print(f"peak connections of 20 processes: {peak[0]}")
    assert 0 < peak[0] <= 60, peak[0]
