"""The SOC relaxation's objective is a lower bound of pandapower's AC OPF (runopp) on the same
feeder with the same costs, and within 1 % of it where the relaxation is exact."""

from __future__ import annotations

import math

import numpy as np
import pytest

from feeders_dso import constrained_case33bw
from tsodso.dso import Boundary, DsoOptions, solve_dso

pp = pytest.importorskip("pandapower")

PRICE = 20.0


def _pandapower_net(system):
    """The same feeder in pandapower: lines in ohm, DGs as controllable sgens."""
    feeder = system.feeder("case33bw")
    info = feeder.info
    kv = float(info.nominal_kv)
    net = pp.create_empty_network(sn_mva=1.0)
    vmin, vmax = float(info.v_min_pu), float(info.v_max_pu)
    index = {}
    for bus in feeder.buses.bus_id:
        index[bus] = pp.create_bus(net, vn_kv=kv, min_vm_pu=vmin, max_vm_pu=vmax, name=bus)
    root = index[int(info.root_bus)]
    net.bus.loc[root, ["min_vm_pu", "max_vm_pu"]] = [0.0, 2.0]
    for line in feeder.lines[feeder.lines.in_service].itertuples():
        max_i = 1e3 if not math.isfinite(line.rating_mva) else line.rating_mva / (
            math.sqrt(3) * kv)
        pp.create_line_from_parameters(net, index[line.from_bus], index[line.to_bus], 1.0,
                                       line.r_ohm, line.x_ohm, 0.0, max_i,
                                       max_loading_percent=100.0)
    for load in feeder.loads.itertuples():
        pp.create_load(net, index[load.bus_id], p_mw=load.p_mw, q_mvar=load.q_mvar)
    grid = pp.create_ext_grid(net, root, vm_pu=float(info.v_root_pu), min_p_mw=-100,
                              max_p_mw=100, min_q_mvar=-100, max_q_mvar=100)
    pp.create_poly_cost(net, grid, "ext_grid", cp1_eur_per_mw=PRICE)
    for der in system.ders.itertuples():
        gen = pp.create_sgen(net, index[der.bus_id], p_mw=0.0, q_mvar=0.0, controllable=True,
                             min_p_mw=0.0, max_p_mw=der.p_max_mw, min_q_mvar=0.0,
                             max_q_mvar=0.0)
        pp.create_poly_cost(net, gen, "sgen", cp1_eur_per_mw=der.cost_per_mwh)
    return net


@pytest.mark.parametrize("v_min", [0.95, 0.965, 0.975])
def test_soc_objective_bounds_and_matches_ac_opf(v_min):
    system = constrained_case33bw(v_min=v_min, rating_2_3=math.inf, reactive=False)
    soc = solve_dso(system, "case33bw", Boundary(price=PRICE), DsoOptions(tighten=False))
    net = _pandapower_net(system)
    pp.runopp(net, delta=1e-10)
    ac = float(net.res_cost)
    assert soc.soc_gap_max < 1e-5  # exact here
    assert soc.objective <= ac + 1e-6 * abs(ac)
    assert soc.objective == pytest.approx(ac, rel=0.01)
    # the same dispatch: DG outputs and the minimum voltage
    dg = net.res_sgen.p_mw.to_numpy()
    np.testing.assert_allclose(soc.der_p_mw.iloc[0].to_numpy(), dg, atol=2e-3)
    assert soc.voltage_pu.iloc[0].min() == pytest.approx(net.res_bus.vm_pu.min(), abs=1e-4)
