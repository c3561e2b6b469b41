"""Metric query time with the read models built from a large history, SQLite and PostgreSQL.

Per store: writes a demo history of about ``--events`` events (``lifecycle_es.demo``, written
with ``engine.record_many``), builds the ``metrics`` and ``stage_history`` read models
(catch-up, timed), then times each query on the built read models (best of ``--repeat``,
read models not caught up during the timing): the last complete year's summary, the funnel
(ever and for that year), both cohort modes, time in stage, and the monthly MRR and NPS series.

The baseline, on the same run and database, is *raw*: the driver alone reading every row of
the fact tables (``SELECT *``, fetch all). A query's ratio query/raw says how it compares
with merely reading the facts once. Usage::

    python bench/metrics_bench.py [--events 100000] [--stores sqlite,postgres]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--repeat 3] [--store URL]

Results are recorded in docs/performance.md ("Metrics").
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

from lifecycle_es import LifecycleEngine
from lifecycle_es.demo import generate, write
from lifecycle_es.domain.stage_model import CLASSIC
from lifecycle_es.reading.metrics.queries import READ_MODELS, Metrics

UNTIL = date(2026, 11, 1)
YEAR = ("2025-11-01", "2026-11-01")
EVENTS_PER_CUSTOMER = 26  # about, for the demo generator


def best(func: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        func()
        times.append(time.perf_counter() - started)
    return min(times)


def raw_scan(engine: LifecycleEngine, read_models: Sequence[str] = READ_MODELS) -> float:
    """Seconds for the driver to read every row of the read models' tables once."""
    read = engine.projections.read
    started = time.perf_counter()
    for name in read_models:
        for t in engine.projections.projections[name].tables:
            read.fetchall(f"SELECT * FROM {t.name}")
    return time.perf_counter() - started


def fill(engine: LifecycleEngine, commands: list[dict[str, Any]]) -> tuple[int, float]:
    """Write the history unless the store already holds one: (events, seconds writing)."""
    have = int(engine.writer.recorder.max_notification_id() or 0)
    if have:
        return have, 0.0
    started = time.perf_counter()
    events = write(engine, commands).events
    return events, time.perf_counter() - started


def bench_store(url: str, commands: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    engine = LifecycleEngine(url, stage_model=CLASSIC)
    try:
        events, write_s = fill(engine, commands)
        started = time.perf_counter()
        engine.projections.catch_up(list(READ_MODELS))
        build_s = time.perf_counter() - started
        rows = sum(s.rows for s in engine.projections.status(list(READ_MODELS)))
        m = Metrics(engine, catch_up=False)
        queries: dict[str, Callable[[], Any]] = {
            "summary (1 year)": lambda: m.summary(*YEAR),
            "funnel (ever)": lambda: m.funnel(),
            "funnel (1 year)": lambda: m.funnel(*YEAR),
            "cohorts paying": lambda: m.cohorts("paying", as_of=UNTIL),
            "cohorts payments": lambda: m.cohorts("payments", as_of=UNTIL),
            "time in stage": lambda: m.time_in_stage(as_of=UNTIL),
            "mrr series (3 years)": lambda: m.mrr_series("2023-11-01", UNTIL),
            "nps series (3 years)": lambda: m.nps_series("2023-11-01", UNTIL),
        }
        raw = best(lambda: raw_scan(engine), repeat)
        timed = {name: best(q, repeat) for name, q in queries.items()}
        return {"events": events, "write_s": write_s, "build_s": build_s, "rows": rows,
                "raw_s": raw, "queries": timed}
    finally:
        engine.close()


def drop_pg(url: str, schema: str) -> None:
    import psycopg

    from lifecycle_es.stores.url import StoreURL

    with psycopg.connect(StoreURL.parse(url).psycopg_conninfo(), autocommit=True) as conn:
        for s in (schema, f"{schema}_read"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


def parser(doc: str) -> argparse.ArgumentParser:
    """The command line every read-model benchmark takes."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--store", help="use this store URL instead (written only if empty, "
                    "kept afterwards), e.g. one left by rebuild_bench.py --keep")
    return ap


BenchStore = Callable[[str, list[dict[str, Any]], int], dict[str, Any]]


def run_stores(args: argparse.Namespace, bench_store: BenchStore
               ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Generate the demo history once, then ``bench_store(url, commands, repeat)`` on a fresh
    store of each kind (a temporary SQLite file, a PostgreSQL schema dropped after)."""
    customers = max(1, args.events // EVENTS_PER_CUSTOMER)
    started = time.perf_counter()
    commands = generate(customers, 7, CLASSIC, UNTIL)
    print(f"generated {customers} customers, {len(commands)} commands in "
          f"{time.perf_counter() - started:.1f}s ({platform.python_version()}, "
          f"{platform.machine()})")
    if args.store:
        yield args.store.split(":")[0], bench_store(args.store, commands, args.repeat)
        return
    for store in args.stores.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            url = (f"sqlite:///{Path(tmp) / 'bench.db'}" if store == "sqlite"
                   else f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}")
            try:
                r = bench_store(url, commands, args.repeat)
            finally:
                if store != "sqlite":
                    drop_pg(args.postgres, schema)
        yield store, r


def print_queries(r: dict[str, Any]) -> None:
    """The timed queries with their ratio to the raw scan."""
    print(f"{'query':24} {'ms':>9} {'x raw scan':>11}")
    for name, s in r["queries"].items():
        print(f"{name:24} {s * 1000:9.1f} {s / r['raw_s']:11.2f}")


def main() -> None:
    for store, r in run_stores(parser(__doc__ or "").parse_args(), bench_store):
        print(f"\n{store}: {r['events']} events written in {r['write_s']:.1f}s; read models "
              f"built in {r['build_s']:.1f}s ({r['events'] / r['build_s']:,.0f} events/s, "
              f"{r['rows']:,} rows); raw scan of the fact tables {r['raw_s'] * 1000:.0f} ms")
        print_queries(r)


if __name__ == "__main__":
    main()
