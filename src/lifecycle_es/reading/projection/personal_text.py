"""Failure texts without personal data.

When a read model fails on an event, the error's text is stored (``projection_state``, and
``projection_errors`` when the event is passed over), logged (``projection.failed``,
``projection.skipped_event``) and shown. A handler's or the database's message may quote the
event's values — a check-in's notes, a customer's name — which erasure must reach. The runner
passes the text through :func:`personal_hider` of the event first, so no personal field
(an event class's ``PERSONAL``) reaches any of them in clear: each of its text values, in
every form a message quotes it (as is, line by line, Python- and JSON-escaped), reads
:data:`HIDDEN`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

#: what a personal value of a failed event reads in its failure's text
HIDDEN = "[personal]"


def personal_hider(event: Any) -> Callable[[str], str]:
    """A function hiding ``event``'s personal values in a text (identity when it has none)."""
    forms: set[str] = set()
    for name in getattr(type(event), "PERSONAL", ()):
        try:
            value = event.__dict__.get(name)
        except AttributeError:  # not a decoded event
            continue
        for text in _texts(value):  # a message's first line may hold a value's first line
            forms.update({text, repr(text)[1:-1], *text.splitlines(),
                          json.dumps(text)[1:-1], json.dumps(text, ensure_ascii=False)[1:-1]})
    forms.discard("")
    if not forms:
        return _same
    pattern = re.compile("|".join(re.escape(f) for f in sorted(forms, key=len, reverse=True)))
    return lambda text: pattern.sub(HIDDEN, text)


def _texts(value: Any) -> Iterator[str]:
    """The text leaves of a field's value (a handover document holds lists of texts)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _texts(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _texts(v)


def _same(text: str) -> str:
    return text
