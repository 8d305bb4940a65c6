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
    from tsodso.io.matpower import load_grid
    from tsodso.io.scenario import load_scenario_file
    from tsodso.io.store import read_system
    from tsodso.model.profiles import Profiles
    from tsodso.scenarios import builtin_scenarios, scenario_path

    if spec.startswith("simbench:"):
        from tsodso.io.simbench import load_simbench

        return load_simbench(spec.split(":", 1)[1], n_periods=n_periods or 96).check()
    path = Path(spec)
    if spec.startswith(("matpower:", "pglib:")) or path.suffix == ".m":
        grid = load_grid(spec)
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


__all__ = ["load"]
