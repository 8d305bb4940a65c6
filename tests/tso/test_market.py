"""TSO market clearing against published values, MATPOWER, finite differences and physics."""

from __future__ import annotations

import copy
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from refdata import reference
from tsodso.io import load
from tsodso.io.feeders import feeder_from_case
from tsodso.model import Profiles, System
from tsodso.model.schema import conform
from tsodso.model.tables import DERS
from tsodso.rules import get_rules
from tsodso.tso import (
    DEFAULT_PRODUCTS,
    TsoMarket,
    TsoOptions,
    build_dc_network,
    clear_tso_market,
)

DCOPF = {k: v for k, v in reference("matpower_dcopf.json").items() if not k.startswith("_")}


def test_pjm_5_bus_published_lmps():
    """Li & Bo (2010): LMPs 16.98, 26.38, 30.00, 39.94, 10.00 $/MWh; 17,479.90 $/h."""
    r = clear_tso_market(load("matpower:case5"))
    assert r.objective == pytest.approx(17479.90, abs=0.005)
    np.testing.assert_allclose(r.lmp.loc[0, [1, 2, 3, 4, 5]].to_numpy(),
                               [16.98, 26.38, 30.00, 39.94, 10.00], atol=0.005)
    assert r.binding_branches == [6]  # line 4-5 at 240 MW


@pytest.mark.parametrize("spec", sorted(DCOPF))
def test_matches_matpower_rundcopf(spec):
    """Objective and LMPs equal MATPOWER's rundcopf (Octave) on the same file."""
    ref = DCOPF[spec]
    assert ref["success"]
    r = clear_tso_market(load(spec))
    assert r.objective == pytest.approx(ref["f"], rel=1e-7)
    lam = np.array([ref["lam_p"][str(b)] for b in r.lmp.columns])
    scale = max(1.0, np.abs(lam).max())
    np.testing.assert_allclose(r.lmp.iloc[0].to_numpy(), lam, atol=1e-5 * scale)


@pytest.mark.parametrize("spec", ["pglib:pglib_opf_case30_ieee", "pglib:pglib_opf_case118_ieee"])
def test_lmp_equals_finite_difference(spec):
    """Adding epsilon MW of load at a bus changes the objective by LMP x epsilon."""
    system = load(spec)
    base = clear_tso_market(system)
    rng = np.random.default_rng(7)
    loads = system.grid.loads
    for row in rng.choice(len(loads), size=5, replace=False):
        eps = 1e-3
        bumped = copy.deepcopy(system)
        bumped.grid.loads.loc[row, "p_mw"] += eps
        bus = int(loads.bus_id.iloc[row])
        delta = (clear_tso_market(bumped).objective - base.objective) / eps
        assert delta == pytest.approx(base.lmp.loc[0, bus], rel=1e-5, abs=1e-5), bus


def test_lmp_components_sum_and_congestion_is_ptdf_times_shadow_prices():
    system = load("pglib:pglib_opf_case118_ieee")
    r = clear_tso_market(system)
    total = r.lmp_energy + r.lmp_congestion + r.lmp_loss
    np.testing.assert_allclose(total.to_numpy(), r.lmp.to_numpy(), atol=1e-9)
    ptdf = build_dc_network(system.grid).ptdf()
    mu = r.branch_shadow_price.to_numpy()
    np.testing.assert_allclose(r.lmp_congestion.to_numpy(), mu @ ptdf, atol=1e-6)
    assert r.binding_branches and np.abs(r.lmp_congestion.to_numpy()).max() > 1.0


def test_uncongested_case_has_one_price():
    system = load("pglib:pglib_opf_case30_ieee")
    system.grid.branches["rate_a_mva"] *= 100
    r = clear_tso_market(system)
    assert r.binding_branches == []
    assert np.ptp(r.lmp.to_numpy()) < 1e-7
    np.testing.assert_allclose(r.lmp_congestion.to_numpy(), 0.0, atol=1e-7)


def test_shortage_is_shed_at_value_of_lost_load():
    system = load("matpower:case5")
    system.grid.loads["p_mw"] *= 1.8  # 1800 MW against 1530 MW of capacity
    r = clear_tso_market(system)
    shed = r.shed.to_numpy().sum()
    assert shed >= 1800 - 1530 - 1e-6  # at least the capacity gap; line limits add to it
    assert r.dispatch.to_numpy().sum() + shed - r.spill.to_numpy().sum() == pytest.approx(1800)
    assert r.lmp.to_numpy().max() == pytest.approx(system.rules.value_of_lost_load, rel=1e-9)


