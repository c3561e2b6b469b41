"""Showing stored text to people: what is shown is what is stored.

Every character that a terminal or a browser would act on or hide instead of showing — C0/C1
control characters (ESC, CR, BEL, NUL, newline, tab, DEL...), Unicode format characters (zero
width spaces, bidirectional overrides, BOM), line/paragraph separators, non-space blanks,
unassigned and private-use code points, i.e. every character for which ``str.isprintable()``
is false — is written as its Python escape: ``\\x1b``, ``\\r``, ``\\n``, ``\\t``, ``\\x00``,
``\\u200b``, ``\\U000e0001``. Everything else (letters of any script, punctuation, brackets,
backslashes, emoji) is shown as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fractions import Fraction
from html import escape


def _escape(ch: str) -> str:
    return repr(ch)[1:-1]


def escapes(text: str) -> Iterator[tuple[str, bool]]:
    """``text`` cut into (piece, escaped) parts: printable runs as they are, every other
    character as its escape (see the module docstring)."""
    if text.isprintable():
        if text:
            yield text, False
        return
    start = 0
    for i, ch in enumerate(text):
        if not ch.isprintable():
            if i > start:
                yield text[start:i], False
            yield _escape(ch), True
            start = i + 1
    if start < len(text):
        yield text[start:], False


def visible(value: object) -> str:
    """``str(value)`` with every non-printable character written as its escape."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(piece for piece, _ in escapes(text))


def html_text(value: object) -> str:
    """``value`` for HTML text or an attribute: :func:`visible`, then HTML-escaped
    (``& < > " '``)."""
    return escape(visible(value), quote=True)


# characters JSON may carry raw but a terminal would act on or hide; JSON encoders already
# escape the C0 controls, quotes and backslashes
_JSON_HIDDEN = re.compile(r"[^\n -~]")


def _json_escape(match: re.Match[str]) -> str:
    ch = match.group()
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def json_visible(text: str) -> str:
    """JSON text with every non-printable character (DEL, C1 controls, format characters...)
    written as a ``\\uXXXX`` escape: the same JSON value, inert on a terminal."""
    return _JSON_HIDDEN.sub(_json_escape, text)


#: ISO 4217 currencies without minor units (all others are shown with two decimals)
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                          "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"})


def money_text(minor: int | float | Fraction | None, currency: str | None) -> str:
    """Minor units as people read them, the one money format of text output:
    ``EUR 97,827.20`` (``JPY 1,200``); '' for None."""
    if minor is None:
        return ""
    places = 0 if currency in ZERO_DECIMAL else 2
    return f"{currency or ''} {major_units(minor, currency):,.{places}f}".strip()


def major_units(minor: int | float | Fraction, currency: str | None) -> float:
    """Minor units as a number of major units (for charts)."""
    return float(minor) / (1 if currency in ZERO_DECIMAL else 100)
