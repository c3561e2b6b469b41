"""Where an import's checked events go: one transaction, written by a second process.

An import checks every line (parse, domain rules) and must write nothing if any line is bad, so
it cannot commit before the last line is checked. It does not have to wait to *write*, though:
:class:`BulkWrite` collects the encoded rows in batches and, once the first batch is full on a
SQLite or PostgreSQL store, hands the batches to a :class:`WriterProcess`, which inserts them
(with the hash chain) inside one open transaction while the engine goes on checking. At the
end the engine tells it to commit, or to roll back when a line was bad. Checking and writing
each keep a core busy, so a large import takes about as long as the slower of the two instead
of their sum. Smaller imports (up to one batch) are written in-process, in one transaction too.

The writer is a separate process, not a thread: both sides are Python code and a thread would
mostly wait for the other's GIL (the SQLite driver takes it back for every row).
"""

from __future__ import annotations

import multiprocessing
import queue
import signal
import threading
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import TYPE_CHECKING, Any
from uuid import UUID

from eventsourcing.persistence import IntegrityError, StoredEvent

from lifecycle_es.errors import LifecycleError, first_line
from lifecycle_es.logs import get_logger
from lifecycle_es.stores.chain import Row

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine
    from lifecycle_es.stores.url import StoreURL

log = get_logger("lifecycle_es.stores.bulk_write")
QUEUED_BATCHES = 4  # batches waiting for the writer before the checker waits


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
    :class:`WriteFailed`) or :meth:`abort`. ``rows`` counts the rows added.
    """

    def __init__(self, engine: LifecycleEngine, batch_size: int) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self.rows = 0
        self._pending: list[Row] = []
        self._batches: list[list[Row]] = []
        self._writer: WriterProcess | None = None
        self._parallel = engine.store.kind != "memory"

    def add(self, rows: Sequence[Row]) -> None:
        """Queue ``rows`` (in log order) for writing."""
        self._pending.extend(rows)
        self.rows += len(rows)
        if len(self._pending) >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if self._parallel:
            if self._writer is None:
                self._writer = WriterProcess(self.engine.store)
            self._writer.write(batch)
            log.debug("import.batch", queued=self.rows)
        else:
            self._batches.append(batch)

    def commit(self) -> None:
        """Write whatever is left and commit everything (raises :class:`WriteFailed`)."""
        if self._pending:
            self._flush()
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.commit()
            return
        batches, self._batches = self._batches, []
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
        except IntegrityError as exc:
            raise WriteFailed(_describe(exc, self.engine.store), conflict=True) from None

    def abort(self) -> None:
        """Drop everything; a writer process rolls back. Safe to call more than once."""
        self._pending, self._batches = [], []
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abort()


class WriterProcess:
    """A child process holding one write transaction open on ``store``.

    :meth:`write` queues a batch (a feeder thread sends it, so the caller only waits when
    ``QUEUED_BATCHES`` are already waiting); :meth:`commit` or :meth:`abort` ends it. The child
    speaks only when it stops, so a reply before :meth:`commit` means it failed.
    """

    def __init__(self, store: StoreURL) -> None:
        ctx = multiprocessing.get_context("spawn")  # no inherited connections or threads
        rows_in, rows_out = ctx.Pipe(duplex=False)
        self._replies, reply_out = ctx.Pipe(duplex=False)
        self._process = ctx.Process(target=_serve, args=(store, rows_in, reply_out),
                                    name="lifecycle-es-writer", daemon=True)
        self._process.start()
        rows_in.close()
        reply_out.close()
        self._outbox: queue.Queue[tuple[str, list[Row] | None]] = queue.Queue(QUEUED_BATCHES)
        self._feeder = threading.Thread(target=self._feed, args=(rows_out,), daemon=True,
                                        name="lifecycle-es-writer-feed")
        self._feeder.start()

    def _feed(self, conn: Connection) -> None:
        try:
            while True:
                kind, rows = self._outbox.get()
                try:
                    conn.send((kind, rows))
                except OSError:  # the child stopped: its reply says why; drain to the end
                    while kind == "rows":
                        kind, _ = self._outbox.get()
                    return
                if kind != "rows":
                    return
        finally:
            conn.close()

    def write(self, rows: list[Row]) -> None:
        """Queue one batch (raises :class:`WriteFailed` if the child already stopped)."""
        if self._replies.poll():
            reply = self._reply()
            self.abort()
            raise _failure(reply)
        self._outbox.put(("rows", rows))

    def commit(self) -> None:
        """Commit everything written; raises :class:`WriteFailed` (nothing written) if not."""
        self._outbox.put(("commit", None))
        reply = self._reply()
        self._close()
        if reply[0] != "ok":
            raise _failure(reply)

    def abort(self) -> None:
        """Roll back and stop the child."""
        self._outbox.put(("abort", None))
        self._close()

    def _reply(self) -> tuple[str, str]:
        try:
            kind, message = self._replies.recv()
        except (EOFError, OSError):
            return "error", f"the writer process stopped (exit code {self._process.exitcode})"
        return str(kind), str(message)

    def _close(self) -> None:
        self._feeder.join(timeout=10)
        self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.terminate()
            self._process.join()
        self._replies.close()


def _failure(reply: tuple[str, str]) -> WriteFailed:
    return WriteFailed(reply[1], conflict=reply[0] == "conflict")


class _Aborted(Exception):
    pass


def _serve(store: StoreURL, rows_in: Connection, reply_out: Connection) -> None:
    """The writer process: one bulk transaction, batch after batch, until commit or abort."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it aborts us
    from lifecycle_es.engine import LifecycleEngine

    try:
        engine = LifecycleEngine(store)
        try:
            with engine.recorder.bulk() as write:  # type: ignore[attr-defined]
                while True:
                    kind, rows = rows_in.recv()
                    if kind == "rows":
                        write(rows)
                    elif kind == "commit":
                        break
                    else:
                        raise _Aborted
        finally:
            engine.close()
        reply_out.send(("ok", ""))
    except (_Aborted, EOFError):  # rolled back, as asked (or the parent is gone)
        pass
    except IntegrityError as exc:
        reply_out.send(("conflict", _describe(exc, store)))
    except Exception as exc:  # reported to the parent, which raises it
        reply_out.send(("error", _describe(exc, store)))


def _describe(exc: BaseException, store: StoreURL) -> str:
    """One line about ``exc`` for the user, without the store's password."""
    if isinstance(exc, IntegrityError):
        return ("another writer recorded events on a customer or campaign of this import "
                "meanwhile")
    if isinstance(exc, LifecycleError):
        return str(exc)
    return f"{type(exc).__name__}: {first_line(exc, store.password)}"
