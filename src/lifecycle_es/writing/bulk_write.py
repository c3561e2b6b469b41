"""Where an import's checked events go: one transaction, written by a second process.

An import checks every line (parse, domain rules) and must write nothing if any line is bad, so
it cannot commit before the last line is checked. It does not have to wait to *write*, though:
:class:`BulkWrite` collects the encoded rows in batches and, once over half a batch is
queued on a SQLite or PostgreSQL store, hands the batches to a :class:`WriterProcess`, which
inserts them (with the hash chain) inside one open transaction while the engine goes on
checking. At the end the engine tells it to commit, or to roll back when a line was bad.
Checking and writing each keep a core busy, so a large import takes about as long as the
slower of the two instead of their sum. Smaller imports (up to half a batch) are written
in-process, in one transaction too.

The writer is a separate process, not a thread: both sides are Python code and a thread would
mostly wait for the other's GIL (the SQLite driver takes it back for every row).

Checking costs more than writing, so once the writer process runs it also checks some of the
customers and campaigns the engine has not seen yet: up to a share (:data:`WRITER_CHECK_SHARE`,
chosen by a hash of the id) of the new ones, while it keeps up (no more than
:data:`ROUTE_BACKLOG_BYTES` of messages waiting for it; else new ones stay with the engine, so
the two sides balance themselves). An aggregate given to the writer stays with it. The engine
reads each line's key with orjson and sends the writer's lines instead of checking them. The
writer checks them with its own :class:`~lifecycle_es.writing.import_check.Checker` and writes
their rows merged with the engine's batches in line order (the engine sends the lines before
the batch that follows them), so the log keeps the file's order. Commands of different
aggregates do not depend on each other, so both sides decide exactly what one checker would,
whichever side checks what; at the end the writer reports its problems and counts with the
engine's.

Messages wait in a queue of up to :data:`BACKLOG_BYTES` on the engine's side when the pipe is
full (see :class:`WriterProcess`), so neither side waits for the other's bursts.

Once the writer process runs, both sides keep only the last events of each customer in
memory (``writing/import_check.py``): the rest are in the writer's transaction. A void of an
older event reads the customer's events back from there: the writer process reads its own
customers' itself; the engine sends what it has queued, asks (:meth:`BulkWrite.events`) and
waits for the answer. So that this always works, a bad line does not stop the writing once
the writer process runs (nothing is committed, as ever).
"""

from __future__ import annotations

import contextlib
import gc
import os
import pickle
import select
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from uuid import UUID

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]

from eventsourcing.persistence import IntegrityError, StoredEvent

from lifecycle_es.errors import FieldProblem, InvalidInput, LifecycleError, first_line
from lifecycle_es.logs import get_logger
from lifecycle_es.stores.chain import Row
from lifecycle_es.stores.imports import IMPORTS_TABLE
from lifecycle_es.stores.url import StoreURL

if TYPE_CHECKING:
    from lifecycle_es.domain.stage_model import StageModel
    from lifecycle_es.stores.imports import ImportRecord
    from lifecycle_es.writing.application import LifecycleApplication
    from lifecycle_es.writing.import_check import Tally

log = get_logger("lifecycle_es.stores.bulk_write")


class WriteFailed(Exception):
    """The bulk write stopped and rolled back: nothing was written.

    ``conflict`` is true when another writer recorded events on one of the aggregates first.
    """

    def __init__(self, message: str, *, conflict: bool = False) -> None:
        super().__init__(message)
        self.conflict = conflict


#: a command's events as queued: (its line number, its rows)
Lines = list[tuple[int, list[Row]]]

#: most of the aggregates first seen after the writer process started that it checks itself
#: (while it keeps up: :data:`ROUTE_BACKLOG_BYTES`)
WRITER_CHECK_SHARE = 0.6
_LINES_PER_MESSAGE = 1000
#: pickled messages the engine may queue for the writer process beyond its pipe's buffer
BACKLOG_BYTES = 32 << 20
#: queued bytes past which new aggregates are no longer given to the writer process to check
ROUTE_BACKLOG_BYTES = 4 << 20
#: lines between two moves of queued messages into the pipe
_PUMP_EVERY = 256


