"""A worker process of a parallel rebuild (``parallel.py``): it reads its task on stdin
— how to open the store, its read models, the batch size — fills their shadow tables
(``ProjectionManager.fill_shadows``) and reports progress, then its result or its error,
through the pipe it was given. It dies with the rebuild that started it.
"""

from __future__ import annotations

import os
import pickle
import signal
import sys
import time
from contextlib import suppress
from multiprocessing.connection import Connection

from lifecycle_es.errors import StoreError
from lifecycle_es.reading.projection.db import is_transient
from lifecycle_es.reading.projection.failures import one_line as _one_line
from lifecycle_es.reading.projection.parallel import PROGRESS_EVERY
from lifecycle_es.reading.projection.runner import ProjectionManager

#: SQLite: how long a worker waits for the write lock another worker holds (milliseconds).
#: A worker holds it while it builds one table's index, which at 10M events takes minutes
#: (two minutes was too short: docs/performance.md, "Scale"); the rebuild is a batch job
SQLITE_BUSY_MS = 3_600_000


def main() -> None:
    """A worker process: read its task on stdin, fill the shadows of its read models;
    report progress, then the result (or the error) through the pipe it was given."""
    opener, names, batch_size, skip_failing, fd, parent, level = pickle.load(sys.stdin.buffer)
    _die_with(parent)
    if level is not None:  # log as the parent does (to the same stderr)
        from lifecycle_es.logs import configure

        configure(level)
    conn = Connection(fd, readable=False)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent stops the workers
    last = [0.0]

    def report(events: int, total: int) -> None:
        if os.getppid() != parent:  # the rebuild was killed: stop before the next batch
            os._exit(1)
        now = time.monotonic()
        if now - last[0] >= PROGRESS_EVERY or events >= total:
            last[0] = now
            conn.send(("progress", events, total))

    secret = ""
    try:
        source = opener()
        secret = source.store.password or ""
        pm = ProjectionManager(source)
        if pm.read.dialect == "sqlite":  # workers take turns at the write lock
            pm.read.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_MS}")
        _, events, failures = pm.fill_shadows(pm.select(names), batch_size, report,
                                              skip_failing)
        conn.send(("done", events, failures))
    except BaseException as exc:
        conn.send(("error", isinstance(exc, StoreError) or is_transient(exc),
                   f"rebuild of {', '.join(names)}: {_one_line(exc, secret)}"))
    finally:
        conn.close()


def _die_with(parent: int) -> None:
    """Have the kernel kill this process when its parent dies (Linux), so a ``kill -9`` of
    the rebuild leaves no worker writing behind it; elsewhere (and if the parent is
    already gone) the worker checks its parent before every batch."""
    if sys.platform.startswith("linux"):
        with suppress(Exception):
            import ctypes

            ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)
