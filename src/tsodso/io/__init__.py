"""Loaders and writers: MATPOWER/PGLib cases, feeders, SimBench, YAML scenarios, folders."""

from __future__ import annotations

from pathlib import Path

from tsodso.errors import CaseNotFoundError
from tsodso.model.system import System


def load(spec: str, n_periods: int | None = None) -> System:
    """Load anything tsodso understands as a validated :class:`System`.

    ``spec`` is a built-in scenario name (``default``), a scenario ``.yaml`` file, a folder or
    manifest written by :func:`~tsodso.io.store.write_system`, ``simbench:CODE``,
    ``matpower:NAME``, ``pglib:NAME`` or a MATPOWER ``.m`` file (one period unless
    ``n_periods`` says otherwise).
    """
    from tsodso.io.matpower import case_to_grid, read_case
    from tsodso.io.scenario import load_scenario_file
    from tsodso.io.store import read_system
    from tsodso.model.profiles import Profiles
    from tsodso.scenarios import builtin_scenarios, scenario_path

    if spec.startswith("simbench:"):
        from tsodso.io.simbench import load_simbench

        return load_simbench(spec.split(":", 1)[1], n_periods=n_periods or 96).check()
    path = Path(spec)
    if spec.startswith(("matpower:", "pglib:")) or path.suffix == ".m":
        grid = case_to_grid(read_case(spec))  # check() conforms its tables (once)
        return System(name=grid.name, grid=grid, profiles=Profiles(1.0, n_periods or 1),
                      meta={"source": spec}).check()
    if path.suffix in (".yaml", ".yml") and path.name != "system.yaml":
        return load_scenario_file(path)
    if path.is_dir() or path.name == "system.yaml":
        return read_system(path)
    if spec in builtin_scenarios():
        return load_scenario_file(scenario_path(spec))
    raise CaseNotFoundError(
        f"'{spec}' is not a built-in scenario ({', '.join(builtin_scenarios())}), a scenario "
        "file, a system folder, simbench:CODE, matpower:NAME, pglib:NAME or a .m file")


def load_feeder(spec: str, n_periods: int | None = None) -> tuple[System, str]:
    """A feeder and the system it belongs to, from ``matpower:NAME``, ``pglib:NAME``, a
    ``.m`` file (a stand-alone feeder) or ``SCENARIO:FEEDER_ID`` (e.g. ``default:case33bw@9``)."""
    from tsodso.io.feeders import feeder_system

    if spec.startswith(("matpower:", "pglib:")) or spec.endswith(".m"):
        system = feeder_system(spec, n_periods=n_periods or 1)
        return system.check(), system.feeder_ids[0]
    if ":" not in spec:
        raise CaseNotFoundError(f"'{spec}': give a feeder as matpower:NAME, a .m file or "
                                "SCENARIO:FEEDER_ID")
    scenario, feeder_id = spec.rsplit(":", 1)
    system = load(scenario)
    if feeder_id not in system.feeder_ids:
        raise CaseNotFoundError(f"scenario '{scenario}' has no feeder '{feeder_id}'; its "
                                f"feeders: {', '.join(system.feeder_ids)}")
    return system, feeder_id


__all__ = ["load", "load_feeder"]
