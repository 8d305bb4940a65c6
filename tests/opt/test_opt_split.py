"""Solving a block-diagonal model part by part equals solving it whole."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tsodso.opt import Model, SolveStatus
from tsodso.opt._highs_split import independent_parts


def periods_lp(loads: np.ndarray, link: bool = False, quadratic: bool = False
               ) -> tuple[Model, dict]:
    """A 3-bus transport market repeated over ``len(loads)`` periods (period-major blocks).

    Generators at buses 0 and 1 (costs 10 and 30 $/MWh, 60 and 100 MW), load at bus 2, lines
    0-2 limited to 40 MW and 1-2 unlimited; ``link`` adds a ramp row between periods.
    """
    T = len(loads)
    m = Model("periods")
    g = m.add_variables("g", 2 * T, ub=np.tile([60.0, 100.0], T), cost=np.tile([10.0, 30.0], T))
    f = m.add_variables("f", 2 * T, lb=np.tile([-40.0, -np.inf], T), ub=np.tile([40.0, np.inf], T))
    if quadratic:
        m.add_quadratic_cost(g, np.tile([0.2, 0.1], T))
    inc_g = sp.csr_array(np.array([[1.0, 0], [0, 1], [0, 0]]))
    inc_f = sp.csr_array(np.array([[-1.0, 0], [0, -1], [1, 1]]))
    eye = sp.identity(T, format="csr")
    rhs = np.column_stack([np.zeros(T), np.zeros(T), loads]).ravel()
    bal = m.add_constraints("bal", [(g, sp.kron(eye, inc_g)), (f, sp.kron(eye, inc_f))],
                            lb=rhs, ub=rhs)
    out = {"g": g, "f": f, "bal": bal}
    if link and T > 1:
        diff = sp.kron(sp.eye(T - 1, T, k=1) - sp.eye(T - 1, T), sp.csr_array([[1.0, 0.0]]))
        out["ramp"] = m.add_constraints("ramp", (g, diff), lb=-5.0, ub=5.0)
    m.add_variables("unused", 3, ub=1.0, cost=-1.0)  # row-less columns: the small extra part
    m.add_objective_offset(7.0)
    return m, out


LOADS = np.array([50.0, 80.0, 120.0, 90.0, 30.0])


@pytest.mark.parametrize("quadratic", [False, True])
def test_split_equals_whole(quadratic: bool) -> None:
    whole, b = periods_lp(LOADS, quadratic=quadratic)
    split, c = periods_lp(LOADS, quadratic=quadratic)
    ref = whole.solve("highs")
    sol = split.solve("highs", split=True)
    assert sol.status is SolveStatus.OPTIMAL
    backend = split._backends["highs-split"]
    assert len(backend.parts) == len(LOADS) + 1  # one per period + the row-less columns
    assert backend.n_instances == 2  # all periods share one warm-started instance
    assert sol.objective == pytest.approx(ref.objective, rel=1e-12)
    np.testing.assert_allclose(sol.value(c["g"]), ref.value(b["g"]), atol=1e-9)
    np.testing.assert_allclose(sol.dual(c["bal"]), ref.dual(b["bal"]), atol=1e-9)
    np.testing.assert_allclose(sol.col_dual, ref.col_dual, atol=1e-9)
    # the price at the load bus: 10 $/MWh while line 0-2 (40 MW) is free, then 30
    lmp = sol.dual(c["bal"]).reshape(len(LOADS), 3)[:, 2]
    if not quadratic:
        np.testing.assert_allclose(lmp, [30, 30, 30, 30, 10])


def test_split_resolve_after_changes_equals_fresh_build() -> None:
    model, b = periods_lp(LOADS)
    model.solve("highs", split=True)
    new_loads = LOADS[::-1] * 1.1
    rhs = np.column_stack([np.zeros(5), np.zeros(5), new_loads]).ravel()
    model.set_rhs(b["bal"], rhs, rhs)
    model.set_cost(b["g"], np.tile([12.0, 25.0], 5))
    model.set_bounds(b["g"], ub=np.tile([70.0, 100.0], 5))
    sol = model.solve("highs", split=True)
    fresh, c = periods_lp(new_loads)
    fresh.set_cost(c["g"], np.tile([12.0, 25.0], 5))
    fresh.set_bounds(c["g"], ub=np.tile([70.0, 100.0], 5))
    ref = fresh.solve("highs")
    assert sol.objective == pytest.approx(ref.objective, rel=1e-12)
    np.testing.assert_allclose(sol.dual(b["bal"]), ref.dual(c["bal"]), atol=1e-9)


def test_linked_periods_are_solved_whole() -> None:
    model, b = periods_lp(LOADS, link=True)
    sol = model.solve("highs", split=True)
    assert model._backends["highs-split"].parts == []  # one part: handed to HighsBackend
    ref, c = periods_lp(LOADS, link=True)
    assert sol.objective == pytest.approx(ref.solve("highs").objective, rel=1e-12)


def test_infeasible_part_makes_the_model_infeasible() -> None:
    model, b = periods_lp(np.array([50.0, 500.0, 30.0]))  # 160 MW of generation for 500 MW
    sol = model.solve("highs", split=True)
    assert sol.status is SolveStatus.INFEASIBLE
    assert np.isnan(sol.objective)


def test_independent_parts_order_and_blocks() -> None:
    a = sp.csc_array(sp.block_diag([np.ones((2, 3)), np.ones((1, 2)), np.ones((2, 3))]))
    a = sp.csc_array(sp.hstack([a, sp.csc_array((5, 1))]))  # a column without rows
    perm = np.random.default_rng(1).permutation(5)
    col_order, row_order, cb, rb = independent_parts(sp.csc_array(a[perm]))
    assert list(cb) == [0, 3, 5, 8, 9] and list(rb) == [0, 2, 3, 5, 5]
    assert list(col_order[:3]) == [0, 1, 2] and col_order[-1] == 8
    block = sp.csc_array(a[perm][row_order][:, col_order]).toarray()
    for k in range(4):  # nothing outside the diagonal blocks
        block[rb[k]:rb[k + 1], cb[k]:cb[k + 1]] = 0
    assert not block.any()
