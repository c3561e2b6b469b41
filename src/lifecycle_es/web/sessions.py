"""Signed session cookies: who is signed in, since when, with which session id.

The cookie holds ``base64url(JSON).base64url(HMAC-SHA256)`` under the session secret, so any
process with the same secret accepts it (several ``serve`` processes behind one address). It
holds no secret and no personal data beyond the user name.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass, field

import orjson

COOKIE = "lifecycle_session"


@dataclass(frozen=True)
class Session:
    """One browser's session; ``user`` None until sign-in."""

    sid: str = field(default_factory=lambda: secrets.token_urlsafe(18))
    user: str | None = None
    issued: float = field(default_factory=time.time)

    def signed_in(self, user: str) -> Session:
        """A new session (new id: no fixation) for ``user``."""
        return Session(user=user)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, payload: bytes) -> bytes:
    return hmac.new(secret, b"session:" + payload, hashlib.sha256).digest()


def encode(session: Session, secret: bytes) -> str:
    payload = orjson.dumps({"s": session.sid, "u": session.user, "t": session.issued})
    return f"{_b64(payload)}.{_b64(_mac(secret, payload))}"


def decode(cookie: str | None, secret: bytes, max_age: float) -> Session | None:
    """The session of a cookie, or None when absent, forged, malformed or expired."""
    if not cookie or cookie.count(".") != 1 or len(cookie) > 4096:
        return None
    body, mac = cookie.split(".")
    try:
        payload, given = _unb64(body), _unb64(mac)
        if not hmac.compare_digest(given, _mac(secret, payload)):
            return None
        data = orjson.loads(payload)
        session = Session(sid=str(data["s"]), user=data["u"], issued=float(data["t"]))
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(session.user, str | None) or time.time() - session.issued > max_age:
        return None
    return session


def csrf_token(session: Session, secret: bytes) -> str:
    """The CSRF token of a session: forms carry it, state-changing requests must."""
    return hmac.new(secret, b"csrf:" + session.sid.encode(), hashlib.sha256).hexdigest()
