"""tsodso: TSO-DSO coordination with distributed energy resources.

From Python::

    import tsodso
    system = tsodso.load("default")                      # a built-in scenario, file or case
    outcome = tsodso.run_scheme(system, "hierarchical", max_iterations=5)
    table = tsodso.compare(system, ["common", "admm"], options={"admm": {"rho": 10}})
    run = tsodso.open_run("out/")                        # a folder of tsodso run --out

``load``, ``run_scheme``, ``SCHEMES`` and ``open_run`` are imported on first use, so that
``import tsodso`` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tsodso.errors import Issue, TsodsoError, ValidationError
from tsodso.model import Feeder, Profiles, System, TransmissionGrid
from tsodso.rules import MarketRules, get_rules

if TYPE_CHECKING:
    import pandas as pd

    from tsodso.coordination import SCHEMES, run_scheme
    from tsodso.coordination.run_folder import open_run
    from tsodso.io import load

__version__ = "0.1.0"

#: Attributes imported on first use: name -> module.
_LAZY = {
    "load": "tsodso.io",
    "run_scheme": "tsodso.coordination",
    "SCHEMES": "tsodso.coordination",
    "open_run": "tsodso.coordination.run_folder",
}

#: The columns :func:`compare` puts first (the others of ``Outcome.to_frame`` follow).
COMPARE_COLUMNS = ("status", "total_cost", "gap_to_common_pct", "violations_voltage",
                   "violations_thermal", "violations_not_converged", "shed_mwh",
                   "unmet_ev_mwh", "curtailed_mwh", "iterations", "messages", "wall_s")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tsodso' has no attribute {name!r}")


def compare(system: System, schemes: list[str] | tuple[str, ...] | None = None,
            options: dict[str, dict[str, Any]] | None = None) -> pd.DataFrame:
    """Run coordination schemes on ``system`` and compare them, one row per scheme.

    Parameters
    ----------
    system : System
        With feeders (e.g. ``tsodso.load("default")``).
    schemes : list of str, optional
        Scheme names (see ``SCHEMES``), in the order of the rows; default all seven.
        ``common`` runs first when asked for, so that every row has its gap to it.
    options : dict, optional
        Options by scheme, e.g. ``{"admm": {"rho": 10}, "hierarchical":
        {"max_iterations": 5}}`` (see :func:`tsodso.coordination.scheme_options`).

    Returns
    -------
    pandas.DataFrame
        Index ``scheme``; columns ``status``, ``total_cost`` ($), ``gap_to_common_pct``
        (% above ``common``'s cost, NaN without ``common``), AC violation counts, ``shed_mwh``,
        ``unmet_ev_mwh``, ``curtailed_mwh``, ``iterations``, ``messages``, ``wall_s`` (s),
        then the other columns of ``Outcome.to_frame`` (money flows, energies, shortfalls).
        A scheme that ended without an answer (:class:`~tsodso.errors.SolveError`, e.g.
        ``shared_balancing``'s infeasible fixed schedule) has its status and NaN elsewhere.

    Raises
    ------
    TsodsoError
        Before anything runs: an unknown scheme or one given twice, options for a scheme
        not run, unknown options or invalid values, a system without feeders.
    """
    from tsodso.coordination import check_scheme_names, check_scheme_options, run_schemes
    from tsodso.coordination.run_folder import comparison_frame

    names = check_scheme_names(schemes)
    options = {} if options is None else options
    if not isinstance(options, dict):
        raise TsodsoError("options must be a dict of options by scheme, e.g. "
                          f"{{'admm': {{'rho': 10}}}}, got {type(options).__name__}")
    for name, opts in options.items():
        if name not in names:
            raise TsodsoError(f"options for scheme {name!r}, which is not run; schemes run: "
                              f"{', '.join(names)}")
        if not isinstance(opts, dict):
            raise TsodsoError(f"options[{name!r}] must be a dict of option values, got "
                              f"{type(opts).__name__}")
        check_scheme_options(name, opts)
    if not isinstance(system, System):
        raise TsodsoError(f"system must be a System, got {type(system).__name__}")
    if not system.feeder_ids:
        raise TsodsoError(f"system '{system.name}' has no feeders: coordination schemes need "
                          "a system with feeders (see tsodso scenarios)")
    outcomes = run_schemes(system, names, options)
    frame = comparison_frame(outcomes)
    first = [c for c in COMPARE_COLUMNS if c in frame.columns]
    return frame[first + [c for c in frame.columns if c not in first]]


__all__ = [
    "SCHEMES",
    "Feeder",
    "Issue",
    "MarketRules",
    "Profiles",
    "System",
    "TransmissionGrid",
    "TsodsoError",
    "ValidationError",
    "__version__",
    "compare",
    "get_rules",
    "load",
    "open_run",
    "run_scheme",
]
