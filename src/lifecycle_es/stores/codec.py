"""The event codec: the library's mapper with an orjson transcoder and no per-object hook.

The library's default path spends most of a replay in ``json`` decoding and in a per-object
hook that revives UUIDs and datetimes. Here events are encoded by orjson (which writes
datetimes, dates and UUIDs natively) and decoded by orjson, then only the fields whose type
is a ``date`` or ``datetime`` are revived, using the event class's type hints computed once.
"""

from __future__ import annotations

import hmac
import typing
from collections.abc import Callable
from datetime import date, datetime
from functools import cache
from types import UnionType
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Cipher, Compressor, Mapper, StoredEvent, Transcoder
from eventsourcing.utils import get_topic, resolve_topic

from lifecycle_es.errors import StoreError
from lifecycle_es.privacy import ERASED, erased_document
from lifecycle_es.stores.chain import Row, canonical_id
from lifecycle_es.stores.keys import Erased, Keyring, seal, unseal

#: the state key of an event's sealed personal fields: [token, field name, ...]
SEALED = "_pii"
_SEALED_BYTES = f'"{SEALED}"'.encode()
#: the state key of a snapshot's MAC: [master key fingerprint, hex HMAC] (``stores/keys.py``)
MAC = "_mac"


class SnapshotUntrusted(StoreError):
    """A stored snapshot fails its own check (``reason``: ``unsigned``, ``other key`` or
    ``altered``): it must not be used; the aggregate is replayed from its events."""

    def __init__(self, aggregate_id: str, version: int, reason: str, detail: str) -> None:
        self.aggregate_id, self.version, self.reason = aggregate_id, version, reason
        super().__init__(f"snapshot of aggregate {aggregate_id} at version {version}: {detail}")

_BASE_FIELDS = frozenset({"originator_id", "originator_version", "originator_topic"})


