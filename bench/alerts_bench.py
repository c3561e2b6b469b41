"""Alert latency and the sender's throughput (issue 27, item 5): docs/performance.md, "Alerts".

Per store (SQLite, PostgreSQL): a store with ``--customers`` customers (a demo history),
the live runner (``lifecycle-es projections run``) and the sender (``lifecycle-es notify
run``) as real processes, and an HTTP receiver on 127.0.0.1 in this process.

- **Latency**: ``--alerts`` times, a command opening a gap (a new customer: an ``unowned``
  gap) is recorded, and the time until the receiver gets its alert is measured (p50, p95).
- **Throughput**: with the sender stopped, ``--backlog`` gaps open; then the sender starts
  and the time until the receiver got every alert gives alerts per second (including the
  sender's start and its one evaluation of every gap).

    python bench/alerts_bench.py                       # both stores, the figures of the doc
    python bench/alerts_bench.py --stores sqlite --alerts 10 --backlog 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from lifecycle_es import LifecycleEngine

CLI = [sys.executable, "-m", "lifecycle_es.cli.main"]
SECRET_ENV = "ALERTS_BENCH_SECRET"


class Receiver:
    """Records the arrival time of each alert by its key."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers["Content-Length"]))
                receiver.arrived.setdefault(self.headers["Idempotency-Key"], time.monotonic())
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"


def _process(store: str, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, SECRET_ENV: "bench-secret"}
    return subprocess.Popen([*CLI, "--store", store, *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _wait(until: Any, seconds: float = 300) -> None:
    deadline = time.monotonic() + seconds
    while not until():
        if time.monotonic() > deadline:
            raise SystemExit("timed out")
        time.sleep(0.005)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=60)


def _register(engine: LifecycleEngine, customer: str) -> None:
    engine.register(customer=customer, name=customer, segment="smb", source="web",
                    at=datetime.now(UTC), actor="mia", team="marketing")


def bench(store: str, customers: int, alerts: int, backlog: int, poll: float) -> dict[str, Any]:
    subprocess.run([*CLI, "--store", store, "demo", "--customers", str(customers),
                    "--until", "2026-01-01"], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    receiver = Receiver()
    folder = Path(tempfile.mkdtemp())
    config = folder / "notifications.toml"
    config.write_text(f'[[channel]]\nname = "bench"\nwebhook = "{receiver.url}"\n'
                      f'secret_env = "{SECRET_ENV}"\n[sender]\npoll_seconds = {poll}\n'
                      'timeout_seconds = 5\n')
    runner = _process(store, "projections", "run", "--poll", str(poll))
    sender = _process(store, "notify", "run", "--notifications", str(config))
    engine = LifecycleEngine(store)
    try:
        _wait(lambda: engine.notifier(None).outbox.baseline() is not None)
        latencies = []
        for i in range(alerts):
            before = len(receiver.arrived)
            start = time.monotonic()
            _register(engine, f"lat-{i}")
            _wait(lambda: len(receiver.arrived) > before, 60)  # noqa: B023
            latencies.append(max(receiver.arrived.values()) - start)
            time.sleep(0.2)
        _stop(sender)
        for i in range(backlog):
            _register(engine, f"bulk-{i}")
        goal = len(receiver.arrived) + backlog
        start = time.monotonic()
        sender = _process(store, "notify", "run", "--notifications", str(config))
        _wait(lambda: len(receiver.arrived) >= goal)
        elapsed = time.monotonic() - start
        bulk = sorted(t for k, t in receiver.arrived.items() if "bulk-" in k)
        sending = bulk[-1] - bulk[0]
    finally:
        _stop(sender)
        _stop(runner)
        engine.close()
        receiver.server.shutdown()
    ranked = sorted(latencies)
    p95 = ranked[min(len(ranked) - 1, round(0.95 * len(ranked) + 0.5) - 1)]  # nearest rank
    return {"p50_ms": statistics.median(latencies) * 1000, "p95_ms": p95 * 1000,
            "max_ms": ranked[-1] * 1000, "backlog": backlog, "seconds": elapsed,
            "alerts_per_s": backlog / elapsed,
            "sending_per_s": (backlog - 1) / sending if sending > 0 else float("nan")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stores", default="sqlite,postgres")
    ap.add_argument("--customers", type=int, default=500)
    ap.add_argument("--alerts", type=int, default=40)
    ap.add_argument("--backlog", type=int, default=1000)
    ap.add_argument("--poll", type=float, default=1.0,
                    help="the sender's and the runner's poll_seconds (the default 1)")
    ap.add_argument("--postgres", default=os.environ.get(
        "LIFECYCLE_ES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test"))
    args = ap.parse_args()
    for kind in args.stores.split(","):
        schema = f"alerts_bench_{uuid.uuid4().hex[:8]}"
        if kind == "sqlite":
            store = f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}"
        else:
            sep = "&" if "?" in args.postgres else "?"
            store = f"{args.postgres}{sep}schema={schema}"
        try:
            r = bench(store, args.customers, args.alerts, args.backlog, args.poll)
        finally:
            if kind == "postgres":
                import psycopg

                with psycopg.connect(args.postgres.split("?")[0], autocommit=True) as conn:
                    for s in (schema, f"{schema}_read"):
                        conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')
        print(f"{kind}: latency p50 {r['p50_ms']:.0f} ms, p95 {r['p95_ms']:.0f} ms, max "
              f"{r['max_ms']:.0f} ms ({args.alerts} alerts, poll {args.poll} s); throughput "
              f"{r['alerts_per_s']:.0f} alerts/s ({r['backlog']} in {r['seconds']:.1f} s from the "
              f"sender's start; {r['sending_per_s']:.0f} alerts/s from the first to the last)",
              flush=True)


if __name__ == "__main__":
    main()
