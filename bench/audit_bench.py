"""Audit queries cost what they return, not the size of the log: 100k vs 1M events.

Per store and log size, writes a demo history (``lifecycle_es.demo.generate``) plus one probe
customer with exactly ``PROBE_EVENTS`` events by one probe actor, catches up ``audit_index``,
then times (median of ``--repeat`` runs, after a warm-up):

- ``timeline``: ``engine.audit.timeline(probe customer)``; *raw*: the driver alone selecting
  the same customer's stored rows;
- ``state as-of``: ``engine.audit.state(probe, as_of=...)``;
- ``page probe actor``: ``engine.audit.events(actor=probe actor, since, until, limit=50)``;
- ``page busy actor``: the same filters for the demo's busiest person over the last 180 days
  (their matching events grow with the log; the page stays 50 rows).

The ratio 1M/100k of each figure shows whether it depends on the log's size. Usage::

    python bench/audit_bench.py [--sizes 100000,1000000] [--stores sqlite,postgres]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--repeat 30]

Results are recorded in docs/performance.md ("Audit").
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

from lifecycle_es import LifecycleEngine
from lifecycle_es.demo import generate, parse_all
from lifecycle_es.domain import CLASSIC, customer_id
from lifecycle_es.stores.url import StoreURL

UNTIL = date(2026, 11, 1)
PROBE, PROBE_ACTOR, PROBE_EVENTS = "probe-customer", "probe.auditor", 60
EVENTS_PER_CUSTOMER = 24.4  # demo average (measured on 2,000 customers)


def probe_commands() -> list[dict[str, Any]]:
    """One customer with PROBE_EVENTS events by the probe actor, one every 5 days of 2025."""
    start = datetime(2025, 1, 1, 9)
    meta = {"customer": PROBE, "actor": PROBE_ACTOR, "team": "support"}
    out: list[dict[str, Any]] = [{"type": "customer_registered", "at": start.isoformat() + "Z",
                                  "name": "Probe", "segment": "smb", "source": "web", **meta}]
    for n in range(1, PROBE_EVENTS):
        at = (start + timedelta(days=5 * n)).isoformat() + "Z"
        kind = "touchpoint" if n % 2 else "check_in"
        extra = {"channel": "email"} if kind == "touchpoint" else {}
        out.append({"type": kind, "at": at, **meta, **extra})
    return out


@contextmanager
def store_url(kind: str, postgres: str) -> Iterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            yield f"sqlite:///{folder}/audit_bench.db"
        return
    import psycopg

    schema = f"bench_audit_{uuid.uuid4().hex[:8]}"
    sep = "&" if "?" in postgres else "?"
    try:
        yield f"{postgres}{sep}schema={schema}"
    finally:
        with psycopg.connect(StoreURL.parse(postgres).psycopg_conninfo(),
                             autocommit=True) as conn:
            for s in (schema, f"{schema}_read"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


def median_ms(func: Callable[[], Any], repeat: int) -> float:
    func()  # warm-up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def raw_select(engine: LifecycleEngine) -> Callable[[], Any]:
    """The driver alone reading the probe customer's stored rows."""
    table = engine.writer.recorder.events_table_name  # type: ignore[attr-defined]
    store = engine.store
    if store.kind == "sqlite":
        conn: Any = sqlite3.connect(store.path)
        oid: Any = customer_id(PROBE).hex
        sql = f"SELECT * FROM {table} WHERE originator_id = ? ORDER BY originator_version"
    else:
        from lifecycle_es.stores.postgres import connect

        conn = connect(store, autocommit=True)
        oid = customer_id(PROBE)
        sql = (f'SELECT * FROM "{store.schema}".{table} WHERE originator_id = %s '
               "ORDER BY originator_version")
    return lambda: conn.execute(sql, (oid,)).fetchall()


def run(kind: str, size: int, postgres: str, repeat: int) -> dict[str, float]:
    customers = max(1, round((size - PROBE_EVENTS) / EVENTS_PER_CUSTOMER))
    commands = generate(customers, 11, CLASSIC, UNTIL) + probe_commands()
    busy = Counter(c["actor"] for c in commands if "." in c["actor"]).most_common(1)[0][0]
    with store_url(kind, postgres) as url:
        engine = LifecycleEngine(url, stage_model=CLASSIC)
        started = time.perf_counter()
        written = engine.record_many(parse_all(commands)).events
        wrote = time.perf_counter() - started
        started = time.perf_counter()
        engine.projections.catch_up(["audit_index"])
        indexed = time.perf_counter() - started
        audit = engine.audit
        assert len(audit.timeline(PROBE)) == PROBE_EVENTS
        since, until = datetime(2025, 3, 1), datetime(2025, 9, 30)
        recent = datetime.combine(UNTIL, datetime.min.time()) - timedelta(days=180)
        page = audit.events(actor=busy, since=recent, limit=50)
        assert len(page.events) == 50, "busy actor page not full"
        out = {
            "events": written, "write_s": wrote, "index_s": indexed,
            "raw_ms": median_ms(raw_select(engine), repeat),
            "timeline_ms": median_ms(lambda: audit.timeline(PROBE), repeat),
            "state_ms": median_ms(lambda: audit.state(PROBE, as_of="2025-06-01"), repeat),
            "probe_page_ms": median_ms(lambda: audit.events(
                actor=PROBE_ACTOR, since=since, until=until, limit=50), repeat),
            "busy_page_ms": median_ms(lambda: audit.events(
                actor=busy, since=recent, limit=50), repeat),
        }
        engine.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--postgres", default=os.environ.get(
        "LIFECYCLE_ES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"# {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs")
    keys = ("raw_ms", "timeline_ms", "state_ms", "probe_page_ms", "busy_page_ms")
    for kind in args.stores.split(","):
        print(f"\n## {kind}")
        print("| events | write s | index s | " + " | ".join(keys) + " |")
        print("|---" * (3 + len(keys)) + "|", flush=True)
        results = {}
        for size in sizes:  # each row as soon as measured
            r = results[size] = run(kind, size, args.postgres, args.repeat)
            print(f"| {r['events']:,.0f} | {r['write_s']:.1f} | {r['index_s']:.1f} | "
                  + " | ".join(f"{r[k]:.2f}" for k in keys) + " |", flush=True)
        if len(sizes) > 1:
            lo, hi = results[sizes[0]], results[sizes[-1]]
            print(f"| ratio {sizes[-1]:,}/{sizes[0]:,} | | | "
                  + " | ".join(f"{hi[k] / lo[k]:.2f}" for k in keys) + " |")


if __name__ == "__main__":
    main()