class OrjsonTranscoder(Transcoder):
    """Encodes JSON-compatible values plus datetimes, dates and UUIDs (as strings)."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj)

    def decode(self, data: bytes) -> Any:
        return orjson.loads(data)


def _reviver(hint: Any) -> Callable[[str], Any] | None:
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        inner = [a for a in typing.get_args(hint) if a is not type(None)]
        return _reviver(inner[0]) if len(inner) == 1 else None
    if hint is datetime:
        return datetime.fromisoformat
    if hint is date:
        return date.fromisoformat
    if hint is UUID:
        return UUID
    return None


@cache
def revivers(cls: type) -> tuple[tuple[str, Callable[[str], Any]], ...]:
    """(field, converter) for every date/datetime/UUID field of an event class."""
    hints = typing.get_type_hints(cls)
    out = []
    for name, hint in hints.items():
        conv = _reviver(hint)
        if conv is not None and name not in _BASE_FIELDS:
            out.append((name, conv))
    return tuple(out)


@cache
def personal_fields(cls: type) -> tuple[str, ...]:
    """The fields of an event class holding personal data (its ``PERSONAL``)."""
    return tuple(getattr(cls, "PERSONAL", ()))


@cache
def seal_context(cls: type) -> str:
    """What sealed fields are bound to besides the aggregate and version (``""`` for events;
    a snapshot class's ``SEAL_CONTEXT``)."""
    return str(getattr(cls, "SEAL_CONTEXT", ""))


@cache
def _placeholders(cls: type) -> dict[str, Callable[[], Any]]:
    """The placeholder maker of each field an erased event may lack (by its type hint)."""
    hints = typing.get_type_hints(cls)
    out: dict[str, Callable[[], Any]] = {}
    for name in personal_fields(cls):
        hint = hints.get(name)
        union = isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union
        inner = [a for a in typing.get_args(hint) if a is not type(None)] if union else [hint]
        dict_like = any(a is dict or typing.get_origin(a) is dict for a in inner)
        out[name] = erased_document if dict_like else _erased_text
    return out


@cache
def _topic_of(cls: type) -> str:
    return get_topic(cls)


@cache
def _class_of(topic: str) -> type:
    cls: type = resolve_topic(topic)
    return cls


class FastMapper(Mapper[UUID]):
    """The library's :class:`~eventsourcing.persistence.Mapper` with orjson and cached revivers.

    It keeps the library's pipeline and its extension points: the state is encoded by the
    transcoder, then compressed by the compressor and encrypted by the cipher when the
    environment configures them (``COMPRESSOR_TOPIC``, ``CIPHER_TOPIC``/``CIPHER_KEY``), and
    events of a class with ``class_version`` > 1 are upcast by its ``upcast_vX_vY`` methods
    when read. What it changes is speed: no per-object hook when decoding (dates, datetimes
    and UUIDs are revived from the event class's type hints, computed once per class) and
    topics resolved once per class.

    With a :attr:`keyring` (every store the engine opens, unless encryption is off), the
    fields an event class lists in ``PERSONAL`` are sealed under the aggregate's data key
    before the state goes through that pipeline, and opened when read; an erased
    aggregate's read as placeholders (``stores/keys.py``, docs/privacy.md). The library's
    cipher encrypts whole states under one key, which cannot erase one customer: this is
    why the mapper, not the cipher, does it.
    """

    #: the store's data keys; None: personal fields are stored as they are
    keyring: Keyring | None = None

    def __init__(
        self,
        transcoder: Transcoder | None = None,
        compressor: Compressor | None = None,
        cipher: Cipher | None = None,
    ) -> None:
        super().__init__(transcoder=transcoder or OrjsonTranscoder(),
                         compressor=compressor, cipher=cipher)
        self._plain = (self.compressor is None and self.cipher is None
                       and isinstance(self.transcoder, OrjsonTranscoder))

    def to_stored_event(self, domain_event: DomainEventProtocol[UUID]) -> StoredEvent:
        return StoredEvent(
            originator_id=domain_event.originator_id,
            originator_version=domain_event.originator_version,
            topic=_topic_of(type(domain_event)),
            state=self.encode(domain_event, canonical_id(domain_event.originator_id)),
        )

    def to_row(self, domain_event: DomainEventProtocol[UUID], aggregate_id: str) -> Row:
        """The event as a chain row for the bulk recorders (see ``stores/chain.py``);
        ``aggregate_id`` is the canonical id of its aggregate (``canonical_id``), which a
        caller writing many events of one aggregate computes once."""
        return (aggregate_id, domain_event.originator_version, _topic_of(type(domain_event)),
                self.encode(domain_event, aggregate_id))

    def to_domain_event(self, stored_event: StoredEvent) -> DomainEventProtocol[UUID]:
        oid = stored_event.originator_id
        event: DomainEventProtocol[UUID] = self.event_from(
            stored_event.topic, stored_event.state, oid if isinstance(oid, UUID) else UUID(oid),
            stored_event.originator_version)
        return event

    def encode(self, domain_event: Any, aggregate_id: str) -> bytes:
        """A domain event's stored state: personal fields sealed (with a keyring), then
        transcoded, compressed and encrypted when configured. ``aggregate_id`` is the
        canonical id of its aggregate (``canonical_id``)."""
        cls: type = type(domain_event)
        class_version: int = getattr(cls, "class_version", 1)
        state = state_of(domain_event)
        if self.keyring is not None and personal_fields(cls):
            self._seal(state, cls, aggregate_id, domain_event.originator_version)
        if class_version > 1:
            state["class_version"] = class_version
        if self.keyring is not None and seal_context(cls):
            # a snapshot: signed over all the rest of its stored state
            state[MAC] = [self.keyring.master.fingerprint, self.keyring.snapshot_mac(
                aggregate_id, domain_event.originator_version, _mac_body(state))]
        if self._plain and class_version == 1:
            # Copied out of orjson's result: orjson builds its output in an over-sized buffer
            # and shrinks it, so keeping hundreds of thousands of them alive (a bulk
            # import's batches) cost 6-14 µs each in fresh memory pages, against 1.6 µs for
            # dumps plus an exact-size copy (docs/performance.md, "Import").
            return memoryview(orjson.dumps(state)).tobytes()
        data = self.transcoder.encode(state)
        if self.compressor is not None:
            data = self.compressor.compress(data)
        if self.cipher is not None:
            data = self.cipher.encrypt(data)
        return data

    def _seal(self, state: dict[str, Any], cls: type, aggregate_id: str, version: int) -> None:
        personal = {name: value for name in personal_fields(cls)
                    if (value := state.get(name)) is not None}
        if personal:
            assert self.keyring is not None
            for name in personal:
                del state[name]
            context = seal_context(cls)
            if context:  # a snapshot: sealed by the customer's committed key, never a new one
                found = self.keyring.for_read(aggregate_id)
                if found is None:
                    raise Erased(aggregate_id)
                key = found
            else:
                key = self.keyring.for_write(aggregate_id, new=version == 1)
            state[SEALED] = [seal(key, personal, aggregate_id, f"{context}{version}"),
                             *personal]

    def stored_state(self, data: bytes) -> dict[str, Any]:
        """The state as stored (decrypted and decompressed when configured), personal
        fields still sealed and no upcasting."""
        if self._plain:
            state: dict[str, Any] = orjson.loads(data)
            return state
        if self.cipher is not None:
            data = self.cipher.decrypt(data)
        if self.compressor is not None:
            data = self.compressor.decompress(data)
        decoded: dict[str, Any] = self.transcoder.decode(data)
        return decoded

    def decode(self, cls: type, data: bytes, aggregate_id: str | None = None,
               version: int = 0, *, check: bool = True) -> dict[str, Any]:
        """The attribute dict of an event of ``cls`` from its stored state (decrypted,
        decompressed, decoded, personal fields opened, upcast to the class's version,
        dates revived). Without ``aggregate_id`` sealed personal fields read as None.
        A snapshot's MAC is checked (unless not ``check``: ``audit verify`` compares an
        unsigned one with the fold of its events instead)."""
        state = self.stored_state(data)
        if seal_context(cls):
            self._check_snapshot(state, aggregate_id if check else None, version)
        sealed = state.pop(SEALED, None)
        if sealed is not None:
            self._open(state, cls, sealed, aggregate_id, version)
        class_version: int = getattr(cls, "class_version", 1)
        if class_version > 1:
            version = state.pop("class_version", 1)
            while version < class_version:
                getattr(cls, f"upcast_v{version}_v{version + 1}")(state)
                version += 1
        for name, conv in revivers(cls):  # inline: this runs for every event of a replay
            value = state.get(name)
            if value.__class__ is str:  # an upcaster may already have set a value
                state[name] = conv(value)
        return state

    def _check_snapshot(self, state: dict[str, Any], aggregate_id: str | None,
                        version: int) -> None:
        """Take the snapshot's MAC out of ``state``; raise :class:`SnapshotUntrusted` when
        it is missing, made under another master key, or does not match (only with a
        keyring and an aggregate id: else it is just removed)."""
        mac = state.pop(MAC, None)
        if self.keyring is None or aggregate_id is None:
            return
        fingerprint = self.keyring.master.fingerprint
        if not (isinstance(mac, list) and len(mac) == 2):
            raise SnapshotUntrusted(aggregate_id, version, "unsigned",
                                    "it carries no MAC (written before snapshots were "
                                    "signed, or not by the engine)")
        if mac[0] != fingerprint:
            raise SnapshotUntrusted(aggregate_id, version, "other key",
                                    f"signed under master key {_shown(mac[0])}, not "
                                    f"{fingerprint} (made before a key rotation?)")
        expected = self.keyring.snapshot_mac(aggregate_id, version, _mac_body(state))
        if not (isinstance(mac[1], str) and hmac.compare_digest(mac[1], expected)):
            raise SnapshotUntrusted(aggregate_id, version, "altered",
                                    "its stored state does not match its MAC (altered, or "
                                    "copied from another customer or version)")

    def _open(self, state: dict[str, Any], cls: type, sealed: list[Any],
              aggregate_id: str | None, version: int) -> None:
        token, names = sealed[0], sealed[1:]
        if aggregate_id is None:
            state.update(dict.fromkeys(names))
            return
        if self.keyring is None:
            raise StoreError(f"event {version} of aggregate {aggregate_id} has sealed "
                             "personal fields, and the store was opened without its keys")
        key = self.keyring.for_read(aggregate_id)
        if key is None:  # erased
            makers = _placeholders(cls)
            state.update((n, makers.get(n, _erased_text)()) for n in names)
        else:
            state.update(unseal(key, token, aggregate_id, f"{seal_context(cls)}{version}"))

    def has_plain_personal(self, topic: str, data: bytes) -> bool:
        """Whether the event stored as ``topic`` and ``data`` holds personal fields in
        clear (written before encryption, or with it off)."""
        state = self.stored_state(data)
        return any(state.get(name) is not None for name in personal_fields(_class_of(topic)))

    def sealed_token(self, data: bytes) -> str | None:
        """The sealed personal fields of the stored state ``data`` (their token), or None
        when it has none (a substring test first: this runs on every event ``audit verify``
        reads until it finds one of the aggregate)."""
        if self._plain and _SEALED_BYTES not in data:
            return None
        try:
            sealed = self.stored_state(data).get(SEALED)
        except Exception:  # altered bytes: the hash chain reports them
            return None
        return sealed[0] if isinstance(sealed, list) and sealed and isinstance(
            sealed[0], str) else None

    def decode_topic(self, topic: str, data: bytes) -> dict[str, Any]:
        """:meth:`decode` for the class stored as ``topic`` (sealed fields not opened)."""
        return self.decode(_class_of(topic), data)

    def event_from(self, topic: str, data: bytes, originator_id: UUID, version: int, *,
                   check: bool = True) -> Any:
        """The domain event stored as ``topic`` and ``data`` (the state) on that aggregate
        (``check``: see :meth:`decode`)."""
        cls = _class_of(topic)
        state = self.decode(cls, data, str(originator_id), version, check=check)
        state["originator_id"] = originator_id
        state["originator_version"] = version
        event: Any = object.__new__(cls)
        object.__setattr__(event, "__dict__", state)
        return event


def _mac_body(state: dict[str, Any]) -> bytes:
    """What a snapshot's MAC covers: its stored state (personal part sealed) as JSON with
    sorted keys, which reads back to the same bytes."""
    return orjson.dumps(state, option=orjson.OPT_SORT_KEYS)


def _shown(value: Any) -> str:
    """A short, inert rendering of a stored value for a message."""
    return repr(str(value)[:40])


def _erased_text() -> str:
    return ERASED


def state_of(domain_event: Any) -> dict[str, Any]:
    """A domain event's fields but the aggregate id and version."""
    state = dict(vars(domain_event))
    del state["originator_id"], state["originator_version"]
    return state
