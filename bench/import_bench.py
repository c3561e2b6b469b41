"""Import speed against the raw driver, on SQLite and PostgreSQL, in one run.

Generates a large demo history once (default 50,000 customers, about 1.2M events), then per
store:

1. *import*: ``engine.import_lines(iter_jsonl(FILE))`` on an empty store, the path of
   ``lifecycle-es import FILE``: read, parse and validate every line, apply the domain rules,
   encode the events, and write them (hash chain included) in one transaction — by a writer
   process while checking goes on. Like the command, it runs in a fresh process reading the
   generated JSON Lines file, not in the benchmark's own process, which holds gigabytes of
   freed heap after generating the history (and whose peak memory says nothing of the import).
   For comparison, the time of the check alone (parse + rules, no encoding or writing, one
   core) is measured once, on a ``memory://`` engine, after the imports;
2. *raw*: the same number of event-shaped rows, with the real encoded states read back from
   the store, inserted by the driver alone into an equivalent table: SQLite ``executemany``
   in one transaction, PostgreSQL binary ``COPY``.

It prints events/s for both and the ratio import/raw (target >= 0.5). Usage::

    python bench/import_bench.py [--customers 50000] [--stores sqlite,postgres]
        [--postgres postgresql://postgres@127.0.0.1:5432/test] [--profile FILE] [--repeat N]
        [--write-alone]

``--write-alone`` also writes the same rows, already encoded, through the import's write
path alone (``recorder.bulk()``: hash chain, events and digests, one transaction) into a
second new store: no parsing, no rules, no second process. No import can beat that rate, so
its ratio to raw is the most any import can reach on this store and machine.

``--repeat N`` runs import and raw N times per store, each pair on a new store, and prints the
median ratio: on a shared machine single runs of the same import vary by ±15%.

Results and their breakdown are recorded in docs/performance.md ("Import").
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
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
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import orjson

from lifecycle_es import LifecycleEngine
from lifecycle_es.commands import Command, parse_command
from lifecycle_es.demo import generate
from lifecycle_es.domain.stage_model import PRESETS
from lifecycle_es.engine import DEFAULT_WRITE_BATCH, iter_jsonl
from lifecycle_es.gcpause import without_cyclic_gc
from lifecycle_es.stores.chain import canonical_id
from lifecycle_es.stores.url import StoreURL

UNTIL = date(2026, 11, 1)
Row = tuple[Any, int, str, bytes]


@contextlib.contextmanager
def profiled(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    prof = cProfile.Profile()
    prof.enable()
    try:
        yield
    finally:
        prof.disable()
        prof.dump_stats(path)


@without_cyclic_gc  # as engine.import_lines does
def check_alone(lines: list[bytes], model: str) -> tuple[float, float]:
    """Seconds to parse every line, and to apply the rules (no encoding, no writing)."""
    engine = LifecycleEngine("memory://", stage_model=model)
    started = time.perf_counter()
    commands: list[Command] = [parse_command(line, n) for n, line in enumerate(lines, 1)]
    parsed = time.perf_counter()
    engine.record_many(commands, check_only=True)
    return parsed - started, time.perf_counter() - parsed


@dataclass
class ImportRun:
    """One import, as its process measured it."""

    seconds: float
    table: str  # the events table
    peak_mb: float  # the importing process's peak RSS (not its writer process's)
    cpu_engine: float  # CPU seconds (user + system) of the importing process in the import
    cpu_writer: float  # and of its writer process (0 when the import wrote in-process)
    writer_peak_mb: float  # the writer process's peak RSS (0 when there was none)


def import_run(url: str, path: str, model: str, profile: str | None,
               encrypt: bool = True) -> ImportRun:
    """Import the JSON Lines file ``path`` into the empty store at ``url`` in a fresh
    process (personal fields encrypted per customer, unless not ``encrypt``)."""
    done = subprocess.run(
        [sys.executable, __file__, "--child-import",
         json.dumps([url, path, model, profile, encrypt])],
        stdout=subprocess.PIPE, check=True)
    return ImportRun(**json.loads(done.stdout))


def child_import(url: str, path: str, model: str, profile: str | None,
                 encrypt: bool = True) -> None:
    """The child of :func:`import_run`: import, then print its :class:`ImportRun`."""
    engine = LifecycleEngine(url, stage_model=model, encrypt=encrypt)
    table = str(engine.writer.recorder.events_table_name)  # type: ignore[attr-defined]
    try:
        with profiled(profile):
            cpu = _cpu(resource.RUSAGE_SELF)
            started = time.perf_counter()
            engine.import_lines(iter_jsonl(path))
            seconds = time.perf_counter() - started
            cpu = _cpu(resource.RUSAGE_SELF) - cpu
    finally:
        engine.close()
    writer = _cpu(resource.RUSAGE_CHILDREN)  # the writer process, ended (start-up included)
    # Its peak RSS: it was forked from this process early, holding little, then exec'd.
    writer_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(asdict(ImportRun(seconds, table, peak_mb(), cpu, writer, writer_mb))))


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def server_cpu() -> float | None:
    """CPU seconds used so far by this machine's PostgreSQL processes, ended backends included
    (from ``/proc``; None where it cannot be read; a server on another machine gives 0)."""
    if not os.path.isdir("/proc"):
        return None
    total, tick = 0.0, os.sysconf("SC_CLK_TCK")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            with open(f"/proc/{pid}/stat") as f:
                name, _, rest = f.read().rpartition(")")
            if name.endswith("(postgres"):
                fields = rest.split()
                # its own utime and stime, and those of its ended children (the postmaster's
                # cutime and cstime hold the backends that have exited)
                total += sum(int(v) for v in fields[11:15]) / tick
    return total


def _spent(before: float | None) -> float | None:
    """Server CPU seconds since ``before`` (a :func:`server_cpu` reading), or None."""
    if before is None:
        return None
    after = server_cpu()
    return None if after is None else after - before


def peak_mb() -> float:
    """Peak resident memory of the calling process in MB, since it started its program.

    Linux's ``VmHWM`` where there is one: ``ru_maxrss`` would also count the pages a child
    shared with its parent between ``fork`` and ``exec`` (the parent here holds gigabytes).
    """
    with contextlib.suppress(OSError), open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def sqlite_rows(path: str, table: str) -> list[Row]:
    """The imported events as the SQLite store holds them, in log order."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        rows: list[Row] = conn.execute(
            f"SELECT originator_id, originator_version, topic, state FROM {table} "
            "ORDER BY rowid").fetchall()
    return rows


