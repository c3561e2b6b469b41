"""`lifecycle-es notify` (run --once, status, retry) and `serve --notifications`: hostile
configuration and arguments give one line naming the field and write nothing; no secret
is ever printed or logged."""

from __future__ import annotations

import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cli_helpers import CLI, cli, in_process
from notify_helpers import (  # noqa: F401 (receiver_fixture: a fixture)
    SECRET,
    SECRET_ENV,
    Receiver,
    SmtpSink,
    receiver_fixture,
    register,
)
from web_helpers import SERVE_SECRET, free_port, wait_up

from lifecycle_es import LifecycleEngine
from lifecycle_es.engine import load_notifications
from lifecycle_es.errors import ConfigError


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'lc.db'}"
    LifecycleEngine(url).close()
    return url


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "n.toml"
    path.write_text(text)
    return path


def _hook(url: str, extra: str = "") -> str:
    return f'[[channel]]\nname = "cs-alerts"\nwebhook = "{url}"\nsecret_env = "{SECRET_ENV}"\n' \
        + extra


def _run(store: str, path: Path, *more: str, env: dict[str, str] | None = None,
         ) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, SECRET_ENV: SECRET, **(env or {})}
    return cli(store, *more, "notify", "run", "--once", "--notifications", str(path),
               check=False, env=environ)


BAD = [
    ('[[channel]]\nname = "a\\u0000b"\nwebhook = "http://x/"\nsecret_env = "S"\n',
     "channel.0.name"),
    ('[[channel]]\nname = "<b>x</b>"\nwebhook = "http://x/"\nsecret_env = "S"\n',
     "channel.0.name"),
    ('[[channel]]\nname = "x"\nwebhook = "ftp://x/"\nsecret_env = "S"\n', "channel.0.webhook"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/' + "a" * 5000 + '"\nsecret_env = "S"\n',
     "channel.0.webhook"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\nsecret_env = "NOT AN ENV"\n',
     "channel.0.secret_env"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\n', "secret_env"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\nsecret_env = "S"\nkinds = ["nope"]\n',
     "channel.0.kinds"),
    ('[[channel]]\nname = "x"\nemail = ["not-an-address"]\n', "channel.0.email"),
    ('[[channel]]\nname = "x"\nemail = "owner"\n', "[smtp]"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\nsecret_env = "S"\nemail = "owner"\n',
     "either webhook or email"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\nsecret_env = "S"\n[sender]\n'
     'timeout_seconds = -1\n', "sender.timeout_seconds"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\nsecret_env = "S"\n[sender]\n'
     'retry_for_hours = 100000000000000000000000000000\n', "retry_for_hours"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\nsecret_env = "S"\n[sender]\n'
     'batch = 99999999999999999999999\n', ""),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\nsecret_env = "S"\n[people]\n'
     'ann = "ann at example"\n', "people"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\nsecret_env = "S"\nsurprise = 1\n',
     "surprise"),
    ("[[channel]]\nname = 'x'\nwebhook = \"http://x/\"\nsecret_env = \"S\"\n"
     "[[escalation]]\nafter_days = 0\nlead = \"l\"\n", "escalation.0.after_days"),
    ('[[channel]]\nname = "x"\nwebhook = "http://x/"\nsecret_env = "S"\nalerts = []\n',
     "channel.0.alerts"),
    ('[[channel]]\nname = "x"\nemail = ["a@b.test"]\n[smtp]\nhost = "h"\nfrom = "a@b.test"\n'
     'ca_file = "/no/such/ca.pem"\n', "smtp.ca_file"),
    ('[[channel]]\nname = "x"\nemail = ["a@b.test"]\n[smtp]\nhost = "h\\r\\nRCPT"\n'
     'from = "a@b.test"\n', "smtp.host"),
    ("", "channel"),
    ("not = [toml", "notifications file"),
]


