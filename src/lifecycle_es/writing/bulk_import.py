"""Bulk writes: a JSON Lines import or many commands, checked in order and written all or nothing.

Checking is ``writing/import_check.py``; the writes, in batches and by a second process once
the import is large enough, are ``writing/bulk_write.py``; each committed import of a file is
recorded in the store (``stores/imports.py``) so running it again is a no-op.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

import orjson

from lifecycle_es.commands import Command, parse_command
from lifecycle_es.domain.customer_snapshot import CustomerSnapshot
from lifecycle_es.errors import FieldProblem, InvalidInput, LifecycleError, StoreError
from lifecycle_es.gcpause import without_cyclic_gc
from lifecycle_es.logs import get_logger
from lifecycle_es.progress import track
from lifecycle_es.stores.imports import DigestedLines, ImportRecord, file_digest
from lifecycle_es.writing.application import LifecycleApplication
from lifecycle_es.writing.bulk_write import SAME_FILE_MEANWHILE, BulkWrite, WriteFailed
from lifecycle_es.writing.import_check import Checker, line_key

log = get_logger("lifecycle_es.writing")

#: events per insert in a bulk import (and the size from which a writer process takes over)
DEFAULT_WRITE_BATCH = 25_000
#: lines checked between two progress reports (lifecycle_es.progress)
PROGRESS_EVERY = 2_000


@dataclass
class ImportResult:
    """What a bulk write did."""

    commands: int = 0
    events: int = 0
    customers_created: int = 0
    campaigns_created: int = 0
    seconds: float = 0.0
    by_type: dict[str, int] = field(default_factory=dict)
    #: SHA-256 of the imported bytes (imports of a file, recorded in the store), else ""
    digest: str = ""
    #: the earlier import of the same bytes when this one wrote nothing for that reason
    already_imported: ImportRecord | None = None


@dataclass(frozen=True)
class Recorded:
    """Where one command of a request was recorded: its aggregate and its events' versions."""

    line: int
    type: str
    #: "customer" or "campaign"
    target: str
    key: str
    versions: list[int]


@dataclass
class RequestResult:
    """What :meth:`BulkImportApplication.record_request` did: the commands' positions, or
    the answer stored by the first request with the same key (``replayed``)."""

    result: ImportResult
    recorded: list[Recorded] = field(default_factory=list)
    #: the earlier request's record (its ``answer``) when this one wrote nothing for that
    replayed: ImportRecord | None = None

    def answer(self, request: str) -> dict[str, object]:
        """The answer as stored: the request's SHA-256, the events, each command's place."""
        return {"request": request, "commands": self.result.commands,
                "events": self.result.events, "recorded": [asdict(r) for r in self.recorded]}


class ImportConflict(StoreError):
    """Another writer recorded events on an aggregate of the bulk write first: nothing was
    written (a concurrency conflict: try again)."""


