"""Rebuild speed against the raw read+decode rate of the same log, on SQLite and PostgreSQL.

For each store and each N (default 100k and 1M events):

1. *write* (a subprocess, skipped when the store already holds N events): the demo history
   (``lifecycle_es.demo.generate``), cut to its first N commands (a prefix of a valid history
   is valid), recorded with ``engine.record_many`` in chunks;
2. *measure* (a fresh subprocess per N, so peak RSS is the measurement's own):
   - raw: ``recorder.select_notifications`` in pages + ``mapper.to_domain_event`` of every
     event — the floor any replay pays;
   - rebuild: ``engine.projections.rebuild()`` (shadow tables, batched writes, swap) of
     issue 3's two read models (current_stage, handover_history), alternated with the raw
     pass ``--repeat`` times, the fastest of each kept (the machine is shared: alternating
     gives both sides the same conditions); then once of every built-in read model.

It prints events/s, the ratio rebuild/raw (target >= 0.5) and peak RSS (target: RSS at 1M
<= 1.2 x RSS at 100k). Usage::

    python bench/rebuild_bench.py [--sizes 100000,1000000] [--stores sqlite,postgres]
        [--postgres URL] [--batch-size 5000] [--repeat 3] [--keep] [--issue-models-only]

Stores are ``/tmp/lifecycle_rebuild_bench_<N>.db`` and PostgreSQL schema
``rebuild_bench_<N>``; ``--keep`` leaves them for the next run (else they are dropped).
Results are recorded in docs/performance.md ("Rebuild").
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

PG = os.environ.get("LIFECYCLE_ES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
UNTIL = date(2026, 11, 1)
ISSUE_MODELS = ["current_stage", "handover_history"]
WRITE_CHUNK = 100_000


def store_url(kind: str, n: int, pg: str, suffix: str = "") -> str:
    if kind == "sqlite":
        return f"sqlite:////tmp/lifecycle_rebuild_bench_{n}{suffix}.db"
    sep = "&" if "?" in pg else "?"
    return f"{pg}{sep}schema=rebuild_bench_{n}{suffix}"


def write(url: str, n: int, encrypt: bool = True) -> None:
    """Fill the store with the first ``n`` demo commands unless it already has them."""
    from lifecycle_es import LifecycleEngine
    from lifecycle_es.demo import generate, parse_all

    engine = LifecycleEngine(url, encrypt=encrypt)
    have = int(engine.recorder.max_notification_id() or 0)
    if have >= n:
        print(f"  {url}: already {have} events", file=sys.stderr)
        return
    if have:
        raise SystemExit(f"{url} has {have} events (< {n}): drop it first")
    customers = max(1, n // 18)
    commands = generate(customers, 7, engine.stage_model, UNTIL)
    while len(commands) < n:
        customers = int(customers * 1.3) + 1
        commands = generate(customers, 7, engine.stage_model, UNTIL)
    commands = commands[:n]
    started = time.perf_counter()
    for i in range(0, n, WRITE_CHUNK):
        engine.record_many(parse_all(commands[i:i + WRITE_CHUNK]))
    print(f"  wrote {n} events in {time.perf_counter() - started:.1f}s", file=sys.stderr)
    engine.close()


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def read_and_decode(engine: Any, batch: int) -> int:
    """The raw floor: every event read in pages and decoded; returns events read."""
    rec, to_domain = engine.recorder, engine.mapper.to_domain_event
    head = int(rec.max_notification_id() or 0)
    position, count = 0, 0
    while position < head:
        notes = rec.select_notifications(position + 1, batch, stop=head)
        for note in notes:
            to_domain(note)
        count += len(notes)
        position = notes[-1].id if notes else head
    return count


def fastest(func: Any, repeat: int) -> tuple[int, float]:
    """(events, seconds) of the fastest of ``repeat`` runs of ``func()`` -> events."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        events = func()
        runs.append((time.perf_counter() - started, events))
    seconds, events = min(runs)
    return events, seconds