def test_storage_arbitrage_over_24_periods(default_system):
    market = TsoMarket(default_system)
    r = market.solve()
    storage = market.view.storage.table
    assert len(storage) > 0 and len(r.lmp) == 24
    dt = default_system.profiles.period_hours
    for i, row in storage.iterrows():
        net = r.offers[row.offer_id].to_numpy()  # discharge - charge, MW
        energy = r.storage_energy[row.offer_id].to_numpy()
        assert (energy >= row.e_min_mwh - 1e-6).all() and (energy <= row.e_max_mwh + 1e-6).all()
        charge, discharge = np.maximum(-net, 0), np.maximum(net, 0)
        closed = row.e_init_mwh + np.cumsum(charge * row.eta_charge - discharge
                                            / row.eta_discharge) * dt
        np.testing.assert_allclose(energy, closed, atol=1e-5)
        price = r.lmp[row.bus_id].to_numpy()
        assert discharge.sum() > 0.1 and charge.sum() > 0.1, i
        bought = (charge * price).sum() / charge.sum()
        sold = (discharge * price).sum() / discharge.sum()
        assert sold > bought, f"{row.offer_id} sells at {sold:.2f}, buys at {bought:.2f}"


def test_ramp_limits_hold():
    system = load("matpower:case118", n_periods=3)
    system.profiles = Profiles(1.0, 3, pd.DataFrame({"step": [0.6, 1.0, 0.6]}))
    system.grid.loads["profile"] = "step"
    system.grid.generators["ramp_up_mw_per_h"] = 40.0
    system.grid.generators["ramp_down_mw_per_h"] = 40.0
    r = clear_tso_market(system)
    steps = np.abs(np.diff(r.dispatch.to_numpy(), axis=0))
    assert steps.max() <= 40.0 + 1e-6
    unlimited = clear_tso_market(system, TsoOptions(ramping=False))
    assert np.abs(np.diff(unlimited.dispatch.to_numpy(), axis=0)).max() > 40.0
    assert r.objective >= unlimited.objective


def test_reserve_price_is_the_marginal_cost_of_requirement():
    """Spinning reserve binds (ramp-limited units, 20 % requirement): its price equals the
    objective's derivative with respect to the requirement."""
    system = load("matpower:case30")
    system.grid.loads["p_mw"] *= 1.4
    system.grid.generators["ramp_up_mw_per_h"] = 60.0  # 10 MW of spin per unit
    products = tuple(replace(p, share_of_load=0.2) if p.name == "spin" else p
                     for p in DEFAULT_PRODUCTS)
    options = TsoOptions(reserves=True, products=products)
    r = clear_tso_market(system, options)
    price = r.reserve_prices.loc[0, "spin"]
    assert price > 1.0 and r.reserve_shortfall.to_numpy().sum() < 1e-6
    eps = 1e-4
    bumped = replace(options, products=tuple(
        replace(p, share_of_load=p.share_of_load + eps) if p.name == "spin" else p
        for p in products))
    total_load = system.grid.loads.p_mw.sum()
    delta = (clear_tso_market(system, bumped).objective - r.objective) / (eps * total_load)
    assert delta == pytest.approx(price, rel=1e-3)
    awards = r.reserve_awards["spin"].iloc[0]
    assert awards.sum() >= 0.2 * total_load - 1e-6
    up = sum(r.reserve_awards[p].iloc[0][r.dispatch.columns] for p in ("reg_up", "spin",
                                                                        "nonspin"))
    pmax = system.grid.generators.set_index("gen_id").pmax_mw
    assert (r.dispatch.iloc[0] + up <= pmax + 1e-6).all()


def _small_system(ders: list[dict]) -> System:
    """case5 transmission with a Baran-Wu feeder at bus 2 and the given DERs."""
    system = load("matpower:case5")
    feeder, _ = feeder_from_case("matpower:case33bw", "F1", interface_bus=2)
    system.add_feeder(feeder)
    system.grid.loads.loc[system.grid.loads.bus_id == 2, "p_mw"] -= feeder.loads.p_mw.sum()
    system.ders = conform(pd.DataFrame(ders), DERS)[0]
    system.aggregators = pd.DataFrame({"aggregator_id": ["A"], "markets": ["tso,dso"]})
    return system.check()


