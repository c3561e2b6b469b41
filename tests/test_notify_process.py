"""The sender as a real process (`lifecycle-es notify run`): killed with SIGKILL mid-delivery
and restarted, every alert arrives with its one key; two senders on one store deliver each
alert once. SQLite and PostgreSQL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from cli_helpers import popen
from notify_helpers import SECRET, SECRET_ENV, Receiver, receiver_fixture, register  # noqa: F401

from lifecycle_es import LifecycleEngine


def _file(tmp_path: Path, receiver: Receiver) -> Path:
    path = tmp_path / "notifications.toml"
    path.write_text(f"""
[[channel]]
name = "cs-alerts"
webhook = "{receiver.url}"
secret_env = "{SECRET_ENV}"

[sender]
timeout_seconds = 0.5
backoff_first_seconds = 0.05
backoff_cap_seconds = 0.2
poll_seconds = 0.05
""")
    return path


def _sender(store: str, path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, SECRET_ENV: SECRET}
    return popen(store, "notify", "run", "--notifications", str(path), env=env)


def _wait(until: object, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not until():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def _baseline(engine: LifecycleEngine) -> None:
    """The notifier's first start, before the gaps of the test open."""
    engine.notifier(None).outbox.start(datetime.now(UTC), engine.event_log.head())


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL


def test_a_sender_killed_mid_delivery_delivers_every_alert_with_its_key_on_restart(
        durable_store_url: str, tmp_path: Path, receiver: Receiver) -> None:
    engine = LifecycleEngine(durable_store_url)
    path = _file(tmp_path, receiver)
    _baseline(engine)
    receiver.hang_seconds = 0.3  # the sender waits 0.5 s: the kill lands while it waits
    receiver.plan = ["hang"]
    customers = [f"c{i}" for i in range(6)]
    for c in customers:
        register(engine, c)
    sender = _sender(durable_store_url, path)
    try:
        _wait(lambda: receiver.requests)  # the first delivery is under way: kill it
        _kill(sender)
        rng = random.Random(27)
        for _ in range(2):  # and again, at some moment of the restarted sender's work
            sender = _sender(durable_store_url, path)
            time.sleep(rng.uniform(0.5, 2.0))
            _kill(sender)
        sender = _sender(durable_store_url, path)
        _wait(lambda: len(receiver.received()) == len(customers), seconds=60)
        sender.send_signal(signal.SIGTERM)
        assert sender.wait(timeout=20) == 0
    finally:
        if sender.poll() is None:
            sender.kill()
        engine.close()
    expected = {k for k, _, _ in receiver.requests}
    assert len(expected) == len(customers)
    assert receiver.received() == expected
    assert all(k.startswith("cs-alerts/unowned:c") and k.endswith(":opened") for k in expected)


def test_two_senders_on_one_store_deliver_each_alert_once(
        durable_store_url: str, tmp_path: Path, receiver: Receiver) -> None:
    engine = LifecycleEngine(durable_store_url)
    path = _file(tmp_path, receiver)
    _baseline(engine)
    senders = [_sender(durable_store_url, path) for _ in range(2)]
    try:
        for i in range(20):
            register(engine, f"c{i}")
        _wait(lambda: len(receiver.received()) == 20, seconds=60)
        time.sleep(1.0)  # anything sent twice would arrive now
    finally:
        for s in senders:
            s.send_signal(signal.SIGTERM)
        for s in senders:
            s.wait(timeout=20)
        engine.close()
    keys = [k for k, _, _ in receiver.requests]
    assert len(keys) == 20 and len(set(keys)) == 20
    assert not receiver.overlaps
