"""What an erased customer's personal fields read as (docs/privacy.md).

Personal fields are the ones an event class lists in ``PERSONAL``. Once a customer is erased
(its data key deleted, ``lifecycle-es erase``), every read of them gives these placeholders:
text fields read :data:`ERASED`, the handover document reads :func:`erased_document`.
"""

from __future__ import annotations

from typing import Any

#: what an erased customer's personal text fields read as
ERASED = "[erased]"


def erased_document() -> dict[str, Any]:
    """What an erased customer's handover document reads as (a new dict each time)."""
    return {"erased": True}
