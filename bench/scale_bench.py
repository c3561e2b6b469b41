"""The scale run (issue 30): one large history imported, rebuilt, caught up, verified, queried.

On one store (``--store sqlite`` or ``postgres``), in this order, each step in a fresh
process whose time and peak RSS (its own and its largest child's) are reported:

1. *history*: the demo generator over ``--customers`` customers, ``--pace`` times as busy
   (``lifecycle_es.demo.write_jsonl``: 50,000 customers give 1,135,334 events at pace 1,
   8.33M at 13.7 and 9,981,993 at 16.8), written as JSON Lines (or ``--file``, made earlier);
2. *import*: the file into a new store as ``lifecycle-es import`` does (the child of
   ``bench/import_bench.py``): seconds, events/s, peak RSS of the importing process and of
   its writer process;
3. *rebuild*: ``lifecycle-es projections rebuild --jobs 1``, then ``--jobs 2`` (every read
   model, from the whole log);
4. *catch-up*: a backlog of ``--backlog`` new events (check-ins, touchpoints and NPS answers
   of the same customers, after the history) imported, then the read models caught up
   (``engine.projections.catch_up()``);
5. *verify*: ``lifecycle-es audit verify``;
6. *queries*: in the library (one process, warm, median of ``--calls``) and as CLI commands
   (a new process each, median of 3, ``--no-catch-up``): stage counts; one customer's page
   (its stage, timeline and health); a page of gaps (50); the metrics of a year; the HTML
   report;
7. *disk*: the store's size by table and index (SQLite ``dbstat``, PostgreSQL
   ``pg_relation_size``): events, digests, read models, indexes, and per event.

The figures go to stdout and, as JSON, to ``--out``. Usage::

    python bench/scale_bench.py --store sqlite --pace 1        # 1.14M events
    python bench/scale_bench.py --store postgres --pace 16.8   # 10M events
    python bench/scale_bench.py --store sqlite --file /tmp/h10m.jsonl --work /tmp/scale

Recorded in docs/performance.md ("Scale").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from import_bench import UNTIL, _spent, import_run, server_cpu

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain.stage_model import PRESETS
from lifecycle_es.stores.chain import (
    DIGESTS_TABLE,
    HEADS_TABLE,
    SETTINGS_HISTORY_TABLE,
    SETTINGS_TABLE,
)
from lifecycle_es.stores.imports import IMPORTS_TABLE
from lifecycle_es.stores.key_table import MASTER_TABLE
from lifecycle_es.stores.keys import KEYS_TABLE
from lifecycle_es.stores.snapshot_table import SQLITE_TABLE
from lifecycle_es.stores.url import StoreURL

YEAR = (datetime(2025, 11, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC))
START, END = (d.date().isoformat() for d in YEAR)
CLI = [sys.executable, "-m", "lifecycle_es"]
#: the event store's tables besides the events (SQLite keeps the read models in its file)
WRITE_SIDE = {DIGESTS_TABLE, HEADS_TABLE, SETTINGS_TABLE, SETTINGS_HISTORY_TABLE, IMPORTS_TABLE,
              MASTER_TABLE, KEYS_TABLE, SQLITE_TABLE}


# ----------------------------------------------------------------- measured processes

def measured(argv: list[str], env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``argv`` under a small wrapper process: its seconds, the CPU seconds of it and
    its workers (``cpu_s``; and of this machine's PostgreSQL server meanwhile, ``server_cpu_s``:
    comparable when other work shares the machine) and the peak RSS (MB) of the largest
    process it ran (the command, or one of its workers: Linux keeps the largest descendant's
    peak in ``RUSAGE_CHILDREN``)."""
    before = server_cpu()
    done = subprocess.run([sys.executable, __file__, "--child-run", json.dumps(argv)],
                          stdout=subprocess.PIPE, check=True, env=env)
    out = dict(json.loads(done.stdout.splitlines()[-1]))
    spent = _spent(before)
    if spent is not None:
        out["server_cpu_s"] = spent
    return out


def child_run(argv: list[str]) -> None:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(json.dumps({"seconds": seconds, "cpu_s": usage.ru_utime + usage.ru_stime,
                      "peak_mb": usage.ru_maxrss / 1024}))


def python_step(code: str, *args: str) -> dict[str, float]:
    """:func:`measured` for a few lines of Python run with ``args`` as ``sys.argv[1:]``."""
    return measured([sys.executable, "-c", code, *args])


