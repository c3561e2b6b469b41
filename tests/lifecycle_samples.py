"""A hand-written, valid history that uses every one of the 27 commands (shared by the
command, import and CLI tests), plus the library method name of each command type."""

from __future__ import annotations

from typing import Any

import orjson

#: JSON Lines type -> LifecycleEngine method.
METHOD = {
    "customer_registered": "register", "touchpoint": "touchpoint",
    "stage_changed": "change_stage", "owner_assigned": "assign_owner",
    "owner_released": "release_owner", "handover_sent": "send_handover",
    "handover_accepted": "accept_handover", "handover_rejected": "reject_handover",
    "purchase": "purchase", "payment": "payment", "renewal": "renewal",
    "expansion": "expansion", "contraction": "contraction", "churned": "churn",
    "won_back": "win_back", "nps_answer": "nps_answer", "csat_answer": "csat_answer",
    "check_in": "check_in", "advocacy_requested": "request_advocacy",
    "advocacy_given": "give_advocacy", "event_voided": "void_event",
    "campaign_announced": "announce_campaign", "campaign_amended": "amend_campaign",
    "campaign_ended": "end_campaign", "gap_assigned": "assign_gap",
    "gap_snoozed": "snooze_gap", "gap_dismissed": "dismiss_gap",
}


def _c(type_: str, day: int, team: str = "sales", actor: str = "ann",
       customer: str = "acme", **fields: Any) -> dict[str, Any]:
    return {"type": type_, "customer": customer, "at": f"2024-02-{day:02d}T10:00:00+01:00",
            "actor": actor, "team": team, **fields}


def _k(type_: str, day: int, **fields: Any) -> dict[str, Any]:
    return {"type": type_, "campaign": "spring", "at": f"2024-02-{day:02d}T08:00:00Z",
            "actor": "mia", "team": "marketing", **fields}


#: Every command once or more, in an order the rules accept. Customer "acme" ends at
#: version 28 (see the comments); "globex" is registered by the referral.
FULL_LIFECYCLE: list[dict[str, Any]] = [
    _k("campaign_announced", 1, name="Spring", offer="20% off the first year",
       discount_percent=20, starts="2024-02-01", ends="2024-04-30", segment="smb",
       owning_team="marketing"),
    _k("campaign_amended", 2, ends="2024-05-31"),
    _c("customer_registered", 2, team="marketing", actor="mia", name="Acme Ltd",
       segment="smb", source="webinar"),  # v1
    _c("touchpoint", 3, team="marketing", actor="mia", channel="email",
       campaign_id="spring", notes="opened the offer"),  # v2
    _c("stage_changed", 4, to_stage="consideration", reason="asked for a demo"),  # v3
    _c("owner_assigned", 4, owner="ann"),  # v4
    _c("handover_sent", 5, handover_id="warm-1", from_team="sales", to_team="support",
       to_person="sam", document={"goals": ["answer SSO questions"]}),  # v5
    _c("handover_rejected", 5, team="support", actor="sam", handover_id="warm-1",
       reason="needs an engineer"),  # v6
    _c("stage_changed", 6, to_stage="purchase"),  # v7
    _c("purchase", 7, plan="pro", mrr=4900, currency="EUR", contract_start="2024-02-07",
       contract_end="2025-02-06"),  # v8
    _c("payment", 7, team="support", actor="bill", amount=4900, currency="EUR"),  # v9
    _c("owner_released", 8, reason="handing over to success"),  # v10
    _c("handover_sent", 8, handover_id="h-1", from_team="sales", to_team="success",
       to_person="sue", document={"goals": ["live in 30 days"],
                                  "features_of_interest": ["SSO", "API"],
                                  "features_known": ["dashboards"], "risks": ["budget"],
                                  "notes": "CFO is sceptical"}),  # v11
    _c("handover_accepted", 9, team="success", actor="sue", handover_id="h-1"),  # v12
    _c("stage_changed", 9, team="success", actor="sue", to_stage="onboarding"),  # v13
    _c("check_in", 12, team="success", actor="sue", notes="first dashboard live"),  # v14
    _c("expansion", 14, team="success", actor="sue", mrr_delta=2000),  # v15
    _c("contraction", 15, team="success", actor="sue", mrr_delta=900),  # v16
    _c("nps_answer", 16, team="success", actor="sue", score=9, comment="great"),  # v17
    _c("csat_answer", 16, team="support", actor="sam", score=4),  # v18
    _c("advocacy_requested", 17, team="success", actor="sue", kind="referral"),  # v19
    _c("customer_registered", 18, team="sales", customer="globex", name="Globex",
       segment="mid", source="referral"),
    _c("advocacy_given", 18, team="success", actor="sue", kind="referral",
       referred_customer="globex"),  # v20
    _c("renewal", 19, team="success", actor="sue", new_contract_end="2026-02-06",
       new_mrr=6500),  # v21
    _c("nps_answer", 20, team="success", actor="sue", score=2),  # v22, entered by mistake
    _c("event_voided", 20, team="success", actor="sue", voided_version=22,
       reason="answer belonged to another customer"),  # v23
    _c("churned", 21, team="success", actor="sue", reason="budget"),  # v24
    _c("won_back", 25, team="sales", mrr=3000),  # v25
    _c("gap_assigned", 26, team="success", actor="sue", gap_id="handover_stale:acme:h-1",
       assignee="sue"),  # v26
    _c("gap_snoozed", 26, team="success", actor="sue", gap_id="renewal_at_risk:acme:20260206",
       until="2024-03-15", reason="renewal call booked"),  # v27
    _c("gap_dismissed", 27, team="success", actor="sue",
       gap_id="promoter_not_asked:acme:20240216T090000Z", reason="asked by phone"),  # v28
    _k("campaign_ended", 26, reason="budget spent"),
]

ACME_VERSION = 28


def jsonl(commands: list[dict[str, Any]]) -> str:
    """Commands as JSON Lines text."""
    return "".join(orjson.dumps(c).decode() + "\n" for c in commands)
