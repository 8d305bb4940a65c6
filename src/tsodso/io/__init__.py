"""Loaders and writers: MATPOWER/PGLib cases, feeders, SimBench, YAML scenarios, folders."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from tsodso.errors import CaseNotFoundError, TsodsoError
from tsodso.model.system import System


def _spec_text(spec: Any) -> str:
    """``spec`` as text: a ``str`` or an ``os.PathLike`` (a path); anything else is refused."""
    if isinstance(spec, os.PathLike):
        spec = os.fspath(spec)
    if not isinstance(spec, str):
        raise TsodsoError(f"expected a spec or path (str or os.PathLike), got "
                          f"{type(spec).__name__}")
    if not spec.strip() or "\0" in spec:
        raise CaseNotFoundError(f"{spec!r} is not a spec: give a scenario name or file, a "
                                "system folder, simbench:CODE, matpower:NAME, pglib:NAME or a "
                                ".m file")
    return spec


def _check_periods(n_periods: Any) -> int | None:
    """``n_periods`` if it is ``None`` or an integer in 1 .. MAX_PERIODS."""
    from tsodso.io.scenario import MAX_PERIODS

    if n_periods is None:
        return None
    if isinstance(n_periods, bool) or not isinstance(n_periods, int | np.integer) or not (
            1 <= n_periods <= MAX_PERIODS):
        raise TsodsoError(f"n_periods must be an integer in 1..{MAX_PERIODS}, got "
                          f"{n_periods!r}")
    return int(n_periods)


def _within_horizon(system: System, n_periods: int | None, spec: str) -> System:
    """A scenario or folder keeps its own horizon; ``n_periods`` may only select a prefix."""
    if n_periods is not None and n_periods > system.n_periods:
        raise TsodsoError(f"n_periods={n_periods} exceeds the {system.n_periods} periods of "
                          f"'{spec}' (a scenario or system folder sets its own horizon)")
    return system


def load(spec: str | os.PathLike[str], n_periods: int | None = None) -> System:
    """Load anything tsodso understands as a validated :class:`System`.

    Parameters
    ----------
    spec : str or os.PathLike
        A built-in scenario name (``default``), a scenario ``.yaml`` file, a folder or
        manifest written by :func:`~tsodso.io.store.write_system`, ``simbench:CODE``,
        ``matpower:NAME``, ``pglib:NAME`` or a MATPOWER ``.m`` file.
    n_periods : int, optional
        1 .. 35,136. For a case, its number of (flat) periods, default 1; for SimBench,
        the number of quarter hours from 1 January, default 96. A scenario or system folder
        has its own horizon, which is not changed: ``n_periods`` may not exceed it (callers
        such as ``tso-opf --periods`` then use its first periods).

    Raises
    ------
    TsodsoError
        Any input that is not understood or not valid, with a one-line message.
    """
    spec = _spec_text(spec)
    n_periods = _check_periods(n_periods)
    if spec.startswith("simbench:"):
        from tsodso.io.simbench import load_simbench

        return load_simbench(spec.split(":", 1)[1], n_periods=n_periods or 96).check()
    path = Path(spec)
    if spec.startswith(("matpower:", "pglib:")) or path.suffix == ".m":
        from tsodso.io.matpower import case_to_grid, read_case
        from tsodso.model.profiles import Profiles

        grid = case_to_grid(read_case(spec))  # check() conforms its tables (once)
        return System(name=grid.name, grid=grid, profiles=Profiles(1.0, n_periods or 1),
                      meta={"source": spec}).check()
    return _within_horizon(_load_study(spec, path), n_periods, spec)


def _load_study(spec: str, path: Path) -> System:
    """A scenario (built-in or file) or an exported system folder."""
    from tsodso.io.scenario import load_scenario_file
    from tsodso.io.store import read_system
    from tsodso.scenarios import builtin_scenarios, scenario_path

    if path.suffix in (".yaml", ".yml") and path.name != "system.yaml":
        return load_scenario_file(path)
    if path.is_dir() or path.name == "system.yaml":
        return read_system(path)
    if spec in builtin_scenarios():
        return load_scenario_file(scenario_path(spec))
    raise CaseNotFoundError(
        f"'{spec}' is not a built-in scenario ({', '.join(builtin_scenarios())}), a scenario "
        "file, a system folder, simbench:CODE, matpower:NAME, pglib:NAME or a .m file")


def load_feeder(spec: str | os.PathLike[str],
                n_periods: int | None = None) -> tuple[System, str]:
    """A feeder and the system it belongs to, from ``matpower:NAME``, ``pglib:NAME``, a
    ``.m`` file (a stand-alone feeder) or ``SCENARIO:FEEDER_ID`` (e.g. ``default:case33bw@9``).

    ``n_periods`` is as for :func:`load`: the flat periods of a stand-alone feeder
    (default 1), at most the horizon of a scenario.
    """
    from tsodso.io.feeders import feeder_system

    spec = _spec_text(spec)
    n_periods = _check_periods(n_periods)
    if spec.startswith(("matpower:", "pglib:")) or spec.endswith(".m"):
        system = feeder_system(spec, n_periods=n_periods or 1)
        return system.check(), system.feeder_ids[0]
    if ":" not in spec:
        raise CaseNotFoundError(f"'{spec}': give a feeder as matpower:NAME, a .m file or "
                                "SCENARIO:FEEDER_ID")
    scenario, feeder_id = spec.rsplit(":", 1)
    system = load(scenario, n_periods)
    if feeder_id not in system.feeder_ids:
        raise CaseNotFoundError(f"scenario '{scenario}' has no feeder '{feeder_id}'; its "
                                f"feeders: {', '.join(system.feeder_ids)}")
    return system, feeder_id


__all__ = ["load", "load_feeder"]
