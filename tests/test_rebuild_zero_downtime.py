"""Readers querying during a rebuild see the whole old model, then the whole new one."""

from __future__ import annotations

import threading
import time

import pytest
from projection_gen import write

from lifecycle_es import LifecycleEngine
from lifecycle_es.reading.projection.db import ReadStore
from lifecycle_es.stores.url import StoreURL

OLD, NEW = 400, 250


@pytest.mark.parametrize("jobs", [1, 2], ids=["jobs-1", "jobs-2"])
def test_reader_never_sees_a_partial_model(durable_store_url: str, jobs: int) -> None:
    """With ``jobs`` 2 two read models are filled by two worker processes."""
    models = ["current_stage", "handover_history"]
    eng = LifecycleEngine(durable_store_url)
    write(eng, customers=OLD)
    eng.projections.catch_up(models)
    write(eng, customers=NEW, seed=3, start=OLD)  # not caught up: only the rebuild adds them

    counts: list[int] = []
    errors: list[BaseException] = []
    stop = threading.Event()
    reader = ReadStore(StoreURL.parse(durable_store_url))  # its own connection

    def read() -> None:
        while not stop.is_set():
            try:
                counts.append(reader.count("current_stage"))
            except BaseException as exc:
                errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        while not counts:
            time.sleep(0.01)
        during_start = len(counts)
        eng.projections.rebuild(models, batch_size=100, jobs=jobs)
        during = len(counts) - during_start
        time.sleep(0.2)
    finally:
        stop.set()
        thread.join()
        reader.close()
        eng.close()
    assert not errors, errors[:3]
    assert set(counts) == {OLD, OLD + NEW}
    assert counts == sorted(counts)  # old model until the swap, new model after it
    assert during > 10  # the reader really ran while the rebuild did
