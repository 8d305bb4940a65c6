"""Shared machinery of the fuzzing suite: the property "a one-line error or a valid result",
a wall-clock guard against hangs, and the count of cases tried (printed at the end of the
test session by ``conftest.pytest_terminal_summary``)."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from tsodso.errors import TsodsoError

#: Cases tried per entry point in this session.
TRIED: Counter[str] = Counter()
#: Longest any single fuzz case may run, s (a hang fails the test instead of the CI job).
CASE_SECONDS = 30

T = TypeVar("T")


class Hang(AssertionError):
    """A fuzz case that ran longer than :data:`CASE_SECONDS`."""


@contextmanager
def no_hang(seconds: float = CASE_SECONDS) -> Iterator[None]:
    """Fail with :class:`Hang` if the block runs longer than ``seconds`` (SIGALRM)."""

    def fire(signum: int, frame: Any) -> None:
        raise Hang(f"fuzz case still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def error_or_result(entry: str, func: Callable[[], T]) -> T | None:
    """Run one fuzz case of ``entry``: return its result, or ``None`` when it raised a
    :class:`TsodsoError` with a one-line, non-empty message. Any other exception (a
    traceback for the user) or a hang propagates and fails the test."""
    TRIED[entry] += 1
    with no_hang():
        try:
            return func()
        except TsodsoError as err:
            message = str(err)
            assert message.strip(), f"{entry}: an error that says nothing"
            assert "\n" not in message, f"{entry}: a multi-line error: {message!r}"
            return None


def assert_cli_clean(entry: str, result: Any) -> None:
    """A CLI run ends with exit 0, or 1/2 with one ``error:`` line (usage errors: 2),
    never with an uncaught exception."""
    TRIED[entry] += 1
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{entry}: traceback {type(result.exception).__name__}: "
                             f"{result.exception}") from result.exception
    assert result.exit_code in (0, 1, 2), (entry, result.exit_code, result.output)
    if result.exit_code == 1:
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("error:")]
        assert len(errors) == 1, f"{entry}: expected one 'error:' line, got {result.output!r}"


__all__ = ["CASE_SECONDS", "Hang", "TRIED", "assert_cli_clean", "error_or_result", "no_hang"]
