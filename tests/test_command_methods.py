"""Issue 25, item 8: the typed write API.

Every command method's keyword parameters equal its pydantic model's fields (names, required
or optional, defaults, types as the model accepts them), so ``mypy --strict`` rejects a
misspelt field or a wrong type in user code; at run time the model still validates (a bad
field raises InvalidInput naming it) and the values accepted before still are.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tempfile
import types
import typing
from collections.abc import Mapping
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import AwareDatetime

import lifecycle_es
from lifecycle_es import LifecycleEngine
from lifecycle_es.commands import COMMANDS, USER_COMMANDS, HandoverDocument
from lifecycle_es.errors import InvalidInput
from lifecycle_es.writing.application import LifecycleApplication
from lifecycle_es.writing.command_methods import COMMAND_METHODS, USER_METHODS, CommandMethods

ROOT = Path(__file__).parent.parent


def _base(annotation: Any) -> tuple[Any, bool]:
    """The type inside Annotated/Optional, and whether None is allowed."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _base(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        assert len(args) == 1, annotation
        return _base(args[0])[0], type(None) in typing.get_args(annotation)
    return annotation, False


def accepted(annotation: Any) -> set[Any]:
    """The types a method parameter must take for a model field of ``annotation``: what the
    model accepts from Python callers (text for times and days, a dict for a document)."""
    base, optional = _base(annotation)
    wider = {AwareDatetime: {datetime, str}, date: {date, str},
             HandoverDocument: {HandoverDocument, Mapping[str, Any]}}.get(base, {base})
    return wider | ({type(None)} if optional else set())


def hinted(hint: Any) -> set[Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return set(typing.get_args(hint))
    return {hint}


def test_every_command_has_exactly_one_method() -> None:
    assert sorted(COMMAND_METHODS.values()) == sorted(COMMANDS)
    assert sorted(USER_METHODS.values()) == sorted(USER_COMMANDS)  # the console's users too
    for name in (*COMMAND_METHODS, *USER_METHODS):
        assert name in CommandMethods.__dict__
        assert getattr(LifecycleApplication, name) is CommandMethods.__dict__[name]
        assert getattr(LifecycleEngine, name).__wrapped__ is CommandMethods.__dict__[name]


@pytest.mark.parametrize("method", sorted({**COMMAND_METHODS, **USER_METHODS}))
def test_method_parameters_equal_the_model_fields(method: str) -> None:
    func = getattr(CommandMethods, method)
    model = {**COMMANDS, **USER_COMMANDS}[{**COMMAND_METHODS, **USER_METHODS}[method]]
    params = dict(inspect.signature(func).parameters)
    assert next(iter(params)) == "self"
    del params["self"]
    fields = {n: f for n, f in model.model_fields.items() if n != "type"}
    assert set(params) == set(fields)
    hints = typing.get_type_hints(func.__wrapped__)
    for name, p in params.items():
        field = fields[name]
        assert p.kind is inspect.Parameter.KEYWORD_ONLY, name
        assert (p.default is inspect.Parameter.empty) == field.is_required(), name
        if not field.is_required():
            default = field.get_default(call_default_factory=True)
            assert p.default == default, name
        assert hinted(hints[name]) == accepted(field.annotation), name
    doc = inspect.getdoc(func)
    assert doc and "\n" not in doc, f"{method}: one-line docstring"
    assert hints["return"] is int


def test_values_accepted_before_still_are() -> None:
    engine = LifecycleEngine("memory://")
    who: dict[str, Any] = {"actor": "ann", "team": "sales"}
    assert engine.register(customer="acme", at="2024-01-02T09:00:00Z", name="Acme",
                           segment="smb", source="web", **who) == 1
    assert engine.purchase(customer="acme", at=datetime(2024, 1, 3, tzinfo=UTC),
                           plan="pro", mrr=4900, currency="EUR",
                           contract_start="2024-01-03", contract_end=date(2025, 1, 2),
                           **who) == 2
    assert engine.send_handover(customer="acme", at="2024-01-04T09:00:00+01:00",
                                handover_id="h1", from_team="sales", to_team="success",
                                document={"goals": ["live"]}, **who) == 3
    assert engine.send_handover(customer="acme", at="2024-01-05T09:00:00Z", handover_id="h2",
                                from_team="sales", to_team="success",
                                document=HandoverDocument(risks=["late"]), **who) == 4
    assert engine.customer("acme").state.mrr == 4900


def test_bad_fields_still_raise_invalid_input_naming_them() -> None:
    engine = LifecycleEngine("memory://")
    call: Any = engine.register  # the misspelling below is what mypy rejects statically
    with pytest.raises(InvalidInput, match="custmer"):
        call(custmer="acme", at="2024-01-02T09:00:00Z", actor="ann", team="sales",
             name="Acme", segment="smb", source="web")
    with pytest.raises(InvalidInput, match=r"mrr='49\.00'"):
        engine.purchase(customer="acme", plan="pro", mrr="49.00",  # type: ignore[arg-type]
                        currency="EUR", contract_start="2024-01-03",
                        contract_end="2025-01-02", at="2024-01-03T09:00:00Z", actor="ann",
                        team="sales")
    assert engine.event_log.head() == 0


SNIPPET = '''\
from lifecycle_es import LifecycleEngine

engine = LifecycleEngine("memory://")
engine.register(customer="acme", at="2024-01-02T09:00:00Z", actor="ann", team="sales",
                name="Acme", segment="smb", source="web")
engine.purchase(customer="acme", plan="pro", mrr=4900, currency="EUR",
                contract_start="2024-01-03", contract_end="2025-01-02",
                at="2024-01-03T09:00:00Z", actor="ann", team="sales")
engine.register(custmer="acme", at="2024-01-02T09:00:00Z", actor="ann", team="sales",
                name="Acme", segment="smb", source="web")
engine.payment(customer="acme", amount="49.00", currency="EUR",
               at="2024-01-03T09:00:00Z", actor="ann", team="sales")
'''


def test_mypy_strict_rejects_a_misspelt_field_and_a_wrong_type(tmp_path: Path) -> None:
    """mypy on a small file of user code, the project as installed (this checkout)."""
    pytest.importorskip("mypy")
    snippet = tmp_path / "user_code.py"
    snippet.write_text(SNIPPET)
    cache = Path(tempfile.gettempdir()) / "lifecycle-es-mypy-cache"
    src = Path(lifecycle_es.__file__).parent.parent
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache),
         "--config-file", str(ROOT / "pyproject.toml"), str(snippet)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(src)})
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    lines = sorted({int(line.split(":")[1]) for line in errors})
    assert lines == [9, 11], done.stdout + done.stderr
    assert any('Unexpected keyword argument "custmer"' in e for e in errors), errors
    assert any('"amount"' in e and '"str"' in e and '"int"' in e for e in errors), errors
