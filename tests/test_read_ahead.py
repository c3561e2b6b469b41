"""read_ahead: a page reader one page ahead of the rebuild, in a thread."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from lifecycle_es.stores.by_aggregate import read_ahead


def test_items_arrive_in_order_produced_by_another_thread() -> None:
    threads = []

    def items() -> Iterator[int]:
        for i in range(100):
            threads.append(threading.current_thread())
            yield i

    assert list(read_ahead(items(), depth=3)) == list(range(100))
    assert threads and all(t is not threading.current_thread() for t in threads)


def test_an_error_in_the_reader_reaches_the_consumer_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise RuntimeError("server gone")

    got = []
    with pytest.raises(RuntimeError, match="server gone"):
        for item in read_ahead(items()):
            got.append(item)
    assert got == [1, 2]


def test_closing_stops_the_reader_without_reading_on() -> None:
    produced = []

    def items() -> Iterator[int]:
        for i in range(1000):
            produced.append(i)
            yield i

    pages = read_ahead(items(), depth=1)
    assert next(pages) == 0
    pages.close()  # a failed batch: the rebuild stops
    assert len(produced) <= 3  # at most the item handed over, the queued one, the pending one
    assert not [t for t in threading.enumerate() if t.name == "lifecycle-es-read-ahead"]
