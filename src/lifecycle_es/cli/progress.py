"""How the CLI shows the progress of long work (:mod:`lifecycle_es.progress`).

Work that lasts less than :data:`SHOW_AFTER` shows nothing. Longer work shows, on stderr
only (stdout stays the answer, e.g. valid ``--json``):

* on a terminal: a rich bar with done / total, percentage, rate, elapsed time and ETA;
* otherwise (a pipe, a file, CI): structured log lines (logger ``lifecycle_es.progress``,
  level info, so ``--log-level INFO`` shows them) at most every :data:`LOG_EVERY` seconds
  and one when the work ends, with ``done``, ``total``, ``unit``, ``rate_per_s``, ``eta_s``
  and ``elapsed_s`` (and ``finished``: false on the last line when the work stopped early,
  on an error or Ctrl-C).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.progress import Progress as RichProgress

from lifecycle_es.logs import get_logger
from lifecycle_es.progress import Progress

#: seconds a piece of work must last before its progress is shown at all
SHOW_AFTER = 1.0
#: seconds between two progress log lines when stderr is not a terminal
LOG_EVERY = 2.0
PROGRESS_LOGGER = "lifecycle_es.progress"


class _Meter:
    """Done, total, rate and ETA of one piece of work since it started."""

    def __init__(self, what: str, unit: str) -> None:
        self.what, self.unit = what, unit
        self.started = time.monotonic()
        self.done = self.total = 0

    def update(self, done: int, total: int) -> None:
        self.done, self.total = done, max(total, 0)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def rate(self) -> float:
        return self.done / max(self.elapsed(), 1e-9)

    def eta(self) -> float | None:
        rate = self.rate()
        if not self.total or not rate:
            return None
        return max(0.0, (self.total - self.done) / rate)


class _Bar(_Meter):
    """A rich progress bar on ``console``, started once the work has lasted SHOW_AFTER."""

    def __init__(self, console: Console, what: str, unit: str) -> None:
        super().__init__(what, unit)
        self.console = console
        self.bar: RichProgress | None = None
        self.task: Any = None

    def __call__(self, done: int, total: int) -> None:
        self.update(done, total)
        if self.bar is None:
            if self.elapsed() < SHOW_AFTER:
                return
            self.bar = RichProgress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn(self.unit), TaskProgressColumn(),
                TextColumn("{task.fields[rate]:>9,.0f}/s"), TimeElapsedColumn(),
                TextColumn("ETA"), TimeRemainingColumn(),
                console=self.console, transient=False, redirect_stdout=False,
                redirect_stderr=False)
            self.bar.start()
            self.task = self.bar.add_task(self.what, total=None, rate=0.0)
        self.bar.update(self.task, completed=self.done, total=self.total or None,
                        rate=self.rate())

    def close(self, ok: bool) -> None:
        if self.bar is not None:
            if ok:
                self.bar.update(self.task, completed=self.done,
                                total=self.total or self.done, rate=self.rate())
            self.bar.stop()


class _Lines(_Meter):
    """Structured log lines: none before SHOW_AFTER, then one every LOG_EVERY seconds and
    one at the end."""

    def __init__(self, what: str, unit: str) -> None:
        super().__init__(what, unit)
        self.log = get_logger(PROGRESS_LOGGER)
        self.last: float | None = None

    def __call__(self, done: int, total: int) -> None:
        self.update(done, total)
        now = self.elapsed()
        if now >= SHOW_AFTER and (self.last is None or now - self.last >= LOG_EVERY):
            self.last = now
            self._line(finished=False)

    def close(self, ok: bool) -> None:
        if self.last is not None or self.elapsed() >= SHOW_AFTER:
            self._line(finished=ok)

    def _line(self, *, finished: bool) -> None:
        eta = self.eta()
        self.log.info(self.what, done=self.done, total=self.total or None, unit=self.unit,
                      rate_per_s=round(self.rate(), 1),
                      eta_s=None if eta is None or finished else round(eta, 1),
                      elapsed_s=round(self.elapsed(), 2), finished=finished)


class CliReporter:
    """The CLI's :class:`lifecycle_es.progress.Reporter`: a bar when ``console`` (stderr by
    default) is a terminal, log lines otherwise."""

    def __init__(self, console: Console | None = None) -> None:
        from lifecycle_es.cli.output import err_console

        self.console = console or err_console

    @contextmanager
    def __call__(self, what: str, unit: str) -> Iterator[Progress]:
        shown: _Bar | _Lines = (_Bar(self.console, what, unit) if self.console.is_terminal
                                else _Lines(what, unit))
        try:
            yield shown
        except BaseException:
            shown.close(ok=False)
            raise
        shown.close(ok=True)
