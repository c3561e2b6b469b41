"""The frozen log: every release must read the events the release of 2026-12-02 stored.

``tests/fixtures/frozen_log/`` holds that release's log (``store.db``, a SQLite store, and
``events.jsonl`` + ``keys.jsonl``, the stored events and keys as exported) covering every event
type and every optional field, an erased customer among them, and the CLI's answers for it
(``expected/``). A change to an event class that breaks these tests needs an upcaster
(docs/evolution.md), not new fixtures.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest
from cli_helpers import cli
from eventsourcing.utils import clear_topic_cache

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain.customer import Customer, CustomerState
from lifecycle_es.stores import codec

FROZEN = Path(__file__).parent / "fixtures" / "frozen_log"


def _maker() -> Any:
    """``make.py``, which wrote the fixture: its master key and the queries it answered."""
    spec = importlib.util.spec_from_file_location("frozen_log_make", FROZEN / "make.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_MAKE = _maker()
MASTER_KEY: str = _MAKE.MASTER_KEY
QUERIES: dict[str, list[str]] = _MAKE.QUERIES


@pytest.fixture(autouse=True)
def frozen_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFECYCLE_ES_MASTER_KEY", MASTER_KEY)


def answers_match(url: str) -> None:
    cli(url, "projections", "rebuild")
    for name, args in QUERIES.items():
        got = json.loads(cli(url, *args).stdout)
        assert got == json.loads((FROZEN / "expected" / f"{name}.json").read_text()), name
    verdict = cli(url, "audit", "verify")
    assert "clean" in verdict.stdout + verdict.stderr


def test_the_frozen_sqlite_store_reads_as_it_did(tmp_path: Path) -> None:
    shutil.copy(FROZEN / "store.db", tmp_path / "store.db")
    answers_match(f"sqlite:///{tmp_path / 'store.db'}")


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_the_frozen_export_loads_and_reads_as_it_did(
        kind: str, store_url_factory: Callable[[str], str]) -> None:
    url = store_url_factory(kind)
    engine = LifecycleEngine(url)
    try:
        load_export(engine)
    finally:
        engine.close()
    answers_match(url)


def load_export(engine: LifecycleEngine) -> None:
    """The exported events and keys, written as stored (one transaction)."""
    assert engine.writer.keyring is not None
    keys = [json.loads(line) for line in (FROZEN / "keys.jsonl").read_text().splitlines()]
    engine.writer.keyring.adopt((k["aggregate"], None if k["wrapped"] is None
                          else base64.b64decode(k["wrapped"])) for k in keys)
    events = [json.loads(line) for line in (FROZEN / "events.jsonl").read_text().splitlines()]
    rows = [(e["aggregate"], e["version"], e["topic"], base64.b64decode(e["state"]))
            for e in events]
    with engine.writer.recorder.bulk() as write:  # type: ignore[attr-defined]
        assert write(rows) == [e["position"] for e in events]


def test_a_renamed_field_with_an_upcaster_reads_the_frozen_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The mechanism once: check_in's personal ``notes`` renamed ``summary`` (version 2)."""

    class CheckedIn(Customer.Event):
        summary: str | None
        TYPE = "check_in"
        PERSONAL: ClassVar[tuple[str, ...]] = ("summary",)
        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["summary"] = state.pop("notes")

        def fold(self, s: CustomerState) -> None:
            s.last_check_in_at = self.occurred_at

    CheckedIn.__qualname__ = "Customer.CheckedIn"
    monkeypatch.setattr(Customer, "CheckedIn", CheckedIn)
    clear_topic_cache()  # topics resolved by earlier tests name the real class
    codec._class_of.cache_clear()
    try:
        shutil.copy(FROZEN / "store.db", tmp_path / "store.db")
        engine = LifecycleEngine(f"sqlite:///{tmp_path / 'store.db'}")
        try:
            checks = [e for e in engine.history("story") if isinstance(e, CheckedIn)]
            assert [e.summary for e in checks] == ["all good"]
            gone = [e for e in engine.history("gone") if isinstance(e, CheckedIn)]
            assert [e.summary for e in gone] == ["[erased]"]  # erased: the placeholder
            assert engine.customer("story").state.last_check_in_at is not None
            # the audit queries, the rebuild (pages by aggregate) and the live catch-up
            # (pages in log order) read through the same codec
            timeline = engine.audit.timeline("story")
            assert [t.fields.get("summary") for t in timeline if t.type == "check_in"] == [
                "all good"]
            # (read models route by class: the stand-in reaches none of them, so compare
            # one that check-ins do not touch)
            key = "customer, handover_id"
            before = engine.projections.fetch("handover_history", order=key)
            engine.projections.rebuild()
            assert engine.projections.fetch("handover_history", order=key) == before
            # the import loads the stored customer (its check-in upcast) to apply a command
            result = engine.import_lines([json.dumps({
                "type": "payment", "customer": "story", "at": "2026-08-01T10:00:00Z",
                "actor": "ann", "team": "sales", "amount": 100, "currency": "EUR"})])
            assert result.events == 1
            assert engine.projections.catch_up() == 1
        finally:
            engine.close()
    finally:  # the library's topic caches and the codec's forget the stand-in class
        clear_topic_cache()
        codec._class_of.cache_clear()
        codec._topic_of.cache_clear()
