"""TSO-DSO coordination schemes, all run on the same :class:`System`, all returning an
:class:`Outcome`: ``tso_only``, ``centralized``, ``local``, ``shared_balancing``, ``common``,
``hierarchical`` and ``admm``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from tsodso.coordination.admm import run_admm
from tsodso.coordination.common import run_common
from tsodso.coordination.outcome import Outcome
from tsodso.coordination.schemes import (
    run_centralized,
    run_hierarchical,
    run_local,
    run_shared_balancing,
    run_tso_only,
)
from tsodso.errors import SolveError, TsodsoError
from tsodso.model.system import System
from tsodso.options import require_bool, require_int, require_number

SCHEMES: dict[str, Callable[..., Outcome]] = {
    "tso_only": run_tso_only,
    "centralized": run_centralized,
    "local": run_local,
    "shared_balancing": run_shared_balancing,
    "common": run_common,
    "hierarchical": run_hierarchical,
    "admm": run_admm,
}


def _positive_int(name: str, value: Any) -> None:
    require_int(name, value, low=1)


def _positive(name: str, value: Any) -> None:
    require_number(name, value, low=0.0, low_open=True)


def _damping(name: str, value: Any) -> None:
    require_number(name, value, low=0.0, high=1.0, low_open=True)


def _levels(name: str, value: Any) -> None:
    if not isinstance(value, tuple | list) or not value:
        raise TsodsoError(f"{name} must be a non-empty tuple of price multipliers, got "
                          f"{value!r}")
    for level in value:
        require_number(f"{name} entry", level, low=0.0, low_open=True)


def _keep_solvers(name: str, value: Any) -> None:
    if value is not None:
        require_bool(name, value)


def _executor(name: str, value: Any) -> None:
    needed = ("map", "partition", "map_chunks", "close")
    if value is not None and not all(callable(getattr(value, m, None)) for m in needed):
        raise TsodsoError(f"{name} must be an executor of tsodso.parallel (or None), got "
                          f"{type(value).__name__}")


def _margin(name: str, value: Any) -> None:
    require_number(name, value, low=0.0, high=1.0, low_open=True)


def _bus(name: str, value: Any) -> None:
    from tsodso.actors import MessageBus

    if value is not None and not isinstance(value, MessageBus):
        raise TsodsoError(f"{name} must be a tsodso.actors.MessageBus (or None), got "
                          f"{type(value).__name__}")


def _forecast(name: str, value: Any) -> None:
    if value is not None and not isinstance(value, System):
        raise TsodsoError(f"{name} must be a System (or None), got {type(value).__name__}")


#: The check of every scheme option's value, by option name (see the scheme functions).
OPTION_CHECKS: dict[str, Callable[[str, Any], None]] = {
    "max_iterations": _positive_int,
    "rho": _positive,
    "tol_mw": _positive,
    "tol_price": _positive,
    "damping": _damping,
    "levels": _levels,
    "tighten": require_bool,
    "storage_redispatch": require_bool,
    "der_schedules_to_dso": require_bool,
    "keep_solvers": _keep_solvers,
    "executor": _executor,
    "margin": _margin,
    "forecast": _forecast,
    "bus": _bus,
}

#: What crosses the TSO-DSO boundary in each scheme (declared once; the schemes send
#: exactly these messages through the bus, and ``tsodso schemes`` shows them).
VISIBILITY: dict[str, dict[str, Any]] = {
    "tso_only": {
        "tso_sees": "aggregators' offers (pooled per interface bus); feeders as fixed net "
                    "load at their interface bus",
        "dso_sees": "its feeders; the DER schedules and interface LMP the TSO sends",
        "messages": ["availability_schedule", "der_schedule", "interface_price",
                     "curtailment_request", "schedule_change_notice", "interface_schedule",
                     "settlement_statement"],
    },
    "centralized": {
        "tso_sees": "offers capped by the DSO-prequalified limits; feeders as fixed net load",
        "dso_sees": "its feeders; the DER schedules and interface LMP the TSO sends",
        "messages": ["prequalification_limits", "availability_schedule", "der_schedule",
                     "interface_price", "curtailment_request", "schedule_change_notice",
                     "interface_schedule", "settlement_statement"],
    },
    "local": {
        "tso_sees": "aggregated interface bid curves (offers at the interface bus) and "
                    "each feeder's base import; never feeder impedances",
        "dso_sees": "its feeders and DERs; the interface price forecast; its interface "
                    "schedule",
        "messages": ["interface_schedule", "interface_price", "offer", "settlement_statement"],
    },
    "shared_balancing": {
        "tso_sees": "each feeder's forecast import (the interface schedule)",
        "dso_sees": "its feeders and DERs; the interface schedule it must keep",
        "messages": ["interface_schedule", "settlement_statement"],
    },
    "common": {
        "tso_sees": "everything: one joint market over the transmission grid and every "
                    "feeder (the first-best benchmark)",
        "dso_sees": "everything",
        "messages": ["interface_schedule", "settlement_statement"],
    },
    "hierarchical": {
        "tso_sees": "each feeder's import (interface schedule) per iteration",
        "dso_sees": "its feeders and DERs; the interface LMP per iteration",
        "messages": ["interface_schedule", "interface_price", "settlement_statement"],
    },
    "admm": {
        "tso_sees": "each feeder's import per iteration; never feeder data",
        "dso_sees": "its feeder and DERs; the TSO's interface target per iteration",
        "messages": ["interface_schedule", "settlement_statement"],
    },
}


def scheme_options(name: str) -> list[str]:
    """The keyword options the scheme ``name`` accepts."""
    params = inspect.signature(SCHEMES[name]).parameters
    return [p for p in list(params)[1:]
            if params[p].kind in (inspect.Parameter.KEYWORD_ONLY,
                                  inspect.Parameter.POSITIONAL_OR_KEYWORD)]


def check_scheme_options(name: str, options: dict[str, Any]) -> None:
    """Refuse unknown options of scheme ``name`` (a typo is not ignored) and invalid values.

    Raises
    ------
    TsodsoError
        Naming the option and listing the scheme's options, or naming the bad value.
    """
    valid = scheme_options(name)
    for key, value in options.items():
        if key not in valid:
            raise TsodsoError(f"scheme '{name}' has no option '{key}'; its options: "
                              f"{', '.join(valid) or 'none'}")
        OPTION_CHECKS.get(key, lambda *_: None)(f"{name} option {key}", value)


def run_scheme(system: System, name: str, **options: Any) -> Outcome:
    """Run one scheme by name; ``options`` go to the scheme (``executor``, ``max_iterations``,
    ``bus`` (a :class:`tsodso.actors.MessageBus` whose log keeps every message), ...: see
    :func:`scheme_options`). Unknown names and options, invalid option values and a
    system without feeders or that fails :meth:`System.check` are refused before anything
    is solved."""
    if name not in SCHEMES:
        raise TsodsoError(f"unknown scheme '{name}'; schemes: {', '.join(SCHEMES)}")
    check_scheme_options(name, options)
    if not system.feeder_ids:
        raise TsodsoError(f"system '{system.name}' has no feeders: coordination schemes need "
                          "a system with feeders (see tsodso scenarios)")
    return SCHEMES[name](system.check(), **options)


def check_scheme_names(names: list[str] | tuple[str, ...] | None) -> list[str]:
    """The schemes to run (``None``: all seven, in :data:`SCHEMES` order), refusing an
    unknown name, a name given twice and an empty list."""
    if isinstance(names, str):
        raise TsodsoError(f"schemes must be a list of scheme names, got {names!r}")
    out = list(SCHEMES) if names is None else list(names)
    if not out:
        raise TsodsoError("schemes is empty: give at least one scheme")
    for i, name in enumerate(out):
        if name not in SCHEMES:
            raise TsodsoError(f"unknown scheme '{name}'; schemes: {', '.join(SCHEMES)}")
        if name in out[:i]:
            raise TsodsoError(f"scheme '{name}' is given twice")
    return out


def run_schemes(system: System, names: list[str], options: dict[str, dict[str, Any]],
                log: Any = None) -> dict[str, Outcome | SolveError]:
    """Run schemes ``names`` (checked: :func:`check_scheme_names`) with their ``options``
    (by scheme), ``common`` first so that the others can be compared with it; with ``log``
    (a :class:`tsodso.actors.MessageLog`) each scheme sends its messages through its own
    bus on that log. A scheme that ends without an answer (:class:`SolveError`) is
    returned as its error while the others still run. Returns outcomes in the order of
    ``names``."""
    from tsodso import progress
    from tsodso.actors import MessageBus

    outcomes: dict[str, Outcome | SolveError] = {}
    order = (["common"] if "common" in names else []) + [n for n in names if n != "common"]
    with progress.task("schemes", total=len(order)) as step:
        for name in order:
            extra = dict(options.get(name, {}))
            if log is not None:
                extra["bus"] = MessageBus(log, scheme=name)
            try:
                outcomes[name] = run_scheme(system, name, **extra)
            except SolveError as err:
                outcomes[name] = err
            step(info=f"{name} done")
    return {name: outcomes[name] for name in names}


__all__ = ["OPTION_CHECKS", "SCHEMES", "VISIBILITY", "Outcome", "check_scheme_names",
           "check_scheme_options", "run_scheme", "run_schemes", "scheme_options"]