class BulkWrite:
    """Batches of rows to write in one transaction: in-process, or by a writer process.

    Call :meth:`add` for the rows of each checked command (with its line number), then
    :meth:`finish` and :meth:`commit` (both raise :class:`WriteFailed`), or :meth:`abort`.
    On SQLite and PostgreSQL a writer process starts once over half a batch is queued; smaller
    writes are written in-process at :meth:`commit`. Once it runs, :meth:`route` hands it a
    share of the aggregates to check as well (see the module doc).
    """

    def __init__(self, engine: LifecycleApplication, batch_size: int, *, store_empty: bool) -> None:
        self.engine = engine
        self.batch_size = batch_size
        self._store_empty = store_empty
        self._pending: Lines = []
        self._queued = 0  # rows in _pending
        self._batches: list[Lines] = []
        self._lines: list[tuple[int, str | bytes]] = []  # for the writer to check
        self._writer: WriterProcess | None = None
        self._parallel = engine.store.kind != "memory"
        self._start_at = batch_size // 2  # the writer starts once more rows are queued
        self._share = int(WRITER_CHECK_SHARE * 1000)
        self._routed: set[tuple[str, str]] = set()  # the aggregates the writer process checks
        self._discarding = False
        #: data keys made here for rows the writer process writes: sent before the rows
        keyring = engine.keyring
        self._keys = None if keyring is None else keyring.writes()

    @property
    def shares_checking(self) -> bool:
        """Whether :meth:`route` may hand lines to the writer process (once it runs, to
        the end: the aggregates it checks stay with it)."""
        return self._writer is not None

    def route(self, number: int, line: str | bytes, key: tuple[str, str]) -> bool:
        """Hand line ``number`` to the writer process to check if aggregate ``key``, not seen
        by the engine yet, is the writer's: it was given to it before, or it is new, falls in
        its share and the writer process keeps up (see :attr:`WriterProcess.behind`);
        whether it did."""
        if key not in self._routed:
            if hash(key) % 1000 >= self._share or self._writer.behind:  # type: ignore[union-attr]
                return False
            self._routed.add(key)
        self._lines.append((number, line))
        if len(self._lines) >= _LINES_PER_MESSAGE:
            self._send_lines()
        return True

    def _send_lines(self, before: int | None = None) -> None:
        """Send the lines routed to the writer process, with the first line whose rows
        this side has not sent yet (``before``, else the first pending, else None): the
        writer process writes its own rows of the lines before it now, so that they are
        written (and its customers' older events folded away) even when this side has few
        rows of its own to send."""
        if self._lines and self._writer is not None:
            lines, self._lines = self._lines, []
            if before is None and self._pending:
                before = self._pending[0][0]
            self._writer.send("lines", (lines, before))

    def add(self, line: int, rows: list[Row]) -> None:
        """Queue the ``rows`` of the command on ``line`` (in log order) for writing."""
        self._pending.append((line, rows))
        self._queued += len(rows)
        if len(self._pending) % _PUMP_EVERY == 0 and self._writer is not None:
            self._writer.pump()  # keep the pipe full while the writer process writes
        if self._writer is None and self._parallel and self._queued > self._start_at:
            # Over half a batch: start the writer process now, so that it has started (about
            # 0.6 s of imports on a slow machine) by the time the first batch is full.
            self._writer = WriterProcess(self.engine.store, self.engine.stage_model,
                                         self._store_empty, self.engine.encrypt,
                                         self.engine.snapshot_every)
        if self._queued >= self.batch_size:
            self._flush()

    def _flush(self) -> None:
        batch, self._pending, self._queued = self._pending, [], 0
        if self._writer is None:
            self._batches.append(batch)
        else:
            self._send_lines(batch[0][0])  # every line before the batch's last is with it
            if self._keys is not None and (keys := self._keys.take()):
                self._writer.send("keys", keys)  # the new keys of the batch's aggregates
            self._writer.send("rows", batch)

    @property
    def discarded(self) -> bool:
        """Whether :meth:`discard` dropped the rows: none are taken any more."""
        return self._discarding

    def discard(self) -> None:
        """Write nothing more (a line was bad): on a ``memory://`` store. On SQLite and
        PostgreSQL the rows still go to the writer process (started as ever), whose
        transaction is rolled back at the end: the events checked stay readable there for
        a void of an old event (see the module doc)."""
        if not self._discarding and not self._parallel:
            self._discarding = True
            self._pending, self._batches, self._queued = [], [], 0

    def events(self, aggregate_id: UUID, lte: int) -> list[Any]:
        """The aggregate's events up to version ``lte``, read in the writer process's
        transaction after everything queued here was sent to it (raises
        :class:`WriteFailed` if it stopped). For a void of an event a customer no longer
        keeps in memory; the writer process must run."""
        assert self._writer is not None
        if self._pending:
            self._flush()
        return self._writer.read(aggregate_id, lte)

    def written(self, row_id: str, version: int) -> int:
        """Everything: :meth:`events` sends what is queued before it reads."""
        return version

    def finish(self, problems: list[FieldProblem]) -> Tally | None:
        """Send everything; add the writer process's problems to ``problems`` and return its
        tally (None without a writer process)."""
        if self._writer is None:
            return None
        self._send_lines()
        if self._pending:
            self._flush()
        try:
            report_problems, tally = self._writer.finish()
        except WriteFailed:
            self._writer = None  # it has stopped
            raise
        problems.extend(report_problems)
        return tally

    def commit(self, meanwhile: Callable[[], None] | None = None,
               record: ImportRecord | None = None) -> None:
        """Write whatever is left and commit everything (raises :class:`WriteFailed`);
        ``meanwhile`` runs while a writer process commits (else first). ``record`` (the
        import of a file) is stored in the same transaction, by whichever process commits."""
        if self._writer is not None:
            writer, self._writer = self._writer, None
            try:
                writer.commit(meanwhile, record)
            except BaseException:
                self._settle_keys(committed=False)
                raise
            self._settle_keys(committed=True)
            return
        if meanwhile is not None:
            meanwhile()
        # Up to half a batch: written here (a process costs more to start than it saves).
        batches = [_rows_of(b) for b in (*self._batches, self._pending) if b]
        self._batches, self._pending = [], []
        if not batches:
            return
        recorder: Any = self.engine.recorder
        try:
            if not hasattr(recorder, "bulk"):  # memory://: one insert_events is atomic
                recorder.insert_events([
                    StoredEvent(originator_id=UUID(agg), originator_version=version, topic=topic,
                                state=state)
                    for batch in batches for agg, version, topic, state in batch],
                    imported=record)
                return
            with recorder.bulk() as write:
                for batch in batches:
                    write(batch)
                if record is not None:
                    write.record_import(record)
        except Exception as exc:  # as the writer process reports it
            raise WriteFailed(_describe(exc, self.engine.store),
                              conflict=isinstance(exc, IntegrityError)) from None

    def _settle_keys(self, *, committed: bool) -> None:
        if self._keys is not None:
            self._keys.close(committed)

    def abort(self) -> None:
        """Drop everything; a writer process rolls back. Safe to call more than once."""
        self._pending, self._batches, self._lines = [], [], []
        self._settle_keys(committed=False)
        if self._writer is not None:
            writer, self._writer = self._writer, None
            writer.abort()


