"""Files that hold personal data or keys are private to their owner (mode 0600).

The SQLite store (SQLite gives its ``-wal`` and ``-shm`` files the mode of the database
file), the HTML report and the master key file are created 0600 whatever the umask; a key
file that other users may read or write is refused (docs/privacy.md, "Files").
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

from lifecycle_es.errors import MasterKeyError

#: permission bits a private file must not have: any for others, write for the group
LOOSE_BITS = stat.S_IRWXO | stat.S_IWGRP


def create_private(path: str | Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (its mode is then left)."""
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def write_private(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path``, created with mode 0600 if new."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)


def require_private_key_file(path: Path, source: str) -> None:
    """Refuse (MasterKeyError) a key file other users may read or write."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return  # reading it says why
    if mode & LOOSE_BITS:
        raise MasterKeyError(
            f"master key file {str(path)!r} ({source}) is open to other users (mode "
            f"{stat.S_IMODE(mode):04o}): make it private with chmod 600 {str(path)!r}")
