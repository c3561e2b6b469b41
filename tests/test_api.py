"""The HTTP API in-process (Starlette's TestClient): tokens, POST /api/v1/commands (one
command, a batch, idempotency keys, conflicts), the GET endpoints and hostile input."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from web_helpers import PASSWORD, add_customer, add_token, add_users, bearer, client, sign_in

from lifecycle_es import LifecycleEngine
from lifecycle_es.commands import COMMANDS
from lifecycle_es.errors import InvalidInput

URL = "/api/v1/commands"
NDJSON = {"Content-Type": "application/x-ndjson"}


def check_in(customer: str = "acme", at: str = "2024-02-01T00:00:00Z", **more: Any,
             ) -> dict[str, Any]:
    return {"type": "check_in", "customer": customer, "at": at, "team": "success", **more}


def lines(*commands: dict[str, Any]) -> bytes:
    return b"\n".join(json.dumps(c).encode() for c in commands) + b"\n"


@pytest.fixture
def engine(store_url: str) -> Iterator[LifecycleEngine]:
    e = LifecycleEngine(store_url)
    add_customer(e)
    e.projections.catch_up()
    yield e
    e.close()


@pytest.fixture
def mem() -> Iterator[LifecycleEngine]:
    e = LifecycleEngine("memory://")
    add_customer(e)
    e.projections.catch_up()
    yield e
    e.close()


def test_one_command_is_recorded_with_the_token_as_actor(engine: LifecycleEngine) -> None:
    token = add_token(engine, "crm")
    with client(engine, follow=False) as c:
        r = c.post(URL, json=check_in(), headers=bearer(token))
    assert r.status_code == 201, r.text
    assert r.json() == {"commands": 1, "events": 1, "recorded": [
        {"line": 1, "type": "check_in", "target": "customer", "key": "acme", "versions": [3]}]}
    last = engine.history("acme")[-1]
    assert (last.actor, last.team, type(last).__name__) == ("crm", "success", "CheckedIn")


def test_a_batch_is_all_or_nothing_with_the_import_s_messages(engine: LifecycleEngine) -> None:
    token = add_token(engine, "crm")
    good = check_in(actor="crm")
    bad = [good, {**good, "team": "nope"}, {"type": "payment", "customer": "ghost",
                                          "at": "2024-02-01T00:00:00Z", "actor": "crm",
                                          "team": "success", "amount": 5, "currency": "EUR"},
           {**good, "at": "yesterday"}]
    body = lines(*bad)
    before = engine.customer("acme").version
    with client(engine, follow=False) as c:
        r = c.post(URL, content=body, headers={**bearer(token), **NDJSON})
    assert r.status_code == 422
    assert engine.customer("acme").version == before  # nothing written
    with pytest.raises(InvalidInput) as exc:
        engine.import_lines(body.splitlines())
    assert [p["message"] for p in r.json()["detail"]] == [str(p) for p in exc.value.problems]
    assert [(p["line"], p["field"]) for p in r.json()["detail"]] == [
        (2, "team"), (3, "customer"), (4, "at")]
    assert r.json()["message"] == "3 problems in the request; nothing was written"
    with client(engine, follow=False) as c:  # the good lines alone: recorded in order
        r = c.post(URL, content=lines(good, {**good, "at": "2024-02-02T00:00:00Z"}),
                   headers={**bearer(token), **NDJSON})
    assert r.status_code == 201
    assert [x["versions"] for x in r.json()["recorded"]] == [[before + 1], [before + 2]]


def test_idempotency_key_records_once_and_answers_the_same(engine: LifecycleEngine) -> None:
    token, other = add_token(engine, "crm"), add_token(engine, "erp")
    before = engine.customer("acme").version
    headers = {**bearer(token), "Idempotency-Key": "evt-42"}
    with client(engine, follow=False) as c:
        first = c.post(URL, json=check_in(), headers=headers)
        again = c.post(URL, json=check_in(), headers=headers)
        reused = c.post(URL, json=check_in(at="2024-03-01T00:00:00Z"), headers=headers)
        others = c.post(URL, json=check_in(), headers={**bearer(other),
                                                      "Idempotency-Key": "evt-42"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert reused.status_code == 422 and "another request body" in reused.json()["detail"]
    assert others.status_code == 201  # keys are per token
    assert engine.customer("acme").version == before + 2


def test_the_stored_answer_outlives_the_process(durable_store_url: str) -> None:
    e = LifecycleEngine(durable_store_url)
    add_customer(e)
    token = add_token(e, "crm")
    headers = {**bearer(token), "Idempotency-Key": "k"}
    with client(e, follow=False) as c:
        first = c.post(URL, json=check_in(), headers=headers)
    e.close()
    e = LifecycleEngine(durable_store_url)
    try:
        with client(e, follow=False) as c:
            again = c.post(URL, json=check_in(), headers=headers)
        assert again.status_code == 201 and again.json() == first.json()
        assert e.customer("acme").version == 3
    finally:
        e.close()


def test_a_concurrent_writer_is_a_409(engine: LifecycleEngine,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    token = add_token(engine, "crm")
    loaded = engine.writer.stored_aggregate
    wrote: list[int] = []

    def then_another_writer(command: Any, **kw: Any) -> Any:
        agg = loaded(command, **kw)
        if not wrote:  # another writer records on the customer after it was loaded
            wrote.append(1)
            engine.check_in(customer="acme", at="2024-01-05T00:00:00Z", actor="bo",
                            team="success")
        return agg

    monkeypatch.setattr(engine.writer, "stored_aggregate", then_another_writer)
    with client(engine, follow=False) as c:
        r = c.post(URL, json=check_in(), headers={**bearer(token), "Idempotency-Key": "c"})
    assert r.status_code == 409, r.text
    assert "another writer" in r.json()["detail"]
    monkeypatch.undo()
    assert engine.customer("acme").version == 3  # the other writer's event only
    with client(engine, follow=False) as c:  # the key was not used up: the retry records
        r = c.post(URL, json=check_in(), headers={**bearer(token), "Idempotency-Key": "c"})
    assert r.status_code == 201 and r.json()["recorded"][0]["versions"] == [4]


def test_actor_for_others_needs_the_flag(mem: LifecycleEngine) -> None:
    plain, proxy = add_token(mem, "crm"), add_token(mem, "hub", act_for_others=True)
    with client(mem, follow=False) as c:
        refused = c.post(URL, content=lines(check_in(), check_in(actor="eve")),
                         headers={**bearer(plain), **NDJSON})
        own = c.post(URL, json=check_in(actor="crm"), headers=bearer(plain))
        other = c.post(URL, json=check_in(actor="eve"), headers=bearer(proxy))
    assert refused.status_code == 403
    assert [(p["line"], p["field"], p["value"]) for p in refused.json()["detail"]] == [
        (2, "actor", "eve")]
    assert own.status_code == other.status_code == 201
    assert [e.actor for e in mem.history("acme")[-2:]] == ["crm", "eve"]


def test_tokens_scope_and_revocation(mem: LifecycleEngine) -> None:
    writer, reader = add_token(mem, "crm"), add_token(mem, "bi", scope="read")
    with client(mem, follow=False) as c:
        assert c.get("/api/v1/stages", headers=bearer(reader)).status_code == 200
        r = c.post(URL, json=check_in(), headers=bearer(reader))
        assert r.status_code == 403 and "'write' token" in r.json()["detail"]
        assert c.post(URL, json=check_in(), headers=bearer(writer)).status_code == 201
        mem.revoke_token(token="crm", reason="leaked", at="2024-05-01T00:00:00Z",
                         actor="root", team="admin")
        for headers in (bearer(writer), bearer(writer[:-1] + "0"), bearer("lce_bi_" + "0" * 64),
                        bearer(""), {"Authorization": f"Basic {writer}"},
                        {"Authorization": "Bearer " + "x" * 100_000}, {}):
            r = c.post(URL, json=check_in(), headers=headers)
            assert r.status_code == 401, headers
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert writer not in r.text
    assert mem.customer("acme").version == 3


def test_a_console_session_is_no_api_credential(mem: LifecycleEngine) -> None:
    add_users(mem)
    with client(mem, follow=False) as c:
        sign_in(c, "adam", PASSWORD)  # an admin's session cookie
        assert c.get("/api/v1/stages").status_code == 401
        assert c.post(URL, json=check_in()).status_code == 401


@pytest.mark.parametrize(("body", "field", "reason"), [
    (b'{"type": "check_in", "customer": "acme"', "command", "EOF"),
    (b'{"type":"check_in","customer":"ac\\u0000me","at":"2024-02-01T00:00:00Z",'
     b'"team":"success"}', "customer", "control"),
    (b'{"type":"nps_answer","customer":"acme","at":"2024-02-01T00:00:00Z",'
     b'"team":"success","score":' + b"9" * 5000 + b"}", "command", "number out of range"),
    (b'{"type":"nps_answer","customer":"acme","at":"2024-02-01T00:00:00Z",'
     b'"team":"success","score":' + b"9" * 30 + b"}", "score", "less than or equal to 10"),
    (b'{"type":"check_in","customer":"acme","at":"2024-02-01T00:00:00Z",'
     b'"team":"success","notes":"' + b"x" * 200_000 + b'"}', "notes", "at most"),
    (b'[1, 2]', "command", ""),
    (b'{"type":"bogus"}', "type", "unknown command type"),
    (b'"<script>alert(1)</script>"', "command", ""),
])
def test_hostile_bodies_are_one_clear_422(mem: LifecycleEngine, body: bytes, field: str,
                                          reason: str) -> None:
    token = add_token(mem, "crm")
    with client(mem, follow=False) as c:
        r = c.post(URL, content=body, headers={**bearer(token),
                                               "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    problems = r.json()["detail"]
    assert problems[0]["field"] == field and reason in problems[0]["reason"]
    assert len(r.text) < 10_000  # a long value is cut in the answer
    assert mem.customer("acme").version == 2


def test_limits_and_content_types(mem: LifecycleEngine) -> None:
    token = add_token(mem, "crm")
    with client(mem, follow=False, api_max_body=4096) as c:
        big = c.post(URL, content=lines(*[check_in()] * 100),
                     headers={**bearer(token), **NDJSON})
        assert big.status_code == 413
        assert "4,096 bytes" in big.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
            yield from [b" " * 1024] * 10

        streamed = c.post(URL, content=chunks(), headers={**bearer(token), **NDJSON})
        assert streamed.status_code == 413
        for kind in ("text/plain", "application/x-www-form-urlencoded", ""):
            r = c.post(URL, content=b"{}", headers={**bearer(token), "Content-Type": kind})
            assert r.status_code == 415, kind
        empty = c.post(URL, content=b"\n\n", headers={**bearer(token), **NDJSON})
        assert empty.status_code == 422 and empty.json()["detail"][0]["field"] == "body"
        for key in ("", "k" * 256, "caf\u00e9".encode("latin-1"), b"a\x7fb"):
            r = c.post(URL, json=check_in(), headers={**bearer(token),
                                                      "Idempotency-Key": key})
            assert r.status_code == 422 and r.json()["detail"][0]["field"] == "Idempotency-Key"
    assert mem.customer("acme").version == 2


def test_reads_answer_and_refuse_bad_parameters(mem: LifecycleEngine) -> None:
    token = bearer(add_token(mem, "bi", scope="read"))
    with client(mem, follow=False) as c:
        assert c.get("/api/v1/customers/acme", headers=token).json()["customer"] == "acme"
        assert len(c.get("/api/v1/customers/acme/timeline", headers=token).json()) == 2
        assert c.get("/api/v1/customers/ghost", headers=token).status_code == 404
        assert c.get("/api/v1/customers/ghost/health", headers=token).status_code == 404
        pending = c.get("/api/v1/handovers?pending=true", headers=token).json()
        assert [h["handover_id"] for h in pending] == ["h1"]
        for path, field in (("/customers/acme?version=abc", "version"),
                            ("/customers/acme?version=" + "9" * 40, "version"),
                            ("/customers/acme?as_of=soon", "as_of"),
                            ("/gaps?kind=nope", "kind"),
                            ("/gaps?as_of=" + "1" * 5000, "as_of"),
                            ("/handovers?pending=maybe", "pending"),
                            ("/handovers?older_than=3 weeks", "older_than"),
                            ("/metrics?from=2024-01-01", "to")):
            r = c.get("/api/v1" + path, headers=token)
            assert r.status_code == 422, (path, r.text)
            assert r.json()["detail"][0]["field"] == field, path


def test_openapi_is_generated_from_the_command_models(mem: LifecycleEngine) -> None:
    with client(mem, follow=False) as c:
        spec = c.get("/api/v1/openapi.json").json()
        page = c.get("/api/v1/docs")
    assert spec["openapi"].startswith("3.1")
    mapping = spec["components"]["schemas"]["Command"]["discriminator"]["mapping"]
    assert set(mapping) == set(COMMANDS)
    purchase = spec["components"]["schemas"]["Purchase"]
    assert {"mrr", "currency", "contract_end"} <= set(purchase["properties"])
    assert set(spec["paths"]) == {"/commands", "/customers/{customer}",
                                  "/customers/{customer}/timeline",
                                  "/customers/{customer}/health", "/gaps", "/handovers",
                                  "/stages", "/metrics"}
    assert page.status_code == 200 and "<script" not in page.text
    for path in spec["paths"]:
        assert f"/api/v1{path}".replace("{", "&#123;") in page.text.replace("{", "&#123;")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
