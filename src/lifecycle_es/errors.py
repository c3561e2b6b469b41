"""Exceptions raised by lifecycle-es.

Every user error derives from :class:`LifecycleError` and carries a one-line message that
names the field and the offending value, so the CLI can print it without a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import IntegrityError


class LifecycleError(Exception):
    """Base class of every error a user of lifecycle-es can cause."""


@dataclass(frozen=True)
class FieldProblem:
    """One problem with one field of one input (a command, a JSON line, a config file)."""

    field: str
    value: Any
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        name = self.field  # an unknown key of the input is shown as the value is
        if len(name) > ECHO_CHARS or not name.isprintable():
            name = echo(name)
        return f"{where}{name}={echo(self.value)}: {self.reason}"


#: characters of a value shown in an error; a longer one is cut and its length named
ECHO_CHARS = 80


def echo(value: Any) -> str:
    """``repr(value)``, cut to about :data:`ECHO_CHARS` characters: a longer value shows its
    start and its full length (``'aaaa…' (1048576 characters)``, ``[…]… (5000 items)``), so
    one line stays readable."""
    if isinstance(value, str) and len(value) > ECHO_CHARS:
        return f"{value[:ECHO_CHARS]!r}… ({len(value)} characters)"
    try:
        text = repr(value)
    except ValueError:  # an integer beyond Python's 4300-digit conversion limit
        return f"<an integer of {value.bit_length()} bits>"
    if len(text) > ECHO_CHARS:
        size = (f"{len(value)} items" if isinstance(value, list | tuple | dict)
                else f"{len(text)} characters")
        return f"{text[:ECHO_CHARS]}… ({size})"
    return text


class InvalidInput(LifecycleError, ValueError):
    """Input failed validation; nothing was written."""

    def __init__(self, problems: list[FieldProblem], what: str = "input") -> None:
        self.problems = problems
        first = "; ".join(str(p) for p in problems[:3])
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        super().__init__(f"invalid {what}: {first}{more}")


class InvariantViolation(LifecycleError):
    """A command was refused by the customer's or campaign's rules; nothing was written."""

    def __init__(self, field: str, value: Any, reason: str) -> None:
        self.problem = FieldProblem(field, value, reason)
        super().__init__(str(self.problem))


class TransitionNotAllowed(InvariantViolation):
    """The stage model forbids this stage change."""

    def __init__(self, customer: str, from_stage: str, to_stage: str, allowed: list[str]) -> None:
        self.customer, self.from_stage, self.to_stage, self.allowed = (
            customer,
            from_stage,
            to_stage,
            allowed,
        )
        allowed_txt = ", ".join(allowed) if allowed else (
            "none; a churned customer returns by won_back" if from_stage == "churned" else "none")
        LifecycleError.__init__(
            self,
            f"customer {customer!r}: stage change {from_stage!r} -> {to_stage!r} is not "
            f"allowed by the stage model (allowed from {from_stage!r}: {allowed_txt})",
        )
        self.problem = FieldProblem("to_stage", to_stage, str(self))


class UnknownCustomer(LifecycleError, LookupError):
    """No customer is registered under this external id."""

    def __init__(self, external_id: str) -> None:
        self.external_id = external_id
        super().__init__(f"customer={external_id!r}: no such customer is registered")


class UnknownCampaign(LifecycleError, LookupError):
    """No campaign is announced under this id."""

    def __init__(self, campaign_id: str) -> None:
        self.campaign_id = campaign_id
        super().__init__(f"campaign={campaign_id!r}: no such campaign is announced")


class ConcurrencyConflict(LifecycleError):
    """Another writer recorded events on the same aggregate first; retry the command.

    Use :func:`lifecycle_es.retry_on_conflict` to retry automatically.
    """

    def __init__(self, aggregate: str) -> None:
        self.aggregate = aggregate
        super().__init__(
            f"{aggregate}: another writer changed it at the same time; reload and retry"
        )


class StoreError(LifecycleError):
    """The store URL is malformed or the store cannot be reached (never shows a password)."""


class MasterKeyError(StoreError):
    """The master key is missing, malformed or not the one the store was encrypted with
    (never shows the key)."""


class ConfigError(LifecycleError):
    """A configuration file (stage model, thresholds) is invalid."""


__all__ = [
    "ConcurrencyConflict",
    "ConfigError",
    "FieldProblem",
    "IntegrityError",
    "InvalidInput",
    "InvariantViolation",
    "LifecycleError",
    "MasterKeyError",
    "StoreError",
    "TransitionNotAllowed",
    "UnknownCampaign",
    "UnknownCustomer",
]


def first_line(exc: BaseException, secret: str = "") -> str:
    """The first line of ``exc``'s message, with ``secret`` (a password) masked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return text.replace(secret, "***") if secret else text
