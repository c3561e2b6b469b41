"""Gap, health and report time with the read models built from a large history.

Per store: writes a demo history of about ``--events`` events (``lifecycle_es.demo``), builds
the read models the gap checks read (``gaps_facts``, ``handover_history``; catch-up, timed),
then times each query on the built read models (best of ``--repeat``): every gap as of the
history's end and as of a year earlier, one kind, the health score of every paying customer
and of one customer, and the whole HTML report (which also runs the metric queries, so the
metrics read models are built first, untimed).

The baseline, on the same run and database, is *raw*: the driver alone reading every row of
the gap read models once (``SELECT *``, fetch all). Usage::

    python bench/gaps_bench.py [--events 100000] [--stores sqlite,postgres]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--repeat 3] [--no-report]

Results are recorded in docs/performance.md ("Gaps and health").
"""

from __future__ import annotations

import argparse
import platform
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from metrics_bench import EVENTS_PER_CUSTOMER, UNTIL, best, drop_pg

from lifecycle_es import LifecycleEngine
from lifecycle_es.checks.facts import READ_MODELS
from lifecycle_es.config import Config
from lifecycle_es.demo import generate, write
from lifecycle_es.domain.stage_model import CLASSIC
from lifecycle_es.report import build_report

END = datetime(UNTIL.year, UNTIL.month, UNTIL.day, tzinfo=UTC)
YEAR_BEFORE = END.replace(year=END.year - 1)


def raw_scan(engine: LifecycleEngine) -> float:
    """Seconds for the driver to read every row of the gap read models once."""
    read = engine.projections.read
    started = time.perf_counter()
    for name in READ_MODELS:
        for t in engine.projections.projections[name].tables:
            read.fetchall(f"SELECT * FROM {t.name}")
    return time.perf_counter() - started


def bench_store(url: str, commands: list[dict[str, Any]], repeat: int,
                report: bool = True) -> dict[str, Any]:
    engine = LifecycleEngine(url, stage_model=CLASSIC)
    cfg = Config()
    try:
        started = time.perf_counter()
        events = write(engine, commands).events
        write_s = time.perf_counter() - started
        started = time.perf_counter()
        engine.projections.catch_up(list(READ_MODELS))
        build_s = time.perf_counter() - started
        rows = sum(s.rows for s in engine.projections.status(list(READ_MODELS)))
        if report:  # the metric read models too, for the report (untimed)
            engine.projections.catch_up()
        one = engine.gaps(END, config=cfg)[0].customer
        found = len(engine.gaps(END, config=cfg))
        queries: dict[str, Callable[[], Any]] = {
            "gaps (as of end)": lambda: engine.gaps(END, config=cfg),
            "gaps (a year earlier)": lambda: engine.gaps(YEAR_BEFORE, config=cfg),
            "gaps --kind stalled": lambda: engine.gaps(END, "stalled", config=cfg),
            "health (all paying)": lambda: engine.health(as_of=END, config=cfg),
            "health --customer": lambda: engine.health(one, END, config=cfg),
        }
        if report:
            queries["report (whole HTML)"] = lambda: build_report(
                engine, END.replace(year=END.year - 1), END, END, config=cfg)
        raw = best(lambda: raw_scan(engine), repeat)
        timed = {name: best(q, repeat) for name, q in queries.items()}
        return {"events": events, "write_s": write_s, "build_s": build_s, "rows": rows,
                "raw_s": raw, "queries": timed, "gaps": found}
    finally:
        engine.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-report", action="store_true",
                    help="skip the report (it needs every read model built)")
    args = ap.parse_args()

    customers = max(1, args.events // EVENTS_PER_CUSTOMER)
    started = time.perf_counter()
    commands = generate(customers, 7, CLASSIC, UNTIL)
    print(f"generated {customers} customers, {len(commands)} commands in "
          f"{time.perf_counter() - started:.1f}s ({platform.python_version()}, "
          f"{platform.machine()})")
    for store in args.stores.split(","):
        with tempfile.TemporaryDirectory() as tmp:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            url = (f"sqlite:///{Path(tmp) / 'bench.db'}" if store == "sqlite"
                   else f"{args.postgres}{'&' if '?' in args.postgres else '?'}schema={schema}")
            try:
                r = bench_store(url, commands, args.repeat, not args.no_report)
            finally:
                if store != "sqlite":
                    drop_pg(args.postgres, schema)
        print(f"\n{store}: {r['events']} events written in {r['write_s']:.1f}s; gap read "
              f"models built in {r['build_s']:.1f}s ({r['events'] / r['build_s']:,.0f} "
              f"events/s, {r['rows']:,} rows); {r['gaps']:,} gaps at the end; raw scan of "
              f"the gap read models {r['raw_s'] * 1000:.0f} ms")
        print(f"{'query':24} {'ms':>9} {'x raw scan':>11}")
        for name, s in r["queries"].items():
            print(f"{name:24} {s * 1000:9.1f} {s / r['raw_s']:11.2f}")


if __name__ == "__main__":
    main()
