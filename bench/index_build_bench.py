"""The rebuild's index phase on SQLite, measured alone (issue 30).

Builds every index of the read models' tables of a SQLite store again (``CREATE INDEX`` on
the filled table, as a rebuild does on its shadows), times each, and drops it; with SQLite's
default page cache (2 MB) and, unless ``--default-only``, with 128 MB. Usage::

    python bench/index_build_bench.py STORE.db [--default-only]

Recorded in docs/performance.md ("Scale").
"""

from __future__ import annotations

import sqlite3
import sys
import time

from scale_bench import WRITE_SIDE

from lifecycle_es.stores.imports import ANSWERS_TABLE


def main() -> None:
    db = sys.argv[1]
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA secure_delete=OFF")  # the drops are not measured
    skip = WRITE_SIDE | {"stored_events", ANSWERS_TABLE}
    rows = conn.execute("SELECT name, tbl_name, sql FROM sqlite_master "
                        "WHERE type = 'index' AND sql IS NOT NULL").fetchall()
    indexes = [(t, sql) for _, t, sql in rows if t not in skip and not t.startswith("sqlite_")]
    events = conn.execute("SELECT MAX(rowid) FROM stored_events").fetchone()[0]
    print(f"{len(indexes)} indexes of {len({t for t, _ in indexes})} tables, {events:,} events")
    for kib in (2000,) if "--default-only" in sys.argv else (2000, 131072):
        conn.execute(f"PRAGMA cache_size = -{kib}")
        per: dict[str, float] = {}
        for table, sql in indexes:
            body = sql[sql.upper().index(" ON "):]
            unique = "UNIQUE " if sql.upper().startswith("CREATE UNIQUE") else ""
            started = time.perf_counter()
            conn.execute(f"CREATE {unique}INDEX bench_index_build {body}")
            per[table] = per.get(table, 0.0) + time.perf_counter() - started
            conn.execute("DROP INDEX bench_index_build")
        total = sum(per.values())
        top = sorted(per.items(), key=lambda kv: -kv[1])[:4]
        print(f"page cache {kib // 1000} MB: {total:.1f} s ({total / events * 1e6:.1f} µs per "
              "event); " + ", ".join(f"{t} {s:.1f} s" for t, s in top))


if __name__ == "__main__":
    main()