class WriterProcess:
    """A child process holding one write transaction open on ``store``.

    It writes the batches it is sent, merged in line order with the rows of the lines it was
    sent to check; :meth:`finish` returns its problems and tally, then :meth:`commit` or
    :meth:`abort` ends the transaction. The child speaks only when asked to finish or commit,
    or when it stops, so an early reply means it failed.

    The child is a fresh interpreter (``subprocess``, not ``multiprocessing``, which would
    re-run the caller's ``__main__`` script); messages are pickles on its stdin and stdout. It
    gets the store (with any password) and the caller's ``sys.path`` on stdin, never on its
    command line, and ignores Ctrl-C: the parent decides, and a parent that is gone (end of
    its stdin) means roll back.

    Messages are queued, and the pipe is written without blocking, from the caller's thread
    (:meth:`pump`, also called by :class:`BulkWrite` every few lines): the child writes a
    batch in one go (about 0.3 s for 25,000 rows), and with only the pipe's 1 MB between
    them the caller would wait for it, then the child for the caller. Up to
    :data:`BACKLOG_BYTES` may wait in the queue; beyond that the caller waits for the child.
    (A feeder thread was slower: each 64 KB of pipe it filled, it waited for the GIL held by
    the busy caller.)
    """

    def __init__(self, store: StoreURL, model: StageModel, store_empty: bool,
                 encrypt: bool = True, snapshot_every: int = 0) -> None:
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _BOOT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        except OSError as exc:
            raise WriteFailed(f"cannot start the writer process ({sys.executable!r}): "
                              f"{exc.strerror or exc}") from None
        assert self._process.stdin is not None and self._process.stdout is not None
        self._pipe, self._replies = self._process.stdin, self._process.stdout
        _widen(self._pipe)
        self._fd = self._pipe.fileno()
        # Non-blocking where the pipe can be polled (not Windows: there every send waits).
        self._writable: Any = None
        if hasattr(select, "poll"):
            with contextlib.suppress(OSError):
                os.set_blocking(self._fd, False)
                self._writable = select.poll()
                self._writable.register(self._fd, select.POLLOUT)
        self._backlog: deque[memoryview] = deque()  # pickled messages not in the pipe yet
        self._backlog_bytes = 0
        # read once the child has started
        self._queue(sys.path)
        self._send(("start", (store, model.model_dump_json(), store_empty, encrypt,
                              snapshot_every)))

    def _queue(self, message: Any) -> None:
        data = memoryview(pickle.dumps(message, pickle.HIGHEST_PROTOCOL))
        self._backlog.append(data)
        self._backlog_bytes += len(data)

    @property
    def behind(self) -> bool:
        """Whether more than :data:`ROUTE_BACKLOG_BYTES` wait for the child: it is the
        slower side, so new aggregates stay with the engine."""
        return self._backlog_bytes > ROUTE_BACKLOG_BYTES

    def _send(self, message: Any, *, wait: bool = False) -> None:
        self._queue(message)
        self.pump(wait=wait)

    def pump(self, *, wait: bool = False) -> None:
        """Move queued messages into the pipe as far as it takes them; with ``wait``, or over
        :data:`BACKLOG_BYTES` queued, wait until all (or enough) are in. Raises
        :class:`WriteFailed` if the child stopped."""
        backlog = self._backlog
        limit = 0 if wait else BACKLOG_BYTES
        try:
            while backlog:
                try:
                    n = os.write(self._fd, backlog[0])
                except BlockingIOError:
                    if self._backlog_bytes <= limit:
                        return
                    self._writable.poll()  # until the child has read some
                    continue
                self._backlog_bytes -= n
                if n == len(backlog[0]):
                    backlog.popleft()
                else:
                    backlog[0] = backlog[0][n:]
        except OSError:  # the child stopped: its reply says why
            reply = self._reply()
            self._close()
            raise _failure(reply) from None

    def send(self, kind: str, body: Any) -> None:
        """Send ``lines`` to check, ``keys`` (data keys made by the engine) or ``rows`` to
        write (raises :class:`WriteFailed` if the child stopped)."""
        self._send((kind, body))

    def read(self, aggregate_id: UUID, lte: int) -> list[Any]:
        """An aggregate's events up to version ``lte`` as the child's transaction holds
        them, once it has handled everything sent before (see :meth:`BulkWrite.events`)."""
        self._send(("read", (aggregate_id, lte)), wait=True)
        reply = self._reply()
        if reply[0] != "events":
            self._close()
            raise _failure(reply)
        return list(reply[1])

    def finish(self) -> tuple[list[FieldProblem], Tally]:
        """The child's problems and tally, once it has checked and written all it was sent."""
        self._send(("finish", None), wait=True)
        reply = self._reply()
        if reply[0] != "report":
            self._close()
            raise _failure(reply)
        problems, tally = reply[1]
        return problems, tally

    def commit(self, meanwhile: Callable[[], None] | None = None,
               record: ImportRecord | None = None) -> None:
        """Commit everything written, with the import's ``record``; raises
        :class:`WriteFailed` (nothing written) if not. ``meanwhile`` runs while the child
        commits."""
        self._send(("commit", record), wait=True)
        if meanwhile is not None:
            meanwhile()
        reply = self._reply()
        self._close()
        log.debug("import.writer", busy_seconds=reply[2])
        if reply[0] != "ok":
            raise _failure(reply)

    def abort(self) -> None:
        """Roll back and stop the child (nothing to do if it has stopped): the end of its
        input, even in the middle of a message, makes it roll back."""
        self._backlog.clear()
        self._close()

    def _reply(self) -> tuple[str, Any, float]:
        try:
            kind, message, busy = pickle.load(self._replies)
        except (EOFError, OSError, pickle.UnpicklingError):
            code = self._process.wait()
            return "error", f"the writer process stopped (exit code {code})", 0.0
        return str(kind), message, float(busy)

    def _close(self) -> None:
        with contextlib.suppress(OSError):
            self._pipe.close()
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._replies.close()


