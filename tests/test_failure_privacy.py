"""Erasure reaches failed-event records and logs: a read model failing on an event whose
personal values end up in the error's text never stores nor logs them in clear."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from test_privacy import postgres_bytes, sqlite_bytes

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.projection.personal_text import HIDDEN, personal_hider
from lifecycle_es.reading.projection.runner import ProjectionFailed

NOTE = "Zyx-call with Jane O'Brien, ill since May"
NAME = "Zyx-Person Name"
AT = {"at": "2024-03-01T10:00:00Z", "actor": "ann", "team": "sales"}

#: a read model whose handler fails quoting the check-in's notes (int() of the text)
QUOTING = '''
from lifecycle_es.domain import Customer
from lifecycle_es.projection import Projection, Table, Tables, on


class NotesAsNumbers(Projection):
    name = "notes_as_numbers"
    version = 1
    tables = (Table("notes_as_numbers", key=("customer",),
                    columns={"customer": "text", "n": "int"}),)

    @on(Customer.CheckedIn)
    def checked_in(self, e: Customer.CheckedIn, db: Tables) -> None:
        db["notes_as_numbers"].put({"customer": e.customer, "n": int(e.notes or "0")})
'''


def test_failure_texts_hide_personal_values(durable_store_url: str, tmp_path: Path,
                                            caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "custom"
    folder.mkdir()
    (folder / "notes_as_numbers.py").write_text(QUOTING)
    url = durable_store_url
    engine = LifecycleEngine(url, projections_path=[str(folder)])
    caplog.set_level(logging.INFO, logger="lifecycle_es")
    try:
        engine.register(customer="zed", name=NAME, segment="smb", source="web", **AT)
        engine.check_in(customer="zed", notes=NOTE, **AT)
        pm = engine.projections
        with pytest.raises(ProjectionFailed) as caught:
            pm.catch_up(["notes_as_numbers"])
        # Python quotes the note (holding an apostrophe) in double quotes
        expected = f'ValueError: invalid literal for int() with base 10: "{HIDDEN}"'
        assert NOTE not in str(caught.value) and expected in str(caught.value)
        (failure,) = pm.failures(["notes_as_numbers"])
        assert failure.error == expected
        pm.catch_up(["notes_as_numbers"], skip_failing=True)  # into projection_errors
        (skipped,) = pm.skipped(["notes_as_numbers"])
        assert skipped["error"] == failure.error and skipped["customer"] == "zed"
        logged = [json.dumps(r.msg, default=str) for r in caplog.records
                  if isinstance(r.msg, dict) and str(r.msg.get("event", "")).startswith(
                      "projection.")]
        assert any("projection.failed" in line for line in logged)
        assert any("projection.skipped_event" in line for line in logged)
        assert not [line for line in logged if "Zyx" in line]
        stored = (sqlite_bytes if url.startswith("sqlite") else postgres_bytes)(url)
        assert not [where for where, data in stored.items() if NOTE.encode() in data]
    finally:
        engine.close()


def test_every_form_of_a_personal_value_is_hidden() -> None:
    class Event:
        PERSONAL = ("notes", "document")

        def __init__(self) -> None:
            self.notes = "line one\nline 'two'"
            self.document = {"goals": ["grow ü"], "notes": None}

    event = Event()
    hide = personal_hider(event)
    assert hide(f"x {event.notes!r} y") == f'x "{HIDDEN}" y'  # as Python quotes it
    assert hide(json.dumps({"n": event.notes})) == f'{{"n": "{HIDDEN}"}}'  # as JSON
    assert hide("first: line one") == f"first: {HIDDEN}"  # a message's first line
    assert hide("goal grow ü and grow \\u00fc") == f"goal {HIDDEN} and {HIDDEN}"
    assert personal_hider(object())("nothing personal") == "nothing personal"
