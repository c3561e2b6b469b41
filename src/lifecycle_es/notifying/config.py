"""The notifications configuration: which gaps go where (docs/notifications.md).

A TOML file given by ``--notifications PATH`` or ``$LIFECYCLE_ES_NOTIFICATIONS``; the smallest
one names one webhook channel::

    [[channel]]
    name = "cs-alerts"
    webhook = "http://127.0.0.1:9000/hook"
    secret_env = "CS_ALERTS_SECRET"

Secrets (the webhook's HMAC key, the SMTP user and password) are never in the file: the file
names the environment variables that hold them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from lifecycle_es.config import load_toml
from lifecycle_es.errors import ConfigError, FieldProblem
from lifecycle_es.reading.lifecycle_checks.gaps import KINDS

ENV_VAR = "LIFECYCLE_ES_NOTIFICATIONS"
#: a gap that opens, or that stays open past an escalation's days
AlertType = Literal["opened", "escalated"]

_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_ENV = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_PERSON = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
_ADDRESS = re.compile(r"^[^@\s<>\",;\x00-\x1f\x7f]{1,64}@[A-Za-z0-9.-]{1,253}$")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _env_name(value: str | None) -> str | None:
    if value is not None and not _ENV.match(value):
        raise ValueError("must be an environment variable's name (letters, digits, _)")
    return value


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise ValueError("must be an e-mail address (name@domain)")
    return value


class Sender(_Strict):
    """How the sender delivers: timeouts, retries, the clock of time-based gaps."""

    timeout_seconds: float = Field(10, gt=0, le=300, description="one delivery's timeout")
    retry_for_hours: float = Field(24, gt=0, le=24 * 30,
                                   description="retry this long, then park the alert as dead")
    backoff_first_seconds: float = Field(5, gt=0, le=3600,
                                         description="the first pause before a retry")
    backoff_cap_seconds: float = Field(3600, gt=0, le=86400,
                                       description="the longest pause between retries")
    poll_seconds: float = Field(1, gt=0, le=3600,
                                description="how often new events and due alerts are looked for")
    clock_seconds: float = Field(30, gt=0, le=86400,
                                 description="gaps re-evaluated this often with no new event")
    batch: int = Field(50, ge=1, le=10_000, description="alerts claimed at once")

    @property
    def lease_seconds(self) -> float:
        """How long a claimed alert is kept from other senders: three timeouts (connect,
        STARTTLS, send) and two seconds; a sender killed mid-delivery frees it then."""
        return 3 * self.timeout_seconds + 2


class Smtp(_Strict):
    """The SMTP server of e-mail channels (STARTTLS unless ``starttls = false``)."""

    host: str = Field(min_length=1, max_length=253)
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    from_address: str = Field(alias="from")
    username_env: str | None = None
    password_env: str | None = None
    ca_file: str | None = Field(None, max_length=4096,
                                description="CA certificates to trust (default: the system's)")

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    _from = field_validator("from_address")(_address)
    _envs = field_validator("username_env", "password_env")(_env_name)

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z0-9.:\[\]-]+$", value):
            raise ValueError("must be a host name or address")
        return value


class _Gaps(_Strict):
    """Which gaps: of ``kinds`` (None: every kind), for ``teams`` (None: every team)."""

    kinds: list[str] | None = Field(None, max_length=100)
    teams: list[str] | None = Field(None, max_length=100)

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str] | None) -> list[str] | None:
        for kind in value or ():
            if kind not in KINDS:
                raise ValueError(f"unknown gap kind {kind!r} (known: {', '.join(KINDS)})")
        return value

    def covers(self, kind: str, team: str) -> bool:
        """Whether a gap of ``kind`` for ``team`` is one of these."""
        return (self.kinds is None or kind in self.kinds) and \
            (self.teams is None or team in self.teams)


class Escalation(_Gaps):
    """A gap open ``after_days`` days is escalated to ``lead`` (a person of ``[people]``)."""

    after_days: int = Field(ge=1, le=3650)
    lead: str

    @field_validator("lead")
    @classmethod
    def _lead(cls, value: str) -> str:
        if not _PERSON.match(value):
            raise ValueError("must be a person's name (1-200 characters, no control characters)")
        return value


def _both() -> list[AlertType]:
    return ["opened", "escalated"]


class Channel(_Gaps):
    """Where alerts go: a webhook or e-mail (fixed addresses, or ``"owner"``: the gap owner's
    address, the lead's for an escalation), for gaps of ``kinds`` and ``teams``; with
    ``digest = "daily"``: one message a day per person listing the gaps they own."""

    name: str
    webhook: str | None = Field(None, max_length=2048)
    secret_env: str | None = None
    email: list[str] | Literal["owner"] | None = None
    alerts: list[AlertType] = Field(default_factory=_both, min_length=1)
    digest: Literal["daily"] | None = None
    digest_hour: int = Field(8, ge=0, le=23, description="UTC hour of the daily digest")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must be 1-64 of a-z, 0-9, _ and -, starting with a letter or digit")
        return value

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname or \
                any(c.isspace() or not c.isprintable() for c in value):
            raise ValueError("must be an http:// or https:// URL")
        return value

    _secret = field_validator("secret_env")(_env_name)

    @field_validator("email")
    @classmethod
    def _email(cls, value: list[str] | str | None) -> list[str] | str | None:
        if isinstance(value, list):
            if not 1 <= len(value) <= 100:
                raise ValueError("must list 1 to 100 addresses")
            for address in value:
                _address(address)
        return value

    @model_validator(mode="after")
    def _one_target(self) -> Channel:
        if (self.webhook is None) == (self.email is None):
            raise ValueError(f"channel {self.name!r}: give either webhook or email")
        if self.webhook is not None and self.secret_env is None:
            raise ValueError(f"channel {self.name!r}: a webhook needs secret_env (the "
                             "environment variable holding its HMAC key)")
        if self.digest is not None and self.email is not None and self.email != "owner":
            raise ValueError(f"channel {self.name!r}: a digest goes to each owner: "
                             "email = \"owner\"")
        return self

    @property
    def to_owner(self) -> bool:
        """Whether each message goes to one person (the owner, the lead, the digest's)."""
        return self.email == "owner" or self.digest is not None


class Notifications(_Strict):
    """Everything the notifications file sets."""

    channel: list[Channel] = Field(min_length=1, max_length=100)
    smtp: Smtp | None = None
    people: dict[str, str] = Field(default_factory=dict, max_length=100_000)
    escalation: list[Escalation] = Field(default_factory=list, max_length=100)
    sender: Sender = Field(default_factory=Sender)

    @field_validator("people")
    @classmethod
    def _people(cls, value: dict[str, str]) -> dict[str, str]:
        for person, address in value.items():
            if not _PERSON.match(person):
                raise ValueError(f"{person!r}: a person's name is 1-200 characters, no "
                                 "control characters")
            try:
                _address(address)
            except ValueError:
                raise ValueError(f"{person}: {address!r} is not an e-mail address") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Notifications:
        names = [c.name for c in self.channel]
        if len(set(names)) != len(names):
            raise ValueError("channel: two channels have the same name")
        if any(c.email is not None for c in self.channel) and self.smtp is None:
            raise ValueError("an e-mail channel needs an [smtp] section")
        for rule in self.escalation:
            if rule.lead not in self.people and any(c.email == "owner" for c in self.channel):
                raise ValueError(f"escalation: lead {rule.lead!r} has no address in [people]")
        return self

    @classmethod
    def from_toml(cls, path: str | Path) -> Notifications:
        return load_toml(cls, path, "notifications file")

    def check_teams(self, teams: Sequence[str]) -> None:
        """Every team a channel or an escalation names is one of ``teams`` (the store's)."""
        for where, rules in (("channel", self.channel), ("escalation", self.escalation)):
            for i, rule in enumerate(rules):
                for team in rule.teams or ():
                    if team not in teams:
                        known = f"unknown team (known: {', '.join(teams)})"
                        problem = FieldProblem(f"{where}.{i}.teams", team, known)
                        raise ConfigError(f"notifications file: {problem}")

    def channel_named(self, name: str) -> Channel | None:
        return next((c for c in self.channel if c.name == name), None)


def secret(name: str) -> str:
    """The value of environment variable ``name`` (a secret: never shown), or ConfigError."""
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"environment variable {name} is not set (the notifications file "
                          "names it for a secret)")
    return value


def load_notifications(path: str | Path | None = None) -> Notifications | None:
    """The notifications file at ``path``, else at ``$LIFECYCLE_ES_NOTIFICATIONS``, else None;
    every secret it names must be set (checked now, so a sender never starts without)."""
    path = path or os.environ.get(ENV_VAR) or None
    if path is None:
        return None
    config = Notifications.from_toml(path)
    for channel in config.channel:
        if channel.secret_env is not None:
            secret(channel.secret_env)
    if config.smtp is not None:
        ca_file = config.smtp.ca_file
        if ca_file is not None and not Path(ca_file).is_file():
            problem = FieldProblem("smtp.ca_file", ca_file, "no such file")
            raise ConfigError(f"notifications file {str(path)!r}: {problem}")
        for name in (config.smtp.username_env, config.smtp.password_env):
            if name is not None:
                secret(name)
    return config
