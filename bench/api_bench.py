"""The HTTP API of a real ``lifecycle-es serve``: single commands and a batch, over httpx.

Starts ``serve`` on a fresh store (SQLite file, or a PostgreSQL schema), issues a write
token, then times, from one client on 127.0.0.1:

- ``single``: ``--singles`` requests of one command each (``check_in``), each with its own
  ``Idempotency-Key`` (the median and p95 latency, and requests per second);
- ``replay``: the same requests again (each answered from its stored answer, nothing
  written);
- ``batch``: one request of ``--batch`` commands as JSON Lines (seconds, commands/s).

Usage::

    python bench/api_bench.py [--store sqlite|postgres] [--singles 300] [--batch 10000]

Results are recorded in docs/performance.md ("HTTP API").
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

import httpx

CLI = [sys.executable, "-m", "lifecycle_es.cli.main"]
PG = "postgresql://postgres@127.0.0.1:5432/test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def command(n: int) -> dict[str, object]:
    return {"type": "check_in", "customer": f"c{n % 50}", "at": "2025-01-02T10:00:00Z",
            "team": "success", "notes": f"call {n}"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", choices=["sqlite", "postgres"], default="sqlite")
    ap.add_argument("--singles", type=int, default=300)
    ap.add_argument("--batch", type=int, default=10_000)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    store = f"sqlite:///{tmp}/api.db" if args.store == "sqlite" else f"{PG}?schema={schema}"
    run = lambda *a: subprocess.run([*CLI, "--store", store, *a], check=True,  # noqa: E731
                                    capture_output=True, text=True).stdout
    registrations = "".join(json.dumps({
        "type": "customer_registered", "customer": f"c{i}", "name": f"C {i}", "segment": "smb",
        "source": "web", "at": "2025-01-01T00:00:00Z", "actor": "bench",
        "team": "marketing"}) + "\n" for i in range(50))
    with open(f"{tmp}/reg.jsonl", "w") as f:
        f.write(registrations)
    run("import", f"{tmp}/reg.jsonl")
    token = run("tokens", "add", "bench", "--scope", "write").strip()
    port = free_port()
    env = {**os.environ, "LIFECYCLE_ES_SESSION_SECRET": "x" * 40}
    proc = subprocess.Popen([*CLI, "--store", store, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).text == "ok":
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        with httpx.Client(base_url=base, timeout=120,
                          headers={"Authorization": f"Bearer {token}"}) as c:
            for label in ("single", "replay"):
                times = []
                started = time.perf_counter()
                for n in range(args.singles):
                    t0 = time.perf_counter()
                    r = c.post("/api/v1/commands", json=command(n),
                               headers={"Idempotency-Key": f"k{n}"})
                    times.append(time.perf_counter() - t0)
                    assert r.status_code == 201, r.text
                total = time.perf_counter() - started
                times.sort()
                print(f"{args.store} {label}: {args.singles / total:.0f} requests/s, median "
                      f"{statistics.median(times) * 1000:.1f} ms, p95 "
                      f"{times[int(len(times) * 0.95)] * 1000:.1f} ms")
            body = "".join(json.dumps({**command(n), "actor": "bench"}) + "\n"
                           for n in range(args.batch)).encode()
            t0 = time.perf_counter()
            r = c.post("/api/v1/commands", content=body,
                       headers={"Content-Type": "application/x-ndjson",
                                "Idempotency-Key": "batch"})
            seconds = time.perf_counter() - t0
            assert r.status_code == 201, r.text[:300]
            print(f"{args.store} batch of {args.batch:,} ({len(body) / 1e6:.1f} MB): "
                  f"{seconds:.2f} s, {args.batch / seconds:,.0f} commands/s")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        if args.store == "postgres":
            import psycopg

            with psycopg.connect(PG.replace("postgresql://", "postgresql://"),
                                 autocommit=True) as conn:
                for s in (schema, f"{schema}_read"):
                    conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


if __name__ == "__main__":
    main()
