"""No password of a store URL in any output, log line or exception text, however malformed.

A hypothesis property feeds well-formed and malformed URLs holding a known random password to
every entry point: ``StoreURL.parse``, ``postgres.connect``, ``LifecycleEngine(url)``, the CLI
with ``--store URL`` and with ``$LIFECYCLE_ES_STORE``. The stores named are closed ports on
127.0.0.1 / ::1 (port 1): nothing is ever reached, every connection is refused at once.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from unittest import mock
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lifecycle_es import LifecycleEngine
from lifecycle_es.cli.main import run
from lifecycle_es.errors import StoreError
from lifecycle_es.stores.postgres import connect
from lifecycle_es.stores.url import ENV_VAR, StoreURL, redact

LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPRSTUVWXYZ"  # no Q: the marker's
PUNCTUATION = "!$&'()*+,;=-._~%@:/?#\\"
MARKER = "Q7"  # in every password, in no text of the program: a hit is a leak, not chance

# {p}: the password as typed (raw, maybe breaking the URL); {e}: percent-encoded
WELL_FORMED = [
    "postgresql://postgres:{e}@127.0.0.1:1/db",
    "postgresql://postgres:{e}@[::1]:1/db?schema=s",
    "postgresql://postgres@127.0.0.1:1/db?password={e}",
    "postgres://u:{e}@127.0.0.1:1/db?schema=x&password={e}",
]
MALFORMED = [
    "postgresql:/postgres:{p}@127.0.0.1:1/db",
    "postgresql//postgres:{p}@127.0.0.1:1/db",
    "postgresql://postgres:{p}@[::1/db",
    "postgresql://postgres@127.0.0.1:1/db?password={p}",
    "postgresql://postgres@127.0.0.1:1/db?password={p}&schema=s",
    "postgresql://u:{p}@127.0.0.1:99999/db",
    "postgresql://u:{p}@127.0.0.1:port/db",
    "postgres:{p}@127.0.0.1:1/db",
    "postgresql://postgres:{p}@127.0.0.1:1/db",
    "postgresql://postgres:{p}@127.0.0.1:1",
    "postgres ql://postgres:{p}@127.0.0.1:1/db",
    " postgresql://postgres:{p}@127.0.0.1:1/db",
    "mysql://postgres:{p}@127.0.0.1:1/db",
    "sqlite://postgres:{p}@127.0.0.1:1/x.db",
    "postgresql://postgres:{p}/db",
    "postgres:{p}/db",
    "postgresql:{p}/db",
    "postgres:u:{p}/db?schema=s",
]

passwords = st.builds(
    lambda first, a, b: first + a + MARKER + b,
    st.sampled_from(LETTERS),  # a letter first: never read as a numeric port
    st.text(LETTERS + "0123456789" + PUNCTUATION, min_size=1, max_size=8),
    st.text(LETTERS + "0123456789" + PUNCTUATION, min_size=1, max_size=8),
)


@st.composite
def urls(draw: st.DrawFn) -> tuple[str, str]:
    """(url, password) with the password well-formed or raw in a malformed URL."""
    password = draw(passwords)
    encoded = quote(password, safe="")
    if draw(st.booleans()):
        template = draw(st.sampled_from(WELL_FORMED))
        raw = encoded
    else:
        template = draw(st.sampled_from(MALFORMED))
        raw = draw(st.sampled_from([password, encoded]))
        if template.endswith(":{p}/db"):  # no host: an @ in the password would make one
            raw = raw.replace("@", "%40")
    return template.replace("{p}", raw).replace("{e}", encoded), password


def leaks(text: str, password: str) -> list[str]:
    """The forms of the password found in ``text``."""
    forms = {password, quote(password), quote(password, safe=""), quote_plus(password),
             repr(password)[1:-1]}
    return sorted(f for f in forms if f in text)


def local_only(url: str) -> None:
    """Skip (before anything connects) a URL that parses to anything but a closed local port:
    the templates are made so that none does; this makes sure of it."""
    try:
        parsed = StoreURL.parse(url)
    except StoreError:
        return
    assume(parsed.kind == "postgresql" and parsed.host in ("127.0.0.1", "::1")
           and parsed.port == 1)


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every exception behind it (``__cause__`` and ``__context__``, even a
    context ``from None`` hides from the traceback)."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        item = todo.pop()
        if item is not None and all(item is not s for s in seen):
            seen.append(item)
            todo += [item.__cause__, item.__context__]
    return seen


def described(exc: BaseException) -> str:
    """str, repr, arguments and the formatted traceback of ``exc`` and of every exception in
    its chain."""
    return "\n".join(text for e in chain(exc) for text in (
        str(e), repr(e), *map(repr, e.args), *traceback.format_exception(e)))


def raised(call: Callable[[], object]) -> str:
    """:func:`described` of the error ``call`` raises (it must raise a StoreError)."""
    with pytest.raises(StoreError) as exc:
        call()
    return described(exc.value)


@contextlib.contextmanager
def captured_logs() -> Iterator[io.StringIO]:
    """Every log record of every logger (DEBUG and up) written to a buffer."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield buffer
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def run_cli(args: list[str], env: dict[str, str]) -> str:
    """Run the CLI in-process with DEBUG logs: its stdout, stderr and any traceback."""
    out, err = io.StringIO(), io.StringIO()
    logger = logging.getLogger("lifecycle_es")
    saved = (logger.handlers, logger.level, logger.propagate)
    with mock.patch.object(sys, "argv", ["lifecycle-es", "--log-level", "DEBUG", *args]), \
            mock.patch.dict(os.environ, env), contextlib.redirect_stdout(out), \
            contextlib.redirect_stderr(err):
        try:
            run()
        except SystemExit as exc:
            code = exc.code
        finally:  # the CLI pointed the logs at this run's stderr: undo it
            logger.handlers, logger.level, logger.propagate = saved
    text = out.getvalue() + err.getvalue()
    assert code in (2, 3), f"exit {code}: {text}"
    assert "error: " in text and "Traceback" not in text, text
    return text