def _widen(pipe: Any) -> None:
    """Give ``pipe`` the largest buffer an unprivileged process may (Linux; 64 KB by default):
    the engine goes on sending lines to check while the child writes a batch instead of
    waiting for it (252k events: 13 µs per event of waiting with 64 KB, 2 with 1 MB)."""
    set_size = getattr(fcntl, "F_SETPIPE_SZ", None) if fcntl is not None else None
    if set_size is None:
        return
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/sys/fs/pipe-max-size") as f:
            size = int(f.read())
        fcntl.fcntl(pipe.fileno(), set_size, size)


def _failure(reply: tuple[str, Any, float]) -> WriteFailed:
    return WriteFailed(str(reply[1]), conflict=reply[0] == "conflict")


class _Aborted(Exception):
    pass


#: the child's lines: ignore Ctrl-C, take the parent's sys.path, serve, then exit without
#: freeing its heap object by object (its store is closed and its replies are sent by then;
#: an interpreter's normal exit spent about half a second freeing a large import's aggregates
#: while the parent waited)
_BOOT = (
    "import os, pickle, signal, sys; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "sys.path[:] = pickle.load(sys.stdin.buffer); "
    "from lifecycle_es.writing.bulk_write import serve; serve(); "
    "sys.stderr.flush(); os._exit(0)"
)


