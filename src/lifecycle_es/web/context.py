"""What every request shares (``request.app.state.console``), and running blocking reads
and writes off the event loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
from starlette.requests import Request

from lifecycle_es.config import Config, load_config
from lifecycle_es.web.auth import SignInThrottle
from lifecycle_es.web.reads import VerifyReport

if TYPE_CHECKING:
    from lifecycle_es.engine import LifecycleEngine
    from lifecycle_es.web.settings import Settings

T = TypeVar("T")


@dataclass
class Console:
    """The engine, the settings, the lifecycle configuration, the sign-in throttle."""

    engine: LifecycleEngine
    settings: Settings
    config: Config = field(default_factory=load_config)
    throttle: SignInThrottle = field(init=False)
    #: the last ``audit verify`` of this process: (when, its report)
    last_verify: tuple[datetime, VerifyReport] | None = None

    def __post_init__(self) -> None:
        self.throttle = SignInThrottle(self.settings.failed_signin_seconds)


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console


async def blocking(func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in a worker thread (store reads and writes block)."""
    return await anyio.to_thread.run_sync(partial(func, *args, **kwargs))
