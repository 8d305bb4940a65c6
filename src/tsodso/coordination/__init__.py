"""TSO-DSO coordination schemes, all run on the same :class:`System`, all returning an
:class:`Outcome`: ``tso_only``, ``centralized``, ``local``, ``shared_balancing``, ``common``,
``hierarchical`` and ``admm``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tsodso.coordination.admm import run_admm
from tsodso.coordination.common import run_common
from tsodso.coordination.messages import MessageLog
from tsodso.coordination.outcome import Outcome
from tsodso.coordination.schemes import (
    run_centralized,
    run_hierarchical,
    run_local,
    run_shared_balancing,
    run_tso_only,
)
from tsodso.errors import TsodsoError
from tsodso.model.system import System

SCHEMES: dict[str, Callable[..., Outcome]] = {
    "tso_only": run_tso_only,
    "centralized": run_centralized,
    "local": run_local,
    "shared_balancing": run_shared_balancing,
    "common": run_common,
    "hierarchical": run_hierarchical,
    "admm": run_admm,
}


def run_scheme(system: System, name: str, **options: Any) -> Outcome:
    """Run one scheme by name (options such as ``executor`` go to the scheme)."""
    if name not in SCHEMES:
        raise TsodsoError(f"unknown scheme '{name}'; schemes: {', '.join(SCHEMES)}")
    return SCHEMES[name](system, **options)


__all__ = ["SCHEMES", "MessageLog", "Outcome", "run_scheme"]
