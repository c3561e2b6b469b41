"""``lifecycle-es tokens add|list|revoke``: the token printed once and alone, only its hash
kept (sealed, never shown), issuing and revoking in the audit trail."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import cli

from lifecycle_es import LifecycleEngine
from lifecycle_es.domain.token import name_of, token_hash

pytestmark = pytest.mark.slow


def test_tokens_add_list_revoke(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 't.db'}"
    added = cli(store, "tokens", "add", "crm", "--scope", "write", "--act-as-others")
    token = added.stdout.strip()
    assert added.stdout == token + "\n"  # the token alone on stdout
    assert re.fullmatch(r"lce_crm_[0-9a-f]{64}", token) and name_of(token) == "crm"
    second = cli(store, "tokens", "add", "bi").stdout.strip()
    assert second != token
    listed = json.loads(cli(store, "tokens", "list", "--json").stdout)
    assert [(t["name"], t["scope"], t["act_for_others"], t["revoked"]) for t in listed] == [
        ("bi", "read", False, False), ("crm", "write", True, False)]
    cli(store, "tokens", "revoke", "crm", "--reason", "rotated")
    assert json.loads(cli(store, "tokens", "list", "--json").stdout)[1]["revoked"] is True
    events = cli(store, "audit", "events", "--json", "--order", "oldest").stdout
    assert [e["type"] for e in json.loads(events)] == ["token_added", "token_added",
                                                        "token_revoked"]
    everything = events + cli(store, "tokens", "list", "--json").stdout + \
        cli(store, "tokens", "list").stdout
    for secret in (token, second, token_hash(token), token_hash(second)):
        assert secret not in everything
    raw = (tmp_path / "t.db").read_bytes()  # the hash is sealed in the store too
    assert token_hash(token).encode() not in raw and token.encode() not in raw
    with LifecycleEngine(store) as engine:
        assert engine.token_for(token) is None  # revoked
        found = engine.token_for(second)
        assert found is not None and found.scope == "read"
        assert engine.token_for(second[:-1] + ("0" if second[-1] != "0" else "1")) is None


@pytest.mark.parametrize(("args", "said"), [
    (("add", "bad name"), "token='bad name'"),
    (("add", "x" * 65), "expected 1 to 64"),
    (("add", "-crm"), "No such option"),
    (("add", "crm\x01"), "token="),
    (("add", "<b>crm</b>"), "token="),
    (("add", "crm", "--scope", "admin"), "scope='admin'"),
    (("revoke", "ghost"), "no such token"),
])
def test_bad_token_commands_say_why_and_write_nothing(tmp_path: Path, args: tuple[str, ...],
                                                      said: str) -> None:
    store = f"sqlite:///{tmp_path / 't.db'}"
    cli(store, "init")
    proc = cli(store, "tokens", *args, check=False)
    assert proc.returncode == 2 and said in proc.stderr, proc.stderr
    assert proc.stdout == ""
    assert json.loads(cli(store, "tokens", "list", "--json").stdout) == []


def test_a_name_is_issued_once(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path / 't.db'}"
    cli(store, "tokens", "add", "crm")
    cli(store, "tokens", "revoke", "crm")
    again = cli(store, "tokens", "add", "crm", check=False)
    assert again.returncode == 2 and "choose another name" in again.stderr
    assert again.stdout == ""
