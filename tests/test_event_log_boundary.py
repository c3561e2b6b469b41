"""Issue 18, finding 6: only the stores package knows the events tables; the read side and
everything else reach events through the event-log interface (stores/event_log.py)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the events table and the tables written with it (chain digests, heads)
EVENT_TABLES = re.compile(r"\b(lifecycle_events|stored_events|event_digests|chain_heads)\b")


def test_no_sql_of_the_events_tables_outside_stores() -> None:
    sources = [*ROOT.joinpath("src", "lifecycle_es").rglob("*.py"),
               *ROOT.joinpath("projections").rglob("*.py")]
    assert sources
    outside = [p for p in sources if "stores" not in p.relative_to(ROOT).parts]
    found = [str(p.relative_to(ROOT)) for p in outside if EVENT_TABLES.search(p.read_text())]
    assert found == []


def test_the_check_sees_the_stores_package() -> None:
    """The pattern matches where the tables are defined (so the check above can fail)."""
    stores = ROOT.joinpath("src", "lifecycle_es", "stores")
    assert any(EVENT_TABLES.search(p.read_text()) for p in stores.rglob("*.py"))
