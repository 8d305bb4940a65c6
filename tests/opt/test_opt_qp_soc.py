"""QP and second-order-cone solves against analytic solutions and finite differences."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tsodso.opt import Model, SolveStatus

SOLVERS = ["highs", "clarabel"]


# ------------------------------------------------------------------------------------ QP
# min sum_i 0.5 d_i x_i^2 + c_i x_i  s.t.  sum x = D,  0 <= x <= ub
# KKT: x_i = clip((lam - c_i) / d_i, 0, ub_i), lam = dual of the balance row.
D_DIAG = np.array([1.0, 2.0, 4.0])
C_LIN = np.array([1.0, 2.0, 3.0])


def quad_dispatch(demand: float, ub1: float) -> tuple[Model, dict]:
    m = Model("qp")
    x = m.add_variables("x", 3, lb=0.0, ub=[ub1, 10.0, 10.0], cost=C_LIN)
    m.add_quadratic_cost(x, D_DIAG)
    bal = m.add_constraints("bal", (x, np.ones((1, 3))), lb=demand, ub=demand)
    return m, {"x": x, "bal": bal}


@pytest.mark.parametrize("solver", SOLVERS)
def test_qp_interior_analytic(solver: str) -> None:
    # lam = 5 -> x = [4, 1.5, 0.5], D = 6
    m, h = quad_dispatch(6.0, 10.0)
    sol = m.solve(solver)
    assert sol.status is SolveStatus.OPTIMAL
    x = np.array([4.0, 1.5, 0.5])
    np.testing.assert_allclose(sol.value(h["x"]), x, atol=1e-6)
    assert sol.objective == pytest.approx(0.5 * D_DIAG @ x**2 + C_LIN @ x, abs=1e-6)
    np.testing.assert_allclose(sol.dual(h["bal"]), [5.0], atol=1e-6)
    np.testing.assert_allclose(sol.reduced_cost(h["x"]), 0.0, atol=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_qp_bound_active_analytic(solver: str) -> None:
    # ub1 = 3 is active: 3 + (lam-2)/2 + (lam-3)/4 = 6  ->  lam = 19/3
    m, h = quad_dispatch(6.0, 3.0)
    sol = m.solve(solver)
    lam = 19.0 / 3.0
    x = np.array([3.0, (lam - 2) / 2, (lam - 3) / 4])
    np.testing.assert_allclose(sol.value(h["x"]), x, atol=1e-6)
    np.testing.assert_allclose(sol.dual(h["bal"]), [lam], atol=1e-6)
    # d obj*/d ub1 = marginal cost of unit 1 at x1 = 3 minus lam
    red = sol.reduced_cost(h["x"])
    assert red[0] == pytest.approx(D_DIAG[0] * 3.0 + C_LIN[0] - lam, abs=1e-6)
    np.testing.assert_allclose(red[1:], 0.0, atol=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("what", ["demand", "ub1"])
def test_qp_duals_finite_difference(solver: str, what: str) -> None:
    eps = 1e-4
    base = {"demand": 6.0, "ub1": 3.0}

    def obj(**kw: float) -> float:
        m, _ = quad_dispatch(**{**base, **kw})
        s = m.solve(solver, tol=1e-10 if solver == "clarabel" else None)
        assert s.ok
        return s.objective

    m, h = quad_dispatch(**base)
    sol = m.solve(solver)
    dual = sol.dual(h["bal"])[0] if what == "demand" else sol.reduced_cost(h["x"])[0]
    fd = (obj(**{what: base[what] + eps}) - obj(**{what: base[what] - eps})) / (2 * eps)
    assert dual == pytest.approx(fd, abs=1e-5)


def test_qp_highs_and_clarabel_agree_random() -> None:
    rng = np.random.default_rng(11)
    n, k = 40, 15
    m = Model()
    x = m.add_variables("x", n, lb=-1.0, ub=rng.uniform(0.5, 2, n), cost=rng.normal(size=n))
    m.add_quadratic_cost(x, rng.uniform(0.1, 2.0, n))
    m.add_quadratic_cost(x, 0.5)  # accumulates
    a = sp.random_array((k, n), density=0.3, rng=rng)
    c = m.add_constraints("c", (x, a), lb=-1.0, ub=rng.uniform(0.0, 1.0, k))
    s_h, s_c = m.solve("highs"), m.solve("clarabel", tol=1e-10)
    assert s_h.ok and s_c.ok
    assert s_h.objective == pytest.approx(s_c.objective, abs=1e-6)
    np.testing.assert_allclose(s_h.value(x), s_c.value(x), atol=1e-5)  # strictly convex
    np.testing.assert_allclose(s_h.dual(c), s_c.dual(c), atol=1e-5)
    np.testing.assert_allclose(s_h.reduced_cost(x), s_c.reduced_cost(x), atol=1e-5)


def test_quadratic_cost_rejects_nonconvex() -> None:
    m = Model()
    x = m.add_variables("x", 2)
    with pytest.raises(ValueError, match="convexity"):
        m.add_quadratic_cost(x, [1.0, -1.0])


# ----------------------------------------------------------------------------------- SOC
def ball_problem(c: np.ndarray, r: np.ndarray, b: np.ndarray) -> tuple[Model, dict]:
    """k independent problems: min c_i'x_i  s.t. ||x_i + b_i|| <= r_i, all in one call."""
    k, p = c.shape
    m = Model("balls")
    x = m.add_variables("x", k * p, lb=-np.inf, cost=c.reshape(-1))
    # component j of cone i is x[i*p + j]: a (k, k*p) selection matrix per component
    rows = np.arange(k)
    comps = [
        (x, sp.csr_array((np.ones(k), (rows, rows * p + j)), shape=(k, k * p))) for j in range(p)
    ]
    zero_t = (x, sp.csr_array((k, k * p)))  # right-hand side is the constant r_i only
    cone = m.add_soc("ball", zero_t, comps, t_const=r, x_const=b)
    return m, {"x": x, "cone": cone}


