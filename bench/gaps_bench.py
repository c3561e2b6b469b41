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
        [--store URL]

Results are recorded in docs/performance.md ("Gaps and health").
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from metrics_bench import UNTIL, best, fill, parser, print_queries, run_stores

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import Config
from lifecycle_es.domain.stage_model import CLASSIC
from lifecycle_es.reading.lifecycle_checks.facts import READ_MODELS
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
        events, write_s = fill(engine, commands)
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
    ap = parser(__doc__ or "")
    ap.add_argument("--no-report", action="store_true",
                    help="skip the report (it needs every read model built)")
    args = ap.parse_args()
    bench = functools.partial(bench_store, report=not args.no_report)
    for store, r in run_stores(args, bench):
        print(f"\n{store}: {r['events']} events written in {r['write_s']:.1f}s; gap read "
              f"models built in {r['build_s']:.1f}s ({r['events'] / r['build_s']:,.0f} "
              f"events/s, {r['rows']:,} rows); {r['gaps']:,} gaps at the end; raw scan of "
              f"the gap read models {r['raw_s'] * 1000:.0f} ms")
        print_queries(r)


if __name__ == "__main__":
    main()
