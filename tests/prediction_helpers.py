"""Small purchase histories for the prediction tests: customers buying as BG/NBD has it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import numpy as np

from lifecycle_es import LifecycleEngine

START = date(2025, 1, 1)
WHO = {"actor": "ann", "team": "sales"}


def at(day: int, hour: int = 12) -> str:
    return datetime.combine(START + timedelta(days=day), time(hour), UTC).isoformat()


def register(engine: LifecycleEngine, customer: str, day: int = 0) -> None:
    engine.register(customer=customer, at=at(day, 0), actor="mia", team="marketing",
                    name=customer, segment="smb", source="web")


def pay(engine: LifecycleEngine, customer: str, day: int, cents: int, hour: int = 12,
        currency: str = "EUR") -> int:
    return engine.payment(customer=customer, amount=cents, currency=currency,
                          at=at(day, hour), **WHO)


def shop(engine: LifecycleEngine, customers: int = 150) -> None:
    """Customers buying and stopping as BG/NBD has it (r 0.5, alpha 20 days, a 1, b 3),
    first buying in the first 30 days, up to day 160, spending as Gamma-Gamma has it."""
    rng = np.random.default_rng(7)
    lines = []
    for i in range(customers):
        c, born = f"c{i:03d}", int(rng.integers(0, 30))
        rate, death, spend = rng.gamma(0.5, 1 / 20), rng.beta(1, 3), rng.gamma(5, 400)
        lines.append({"type": "customer_registered", "customer": c, "at": at(born, 0),
                      "actor": "mia", "team": "marketing", "name": c, "segment": "smb",
                      "source": "web"})
        t = float(born)
        while t <= 160:
            lines.append({"type": "payment", "customer": c, "at": at(int(t)), **WHO,
                          "amount": 1 + int(rng.gamma(3, spend)), "currency": "EUR"})
            if t > born and rng.random() < death:  # a repeat purchase may be the last
                break
            t += rng.exponential(1 / rate)
    engine.import_lines([json.dumps(line) for line in lines])