def measure(url: str, batch: int, with_all: bool = True, repeat: int = 3,
            encrypt: bool = True) -> dict[str, Any]:
    """Raw read+decode rate, then rebuild rates (fastest of ``repeat`` runs each, alternated,
    so both sides see the same machine); peak RSS of this process."""
    from lifecycle_es import LifecycleEngine
    from lifecycle_es.reading.projection.docs import builtin_projections

    engine = LifecycleEngine(url, encrypt=encrypt)
    pm = engine.projections
    raw, issue = [], []
    for _ in range(repeat):
        raw.append(fastest(lambda: read_and_decode(engine, batch), 1))
        issue.append(fastest(lambda: pm.rebuild(ISSUE_MODELS, batch_size=batch), 1))
    (count, raw_s), (done_issue, issue_s) = min(raw, key=lambda r: r[1]), min(
        issue, key=lambda r: r[1])
    rss_issue = rss_mb()
    names = sorted(c.name for c in builtin_projections())
    all_eps = None
    if with_all:  # once: slow at 1M, and the ratio is far from the target anyway
        done_all, all_s = fastest(lambda: pm.rebuild(names, batch_size=batch), 1)
        all_eps = done_all / all_s
    engine.close()
    return {"events": count, "raw_s": raw_s, "raw_eps": count / raw_s,
            "all_models": names, "all_eps": all_eps, "issue_eps": done_issue / issue_s,
            "rss_issue_mb": rss_issue, "rss_peak_mb": rss_mb()}


def drop(url: str) -> None:
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(url.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        return
    import psycopg

    from lifecycle_es.stores.url import StoreURL

    s = StoreURL.parse(url)
    with psycopg.connect(s.psycopg_conninfo(), autocommit=True) as conn:
        for schema in (s.schema, f"{s.schema}_read"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def child(*args: str) -> str:
    proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=False)
    sys.stderr.write(proc.stderr)
    if proc.returncode:
        raise SystemExit(f"{args[0]} failed ({proc.returncode})")
    return proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--postgres", default=PG)
    ap.add_argument("--batch-size", type=int, default=5000)
    ap.add_argument("--repeat", type=int, default=3,
                    help="raw pass and issue-model rebuild: fastest of this many, alternated")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--issue-models-only", action="store_true",
                    help="skip the rebuild of every built-in read model")
    ap.add_argument("--encryption", default="on,off",
                    help="on, off or on,off: personal fields encrypted per customer or not")
    ap.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--write", help=argparse.SUPPRESS)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.write:
        write(a.write, a.n, encrypt=not a.plain)
        return
    if a.measure:
        print(json.dumps(measure(a.measure, a.batch_size, not a.issue_models_only, a.repeat,
                                 encrypt=not a.plain)))
        return
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"rebuild benchmark: sizes {sizes}, batch {a.batch_size}, python "
          f"{sys.version.split()[0]}")
    modes = a.encryption.split(",")
    for kind in a.stores.split(","):
        results = {}
        for n in sizes:
            by_mode = {}
            for mode in modes:
                url = store_url(kind, n, a.postgres, "" if mode == "on" else "_plain")
                plain = ["--plain"] if mode == "off" else []
                child("--write", url, "--n", str(n), *plain)
                r = json.loads(child("--measure", url, "--batch-size", str(a.batch_size),
                                     "--repeat", str(a.repeat), *plain,
                                     *(["--issue-models-only"] if a.issue_models_only else [])))
                by_mode[mode] = r
                every = (f"  rebuild all ({len(r['all_models'])} models) "
                         f"{r['all_eps']:>9,.0f} ev/s = {r['all_eps'] / r['raw_eps']:.2f}x raw"
                         ) if r["all_eps"] else ""
                print(f"{kind:8} N={r['events']:>9,} encryption {mode:3}  raw read+decode "
                      f"{r['raw_eps']:>9,.0f} ev/s{every}"
                      f"  rebuild current_stage+handover_history {r['issue_eps']:>9,.0f} ev/s"
                      f" = {r['issue_eps'] / r['raw_eps']:.2f}x raw"
                      f"  peak RSS {r['rss_peak_mb']:.0f} MB (after the issue models "
                      f"{r['rss_issue_mb']:.0f} MB)",
                      flush=True)
                if not a.keep:
                    drop(url)
            if {"on", "off"} <= set(by_mode):
                on, off = by_mode["on"], by_mode["off"]
                key = "all_eps" if on["all_eps"] else "issue_eps"
                print(f"{kind:8} N={n:>9,} encryption costs the rebuild "
                      f"{100 * (off[key] / on[key] - 1):+.0f}% ({key}), read+decode "
                      f"{100 * (off['raw_eps'] / on['raw_eps'] - 1):+.0f}%", flush=True)
            results[n] = by_mode[modes[0]]
        if len(sizes) > 1:
            lo, hi = results[min(sizes)], results[max(sizes)]
            print(f"{kind:8} peak RSS N={max(sizes):,} / N={min(sizes):,}: "
                  f"{hi['rss_peak_mb'] / lo['rss_peak_mb']:.2f}x", flush=True)

if __name__ == "__main__":
    main()