class BulkImportApplication(LifecycleApplication):
    """:class:`LifecycleApplication` with bulk writes: ``import_file``, ``import_lines``,
    ``record_many``."""

    name = "lifecycle"  # the library names a subclass after itself: the tables' prefix stays

    def import_file(
        self, path: str | os.PathLike[str], *, batch_size: int = DEFAULT_WRITE_BATCH,
        mapping: str | os.PathLike[str] | None = None,
    ) -> ImportResult:
        """Import a JSON Lines file (``"-"``: stdin) once, all or nothing; with ``mapping``
        (a TOML file), a CSV file through it (:meth:`import_csv`).

        The store records the import (SHA-256 of the bytes, lines, events, time) in the same
        transaction as its events. If the same bytes were imported before, nothing is written
        and ``result.already_imported`` says when; a file is looked up before it is read,
        stdin once it is read to its end. See :meth:`import_lines` (``once=True``).
        """
        if mapping is not None:
            return self.import_csv(path, mapping, batch_size=batch_size)
        path = os.fspath(path)
        if path != "-":
            previous = self.find_import(file_digest(path))
            if previous is not None:
                log.info("import.already_imported", digest=previous.digest)
                return ImportResult(digest=previous.digest, already_imported=previous)
        return self.import_lines(iter_jsonl(path), batch_size=batch_size, once=True,
                                 total=0 if path == "-" else line_count(path))

    def find_import(self, digest: str) -> ImportRecord | None:
        """The committed import of the bytes with this SHA-256 (hex), or None."""
        return self.recorder.find_import(digest)  # type: ignore[attr-defined, no-any-return]

    def _imported_meanwhile(self, digest: str) -> bool:
        """Whether the same bytes were imported while this import ran (a lookup that fails
        says no: the import's own failure is the one to report)."""
        try:
            return self.find_import(digest) is not None
        except LifecycleError:
            return False

    def import_csv(
        self, path: str | os.PathLike[str], mapping: str | os.PathLike[str], *,
        batch_size: int = DEFAULT_WRITE_BATCH,
    ) -> ImportResult:
        """Import a CSV file through a mapping (TOML, ``writing/csv_mapping.py``) once, all
        or nothing, as :meth:`import_lines` imports JSON Lines: each row is one command at
        the CSV line where it starts; a problem names that line and the column. The same
        rows through the same mapping import once."""
        from lifecycle_es.writing.csv_mapping import CsvRows, load_mapping

        problems: list[FieldProblem] = []
        rows = CsvRows(os.fspath(path), load_mapping(os.fspath(mapping)), problems)
        try:
            return self.import_lines(rows, batch_size=batch_size, once=True,
                                     total=line_count(os.fspath(path)), problems=problems)
        except InvalidInput as exc:
            named = [p if "(" in p.field or (column := rows.column_of(p.line, p.field)) is None
                     else FieldProblem(f"{column} ({p.field})", p.value, p.reason, p.line)
                     for p in exc.problems if (p.line, p.field) not in rows.failed]
            raise InvalidInput(named, "import (nothing written)") from None

    @without_cyclic_gc
    def import_lines(
        self, lines: Iterable[str | bytes], *, batch_size: int = DEFAULT_WRITE_BATCH,
        once: bool = False, total: int = 0, problems: list[FieldProblem] | None = None,
    ) -> ImportResult:
        """Import JSON Lines commands, all or nothing (see :meth:`record_many`).

        ``total`` (the number of lines, 0 if unknown) is only for progress reports.

        With ``once``, the lines' bytes (``str`` lines as UTF-8) are digested as they are
        read: if the store recorded an import of the same bytes, nothing is written and
        ``result.already_imported`` is that record; else this import is recorded with its
        events (:meth:`import_file` does this for a file).

        Once a writer process runs, it also checks the lines of a share of the customers and
        campaigns not seen before (``writing/bulk_write.py``). ``problems``: a list the
        caller's reading of ``lines`` adds its own problems to (any one: nothing written).
        """
        source = DigestedLines(lines) if once else None
        if source is not None:
            lines = source
        problems = [] if problems is None else problems
        checker = Checker(self, problems, store_empty=self._store_empty())
        out = BulkWrite(self, batch_size, store_empty=checker.store_empty)
        known = checker.known

        def parsed() -> Iterator[tuple[int, Command]]:
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                if out.shares_checking:
                    key = line_key(line)
                    if key is not None and key not in known and out.route(number, line, key):
                        continue
                try:
                    yield number, parse_command(line, number)
                except InvalidInput as exc:  # reported with the rules' problems, in line order
                    problems.extend(exc.problems)

        return self._check_and_write(parsed(), checker, out, check_only=False, source=source,
                                     total=total)

    @without_cyclic_gc
    def record_many(
        self,
        commands: Iterable[tuple[int, Command]] | Iterable[Command],
        *,
        batch_size: int = DEFAULT_WRITE_BATCH,
        check_only: bool = False,
    ) -> ImportResult:
        """Apply many commands in order and write them all in one transaction, or nothing.

        Every command is checked against the state left by the ones before it; any
        problem raises :class:`InvalidInput` listing all of them (with line numbers) and
        nothing is written. The events are written in order, ``batch_size`` per insert, by a
        second process while checking goes on once over half a batch is queued
        (``writing/bulk_write.py``); they are committed only after the last command passed.
        A storage failure or a concurrent writer on the same aggregates raises
        :class:`StoreError` and also writes nothing. ``check_only`` validates without writing.
        """
        numbered = (item if isinstance(item, tuple) else (number, item)
                    for number, item in enumerate(commands, start=1))
        checker = Checker(self, [], store_empty=self._store_empty(), encode=not check_only)
        out = BulkWrite(self, batch_size, store_empty=checker.store_empty)
        return self._check_and_write(numbered, checker, out, check_only=check_only,
                                     total=len(commands) if isinstance(commands, Sized) else 0)

    @without_cyclic_gc
    def record_request(
        self, commands: Iterable[tuple[int, Command]], *, problems: list[FieldProblem],
        once: str | None = None, request: str = "", batch_size: int = DEFAULT_WRITE_BATCH,
    ) -> RequestResult:
        """Record the commands of one request (of the HTTP API) as an import does: in order,
        all or nothing, every problem with its line (``problems`` may hold, and grow with,
        the problems of parsing ``commands``); the answer says where each was recorded.

        With ``once`` (the digest of the request's idempotency key), the answer is stored
        with the events, in their transaction, under that digest: a request with the same
        digest writes nothing and gets ``replayed``, the first one's record (its answer
        names ``request``, the SHA-256 of the first request's body, to tell a retry from a
        reuse of the key); so does a request whose key was committed by another while it
        was checked or written. A concurrent writer on the same aggregates raises
        :class:`ImportConflict`.
        """
        if once is not None and (previous := self.find_import(once)) is not None:
            return RequestResult(ImportResult(digest=once), replayed=previous)
        recorded: list[Recorded] = []
        out = RequestResult(ImportResult(), recorded)

        def record_of(events: int) -> ImportRecord | None:
            if once is None:
                return None
            out.result.commands, out.result.events = len(recorded), events
            return ImportRecord(once, len(recorded), events, datetime.now(UTC),
                                orjson.dumps(out.answer(request)).decode())

        checker = Checker(self, problems, store_empty=self._store_empty())
        try:
            out.result = self._check_and_write(
                commands, checker, BulkWrite(self, batch_size, store_empty=checker.store_empty),
                check_only=False, recorded=recorded, record_of=record_of)
        except (StoreError, InvalidInput):
            # the same key committed meanwhile (its events clashed, or were seen by checks):
            # this request answers as that one did
            if once is not None and (previous := self._found(once)) is not None:
                return RequestResult(ImportResult(digest=once), replayed=previous)
            raise
        return out

    def _found(self, digest: str) -> ImportRecord | None:
        """The record of ``digest`` if it can be read now (else None)."""
        try:
            return self.find_import(digest)
        except LifecycleError:
            return None

    def _store_empty(self) -> bool:
        return self.recorder.max_notification_id() in (None, 0)

    def _check_and_write(
        self,
        commands: Iterable[tuple[int, Command]],
        checker: Checker,
        out: BulkWrite,
        *,
        check_only: bool,
        source: DigestedLines | None = None,
        total: int = 0,
        recorded: list[Recorded] | None = None,
        record_of: Callable[[int], ImportRecord | None] | None = None,
    ) -> ImportResult:
        """Check ``commands`` and write their events (see :meth:`record_many`).

        ``checker.problems`` may already hold problems (and grow while ``commands`` is
        consumed). With ``source`` (the digested lines of ``commands``) the import is
        recorded, or is a no-op if the same bytes were. Lines checked are reported to the
        host's progress reporter (``total``: lines to check, 0 if unknown). ``recorded``
        gets where each command's events go; ``record_of(events)`` gives the record to
        store with them (a request's).
        """
        started = time.perf_counter()
        snapshots = 0
        problems = checker.problems
        check = checker.check
        try:
            with track("import", "lines") as progress:
                line, report_at = 0, PROGRESS_EVERY
                for line, cmd in commands:
                    rows = check(line, cmd)
                    if problems:
                        out.discard()  # nothing will be committed (see BulkWrite.discard)
                    if rows is not None and not check_only and not out.discarded:
                        out.add(line, rows)
                        if recorded is not None:
                            recorded.append(Recorded(line, cmd.type, cmd.target, cmd.key,
                                                     [row[1] for row in rows]))
                        if checker.read_back is None and out.shares_checking:
                            checker.read_back = out  # customers keep only their last events
                    if line >= report_at:
                        progress(line, total)
                        report_at = line + PROGRESS_EVERY
                progress(max(line, total), max(line, total))
            tallies = [checker.tally]
            writer_tally = out.finish(problems)
            if writer_tally is not None:
                tallies.append(writer_tally)
            record = None
            if source is not None:
                previous = self.find_import(source.digest)
                if previous is not None:  # its lines were checked against themselves
                    log.info("import.already_imported", digest=previous.digest)
                    return ImportResult(digest=previous.digest, already_imported=previous)
                record = ImportRecord(source.digest, source.count,
                                      sum(t.events for t in tallies), datetime.now(UTC))
            elif record_of is not None and not problems:
                record = record_of(sum(t.events for t in tallies))
            if problems:
                problems.sort(key=lambda p: p.line or 0)
                raise InvalidInput(problems, "import (nothing written)")
            if not check_only:
                # the customers checked here are dropped while a writer process commits,
                # and snapshotted once their events are (it snapshots its own)
                due: list[CustomerSnapshot] = []
                out.commit(lambda: due.extend(checker.forget()), record)
                snapshots = self.put_snapshots(due)
                self.analyze(sum(t.events for t in tallies))
        except WriteFailed as exc:
            why = str(exc)
            if exc.conflict and source is not None and self._imported_meanwhile(source.digest):
                why = SAME_FILE_MEANWHILE  # its events clashed before its record could
            log.error("import.failed", error=why, conflict=exc.conflict)
            error = ImportConflict if exc.conflict and why != SAME_FILE_MEANWHILE else StoreError
            raise error(f"import failed, nothing written: {why}") from None
        finally:
            out.abort()  # after a commit: nothing left to drop
        result = ImportResult(seconds=time.perf_counter() - started,
                              digest=source.digest if source is not None else "")
        for tally in tallies:
            result.events += tally.events
            result.customers_created += tally.customers_created
            result.campaigns_created += tally.campaigns_created
            for type_, n in tally.by_type.items():
                result.by_type[type_] = result.by_type.get(type_, 0) + n
        result.commands = sum(result.by_type.values())
        if not check_only:
            log.info("import", commands=result.commands, events=result.events,
                     snapshots=snapshots, seconds=round(result.seconds, 3))
        return result


def line_count(path: str) -> int:
    """The number of lines of a file (one quick pass; for progress reports)."""
    with open(path, "rb") as fh:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: fh.read(1 << 20), b""))


def iter_jsonl(path: str) -> Iterator[bytes]:
    """Lines of a JSON Lines file, or of stdin for ``-``."""
    import sys

    if path == "-":
        yield from sys.stdin.buffer
        return
    with open(path, "rb") as fh:
        yield from fh
