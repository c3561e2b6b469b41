"""docs/projections.md stays true: generated table reference, and the worked example works."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cli_helpers import cli

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.projection.docs import builtin_projections, render

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "projections.md"
EXAMPLES = ROOT / "docs" / "examples" / "projections"
T0 = datetime(2024, 3, 1, tzinfo=UTC)


def test_table_reference_is_generated_from_the_code() -> None:
    text = DOC.read_text()
    assert render(text, builtin_projections()) == text, (
        "docs/projections.md is out of date: run "
        "`python -m lifecycle_es.reading.projection.docs docs/projections.md`")


@pytest.mark.parametrize("name", ["current_stage", "handover_history"])
def test_every_builtin_column_is_documented(name: str) -> None:
    cls = {c.name: c for c in builtin_projections()}[name]
    for table in cls.tables:
        assert set(table.doc) == set(table.columns), table.name


def test_worked_example_in_the_doc_is_the_tested_file() -> None:
    code = (EXAMPLES / "nps_latest.py").read_text()
    assert f"```python\n{code}```" in DOC.read_text()


def test_worked_example_projects_nps(durable_store_url: str) -> None:
    eng = LifecycleEngine(durable_store_url, projections_path=[str(EXAMPLES)])
    try:
        meta = {"actor": "ann", "team": "success"}
        eng.register(customer="acme", name="Acme", segment="smb", source="web", at=T0, **meta)
        eng.register(customer="beta", name="Beta", segment="smb", source="web", at=T0, **meta)
        eng.nps_answer(customer="acme", score=3, at=T0 + timedelta(days=1), **meta)
        eng.nps_answer(customer="acme", score=10, at=T0 + timedelta(days=2), **meta)
        eng.nps_answer(customer="beta", score=8, at=T0 + timedelta(days=3), **meta)
        pm = eng.projections
        pm.catch_up(["nps_latest"])
        rows = {r["customer"]: r for r in pm.fetch("nps_latest")}
        assert (rows["acme"]["score"], rows["acme"]["category"], rows["acme"]["answers"]) == (
            10, "promoter", 2)
        assert rows["beta"]["category"] == "passive"
        eng.void_event(customer="acme", voided_version=3, reason="wrong form",
                       at=T0 + timedelta(days=4), **meta)
        pm.catch_up(["nps_latest"])
        acme = pm.fetch("nps_latest", "customer=?", ["acme"])[0]
        assert (acme["score"], acme["category"], acme["answers"]) == (3, "detractor", 1)
    finally:
        eng.close()
    out = cli(durable_store_url, "--projections-path", str(EXAMPLES), "projections", "rebuild",
              "nps_latest")
    assert out.stdout.startswith("rebuilt nps_latest")
