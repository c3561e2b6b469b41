"""Peak PostgreSQL connections of a test-suite run (or of anything else), by application_name.

Run the suite with its own application name, sample meanwhile, stop the sampler after::

    python bench/pg_peak_connections.py --app issue18_suite > peaks.txt &
    PGAPPNAME=issue18_suite python -m pytest -q; kill -TERM %1; cat peaks.txt

Connections without an application_name of their own take ``$PGAPPNAME`` (libpq); the tests
that name their connections (``tests/test_connection_budget.py``, ``test_store_settings.py``)
are matched by ``--named``. Samples ``pg_stat_activity`` every 20 ms; prints the peaks on
SIGTERM or Ctrl-C.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from typing import Any

import psycopg

QUERY = """SELECT count(*) FILTER (WHERE application_name = %(app)s),
    count(*) FILTER (WHERE application_name = %(app)s OR application_name ~ %(named)s),
    count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--app", required=True, help="the run's PGAPPNAME")
    parser.add_argument("--named", default="^(lc_budget_|lc_app_|issue18_(all|cli)_)",
                        help="regex of the application names tests give themselves")
    args = parser.parse_args()
    peaks = {"app": 0, "app_and_named": 0, "database": 0}

    def done(*_: Any) -> None:
        print(peaks, flush=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, done)
    signal.signal(signal.SIGINT, done)
    with psycopg.connect(args.url, autocommit=True) as conn:
        while True:
            row = conn.execute(QUERY, {"app": args.app, "named": args.named}).fetchone()
            for key, value in zip(peaks, row or (), strict=False):
                peaks[key] = max(peaks[key], int(value))
            time.sleep(0.02)


if __name__ == "__main__":
    main()
