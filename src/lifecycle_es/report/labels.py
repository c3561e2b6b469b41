"""Words for the report's readers: gap kinds, stages, teams and health factors by their
human names, durations in days, weeks, months or years, factor values with their unit."""

from __future__ import annotations

#: gap kind -> (what it is, what to do about it)
GAP_KINDS: dict[str, tuple[str, str]] = {
    "renewal_at_risk": ("Renewal at risk", "check in before the contract ends"),
    "handover_stale": ("Handover not accepted", "get the receiving team to accept it"),
    "detractor_ignored": ("Unhappy customer not contacted",
                          "call back the customer who gave a low NPS"),
    "unowned": ("No owner", "assign an owner"),
    "stalled": ("Stuck in a stage", "move the customer on, or close the lead"),
    "promoter_not_asked": ("Promoter not asked", "ask the happy customer for a review or "
                                                 "referral"),
    "unknown_offer": ("Offer from an unknown campaign",
                      "check the offer: its campaign is unknown or was not running"),
    "lapsing": ("Valuable buyer lapsing",
                "get in touch: a customer worth much has likely stopped buying"),
}

#: health factor -> its name for people
FACTORS: dict[str, str] = {
    "last_nps": "Last NPS",
    "days_since_check_in": "Last check-in",
    "open_gaps": "Open gaps",
    "mrr_trend": "MRR trend",
    "stalled_days": "Days stalled",
    "advocacy_given": "Advocacy",
    "still_buying": "Still buying",
}

#: what the still_buying factor's value means, for a sentence beside it
STILL_BUYING = ("the probability that this customer, who buys without a contract, has not "
                "stopped buying for good, judged from how often and how recently they "
                "bought (BG/NBD model)")


def words(code: str | None) -> str:
    """A code name as words: ``customer_success`` -> ``Customer success``."""
    if not code:
        return ""
    text = code.replace("_", " ").replace("-", " ").strip()
    return text[:1].upper() + text[1:]


def gap_kind(kind: str) -> str:
    return GAP_KINDS.get(kind, (words(kind), ""))[0]


def gap_action(kind: str) -> str:
    return GAP_KINDS.get(kind, ("", ""))[1]


def factor(name: str) -> str:
    return FACTORS.get(name, words(name))


def duration(days: float) -> str:
    """A length of time rounded as people say it: ``5 h``, ``12 days``, ``7 weeks``,
    ``5 months``, ``2.7 years``."""
    if days < 1:
        return f"{max(1, round(days * 24))} h"
    if days < 28:
        n = round(days)
        return f"{n} day" if n == 1 else f"{n} days"
    if days < 91:
        return f"{round(days / 7)} weeks"
    if days < 730:
        return f"{round(days / 30.44)} months"
    return f"{days / 365.25:.1f} years"


def factor_value(name: str, value: float | None) -> str:
    """A health factor's raw value with its unit."""
    if value is None:
        return {"days_since_check_in": "never", "last_nps": "no answer",
                "mrr_trend": "no MRR before"}.get(name, "none")
    if name in ("days_since_check_in", "stalled_days"):
        return "0 days" if value == 0 else duration(value)
    if name == "mrr_trend":
        return f"{value:+.1f}%"
    if name == "still_buying":
        return f"{100 * value:.0f}%"
    return f"{value:g}"
