"""DSO OPF: Baran & Wu physics, DLMPs by finite differences, decomposition, boundaries."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from feeders_dso import constrained_case33bw
from refdata import reference
from tsodso.dso import Boundary, DsoOptions, solve_dso
from tsodso.io.feeders import feeder_system

PF = reference("matpower_pf.json")
FORMS = ["soc", "lindist"]


def test_case33bw_soc_opf_reproduces_baran_wu_power_flow():
    """With nothing to dispatch, the exact SOC OPF is the power flow: 202.68 kW losses,
    Vmin 0.9131 pu at bus 18 (Baran & Wu 1989; MATPOWER runpf in Octave)."""
    r = solve_dso(feeder_system("matpower:case33bw"), "case33bw", Boundary(price=20.0))
    assert r.losses_mw.iloc[0] * 1e3 == pytest.approx(202.68, abs=0.01)
    assert r.voltage_pu.iloc[0].min() == pytest.approx(0.9131, abs=1e-4)
    assert r.voltage_pu.iloc[0].idxmin() == 18
    ref = PF["matpower:case33bw"]
    vm = np.array([ref["vm"][str(b)] for b in r.voltage_pu.columns])
    np.testing.assert_allclose(r.voltage_pu.iloc[0].to_numpy(), vm, atol=1e-6)
    assert r.soc_gap_max < 1e-6 and not r.tightened


def _objective(system, form, bus, dp=0.0, dq=0.0):
    s = copy.deepcopy(system)
    loads = s.feeder_loads
    row = loads.index[loads.bus_id == bus][0]
    loads.loc[row, "p_mw"] += dp
    loads.loc[row, "q_mvar"] += dq
    return solve_dso(s, "case33bw", Boundary(price=20.0),
                     DsoOptions(formulation=form, tighten=False)).objective


@pytest.mark.parametrize("form", FORMS)
def test_dlmp_finite_differences_with_binding_voltage_and_line_limits(form):
    system = constrained_case33bw()
    r = solve_dso(system, "case33bw", Boundary(price=20.0), DsoOptions(formulation=form))
    comp = r.dlmp_p_components
    assert np.abs(comp["voltage"].to_numpy()).max() > 1.0, "voltage limit should bind"
    assert np.abs(comp["congestion"].to_numpy()).max() > 1.0, "line limit should bind"
    eps = 1e-3
    rel = 2e-3 if form == "soc" else 1e-6
    for bus in (3, 9, 14, 18, 24, 30, 33):
        dp = (_objective(system, form, bus, dp=eps) - _objective(system, form, bus, dp=-eps))
        assert dp / (2 * eps) == pytest.approx(r.dlmp_p.loc[0, bus], rel=rel, abs=1e-3), bus
        dq = (_objective(system, form, bus, dq=eps) - _objective(system, form, bus, dq=-eps))
        assert dq / (2 * eps) == pytest.approx(r.dlmp_q.loc[0, bus], rel=rel, abs=1e-3), bus


@pytest.mark.parametrize("form", FORMS)
def test_dlmp_parts_sum_to_dlmp(form):
    r = solve_dso(constrained_case33bw(), "case33bw", Boundary(price=20.0),
                  DsoOptions(formulation=form))
    for total, parts in ((r.dlmp_p, r.dlmp_p_components), (r.dlmp_q, r.dlmp_q_components)):
        np.testing.assert_allclose(sum(parts.values()).to_numpy(), total.to_numpy(), atol=1e-4)
    np.testing.assert_allclose(r.dlmp_p_components["energy"].to_numpy(), 20.0)
    if form == "soc":  # losses make far buses dearer
        assert (r.dlmp_p_components["loss"].loc[0, 18] > r.dlmp_p_components["loss"].loc[0, 2]
                > 0)


def test_no_binding_limit_and_no_losses_gives_the_interface_price():
    r = solve_dso(feeder_system("matpower:case33bw"), "case33bw", Boundary(price=31.5),
                  DsoOptions(formulation="lindist"))
    np.testing.assert_allclose(r.dlmp_p.to_numpy(), 31.5, atol=1e-9)
    np.testing.assert_allclose(r.dlmp_q.to_numpy(), 0.0, atol=1e-9)
    for name in ("loss", "congestion", "voltage"):
        np.testing.assert_allclose(r.dlmp_p_components[name].to_numpy(), 0.0, atol=1e-9)


def test_schedule_boundary_matches_price_boundary():
    system = constrained_case33bw()
    priced = solve_dso(system, "case33bw", Boundary(price=20.0))
    p0 = priced.interface_p_mw.to_numpy()
    fixed = solve_dso(system, "case33bw", Boundary(schedule_mw=p0))
    np.testing.assert_allclose(fixed.interface_p_mw.to_numpy(), p0, atol=1e-6)
    assert fixed.objective + 20.0 * p0.sum() == pytest.approx(priced.objective, rel=1e-5)
    assert fixed.interface_marginal_price.iloc[0] == pytest.approx(20.0, abs=0.05)


def test_bid_curve_boundary_sets_the_marginal_price():
    system = feeder_system("matpower:case33bw")
    r = solve_dso(system, "case33bw", Boundary(bid_steps=[(2.0, 20.0), (10.0, 50.0)]))
    assert r.interface_p_mw.iloc[0] > 2.0
    assert r.interface_marginal_price.iloc[0] == pytest.approx(50.0, abs=1e-4)
    np.testing.assert_allclose(r.dlmp_p_components["energy"].to_numpy(), 50.0, atol=1e-4)


def test_multi_period_storage_on_a_feeder():
    system = feeder_system("matpower:case33bw", n_periods=4)
    from tsodso.model import Profiles
    from tsodso.model.schema import conform
    from tsodso.model.tables import DERS

    system.profiles = Profiles(1.0, 4, pd.DataFrame({"load": [0.5, 0.6, 1.0, 0.9]}))
    system.feeder_loads["profile"] = "load"
    system.ders = conform(pd.DataFrame([{
        "der_id": "bat", "kind": "storage", "feeder_id": "case33bw", "bus_id": 18,
        "p_max_mw": 0.5, "p_min_mw": -0.5, "energy_mwh": 1.0, "soc_init": 0.5,
        "eta_charge": 0.95, "eta_discharge": 0.95}]), DERS)[0]
    price = np.array([10.0, 15.0, 60.0, 40.0])
    r = solve_dso(system, "case33bw", Boundary(price=price))
    p = r.der_p_mw["bat"].to_numpy()
    e = r.storage_energy_mwh["bat"].to_numpy()
    assert p[:2].min() < -0.1 and p[2] > 0.1  # charge cheap, discharge dear
    closed = 0.5 + np.cumsum(np.maximum(-p, 0) * 0.95 - np.maximum(p, 0) / 0.95)
    np.testing.assert_allclose(e, closed, atol=1e-5)
    assert e.min() >= -1e-6 and e.max() <= 1.0 + 1e-6 and e[-1] >= 0.5 - 1e-6


def test_inexact_relaxation_is_detected_and_tightened(default_system):
    r = solve_dso(default_system, "case69@4#1", Boundary(price=np.full(24, 30.0)))
    assert r.tightened
    assert r.soc_gap_max < 1e-3
    loose = solve_dso(default_system, "case69@4#1", Boundary(price=np.full(24, 30.0)),
                      DsoOptions(tighten=False))
    assert loose.soc_gap_max > 10 * r.soc_gap_max


def test_interface_bid_curve_falls_with_price(default_system):
    from tsodso.dso import DsoOpf

    op = DsoOpf(default_system, "case33bw@9", boundary=Boundary(price=np.full(24, 30.0)))
    curve = op.interface_bid_curve([5.0, 30.0, 80.0, 200.0])
    # dearer power, less energy imported over the day (storage may shift it between hours)
    energy = curve.sum(axis=1).to_numpy()
    assert (np.diff(energy) <= 1e-6).all()
    assert (curve.iloc[0] - curve.iloc[-1]).max() > 0.1  # there is flexibility to offer
    # the model is reused and its prices restored
    np.testing.assert_allclose(op.price_vec, 30.0)
