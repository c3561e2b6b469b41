"""Stored events as the read models see them: decoded, or standing in for one that cannot
be (an unknown type, a broken payload), so that the read models fail on it one by one."""

from __future__ import annotations

import re
import uuid
from contextlib import suppress
from typing import Any

import orjson
from eventsourcing.utils import resolve_topic

from lifecycle_es.stores.codec import FastMapper

_CUSTOMER = re.compile(rb'"customer"\s*:\s*("(?:[^"\\]|\\.)*")')


class Undecodable:
    """A stored event that cannot be decoded: any handler touching it raises the error."""

    def __init__(self, event_class: type, error: Exception, customer: str | None,
                 originator_id: uuid.UUID, originator_version: int) -> None:
        d = self.__dict__
        d["event_class"], d["error"], d["customer"] = event_class, error, customer
        d["originator_id"], d["originator_version"] = originator_id, originator_version

    def __getattr__(self, name: str) -> Any:
        raise self.__dict__["error"]


def fail_undecodable(event: Any, tables: Any) -> None:
    """The handler of an event whose type is unknown: every read model fails on it."""
    raise event.error


def class_of(event: Any) -> type:
    """The event's class (the stored one for an :class:`Undecodable`)."""
    cls = type(event)
    return event.event_class if cls is Undecodable else cls


class Decoder:
    """Decodes stored events with the engine's codec."""

    def __init__(self, mapper: Any) -> None:
        assert isinstance(mapper, FastMapper)  # the engine's codec
        self._mapper = mapper

    def __call__(self, topic: str, data: bytes, originator_id: Any, version: int) -> Any:
        """The domain event, or an :class:`Undecodable` standing for it."""
        if not isinstance(originator_id, uuid.UUID):
            originator_id = uuid.UUID(str(originator_id))
        try:
            return self._mapper.event_from(topic, data, originator_id, version)
        except Exception as exc:
            try:
                event_class: type = resolve_topic(topic)
            except Exception:
                event_class = Undecodable
            match = _CUSTOMER.search(bytes(data))
            customer = None
            if match:
                with suppress(Exception):
                    customer = str(orjson.loads(match.group(1)))
            return Undecodable(event_class, exc, customer, originator_id, version)
