"""Random valid command histories for projection tests and the rebuild benchmark.

``commands(customers, seed)`` yields valid commands (including handovers, money, churn,
win-back and voids); validity is checked by applying each candidate to an in-memory
aggregate, so the generator never disagrees with the domain rules.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from lifecycle_es.commands import Command, build_command
from lifecycle_es.domain.customer import Customer
from lifecycle_es.domain.stage_model import CLASSIC, StageModel
from lifecycle_es.errors import LifecycleError

ACTIONS = (
    "touchpoint", "stage_changed", "owner_assigned", "owner_released", "handover_sent",
    "handover_accepted", "handover_rejected", "purchase", "payment", "renewal", "expansion",
    "contraction", "churned", "won_back", "nps_answer", "csat_answer", "check_in",
    "advocacy_requested", "advocacy_given", "event_voided",
)
START = datetime(2022, 1, 1, tzinfo=UTC)


def _fields(action: str, c: Customer, r: random.Random, model: StageModel) -> dict[str, Any]:
    s = c.state
    if action == "touchpoint":
        return {"channel": r.choice(["email", "web", "call"]), "notes": r.choice([None, "hi"])}
    if action == "stage_changed":
        targets = model.allowed_targets(s.stage) or ["awareness"]
        return {"to_stage": r.choice(targets)}
    if action == "owner_assigned":
        return {"owner": r.choice(["ann", "bob", "cid", "dee"])}
    if action == "owner_released":
        return {}
    if action == "handover_sent":
        return {"handover_id": f"h{len(s.handovers) + 1}", "from_team": "sales",
                "to_team": r.choice(["success", "support"]),
                "to_person": r.choice([None, "eve"]),
                "document": {"goals": ["grow"], "risks": [r.choice(["none", "budget"])]}}
    if action in ("handover_accepted", "handover_rejected"):
        pending = [h for h, v in s.handovers.items() if v.status == "pending"] or ["h0"]
        extra = {"reason": "busy"} if action == "handover_rejected" else {}
        return {"handover_id": r.choice(pending), **extra}
    if action == "purchase":
        return {"plan": "pro", "mrr": r.randrange(1000, 9000), "currency": "EUR",
                "contract_start": "2022-01-01", "contract_end": "2023-01-01"}
    if action == "payment":
        return {"amount": r.randrange(100, 9000), "currency": "EUR"}
    if action == "renewal":
        return {"new_contract_end": "2024-01-01", "new_mrr": r.choice([None, 5000])}
    if action in ("expansion", "contraction"):
        return {"mrr_delta": r.randrange(1, 500)}
    if action == "churned":
        return {"reason": "price"}
    if action == "won_back":
        return {"mrr": r.randrange(1000, 5000)}
    if action in ("nps_answer", "csat_answer"):
        return {"score": r.randrange(0, 11) if action == "nps_answer" else r.randrange(1, 6)}
    if action == "check_in":
        return {}
    if action in ("advocacy_requested", "advocacy_given"):
        return {"kind": r.choice(["testimonial", "review"])}
    assert action == "event_voided"
    return {"voided_version": r.randrange(2, c.version + 1) if c.version > 1 else 2,
            "reason": "typo"}


def _try(cmd: Command, agg: Customer, model: StageModel) -> bool:
    try:
        cmd.apply(agg, model)  # type: ignore[attr-defined]
    except LifecycleError:
        return False
    agg.collect_events()
    return True


def commands_from_choices(
    choices: Sequence[tuple[int, int, int]], customers: int, model: StageModel = CLASSIC,
) -> list[Command]:
    """Valid commands from (customer index, action index, seed) triples; invalid ones skipped."""
    aggs: dict[int, Customer] = {}
    out: list[Command] = []
    at = START
    for who, action_index, seed in choices:
        who %= customers
        at += timedelta(minutes=37 + seed % 600)
        meta = {"at": at, "actor": "ann", "team": "sales", "customer": f"c{who}"}
        if who not in aggs:
            cmd = build_command("customer_registered",
                                {**meta, "name": f"Cust {who}", "segment": "smb",
                                 "source": "web"})
            agg = cmd.create(model)  # type: ignore[attr-defined]
            agg.collect_events()
            aggs[who] = agg
            out.append(cmd)
            continue
        agg = aggs[who]
        action = ACTIONS[action_index % len(ACTIONS)]
        try:
            cmd = build_command(action, {**meta, **_fields(action, agg, random.Random(seed),
                                                            model)})
        except LifecycleError:
            continue
        if _try(cmd, agg, model):
            out.append(cmd)
    return out


def commands(customers: int, events_per_customer: int = 10, seed: int = 1,
             start: int = 0) -> Iterator[Command]:
    """About ``customers * events_per_customer`` valid commands, customer by customer."""
    r = random.Random(seed)
    for who in range(start, start + customers):
        choices = [(who, 0, 0)] + [
            (who, r.randrange(len(ACTIONS) * 3) % len(ACTIONS), r.randrange(1 << 30))
            for _ in range(events_per_customer * 2)
        ]
        produced = commands_from_choices(choices, customers=start + customers)
        yield from produced[:events_per_customer]


def write(engine: Any, customers: int, events_per_customer: int = 10, seed: int = 1,
          start: int = 0) -> int:
    """Record a generated history (customers c<start>...) through the bulk path."""
    cmds = list(commands(customers, events_per_customer, seed, start))
    return int(engine.record_many(cmds).events)


def snapshot(pm: Any, names: Sequence[str] = ("current_stage", "handover_history"),
             ) -> dict[str, list[dict[str, Any]]]:
    """Every row of the named read models' live tables, in key order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        for table in pm.projections[name].tables:
            out[table.name] = pm.fetch(table.name, order=", ".join(table.key))
    return out
