"""The web console under load: server time per page with concurrent signed-in sessions
browsing while one writer records commands through the console.

Starts ``lifecycle-es serve`` on the store (a real process, its live follower running), signs
in ``--sessions`` clients (threads, each its own session) that request the pages round-robin
for ``--seconds`` (back to back, or pausing ``--think`` seconds between pages, as people
do), and one writer that records ``--writes`` check-ins a second through the
console's form (each waits for read-your-writes). Reports, per page, the server's own time
(the ``Server-Timing`` header: from the request's arrival to its response) p50/p95/p99 and
every error (status >= 400 or a failed request). The store must hold a history (``lifecycle-es
demo --customers 20000``); a ``bench`` admin user is added when missing. Usage::

    python bench/console_bench.py --store sqlite:///demo.db [--sessions 16] [--seconds 60]
        [--writes 10] [--think 1] [--workers 2]

Results are recorded in docs/performance.md ("Web console").
"""

from __future__ import annotations

import argparse
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from statistics import quantiles

import httpx

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain.user import hash_password
from lifecycle_es.errors import LifecycleError

PASSWORD = "bench password, long enough"
SECRET = "bench session secret of at least 32 characters"
#: threads of the one writer (check-ins in flight at once)
WRITERS = 5
PAGES = ("/", "/?team=success", "/?kind=renewal_at_risk", "CUSTOMER", "/handovers",
         "/campaigns", "/metrics", "/audit", "/operations")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _prepare(store: str) -> list[str]:
    """The bench user (added when missing) and the store's customers."""
    engine = LifecycleEngine(store, create=False)
    try:
        try:
            engine.user("bench")
        except LifecycleError:
            engine.add_user(user="bench", user_team="success", role="admin",
                            password_hash=hash_password(PASSWORD), at="2024-01-01T00:00:00Z",
                            actor="bench", team="admin")
        engine.projections.catch_up()
        return [r["customer"] for r in engine.projections.fetch("current_stage")]
    finally:
        engine.close()


def _signed_in(base: str) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=base, timeout=60)
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/signin").text)
    assert token is not None
    r = client.post("/signin", data={"user": "bench", "password": PASSWORD,
                                     "csrf_token": token.group(1)})
    assert r.status_code == 303, r.text
    page = client.get("/").text
    fresh = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert fresh is not None
    return client, fresh.group(1)


def _server_ms(response: httpx.Response) -> float:
    found = re.search(r"app;dur=([0-9.]+)", response.headers.get("server-timing", ""))
    return float(found.group(1)) if found else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--store", required=True)
    ap.add_argument("--sessions", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--writes", type=float, default=10, help="check-ins a second")
    ap.add_argument("--think", type=float, default=0.0,
                    help="seconds each session pauses between two pages (0: back to back)")
    ap.add_argument("--workers", type=int, default=1, help="serve --workers")
    args = ap.parse_args()
    customers = _prepare(args.store)
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "lifecycle_es.cli.main", "--store", args.store, "serve",
         "--port", str(port), *(["--workers", str(args.workers)] if args.workers > 1 else [])],
        env={**os.environ, "LIFECYCLE_ES_SESSION_SECRET": SECRET})
    times: dict[str, list[float]] = defaultdict(list)
    errors: list[str] = []
    lock = threading.Lock()
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).text == "ok":
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise SystemExit("the console did not start") from None
                time.sleep(0.5)
        # every session signs in first (argon2 costs each about half a second of CPU)
        sessions = [_signed_in(base) for _ in range(args.sessions + 1)]
        stop = time.monotonic() + args.seconds

        def reader(n: int) -> None:
            client, _ = sessions[n]
            rnd = random.Random(n)
            i = n
            while time.monotonic() < stop:
                path = PAGES[i % len(PAGES)]
                name = path
                if path == "CUSTOMER":
                    path, name = f"/customers/{rnd.choice(customers)}", "/customers/ID"
                i += 1
                try:
                    r = client.get(path)
                except httpx.HTTPError as exc:
                    with lock:
                        errors.append(f"{name}: {type(exc).__name__}")
                    continue
                with lock:
                    times[name].append(_server_ms(r))
                    if r.status_code >= 400:
                        errors.append(f"{name}: {r.status_code}")
                if args.think > 0:  # a person reading the page (jittered: no lockstep)
                    time.sleep(rnd.uniform(0.5, 1.5) * args.think)

        def writer(k: int) -> None:
            """One of WRITERS threads of the one writer (its session), each at its share of
            the rate: a check-in waits for read-your-writes, the rate does not."""
            first, token = sessions[-1]
            client = httpx.Client(base_url=base, timeout=60, cookies=first.cookies)
            rnd = random.Random(99 + k)
            gap = WRITERS / args.writes if args.writes > 0 else None
            next_at = time.monotonic() + (k * gap / WRITERS if gap else 0)
            while gap is not None and time.monotonic() < stop:
                time.sleep(max(0.0, next_at - time.monotonic()))
                customer = rnd.choice(customers)
                r = client.post(f"/customers/{customer}/check-in",
                                data={"csrf_token": token, "notes": "bench"})
                with lock:
                    times["POST check-in (+read-your-writes)"].append(_server_ms(r))
                    if r.status_code != 303:
                        errors.append(f"check-in: {r.status_code}")
                next_at += gap

        threads = [threading.Thread(target=reader, args=(n,)) for n in range(args.sessions)]
        threads += [threading.Thread(target=writer, args=(k,)) for k in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"{args.sessions} sessions, think {args.think:g} s, {args.writes:g} check-ins/s, "
          f"{args.seconds:g} s, {args.workers} worker(s), store "
          f"{args.store.split('?')[0].split('@')[-1]}, {len(customers):,} customers; load "
          f"average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'page':38} {'requests':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, values in sorted(times.items()):
        if len(values) < 2:
            continue
        cuts = quantiles(values, n=100, method="inclusive")
        print(f"{name:38} {len(values):8} {cuts[49]:8.1f} {cuts[94]:8.1f} {cuts[98]:8.1f}")
    written = len(times.get("POST check-in (+read-your-writes)", []))
    print(f"check-ins recorded: {written} ({written / args.seconds:.1f}/s)")
    print(f"errors: {len(errors)}" + (f" (first: {errors[:5]})" if errors else ""))


if __name__ == "__main__":
    main()
