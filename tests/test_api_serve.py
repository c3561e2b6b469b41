"""The API of a real ``lifecycle-es serve`` process, driven with httpx as a CRM's webhook
sender would: a token from ``tokens add``, events posted with their id as the
Idempotency-Key, responses lost and requests retried (one at a time and at once), a batch,
a revocation while it serves."""

from __future__ import annotations

import concurrent.futures
import time
from typing import Any

import httpx
import pytest
from cli_helpers import cli
from web_helpers import SERVE_SECRET, free_port, start_serve, wait_up

pytestmark = pytest.mark.slow

EVENTS = 12


def webhook(n: int) -> dict[str, Any]:
    """The CRM's n-th event: a new company, then a check-in on it."""
    customer = f"crm-{n // 2}"
    if n % 2 == 0:
        return {"type": "customer_registered", "customer": customer, "name": f"Company {n}",
                "segment": "smb", "source": "crm", "at": "2025-01-01T10:00:00Z",
                "team": "marketing"}
    return {"type": "check_in", "customer": customer, "at": "2025-01-02T10:00:00Z",
            "team": "success", "notes": f"call {n}"}


def deliver(c: httpx.Client, key: str, body: dict[str, Any], attempts: int = 20,
            ) -> httpx.Response:
    """Post until the server gives a final answer: 409 and 503 are tried again."""
    for attempt in range(attempts):
        r = c.post("/api/v1/commands", json=body, headers={"Idempotency-Key": key})
        if r.status_code not in (409, 503):
            return r
        time.sleep(0.05 * 2 ** min(attempt, 4))
    raise AssertionError(f"no final answer for {key}: {r.status_code} {r.text}")


def test_a_crm_sender_retries_safely(durable_store_url: str) -> None:
    store = durable_store_url
    token = cli(store, "tokens", "add", "crm", "--scope", "write").stdout.strip()
    reader = cli(store, "tokens", "add", "bi").stdout.strip()
    port = free_port()
    proc = start_serve(store, port)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_up(proc, base)
        auth = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=base, headers=auth, timeout=30) as c:
            first: dict[int, Any] = {}
            for n in range(EVENTS):
                r = deliver(c, f"evt-{n}", webhook(n))
                assert r.status_code == 201, r.text
                first[n] = r.json()
                if n % 3 == 0:  # the answer was "lost": the sender tries again
                    again = deliver(c, f"evt-{n}", webhook(n))
                    assert again.status_code == 201 and again.json() == first[n]
                    assert again.headers["idempotent-replayed"] == "true"
            # a burst: the same event delivered four times at once
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                burst = list(pool.map(lambda _: deliver(c, "evt-burst", webhook(20)),
                                      range(4)))
            assert {r.status_code for r in burst} == {201}
            assert len({r.text for r in burst}) == 1
            batch = b"".join(httpx.Request("POST", "/", json=webhook(n)).content + b"\n"
                             for n in (30, 31))
            r = c.post("/api/v1/commands", content=batch,
                       headers={"Content-Type": "application/x-ndjson",
                                "Idempotency-Key": "batch-1"})
            assert r.status_code == 201 and [x["versions"] for x in r.json()["recorded"]] \
                == [[1], [2]]
            huge = c.post("/api/v1/commands", content=b" " * (11 * 1024 * 1024),
                          headers={"Content-Type": "application/json"})
            assert huge.status_code == 413 and "10 MiB" in huge.json()["detail"]
        with httpx.Client(base_url=base, timeout=30,
                          headers={"Authorization": f"Bearer {reader}"}) as bi:
            for n in range(0, EVENTS, 2):
                timeline = bi.get(f"/api/v1/customers/crm-{n // 2}/timeline")
                assert timeline.status_code == 200
                assert [e["type"] for e in timeline.json()] == ["customer_registered",
                                                                "check_in"]
                assert {e["actor"] for e in timeline.json()} == {"crm"}
            burst_customer = bi.get("/api/v1/customers/crm-10/timeline").json()
            assert [e["type"] for e in burst_customer] == ["customer_registered"]  # once
            assert bi.post("/api/v1/commands", json=webhook(0)).status_code == 403
        cli(store, "tokens", "revoke", "crm", "--reason", "rotated")
        r = httpx.post(f"{base}/api/v1/commands", json=webhook(40), headers=auth)
        assert r.status_code == 401
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert token not in err and SERVE_SECRET not in err
