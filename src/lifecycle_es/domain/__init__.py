"""The domain: customer, campaign, user and API token aggregates, their events, the stage
model."""

from lifecycle_es.domain.campaign import CAMPAIGN_EVENTS, Campaign
from lifecycle_es.domain.customer import CUSTOMER_EVENTS, Customer, CustomerState, Handover
from lifecycle_es.domain.ids import campaign_id, customer_id
from lifecycle_es.domain.money import Money
from lifecycle_es.domain.stage_model import (
    CHURNED,
    CLASSIC,
    CUSTOMER_SUCCESS,
    PRESETS,
    Stage,
    StageModel,
    load_stage_model,
)
from lifecycle_es.domain.token import TOKEN_EVENTS, ApiToken
from lifecycle_es.domain.user import ROLES, USER_EVENTS, User

#: snake_case type name -> event class, for every event of every aggregate.
EVENT_TYPES = {**CUSTOMER_EVENTS, **CAMPAIGN_EVENTS, **USER_EVENTS, **TOKEN_EVENTS}

__all__ = [
    "CAMPAIGN_EVENTS", "CHURNED", "CLASSIC", "CUSTOMER_EVENTS", "CUSTOMER_SUCCESS",
    "EVENT_TYPES", "PRESETS", "ROLES", "TOKEN_EVENTS", "USER_EVENTS", "ApiToken", "Campaign",
    "Customer", "CustomerState",
    "Handover", "Money", "Stage", "StageModel", "User", "campaign_id", "customer_id",
    "load_stage_model",
]
