"""``audit verify`` on an existing store: the best of several runs, in-process.

Compares the cost of what verify checks (events' chain, keys tables, snapshots) between two
versions of the code by running this script under each (``PYTHONPATH=<their src>``, with
``PYTHONDONTWRITEBYTECODE=1`` for a checkout that must stay untouched), alternating. Usage::

    lifecycle-es --store sqlite:////tmp/big.db demo --customers 5000   # 122,548 events
    python bench/verify_bench.py sqlite:////tmp/big.db [--runs 5]
"""

from __future__ import annotations

import argparse
import time

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.audit.verify import verify


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("store")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    engine = LifecycleEngine(args.store, create=False)
    try:
        times = []
        for _ in range(args.runs):
            started = time.perf_counter()
            report = verify(engine)
            times.append(time.perf_counter() - started)
        checked = {k: getattr(report, k, "-") for k in ("keys", "snapshots")}  # older code
        print(f"{report.events:,} events, {checked['keys']} keys, {checked['snapshots']} "
              f"snapshots, clean={report.clean}: best {min(times):.2f} s of {args.runs}")
    finally:
        engine.close()


if __name__ == "__main__":
    main()
