"""A rebuild on several cores: groups of read models fill their shadow tables in worker
processes, then the calling process swaps them all in, in one transaction.

Read models are independent, so each group replays the log into its own shadow tables
(``ProjectionManager.fill_shadows``: by aggregate, then the tail, then the indexes) exactly
as a one-process rebuild does — committing its cursor with every batch, so a killed rebuild
resumes — while the readers keep the live tables. Groups are balanced by each read model's
``rebuild_cost``. A worker (``rebuild_worker.py``) dies with its parent (``kill -9`` of the
rebuild leaves no process behind to race the next one); Ctrl-C of the parent stops the
workers, whose uncommitted batch is rolled back.
"""

from __future__ import annotations

import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

from lifecycle_es.errors import LifecycleError, StoreError

if TYPE_CHECKING:
    from lifecycle_es.reading.projection.base import Projection
    from lifecycle_es.reading.projection.source import LogSource

#: the module a worker process runs
WORKER = "lifecycle_es.reading.projection.rebuild_worker"
#: logs shorter than this are rebuilt in one process by default (see default_jobs)
AUTO_MIN_EVENTS = 20_000
#: a worker reports its progress at most this often (seconds)
PROGRESS_EVERY = 0.25


def default_jobs(events: int) -> int:
    """``projections rebuild``'s default number of processes for a log of ``events``:
    min(2, CPUs), or 1 for a log under AUTO_MIN_EVENTS (a worker takes about a second to
    start; the read models are rebuilt in less on such a log)."""
    return 1 if events < AUTO_MIN_EVENTS else max(1, min(2, os.cpu_count() or 1))


def plan(group: Sequence[Projection], jobs: int) -> list[list[Projection]]:
    """``group`` split into at most ``jobs`` groups of about equal ``rebuild_cost``
    (largest first, each to the lightest group), in the group's order within each."""
    jobs = max(1, min(jobs, len(group)))
    if jobs == 1:
        return [list(group)]
    parts: list[list[Projection]] = [[] for _ in range(jobs)]
    loads = [0.0] * jobs
    for p in sorted(group, key=lambda p: -p.rebuild_cost):
        i = loads.index(min(loads))
        parts[i].append(p)
        loads[i] += p.rebuild_cost
    order = {p.name: n for n, p in enumerate(group)}
    return [sorted(part, key=lambda p: order[p.name]) for part in parts if part]



def fill_in_workers(opener: Callable[[], LogSource], parts: list[list[str]], batch_size: int,
                    skip_failing: bool, progress: Callable[[int, int], None] | None,
                    ) -> tuple[int, dict[str, Any]]:
    """Fill the shadow tables of each group of read models in its own process; returns
    the events replayed (by the group that replayed most) and the read models that
    stopped on an event.

    ``opener`` (picklable) opens the same store in the worker. A worker's error is raised
    here as one line (:class:`StoreError` for a fault of the store) once every worker is
    stopped.
    """
    workers = []
    try:
        for names in parts:
            workers.append(_start(opener, names, batch_size, skip_failing))
        return _collect(workers, progress)
    finally:
        for proc, conn in workers:
            if proc.poll() is None:
                proc.terminate()  # its open transaction is rolled back by the database
            proc.wait()
            conn.close()


def _start(opener: Callable[[], LogSource], names: list[str], batch_size: int,
           skip_failing: bool) -> tuple[subprocess.Popen[bytes], Connection]:
    """A worker: a new interpreter (nothing of this process is forked, nor its main
    module imported again) given its task on stdin, answering through a pipe."""
    mine, theirs = os.pipe()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", f"from {WORKER} import main; main()"],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, pass_fds=(theirs,))
    except BaseException:
        os.close(mine)
        raise
    finally:
        os.close(theirs)
    conn = Connection(mine, writable=False)
    assert proc.stdin is not None
    with proc.stdin:
        pickle.dump((opener, names, batch_size, skip_failing, theirs, os.getpid(),
                     _log_level()), proc.stdin)
    return proc, conn


def _collect(workers: list[tuple[subprocess.Popen[bytes], Connection]],
             progress: Callable[[int, int], None] | None) -> tuple[int, dict[str, Any]]:
    done: dict[Connection, tuple[int, int]] = {conn: (0, 0) for _, conn in workers}
    failures: dict[str, Any] = {}
    replayed = 0
    error: LifecycleError | None = None
    open_ = {conn: proc for proc, conn in workers}
    while open_:
        for conn in wait(list(open_)):
            assert isinstance(conn, Connection)
            try:
                kind, *body = conn.recv()
            except EOFError:  # the worker died without a word (killed)
                code = open_.pop(conn).wait()
                error = error or StoreError(f"a rebuild worker ended with exit code {code}")
                continue
            if kind == "progress":
                done[conn] = (body[0], body[1])
                _report(done, progress)
                continue
            open_.pop(conn)
            if kind == "done":
                replayed = max(replayed, body[0])  # every group replays the log
                failures.update(body[1])
            else:  # "error": (store fault?, one line)
                error = error or (StoreError if body[0] else LifecycleError)(body[1])
    if error is not None:
        raise error
    return replayed, failures


def _report(done: dict[Connection, tuple[int, int]],
            progress: Callable[[int, int], None] | None) -> None:
    """The workers' progress as one, in events of the log (each group reads it all)."""
    if progress is not None:
        total = max(t for _, t in done.values())
        share = sum(d for d, _ in done.values()) / max(1, sum(t for _, t in done.values()))
        progress(round(share * total), total)


def _log_level() -> str | None:
    """The level of the ``lifecycle_es`` logs when this process shows them (else None)."""
    root = logging.getLogger("lifecycle_es")
    shown = any(isinstance(h, logging.StreamHandler) for h in root.handlers)
    return logging.getLevelName(root.getEffectiveLevel()) if shown else None