def _rows_of(lines: Iterable[tuple[int, list[Row]]]) -> list[Row]:
    """The rows of ``lines``, in their order."""
    return [row for _, rows in lines for row in rows]


def _merged(own: deque[tuple[int, list[Row]]], batch: Lines,
            written: dict[str, int]) -> list[Row]:
    """The rows of ``batch`` and of the ``own`` lines before its last, in line order;
    ``written`` gets the last version of each aggregate of the ``own`` rows taken."""
    out: list[Row] = []
    for line, rows in batch:
        out.extend(_before(own, line, written))
        out.extend(rows)
    return out


def _before(own: deque[tuple[int, list[Row]]], line: int | None,
            written: dict[str, int]) -> list[Row]:
    """The rows of the ``own`` lines before ``line`` (all: None), taken off ``own``;
    ``written`` gets the last version of each of their aggregates."""
    out: list[Row] = []
    while own and (line is None or own[0][0] < line):
        mine = own.popleft()[1]
        out.extend(mine)
        for row in mine:
            written[row[0]] = row[1]
    return out


class _Transaction:
    """The writer process's :class:`~lifecycle_es.writing.import_check.ReadBack`: its own
    customers' events are read back from its open transaction once written."""

    def __init__(self, engine: LifecycleApplication) -> None:
        self._get = engine.events.get
        self.own: dict[str, int] = {}  # the last version written of each of its aggregates

    def events(self, aggregate_id: UUID, lte: int) -> list[Any]:
        return list(self._get(aggregate_id, lte=lte))

    def written(self, row_id: str, version: int) -> int:
        return self.own.get(row_id, 0)


