"""The 1/10 CDNOW sample of Fader, Hardie & Lee (2005) as a lifecycle history.

``tests/fixtures/cdnow_sample.csv`` is ``lifetimes/datasets/CDNOW_sample.txt`` of the
``lifetimes`` package 0.11.3 (public; 6,919 purchase records of 2,357 customers who first
bought in the first 12 weeks of 1997, to 1998-06-30), columns renamed: the sample's
customer id, the day (YYYYMMDD), the number of CDs and the dollars spent.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import orjson

CDNOW = Path(__file__).parent / "fixtures" / "cdnow_sample.csv"
#: Fader, Hardie & Lee's estimates on the calibration period (39 weeks, to 1997-09-30)
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def cdnow_rows() -> list[tuple[str, date, int]]:
    """(customer, day, cents) of every record, in file order."""
    with CDNOW.open(newline="") as f:
        return [(f"cd{r['customer']}", date(int(r["date"][:4]), int(r["date"][4:6]),
                                            int(r["date"][6:])),
                 round(float(r["dollars"]) * 100)) for r in csv.DictReader(f)]


def cdnow_lines() -> Iterator[bytes]:
    """The sample as JSON Lines: each customer registered on the day of its first record,
    each record a payment in USD at noon (UTC)."""
    seen: set[str] = set()
    for customer, day, cents in sorted(cdnow_rows(), key=lambda r: (r[1], r[0])):
        if customer not in seen:
            seen.add(customer)
            yield orjson.dumps({
                "type": "customer_registered", "customer": customer,
                "at": f"{day}T00:00:00Z", "actor": "import", "team": "marketing",
                "name": f"CDNOW {customer}", "segment": "retail", "source": "cdnow"})
        yield orjson.dumps({"type": "payment", "customer": customer,
                            "at": f"{day}T12:00:00Z", "actor": "import", "team": "sales",
                            "amount": cents, "currency": "USD"})