CATCH_UP = """
import sys
from lifecycle_es import LifecycleEngine
with LifecycleEngine(sys.argv[1]) as engine:
    engine.projections.catch_up()
"""


# ---------------------------------------------------------------------------- steps

def history(args: argparse.Namespace, work: str) -> str:
    if args.file:
        return str(args.file)
    from lifecycle_es.demo import write_jsonl

    path = os.path.join(work, "history.jsonl")
    started = time.perf_counter()
    lines = write_jsonl(path, args.customers, args.seed, PRESETS["classic"], UNTIL,
                        pace=args.pace)
    print(f"history: {lines:,} lines, {os.path.getsize(path) / 1e6:,.0f} MB, "
          f"{args.customers:,} customers, pace {args.pace} "
          f"({time.perf_counter() - started:.0f}s to generate)")
    return path


def backlog(path: str, customers: int, events: int) -> str:
    """``events`` new commands of the history's customers, after it: check-ins,
    touchpoints and NPS answers, round-robin over the customers."""
    out = path + ".backlog.jsonl"
    at = datetime(UNTIL.year, UNTIL.month, UNTIL.day, tzinfo=UTC)
    with open(out, "wb") as f:
        for n in range(events):
            key = f"cus-{n % customers + 1:06d}"
            when = (at + timedelta(seconds=n)).isoformat()
            kind = n % 3
            cmd: dict[str, Any] = {"customer": key, "at": when, "actor": "ann.silva",
                                   "team": "success"}
            if kind == 0:
                cmd.update(type="check_in", notes="quarterly call")
            elif kind == 1:
                cmd.update(type="touchpoint", channel="email", campaign_id=None, notes=None)
            else:
                cmd.update(type="nps_answer", score=n % 11, comment=None)
            f.write(orjson.dumps(cmd) + b"\n")
    return out


def schema(url: str) -> str:
    """The PostgreSQL schema of a store URL."""
    return StoreURL.parse(url).schema


def head(url: str) -> int:
    """The events in the store."""
    with LifecycleEngine(url) as engine:
        return int(engine.writer.recorder.max_notification_id() or 0)


def cli(url: str, *words: str) -> list[str]:
    return [*CLI, "--store", url, *words]


