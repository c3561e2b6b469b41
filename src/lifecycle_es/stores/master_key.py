"""The master key: where it comes from, its fingerprint, and the default key file.

Every customer's data key is stored wrapped (AES-256-GCM) by one master key: 32 random bytes
written as URL-safe base64 (``lifecycle-es keys new-master``). It is read, in this order, from
``$LIFECYCLE_ES_MASTER_KEY``, from the file named by ``$LIFECYCLE_ES_MASTER_KEY_FILE``, or
from the default key file ``$XDG_CONFIG_HOME/lifecycle-es/master.key`` (``~/.config`` when
unset). It never comes from the command line and is never logged or shown: only its
fingerprint is (an HMAC of a fixed text under the key), which the store records so that
opening it with another key says so. See docs/privacy.md.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
import sys
from dataclasses import dataclass, field
from pathlib import Path

from lifecycle_es.errors import MasterKeyError

KEY_ENV_VAR = "LIFECYCLE_ES_MASTER_KEY"
KEY_FILE_ENV_VAR = "LIFECYCLE_ES_MASTER_KEY_FILE"
KEY_BYTES = 32
_FINGERPRINT_TEXT = b"lifecycle-es master key fingerprint v1"


@dataclass(frozen=True)
class MasterKey:
    """A master key and where it came from (``source``: for messages, never the key)."""

    raw: bytes = field(repr=False)
    source: str

    @property
    def fingerprint(self) -> str:
        """16 hex digits identifying the key (one-way: it does not reveal the key)."""
        return hmac.new(self.raw, _FINGERPRINT_TEXT, hashlib.sha256).hexdigest()[:16]

    @classmethod
    def parse(cls, text: str, source: str) -> MasterKey:
        """The key written as URL-safe base64 in ``text`` (raises MasterKeyError)."""
        try:
            raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
        except (binascii.Error, UnicodeEncodeError, ValueError):
            raise MasterKeyError(f"master key from {source}: not URL-safe base64 "
                                 f"(make one with `lifecycle-es keys new-master`)") from None
        if len(raw) != KEY_BYTES:
            raise MasterKeyError(f"master key from {source}: {len(raw)} bytes, not "
                                 f"{KEY_BYTES} (make one with `lifecycle-es keys new-master`)")
        return cls(raw, source)

    @classmethod
    def generate(cls, source: str = "a new key") -> MasterKey:
        return cls(secrets.token_bytes(KEY_BYTES), source)

    def text(self) -> str:
        """The key as URL-safe base64 (what a key file or the variable holds)."""
        return base64.urlsafe_b64encode(self.raw).decode("ascii")


def new_master_key_text() -> str:
    """A new random master key, as URL-safe base64."""
    return MasterKey.generate().text()


def default_key_file() -> Path:
    """``$XDG_CONFIG_HOME/lifecycle-es/master.key`` (``~/.config`` when unset)."""
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "lifecycle-es" / "master.key"


def read_key_file(path: Path, source: str) -> MasterKey:
    """The key in ``path``: a file other users may read or write is refused."""
    from lifecycle_es.stores.private_files import require_private_key_file

    require_private_key_file(path, source)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise MasterKeyError(f"master key file {str(path)!r} ({source}) does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not ASCII text"
        raise MasterKeyError(f"master key file {str(path)!r} ({source}): {reason}") from None
    return MasterKey.parse(text, f"{source} {str(path)!r}")


def configured_master_key(*, stored_fingerprint: str | None, new: bool = True) -> MasterKey:
    """The configured master key, checked against the store's ``stored_fingerprint``.

    Without a configured key, the default key file is read; it is created (mode 0600, its
    path said once on stderr) only for a ``new`` store that has no master key yet.
    """
    if (text := os.environ.get(KEY_ENV_VAR)) is not None:
        key = MasterKey.parse(text, f"${KEY_ENV_VAR}")
    elif path := os.environ.get(KEY_FILE_ENV_VAR):
        key = read_key_file(Path(path), f"${KEY_FILE_ENV_VAR}")
    else:
        path_ = default_key_file()
        if path_.exists() or stored_fingerprint is not None or not new:
            if not path_.exists():
                under = (f"under master key {stored_fingerprint}" if stored_fingerprint
                         else "(its data keys exist)")
                raise MasterKeyError(
                    f"the store is encrypted {under} and no "
                    f"master key is configured: set ${KEY_ENV_VAR} or ${KEY_FILE_ENV_VAR} "
                    f"(docs/privacy.md)")
            key = read_key_file(path_, "the default key file")
        else:
            key = _create_default_key_file(path_)
    if stored_fingerprint is not None and key.fingerprint != stored_fingerprint:
        raise MasterKeyError(
            f"the store is encrypted under master key {stored_fingerprint}, but the master "
            f"key from {key.source} is {key.fingerprint}: configure the store's key "
            f"(docs/privacy.md)")
    return key


def _create_default_key_file(path: Path) -> MasterKey:
    """Write a new key to ``path`` (mode 0600) unless another process just did; say so."""
    key = MasterKey.generate(f"the default key file {str(path)!r}")
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(key.text() + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and refuses to replace a key another process wrote
        except FileExistsError:
            return read_key_file(path, "the default key file")
    finally:
        tmp.unlink(missing_ok=True)
    sys.stderr.write(f"lifecycle-es: created the master key file {path} (mode 0600); "
                     f"production stores should set their own key (docs/privacy.md)\n")
    return key
