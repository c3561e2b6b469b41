"""What every request shares (``request.app.state.console``), and running blocking reads
and writes off the event loop."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from starlette.requests import Request

from lifecycle_es.config import Config, load_config
from lifecycle_es.web.auth import SignInThrottle
from lifecycle_es.web.reads import VerifyReport
from lifecycle_es.web.views import Views

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine
    from lifecycle_es.web.settings import Settings

T = TypeVar("T")
#: periods whose metrics are kept at once
MAX_PERIODS = 32


@dataclass
class Console:
    """The engine, the settings, the lifecycle configuration, the sign-in throttle, the
    shared views."""

    engine: LifecycleEngine
    settings: Settings
    config: Config = field(default_factory=load_config)
    throttle: SignInThrottle = field(init=False)
    #: the last ``audit verify`` of this process: (when, its report)
    last_verify: tuple[datetime, VerifyReport] | None = None
    #: the views kept current in the background (open gaps, the default metrics)
    views: Views = field(init=False)

    def __post_init__(self) -> None:
        self.throttle = SignInThrottle(self.settings.failed_signin_seconds)
        self.views = Views(self.engine, self.config, self.settings)
        self._metrics: dict[Any, Shared[Any]] = {}

    def metrics_cache(self, key: Any) -> Shared[Any]:
        """The shared metrics of one period (``key``), kept ``metrics_cache_seconds``."""
        if key not in self._metrics:
            if len(self._metrics) >= MAX_PERIODS:  # bounded: the oldest periods go
                self._metrics.pop(next(iter(self._metrics)))
            self._metrics[key] = Shared(self.settings.metrics_cache_seconds)
        return self._metrics[key]


class Shared(Generic[T]):
    """One value computed by one request at a time and shared for ``seconds`` (the pages
    say how fresh it is)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.Lock()
        self._entry: tuple[float, T] | None = None

    def get(self, compute: Callable[[], T]) -> T:
        with self._lock:  # one computes, the others wait for its answer
            entry = self._entry
            if entry is not None and time.monotonic() - entry[0] < self.seconds:
                return entry[1]
            value = compute()
            self._entry = (time.monotonic(), value)
            return value


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


async def blocking(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in a worker thread (store reads and writes block)."""
    return await anyio.to_thread.run_sync(partial(func, *args, **kwargs))


async def reading(console: Console, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A page's reads, ``func(*args, **kwargs)``, in a worker thread as one top-level read
    (``ProjectionManager.reading``: each read model checked for a failure once)."""
    def run() -> T:
        with console.engine.reader.projections.reading():
            return func(*args, **kwargs)

    return await anyio.to_thread.run_sync(run)
