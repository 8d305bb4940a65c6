"""Transmission AC power flow (pandapower) against MATPOWER runpf computed in Octave."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tsodso.errors import ValidationError
from tsodso.io.matpower import load_grid
from tsodso.powerflow import NotConvergedError
from tsodso.powerflow.transmission import transmission_power_flow

REF = json.loads((Path(__file__).parent / "data" / "matpower_ac_pf.json").read_text())
CASES = ("case9", "case14", "case30", "case57", "case118", "case300")


@pytest.fixture(scope="module")
def grids():
    return {case: load_grid(f"matpower:{case}") for case in CASES}


@pytest.mark.parametrize("case", CASES)
def test_matches_matpower_runpf(grids, case):
    ref = REF[f"matpower:{case}"]
    result = transmission_power_flow(grids[case])
    assert result.converged
    assert result.vm_pu.index.tolist() == ref["bus"]
    np.testing.assert_allclose(result.vm_pu, ref["vm"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(result.va_deg, ref["va"], rtol=0, atol=1e-6)
    for name, key in (("p_from_mw", "pf"), ("q_from_mvar", "qf"), ("p_to_mw", "pt"),
                      ("q_to_mvar", "qt")):
        np.testing.assert_allclose(getattr(result, name), ref[key], rtol=0, atol=1e-5)
    np.testing.assert_allclose(result.gen_p_mw, ref["pg"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(result.gen_q_mvar, ref["qg"], rtol=0, atol=1e-5)
    assert result.p_loss_mw == pytest.approx(ref["loss_p_mw"], abs=1e-6)
    assert result.q_loss_mvar == pytest.approx(ref["loss_q_mvar"], abs=1e-6)


def test_known_losses():
    """MATPOWER's printed runpf summaries: case9 4.641 MW, case14 13.393 MW losses."""
    assert transmission_power_flow(load_grid("matpower:case9")).p_loss_mw == pytest.approx(
        4.641, abs=5e-4)
    assert transmission_power_flow(load_grid("matpower:case14")).p_loss_mw == pytest.approx(
        13.393, abs=5e-4)


def test_dispatch_and_extra_demand_balance(grids):
    grid = grids["case14"]
    base = transmission_power_flow(grid)
    pg = pd.Series({2: 60.0, 3: 10.0})
    extra = pd.Series({9: 12.0, 14: 3.0})
    result = transmission_power_flow(grid, pg_mw=pg, bus_p_mw=extra,
                                     bus_q_mvar=pd.Series({9: 2.0}))
    assert result.gen_p_mw[2] == pytest.approx(60.0) and result.gen_p_mw[3] == pytest.approx(10.0)
    demand = grid.loads.p_mw.sum() + extra.sum()
    shunt = (grid.buses.gs_mw.to_numpy() * result.vm_pu.to_numpy() ** 2).sum()
    assert result.gen_p_mw.sum() == pytest.approx(demand + shunt + result.p_loss_mw, abs=1e-6)
    # the slack generator (gen 1) picks up the change: +15 MW demand, +30 MW from gens 2, 3
    delta = 15.0 - (60.0 - 40.0) - 10.0 + result.p_loss_mw - base.p_loss_mw
    assert result.gen_p_mw[1] - base.gen_p_mw[1] == pytest.approx(delta, abs=1e-6)
    assert grid.generators.set_index("gen_id").pg_mw[[2, 3]].tolist() == [40.0, 0.0]


def test_violations(grids):
    result = transmission_power_flow(grids["case30"])
    table = result.violations()
    over = result.loading_pct[result.loading_pct > 100]
    assert table[table.element == "branch"].element_id.tolist() == over.index.tolist()
    buses = grids["case30"].buses.set_index("bus_id")
    low = result.vm_pu[(result.vm_pu < buses.vmin_pu) | (result.vm_pu > buses.vmax_pu)]
    assert table[table.element == "bus"].element_id.tolist() == low.index.tolist()
    s = np.hypot(result.p_from_mw, result.q_from_mvar)
    rate = grids["case30"].branches.set_index("branch_id").rate_a_mva
    assert (result.loading_pct >= 100 * s / rate - 1e-9).all()


def test_bad_input_and_divergence(grids):
    grid = grids["case9"]
    with pytest.raises(ValidationError, match=r"pg_mw\.gen_id\[7\]: unknown generator"):
        transmission_power_flow(grid, pg_mw=pd.Series({7: 1.0}))
    with pytest.raises(ValidationError, match=r"bus_p_mw\.bus_id\[99\]: unknown bus"):
        transmission_power_flow(grid, bus_p_mw=pd.Series({99: 1.0}))
    with pytest.raises(ValidationError, match=r"bus_q_mvar\.bus_id\[5\]: value is NaN"):
        transmission_power_flow(grid, bus_q_mvar=pd.Series({5: np.nan}))
    result = transmission_power_flow(grid, bus_p_mw=pd.Series({5: 5000.0}), max_iteration=10)
    assert not result.converged and np.isnan(result.vm_pu).all()
    with pytest.raises(NotConvergedError):
        result.check()
