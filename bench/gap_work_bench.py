"""What the work on gaps (assigned, snoozed, dismissed) costs the gap list, warm, in the library.

Builds a demo store (SQLite file, ``--customers``), times ``engine.gaps()`` (the whole list)
and a page (``team="sales"``, 50 rows) with no work recorded, then records work on every gap
(each assigned; a third of them also snoozed, another third dismissed; through the JSON Lines
import) and times the same calls again: median and p95 wall time, median CPU time of this
process (docs/performance.md, "Gaps as work items")::

    python bench/gap_work_bench.py [--store sqlite:////tmp/gapwork/demo.db]
        [--customers 5000] [--calls 15] [--warm 3]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from dashboard_bench import timed  # the same timing: median, p95, CPU (seconds)

from lifecycle_es import LifecycleEngine
from lifecycle_es.config import Config
from lifecycle_es.demo import default_until, generate, write

CFG = Config()


def work_lines(engine: LifecycleEngine, at: datetime) -> list[str]:
    """JSON Lines assigning every gap at ``at``; snoozing a third, dismissing a third."""
    lines = []
    for n, g in enumerate(engine.gaps(at, config=CFG)):
        who = {"customer": g.customer, "gap_id": g.id, "actor": "bench", "team": "success",
               "at": at.isoformat()}
        lines.append(json.dumps({"type": "gap_assigned", "assignee": f"p{n % 40}", **who}))
        if n % 3 == 1:
            lines.append(json.dumps({"type": "gap_snoozed", "reason": "bench", **who,
                                     "until": (at + timedelta(days=30)).date().isoformat()}))
        elif n % 3 == 2:
            lines.append(json.dumps({"type": "gap_dismissed", "reason": "bench", **who}))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", default="sqlite:////tmp/gapwork/demo.db")
    parser.add_argument("--customers", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=15)
    parser.add_argument("--warm", type=int, default=3)
    args = parser.parse_args()
    if args.store.startswith("sqlite:////"):
        from pathlib import Path

        Path(args.store.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = LifecycleEngine(args.store)
    until = default_until()
    if not engine.writer.recorder.max_notification_id():
        write(engine, generate(args.customers, seed=7, model=engine.stage_model, until=until))
    engine.projections.catch_up()
    engine.projections.queries_catch_up = False
    at = datetime.now(UTC)
    calls: dict[str, Callable[[], Any]] = {
        "gaps, the whole list": lambda: engine.gaps(at, config=CFG),
        "gaps page, team=sales, 50 rows": lambda: engine.gaps(at, team="sales", config=CFG,
                                                              limit=50),
    }
    before = {name: timed(call, args.warm, args.calls) for name, call in calls.items()}
    gaps = len(engine.gaps(at, config=CFG))
    lines = work_lines(engine, at - timedelta(seconds=1))
    engine.import_lines(lines)
    engine.projections.catch_up()
    after = {name: timed(call, args.warm, args.calls) for name, call in calls.items()}
    shown = len(engine.gaps(at, config=CFG))
    print(f"{args.customers} customers, {gaps} gaps; {len(lines)} work events, then "
          f"{shown} gaps shown (a third snoozed, a third dismissed)")
    print("| query | no work: median / p95 ms, CPU ms | every gap worked on: median / p95 "
          "ms, CPU ms |")
    for name in calls:
        b, a = before[name], after[name]
        print(f"| {name} | {b[0] * 1000:.0f} / {b[1] * 1000:.0f}, {b[2] * 1000:.0f} | "
              f"{a[0] * 1000:.0f} / {a[1] * 1000:.0f}, {a[2] * 1000:.0f} |")
    engine.close()


if __name__ == "__main__":
    main()
