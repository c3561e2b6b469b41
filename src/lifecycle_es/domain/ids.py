"""External ids as the caller gives them, and the stable aggregate ids derived from them (UUID5).

Every external id (a customer, a campaign, a handover, a correlation id...) goes through
:func:`normalise_id` wherever it is accepted — commands, JSON Lines, ``engine.customer()``,
``engine.history()``, audit and query filters — so the same text always names the same thing.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from typing import Any
from uuid import UUID, uuid5

from lifecycle_es.limits import TEXT_CHARS, checked, describe

#: Namespaces are fixed forever: changing them would orphan every stored customer.
CUSTOMER_NAMESPACE = UUID("6f1c1f4e-3b7a-5c59-9d0e-8f0b8a1c2d01")
CAMPAIGN_NAMESPACE = UUID("6f1c1f4e-3b7a-5c59-9d0e-8f0b8a1c2d02")

#: Unicode categories an id never holds: controls, format (invisible: U+200B, U+FEFF, bidi
#: controls...), lone surrogates, line and paragraph separators
_REFUSED = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


def normalise_id(value: str) -> str:
    """An external id stripped of surrounding whitespace and in Unicode NFC.

    Raises ValueError (the reason) when it is empty, longer than 200 characters, or holds a
    control or invisible format character.
    """
    text = value.strip()
    if len(text) > 4 * TEXT_CHARS:  # too long even composed: do not normalise megabytes
        raise ValueError(f"longer than {TEXT_CHARS} characters ({len(text)})")
    if not text.isascii():
        text = unicodedata.normalize("NFC", text)
    if not text:
        raise ValueError("empty (an id needs at least one visible character)")
    if len(text) > TEXT_CHARS:
        raise ValueError(f"longer than {TEXT_CHARS} characters ({len(text)})")
    if not text.isprintable():  # the slow path: which character, and is it refused?
        for pos, ch in enumerate(text):
            if not ch.isprintable() and unicodedata.category(ch) in _REFUSED:
                kind = "invisible" if unicodedata.category(ch) == "Cf" else "control"
                raise ValueError(f"holds the {kind} character {describe(ch)} at position "
                                 f"{pos + 1} (not allowed in an id)")
    return text


def parse_id(field: str, value: Any, what: str = "query") -> str:
    """:func:`normalise_id` for the query APIs: InvalidInput naming ``field`` on a bad id."""
    return checked(field, value, normalise_id, what)


@lru_cache(maxsize=1 << 17)  # a bulk import asks for the same ids again and again
def customer_id(external_id: str) -> UUID:
    """The aggregate id of the customer known to the caller as ``external_id`` (normalised)."""
    return uuid5(CUSTOMER_NAMESPACE, external_id)


@lru_cache(maxsize=1 << 12)
def campaign_id(external_id: str) -> UUID:
    """The aggregate id of the campaign known to the caller as ``external_id`` (normalised)."""
    return uuid5(CAMPAIGN_NAMESPACE, external_id)
