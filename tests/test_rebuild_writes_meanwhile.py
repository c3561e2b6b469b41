"""Events recorded while a rebuild fills its shadow tables reach the rebuilt model: the swap
applies them first, so a reader never sees the model go back (issue 31)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from projection_gen import write

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.projection.db import ReadStore
from lifecycle_es.reading.projection.rebuild import Rebuild
from lifecycle_es.stores.url import StoreURL

OLD, NEW, LATE = 50, 20, 5


def test_writes_between_phase_two_and_the_swap_are_in_the_rebuilt_model(
        durable_store_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    model = "current_stage"
    eng = LifecycleEngine(durable_store_url)
    follower_eng = LifecycleEngine(durable_store_url)
    write(eng, customers=OLD)
    eng.projections.catch_up([model])

    stop = threading.Event()
    counts: list[int] = []
    errors: list[BaseException] = []
    reader = ReadStore(StoreURL.parse(durable_store_url))  # its own connection

    def follow() -> None:  # a live runner keeping the old model current
        try:
            follower_eng.projections.follow([model], poll_interval=0.05, stop=stop)
        except BaseException as exc:
            errors.append(exc)

    def read() -> None:
        while not stop.is_set():
            try:
                counts.append(reader.count(model))
            except BaseException as exc:
                errors.append(exc)
            time.sleep(0.005)

    fill = Rebuild.fill_shadows

    def fill_then_write(self: Rebuild, *args: Any, **kwargs: Any) -> Any:
        """Phase two is done: new customers arrive and the live runner applies them."""
        filled = fill(self, *args, **kwargs)
        write(eng, customers=LATE, seed=5, start=OLD + NEW)
        deadline = time.monotonic() + 30
        while reader.count(model) < OLD + NEW + LATE and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reader.count(model) == OLD + NEW + LATE, "the live runner did not follow"
        return filled

    threads = [threading.Thread(target=follow), threading.Thread(target=read)]
    for t in threads:
        t.start()
    try:
        write(eng, customers=NEW, seed=3, start=OLD)
        deadline = time.monotonic() + 30
        while reader.count(model) < OLD + NEW and time.monotonic() < deadline:
            time.sleep(0.02)
        monkeypatch.setattr(Rebuild, "fill_shadows", fill_then_write)
        eng.projections.rebuild([model], batch_size=100)
        time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
        reader.close()
    try:
        assert not errors, errors[:3]
        assert counts == sorted(counts), "a reader saw the model go back"
        assert counts[-1] == OLD + NEW + LATE
        [status] = eng.projections.status([model])
        assert status.position == status.head and status.state == "up to date"
        assert status.rows == OLD + NEW + LATE
    finally:
        eng.close()
        follower_eng.close()
