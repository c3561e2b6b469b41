"""The engine opens on every store and round-trips a customer."""

from __future__ import annotations

from lifecycle_es import LifecycleEngine

AT = dict(at="2024-01-02T09:00:00Z", actor="ann", team="sales")


def test_register_and_read_back(engine: LifecycleEngine) -> None:
    engine.register(customer="acme", name="Acme", segment="smb", source="web", **AT)
    engine.change_stage(customer="acme", to_stage="consideration", **AT)
    customer = engine.customer("acme")
    assert customer.version == 2
    assert customer.state.stage == "consideration"
    assert [type(e).__name__ for e in engine.history("acme")] == ["Registered", "StageChanged"]
