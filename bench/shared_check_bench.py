"""Is the import's shared checking worth it? The same file imported with the writer process
checking a share of the customers (``WRITER_CHECK_SHARE`` = 0.6, the default) and with it
checking none (0), in fresh processes and fresh stores, alternating. Usage::

    python bench/shared_check_bench.py [--customers 8000] [--repeat 2]

Results are recorded in docs/performance.md ("Shared checking").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import uuid
from datetime import date

PG = os.environ.get("LIFECYCLE_ES_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
CHILD = """
import sys, time
import lifecycle_es.writing.bulk_write as bw
bw.WRITER_CHECK_SHARE = float(sys.argv[1])
from lifecycle_es import LifecycleEngine
from lifecycle_es.engine import iter_jsonl
engine = LifecycleEngine(sys.argv[2])
started = time.perf_counter()
result = engine.import_lines(iter_jsonl(sys.argv[3]))
print(result.events, round(time.perf_counter() - started, 2))
engine.close()
"""


def jsonl(customers: int) -> str:
    path = f"/tmp/shared_check_bench_{customers}.jsonl"
    if not os.path.exists(path):
        import orjson

        from lifecycle_es.demo import generate
        from lifecycle_es.domain.stage_model import CLASSIC

        with open(path, "wb") as fh:
            for command in generate(customers, 7, CLASSIC, date(2026, 11, 1)):
                fh.write(orjson.dumps(command) + b"\n")
    return path


def drop(url: str) -> None:
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(url[len("sqlite:///"):] + suffix):
                os.remove(url[len("sqlite:///"):] + suffix)
        return
    import psycopg

    from lifecycle_es.stores.url import StoreURL

    store = StoreURL.parse(url)
    with psycopg.connect(store.psycopg_conninfo(), autocommit=True) as conn:
        for schema in (store.schema, f"{store.schema}_read"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=8000)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--stores", default="sqlite,postgres")
    args = ap.parse_args()
    path = jsonl(args.customers)
    for kind in args.stores.split(","):
        for _ in range(args.repeat):
            for share in ("0.6", "0"):
                tag = uuid.uuid4().hex[:8]
                url = (f"sqlite:////tmp/shared_check_{tag}.db" if kind == "sqlite"
                       else f"{PG}{'&' if '?' in PG else '?'}schema=shared_check_{tag}")
                try:
                    done = subprocess.run([sys.executable, "-c", CHILD, share, url, path],
                                          capture_output=True, text=True, check=True)
                    events, seconds = done.stdout.split()
                    print(f"{kind:8} share {share:3}: {int(events):,} events in {seconds} s",
                          flush=True)
                finally:
                    drop(url)


if __name__ == "__main__":
    main()
