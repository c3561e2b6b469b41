"""The User aggregate: the people who sign in to the web console, their team and role.

Users live in the store like customers and campaigns, so every change to them (who added
whom, who granted which role, who disabled whom, when) is an event of the audit trail. The
password is kept only as an argon2 hash, listed in ``PERSONAL``: sealed under the user's own
data key like a customer's personal fields, and never part of an audit summary or a log.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Any, ClassVar
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate

from lifecycle_es.domain.trigger import LeanTrigger
from lifecycle_es.errors import FieldProblem, InvalidInput, InvariantViolation

if TYPE_CHECKING:
    from argon2 import PasswordHasher

#: Fixed forever, like the customer and campaign namespaces (domain/ids.py).
USER_NAMESPACE = UUID("6f1c1f4e-3b7a-5c59-9d0e-8f0b8a1c2d03")

#: what each role may do, least to most (docs/console.md, "Users and roles")
ROLES = ("member", "lead", "compliance", "admin")
#: the shortest and longest password accepted (characters)
PASSWORD_MIN = 12
PASSWORD_MAX = 1024



@cache
def _hasher() -> tuple[PasswordHasher, str]:
    """argon2's hasher (imported when first needed: CLI start-up time), and a hash verified
    against when the user does not exist, so a sign-in takes as long either way."""
    from argon2 import PasswordHasher

    hasher = PasswordHasher()
    return hasher, hasher.hash("not a password of anybody")


def user_id(name: str) -> UUID:
    """The aggregate id of the user called ``name`` (normalised as an external id)."""
    return uuid5(USER_NAMESPACE, name)


def hash_password(password: str) -> str:
    """The argon2 hash of ``password``; InvalidInput (field ``password``, value never shown)
    when it is shorter than :data:`PASSWORD_MIN` or longer than :data:`PASSWORD_MAX`."""
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise InvalidInput([FieldProblem(
            "password", "[hidden]",
            f"{len(password)} characters; {PASSWORD_MIN} to {PASSWORD_MAX} expected")], "user")
    return _hasher()[0].hash(password)


def password_matches(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash`` (None: no such user; the check takes
    as long as a real one)."""
    from argon2.exceptions import InvalidHashError, VerificationError

    hasher, dummy = _hasher()
    try:
        return hasher.verify(password_hash or dummy, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


class User(LeanTrigger, Aggregate):
    """One person of the console, keyed by UUID5 of their user name."""

    class Event(Aggregate.Event):
        user: str
        occurred_at: datetime
        actor: str
        team: str
        correlation_id: str | None
        causation_id: str | None

        TYPE: ClassVar[str] = ""
        PERSONAL: ClassVar[tuple[str, ...]] = ()

    class Added(Event, Aggregate.Created):
        user_team: str
        role: str
        password_hash: str
        TYPE = "user_added"
        PERSONAL = ("password_hash",)

        def apply(self, aggregate: User) -> None:
            aggregate.name = self.user
            aggregate.user_team = self.user_team
            aggregate.role = self.role
            aggregate.password_hash = self.password_hash

    class RoleChanged(Event):
        role: str
        TYPE = "user_role_changed"

        def apply(self, aggregate: User) -> None:
            aggregate.role = self.role

    class PasswordChanged(Event):
        password_hash: str
        TYPE = "user_password_changed"
        PERSONAL = ("password_hash",)

        def apply(self, aggregate: User) -> None:
            aggregate.password_hash = self.password_hash

    class Disabled(Event):
        reason: str | None
        TYPE = "user_disabled"

        def apply(self, aggregate: User) -> None:
            aggregate.disabled_at = self.occurred_at

    def __init__(self) -> None:
        self.name = ""
        self.user_team = ""
        self.role = ROLES[0]
        self.password_hash: str | None = None
        self.disabled_at: datetime | None = None

    def __repr__(self) -> str:  # never the hash
        return f"User({self.name!r}, team={self.user_team!r}, role={self.role!r})"

    @classmethod
    def add(cls, *, user: str, meta: dict[str, Any], **fields: Any) -> User:
        return cls._create(cls.Added, id=user_id(user), user=user, **meta, **fields)

    @property
    def active(self) -> bool:
        return self.disabled_at is None

    def _check_active(self, what: str) -> None:
        if not self.active:
            raise InvariantViolation("user", self.name, f"user is disabled; cannot {what}")

    def change_role(self, role: str, meta: dict[str, Any]) -> None:
        self._check_active("change their role")
        if role == self.role:
            raise InvariantViolation("role", role, f"user {self.name!r} already has that role")
        self.trigger_event(self.RoleChanged, user=self.name, role=role, **meta)

    def change_password(self, password_hash: str, meta: dict[str, Any]) -> None:
        self._check_active("change their password")
        self.trigger_event(self.PasswordChanged, user=self.name, password_hash=password_hash,
                           **meta)

    def disable(self, reason: str | None, meta: dict[str, Any]) -> None:
        self._check_active("disable them again")
        self.trigger_event(self.Disabled, user=self.name, reason=reason, **meta)

    def verify(self, password: str) -> bool:
        """Whether this active user's password is ``password``."""
        return password_matches(self.password_hash, password) and self.active


USER_EVENTS: dict[str, type[User.Event]] = {
    c.TYPE: c for c in (User.Added, User.RoleChanged, User.PasswordChanged, User.Disabled)
}
