"""Checks of option values (option dataclasses, scheme options, command-line options).

Each raises :class:`~tsodso.errors.TsodsoError` naming the option, the value and what is
allowed; none repairs or clamps a value.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable

from tsodso.errors import TsodsoError


def require_bool(name: str, value: object) -> bool:
    """``value`` must be True or False (not 0, 1 or a string)."""
    if not isinstance(value, bool):
        raise TsodsoError(f"{name} must be True or False, got {value!r}")
    return value


def require_int(name: str, value: object, low: int | None = None,
                high: int | None = None) -> int:
    """``value`` must be an integer (not a bool or float) within ``[low, high]``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TsodsoError(f"{name} must be an integer, got {value!r}")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        raise TsodsoError(f"{name} must be {_range(low, high, False, False)}, got {value}")
    return value


def require_number(name: str, value: object, low: float | None = None,
                   high: float | None = None, low_open: bool = False,
                   high_open: bool = False) -> float:
    """``value`` must be a finite real number within the given bounds.

    ``low_open`` / ``high_open`` exclude the bound itself (``low_open=True, low=0``: > 0).
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TsodsoError(f"{name} must be a number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise TsodsoError(f"{name} must be a finite number, got {value}")
    if ((low is not None and (value < low or (low_open and value == low)))
            or (high is not None and (value > high or (high_open and value == high)))):
        raise TsodsoError(f"{name} must be {_range(low, high, low_open, high_open)}, "
                          f"got {value:g}")
    return value


def require_choice(name: str, value: object, choices: Iterable[str]) -> str:
    """``value`` must be one of ``choices``."""
    choices = list(choices)
    if not isinstance(value, str) or value not in choices:
        raise TsodsoError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _range(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return " and ".join(parts) or "a number"


__all__ = ["require_bool", "require_choice", "require_int", "require_number"]