@pytest.fixture(scope="module")
def commands_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("secrets") / "in.jsonl"
    path.write_text('{"type": "check_in", "customer": "acme", "at": "2024-01-01T00:00:00Z", '
                    '"actor": "ann", "team": "success"}\n')
    return path


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(case=urls())
def test_no_entry_point_shows_the_password(case: tuple[str, str], commands_file: Path) -> None:
    url, password = case
    local_only(url)
    seen: list[str] = []
    with captured_logs() as logs:
        try:
            store = StoreURL.parse(url)
        except StoreError as exc:
            seen.append(described(exc))
        else:
            seen += [repr(store), str(store), store.redacted(), raised(lambda: connect(store))]
        seen.append(raised(lambda: LifecycleEngine(url)))
        for command in (["stage"], ["import", str(commands_file)], ["audit", "verify"],
                        ["projections", "status"]):
            seen.append(run_cli(["--store", url, *command], {}))
        seen.append(run_cli(["stage", "--json"], {ENV_VAR: url}))
        seen.append(run_cli(["audit", "verify"], {ENV_VAR: url}))
    seen.append(logs.getvalue())
    found = {i: leaks(text, password) for i, text in enumerate(seen) if leaks(text, password)}
    assert not found, f"{url!r}: password shown in {[seen[i] for i in found]}"


@given(case=urls(), noise=st.text(max_size=20))
@settings(max_examples=200, deadline=None)
def test_redact_hides_every_form_of_the_password(case: tuple[str, str], noise: str) -> None:
    """Any message built from the URL and its password, parsed or not, comes out without it."""
    url, password = case
    message = (f"{noise} {url} {url!r} :{password}@ {quote(password, safe='')} "
               f"password={password}& {password!r} {noise}")
    assert leaks(redact(message, url), password) == []


@pytest.mark.parametrize("url, shown", [
    ("postgresql://u:s3cretQ7@127.0.0.1:1/db", "postgresql://u:***@127.0.0.1:1/db"),
    ("postgresql://u@127.0.0.1:1/db?password=s3cretQ7",
     "postgresql://u@127.0.0.1:1/db?password=***"),
    ("postgresql://u@127.0.0.1:1/db?password=s3cretQ7&schema=x",
     "postgresql://u@127.0.0.1:1/db?password=***"),
    ("postgresql://u:p%40ssQ7@127.0.0.1:1/db", "postgresql://u:***@127.0.0.1:1/db"),
    ("postgresql://postgres:s3cretQ7@[::1/db", "postgresql://postgres:***@[::1/db"),
    ("postgresql//postgres:s3cretQ7@127.0.0.1/db", "postgresql//postgres:***@127.0.0.1/db"),
    ("postgres:S3cretPW/db", "postgres:***/db"),  # no //: what was typed is hidden too
    ("postgresql:S3cretPW/db?schema=x", "postgresql:***/db?schema=x"),
    ("sqlite:///tmp/a:b@c.db", "sqlite:///tmp/a:b@c.db"),  # no password in a file path
    ("memory://", "memory://"),
])
def test_redact_known_answers(url: str, shown: str) -> None:
    assert redact(url) == shown


