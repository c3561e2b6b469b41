"""The ApiToken aggregate: one token per integration of the HTTP API (``/api/v1``).

Tokens live in the store like users, so their creation and revocation are events of the
audit trail (who issued which token, with which scope, who revoked it, when). The token
itself is shown once, when it is issued; the store keeps only its SHA-256. A token is 256
random bits, so a fast hash is enough (no password to guess: docs/api.md, "Tokens"), and
checking it costs microseconds on every request, where argon2 would cost a tenth of a second.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from lifecycle_es.domain.trigger import LeanTrigger
from lifecycle_es.errors import InvariantViolation

#: Fixed forever, like the other namespaces (domain/ids.py, domain/user.py).
TOKEN_NAMESPACE = UUID("2b5d7a0e-8c41-5f3e-a6b9-4d1e0c7f9a15")
#: what a token may do: read the API's GET endpoints, or also record commands
SCOPES = ("read", "write")
#: how every token starts (a scanner of leaked secrets can look for it)
PREFIX = "lce_"
#: a token's name: letters, digits, ``-`` and ``.``, up to 64 (it is part of the token)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9.-]{0,63}")
_TOKEN = re.compile(rf"{PREFIX}({NAME.pattern})_([0-9a-f]{{64}})")


def token_id(name: str) -> UUID:
    """The aggregate id of the token called ``name``."""
    return uuid5(TOKEN_NAMESPACE, name)


def new_token(name: str) -> str:
    """A new token for ``name``: ``lce_NAME_`` and 64 hex digits (256 random bits)."""
    return f"{PREFIX}{name}_{secrets.token_hex(32)}"


def token_hash(token: str) -> str:
    """The SHA-256 (hex) of a token, as the store keeps it."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def name_of(token: str) -> str | None:
    """The name a well-formed token carries, or None."""
    found = _TOKEN.fullmatch(token)
    return found.group(1) if found else None


class ApiToken(LeanTrigger, Aggregate):
    """One integration's API token, keyed by UUID5 of its name."""

    class Event(Aggregate.Event):
        token: str
        occurred_at: datetime
        actor: str
        team: str
        correlation_id: str | None
        causation_id: str | None

        TYPE: ClassVar[str] = ""
        PERSONAL: ClassVar[tuple[str, ...]] = ()

    class Added(Event, Aggregate.Created):
        scope: str
        act_for_others: bool
        token_hash: str
        TYPE = "token_added"
        PERSONAL = ("token_hash",)  # sealed like a password hash; never in a summary

        def apply(self, aggregate: ApiToken) -> None:
            aggregate.name = self.token
            aggregate.scope = self.scope
            aggregate.act_for_others = self.act_for_others
            aggregate.token_hash = self.token_hash

    class Revoked(Event):
        reason: str | None
        TYPE = "token_revoked"

        def apply(self, aggregate: ApiToken) -> None:
            aggregate.revoked_at = self.occurred_at

    def __init__(self) -> None:
        self.name = ""
        self.scope = SCOPES[0]
        self.act_for_others = False
        self.token_hash = ""
        self.revoked_at: datetime | None = None

    def __repr__(self) -> str:  # never the hash
        return f"ApiToken({self.name!r}, scope={self.scope!r})"

    @classmethod
    def add(cls, *, token: str, meta: dict[str, Any], **fields: Any) -> ApiToken:
        return cls._create(cls.Added, id=token_id(token), token=token, **meta, **fields)

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def revoke(self, reason: str | None, meta: dict[str, Any]) -> None:
        if not self.active:
            raise InvariantViolation("token", self.name, "token is revoked already")
        self.trigger_event(self.Revoked, token=self.name, reason=reason, **meta)

    def matches(self, token: str) -> bool:
        """Whether ``token`` is this active token (compared in constant time)."""
        return hmac.compare_digest(self.token_hash, token_hash(token)) and self.active


TOKEN_EVENTS: dict[str, type[ApiToken.Event]] = {
    c.TYPE: c for c in (ApiToken.Added, ApiToken.Revoked)
}
