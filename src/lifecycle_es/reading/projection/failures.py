"""What a read model that cannot apply an event leaves behind: a :class:`Failure`, and the
errors that name failed, stale and unknown read models."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

from lifecycle_es.display import visible
from lifecycle_es.errors import LifecycleError, first_line

#: longest error text kept for a failure (one line, cut with its full length named)
ERROR_TEXT_MAX = 300


class UnknownProjection(LifecycleError):
    def __init__(self, unknown: Sequence[str], known: Sequence[str]) -> None:
        super().__init__(
            f"unknown projection(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )


class RebuildNeeded(LifecycleError):
    def __init__(self, names: Sequence[str]) -> None:
        self.names = list(names)
        super().__init__(
            f"projection(s) {', '.join(names)} changed version: run "
            f"'lifecycle-es projections rebuild {' '.join(names)}' first"
        )


@dataclass(frozen=True)
class Failure:
    """The event a read model could not apply: it stopped just before ``position``."""

    projection: str
    position: int
    event_type: str
    customer: str | None
    error: str
    at: str  # when it was first recorded (ISO 8601 UTC)

    def describe(self) -> str:
        who = f" of customer {self.customer!r}" if self.customer is not None else ""
        return (f"{self.projection} since position {self.position} "
                f"({self.event_type}{who}: {self.error})")


class ProjectionFailed(LifecycleError):
    """Read models stopped at an event they could not apply: their rows are stale.

    ``failures`` says where and why; in a rebuild, ``rebuilt`` names the read models that
    were rebuilt and swapped in all the same and ``events`` the events replayed.
    """

    exit_code: ClassVar[int] = 4

    def __init__(self, failures: Sequence[Failure], *, rebuild: bool = False,
                 rebuilt: Sequence[str] = (), events: int = 0) -> None:
        self.failures, self.rebuilt, self.events = list(failures), list(rebuilt), events
        what = "rebuild stopped" if rebuild else "read model stale"
        fix = ("fix the read model (or void the event), then rebuild again, or pass "
               "--skip-failing" if rebuild else
               "see 'lifecycle-es projections status'; a catch-up retries it")
        super().__init__(f"{what}: {'; '.join(f.describe() for f in self.failures)}; {fix}")


def one_line(exc: BaseException, secret: str = "",
             hide: Callable[[str], str] | None = None) -> str:
    """``Type: first line of the message`` (``hide``: personal values hidden, before it is
    cut) cut to ERROR_TEXT_MAX characters."""
    text = f"{type(exc).__name__}: {first_line(exc, secret)}".rstrip(": ")
    text = hide(text) if hide is not None else text
    text = visible(text)
    if len(text) > ERROR_TEXT_MAX:
        text = f"{text[:ERROR_TEXT_MAX]}... ({len(text)} characters)"
    return text
