"""Columns declared personal are blanked on erasure in every read model, a user's too,
without an erasure handler of its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifecycle_es import LifecycleEngine
from lifecycle_es.privacy import ERASED
from lifecycle_es.projection import Column, Table

COPIES_THE_NAME = '''
from lifecycle_es.domain import Customer
from lifecycle_es.projection import Column, Projection, Table, Tables, on


class Contacts(Projection):
    name = "contacts"
    tables = (Table("contacts", key=("customer",), columns={
        "customer": "text", "name": Column("text", personal=True),
        "card": Column("json", personal=True), "digits": Column("int", personal=True),
        "note": "text", "empty": Column("text", personal=True)}),)

    @on(Customer.Registered)
    def registered(self, e: Customer.Registered, db: Tables) -> None:
        db["contacts"].put({"customer": e.customer, "name": e.name,
                            "card": {"name": e.name}, "digits": len(e.name),
                            "note": "kept", "empty": None})
'''


def at(day: int) -> dict[str, str]:
    return {"at": f"2024-03-{day:02d}T10:00:00Z", "actor": "ann", "team": "marketing"}


def test_a_users_read_model_forgets_an_erased_name(durable_store_url: str,
                                                   tmp_path: Path) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "contacts.py").write_text(COPIES_THE_NAME)
    eng = LifecycleEngine(durable_store_url, projections_path=[str(folder)])
    try:
        for key, name in (("zed", "Zyx Secret"), ("amy", "Amy Kept")):
            eng.register(customer=key, name=name, segment="smb", source="web", **at(1))
        pm = eng.projections
        pm.catch_up()
        assert pm.fetch("contacts", "customer=?", ["zed"])[0]["name"] == "Zyx Secret"
        eng.erase(customer="zed", reason="GDPR request", actor="dpo")
        pm.catch_up()
        blanked = {"customer": "zed", "name": ERASED, "card": {"erased": True},
                   "digits": None, "note": "kept", "empty": None}
        assert pm.fetch("contacts", "customer=?", ["zed"]) == [blanked]
        assert pm.fetch("contacts", "customer=?", ["amy"])[0]["name"] == "Amy Kept"
        pm.rebuild(["contacts"])  # a rebuild reads the same
        assert pm.fetch("contacts", "customer=?", ["zed"]) == [blanked]
        names = [n for (n,) in pm.read.fetchall("SELECT name FROM contacts")]
        assert "Zyx Secret" not in names
    finally:
        eng.close()


def test_personal_columns_are_declared_with_the_table() -> None:
    t = Table("t", key=("customer",), columns={"customer": "text", "a": "text",
                                               "b": Column("json", personal=True)},
              personal=("a",))
    assert t.personal == ("a", "b") and t.columns["b"] == "json"
    with pytest.raises(ValueError, match="personal column 'customer'"):
        Table("t", key=("customer",), columns={"customer": Column("text", personal=True)})
    with pytest.raises(ValueError, match="personal column 'x' not declared"):
        Table("t", key=("customer",), columns={"customer": "text"}, personal=("x",))
