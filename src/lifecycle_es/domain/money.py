"""A customer's money position and how each money event changes it: the one fold of money.

The aggregate (``CustomerState``) and every read model that tracks paying, MRR, currency or
the contract's end (``projections/current_stage.py``, ``metrics_facts.py``, ``gaps_facts.py``)
take the new position from :meth:`Customer.Event.money`, so the rules exist once.
"""

from __future__ import annotations

from datetime import date
from typing import NamedTuple


class Money(NamedTuple):
    """Paying or not, MRR in minor units, currency (ISO 4217) and the contract's last day.

    The events build a new one directly: ``_replace`` costs about five times as much, and
    money events are a third of a replay.
    """

    paying: bool = False
    mrr: int = 0
    currency: str | None = None
    contract_end: date | None = None
