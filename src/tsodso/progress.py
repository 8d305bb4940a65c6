"""Progress of long work, reported to whoever listens (the command line draws bars).

Library code reports through :func:`task`: a context manager for one piece of work with a
known or unknown number of steps (schemes of a run, ADMM or hierarchical iterations, batch
feeder solves). By default nobody listens and reporting costs a dictionary lookup. The
command line installs a :class:`RichProgress` (bars on stderr) with :func:`reporting` when
stderr is a terminal and neither ``--json`` nor ``--quiet`` was given, so piped output and
JSON stay clean.

Example::

    with progress.task("admm iterations", total=300) as step:
        for k in range(300):
            ...
            step(info=f"residual {r:.2g} MW")
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any, Protocol


class Reporter(Protocol):
    """Receives progress: ``start`` a task (its description and total steps, None if
    unknown; returns a handle), ``advance`` it by steps with an optional short text,
    ``finish`` it."""

    def start(self, description: str, total: int | None) -> Any: ...

    def advance(self, handle: Any, steps: int, info: str) -> None: ...

    def finish(self, handle: Any) -> None: ...


_CURRENT: contextvars.ContextVar[Reporter | None] = contextvars.ContextVar(
    "tsodso_progress", default=None)


def _silent(steps: int = 1, info: str = "") -> None:
    """The step function when nobody listens."""


@contextmanager
def task(description: str, total: int | None = None
         ) -> Iterator[Callable[..., None]]:
    """One piece of work with ``total`` steps (None if unknown); yields ``step(steps=1,
    info="")`` to call after each step. Nothing happens when nobody listens."""
    reporter = _CURRENT.get()
    if reporter is None:
        yield _silent
        return
    handle = reporter.start(description, total)

    def step(steps: int = 1, info: str = "") -> None:
        reporter.advance(handle, steps, info)

    try:
        yield step
    finally:
        reporter.finish(handle)


@contextmanager
def reporting(reporter: Reporter | None) -> Iterator[None]:
    """Send the progress of the work inside the block to ``reporter`` (None: nobody)."""
    token = _CURRENT.set(reporter)
    try:
        yield
    finally:
        _CURRENT.reset(token)


class RichProgress:
    """Progress bars on a stream (stderr by default) with Rich: one line per running task
    (description, bar, steps done of total, elapsed time, the last step's text); a task's
    line disappears when it finishes. ``force_terminal`` draws on a stream that is not a
    terminal (tests). Use as a context manager."""

    def __init__(self, stream: IO[str] | None = None,
                 force_terminal: bool | None = None) -> None:
        import sys

        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        console = Console(file=stream or sys.stderr, force_terminal=force_terminal)
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                  TextColumn("{task.fields[info]}"), console=console,
                                  transient=True)

    def __enter__(self) -> RichProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def start(self, description: str, total: int | None) -> Any:
        return self._progress.add_task(description, total=total, info="")

    def advance(self, handle: Any, steps: int, info: str) -> None:
        self._progress.update(handle, advance=steps, info=info)

    def finish(self, handle: Any) -> None:
        self._progress.remove_task(handle)


class RecordingReporter:
    """Keeps every report as ``(event, description, value)``: for tests and for callers
    that want progress as data (``("start", d, total)``, ``("advance", d, info)``,
    ``("finish", d, None)``)."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, Any]] = []

    def start(self, description: str, total: int | None) -> Any:
        self.events.append(("start", description, total))
        return description

    def advance(self, handle: Any, steps: int, info: str) -> None:
        self.events.append(("advance", handle, info))

    def finish(self, handle: Any) -> None:
        self.events.append(("finish", handle, None))


__all__ = ["RecordingReporter", "Reporter", "RichProgress", "reporting", "task"]
