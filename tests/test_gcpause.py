"""The bulk write path pauses the cyclic collector and always restores it."""

from __future__ import annotations

import gc

import pytest

from lifecycle_es.gcpause import without_cyclic_gc


def test_collector_is_off_inside_and_restored_after_success_and_error() -> None:
    seen: list[bool] = []

    @without_cyclic_gc
    def work(fail: bool) -> int:
        seen.append(gc.isenabled())
        if fail:
            raise ValueError("boom")
        return 42

    assert gc.isenabled()
    assert work(False) == 42
    assert gc.isenabled()
    with pytest.raises(ValueError, match="boom"):
        work(True)
    assert gc.isenabled() and seen == [False, False]


def test_collector_left_off_when_it_was_off_before() -> None:
    gc.disable()
    try:
        without_cyclic_gc(lambda: None)()
        assert not gc.isenabled()
    finally:
        gc.enable()
