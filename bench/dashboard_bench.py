"""The answers a dashboard asks for, on a large demo store, warm, in the library.

Opens an existing demo store per kind (a SQLite file, a PostgreSQL schema), or builds one if
it is empty (``--customers`` demo customers written through the import path, then every read
model rebuilt); a read model whose version changed is rebuilt first. Queries read the read
models as they are (``queries_catch_up`` off: catching up is measured elsewhere). Each
query is called ``--warm`` times, then timed over ``--calls`` calls: median and p95 of the
wall time (and the median CPU time of this process: the machine is shared), beside the
target of issue 25 (docs/performance.md, "Dashboard queries")::

    python bench/dashboard_bench.py [--sqlite sqlite:////tmp/dash/demo.db]
        [--postgres 'postgresql://postgres@127.0.0.1:5432/test?schema=dash']
        [--stores sqlite,postgres] [--customers 20000] [--calls 20] [--warm 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from collections import Counter
from collections.abc import Callable
from datetime import date
from typing import Any

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import Config
from lifecycle_es.demo import default_until, generate, write
from lifecycle_es.reading.projection import queries

SQLITE = "sqlite:////tmp/dash/demo.db"
POSTGRES = "postgresql://postgres@127.0.0.1:5432/test?schema=dash"


def ensure_built(engine: LifecycleEngine, customers: int, until: date) -> None:
    """Write the demo history into an empty store; rebuild read models not current."""
    if not engine.writer.recorder.max_notification_id():
        started = time.perf_counter()
        result = write(engine, generate(customers, 7, engine.stage_model, until))
        print(f"  wrote {result.events:,} events in {time.perf_counter() - started:.0f}s")
    stale = [s.name for s in engine.projections.status()
             if s.state != "up to date"]
    if stale:
        started = time.perf_counter()
        engine.projections.rebuild(stale)
        print(f"  rebuilt {', '.join(stale)} in {time.perf_counter() - started:.0f}s")


def timed(func: Callable[[], Any], warm: int, calls: int) -> tuple[float, float, float]:
    """Median and p95 wall seconds of ``calls`` calls after ``warm`` untimed ones, and the
    median CPU seconds of this process (on a shared machine, what the code itself costs)."""
    for _ in range(warm):
        func()
    times, cpu = [], []
    for _ in range(calls):
        started, started_cpu = time.perf_counter(), time.process_time()
        func()
        times.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    times.sort()
    p95 = times[min(len(times) - 1, max(0, round(0.95 * len(times)) - 1))]
    return statistics.median(times), p95, statistics.median(cpu)


def dashboard(engine: LifecycleEngine) -> list[tuple[str, float, Callable[[], Any]]]:
    """(name, target seconds, call) of every query of the brief."""
    cfg = Config()  # the documented defaults, whatever $LIFECYCLE_ES_CONFIG says
    gaps = engine.gaps(config=cfg)
    team = Counter(g.team for g in gaps).most_common(1)[0][0]
    owner = Counter(g.owner for g in gaps if g.owner).most_common(1)[0][0]
    customer = engine.health(config=cfg, limit=1)[0].customer
    pm = engine.projections
    return [
        (f"gaps page (team={team}, 50)", 0.050,
         lambda: engine.gaps(team=team, limit=50, config=cfg)),
        (f"gaps page (owner={owner}, 50)", 0.050,
         lambda: engine.gaps(owner=owner, limit=50, config=cfg)),
        (f"health page (team={team}, 50)", 0.050,
         lambda: engine.health(team=team, limit=50, config=cfg)),
        (f"health page (owner={owner}, 50)", 0.050,
         lambda: engine.health(owner=owner, limit=50, config=cfg)),
        (f"gaps (all, {len(gaps):,})", 0.250, lambda: engine.gaps(config=cfg)),
        ("health (all paying)", 0.250, lambda: engine.health(config=cfg)),
        ("stage counts", 0.020, lambda: queries.stage_counts(pm, catch_up=False)),
        ("timeline (one customer)", 0.020, lambda: engine.audit.timeline(customer)),
        ("health (one customer)", 0.020, lambda: engine.health(customer, config=cfg)),
    ]


def bench(url: str, args: argparse.Namespace) -> None:
    engine = LifecycleEngine(url)
    try:
        print(f"\n{engine.store.redacted()}")
        ensure_built(engine, args.customers, default_until())
        engine.projections.queries_catch_up = False  # read models current: no catch-up
        print(f"  {engine.writer.recorder.max_notification_id():,} events; load average "
              f"{os.getloadavg()[0]:.1f}")
        print(f"  {'query':<40} {'median':>9} {'p95':>9} {'cpu':>9} {'target':>8}")
        for name, target, func in dashboard(engine):
            median, p95, cpu = timed(func, args.warm, args.calls)
            verdict = "ok" if median <= target else "MISS"
            print(f"  {name:<40} {median * 1000:7.1f}ms {p95 * 1000:7.1f}ms "
                  f"{cpu * 1000:7.1f}ms {target * 1000:6.0f}ms  {verdict}")
        print(f"  load average {os.getloadavg()[0]:.1f} at the end")
    finally:
        engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--sqlite", default=SQLITE)
    ap.add_argument("--postgres", default=POSTGRES)
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--customers", type=int, default=20_000)
    ap.add_argument("--calls", type=int, default=20)
    ap.add_argument("--warm", type=int, default=3)
    args = ap.parse_args()
    print(f"{platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    urls = {"sqlite": args.sqlite, "postgres": args.postgres}
    for kind in args.stores.split(","):
        bench(urls[kind.strip()], args)


if __name__ == "__main__":
    main()