def test_participation_rules_small_der():
    """A 50 kW DER is excluded under 'eu' (5 MW bids, pooling allowed), takes part under
    'pjm' through its aggregator."""
    ders = [
        {"der_id": "tiny", "kind": "dg", "feeder_id": "F1", "bus_id": 5, "p_max_mw": 0.05,
         "cost_per_mwh": 5.0, "aggregator_id": "A"},
        {"der_id": "peer", "kind": "dg", "feeder_id": "F1", "bus_id": 9, "p_max_mw": 0.08,
         "cost_per_mwh": 5.0, "aggregator_id": "A"},
    ]
    system = _small_system(ders)
    eu = clear_tso_market(system, TsoOptions(rules=get_rules("eu")))
    assert set(eu.excluded.der_id) == {"tiny", "peer"}
    reason = eu.excluded.set_index("der_id").reason["tiny"]
    assert "aggregated offer below the 5 MW minimum" in reason and "eu" in reason
    assert eu.excluded.set_index("der_id").value_lost["tiny"] > 0
    pjm = clear_tso_market(system, TsoOptions(rules=get_rules("pjm")))
    assert pjm.excluded.empty
    assert pjm.der_dispatch.loc[0, "tiny"] == pytest.approx(0.05)  # 5 $/MWh < LMP at bus 2
    assert eu.objective - pjm.objective == pytest.approx(
        0.13 * (eu.lmp.loc[0, 2] - 5.0), rel=1e-6)
    alone = _small_system(ders[:1])  # 50 kW alone cannot reach PJM's 100 kW
    r = clear_tso_market(alone, TsoOptions(rules=get_rules("pjm")))
    assert list(r.excluded.der_id) == ["tiny"] and "aggregated offer below" in r.excluded.reason[0]


def test_interface_load_update_equals_fresh_build(default_system):
    market = TsoMarket(default_system)
    first = market.solve()
    new_load = market.view.fixed_load * 1.1
    market.set_interface_load(new_load)
    resolved = market.solve()
    fresh_market = TsoMarket(default_system)
    fresh_market.set_interface_load(new_load)
    fresh = fresh_market.solve()
    assert resolved.objective == pytest.approx(fresh.objective, rel=1e-8)
    assert resolved.objective > first.objective


def test_der_settlement_basis_follows_the_rules(default_system):
    """ERCOT pays DERs under 10 MW the load-zone price; PJM pays the interface LMP."""
    pjm = clear_tso_market(default_system, TsoOptions(rules=get_rules("pjm")))
    ercot = clear_tso_market(default_system, TsoOptions(rules=get_rules("ercot")))
    assert set(pjm.der_settlement.basis) == {"nodal"}
    assert set(ercot.der_settlement.basis) == {"zonal"}
    row = pjm.der_settlement.iloc[0]
    der = pjm.der_dispatch[row.der_id].to_numpy()
    lmp = pjm.lmp[row.bus_id].to_numpy()
    assert row.revenue == pytest.approx((der * lmp).sum(), rel=1e-9, abs=1e-9)


def test_independent_periods_are_split_exactly():
    """Without ramps, storage or budgets the periods are independent LPs: the market solves
    them one by one (warm-started) and gets the whole LP's objective, LMPs and flows."""
    system = load("pglib:pglib_opf_case300_ieee", n_periods=6)
    system.profiles.series["shape"] = [0.8, 0.9, 1.0, 1.05, 0.95, 0.85]
    system.grid.loads["profile"] = "shape"
    market = TsoMarket(system, TsoOptions(ramping=False))
    split = market.solve()
    assert len(market.model._backends["highs-split"].parts) >= 6
    whole = TsoMarket(system, TsoOptions(ramping=False))
    ref = whole._extract(whole.model.solve("highs"))  # one LP of all periods
    assert split.objective == pytest.approx(ref.objective, rel=1e-9)
    np.testing.assert_allclose(split.lmp, ref.lmp, atol=1e-6)
    np.testing.assert_allclose(split.flows, ref.flows, atol=1e-5)
    assert split.lmp.iloc[0].mean() < split.lmp.iloc[3].mean()  # the load shape is priced
