"""The limits every input is held to at the boundary (docs/commands.md, "Limits").

One place for the supported time range, the integer ranges and the text rules, so that
commands, JSON Lines and the query APIs refuse the same values with the same reasons. The
checks raise :class:`ValueError` with the reason (pydantic turns it into a field problem);
:func:`utc_instant` raises :class:`InvalidInput` naming the field, for the query APIs.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from lifecycle_es.errors import FieldProblem, InvalidInput

#: the supported business-time range, inclusive, in UTC (every ``at``, every query time)
MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2199, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
#: the supported range of calendar dates (contracts, campaigns), inclusive
MIN_DATE = MIN_TIME.date()
MAX_DATE = MAX_TIME.date()
#: the largest integer any field may hold (a signed 64-bit integer, as the stores keep them)
INT64_MAX = 2**63 - 1
#: the largest amount of money in minor units (10^13 in major units): sums of many of them
#: (a customer's MRR, its payments) stay far inside 64 bits
MAX_MONEY = 10**15
#: characters of a text (ids, names, teams, ...) and of a free text (notes, reasons, ...)
TEXT_CHARS = 200
FREE_TEXT_CHARS = 10_000
#: entries of each list of the handover document, and its size as stored (UTF-8 JSON)
DOCUMENT_ITEMS = 100
DOCUMENT_BYTES = 64 * 1024

_RANGE = f"{MIN_TIME:%Y-%m-%dT%H:%M:%SZ} to {MAX_TIME:%Y-%m-%dT%H:%M:%SZ}"
#: C0/C1 controls, line and paragraph separators, bidirectional embeddings, overrides and
#: isolates (they reorder what follows them on screen), lone surrogates: never in a text
_TEXT_REFUSED = re.compile(
    "[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: the same but tab and newline: never in a free text
_FREE_TEXT_REFUSED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def describe(ch: str) -> str:
    """A character as ``U+200B (ZERO WIDTH SPACE)`` (controls have no name: their code only)."""
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X}" + (f" ({name})" if name else "")


def _refuse(text: str, pos: int, kind: str) -> ValueError:
    return ValueError(f"holds the {kind} character {describe(text[pos])} at position {pos + 1}"
                      " (not allowed)")


def utc_time(value: datetime) -> datetime:
    """An aware datetime in UTC, inside the supported range (ValueError otherwise)."""
    try:
        utc = value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+14:00 is before year 1 in UTC
        utc = None
    if utc is None or not MIN_TIME <= utc <= MAX_TIME:
        raise ValueError(f"outside the supported time range {_RANGE} (UTC)")
    return utc


def utc_instant(field: str, value: datetime, what: str = "input") -> datetime:
    """:func:`utc_time` for the query APIs (a naive time is UTC): InvalidInput naming
    ``field`` when outside the range."""
    try:
        return utc_time(value if value.tzinfo is not None else value.replace(tzinfo=UTC))
    except ValueError as exc:
        raise InvalidInput([FieldProblem(field, value.isoformat(), str(exc))], what) from None


def plain_text(value: str) -> str:
    """A text (names, teams, stages, ...) in Unicode NFC; ValueError when it holds a control
    character, a line separator or a lone surrogate."""
    if value.isprintable():  # fast path: none of those (nor any other invisible character)
        return value if value.isascii() else unicodedata.normalize("NFC", value)
    bad = _TEXT_REFUSED.search(value)
    if bad is not None:
        raise _refuse(value, bad.start(), "control")
    return unicodedata.normalize("NFC", value)


def stripped_text(value: str) -> str:
    """:func:`plain_text` of ``value`` stripped, as a command's text field is (query filters)."""
    return plain_text(value.strip())


def checked(field: str, value: Any, check: Callable[[str], str], what: str = "query") -> str:
    """``check(value)`` (one of the checks above) for a query API: InvalidInput naming
    ``field`` when ``value`` is not a string or the check refuses it."""
    if not isinstance(value, str):
        raise InvalidInput([FieldProblem(field, value, "must be a string")], what)
    try:
        return check(value)
    except ValueError as exc:
        raise InvalidInput([FieldProblem(field, value, str(exc))], what) from None


def free_text(value: str) -> str:
    """A free text (notes, reasons, comments) as given; ValueError when it holds a control
    character other than tab and newline, or a lone surrogate."""
    if not value.isprintable():
        bad = _FREE_TEXT_REFUSED.search(value)
        if bad is not None:
            raise _refuse(value, bad.start(), "control")
    return value


def supported_date(value: date) -> date:
    """``value`` when inside the supported date range (ValueError otherwise)."""
    if not MIN_DATE <= value <= MAX_DATE:
        raise ValueError(f"outside the supported date range {MIN_DATE} to {MAX_DATE}")
    return value
