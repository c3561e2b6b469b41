"""Loading one long-lived customer, with and without snapshots, on SQLite and PostgreSQL.

Per store and size (default 100, 1,000, 10,000 and 50,000 events: a registration, a purchase,
then check-ins and payments), one customer's history is written by the bulk import, then:

- *load*: ``engine.customer(key)`` (best of several loads) by an engine with snapshots
  (the default interval, 100) and by one without (``snapshot_every=0``: the full replay);
- *command*: one ``check_in`` on that customer (best of several), which loads it, checks
  the rules and saves one event (and a snapshot every 100th event).

The history is written so that the snapshot engine meets its **worst case**: the newest
snapshot is 99 events behind (``--tail``), so every load folds a snapshot plus 99 events. A
customer of 100 events has no snapshot at all (it never got to 100 events through a command):
its load is a replay of 100 events, the baseline of the target.

Target (issue 17): with snapshots, the load at 50,000 events <= 2x the load at 100 events.
Figures are recorded in docs/performance.md ("Loading a customer"). Usage::

    python bench/load_bench.py [--sizes 100,1000,10000,50000] [--stores sqlite,postgres]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--tail 99]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import psycopg

os.environ.setdefault("LIFECYCLE_ES_MASTER_KEY", "bG9hZC1iZW5jaC1tYXN0ZXIta2V5LTAxMjM0NTY3ODk=")

from lifecycle_es import LifecycleEngine
from lifecycle_es.commands import build_command
from lifecycle_es.writing.application import DEFAULT_SNAPSHOT_EVERY

WHO = {"actor": "ann", "team": "success"}
START = datetime(2020, 1, 1, tzinfo=UTC)


def history(key: str, n: int, start: int = 0) -> Iterator[Any]:
    """Commands ``start``..``n - 1`` of a customer's history (0: the registration)."""
    for i in range(start, n):
        at = (START + timedelta(minutes=i)).isoformat()
        if i == 0:
            yield build_command("customer_registered", {
                "customer": key, "at": at, "name": "Long-lived Ltd", "segment": "ent",
                "source": "referral", **WHO})
        elif i == 1:
            yield build_command("purchase", {
                "customer": key, "at": at, "plan": "pro", "mrr": 9900, "currency": "EUR",
                "contract_start": "2020-01-01", "contract_end": "2030-01-01", **WHO})
        elif i % 2:
            yield build_command("payment", {"customer": key, "at": at, "amount": 9900,
                                            "currency": "EUR", **WHO})
        else:
            yield build_command("check_in", {"customer": key, "at": at,
                                             "notes": f"call {i}: all well", **WHO})


def best_ms(fn: Callable[[], Any], repeat: int) -> float:
    """The best of ``repeat`` timings (as ``timeit`` reports: on a shared machine the other
    timings measure the neighbours)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times) * 1000


def write_history(url: str, key: str, n: int, tail: int) -> None:
    """``n`` events, the newest snapshot ``tail`` events behind (when ``n`` > ``tail``)."""
    engine = LifecycleEngine(url)
    try:
        head = max(1, n - tail)
        engine.record_many(list(history(key, head)))
        if n > tail + 1:
            # one command: its load folds >= 100 events, so it snapshots the customer first
            engine.execute(next(history(key, head + 1, head)))
            head += 1
        if head < n:
            engine.record_many(list(history(key, n, head)))
    finally:
        engine.close()


def measure(url: str, n: int, tail: int) -> dict[str, float]:
    key = f"long-{n}"
    write_history(url, key, n, tail)
    out: dict[str, float] = {}
    for label, every in (("snapshots", DEFAULT_SNAPSHOT_EVERY), ("replay", 0)):
        engine = LifecycleEngine(url, snapshot_every=every)
        try:
            c = engine.customer(key)
            assert c.version >= n, (c.version, n)
            if label == "snapshots":
                out["folded"] = c.origin.replayed
            repeat = 40 if n <= 10_000 or label == "snapshots" else 5
            out[f"load_{label}"] = best_ms(partial(engine.customer, key), repeat)
            out[f"command_{label}"] = best_ms(partial(
                engine.check_in, customer=key, at="2029-01-01T00:00:00Z", notes="bench",
                **WHO), 9 if repeat > 5 else 3)
        finally:
            engine.close()
    return out


def stores(kinds: list[str], pg: str) -> Iterator[tuple[str, str]]:
    for kind in kinds:
        if kind == "sqlite":
            with tempfile.TemporaryDirectory() as d:
                yield kind, f"sqlite:///{d}/load.db"
        else:
            schema = f"load_{uuid.uuid4().hex[:8]}"
            sep = "&" if "?" in pg else "?"
            try:
                yield kind, f"{pg}{sep}schema={schema}"
            finally:
                with psycopg.connect(pg, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema}_read CASCADE")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="100,1000,10000,50000")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--postgres", default=os.environ.get(
        "LIFECYCLE_ES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--tail", type=int, default=DEFAULT_SNAPSHOT_EVERY - 1,
                    help="events after the newest snapshot (the worst case: interval - 1)")
    args = ap.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{'store':9} {'events':>7} {'folded':>6} {'load snap ms':>12} {'load replay ms':>14}"
          f" {'cmd snap ms':>11} {'cmd replay ms':>13}")
    for kind, url in stores(args.stores.split(","), args.postgres):
        base = None
        for n in sizes:
            r = measure(url, n, args.tail)
            base = base or r["load_snapshots"]
            print(f"{kind:9} {n:>7,} {r['folded']:>6.0f} {r['load_snapshots']:>12.2f} "
                  f"{r['load_replay']:>14.2f} {r['command_snapshots']:>11.2f} "
                  f"{r['command_replay']:>13.2f}   load/load@{sizes[0]}: "
                  f"{r['load_snapshots'] / base:.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
