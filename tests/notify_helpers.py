"""Real servers on 127.0.0.1 for the notification tests: an HTTP receiver that records what it
gets and can fail in the ways receivers fail, and an SMTP server (aiosmtpd, STARTTLS with a
certificate made here) that records messages and can refuse them."""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest

from lifecycle_es import LifecycleEngine
from lifecycle_es.notifying.config import Notifications

SECRET_ENV = "NOTIFY_TEST_SECRET"
SECRET = "s3cr3t-hmac-key"
#: sender settings that keep each test to a few seconds (docs/notifications.md: the
#: defaults are 10 s timeouts and 24 h of retries)
FAST = {"timeout_seconds": 0.5, "backoff_first_seconds": 0.05, "backoff_cap_seconds": 0.2,
        "poll_seconds": 0.05, "clock_seconds": 0.2, "retry_for_hours": 1.0}


@pytest.fixture(name="receiver")
def receiver_fixture() -> Iterator[Receiver]:
    """A receiver, stopped after the test (a test module imports it to use it)."""
    r = Receiver()
    yield r
    r.stop()


class Receiver:
    """An HTTP receiver recording ``(key, headers, body)`` of each request. ``plan`` holds
    what the next requests get, one entry each (then 200): ``500``, ``"hang"`` (answers
    after ``hang_seconds``), ``"close"`` (closes the connection without an answer)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.delivered: list[str] = []  # keys answered 2xx
        self.plan: list[int | str] = []
        self.hang_seconds = 3.0
        self.in_flight: dict[str, int] = {}
        self.overlaps: list[str] = []  # keys received while the same key was in flight
        self._lock = threading.Lock()
        self.port = _free_port()
        self._server: ThreadingHTTPServer | None = None
        self.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                key = unquote(self.headers["Idempotency-Key"])
                with receiver._lock:
                    receiver.requests.append((key, dict(self.headers), body))
                    step = receiver.plan.pop(0) if receiver.plan else 200
                    if receiver.in_flight.get(key):
                        receiver.overlaps.append(key)
                    receiver.in_flight[key] = receiver.in_flight.get(key, 0) + 1
                try:
                    if step == "close":
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if step == "hang":
                        time.sleep(receiver.hang_seconds)
                    code = step if isinstance(step, int) else 200
                    self.send_response(code)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    if code < 300:
                        with receiver._lock:
                            receiver.delivered.append(key)
                finally:
                    with receiver._lock:
                        receiver.in_flight[key] -= 1

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Down: connections are refused until :meth:`start`."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(body) for _, _, body in self.requests]

    def received(self) -> set[str]:
        """The distinct keys delivered (a receiver that de-duplicates by key sees these)."""
        return set(self.delivered)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 and localhost, and its key (PEM files in ``folder``)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class SmtpSink:
    """An SMTP server on 127.0.0.1 requiring STARTTLS (with a certificate of ``folder``),
    recording each message; ``refuse`` holds answers for the next messages (e.g. ``"451
    try later"``, ``"550 no"``), one each."""

    def __init__(self, folder: Path, login: tuple[str, str] | None = None) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult, LoginPassword

        self.cert, key = self_signed(folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert, key)
        self.messages: list[Message] = []
        self.refuse: list[str] = []
        self.port = _free_port()
        sink = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                if sink.refuse:
                    return sink.refuse.pop(0)
                msg = message_from_bytes(envelope.content)
                msg["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
                sink.messages.append(msg)
                return "250 OK"

        def authenticate(server: Any, session: Any, envelope: Any, mechanism: str,
                         data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and login is not None and \
                (data.login.decode(), data.password.decode()) == login
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port,
                                     tls_context=context, require_starttls=True,
                                     authenticator=authenticate if login else None,
                                     auth_required=login is not None)
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def message_ids(self) -> set[str]:
        """The alert ids of the messages received (their Message-ID, decoded)."""
        return {unquote(str(m["Message-ID"]).strip("<>").rpartition("@")[0])
                for m in self.messages}


def config(*channels: dict[str, Any], **more: Any) -> Notifications:
    """A notifications configuration with the fast sender settings."""
    sender = {**FAST, **more.pop("sender", {})}
    return Notifications.model_validate({"channel": list(channels), "sender": sender, **more})


def hook(receiver: Receiver, **more: Any) -> dict[str, Any]:
    return {"name": "cs-alerts", "webhook": receiver.url, "secret_env": SECRET_ENV, **more}


def register(engine: LifecycleEngine, customer: str, at: datetime | None = None,
             name: str | None = None) -> None:
    """A new customer (an ``unowned`` gap opening at ``at``, default now)."""
    engine.register(customer=customer, name=name or customer.title(), segment="smb",
                    source="web", at=at or datetime.now(UTC), actor="mia", team="marketing")


def drain(tick: Any, until: Any, seconds: float = 10.0) -> None:
    """Call ``tick()`` until ``until()`` is true (or fail after ``seconds``)."""
    deadline = time.monotonic() + seconds
    while not until():
        assert time.monotonic() < deadline, "timed out"
        tick()
        time.sleep(0.02)


@contextmanager
def secret_set(monkeypatch: Any) -> Iterator[None]:
    monkeypatch.setenv(SECRET_ENV, SECRET)
    yield