@pytest.mark.parametrize(("text", "named"), BAD)
def test_a_bad_notifications_file_is_one_line_naming_the_key(
        store: str, tmp_path: Path, text: str, named: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S", "x")
    code, _, err = in_process(capsys, monkeypatch, store, "notify", "run", "--once",
                              "--notifications", str(_toml(tmp_path, text)))
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: notifications file")
    assert named in lines[0]
    with LifecycleEngine(store) as engine:
        assert engine.notifier(None).status() == (0, 0, 0, None)


def test_a_team_the_store_does_not_know_is_named(store: str, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    path = _toml(tmp_path, _hook("http://127.0.0.1:9/hook", 'teams = ["succes"]\n'))
    with LifecycleEngine(store) as engine, pytest.raises(ConfigError) as exc:
        engine.notifier(load_notifications(path))
    assert str(exc.value).startswith("notifications file: channel.0.teams='succes': unknown "
                                     "team (known: ")


def test_a_secret_not_set_is_named_and_nothing_runs(store: str, tmp_path: Path) -> None:
    path = _toml(tmp_path, _hook("http://127.0.0.1:9/hook"))
    env = {k: v for k, v in os.environ.items() if k != SECRET_ENV}
    proc = cli(store, "notify", "run", "--once", "--notifications", str(path), check=False,
               env=env)
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: environment variable {SECRET_ENV} is not set (the "
                                   "notifications file names it for a secret)")


def test_no_notifications_file_is_one_line(store: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "LIFECYCLE_ES_NOTIFICATIONS"}
    proc = cli(store, "notify", "run", "--once", check=False, env=env)
    assert proc.returncode == 2 and "no notifications file" in proc.stderr


@pytest.mark.parametrize("args", [[], ["x", "--dead"], ["a\x01b"], ["x" * 5000],
                                  ["no-such-alert"]])
def test_retry_takes_one_dead_alert_or_dead(store: str, args: list[str],
                                            capsys: pytest.CaptureFixture[str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = in_process(capsys, monkeypatch, store, "notify", "retry", *args)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")


def test_run_once_status_and_no_secret_in_any_output(
        store: str, tmp_path: Path, receiver: Receiver, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    password = "hunter2-url-password"
    url = receiver.url.replace("http://", f"http://alice:{password}@")
    # a retry due at once (full jitter over 0.1 s), so that the second run delivers it
    path = _toml(tmp_path, _hook(url, "\n[sender]\nbackoff_first_seconds = 0.1\n"))
    with LifecycleEngine(store) as engine:
        engine.notifier(None).baseline()  # the first start
        register(engine, "acme", datetime.now(UTC))
        register(engine, "beta", datetime.now(UTC))
    receiver.plan = [500]
    first = _run(store, path, "--log-level", "DEBUG")
    assert first.returncode == 0 and "queued 2, sent 1, failed 1, dead 0" in first.stdout
    time.sleep(0.3)
    code, out, _ = in_process(capsys, monkeypatch, store, "notify", "status", "--json")
    assert code == 0
    status = json.loads(out)
    assert (status["pending"], status["sent"], status["dead"]) == (1, 1, 0)
    assert status["oldest_pending_age_s"] >= 0 and status["start_position"] == 0
    assert status["started_at"].startswith(str(datetime.now(UTC).year))
    again = _run(store, path, "--log-level", "DEBUG")
    assert "sent 1" in again.stdout, again.stderr
    headers = receiver.requests[0][1]
    assert headers["Authorization"].startswith("Basic ")
    for proc in (first, again):
        text = proc.stdout + proc.stderr
        assert password not in text and SECRET not in text
        assert "alice:***@" in first.stderr
    assert len(receiver.received()) == 2


def test_serve_with_notifications_sends_an_alert_within_seconds(
        tmp_path: Path, receiver: Receiver, durable_store_url: str) -> None:
    """Done when an alert reaches a local webhook and a local SMTP server within seconds of
    the command that opens a gap (issue 27)."""
    store = durable_store_url
    LifecycleEngine(store).close()
    sink = SmtpSink(tmp_path)
    path = _toml(tmp_path, _hook(receiver.url) + f"""
[[channel]]
name = "cs-mail"
email = ["cs@lc.test"]

[smtp]
host = "127.0.0.1"
port = {sink.port}
from = "alerts@lc.test"
ca_file = "{sink.cert}"

[sender]
poll_seconds = 0.1
""")
    env = {**os.environ, "LIFECYCLE_ES_SESSION_SECRET": SERVE_SECRET, SECRET_ENV: SECRET,
           "LIFECYCLE_ES_NOTIFICATIONS": str(path)}
    port = free_port()
    proc = subprocess.Popen([*CLI, "--store", store, "serve", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_up(proc, f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        with LifecycleEngine(store) as engine:  # the baseline first, then a new gap
            while engine.notifier(None).outbox_baseline() is None:
                assert time.monotonic() < deadline
                time.sleep(0.05)
            start = time.monotonic()
            at = datetime.now(UTC)
            register(engine, "acme", at)
        while not (receiver.delivered and sink.messages):
            assert time.monotonic() - start < 10, "no alert within 10 s"
            time.sleep(0.02)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
        sink.stop()
    gap = f"unowned:acme:{at:%Y%m%dT%H%M%SZ}:opened"
    assert receiver.received() == {f"cs-alerts/{gap}"}
    assert sink.message_ids() == {f"cs-mail/{gap}"}
    assert SECRET not in err