@pytest.mark.parametrize("url, message", [
    ("postgresql:/postgres:s3cretQ7@127.0.0.1:1/db", "starts with postgresql://"),
    ("postgresql://postgres:s3cretQ7@[::1/db", "Invalid IPv6 URL"),
    ("postgresql://u:s3cretQ7@127.0.0.1:99999/db", "Port out of range"),
    ("postgresql//postgres:s3cretQ7@127.0.0.1/db", "unknown scheme"),
])
def test_malformed_urls_are_refused_without_the_password(url: str, message: str) -> None:
    with pytest.raises(StoreError, match=message) as exc:
        StoreURL.parse(url)
    assert "s3cretQ7" not in str(exc.value) and "***" in str(exc.value)


def test_password_parameter_is_the_password() -> None:
    """libpq's URI rule: ``?password=`` sets the password (shown as ***, never ignored)."""
    store = StoreURL.parse("postgresql://ann@127.0.0.1:1/db?password=p%26wQ7&schema=s")
    assert (store.password, store.user, store.schema) == ("p&wQ7", "ann", "s")
    assert store.redacted() == "postgresql://ann:***@127.0.0.1:1/db?schema=s"
    assert "p&wQ7" not in repr(store)


@pytest.mark.parametrize("args, env", [
    (["--store", "postgresql://postgres:s3cretQ7@[::1/db", "stage"], {}),
    (["audit", "verify"], {ENV_VAR: "postgresql://postgres@127.0.0.1:1/db?password=s3cretQ7"}),
])
def test_real_process_never_shows_the_password(args: list[str], env: dict[str, str],
                                               tmp_path: Path) -> None:
    """The installed entry point, with the URL in --store and in the environment."""
    cli = [sys.executable, "-m", "lifecycle_es.cli.main", "--log-level", "DEBUG"]
    proc = subprocess.run([*cli, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **env}, cwd=tmp_path)
    assert proc.returncode in (2, 3), proc.stderr
    assert "s3cretQ7" not in proc.stdout + proc.stderr
    assert "error: " in proc.stderr, proc.stderr


@pytest.mark.parametrize("url", [
    "postgresql://u:S3cret%ZZpw@127.0.0.1:1/db",  # a percent-encoding libpq refuses
    "postgresql://u@127.0.0.1:1/db?password=S3cret%ZZpw",
    "postgresql://u:S3cret%ZZpw@127.0.0.1:99999/db",
])
def test_no_exception_chain_holds_the_password(url: str) -> None:
    """The error of a URL the driver refuses holds no exception (``__cause__``,
    ``__context__``, even one ``from None`` hides) that quotes the password."""
    with pytest.raises(StoreError) as exc:
        LifecycleEngine(url)
    assert len(chain(exc.value)) == 1, [repr(e) for e in chain(exc.value)]
    assert "S3cret" not in described(exc.value)


def test_a_foreign_password_parameter_in_a_message_is_hidden() -> None:
    """A driver message quoting another connection string (not the store's): its
    ``password=`` value is hidden too (redact's last pass over the whole text)."""
    message = ('connection to "host=10.0.0.9 user=etl password=hunter2 dbname=x" failed; '
               "dsn postgresql://etl@10.0.0.9/x?sslmode=require&PASSWORD = hunter3")
    for store in ("postgresql://ann:s3cretQ7@127.0.0.1:1/db",
                  StoreURL.parse("postgresql://ann:s3cretQ7@127.0.0.1:1/db")):
        shown = redact(message, store)
        assert "hunter2" not in shown and "hunter3" not in shown, shown
        assert "password=*** dbname=x" in shown and "user=etl" in shown
