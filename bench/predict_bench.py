"""Prediction (BG/NBD + Gamma-Gamma) time for a large customer base.

Simulates ``--customers`` customers (default 25,000) buying as BG/NBD and Gamma-Gamma have
it (r 0.25, alpha 30 days, a 0.8, b 2.5; spend Gamma(6, nu), nu ~ Gamma(4, 60 dollars)),
first buying over the first 12 weeks of a 78-week history, imports them as registrations
and payments, catches the ``metrics`` read model up (untimed), then times, best of
``--repeat``:

- *fit*: both fits alone, from the customers' (x, t_x, T, m_x) arrays;
- *predict*: ``engine.predict`` whole (read the purchases, summarise, fit, per customer);
- *cached*: ``engine.predict`` again (the fit kept, per-customer figures recomputed).

The baseline, on the same run and database, is *raw*: the driver alone reading the rows
``predict`` reads (``metrics_payments`` and the purchases of ``metrics_mrr``). Usage::

    python bench/predict_bench.py [--customers 25000] [--stores sqlite,postgres]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--repeat 3]

Results are recorded in docs/performance.md ("Prediction").
"""

from __future__ import annotations

import argparse
import os
import tempfile
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any

import numpy as np
import orjson
from metrics_bench import best

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.prediction import bgnbd, gamma_gamma

START = date(2024, 1, 1)
AS_OF = START + timedelta(weeks=78)


def simulate(customers: int, seed: int = 1) -> Iterator[bytes]:
    """JSON Lines: each customer registered and its payments, in time order per customer."""
    rng = np.random.default_rng(seed)
    horizon = (AS_OF - START).days
    for i in range(customers):
        c = f"sim{i:06d}"
        born = float(rng.uniform(0, 84))
        rate, death = rng.gamma(0.25, 1 / 30), rng.beta(0.8, 2.5)
        nu = rng.gamma(4, 1 / 60)
        at = datetime.combine(START, clock(), UTC) + timedelta(days=born)
        yield orjson.dumps({"type": "customer_registered", "customer": c,
                            "at": at.isoformat(), "actor": "bench", "team": "marketing",
                            "name": c, "segment": "retail", "source": "sim"})
        t = born
        while t < horizon:
            when = datetime.combine(START, clock(12), UTC) + timedelta(days=int(t))
            yield orjson.dumps({"type": "payment", "customer": c, "at": when.isoformat(),
                                "actor": "bench", "team": "sales", "currency": "USD",
                                "amount": max(1, round(100 * rng.gamma(6, 1 / nu)))})
            if t > born and rng.random() < death:  # a repeat purchase may be the last
                break
            t += rng.exponential(1 / rate) if rate > 0 else horizon


def raw(engine: LifecycleEngine) -> None:
    read = engine.projections.read
    read.fetchall("SELECT customer, at, amount, currency FROM metrics_payments")
    read.fetchall("SELECT customer, at FROM metrics_mrr WHERE kind = 'purchase'")


def bench(url: str, lines: list[bytes], repeat: int) -> dict[str, Any]:
    with LifecycleEngine(url) as engine:
        imported = engine.import_lines(lines)
        engine.projections.catch_up(["metrics"])
        p = engine.predict(AS_OF)
        s_fit = p.model
        from lifecycle_es.reading.prediction.queries import Predictor

        fitted = Predictor(engine.reader._read).fitted(AS_OF, "day")
        s = fitted.summary
        repeat_mask = s.valued > 0

        def fit_only() -> None:
            bgnbd.fit(s.frequency, s.recency, s.T)
            gamma_gamma.fit(s.valued[repeat_mask], s.monetary[repeat_mask])

        from lifecycle_es.reading.prediction import queries

        def uncached() -> None:
            queries._fits.clear()
            engine.predict(AS_OF)

        return {
            "events": imported.events, "customers": s_fit.customers,
            "repeaters": int(np.count_nonzero(s.frequency)),
            "raw": best(lambda: raw(engine), repeat),
            "fit": best(fit_only, repeat), "predict": best(uncached, repeat),
            "cached": best(lambda: engine.predict(AS_OF), repeat),
            "params": (round(s_fit.r, 3), round(s_fit.alpha, 2), round(s_fit.a, 3),
                       round(s_fit.b, 3)), "converged": s_fit.converged,
        }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=25_000)
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--postgres", default=os.environ.get(
        "LIFECYCLE_ES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    lines = list(simulate(args.customers))
    for kind in args.stores.split(","):
        if kind == "sqlite":
            folder = tempfile.mkdtemp()
            url = f"sqlite:///{folder}/predict.db"
        else:
            url = f"{args.postgres}?schema=predict_{uuid.uuid4().hex[:8]}"
        r = bench(url, lines, args.repeat)
        print(f"{kind}: {r['customers']:,} customers ({r['repeaters']:,} with a repeat), "
              f"{r['events']:,} events; params {r['params']} converged={r['converged']}")
        print(f"  raw read {r['raw']:.3f} s | fits alone {r['fit']:.3f} s | predict "
              f"{r['predict']:.3f} s ({r['predict'] / r['raw']:.1f}x raw) | cached "
              f"{r['cached']:.3f} s")
        if kind != "sqlite":
            import psycopg

            from lifecycle_es.engine import StoreURL

            schema = url.split("schema=")[1]
            with psycopg.connect(StoreURL.parse(args.postgres).psycopg_conninfo(),
                                 autocommit=True) as conn:
                for s in (schema, f"{schema}_read"):
                    conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


if __name__ == "__main__":
    main()
