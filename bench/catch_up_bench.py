"""Catch-up of a whole backlog against a rebuild of the same log, SQLite and PostgreSQL.

For each store and each N (default 100k and 500k events) the demo history is written once
(``rebuild_bench.py``'s writer), then, ``--repeat`` times, alternated, each in a fresh
subprocess (so its peak RSS is its own):

- *catch-up*: the read models are dropped (never built), then ``engine.projections.catch_up()``
  of every built-in read model: the backlog is the whole log, as after an import;
- *rebuild*: ``engine.projections.rebuild(jobs=1)`` of every built-in read model (what
  ``projections rebuild --jobs 1`` does).

It prints, for each, events per CPU second of the process (user + system; PostgreSQL's server
is not counted, on either side), wall seconds and peak RSS, then the ratios catch-up /
rebuild, and the largest error of the ETA a linear estimate shows during the catch-up (from
10% to 90% done) against the real remaining time, of the whole work and of the replay (the
progress counted in events; the indexes built after it report their own). ``--batches``
also measures the catch-up in batches into the live tables (the path of a small backlog)
for comparison. Usage::

    python bench/catch_up_bench.py [--sizes 100000,500000] [--stores sqlite,postgres]
        [--postgres URL] [--repeat 2] [--batches] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rebuild_bench import PG, drop, store_url, write

NAME = "catch_up_bench"


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def reset(url: str) -> None:
    """Drop every read model of the store: the next catch-up starts from an empty state."""
    from lifecycle_es import LifecycleEngine
    from lifecycle_es.reading.projection.machinery import SHADOW

    engine = LifecycleEngine(url)
    read = engine.projections.read
    if read.dialect == "postgresql":
        read.execute(f'DROP SCHEMA "{read.schema}" CASCADE')
    else:
        for p in engine.projections.projections.values():
            for t in p.tables:
                read.drop_table(t.name)
                read.drop_table(t.name + SHADOW)
        read.drop_table("projection_state")
        read.drop_table("projection_errors")
    engine.close()


def measure(url: str, what: str) -> dict[str, Any]:
    """One run of ``what`` (catch-up, batches or rebuild) in this process."""
    from lifecycle_es import LifecycleEngine

    if what != "rebuild":
        reset(url)
    engine = LifecycleEngine(url)
    pm = engine.projections
    if what == "batches":
        pm.rebuild_backlog = 1 << 62  # never by a rebuild
    seen: list[tuple[float, int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((time.perf_counter(), done, total))

    cpu, started = _cpu(), time.perf_counter()
    if what == "rebuild":
        events = pm.rebuild(jobs=1, progress=progress)
    else:
        events = pm.catch_up(progress=progress)
    ended = time.perf_counter()
    out = {"what": what, "events": events, "cpu_s": _cpu() - cpu, "wall_s": ended - started,
           "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "eta_error": eta_error(seen, started, ended),
           # the ETA shown refers to the replay (events); indexes report their own progress
           "eta_error_replay": eta_error(seen, started, replay_end(seen, ended))}
    engine.close()
    return out


def replay_end(seen: list[tuple[float, int, int]], ended: float) -> float:
    """When the progress in events first reached its total (the end of the replay)."""
    return next((at for at, done, total in seen if total and done >= total), ended)


def eta_error(seen: list[tuple[float, int, int]], started: float, ended: float) -> float | None:
    """The largest relative error of a linear ETA (elapsed x left / done) between 10% and
    90% done, against the real time left."""
    errors = []
    for at, done, total in seen:
        if total and 0.1 <= done / total <= 0.9 and ended > at:
            eta = (at - started) * (total - done) / done
            errors.append(abs(eta - (ended - at)) / (ended - at))
    return max(errors) if errors else None


def child(*args: str) -> dict[str, Any]:
    import subprocess

    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=False)
    if proc.returncode:
        sys.stderr.write(proc.stderr[-3000:])
        raise SystemExit(f"{args} failed ({proc.returncode})")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,500000")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--postgres", default=PG)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--batches", action="store_true",
                    help="also the catch-up in batches into the live tables")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--what", help=argparse.SUPPRESS)
    ap.add_argument("--write", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.write:
        write(a.write, a.n)
        print("{}")
        return
    if a.measure:
        print(json.dumps(measure(a.measure, a.what)))
        return
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"catch-up benchmark: sizes {sizes}, repeat {a.repeat}, python "
          f"{sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}", flush=True)
    kinds = ["catch-up", "rebuild", *(["batches"] if a.batches else [])]
    for kind in a.stores.split(","):
        for n in sizes:
            url = store_url(kind, n, a.postgres, name=NAME)
            child("--write", url, "--n", str(n))
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in kinds}
            for _ in range(a.repeat):
                for what in kinds:
                    runs[what].append(child("--measure", url, "--what", what))
            best = {w: min(rs, key=lambda r: r["cpu_s"]) for w, rs in runs.items()}
            for w, r in best.items():
                eta = "" if r["eta_error"] is None else (
                    f", ETA error <= {r['eta_error']:.0%} of the whole, "
                    f"<= {r['eta_error_replay']:.0%} of the replay")
                print(f"{kind:8} N={n:>7,} {w:9} {r['events'] / r['cpu_s']:>8,.0f} events/CPU s "
                      f"({r['cpu_s']:.1f} CPU s, {r['wall_s']:.1f} s), peak RSS "
                      f"{r['rss_mb']:.0f} MB{eta}", flush=True)
            c, b = best["catch-up"], best["rebuild"]
            print(f"{kind:8} N={n:>7,} catch-up / rebuild: "
                  f"{(c['events'] / c['cpu_s']) / (b['events'] / b['cpu_s']):.2f}x events per "
                  f"CPU s, {c['rss_mb'] / b['rss_mb']:.2f}x peak RSS", flush=True)
            if not a.keep:
                drop(url)


if __name__ == "__main__":
    main()
