"""Stable aggregate ids derived from the caller's external ids (UUID5)."""

from __future__ import annotations

from functools import lru_cache
from uuid import UUID, uuid5

#: Namespaces are fixed forever: changing them would orphan every stored customer.
CUSTOMER_NAMESPACE = UUID("6f1c1f4e-3b7a-5c59-9d0e-8f0b8a1c2d01")
CAMPAIGN_NAMESPACE = UUID("6f1c1f4e-3b7a-5c59-9d0e-8f0b8a1c2d02")


@lru_cache(maxsize=1 << 17)  # a bulk import asks for the same ids again and again
def customer_id(external_id: str) -> UUID:
    """The aggregate id of the customer known to the caller as ``external_id``."""
    return uuid5(CUSTOMER_NAMESPACE, external_id)


@lru_cache(maxsize=1 << 12)
def campaign_id(external_id: str) -> UUID:
    """The aggregate id of the campaign known to the caller as ``external_id``."""
    return uuid5(CAMPAIGN_NAMESPACE, external_id)