def library_queries(url: str, calls: int) -> dict[str, float]:
    """Median seconds of each query in this (warm) process, read models as they are."""
    from lifecycle_es.config import Config
    from lifecycle_es.reading.projection import queries
    from lifecycle_es.report import build_report

    cfg = Config()
    engine = LifecycleEngine(url)
    try:
        engine.projections.queries_catch_up = False
        one = engine.health(config=cfg, limit=1)[0].customer
        asked: dict[str, Callable[[], Any]] = {
            "stage counts": lambda: queries.stage_counts(engine.projections, catch_up=False),
            "customer: state": lambda: engine.audit.state(one),
            "customer: timeline": lambda: engine.audit.timeline(one),
            "customer: health": lambda: engine.health(one, config=cfg),
            "gaps page (50)": lambda: engine.gaps(limit=50, config=cfg),
            "metrics (1 year)": lambda: engine.metrics.summary(START, END),
            "report (HTML)": lambda: build_report(engine, *YEAR, YEAR[1], config=cfg),
        }
        out = {}
        for name, call in asked.items():
            call()  # warm
            times = []
            for _ in range(calls if not name.startswith("report") else max(1, calls // 5)):
                started = time.perf_counter()
                call()
                times.append(time.perf_counter() - started)
            out[name] = statistics.median(times)
        return out
    finally:
        engine.close()


def cli_queries(url: str, work: str) -> dict[str, float]:
    """Median seconds of 3 runs of each command (a new process each: start-up included)."""
    engine = LifecycleEngine(url)
    try:
        one = engine.health(limit=1)[0].customer
    finally:
        engine.close()
    commands = {
        "stage counts": cli(url, "stage", "--no-catch-up"),
        "customer: stage": cli(url, "stage", "--customer", one, "--no-catch-up"),
        "customer: timeline": cli(url, "audit", "customer", one),
        "customer: health": cli(url, "health", "--customer", one, "--no-catch-up"),
        "gaps (all: the CLI has no pages)": cli(url, "gaps", "--no-catch-up", "--json"),
        "metrics (1 year)": cli(url, "metrics", "--from", START, "--to", END,
                                "--no-catch-up"),
        "report (HTML)": cli(url, "report", "--out", os.path.join(work, "report.html"),
                             "--from", START, "--to", END, "--no-catch-up"),
    }
    out = {}
    for name, argv in commands.items():
        times = []
        for _ in range(3):
            started = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        out[name] = statistics.median(times)
    return out


def disk(url: str, db: str | None) -> dict[str, int]:
    """Bytes on disk per table and index (``index:`` names) of the store and its read
    models."""
    if db is not None:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            kinds = dict(conn.execute("SELECT name, type FROM sqlite_master").fetchall())
            rows = conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        return {(f"index:{n}" if kinds.get(n, "index") == "index" else n): int(b)
                for n, b in rows}
    import psycopg

    store = StoreURL.parse(url)
    with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT n.nspname || '.' || c.relname, c.relkind, pg_total_relation_size(c.oid) "
            "- pg_indexes_size(c.oid) FROM pg_class c JOIN pg_namespace n ON "
            "n.oid = c.relnamespace WHERE n.nspname IN (%s, %s) AND c.relkind = 'r' "
            "UNION ALL SELECT n.nspname || '.' || c.relname, c.relkind, "
            "pg_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n ON "
            "n.oid = c.relnamespace WHERE n.nspname IN (%s, %s) AND c.relkind = 'i'",
            (store.schema, f"{store.schema}_read") * 2).fetchall()
    return {(f"index:{n}" if k == "i" else n): int(b) for n, k, b in rows}


def disk_summary(sizes: dict[str, int], events_table: str, read_schema: str | None,
                 events: int) -> dict[str, float]:
    """Bytes per event: the events table, the digests, the other tables of the event store
    (keys, snapshots, settings, ...), the read models' tables, all indexes, in all."""
    def table(name: str) -> str:
        return name.split(".", 1)[-1]

    tables = {n: b for n, b in sizes.items() if not n.startswith("index:")}
    if read_schema is not None:
        read = {n for n in tables if n.startswith(read_schema + ".")}
    else:  # SQLite: one file; the read models' tables are those the engine did not make
        read = {n for n in tables if table(n) not in WRITE_SIDE and table(n) != events_table
                and not n.startswith("sqlite_")}
    events_b = sum(b for n, b in tables.items() if table(n) == events_table)
    digests = sum(b for n, b in tables.items() if table(n) == DIGESTS_TABLE)
    read_b = sum(tables[n] for n in read)
    groups = {
        "events": events_b, "digests": digests,
        "other event store": sum(tables.values()) - events_b - digests - read_b,
        "read models": read_b,
        "indexes": sum(b for n, b in sizes.items() if n.startswith("index:")),
        "total": sum(sizes.values()),
    }
    return {k: v / events for k, v in groups.items()}


# ----------------------------------------------------------------------------- main

def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    ap.add_argument("--postgres", default=os.environ.get(
        "LIFECYCLE_ES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument("--pace", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--file", help="a history made earlier (JSON Lines) instead")
    ap.add_argument("--imported", metavar="URL", help="a store that holds the history "
                    "already (no read models): skip the history and the import, start at the "
                    "rebuild (for --file's backlog: give --file too); the store is kept")
    ap.add_argument("--jobs", type=lambda v: [int(j) for j in v.split(",") if j],
                    default=[1, 2], help="the rebuilds' --jobs, in order (default 1,2; "
                    "'' none: with --imported, the store's read models as they are)")
    ap.add_argument("--backlog", type=int, default=100_000, help="new events for the "
                    "catch-up (0: stop after the rebuilds)")
    ap.add_argument("--calls", type=int, default=10)
    ap.add_argument("--work", help="folder for the history and the SQLite store (kept); "
                    "default: a temporary one, removed")
    ap.add_argument("--keep", action="store_true", help="keep the store afterwards")
    ap.add_argument("--out", help="write the figures as JSON to this file")
    ap.add_argument("--child-run", help=argparse.SUPPRESS)  # see measured()
    args = ap.parse_args()
    if args.child_run:
        child_run(json.loads(args.child_run))
        return

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, "
          f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, "
          f"{platform.system()} {platform.release()}, Python {platform.python_version()}, "
          f"load {os.getloadavg()[0]:.1f}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    work = args.work or tempfile.mkdtemp(prefix="scale_bench_")
    os.makedirs(work, exist_ok=True)
    db: str | None
    if args.imported:
        url = args.imported
        db = StoreURL.parse(url).path if url.startswith("sqlite") else None
        args.keep = True
    elif args.store == "sqlite":
        db = os.path.join(work, f"scale_{uuid.uuid4().hex[:6]}.db")
        url = f"sqlite:///{db}?timeout=120"  # a busy machine: a step's lock waits longer
    else:
        db = None
        sep = "&" if "?" in args.postgres else "?"
        url = f"{args.postgres}{sep}schema=scale_{uuid.uuid4().hex[:8]}&timeout=120"
    figures: dict[str, Any] = {"store": args.store, "customers": args.customers,
                               "pace": args.pace}
    try:
        path = history(args, work)
        if not args.imported:
            before = server_cpu()
            run = import_run(url, path, "classic", None)
            spent = _spent(before) if db is None else None
        events = head(url)
        figures["events"] = events
        if not args.imported:
            figures["import"] = {"seconds": run.seconds, "events_per_s": events / run.seconds,
                                 "cpu_s": run.cpu_engine + run.cpu_writer,
                                 "server_cpu_s": spent, "peak_mb": run.peak_mb,
                                 "writer_peak_mb": run.writer_peak_mb}
            print(f"import: {events:,} events in {run.seconds:.0f}s, "
                  f"{events / run.seconds:,.0f} ev/s, CPU {run.cpu_engine:.0f} + "
                  f"{run.cpu_writer:.0f} s; peak RSS {run.peak_mb:,.0f} MB importing, "
                  f"{run.writer_peak_mb:,.0f} MB writer process")
        for jobs in args.jobs:
            r = measured(cli(url, "projections", "rebuild", "--jobs", str(jobs)))
            figures[f"rebuild_jobs{jobs}"] = r
            print(f"rebuild --jobs {jobs}: {r['seconds']:.0f}s ({events / r['seconds']:,.0f} "
                  f"ev/s), CPU {r['cpu_s']:.0f} s, peak RSS {r['peak_mb']:,.0f} MB (largest "
                  "process)")
        if not args.backlog:
            return
        more = backlog(path, args.customers, args.backlog)
        imported = measured(cli(url, "import", more))
        r = python_step(CATCH_UP, url)
        figures["catch_up"] = {**r, "events": args.backlog, "import_seconds":
                               imported["seconds"]}
        print(f"catch-up of {args.backlog:,} new events: {r['seconds']:.1f}s "
              f"({args.backlog / r['seconds']:,.0f} ev/s), peak RSS {r['peak_mb']:,.0f} MB "
              f"(their import: {imported['seconds']:.1f}s)")
        r = measured(cli(url, "audit", "verify"))
        figures["verify"] = r
        print(f"audit verify: {r['seconds']:.0f}s, CPU {r['cpu_s']:.0f} s, peak RSS "
              f"{r['peak_mb']:,.0f} MB")
        figures["library"] = library_queries(url, args.calls)
        figures["cli"] = cli_queries(url, work)
        print("queries (median; library: warm, one process; CLI: a new process each):")
        for name, seconds in figures["library"].items():
            print(f"  library {name:<34} {seconds * 1000:9.1f} ms")
        for name, seconds in figures["cli"].items():
            print(f"  CLI     {name:<34} {seconds:9.2f} s")
        events = head(url)
        with LifecycleEngine(url) as engine:
            table = str(engine.writer.recorder.events_table_name)  # type: ignore[attr-defined]
        sizes = disk(url, db)
        read_schema = None if db else f"{schema(url)}_read"
        figures["disk_bytes"] = sizes
        figures["disk_per_event"] = per = disk_summary(sizes, table, read_schema, events)
        print("disk per event: " + ", ".join(f"{k} {v:,.0f} B" for k, v in per.items())
              + f" ({sum(sizes.values()) / 2**30:.2f} GiB for {events:,} events)")
    finally:
        if args.out:
            with open(args.out, "w") as f:
                json.dump(figures, f, indent=1, default=str)
        if not args.keep:
            if db is None:
                from import_bench import drop_schema

                drop_schema(url)
                drop_schema(url.replace(schema(url), schema(url) + "_read"))
            elif not args.work:
                shutil.rmtree(work, ignore_errors=True)
            else:
                for suffix in ("", "-wal", "-shm"):
                    with contextlib.suppress(OSError):
                        os.remove(db + suffix)


if __name__ == "__main__":
    main()
