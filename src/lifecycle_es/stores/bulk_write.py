"""Where an import's checked events go: one transaction, written by a second process.

An import checks every line (parse, domain rules) and must write nothing if any line is bad, so
it cannot commit before the last line is checked. It does not have to wait to *write*, though:
:class:`BulkWrite` collects the encoded rows in batches and, once over half a batch is
queued on a SQLite or PostgreSQL store, hands the batches to a :class:`WriterProcess`, which
inserts them (with the hash chain) inside one open transaction while the engine goes on
checking. At the
end the engine tells it to commit, or to roll back when a line was bad. Checking and writing
each keep a core busy, so a large import takes about as long as the slower of the two instead
of their sum. Smaller imports (up to half a batch) are written in-process, in one transaction
too.

The writer is a separate process, not a thread: both sides are Python code and a thread would
mostly wait for the other's GIL (the SQLite driver takes it back for every row).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

from lifecycle_es.errors import LifecycleError, first_line
from lifecycle_es.logs import get_logger
from lifecycle_es.stores.chain import Row
from lifecycle_es.stores.url import StoreURL

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

log = get_logger("lifecycle_es.stores.bulk_write")


class WriteFailed(Exception):
    """The bulk write stopped and rolled back: nothing was written.

    ``conflict`` is true when another writer recorded events on one of the aggregates first.
    """

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


class BulkWrite:
    """Batches of rows to write in one transaction: in-process, or by a writer process.

    Call :meth:`add` for the rows of each checked command, then :meth:`commit` (raises
    :class:`WriteFailed`) or :meth:`abort`. ``rows`` counts the rows added. On SQLite and
    PostgreSQL a writer process starts once over half a batch is queued; smaller writes are
    written in-process at :meth:`commit`.
    """

    def __init__(self, engine: LifecycleEngine, batch_size: int) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.rows = 0
        self._pending: list[Row] = []
        self._batches: list[list[Row]] = []
        self._writer: WriterProcess | None = None
        self._parallel = engine.store.kind != "memory"
        self._start_at = batch_size // 2  # the writer starts once more rows are queued

    def add(self, rows: Sequence[Row]) -> None:
        """Queue ``rows`` (in log order) for writing."""
        self._pending.extend(rows)
        self.rows += len(rows)
        if self._writer is None and self._parallel and len(self._pending) > self._start_at:
            # Over half a batch: start the writer process now, so that it has started (about
            # 0.6 s of imports on a slow machine) by the time the first batch is full.
            self._writer = WriterProcess(self.engine.store)
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if self._writer is None:
            self._batches.append(batch)
        else:
            self._writer.write(batch)
            log.debug("import.batch", queued=self.rows)

    def commit(self) -> None:
        """Write whatever is left and commit everything (raises :class:`WriteFailed`)."""
        if self._writer is not None:
            if self._pending:
                self._flush()
            writer, self._writer = self._writer, None
            writer.commit()
            return
        # Up to half a batch: written here (a process costs more to start than it saves).
        batches = [b for b in (*self._batches, self._pending) if b]
        self._batches, self._pending = [], []
        if not batches:
            return
        recorder: Any = self.engine.recorder
        try:
            if not hasattr(recorder, "bulk"):  # memory://: one insert_events is atomic
                recorder.insert_events([
                    StoredEvent(originator_id=UUID(agg), originator_version=version, topic=topic,
                                state=state)
                    for batch in batches for agg, version, topic, state in batch])
                return
            with recorder.bulk() as write:
                for batch in batches:
                    write(batch)
        except Exception as exc:  # as the writer process reports it
            raise WriteFailed(_describe(exc, self.engine.store),
                              conflict=isinstance(exc, IntegrityError)) from None

    def abort(self) -> None:
        """Drop everything; a writer process rolls back. Safe to call more than once."""
        self._pending, self._batches = [], []
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abort()


class WriterProcess:
    """A child process holding one write transaction open on ``store``.

    :meth:`write` sends a batch; :meth:`commit` or :meth:`abort` ends it. The child speaks
    only when it stops, so a reply before :meth:`commit` means it failed.

    The child is a fresh interpreter (``subprocess``, not ``multiprocessing``, which would
    re-run the caller's ``__main__`` script); messages are pickles on its stdin and stdout. It
    gets the store (with any password) and the caller's ``sys.path`` on stdin, never on its
    command line, and ignores Ctrl-C: the parent decides, and a parent that is gone (end of
    its stdin) means roll back. Batches are sent from the caller's thread: the child reads a
    whole batch before writing it, so the caller waits only when the child is still writing
    the previous one. (A feeder thread was slower: each 64 KB of pipe it filled, it waited
    for the GIL held by the busy caller.)
    """

    def __init__(self, store: StoreURL) -> None:
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as exc:
            raise WriteFailed(f"cannot start the writer process ({sys.executable!r}): "
                              f"{exc.strerror or exc}") from None
        assert self._process.stdin is not None and self._process.stdout is not None
        self._pipe, self._replies = self._process.stdin, self._process.stdout
        self._send(sys.path, ("start", store))  # read once the child has started

    def _send(self, *messages: Any) -> None:
        try:
            for message in messages:
                pickle.dump(message, self._pipe, pickle.HIGHEST_PROTOCOL)
            self._pipe.flush()
        except OSError:  # the child stopped: its reply says why
            reply = self._reply()
            self._close()
            raise _failure(reply) from None

    def write(self, rows: list[Row]) -> None:
        """Send one batch (raises :class:`WriteFailed` if the child stopped)."""
        self._send(("rows", rows))

    def commit(self) -> None:
        """Commit everything written; raises :class:`WriteFailed` (nothing written) if not."""
        self._send(("commit", None))
        reply = self._reply()
        self._close()
        log.debug("import.writer", busy_seconds=reply[2])
        if reply[0] != "ok":
            raise _failure(reply)

    def abort(self) -> None:
        """Roll back and stop the child."""
        with contextlib.suppress(OSError):
            pickle.dump(("abort", None), self._pipe)
            self._pipe.flush()
        self._close()

    def _reply(self) -> tuple[str, str, float]:
        try:
            kind, message, busy = pickle.load(self._replies)
        except (EOFError, OSError, pickle.UnpicklingError):
            code = self._process.wait()
            return "error", f"the writer process stopped (exit code {code})", 0.0
        return str(kind), str(message), float(busy)

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self._pipe.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._replies.close()


def _failure(reply: tuple[str, str, float]) -> WriteFailed:
    return WriteFailed(reply[1], conflict=reply[0] == "conflict")


class _Aborted(Exception):
    pass


#: the child's first lines: ignore Ctrl-C, take the parent's sys.path, then serve
_BOOT = (
    "import pickle, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "sys.path[:] = pickle.load(sys.stdin.buffer); "
    "from lifecycle_es.stores.bulk_write import serve; serve()"
)


def serve() -> None:
    """The writer process: one bulk transaction, batch after batch, until commit or abort."""
    inbox = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")  # stdout is for replies only:
    os.dup2(2, 1)  # anything else printed goes to stderr
    busy = 0.0

    def reply(kind: str, message: str) -> None:
        with contextlib.suppress(OSError):  # a parent that is gone hears nothing
            pickle.dump((kind, message, round(busy, 3)), replies)
            replies.flush()

    store: StoreURL | None = None
    try:
        _, store = pickle.load(inbox)
        from lifecycle_es.engine import LifecycleEngine

        engine = LifecycleEngine(store)
        try:
            with engine.recorder.bulk() as write:  # type: ignore[attr-defined]
                while True:
                    kind, rows = pickle.load(inbox)
                    if kind != "rows":
                        break
                    started = time.perf_counter()
                    write(rows)
                    busy += time.perf_counter() - started
                if kind != "commit":
                    raise _Aborted  # leaving the block this way rolls back
                started = time.perf_counter()
            busy += time.perf_counter() - started  # leaving the block normally committed
        finally:
            engine.close()
        reply("ok", "")
    except (_Aborted, EOFError):  # rolled back, as asked (or the parent is gone)
        pass
    except IntegrityError as exc:
        reply("conflict", _describe(exc, store))
    except Exception as exc:  # reported to the parent, which raises it
        reply("error", _describe(exc, store))


def _describe(exc: BaseException, store: StoreURL | None) -> str:
    """One line about ``exc`` for the user, without the store's password."""
    if isinstance(exc, IntegrityError):
        return ("another writer recorded events on a customer or campaign of this import "
                "meanwhile")
    if isinstance(exc, LifecycleError):
        return str(exc)
    return f"{type(exc).__name__}: {first_line(exc, store.password if store else '')}"
