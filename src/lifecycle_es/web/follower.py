"""The live follower: a thread that applies new events to the read models while the console
runs, so requests only read (``ProjectionManager.follow`` on an engine of its own)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine

log = get_logger("lifecycle_es.web")

#: seconds before a follower that stopped on an error starts again
RESTART_AFTER = 5.0


class Follower:
    """Keeps the read models of ``engine``'s store current until :meth:`stop`."""

    def __init__(self, engine: LifecycleEngine, poll_seconds: float, *,
                 own_engine: bool = True) -> None:
        self.engine = engine
        self.poll_seconds = poll_seconds
        #: run on an engine of its own (False: on ``engine``, which nothing else uses)
        self.own_engine = own_engine
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._own: LifecycleEngine | None = None
        #: set once the read models have caught up with the log as it was at start
        self.ready = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lifecycle-follower",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._own is None:  # its own connections (a memory store is one object)
                    self._own = self.engine if self.engine.store.kind == "memory" \
                        or not self.own_engine else self.engine.opener()()
                if not self.ready.is_set():
                    self._own.projections.catch_up()
                    self.ready.set()
                self._own.projections.follow(poll_interval=self.poll_seconds, stop=self._stop)
            except Exception as exc:  # the console goes on; its pages say how stale
                self.ready.set()
                text = str(exc) if isinstance(exc, LifecycleError) \
                    else f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                log.error("console.follower_stopped", error=text, retry_in_s=RESTART_AFTER)
                self._stop.wait(RESTART_AFTER)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._own is not None and self._own is not self.engine:
            self._own.close()
