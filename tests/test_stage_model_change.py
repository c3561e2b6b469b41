"""Issue 25, item 5: a store's stage model changes only on purpose (``stage-model set``).

No read command and no engine opened for reading writes a setting; a different model given
to an existing store is an error saying how to change it; the change refuses customers left
in stages the new model lacks unless mapped, moves the mapped ones by events, and is
recorded in the settings chain with its actor. SQLite and PostgreSQL (and memory where the
store keeps no settings).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from cli_helpers import cli

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain.stage_model import CLASSIC, CUSTOMER_SUCCESS
from lifecycle_es.errors import ConfigError, InvalidInput, InvariantViolation, StoreError
from lifecycle_es.reading.audit.verify import verify
from lifecycle_es.reading.projection import queries

AT = dict(actor="ann", team="sales")
TO_CLASSIC = {"acquisition": "awareness", "adoption": "onboarding", "growth": "retention"}


def settings_changes(engine: LifecycleEngine) -> list[tuple[int, str, str]]:
    """(seq, origin, model name) of every recorded change of the stage model."""
    return [(c.seq, c.origin, CLASSIC.model_validate_json(c.value).name)
            for c in verify(engine).settings if c.key == "stage_model"]


def tell(engine: LifecycleEngine) -> None:
    """Customers in customer-success stages: a, b in acquisition, c in adoption, d growth,
    e onboarding (a stage both presets have)."""
    for key in "abcde":
        engine.register(customer=key, at="2024-01-02T09:00:00Z", name=key.upper(),
                        segment="smb", source="web", **AT)
    for key, stages in {"c": ["onboarding", "adoption"], "d": ["growth"],
                        "e": ["onboarding"]}.items():
        for stage in stages:
            engine.change_stage(customer=key, to_stage=stage, at="2024-02-01T09:00:00Z", **AT)


@pytest.fixture
def cs_engine(durable_store_url: str) -> Iterator[LifecycleEngine]:
    engine = LifecycleEngine(durable_store_url, stage_model="customer-success")
    tell(engine)
    yield engine
    engine.close()


def test_the_issue_reproduction_leaves_the_model_unchanged(durable_store_url: str) -> None:
    """``--stage-model customer-success demo; --stage-model classic stage; stage``."""
    cli(durable_store_url, "--stage-model", "customer-success", "demo", "--customers", "20",
        "--until", "2025-01-01")
    for proc in (cli(durable_store_url, "--stage-model", "classic", "stage", check=False),
                 cli(durable_store_url, "stage", check=False,
                     env={**os.environ, "LIFECYCLE_ES_STAGE_MODEL": "classic"})):
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        assert "stage_model='classic' was given" in line and "'customer-success'" in line
        assert "lifecycle-es stage-model set" in line and "Traceback" not in line
    same = cli(durable_store_url, "--stage-model", "customer-success", "stage")
    shown = cli(durable_store_url, "stage").stdout
    assert shown == same.stdout and "acquisition" in shown and "awareness" not in shown
    engine = LifecycleEngine(durable_store_url)
    assert engine.stage_model == CUSTOMER_SUCCESS
    assert settings_changes(engine) == [(1, "set", "customer-success")]
    engine.close()


def test_engines_opened_to_read_never_write_a_setting(cs_engine: LifecycleEngine) -> None:
    url = cs_engine.store
    for opened in (lambda: LifecycleEngine(url, create=False),
                   lambda: LifecycleEngine(url, stage_model=CUSTOMER_SUCCESS, create=False),
                   lambda: LifecycleEngine(url.as_read_only()),
                   lambda: LifecycleEngine(url, stage_model="customer-success")):
        engine = opened()
        assert engine.stage_model == CUSTOMER_SUCCESS
        engine.close()
    with pytest.raises(ConfigError, match="uses stage model 'customer-success'"):
        LifecycleEngine(url.as_read_only(), stage_model="classic")
    assert settings_changes(cs_engine) == [(1, "set", "customer-success")]


def test_a_store_that_never_recorded_its_model_is_classic(
        store_url_factory: object, durable_store_url: str) -> None:
    """A store written without a model is ``classic``: another model is refused, not
    recorded; a new, empty store records the model it is first opened to write with."""
    engine = LifecycleEngine(durable_store_url)
    engine.register(customer="a", at="2024-01-02T09:00:00Z", name="A", segment="smb",
                    source="web", **AT)
    engine.close()
    with pytest.raises(ConfigError, match="uses stage model 'classic'"):
        LifecycleEngine(durable_store_url, stage_model=CUSTOMER_SUCCESS)
    engine = LifecycleEngine(durable_store_url, stage_model=CLASSIC)
    assert settings_changes(engine) == []
    engine.close()


def test_set_refuses_customers_left_in_stages_the_model_lacks(
        cs_engine: LifecycleEngine) -> None:
    head = cs_engine.event_log.head()
    with pytest.raises(InvariantViolation) as exc:
        cs_engine.set_stage_model("classic", actor="bob")
    message = str(exc.value)
    assert "acquisition (2 customers), adoption (1 customer), growth (1 customer)" in message
    assert "onboarding" not in message.split("--map")[0]  # a stage both models have
    with pytest.raises(InvariantViolation, match=r"growth \(1 customer\)"):
        cs_engine.set_stage_model("classic", mapping={"acquisition": "awareness",
                                                      "adoption": "onboarding"}, actor="bob")
    with pytest.raises(InvalidInput, match=r"map\.growth='bogus': not a stage of model"):
        cs_engine.set_stage_model("classic", mapping={**TO_CLASSIC, "growth": "bogus"})
    with pytest.raises(InvalidInput, match=r"map\.onboarding='purchase'"):
        cs_engine.set_stage_model("classic", mapping={**TO_CLASSIC, "onboarding": "purchase"})
    assert cs_engine.event_log.head() == head  # nothing written
    reopened = LifecycleEngine(cs_engine.store)
    assert reopened.stage_model == CUSTOMER_SUCCESS
    assert settings_changes(reopened) == [(1, "set", "customer-success")]
    reopened.close()


def test_set_with_a_mapping_moves_customers_by_events_and_records_its_actor(
        cs_engine: LifecycleEngine) -> None:
    cs_engine.projections.catch_up()
    change = cs_engine.set_stage_model("classic", mapping=TO_CLASSIC, actor="bob")
    assert (change.previous, change.model, change.changed) == ("customer-success", "classic",
                                                               True)
    assert change.moved == {"a": ("acquisition", "awareness"), "b": ("acquisition", "awareness"),
                            "c": ("adoption", "onboarding"), "d": ("growth", "retention")}
    last = cs_engine.history("d")[-1]
    assert (type(last).__name__, last.from_stage, last.to_stage, last.actor, last.team,
            last.regression) == ("StageChanged", "growth", "retention", "bob", "success", False)
    assert cs_engine.customer("e").version == 2  # onboarding is in both models: untouched
    reopened = LifecycleEngine(cs_engine.store)
    assert reopened.stage_model == CLASSIC
    assert reopened.customer("a").state.stage == "awareness"
    assert settings_changes(reopened) == [(1, "set", "customer-success"),
                                          (2, "changed by bob", "classic")]
    assert verify(reopened).clean
    counts = {r["stage"]: r["customers"] for r in queries.stage_counts(reopened.projections)}
    assert counts == {"awareness": 2, "consideration": 0, "purchase": 0, "onboarding": 2,
                      "retention": 1, "advocacy": 0, "churned": 0}
    again = reopened.set_stage_model(CLASSIC, mapping=TO_CLASSIC, actor="bob")
    assert (again.changed, again.moved) == (False, {})
    assert len(settings_changes(reopened)) == 2
    reopened.close()


def test_set_without_customers_to_move_needs_no_mapping(durable_store_url: str) -> None:
    engine = LifecycleEngine(durable_store_url, stage_model="customer-success")
    engine.register(customer="a", at="2024-01-02T09:00:00Z", name="A", segment="smb",
                    source="web", stage="retention", **AT)
    change = engine.set_stage_model("classic", actor="carol")
    assert (change.changed, change.moved) == (True, {})
    assert settings_changes(engine)[-1] == (2, "changed by carol", "classic")
    engine.close()


def test_set_on_a_read_only_store_is_refused(cs_engine: LifecycleEngine) -> None:
    reader = LifecycleEngine(cs_engine.store.as_read_only())
    with pytest.raises(StoreError, match="read only"):
        reader.set_stage_model("classic", mapping=TO_CLASSIC)
    reader.close()


def test_set_on_memory_moves_customers(store_url_factory: object) -> None:
    engine = LifecycleEngine("memory://", stage_model="customer-success")
    tell(engine)
    change = engine.set_stage_model("classic", mapping=TO_CLASSIC, actor="bob")
    assert change.changed and len(change.moved) == 4
    assert engine.stage_model == CLASSIC and engine.customer("c").state.stage == "onboarding"


def test_cli_stage_model_set(durable_store_url: str) -> None:
    engine = LifecycleEngine(durable_store_url, stage_model="customer-success")
    tell(engine)
    engine.close()
    refused = cli(durable_store_url, "stage-model", "set", "classic", check=False)
    assert refused.returncode == 2 and "acquisition (2 customers)" in refused.stderr
    bad = cli(durable_store_url, "stage-model", "set", "classic", "--map", "acquisition",
              check=False)
    assert bad.returncode == 2 and "--map='acquisition': expected OLD=NEW" in bad.stderr
    done = cli(durable_store_url, "stage-model", "set", "classic", "--actor", "dora",
               *(a for old, new in TO_CLASSIC.items() for a in ("--map", f"{old}={new}")))
    assert "'customer-success' -> 'classic'" in done.stdout
    assert "2 customers moved from 'acquisition' to 'awareness'" in done.stdout
    assert "awareness" in cli(durable_store_url, "stage").stdout
    engine = LifecycleEngine(durable_store_url)
    assert settings_changes(engine)[-1] == (2, "changed by dora", "classic")
    engine.close()