def sqlite_raw(path: str, table: str, rows: list[Row]) -> float:
    """Insert ``rows`` into a table like ``table`` (executemany, one transaction)."""
    conn = sqlite3.connect(path, isolation_level=None)
    ddl = conn.execute("SELECT sql FROM sqlite_master WHERE type IN ('table', 'index') AND "
                       "tbl_name=? AND sql IS NOT NULL", (table,)).fetchall()
    for (sql,) in ddl:
        conn.execute(sql.replace(table, "raw_events"))
    started = time.perf_counter()
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO raw_events (originator_id, originator_version, topic, state) "
                     "VALUES (?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    seconds = time.perf_counter() - started
    conn.close()
    return seconds


def postgres_rows(url: str, table_name: str) -> list[Row]:
    """The imported events as the PostgreSQL store holds them, in log order."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    store = StoreURL.parse(url)
    with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as conn:
        table = SQL("{}.{}").format(Identifier(store.schema), Identifier(table_name))
        rows: list[Row] = conn.execute(SQL(
            "SELECT originator_id, originator_version, topic, state FROM {} "
            "ORDER BY notification_id").format(table)).fetchall()
    return rows


def postgres_raw(url: str, table_name: str, rows: list[Row]) -> float:
    """COPY (binary) ``rows`` into a table like ``table_name``."""
    import psycopg
    from psycopg.sql import SQL, Identifier

    store = StoreURL.parse(url)
    with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as conn:
        table = SQL("{}.{}").format(Identifier(store.schema), Identifier(table_name))
        raw = SQL("{}.{}").format(Identifier(store.schema), Identifier("raw_events"))
        conn.execute(SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(raw, table))
        started = time.perf_counter()
        copy_sql = SQL("COPY {} (originator_id, originator_version, topic, state) "
                       "FROM STDIN (FORMAT BINARY)").format(raw)
        with conn.transaction(), conn.cursor() as cur, cur.copy(copy_sql) as copy:
            copy.set_types(["uuid", "int8", "text", "bytea"])
            for row in rows:
                copy.write_row(row)
        seconds = time.perf_counter() - started
    return seconds


def write_alone(rows: list[Row], into: str) -> float:
    """Seconds to write ``rows`` (as the store holds them, in log order) again through the
    import's write path alone: ``recorder.bulk()`` (hash chain, events and digests, one
    transaction, batches of ``DEFAULT_WRITE_BATCH``) into the new, empty store ``into``.
    No parsing, no rules, no second process: an upper bound on the import's rate."""
    chain_rows = [(canonical_id(agg), version, topic, state) for agg, version, topic, state
                  in rows]
    target = LifecycleEngine(into)
    try:
        started = time.perf_counter()
        with target.writer.recorder.bulk() as write:  # type: ignore[attr-defined]
            for start in range(0, len(chain_rows), DEFAULT_WRITE_BATCH):
                write(chain_rows[start:start + DEFAULT_WRITE_BATCH])
        return time.perf_counter() - started
    finally:
        target.close()