def test_soc_balls_analytic() -> None:
    rng = np.random.default_rng(3)
    k, p = 6, 3
    c = rng.normal(size=(k, p))
    r = rng.uniform(0.5, 2.0, k)
    b = rng.normal(size=(k, p))
    m, h = ball_problem(c, r, b)
    sol = m.solve()  # auto -> clarabel
    assert sol.solver == "clarabel" and sol.status is SolveStatus.OPTIMAL
    norms = np.linalg.norm(c, axis=1)
    x_star = -b - r[:, None] * c / norms[:, None]
    np.testing.assert_allclose(sol.value(h["x"]).reshape(k, p), x_star, atol=1e-6)
    assert sol.objective == pytest.approx(np.sum(c * x_star), abs=1e-6)
    # obj* = -c'b - r |c|  ->  d/d r_i = -|c_i|,  d/d b_i = -c_i
    g = sol.cone_dual(h["cone"])
    assert g.shape == (k, 1 + p)
    np.testing.assert_allclose(g[:, 0], -norms, atol=1e-6)
    np.testing.assert_allclose(g[:, 1:], -c, atol=1e-6)


def test_soc_with_linear_rows_finite_difference() -> None:
    """min t + x0 s.t. ||(x0 - 1, x1 - 2)|| <= t, x0 + x1 = s, x1 <= u; duals vs FD."""

    def build(s: float, u: float, d: float) -> tuple[Model, dict]:
        m = Model()
        t = m.add_variables("t", 1, lb=-np.inf, cost=1.0)
        x = m.add_variables("x", 2, lb=-np.inf, ub=[np.inf, u], cost=[1.0, 0.0])
        e = m.add_constraints("sum", (x, np.ones((1, 2))), lb=s, ub=s)
        cone = m.add_soc(
            "c",
            (t, 1.0),
            [(x, np.array([[1.0, 0.0]])), (x, np.array([[0.0, 1.0]]))],
            t_const=d,
            x_const=[[-1.0, -2.0]],
        )
        return m, {"t": t, "x": x, "e": e, "cone": cone}

    base = {"s": 0.0, "u": 1.0, "d": 0.0}

    def obj(**kw: float) -> float:
        m, _ = build(**{**base, **kw})
        sol = m.solve("clarabel", tol=1e-11)
        assert sol.ok
        return sol.objective

    m, h = build(**base)
    sol = m.solve("clarabel", tol=1e-11)
    assert sol.ok
    # the bound x1 <= 1 must be active for this test to be meaningful
    assert sol.value(h["x"])[1] == pytest.approx(1.0, abs=1e-6)
    eps = 1e-4
    checks = {
        "s": sol.dual(h["e"])[0],
        "u": sol.reduced_cost(h["x"])[1],
        "d": sol.cone_dual(h["cone"])[0, 0],
    }
    for key, dual in checks.items():
        fd = (obj(**{key: base[key] + eps}) - obj(**{key: base[key] - eps})) / (2 * eps)
        assert abs(fd) > 1e-3, key  # non-trivial sensitivities only
        assert dual == pytest.approx(fd, abs=1e-5), key


def branch_flow(p: np.ndarray, q: np.ndarray, v: np.ndarray, consts: dict) -> tuple[Model, dict]:
    """min sum l  s.t.  l_i v_i >= P_i^2 + Q_i^2 with P, Q, v fixed by their bounds."""
    k = p.size
    m = Model("bf")
    pv = m.add_variables("P", k, lb=p, ub=p)
    qv = m.add_variables("Q", k, lb=q, ub=q)
    vv = m.add_variables("v", k, lb=v, ub=v)
    lv = m.add_variables("l", k, lb=-np.inf, cost=1.0)
    cone = m.add_rotated_soc(
        "flow",
        (lv, 0.5),
        (vv, 1.0),
        [(pv, 1.0), (qv, 1.0)],
        u_const=consts.get("u", 0.0),
        v_const=consts.get("v", 0.0),
        w_const=consts.get("w", 0.0),
    )
    return m, {"P": pv, "Q": qv, "v": vv, "l": lv, "cone": cone}


