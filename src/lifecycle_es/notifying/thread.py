"""The notifier in a thread of a server (``lifecycle-es serve --notifications``), on read
models of its own, stopped with the server."""

from __future__ import annotations

import threading
from collections.abc import Callable

from lifecycle_es.config import Config
from lifecycle_es.errors import LifecycleError
from lifecycle_es.logs import get_logger
from lifecycle_es.notifying.config import Notifications
from lifecycle_es.notifying.sender import Notifier
from lifecycle_es.reading.source import Source

log = get_logger("lifecycle_es.notify")

#: seconds before a notifier that could not start tries again
RESTART_AFTER = 5.0


class NotifierThread:
    """Runs a :class:`Notifier` on the source ``open_source()`` gives until :meth:`stop`."""

    def __init__(self, open_source: Callable[[], Source], config: Notifications,
                 gaps_config: Config | None = None,
                 close: Callable[[Source], None] | None = None) -> None:
        self._open, self._close = open_source, close
        self.config, self.gaps_config = config, gaps_config
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: Source | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="lifecycle-notifier",
                                        daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._source is None:
                    self._source = self._open()
                Notifier(self._source, self.config, gaps_config=self.gaps_config).run(
                    self._stop)
            except LifecycleError as exc:
                log.error("notify.stopped", error=str(exc), retry_in_s=RESTART_AFTER)
                self._stop.wait(RESTART_AFTER)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._source is not None and self._close is not None:
            self._close(self._source)
