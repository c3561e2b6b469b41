"""Gap ids: the stable name of one situation a customer is left hanging in.

A gap id is ``KIND:CUSTOMER:SUBJECT`` (``unknown_offer``: ``KIND:CUSTOMER:TIME:CAMPAIGN``),
each part with ``%`` and ``:`` percent-encoded (``%25``, ``%3A``) so that ids holding a colon
still split one way. The subject names the situation, not the threshold that made it a gap
(docs/metrics.md, "Gaps as work items"): the same situation keeps its id across queries,
rebuilds and changed thresholds; a new one (a new handover, the next contract end) gets
another. The rules that find gaps live on the read side; the write side only parses ids
(the gap commands of ``commands.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from lifecycle_es.domain.ids import normalise_id
from lifecycle_es.limits import checked

#: every kind of gap (the rules: ``reading/lifecycle_checks/gaps.py``)
KINDS = (
    "unowned", "handover_stale", "renewal_at_risk", "detractor_ignored", "stalled",
    "promoter_not_asked", "unknown_offer", "lapsing",
)
#: the form of a moment in an id (UTC, to the second) and of a day (a contract end)
TIME_FORMAT, DAY_FORMAT = "%Y%m%dT%H%M%SZ", "%Y%m%d"
_TIME, _DAY = re.compile(r"\d{8}T\d{6}Z"), re.compile(r"\d{8}")
#: the longest gap id accepted (its parts are ids of at most 200 characters)
MAX_CHARS = 1000


def moment(at: datetime) -> str:
    """A time as a gap id's subject (UTC, to the second)."""
    return at.astimezone(UTC).strftime(TIME_FORMAT)


def day(d: date) -> str:
    """A day as a gap id's subject (a contract's end)."""
    return d.strftime(DAY_FORMAT)


def _escape(part: str) -> str:
    return part.replace("%", "%25").replace(":", "%3A")


def _unescape(part: str) -> str:
    if re.search(r"%(?!25|3A)", part, flags=re.IGNORECASE):
        raise ValueError("holds a % not followed by 25 or 3A (only % and : are escaped)")
    return re.sub("%(25|3A)", lambda m: "%" if m[1] == "25" else ":", part,
                  flags=re.IGNORECASE)


def gap_id(kind: str, customer: str, *subject: str) -> str:
    """The id of the gap of ``kind`` of ``customer`` about ``subject`` (its parts)."""
    return ":".join(_escape(p) for p in (kind, customer, *subject))


@dataclass(frozen=True)
class GapRef:
    """A gap id taken apart: its kind, customer and subject (its parts)."""

    kind: str
    customer: str
    subject: tuple[str, ...]

    @property
    def id(self) -> str:
        return gap_id(self.kind, self.customer, *self.subject)


def parse_gap_id(text: str) -> GapRef:
    """The parts of a gap id; ValueError (the reason) when it is not one."""
    if len(text) > MAX_CHARS:
        raise ValueError(f"longer than {MAX_CHARS} characters ({len(text)})")
    kind, *rest = text.strip().split(":")
    if kind not in KINDS:
        raise ValueError(f"unknown gap kind {kind!r} (a gap id is KIND:CUSTOMER:SUBJECT; "
                         f"known kinds: {', '.join(KINDS)})")
    parts = 3 if kind == "unknown_offer" else 2
    if len(rest) != parts:
        form = "KIND:CUSTOMER:TIME:CAMPAIGN" if parts == 3 else "KIND:CUSTOMER:SUBJECT"
        raise ValueError(f"a gap id of kind {kind} is {form} (':' inside a part is "
                         "written %3A)")
    customer, *subject = (normalise_id(_unescape(p)) for p in rest)
    _check_subject(kind, subject)
    return GapRef(kind, customer, tuple(subject))


def _check_subject(kind: str, subject: list[str]) -> None:
    """Refuse a subject that no gap of ``kind`` can have."""
    first = subject[0]
    if kind == "handover_stale":
        return  # a handover id
    if kind == "renewal_at_risk":
        form, pattern, fmt = "the contract's end as YYYYMMDD", _DAY, DAY_FORMAT
    else:
        form, pattern, fmt = "a UTC time as YYYYMMDDTHHMMSSZ", _TIME, TIME_FORMAT
    try:
        ok = pattern.fullmatch(first) is not None and bool(datetime.strptime(first, fmt))
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"the subject of a gap of kind {kind} is {form}, not {first!r}")


def customer_of(gap: Any, what: str = "gap") -> str:
    """The customer a gap id given by a user names (InvalidInput naming ``gap_id`` when it
    is not a gap id)."""
    return checked("gap_id", gap, lambda text: parse_gap_id(text).customer, what)
