"""DER block builders (tsodso.opt.der_blocks) against small cases solved by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tsodso.opt import Model
from tsodso.opt.der_blocks import (
    EvNames,
    OfferNames,
    StorageNames,
    add_energy_offers,
    add_ev_charging,
    add_shedding,
    add_storage,
    ev_plugged,
    soften_storage_end,
)
from tsodso.opt.namespace import Namespace

SOLVERS = ["highs", "clarabel"]
ATOL = {"highs": 1e-7, "clarabel": 1e-5}
ST = StorageNames(charge="ch", discharge="dis", energy="e", balance="bal")
EV = EvNames(charge="evc", energy="eve", shortfall="short", balance="evbal", need="need")
OF = OfferNames(power="q", budget="budget")


def _rows(model: Model, con) -> np.ndarray:
    """Dense rows of one constraint block."""
    return model._linear_matrix().toarray()[con.slice]


def _grid(model: Model, periods: int, dt: float, price: np.ndarray):
    """A free grid purchase per period, g_t costing price_t * dt per MW (negative: sale)."""
    return model.add_variables("grid", periods, lb=-np.inf, cost=np.asarray(price) * dt)


# ------------------------------------------------------------------------------ storage
# One unit, T = 3, dt = 0.5 h, eta_c = 0.9, eta_d = 0.8, e_init = 1, e_min = 0.5,
# e_max = 10, p_charge = 4, p_discharge = 6, cost of discharge 2 $/MWh; prices 10, 30, 100.
# A stored MWh is worth (100 - 2) * 0.8 = 78.4 $ in period 2 and costs 10 / 0.9 = 11.1 $
# (period 0) or 30 / 0.9 = 33.3 $ (period 1) to store, so the unit charges at full power
# in periods 0 and 1:  e_0 = 1 + 0.5 * 0.9 * 4 = 2.8,  e_1 = 2.8 + 1.8 = 4.6,
# then discharges down to the end-of-day floor max(e_min, e_init) = 1 (not e_min = 0.5):
# dis_2 = (4.6 - 1) * 0.8 / 0.5 = 5.76 MW (below its 6 MW limit).
# Cost: 0.5 * (10 * 4 + 30 * 4 - 100 * 5.76) + 0.5 * 2 * 5.76 = -202.24 $.
STORAGE = dict(p_charge_mw=[4.0], p_discharge_mw=[6.0], cost_per_mwh=[2.0], e_min_mwh=[0.5],
               e_max_mwh=[10.0], e_init_mwh=[1.0], eta_charge=[0.9], eta_discharge=[0.8])


@pytest.mark.parametrize("solver", SOLVERS)
def test_storage_charges_cheap_and_discharges_to_its_initial_energy(solver: str) -> None:
    m = Model()
    block = add_storage(m, ST, 3, 0.5, **STORAGE)
    g = _grid(m, 3, 0.5, [10.0, 30.0, 100.0])
    m.add_constraints("power", [(g, 1.0), (block.charge, -1.0), (block.discharge, 1.0)],
                      lb=0.0, ub=0.0)
    sol = m.solve(solver)
    assert sol.ok
    tol = ATOL[solver]
    np.testing.assert_allclose(sol.value(block.charge), [4.0, 4.0, 0.0], atol=tol)
    np.testing.assert_allclose(sol.value(block.discharge), [0.0, 0.0, 5.76], atol=tol)
    np.testing.assert_allclose(sol.value(block.energy), [2.8, 4.6, 1.0], atol=tol)
    assert sol.objective == pytest.approx(-202.24, abs=10 * tol)


# The same unit with an end target of 9 MWh: charging 4 MW in all three periods brings it to
# 1 + 3 * 1.8 = 6.4 MWh at most, so the hard target is infeasible. Softened at 1,000 $/MWh,
# storing for the target is worth 1000 x 0.9 = 900 $ per MWh drawn, so it charges at full
# power in all three periods (e_2 = 6.4), never discharges, and ends 9 - 6.4 = 2.6 MWh
# short. Cost: 0.5 * 4 * (10 + 30 + 100) + 1000 * 2.6 = 2,880 $.
@pytest.mark.parametrize("solver", SOLVERS)
def test_a_softened_end_target_is_met_as_far_as_the_unit_can(solver: str) -> None:
    def market(soft: bool):
        m = Model()
        block = add_storage(m, ST, 3, 0.5, **STORAGE, e_end_mwh=[9.0])
        g = _grid(m, 3, 0.5, [10.0, 30.0, 100.0])
        m.add_constraints("power", [(g, 1.0), (block.charge, -1.0), (block.discharge, 1.0)],
                          lb=0.0, ub=0.0)
        short = (soften_storage_end(m, block, "st", 3, e_min_mwh=[0.5], e_end_mwh=[9.0],
                                    shortfall_cost_per_mwh=1000.0) if soft else None)
        return m, block, short

    m, _, _ = market(False)
    assert not m.solve(solver).ok
    m, block, short = market(True)
    sol = m.solve(solver)
    assert sol.ok
    tol = ATOL[solver]
    np.testing.assert_allclose(sol.value(block.charge), [4.0, 4.0, 4.0], atol=tol)
    np.testing.assert_allclose(sol.value(block.energy)[-1], 6.4, atol=tol)
    np.testing.assert_allclose(sol.value(short), [2.6], atol=tol)
    assert sol.objective == pytest.approx(2880.0, abs=10 * tol)


def test_storage_layout_is_period_major_with_the_efficiencies_in_the_balance() -> None:
    # two units, two periods: columns t * 2 + k; hand-written balance matrix
    m = Model()
    dt = 0.25
    block = add_storage(m, ST, 2, dt, p_charge_mw=[1.0, 2.0], p_discharge_mw=[3.0, 4.0],
                        cost_per_mwh=[5.0, 6.0], e_min_mwh=[0.1, 0.2], e_max_mwh=[7.0, 8.0],
                        e_init_mwh=[0.05, 0.5], eta_charge=[0.9, 0.95],
                        eta_discharge=[0.8, 0.85])
    assert [b.name for b in m.var_blocks.values()] == ["ch", "dis", "e"]
    assert (len(block.charge), len(block.discharge), len(block.energy)) == (4, 4, 4)
    lb, ub, cost, _ = m._columns()
    np.testing.assert_array_equal(ub[block.charge.slice], [1, 2, 1, 2])
    np.testing.assert_array_equal(ub[block.discharge.slice], [3, 4, 3, 4])
    np.testing.assert_allclose(cost[block.discharge.slice], [1.25, 1.5, 1.25, 1.5])
    np.testing.assert_array_equal(cost[block.charge.slice], 0.0)
    # last period's floor: max(e_min, e_init) (0.1 vs 0.05 -> 0.1; 0.2 vs 0.5 -> 0.5)
    np.testing.assert_array_equal(lb[block.energy.slice], [0.1, 0.2, 0.1, 0.5])
    np.testing.assert_array_equal(ub[block.energy.slice], [7, 8, 7, 8])
    a = _rows(m, block.balance)
    c, d = -dt * 0.9, -dt * 0.95
    f, h = dt / 0.8, dt / 0.85
    expected = np.array([  # ch0 ch1 ch0' ch1' | dis ... | e ...
        [c, 0, 0, 0, f, 0, 0, 0, 1, 0, 0, 0],
        [0, d, 0, 0, 0, h, 0, 0, 0, 1, 0, 0],
        [0, 0, c, 0, 0, 0, f, 0, -1, 0, 1, 0],
        [0, 0, 0, d, 0, 0, 0, h, 0, -1, 0, 1],
    ])
    np.testing.assert_allclose(a, expected, rtol=0, atol=1e-15)
    rlb, rub = m._rows()
    np.testing.assert_array_equal(rlb, [0.05, 0.5, 0.0, 0.0])
    np.testing.assert_array_equal(rub, rlb)


def test_storage_without_units_has_empty_blocks_and_no_rows() -> None:
    m = Model()
    block = add_storage(m, ST, 4, 1.0, **{k: [] for k in STORAGE})
    assert (len(block.charge), len(block.discharge), len(block.energy)) == (0, 0, 0)
    assert block.balance is None and m.num_cons == 0


def test_storage_refuses_inconsistent_unit_counts() -> None:
    with pytest.raises(ValueError, match="e_max_mwh"):
        add_storage(Model(), ST, 3, 1.0, **{**STORAGE, "e_max_mwh": [1.0, 2.0]})
    with pytest.raises(ValueError, match="dt"):
        add_storage(Model(), ST, 3, 0.0, **STORAGE)


# ----------------------------------------------------------------------------------- EVs
# T = 3, dt = 1 h, plugged in periods 0 and 1 at 5 MW, eta = 0.9, e_init = 1, leaves at
# the start of period 2. It can store at most 1 + 2 * 0.9 * 5 = 10 MWh: with a need of
# 12 MWh the shortfall is exactly 2 MWh; cost 5 MW * 2 h * 50 $/MWh + 2 * 1000 = 2500 $.
def _ev_case(need: float, solver: str, price=(50.0, 50.0, 50.0), departure: int = 2):
    m = Model()
    T = 3
    block = add_ev_charging(m, EV, T, 1.0, p_charge_mw=ev_plugged(T, [0], [departure]) * 5.0,
                            e_max_mwh=[20.0], e_init_mwh=[1.0], eta_charge=[0.9],
                            need_mwh=[need], departure_period=[departure],
                            shortfall_cost_per_mwh=1000.0)
    g = _grid(m, T, 1.0, price)
    m.add_constraints("power", [(g, 1.0), (block.charge, -1.0)], lb=0.0, ub=0.0)
    sol = m.solve(solver)
    assert sol.ok
    return block, sol


@pytest.mark.parametrize("solver", SOLVERS)
def test_ev_that_cannot_reach_its_need_gets_the_exact_shortfall(solver: str) -> None:
    block, sol = _ev_case(12.0, solver)
    tol = ATOL[solver]
    np.testing.assert_allclose(sol.value(block.charge), [5.0, 5.0, 0.0], atol=tol)
    np.testing.assert_allclose(sol.value(block.energy), [5.5, 10.0, 10.0], atol=tol)
    np.testing.assert_allclose(sol.value(block.shortfall), [2.0], atol=tol)
    assert sol.objective == pytest.approx(2500.0, abs=100 * tol)


@pytest.mark.parametrize("solver", SOLVERS)
def test_ev_meets_its_need_in_the_cheapest_plugged_period(solver: str) -> None:
    # need 5.5 MWh from 1: 4.5 / 0.9 = 5 MWh drawn, all in period 1 (40 < 60 $/MWh);
    # period 2 is cheaper still but the EV has left
    block, sol = _ev_case(5.5, solver, price=(60.0, 40.0, 1.0))
    tol = ATOL[solver]
    np.testing.assert_allclose(sol.value(block.charge), [0.0, 5.0, 0.0], atol=tol)
    np.testing.assert_allclose(sol.value(block.energy), [1.0, 5.5, 5.5], atol=tol)
    np.testing.assert_allclose(sol.value(block.shortfall), [0.0], atol=tol)
    assert sol.objective == pytest.approx(200.0, abs=100 * tol)


def test_ev_rows_and_departure_after_the_horizon() -> None:
    # two EVs, T = 2: the first leaves after the horizon (need on its last energy), the
    # second at the start of period 1 (need on its period-0 energy)
    m = Model()
    dt = 0.5
    block = add_ev_charging(m, EV, 2, dt, p_charge_mw=[[1.0, 2.0], [3.0, 0.0]],
                            e_max_mwh=[4.0, 5.0], e_init_mwh=[0.5, 0.25],
                            eta_charge=[0.9, 0.8], need_mwh=[3.0, 1.0],
                            departure_period=[7, 1], shortfall_cost_per_mwh=123.0)
    lb, ub, cost, _ = m._columns()
    np.testing.assert_array_equal(ub[block.charge.slice], [1, 2, 3, 0])
    np.testing.assert_array_equal(ub[block.energy.slice], [4, 5, 4, 5])
    np.testing.assert_array_equal(cost[block.shortfall.slice], [123, 123])  # $/MWh, no dt
    np.testing.assert_array_equal(cost[block.charge.slice], 0.0)
    expected_balance = np.array([  # evc (4) | eve (4) | short (2)
        [-dt * 0.9, 0, 0, 0, 1, 0, 0, 0, 0, 0],
        [0, -dt * 0.8, 0, 0, 0, 1, 0, 0, 0, 0],
        [0, 0, -dt * 0.9, 0, -1, 0, 1, 0, 0, 0],
        [0, 0, 0, -dt * 0.8, 0, -1, 0, 1, 0, 0],
    ])
    np.testing.assert_allclose(_rows(m, block.balance), expected_balance, atol=1e-15)
    expected_need = np.array([
        [0, 0, 0, 0, 0, 0, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 1, 0, 0, 0, 1],
    ])
    np.testing.assert_array_equal(_rows(m, block.need), expected_need)
    rlb, rub = m._rows()
    np.testing.assert_array_equal(rlb, [0.5, 0.25, 0, 0, 3.0, 1.0])
    np.testing.assert_array_equal(rub, [0.5, 0.25, 0, 0, np.inf, np.inf])


def test_ev_plugged_is_arrival_inclusive_departure_exclusive() -> None:
    np.testing.assert_array_equal(ev_plugged(4, [1, 0], [3, 4]),
                                  [[False, True], [True, True], [True, True], [False, True]])


def test_ev_refuses_a_departure_before_period_one_and_bad_shapes() -> None:
    kw = dict(e_max_mwh=[1.0], e_init_mwh=[0.0], eta_charge=[1.0], need_mwh=[0.5],
              shortfall_cost_per_mwh=1.0)
    with pytest.raises(ValueError, match="departure_period"):
        add_ev_charging(Model(), EV, 2, 1.0, p_charge_mw=[[1.0], [1.0]], departure_period=[0],
                        **kw)
    with pytest.raises(ValueError, match="p_charge_mw"):
        add_ev_charging(Model(), EV, 2, 1.0, p_charge_mw=[1.0, 1.0], departure_period=[1],
                        **kw)


# ------------------------------------------------------------------------------- offers
# Two offers (5 and 7 $/MWh, 10 MW each) and a 100 $/MWh generator serve 12 MW over 3
# periods of 0.5 h (18 MWh). Offer 0 has a 6 MWh budget, offer 1 none: the budget binds
# (6 MWh from offer 0, 12 MWh from offer 1, none from the generator): 30 + 84 = 114 $, and
# one more MWh of budget saves 7 - 5 = 2 $ (dual -2).
@pytest.mark.parametrize("solver", SOLVERS)
def test_budget_row_binds_at_the_budget(solver: str) -> None:
    m = Model()
    T, dt = 3, 0.5
    block = add_energy_offers(m, OF, T, dt, p_min_mw=0.0, p_max_mw=np.full((T, 2), 10.0),
                              price_per_mwh=[5.0, 7.0], budget_mwh=[6.0, np.inf])
    assert block.budget is not None and len(block.budget) == 1  # only the finite budget
    gen = m.add_variables("gen", T, cost=100.0 * dt)
    m.add_constraints("demand", [(block.power, sp.kron(sp.identity(T), np.ones((1, 2)))),
                                 (gen, 1.0)], lb=12.0, ub=12.0)
    sol = m.solve(solver)
    assert sol.ok
    tol = ATOL[solver]
    q = sol.value(block.power).reshape(T, 2)
    assert dt * q[:, 0].sum() == pytest.approx(6.0, abs=10 * tol)
    assert dt * q[:, 1].sum() == pytest.approx(12.0, abs=10 * tol)
    np.testing.assert_allclose(sol.value(gen), 0.0, atol=10 * tol)
    assert sol.objective == pytest.approx(114.0, abs=100 * tol)
    np.testing.assert_allclose(sol.dual(block.budget), [-2.0], atol=1e-4)


def test_offer_bounds_costs_and_budget_rows() -> None:
    m = Model()
    T, dt = 2, 0.25
    pmin = np.array([[0.0, 1.0, 0.5], [0.2, 0.0, 0.0]])
    pmax = np.array([[2.0, 3.0, 4.0], [5.0, 6.0, 7.0]])
    block = add_energy_offers(m, OF, T, dt, p_min_mw=pmin, p_max_mw=pmax,
                              price_per_mwh=[10.0, 20.0, 30.0],
                              budget_mwh=[np.inf, 1.5, 2.5])
    lb, ub, cost, _ = m._columns()
    np.testing.assert_array_equal(lb, pmin.ravel())
    np.testing.assert_array_equal(ub, pmax.ravel())
    np.testing.assert_allclose(cost, [2.5, 5.0, 7.5, 2.5, 5.0, 7.5])
    np.testing.assert_array_equal(_rows(m, block.budget), [[0, dt, 0, 0, dt, 0],
                                                           [0, 0, dt, 0, 0, dt]])
    rlb, rub = m._rows()
    np.testing.assert_array_equal(rub, [1.5, 2.5])
    assert np.isneginf(rlb).all()


def test_offers_without_budgets_add_no_rows() -> None:
    for budget in (None, [np.inf, np.nan]):
        m = Model()
        block = add_energy_offers(m, OF, 2, 1.0, p_min_mw=0.0, p_max_mw=1.0,
                                  price_per_mwh=[1.0, 2.0], budget_mwh=budget)
        assert block.budget is None and m.num_cons == 0 and len(block.power) == 4


# ----------------------------------------------------------------------------- shedding
@pytest.mark.parametrize("solver", SOLVERS)
def test_shedding_costs_the_value_of_lost_load_per_period(solver: str) -> None:
    # load 5 MW, 3 MW of supply at 20 $/MWh, 2 periods of 0.25 h, VOLL 1000 $/MWh:
    # 2 MW shed each period, 2 * 2 * 0.25 * 1000 + 3 * 2 * 0.25 * 20 = 1030 $
    m = Model()
    T, dt = 2, 0.25
    shed = add_shedding(m, "shed", T, 1, dt, value_of_lost_load=1000.0,
                        ub_mw=np.full((T, 1), 5.0))
    supply = m.add_variables("supply", T, ub=3.0, cost=20.0 * dt)
    m.add_constraints("balance", [(supply, 1.0), (shed, 1.0)], lb=5.0, ub=5.0)
    sol = m.solve(solver)
    assert sol.ok
    np.testing.assert_allclose(sol.value(shed), [2.0, 2.0], atol=ATOL[solver])
    assert sol.objective == pytest.approx(1030.0, abs=100 * ATOL[solver])


def test_shedding_bounds_and_spill_without_a_bound() -> None:
    m = Model()
    shed = add_shedding(m, "shed", 2, 2, 0.5, value_of_lost_load=100.0,
                        ub_mw=[[1.0, 2.0], [3.0, 4.0]])
    spill = add_shedding(m, "spill", 2, 3, 0.5, value_of_lost_load=100.0)
    lb, ub, cost, _ = m._columns()
    np.testing.assert_array_equal(ub[shed.slice], [1, 2, 3, 4])
    assert np.isposinf(ub[spill.slice]).all() and len(spill) == 6
    np.testing.assert_array_equal(lb, 0.0)
    np.testing.assert_array_equal(cost, 50.0)
    with pytest.raises(ValueError, match="ub_mw"):
        add_shedding(m, "bad", 2, 2, 0.5, value_of_lost_load=1.0, ub_mw=[1.0, 2.0])


# ---------------------------------------------------------------------- names in models
def test_builders_write_through_a_namespace() -> None:
    m = Model()
    ns = Namespace(m, "F1/")
    add_storage(ns, ST, 2, 1.0, **STORAGE)
    assert list(m.var_blocks) == ["F1/ch", "F1/dis", "F1/e"]
    assert list(m.con_blocks) == ["F1/bal"]


TSO_NAMES = ["offer", "st_charge", "st_discharge", "st_energy", "ev_charge", "ev_energy",
             "ev_shortfall", "shed", "spill"]
DSO_NAMES = ["der_p", "st_ch", "st_dis", "st_e", "ev_ch", "ev_e", "ev_short", "shed"]


def test_both_markets_keep_their_block_names_and_handles(default_system) -> None:
    from tsodso.dso.opf import DsoOpf, DsoOptions
    from tsodso.tso.market import TsoMarket, TsoOptions

    tso = TsoMarket(default_system, TsoOptions(periods=3))
    vb, cb = tso.model.var_blocks, tso.model.con_blocks
    assert all(name in vb for name in TSO_NAMES)
    assert all(name in cb for name in ("st_balance", "ev_balance", "ev_need"))
    assert (tso.q, tso.ch, tso.dis, tso.e) == (vb["offer"], vb["st_charge"],
                                               vb["st_discharge"], vb["st_energy"])
    assert (tso.evc, tso.eve, tso.ev_short, tso.shed) == (
        vb["ev_charge"], vb["ev_energy"], vb["ev_shortfall"], vb["shed"])
    feeder = default_system.feeder_ids[0]
    dso = DsoOpf(default_system, feeder, DsoOptions(formulation="lindist", periods=3))
    vb, cb = dso.model.var_blocks, dso.model.con_blocks
    assert all(name in vb for name in DSO_NAMES)
    assert all(name in cb for name in ("dr_budget", "st_balance", "ev_balance", "ev_need"))
    assert (dso.pg, dso.ch, dso.dis, dso.e) == (vb["der_p"], vb["st_ch"], vb["st_dis"],
                                                vb["st_e"])
    assert (dso.evc, dso.eve, dso.ev_short, dso.shed) == (vb["ev_ch"], vb["ev_e"],
                                                          vb["ev_short"], vb["shed"])


# ---------------------------------------------------------------------- vehicle-to-grid
# One EV plugged in over T = 3 (dt = 1 h): e_init 2, e_max 20, need 2 MWh at the end,
# charging 5 MW at eta 0.9, discharging 4 MW (grid side) at eta 0.8 costing 5 $/MWh;
# prices 10, 100, 12 $/MWh. A MWh sold at 100 takes 1.25 MWh from the battery, refilled
# for at most 1.25 / 0.9 x 12 = 16.7 $: worth it, so the EV discharges its full 4 MW in
# period 1. It charges its full 5 MW in period 0 (cheapest): e_0 = 2 + 4.5 = 6.5,
# e_1 = 6.5 - 4 / 0.8 = 1.5, then the rest of its need in period 2: (2 - 1.5) / 0.9 MW.
# Cost: 10 x 5 - 100 x 4 + 5 x 4 + 12 x 0.5556 = -323.333 $.
@pytest.mark.parametrize("solver", SOLVERS)
def test_vehicle_to_grid_sells_at_the_peak_and_keeps_its_departure_energy(solver: str) -> None:
    m = Model()
    T = 3
    block = add_ev_charging(m, EV, T, 1.0, p_charge_mw=np.full((T, 1), 5.0),
                            e_max_mwh=[20.0], e_init_mwh=[2.0], eta_charge=[0.9],
                            need_mwh=[2.0], departure_period=[T],
                            shortfall_cost_per_mwh=1000.0,
                            p_discharge_mw=np.full((T, 1), 4.0), eta_discharge=[0.8],
                            discharge_cost_per_mwh=[5.0])
    assert block.discharge is not None
    g = _grid(m, T, 1.0, [10.0, 100.0, 12.0])
    m.add_constraints("power", [(g, 1.0), (block.charge, -1.0), (block.discharge, 1.0)],
                      lb=0.0, ub=0.0)
    sol = m.solve(solver)
    assert sol.ok
    tol = ATOL[solver]
    np.testing.assert_allclose(sol.value(block.charge), [5.0, 0.0, 0.5 / 0.9], atol=tol)
    np.testing.assert_allclose(sol.value(block.discharge), [0.0, 4.0, 0.0], atol=tol)
    np.testing.assert_allclose(sol.value(block.energy), [6.5, 1.5, 2.0], atol=tol)
    np.testing.assert_allclose(sol.value(block.shortfall), [0.0], atol=tol)
    assert sol.objective == pytest.approx(-323.3333333, abs=100 * tol)


def test_no_discharge_block_without_vehicle_to_grid() -> None:
    m = Model()
    block = add_ev_charging(m, EV, 2, 1.0, p_charge_mw=np.ones((2, 1)), e_max_mwh=[4.0],
                            e_init_mwh=[0.0], eta_charge=[1.0], need_mwh=[1.0],
                            departure_period=[2], shortfall_cost_per_mwh=1.0,
                            p_discharge_mw=np.zeros((2, 1)))
    assert block.discharge is None and m.num_vars == 2 + 2 + 1
    with pytest.raises(ValueError, match="p_discharge_mw"):
        add_ev_charging(Model(), EV, 2, 1.0, p_charge_mw=np.ones((2, 1)), e_max_mwh=[4.0],
                        e_init_mwh=[0.0], eta_charge=[1.0], need_mwh=[1.0],
                        departure_period=[2], shortfall_cost_per_mwh=1.0,
                        p_discharge_mw=np.ones((3, 1)))
