"""Regressions from a user's sweep of odd but plausible inputs: each is refused with one
line naming what is wrong, or solved as given (never a hang or a silently wrong number)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tsodso.dso.hosting_capacity import hosting_capacity
from tsodso.dso.opf import Boundary, solve_dso
from tsodso.errors import TsodsoError, ValidationError
from tsodso.io.feeders import feeder_system
from tsodso.shortfalls import AC_FLOW_TOL_PCT


@pytest.fixture(scope="module")
def case33bw():
    return feeder_system("matpower:case33bw")


@pytest.mark.parametrize("resolution", [-1.0, 0.0, float("nan"), float("inf"), 1.0])
def test_hosting_capacity_refuses_a_resolution_that_hangs_or_lies(case33bw, resolution):
    # -1 looped forever; nan returned 0 MW "overvoltage" at a bus that hosts 17 MW
    with pytest.raises(TsodsoError, match="hosting_capacity.resolution"):
        hosting_capacity(case33bw, "case33bw", "pv", buses=[5], resolution=resolution)


def test_hosting_capacity_refuses_the_root_bus(case33bw):
    # the root was dropped silently: an empty table without columns
    with pytest.raises(TsodsoError, match=r"buses\[case33bw\]: bus 1 is the feeder's root"):
        hosting_capacity(case33bw, "case33bw", "pv", buses=[1])


def test_hosting_capacity_refuses_an_unknown_bus(case33bw):
    with pytest.raises(TsodsoError, match=r"buses\[case33bw\]: 999 is not a bus"):
        hosting_capacity(case33bw, "case33bw", "pv", buses=[999])


def test_hosting_capacity_of_no_bus_is_an_empty_table_not_every_bus(case33bw):
    # [] meant "all 32 buses" before
    table = hosting_capacity(case33bw, "case33bw", "pv", buses=[])
    assert table.empty
    assert list(table.columns) == ["bus_id", "hosting_mw", "opf_mw", "limit", "period"]


def test_idle_feeder_is_not_inexact_from_solver_noise(case33bw):
    # at 1e6 $/MWh the OPF sheds every load: flows of 1e-8 MVA on unrated lines were
    # measured against a 1e-6 MVA scale, a 1.6 % "AC flow error" and status "inexact"
    result = solve_dso(case33bw, "case33bw", Boundary(price=np.array([1e6])))
    assert result.shortfalls.shed_mwh == pytest.approx(3.715, rel=1e-6)
    assert result.shortfalls.ac_flow_error_pct < AC_FLOW_TOL_PCT / 100
    assert result.status == "shed"


def _scenario(tmp_path, share: str) -> str:
    path = tmp_path / "s.yaml"
    path.write_text(
        "name: t\nhorizon: {periods: 2, period_hours: 1.0}\n"
        "transmission: {case: matpower:case14}\n"
        "feeders:\n  - {case: matpower:case33bw, at: [9]}\n"
        f"ders:\n  storage: {{share: {share}, bus_fraction: 0.1, hours: 2.0}}\n")
    return str(path)


@pytest.mark.parametrize(("text", "mw"), [("1e-1", 0.1 * 3.715), ("2E-1", 0.2 * 3.715)])
def test_scenario_reads_exponent_numbers_as_yaml_1_2_does(tmp_path, text, mw):
    # PyYAML reads 1e-1 as the string "1e-1": "expected float, got str '1e-1'"
    from tsodso.io import load

    system = load(_scenario(tmp_path, text))
    assert system.ders.p_max_mw.sum() == pytest.approx(mw, rel=1e-3)


def test_scenario_exponent_overflow_is_refused(tmp_path):
    from tsodso.io import load

    with pytest.raises(TsodsoError, match=r"scenario\.ders\.storage\.share"):
        load(_scenario(tmp_path, "1e400"))


def _edited(system, period_hours: float):
    out = copy.deepcopy(system)
    out.profiles.period_hours = period_hours
    return out


@pytest.mark.parametrize("period_hours", [0.0, -1.0, float("nan")])
def test_api_entry_points_validate_an_edited_system(case33bw, period_hours):
    # period_hours 0 or -1 cleared "optimal" with NaN prices; NaN raised a bare ValueError
    from tsodso.coordination import run_scheme
    from tsodso.io import load
    from tsodso.tso import clear_tso_market

    match = r"profiles\.period_hours"
    with pytest.raises(ValidationError, match=match):
        clear_tso_market(_edited(load("matpower:case5"), period_hours))
    with pytest.raises(ValidationError, match=match):
        solve_dso(_edited(case33bw, period_hours), "case33bw")
    with pytest.raises(ValidationError, match=match):
        hosting_capacity(_edited(case33bw, period_hours), "case33bw", buses=[5])
    with pytest.raises(ValidationError, match=match):
        run_scheme(_edited(load("low-penetration", 2), period_hours), "common")


def test_unknown_feeder_in_the_python_api_is_a_tsodso_error(default_system):
    from tsodso.dso import solve_dso
    from tsodso.errors import TsodsoError

    with pytest.raises(TsodsoError, match=r"feeders\[nope\]: no such feeder"):
        solve_dso(default_system, "nope")
    with pytest.raises(KeyError):  # still a lookup miss for code that catches KeyError
        default_system.feeder("nope")