def test_rotated_soc_branch_flow_analytic() -> None:
    rng = np.random.default_rng(7)
    k = 5
    p, q, v = rng.normal(size=k), rng.normal(size=k), rng.uniform(0.9, 1.1, k)
    m, h = branch_flow(p, q, v, {})
    sol = m.solve("clarabel", tol=1e-10)
    assert sol.ok
    s2 = p**2 + q**2
    np.testing.assert_allclose(sol.value(h["l"]), s2 / v, rtol=1e-6, atol=1e-8)
    assert sol.objective == pytest.approx(np.sum(s2 / v), rel=1e-6)
    # reduced costs of the fixed variables are d obj*/d value
    np.testing.assert_allclose(sol.reduced_cost(h["P"]), 2 * p / v, atol=1e-5)
    np.testing.assert_allclose(sol.reduced_cost(h["Q"]), 2 * q / v, atol=1e-5)
    np.testing.assert_allclose(sol.reduced_cost(h["v"]), -s2 / v**2, atol=1e-5)
    # cone constants: 2 (l/2 + u0)(v + v0) >= (P + w0)^2 + Q^2
    g = sol.cone_dual(h["cone"])
    assert g.shape == (k, 4)
    np.testing.assert_allclose(g[:, 0], -2.0, atol=1e-5)
    np.testing.assert_allclose(g[:, 1], -s2 / v**2, atol=1e-5)
    np.testing.assert_allclose(g[:, 2], 2 * p / v, atol=1e-5)
    np.testing.assert_allclose(g[:, 3], 2 * q / v, atol=1e-5)


def test_rotated_soc_cone_dual_finite_difference() -> None:
    p, q, v = np.array([0.7, -0.3]), np.array([0.2, 0.5]), np.array([1.0, 0.95])
    base = {"u": np.array([0.1, -0.05]), "v": np.array([0.02, 0.0]), "w": np.zeros((2, 2))}
    m, h = branch_flow(p, q, v, base)
    sol = m.solve("clarabel", tol=1e-11)
    assert sol.ok
    g = sol.cone_dual(h["cone"])
    eps = 1e-5
    for col, key, j in [(0, "u", None), (1, "v", None), (2, "w", 0), (3, "w", 1)]:
        for i in range(2):
            up = {kk: vv.copy() for kk, vv in base.items()}
            dn = {kk: vv.copy() for kk, vv in base.items()}
            if j is None:
                up[key][i] += eps
                dn[key][i] -= eps
            else:
                up[key][i, j] += eps
                dn[key][i, j] -= eps
            f_up = branch_flow(p, q, v, up)[0].solve("clarabel", tol=1e-11).objective
            f_dn = branch_flow(p, q, v, dn)[0].solve("clarabel", tol=1e-11).objective
            assert g[i, col] == pytest.approx((f_up - f_dn) / (2 * eps), abs=1e-4)


def test_soc_infeasible_and_highs_rejects_cones() -> None:
    m = Model()
    t = m.add_variables("t", 1, lb=-np.inf, ub=-1.0)
    x = m.add_variables("x", 2, lb=-np.inf)
    m.add_soc("c", (t, 1.0), [(x, np.array([[1.0, 0.0]])), (x, np.array([[0.0, 1.0]]))])
    assert m.solve().status is SolveStatus.INFEASIBLE
    with pytest.raises(ValueError, match="cones"):
        m.solve("highs")


def test_soc_unbounded() -> None:
    m = Model()
    t = m.add_variables("t", 1, lb=-np.inf, cost=0.0)
    x = m.add_variables("x", 1, lb=-np.inf, cost=-1.0)
    m.add_soc("c", (t, 1.0), [(x, 1.0)])  # |x| <= t, t free -> x -> inf
    assert m.solve().status is SolveStatus.UNBOUNDED


def test_rotated_soc_implies_nonnegative_u_v() -> None:
    """2 u v >= w^2 with w = 0 must still force v >= 0 (the cone includes u, v >= 0)."""
    m = Model()
    u = m.add_variables("u", 1, lb=-np.inf, cost=0.0)
    v = m.add_variables("v", 1, lb=-np.inf, cost=1.0)
    w = m.add_variables("w", 1, lb=0.0, ub=0.0)
    m.add_constraints("u_fix", (u, 1.0), lb=-1.0, ub=np.inf)
    m.add_rotated_soc("r", (u, 1.0), (v, 1.0), [(w, 1.0)])
    sol = m.solve(tol=1e-10)
    assert sol.status is SolveStatus.OPTIMAL
    assert sol.objective == pytest.approx(0.0, abs=1e-6)
    assert sol.value(u)[0] >= -1e-7
