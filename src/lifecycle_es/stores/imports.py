"""Records of committed imports: re-running the same file is a no-op.

Each import of a file (``engine.import_file``, ``lifecycle-es import FILE``) is recorded in
the ``imports`` table of the event store (SHA-256 of the file's bytes, its number of lines, the
events written, the time), in the same transaction as its events (``stores/recorders.py``,
``writing/bulk_write.py``). A file whose digest is recorded is not imported again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

IMPORTS_TABLE = "imports"
#: the stored answer of an import that has one (a request of the HTTP API with an
#: ``Idempotency-Key``), written in the same transaction as its record
ANSWERS_TABLE = "import_answers"


@dataclass(frozen=True)
class ImportRecord:
    """One committed import: the SHA-256 (hex) of its bytes, its lines, events and time."""

    digest: str
    lines: int
    events: int
    imported_at: datetime
    #: what was answered (JSON text), for a request that is answered again when retried
    answer: str | None = None

    def when(self) -> str:
        """The commit time as ``2026-12-02T10:00:00Z`` (UTC, to the second)."""
        return self.imported_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def describe(self) -> str:
        """``already imported on 2026-12-02T10:00:00Z (1,234 lines)``."""
        return f"already imported on {self.when()} ({self.lines:,} lines)"


class DigestedLines:
    """The lines of ``lines`` (bytes, or str taken as UTF-8), digested and counted as they
    are read: after the last one, :attr:`digest` is the SHA-256 of all their bytes."""

    def __init__(self, lines: Iterable[str | bytes]) -> None:
        self._lines = lines
        self._sha = hashlib.sha256()
        self.count = 0

    def __iter__(self) -> Iterator[str | bytes]:
        update = self._sha.update
        count = 0
        try:
            for line in self._lines:
                update(line if type(line) is bytes else line.encode())  # type: ignore[union-attr]
                count += 1
                yield line
        finally:
            self.count = count

    @property
    def digest(self) -> str:
        return self._sha.hexdigest()


def file_digest(path: str) -> str:
    """The SHA-256 (hex) of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