def serve() -> None:
    """The writer process: one bulk transaction until commit or abort. It checks the lines
    it is sent and writes their rows merged, in line order, with the engine's batches."""
    from lifecycle_es.commands import parse_command
    from lifecycle_es.domain.stage_model import StageModel
    from lifecycle_es.writing.application import LifecycleApplication
    from lifecycle_es.writing.import_check import Checker

    inbox = sys.stdin.buffer
    replies = os.fdopen(os.dup(1), "wb")  # stdout is for replies only:
    os.dup2(2, 1)  # anything else printed goes to stderr
    busy = 0.0

    def reply(kind: str, message: Any) -> None:
        with contextlib.suppress(OSError):  # a parent that is gone hears nothing
            pickle.dump((kind, message, round(busy, 3)), replies)
            replies.flush()

    store: StoreURL | None = None
    gc.disable()  # as the engine's import does (lifecycle_es/gcpause.py)
    try:
        _, (store, model, store_empty, encrypt, snapshot_every) = pickle.load(inbox)
        # The store exists (the engine opened it): no schema set-up connection. One
        # connection: its reads during the transaction use the transaction's (the engine's
        # process keeps its own pool; 3 connections for the two, docs/operations.md).
        engine = LifecycleApplication(replace(store, pool_size=1, max_overflow=0),
                                      stage_model=StageModel.model_validate_json(model),
                                      encrypt=encrypt, create=False,
                                      snapshot_every=snapshot_every)
        problems: list[FieldProblem] = []
        engine.recorder.reads_in_bulk = True  # type: ignore[attr-defined]
        checker = Checker(engine, problems, store_empty=store_empty)
        checker.read_back = transaction = _Transaction(engine)
        own: deque[tuple[int, list[Row]]] = deque()  # rows of our lines, not written yet
        try:
            with engine.recorder.bulk() as write:  # type: ignore[attr-defined]
                while True:
                    kind, body = pickle.load(inbox)
                    started = time.perf_counter()
                    if kind == "lines":
                        lines, before = body
                        for number, line in lines:
                            try:
                                rows = checker.check(number, parse_command(line, number))
                            except InvalidInput as exc:
                                problems.extend(exc.problems)
                                continue
                            if rows is not None:
                                own.append((number, rows))
                        early = _before(own, before, transaction.own)
                        if early:  # no row of the engine's comes before them any more
                            write(early)
                    elif kind == "keys":  # written with the rows of their aggregates
                        assert engine.keyring is not None
                        engine.keyring.adopt(body)
                    elif kind == "rows":
                        write(_merged(own, body, transaction.own))
                    elif kind == "read":  # for a void of an old event of the engine's
                        reply("events", transaction.events(*body))
                    elif kind == "finish":
                        write(_rows_of(own))
                        own.clear()
                        reply("report", (problems, checker.tally))
                    else:
                        break
                    busy += time.perf_counter() - started
                if kind != "commit":
                    raise _Aborted  # leaving the block this way rolls back
                started = time.perf_counter()
                if body is not None:  # the import's record, committed with its events
                    write.record_import(body)
            # committed: its customers' snapshots, so their loads need not replay them
            snapshots = engine.put_snapshots(checker.forget())
            busy += time.perf_counter() - started
        finally:
            engine.close()
        log.debug("import.writer_snapshots", snapshots=snapshots)
        reply("ok", "")
    except (_Aborted, EOFError):  # rolled back, as asked (or the parent is gone)
        pass
    except IntegrityError as exc:
        reply("conflict", _describe(exc, store))
    except Exception as exc:  # reported to the parent, which raises it
        reply("error", _describe(exc, store))


#: why an import was refused when another run of the same bytes committed first
SAME_FILE_MEANWHILE = "another run of the same file was imported meanwhile"


def _describe(exc: BaseException, store: StoreURL | None) -> str:
    """One line about ``exc`` for the user, without the store's password."""
    if isinstance(exc, IntegrityError):
        if IMPORTS_TABLE in str(exc):  # the record's key: the same bytes, committed first
            return SAME_FILE_MEANWHILE
        return ("another writer recorded events on a customer or campaign of this import "
                "meanwhile")
    if isinstance(exc, LifecycleError):
        return str(exc)
    text = first_line(exc)
    return f"{type(exc).__name__}: {store.scrub(text) if store else text}"
