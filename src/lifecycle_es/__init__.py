"""lifecycle-es: an event-sourced engine for the customer lifecycle.

Open an engine on a store and record what happened::

    from lifecycle_es import LifecycleEngine
    engine = LifecycleEngine("sqlite:///lifecycle.db")
    engine.register(customer="acme", at="2024-01-02T09:00:00Z", actor="ann",
                    team="marketing", name="Acme", segment="smb", source="web")
"""

from lifecycle_es.domain import CLASSIC, CUSTOMER_SUCCESS, Campaign, Customer, StageModel
from lifecycle_es.engine import ImportResult, LifecycleEngine, retry_on_conflict
from lifecycle_es.errors import (
    ConcurrencyConflict,
    InvalidInput,
    InvariantViolation,
    LifecycleError,
    StoreError,
    TransitionNotAllowed,
    UnknownCampaign,
    UnknownCustomer,
)

__version__ = "0.1.0"

__all__ = [
    "CLASSIC", "CUSTOMER_SUCCESS", "Campaign", "ConcurrencyConflict", "Customer",
    "ImportResult", "InvalidInput", "InvariantViolation", "LifecycleEngine", "LifecycleError",
    "StageModel", "StoreError", "TransitionNotAllowed", "UnknownCampaign", "UnknownCustomer",
    "__version__", "retry_on_conflict",
]