def drop_schema(url: str) -> None:
    import psycopg

    store = StoreURL.parse(url)
    with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{store.schema}" CASCADE')


@dataclass
class StoreRun:
    """One import and the baselines measured on its rows."""

    run: ImportRun
    raw_seconds: float  # the driver alone
    url: str
    alone_seconds: float | None  # the write path alone (--write-alone), else None
    raw_server_cpu: float | None = None  # PostgreSQL's CPU seconds in the raw COPY
    alone_server_cpu: float | None = None  # and in the write path alone
    plain_seconds: float | None = None  # the same import with encryption off


def store_run(kind: str, postgres: str, path: str, events: int, model: str,
              profile: str | None, alone: bool) -> StoreRun:
    """Import the file ``path`` into a new, empty store of ``kind``, then insert the same rows
    raw (and, with ``alone``, write them through the write path alone into another new
    store). The stores are removed afterwards."""
    tmp = tempfile.mkdtemp(prefix="import_bench_")
    if kind == "sqlite":
        db = os.path.join(tmp, "bench.db")
        url, other = f"sqlite:///{db}", f"sqlite:///{os.path.join(tmp, 'alone.db')}"
        plain = f"sqlite:///{os.path.join(tmp, 'plain.db')}"
    else:
        sep = "&" if "?" in postgres else "?"
        url, other, plain = (f"{postgres}{sep}schema=bench_{uuid.uuid4().hex[:8]}"
                             for _ in range(3))
    alone_s = raw_cpu = alone_cpu = None
    try:
        plain_s = import_run(plain, path, model, None, encrypt=False).seconds
        run = import_run(url, path, model, profile)
        if kind == "sqlite":
            rows = sqlite_rows(db, run.table)
            raw_s = sqlite_raw(db, run.table, rows)
        else:
            rows = postgres_rows(url, run.table)
            before = server_cpu()
            raw_s = postgres_raw(url, run.table, rows)
            raw_cpu = _spent(before)
        if alone:
            before = server_cpu() if kind != "sqlite" else None
            alone_s = write_alone(rows, other)
            alone_cpu = _spent(before)
    finally:
        if kind != "sqlite":
            for schema_url in (url, other, plain):
                drop_schema(schema_url)
        shutil.rmtree(tmp, ignore_errors=True)
    assert len(rows) == events, (len(rows), events)
    return StoreRun(run, raw_s, url, alone_s, raw_cpu, alone_cpu, plain_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=50_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--model", default="classic", choices=sorted(PRESETS))
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--postgres", default=os.environ.get(
        "LIFECYCLE_ES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))
    ap.add_argument("--profile", help="write a cProfile of the import to FILE.<store>")
    ap.add_argument("--repeat", type=int, default=1,
                    help="runs per store (each on a new store); prints the median ratio")
    ap.add_argument("--write-alone", action="store_true",
                    help="also time the import's write path alone on the same rows "
                         "(no parsing or rules): the most any import can reach")
    ap.add_argument("--child-import", help=argparse.SUPPRESS)  # see import_run
    args = ap.parse_args()
    if args.child_import:
        child_import(*json.loads(args.child_import))
        return
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, not {args.repeat}")

    print(f"machine: {platform.machine()}, {os.cpu_count()} cpus, {platform.system()} "
          f"{platform.release()}, Python {platform.python_version()}")
    started = time.perf_counter()
    commands = generate(args.customers, args.seed, PRESETS[args.model], UNTIL)
    lines = [orjson.dumps(c) for c in commands]
    del commands
    events = len(lines)
    work = tempfile.mkdtemp(prefix="import_bench_lines_")
    path = os.path.join(work, "history.jsonl")
    with open(path, "wb") as f:
        f.writelines(line + b"\n" for line in lines)
    print(f"generated {args.customers} customers, {events} events "
          f"({os.path.getsize(path) / 1e6:.0f} MB of JSON Lines) in "
          f"{time.perf_counter() - started:.1f}s")
    try:
        compare(args, path, events)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # Last: its full command list (several GB) would leave the imports a larger, fragmented
    # heap (measured: 62.9 s for the SQLite import after it, 58.8 s in a fresh process).
    parse_s, rules_s = check_alone(lines, args.model)
    print(f"\ncheck alone (parse {parse_s:.1f}s + rules {rules_s:.1f}s, one core): "
          f"{events / (parse_s + rules_s):,.0f} events/s")


def compare(args: argparse.Namespace, path: str, events: int) -> None:
    """Import and raw insert per store, ``args.repeat`` times; print rates and ratios."""
    for kind in args.stores.split(","):
        ratios = []
        for attempt in range(1, args.repeat + 1):
            done = store_run(kind, args.postgres, path, events, args.model,
                             f"{args.profile}.{kind}" if args.profile else None,
                             args.write_alone)
            run, raw_s = done.run, done.raw_seconds
            imp_rate, raw_rate = events / run.seconds, events / raw_s
            ratios.append(imp_rate / raw_rate)
            label = f" run {attempt}/{args.repeat}" if args.repeat > 1 else ""
            print(f"\n[{kind}]{label} {StoreURL.parse(done.url).redacted()}")
            print(f"  raw driver insert : {raw_rate:>10,.0f} events/s ({raw_s:.1f}s)")
            print(f"  import            : {imp_rate:>10,.0f} events/s ({run.seconds:.1f}s)  "
                  f"ratio {imp_rate / raw_rate:.2f}x raw")
            if done.plain_seconds is not None:
                print(f"  import, no encryption: {events / done.plain_seconds:>7,.0f} events/s "
                      f"({done.plain_seconds:.1f}s): encryption costs "
                      f"{100 * (run.seconds / done.plain_seconds - 1):+.0f}%")
            if done.alone_seconds is not None:
                alone_rate = events / done.alone_seconds
                print(f"  write path alone  : {alone_rate:>10,.0f} events/s "
                      f"({done.alone_seconds:.1f}s)  ratio {alone_rate / raw_rate:.2f}x raw "
                      "(no parsing or rules: the import's upper bound)")
            if done.raw_server_cpu is not None:
                alone_cpu = ("" if done.alone_server_cpu is None
                             else f", {done.alone_server_cpu:.1f}s in the write path alone")
                print(f"  server CPU        : {done.raw_server_cpu:.1f}s in the raw COPY"
                      f"{alone_cpu}")
            print(f"  import CPU        : {run.cpu_engine:.1f}s importing process + "
                  f"{run.cpu_writer:.1f}s writer process "
                  f"({1e6 * (run.cpu_engine + run.cpu_writer) / events:.0f} µs per event)")
            print(f"  import peak RSS   : {run.peak_mb:,.0f} MB importing process, "
                  f"{run.writer_peak_mb:,.0f} MB writer process")
        if args.repeat > 1:
            print(f"\n[{kind}] median ratio of {args.repeat} runs: "
                  f"{statistics.median(ratios):.2f}x raw (each: "
                  f"{', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
