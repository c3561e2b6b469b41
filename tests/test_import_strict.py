"""The import format as docs/import.md states it, strictly, for JSON Lines and the library
alike: ``at`` is a string (a number is not Unix seconds), a key is given once per line (the
JSON parser would keep the last), and a date field takes a date only. Each refusal is one
clear problem naming the field (and the line), and nothing is written."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import cli

from lifecycle_es import LifecycleEngine
from lifecycle_es.commands import parse_command
from lifecycle_es.errors import InvalidInput

BASE = {"actor": "ann", "team": "sales"}
REGISTER = {"type": "customer_registered", "customer": "acme", "at": "2024-01-02T09:00:00Z",
            "name": "Acme", "segment": "smb", "source": "web", **BASE}
PURCHASE = {"type": "purchase", "customer": "acme", "at": "2024-01-03T09:00:00Z", "plan": "pro",
            "mrr": 1000, "currency": "EUR", "contract_start": "2024-01-03",
            "contract_end": "2025-01-02", **BASE}


def line(command: dict[str, Any]) -> str:
    return json.dumps(command, separators=(",", ":"))


#: (a bad line as it stands in the file, the field named, words of the reason)
BAD_LINES = [
    (line({**REGISTER, "at": -1}), "at", "not a number"),
    (line({**REGISTER, "at": 1704186000}), "at", "not a number"),
    (line({**REGISTER, "at": 1704186000.5}), "at", "not a number"),
    (line(REGISTER)[:-1] + ',"customer":"evil"}', "customer", "more than once"),
    # white space before the colon, as JSON allows: not caught by a count of '":'
    (line(REGISTER)[:-1] + ', "customer" : "evil"}', "customer", "more than once"),
    (line(REGISTER)[:-1] + ',"customer"\t:"evil"}', "customer", "more than once"),
    (line({**PURCHASE, "contract_end": "2025-01-02T00:00:00"}), "contract_end", "no time"),
    (line({**PURCHASE, "contract_start": "2024-01-03T00:00:00Z"}), "contract_start",
     "no time"),
    (line({**PURCHASE, "contract_end": 1735776000}), "contract_end", "not a number"),
]


@pytest.mark.parametrize(("text", "field", "reason"), BAD_LINES)
def test_a_bad_line_is_refused_naming_field_and_line(text: str, field: str,
                                                     reason: str) -> None:
    with pytest.raises(InvalidInput) as exc:
        parse_command(text, 7)
    problems = [p for p in exc.value.problems if p.field == field]
    assert problems and all(p.line == 7 for p in problems), exc.value.problems
    assert reason in problems[0].reason
    assert str(exc.value).startswith("invalid command: line 7: ")


def test_a_repeated_key_in_a_handover_document_is_refused() -> None:
    command = {"type": "handover_sent", "customer": "acme", "at": "2024-01-05T09:00:00Z",
               "handover_id": "h1", "from_team": "sales", "to_team": "success", **BASE}
    text = line({**command, "document": {"goals": ["grow"]}})
    assert parse_command(text).document.goals == ["grow"]  # type: ignore[attr-defined]
    twice = text.replace('"goals":["grow"]', '"goals":["grow"],"goals":["shrink"]')
    with pytest.raises(InvalidInput, match="'goals' is given more than once") as exc:
        parse_command(twice, 3)
    assert [(p.field, p.value, p.line) for p in exc.value.problems] == [
        ("document.goals", ["shrink"], 3)]


@pytest.mark.parametrize("text", [
    line(REGISTER),
    json.dumps(REGISTER),  # the usual ", " and ": " separators
    json.dumps(REGISTER, indent=None, separators=(" , ", " : ")),  # white space everywhere
    line({**REGISTER, "name": 'Acme "x": y'}),  # a '":' inside a value
    line({**PURCHASE, "at": "2024-01-03T10:00:00+01:00"}),
])
def test_good_lines_still_pass(text: str) -> None:
    command = parse_command(text, 1)
    assert command.at.tzinfo is UTC


def test_the_library_refuses_the_same(tmp_path: Path) -> None:
    """The command models serve the library too: a number as ``at``, a datetime as a date
    (a ``datetime`` is a ``date`` to Python) are refused; a date and an aware datetime
    pass."""
    engine = LifecycleEngine("memory://")
    fields = {k: v for k, v in REGISTER.items() if k != "type"}
    with pytest.raises(InvalidInput, match=r"at=-1: expected an ISO 8601 time"):
        engine.register(**{**fields, "at": -1})
    engine.register(**{**fields, "at": datetime(2024, 1, 2, 9, tzinfo=UTC)})
    purchase = {k: v for k, v in PURCHASE.items() if k != "type"}
    with pytest.raises(InvalidInput, match=r"contract_end=.*no time"):
        engine.purchase(**{**purchase, "contract_end": datetime(2025, 1, 2, tzinfo=UTC)})
    assert engine.purchase(**{**purchase, "contract_end": date(2025, 1, 2)}) == 2
    with pytest.raises(InvalidInput, match=r"customer=.evil.*more than once"):
        engine.import_lines([line(REGISTER)[:-1] + ',"customer":"evil"}'])
    assert engine.customer("acme").version == 2
    engine.close()


@pytest.mark.parametrize(("text", "field", "reason"), [BAD_LINES[0], BAD_LINES[3],
                                                        BAD_LINES[6]])
def test_the_cli_refuses_and_writes_nothing(durable_store_url: str, tmp_path: Path,
                                            text: str, field: str, reason: str) -> None:
    """``lifecycle-es import``: exit 2, the problem on stderr naming the line and the field,
    and not even the good lines before it are written (SQLite and PostgreSQL)."""
    path = tmp_path / "in.jsonl"
    good = line({**REGISTER, "customer": "first"})
    path.write_text(f"{good}\n{text}\n")
    proc = cli(durable_store_url, "import", str(path), check=False)
    assert proc.returncode == 2, proc.stderr
    assert f"line 2: {field}=" in proc.stderr and reason in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr
    engine = LifecycleEngine(durable_store_url)
    assert engine.writer.recorder.max_notification_id() in (None, 0)
    engine.close()
