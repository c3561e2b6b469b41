"""Rebuild speed against the raw read+decode rate and the physical limit, SQLite and PostgreSQL.

For each store and each N (default 100k and 1M events):

1. *write* (a subprocess, skipped when the store already holds N events): the demo history
   (``lifecycle_es.demo.generate``), cut to its first N commands (a prefix of a valid history
   is valid), recorded with ``engine.record_many`` in chunks;
2. *measure* (a fresh subprocess per N, so peak RSS is the measurement's own):
   - raw: ``recorder.select_notifications`` in pages + ``mapper.to_domain_event`` of every
     event — the floor any replay pays;
   - rebuild: ``engine.projections.rebuild()`` (shadow tables, batched writes, swap) of
     issue 3's two read models (current_stage, handover_history; skipped with
     ``--no-issue-models``) and of every built-in read model once per ``--jobs`` value,
     alternated with the raw pass ``--repeat`` times, the fastest of each kept (the machine
     is shared: alternating gives both sides the same conditions);
3. *limit* (a fresh subprocess, ``--repeat`` times, fastest kept): the physical limit — the
   final rows of every built-in read model, read back from the live tables, written by the
   driver alone into index-free tables (SQLite ``executemany``, PostgreSQL ``COPY``), then the
   same primary keys and secondary indexes built: raw read+decode + this write is what any
   rebuild must at least do.

It prints events/s, the ratios rebuild/raw and rebuild/(raw + limit write), rows per event
and peak RSS (this process, and the largest worker of ``--jobs`` > 1). Usage::

    python bench/rebuild_bench.py [--sizes 100000,1000000] [--stores sqlite,postgres]
        [--postgres URL] [--batch-size 5000] [--repeat 3] [--jobs 1,2] [--keep]
        [--issue-models-only] [--no-issue-models] [--encryption on,off] [--name NAME]

Stores are ``/tmp/lifecycle_<NAME>_<N>.db`` and PostgreSQL schema ``<NAME>_<N>`` (NAME
``rebuild_bench``); ``--keep`` leaves them for the next run (else they are dropped).
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


def store_url(kind: str, n: int, pg: str, suffix: str = "", name: str = "rebuild_bench") -> str:
    if kind == "sqlite":
        return f"sqlite:////tmp/lifecycle_{name}_{n}{suffix}.db"
    sep = "&" if "?" in pg else "?"
    return f"{pg}{sep}schema={name}_{n}{suffix}"


def write(url: str, n: int, encrypt: bool = True) -> None:
    """Fill the store with the first ``n`` demo commands unless it already has them."""
    from lifecycle_es import LifecycleEngine
    from lifecycle_es.demo import generate, parse_all

    engine = LifecycleEngine(url, encrypt=encrypt)
    have = int(engine.writer.recorder.max_notification_id() or 0)
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
    rec, to_domain = engine.writer.recorder, engine.writer.mapper.to_domain_event
    head = int(rec.max_notification_id() or 0)
    position, count = 0, 0
    while position < head:
        notes = rec.select_notifications(position + 1, batch, stop=head)
        for note in notes:
            to_domain(note)
        count += len(notes)
        position = notes[-1].id if notes else head
    return count


def physical_limit(url: str, names: list[str]) -> dict[str, Any]:
    """What any rebuild of ``names`` must at least write: the final rows of every table of
    those read models (read back from the live tables, not timed), written by the driver
    alone into a new table without any index (SQLite ``executemany`` in one transaction;
    PostgreSQL ``COPY``), then given the same primary key and secondary indexes, table by
    table (so only one table's rows are in memory). Returns the timed seconds and rows."""
    from lifecycle_es import LifecycleEngine
    from lifecycle_es.reading.projection.table import COLUMN_TYPES

    engine = LifecycleEngine(url, create=False)
    pm = engine.projections
    read, sqlite = pm.read, pm.read.dialect == "sqlite"
    seconds, rows_written, indexes = 0.0, 0, 0
    for name in names:
        for t in pm.projections[name].tables:
            cols = list(t.columns)
            rows = read.fetchall(f"SELECT {', '.join(cols)} FROM {t.name}")
            json_at = [i for i, c in enumerate(cols) if t.columns[c] == "json"]
            if json_at and not sqlite:  # the driver's own form of a jsonb value
                from psycopg.types.json import Jsonb

                rows = [tuple(Jsonb(v) if i in json_at and v is not None else v
                              for i, v in enumerate(row)) for row in rows]
            target = f"{t.name}__limit"
            read.execute(f"DROP TABLE IF EXISTS {target}")
            typed = ", ".join(f"{c} {COLUMN_TYPES[k][0 if sqlite else 1]}"
                              for c, k in t.columns.items())
            started = time.perf_counter()
            with read.transaction():
                read.execute(f"CREATE TABLE {target} ({typed})")
                if sqlite:
                    read.conn.executemany(f"INSERT INTO {target} VALUES "
                                          f"({', '.join('?' * len(cols))})", rows)
                else:
                    with read.conn.cursor() as cur, cur.copy(
                            f"COPY {target} ({', '.join(cols)}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
                read.execute(f"CREATE UNIQUE INDEX {target}_pk ON {target} "
                             f"({', '.join(t.key)})")
                for n, idx in enumerate(t.indexes):
                    read.execute(f"CREATE INDEX {target}_{n} ON {target} ({', '.join(idx)})")
            seconds += time.perf_counter() - started
            rows_written += len(rows)
            indexes += 1 + len(t.indexes)
            del rows
            read.execute(f"DROP TABLE {target}")
    engine.close()
    return {"write_s": seconds, "rows": rows_written, "indexes": indexes}


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
            encrypt: bool = True, jobs: tuple[int, ...] = (1, 2),
            issue_models: bool = True) -> dict[str, Any]:
    """Raw read+decode rate, then rebuild rates (fastest of ``repeat`` runs each, alternated,
    so both sides see the same machine); peak RSS of this process and of its workers."""
    from lifecycle_es import LifecycleEngine
    from lifecycle_es.reading.projection.docs import builtin_projections

    engine = LifecycleEngine(url, encrypt=encrypt)
    pm = engine.projections
    names = sorted(c.name for c in builtin_projections())
    raw: list[tuple[int, float]] = []
    issue: list[tuple[int, float]] = []
    every: dict[int, list[tuple[int, float]]] = {j: [] for j in jobs}
    for _ in range(repeat):
        raw.append(fastest(lambda: read_and_decode(engine, batch), 1))
        if issue_models:
            issue.append(fastest(lambda: pm.rebuild(ISSUE_MODELS, batch_size=batch), 1))
        for j in jobs if with_all else ():
            every[j].append(fastest(lambda j=j: pm.rebuild(names, batch_size=batch, jobs=j),
                                    1))
    count, raw_s = min(raw, key=lambda r: r[1])
    out: dict[str, Any] = {"events": count, "raw_s": raw_s, "raw_eps": count / raw_s,
                           "all_models": names, "rss_issue_mb": rss_mb()}
    if issue:
        done_issue, issue_s = min(issue, key=lambda r: r[1])
        out["issue_eps"] = done_issue / issue_s
    out["all"] = {j: {"seconds": min(s for _, s in runs), "runs": [s for _, s in runs],
                      "eps": count / min(s for _, s in runs)}
                  for j, runs in every.items() if runs}
    out["rows"] = sum(pm.read.count(t.name) for n in names for t in pm.projections[n].tables)
    engine.close()
    out["rss_peak_mb"] = rss_mb()
    out["rss_workers_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return out


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
                    help="raw pass and rebuilds: fastest of this many, alternated")
    ap.add_argument("--jobs", default="1,2",
                    help="rebuild every read model with each of these --jobs values")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--issue-models-only", action="store_true",
                    help="skip the rebuild of every built-in read model")
    ap.add_argument("--no-issue-models", action="store_true",
                    help="skip the rebuild of current_stage + handover_history alone")
    ap.add_argument("--encryption", default="on,off",
                    help="on, off or on,off: personal fields encrypted per customer or not")
    ap.add_argument("--name", default="rebuild_bench",
                    help="stores: /tmp/lifecycle_<name>_<N>.db and schema <name>_<N>")
    ap.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--write", help=argparse.SUPPRESS)
    ap.add_argument("--measure", help=argparse.SUPPRESS)
    ap.add_argument("--limit", help=argparse.SUPPRESS)
    ap.add_argument("--n", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args()
    jobs = tuple(int(j) for j in a.jobs.split(","))
    if a.write:
        write(a.write, a.n, encrypt=not a.plain)
        return
    if a.measure:
        print(json.dumps(measure(a.measure, a.batch_size, not a.issue_models_only, a.repeat,
                                 encrypt=not a.plain, jobs=jobs,
                                 issue_models=not a.no_issue_models)))
        return
    if a.limit:
        from lifecycle_es.reading.projection.docs import builtin_projections

        print(json.dumps(physical_limit(a.limit, sorted(c.name for c in
                                                         builtin_projections()))))
        return
    sizes = [int(s) for s in a.sizes.split(",")]
    print(f"rebuild benchmark: sizes {sizes}, batch {a.batch_size}, jobs {list(jobs)}, "
          f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average "
          f"{os.getloadavg()[0]:.1f}")
    modes = a.encryption.split(",")
    for kind in a.stores.split(","):
        results = {}
        for n in sizes:
            by_mode = {}
            for mode in modes:
                url = store_url(kind, n, a.postgres, "" if mode == "on" else "_plain", a.name)
                plain = ["--plain"] if mode == "off" else []
                child("--write", url, "--n", str(n), *plain)
                flags = [*plain, *(["--issue-models-only"] if a.issue_models_only else []),
                         *(["--no-issue-models"] if a.no_issue_models else [])]
                r = json.loads(child("--measure", url, "--batch-size", str(a.batch_size),
                                     "--repeat", str(a.repeat), "--jobs", a.jobs, *flags))
                if not a.issue_models_only:  # after the rebuilds: the live tables are final
                    limits = [json.loads(child("--limit", url)) for _ in range(a.repeat)]
                    r["limit"] = min(limits, key=lambda x: x["write_s"])
                    r["limit"]["runs"] = [x["write_s"] for x in limits]
                by_mode[mode] = r
                report(kind, mode, r)
                if not a.keep:
                    drop(url)
            if {"on", "off"} <= set(by_mode):
                on, off = by_mode["on"], by_mode["off"]
                key = "all" if on["all"] else "issue"
                a_on = on["all"][min(on["all"])]["eps"] if on["all"] else on["issue_eps"]
                a_off = off["all"][min(off["all"])]["eps"] if off["all"] else off["issue_eps"]
                print(f"{kind:8} N={n:>9,} encryption costs the rebuild "
                      f"{100 * (a_off / a_on - 1):+.0f}% ({key}), read+decode "
                      f"{100 * (off['raw_eps'] / on['raw_eps'] - 1):+.0f}%", flush=True)
            results[n] = by_mode[modes[0]]
        if len(sizes) > 1:
            lo, hi = results[min(sizes)], results[max(sizes)]
            print(f"{kind:8} peak RSS N={max(sizes):,} / N={min(sizes):,}: "
                  f"{hi['rss_peak_mb'] / lo['rss_peak_mb']:.2f}x (workers "
                  f"{hi['rss_workers_mb'] / max(lo['rss_workers_mb'], 1):.2f}x)", flush=True)
            for j in lo["all"]:
                print(f"{kind:8} --jobs {j}: rate N={max(sizes):,} / N={min(sizes):,}: "
                      f"{hi['all'][j]['eps'] / lo['all'][j]['eps']:.2f}x", flush=True)


def report(kind: str, mode: str, r: dict[str, Any]) -> None:
    """One store and size: raw, the limit, every rebuild and their ratios."""
    n, raw_s = r["events"], r["raw_s"]
    head = f"{kind:8} N={n:>9,} encryption {mode:3}"
    print(f"{head}  raw read+decode {r['raw_eps']:>9,.0f} ev/s ({raw_s:.2f}s)", flush=True)
    if "issue_eps" in r:
        print(f"{head}  rebuild current_stage+handover_history {r['issue_eps']:>9,.0f} ev/s "
              f"= {r['issue_eps'] / r['raw_eps']:.2f}x raw", flush=True)
    limit = r.get("limit")
    if limit:
        floor = raw_s + limit["write_s"]
        print(f"{head}  physical limit: write {limit['rows']:,} rows + {limit['indexes']} "
              f"indexes {limit['write_s']:.2f}s (runs {fmt(limit['runs'])}); read+decode+"
              f"write {n / floor:>9,.0f} ev/s ({floor:.2f}s)", flush=True)
    for j, a in r["all"].items():
        line = (f"{head}  rebuild all {len(r['all_models'])} --jobs {j} {a['eps']:>9,.0f} ev/s "
                f"({a['seconds']:.2f}s, runs {fmt(a['runs'])}) = {a['eps'] / r['raw_eps']:.2f}x "
                f"raw read+decode")
        if limit:
            line += f" = {(raw_s + limit['write_s']) / a['seconds']:.2f}x physical limit"
        print(line, flush=True)
    print(f"{head}  rows {r['rows']:,} ({r['rows'] / n:.2f} per event); peak RSS "
          f"{r['rss_peak_mb']:.0f} MB, workers {r['rss_workers_mb']:.0f} MB", flush=True)


def fmt(runs: list[float]) -> str:
    return " · ".join(f"{s:.2f}" for s in runs)


if __name__ == "__main__":
    main()
