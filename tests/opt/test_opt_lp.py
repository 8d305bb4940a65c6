"""LP solves: hand-computed optimum and duals, scipy.linprog reference, statuses."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from tsodso.opt import Model, SolveStatus

SOLVERS = ["highs", "clarabel"]
# Clarabel is an interior-point method: compare with a tolerance around its accuracy.
ATOL = {"highs": 1e-7, "clarabel": 1e-5}

# ----------------------------------------------------------------------------------------
# A 5-generator dispatch LP whose optimum and duals are known by hand.
#   g cost [10, 40, 30, 50, 60]; bounds g1<=50, g2<=80, g3<=100, g4<=30, g5<=10
#   balance: sum g = 120                                 -> dual 40 (g2 is marginal)
#   rows: g1 + g3 <= 85       (active upper)             -> dual -10
#         20 <= g2 <= 60      (ranged, inactive)         -> 0
#         2 g2 <= 90          (inactive)                 -> 0
#         g4 >= 5             (active lower)             -> +10
#   x* = [50, 30, 35, 5, 0], obj* = 3000
#   reduced costs: g1 at ub -> 10 - 30 = -20, g5 at lb -> 60 - 40 = 20, others 0
# ----------------------------------------------------------------------------------------
BASE = {
    "demand": 120.0,
    "r13_ub": 85.0,
    "g2_lb": 20.0,
    "cap2_ub": 90.0,
    "g4_min": 5.0,
    "g1_ub": 50.0,
    "g3_ub": 100.0,
    "g5_lb": 0.0,
}
X_STAR = np.array([50.0, 30.0, 35.0, 5.0, 0.0])
ROW_DUALS = np.array([-10.0, 0.0, 0.0, 10.0])
REDUCED = np.array([-20.0, 0.0, 0.0, 0.0, 20.0])


def dispatch(p: dict[str, float]) -> tuple[Model, dict]:
    m = Model("dispatch")
    g = m.add_variables(
        "g",
        5,
        lb=[0.0, 0.0, 0.0, 0.0, p["g5_lb"]],
        ub=[p["g1_ub"], 80.0, p["g3_ub"], 30.0, 10.0],
        cost=[10.0, 40.0, 30.0, 50.0, 60.0],
    )
    bal = m.add_constraints("balance", [(g, np.ones((1, 5)))], lb=p["demand"], ub=p["demand"])
    a = sp.csr_array(
        np.array(
            [
                [1.0, 0, 1, 0, 0],
                [0, 1, 0, 0, 0],
                [0, 2, 0, 0, 0],
                [0, 0, 0, 1, 0],
            ]
        )
    )
    rows = m.add_constraints(
        "rows",
        (g, a),
        lb=[-np.inf, p["g2_lb"], -np.inf, p["g4_min"]],
        ub=[p["r13_ub"], 60.0, p["cap2_ub"], np.inf],
    )
    return m, {"g": g, "bal": bal, "rows": rows}


def _solve(p: dict[str, float], solver: str):
    m, h = dispatch(p)
    sol = m.solve(solver, tol=1e-10 if solver == "clarabel" else None)
    assert sol.status is SolveStatus.OPTIMAL
    return sol, h


@pytest.mark.parametrize("solver", SOLVERS)
def test_dispatch_hand_solution(solver: str) -> None:
    sol, h = _solve(BASE, solver)
    atol = ATOL[solver]
    assert sol.solver == solver
    assert sol.objective == pytest.approx(3000.0, abs=1e3 * atol)
    np.testing.assert_allclose(sol.value(h["g"]), X_STAR, atol=1e2 * atol)
    np.testing.assert_allclose(sol.dual(h["bal"]), [40.0], atol=1e2 * atol)
    np.testing.assert_allclose(sol.dual(h["rows"]), ROW_DUALS, atol=1e2 * atol)
    np.testing.assert_allclose(sol.reduced_cost(h["g"]), REDUCED, atol=1e2 * atol)
    assert sol.iterations > 0
    assert sol.build_s >= 0.0 and sol.solve_s >= 0.0


# (parameter that is perturbed, how to read the matching dual from a solution)
FD_CASES = [
    ("demand", lambda s, h: s.dual(h["bal"])[0]),
    ("r13_ub", lambda s, h: s.dual(h["rows"])[0]),
    ("g2_lb", lambda s, h: s.dual(h["rows"])[1]),
    ("cap2_ub", lambda s, h: s.dual(h["rows"])[2]),
    ("g4_min", lambda s, h: s.dual(h["rows"])[3]),
    ("g1_ub", lambda s, h: s.reduced_cost(h["g"])[0]),
    ("g3_ub", lambda s, h: s.reduced_cost(h["g"])[2]),
    ("g5_lb", lambda s, h: s.reduced_cost(h["g"])[4]),
]


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize(("param", "getter"), FD_CASES, ids=[c[0] for c in FD_CASES])
def test_dual_matches_finite_difference(solver: str, param: str, getter) -> None:
    """dual == d obj*/d rhs, checked by re-solving fresh models with rhs +/- eps."""
    eps = 1e-3
    sol, h = _solve(BASE, solver)
    up, _ = _solve({**BASE, param: BASE[param] + eps}, solver)
    dn, _ = _solve({**BASE, param: BASE[param] - eps}, solver)
    fd = (up.objective - dn.objective) / (2 * eps)
    assert getter(sol, h) == pytest.approx(fd, abs=1e3 * ATOL[solver])


def test_duals_match_linprog_marginals() -> None:
    """Independent reference: scipy's linprog marginals (d obj / d b) with our sign mapping."""
    a = np.array([[1.0, 0, 1, 0, 0], [0, 2, 0, 0, 0], [0, 0, 0, 1, 0]])
    res = linprog(
        c=[10.0, 40.0, 30.0, 50.0, 60.0],
        A_ub=np.vstack([a[0], a[1], -a[2]]),  # g4 >= 5  ->  -g4 <= -5
        b_ub=[85.0, 90.0, -5.0],
        A_eq=np.ones((1, 5)),
        b_eq=[120.0],
        bounds=[(0, 50), (20, 60), (0, 100), (0, 30), (0, 10)],  # g2 range as bounds here
        method="highs",
    )
    assert res.status == 0
    for solver in SOLVERS:
        sol, h = _solve(BASE, solver)
        tol = 1e2 * ATOL[solver]
        assert sol.objective == pytest.approx(res.fun, abs=tol)
        assert sol.dual(h["bal"])[0] == pytest.approx(res.eqlin.marginals[0], abs=tol)
        rows = sol.dual(h["rows"])
        assert rows[0] == pytest.approx(res.ineqlin.marginals[0], abs=tol)
        assert rows[2] == pytest.approx(res.ineqlin.marginals[1], abs=tol)
        # lower-bounded row: d obj/d lb = -(d obj / d(-lb))
        assert rows[3] == pytest.approx(-res.ineqlin.marginals[2], abs=tol)
        red = sol.reduced_cost(h["g"])
        assert red[0] == pytest.approx(res.upper.marginals[0], abs=tol)
        assert red[4] == pytest.approx(res.lower.marginals[4], abs=tol)


def _random_lp(seed: int):
    """Feasible, bounded LP with equality, inequality, ranged rows, fixed and free columns."""
    rng = np.random.default_rng(seed)
    n1, n2, m_in = 25, 5, 15
    lb1 = rng.uniform(-5, 0, n1)
    ub1 = lb1 + rng.uniform(0.5, 5, n1)
    ub1[:3] = lb1[:3]  # fixed variables
    x0 = rng.uniform(lb1, ub1)
    b = sp.random_array((n2, n1), density=0.3, rng=rng).toarray()
    c1 = rng.normal(size=n1)
    c2 = rng.normal(size=n2)
    a1 = sp.random_array((m_in, n1), density=0.3, rng=rng).toarray()
    a2 = sp.random_array((m_in, n2), density=0.3, rng=rng).toarray()
    act = a1 @ x0 + a2 @ (b @ x0)
    lo = act - rng.uniform(0.1, 2, m_in)
    hi = act + rng.uniform(0.1, 2, m_in)
    lo[: m_in // 3] = -np.inf
    hi[m_in // 3 : 2 * m_in // 3] = np.inf
    return dict(n1=n1, n2=n2, lb1=lb1, ub1=ub1, b=b, c1=c1, c2=c2, a1=a1, a2=a2, lo=lo, hi=hi)


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_lp_matches_linprog(solver: str, seed: int) -> None:
    d = _random_lp(seed)
    m = Model()
    x = m.add_variables("x", d["n1"], lb=d["lb1"], ub=d["ub1"], cost=d["c1"])
    y = m.add_variables("y", d["n2"], lb=-np.inf, ub=np.inf, cost=d["c2"])
    # y = B x  (dense, sparse and diagonal coefficient forms mixed)
    m.add_constraints("def_y", [(y, 1.0), (x, -d["b"])], lb=0.0, ub=0.0)
    m.add_constraints("ineq", [(x, sp.csc_array(d["a1"])), (y, d["a2"])], lb=d["lo"], ub=d["hi"])
    sol = m.solve(solver)
    assert sol.status is SolveStatus.OPTIMAL

    n = d["n1"] + d["n2"]
    fin_hi, fin_lo = np.isfinite(d["hi"]), np.isfinite(d["lo"])
    a = np.hstack([d["a1"], d["a2"]])
    res = linprog(
        c=np.concatenate([d["c1"], d["c2"]]),
        A_ub=np.vstack([a[fin_hi], -a[fin_lo]]),
        b_ub=np.concatenate([d["hi"][fin_hi], -d["lo"][fin_lo]]),
        A_eq=np.hstack([-d["b"], np.eye(d["n2"])]),
        b_eq=np.zeros(d["n2"]),
        bounds=list(zip(d["lb1"], d["ub1"], strict=True)) + [(None, None)] * d["n2"],
        method="highs",
    )
    assert res.status == 0
    assert sol.objective == pytest.approx(res.fun, abs=1e-5, rel=1e-6)
    xv = np.concatenate([sol.value(x), sol.value(y)])
    assert xv.shape == (n,)
    # primal feasibility of our solution
    tol = 1e-5
    assert np.all(a @ xv <= d["hi"] + tol) and np.all(a @ xv >= d["lo"] - tol)
    np.testing.assert_allclose(sol.value(y), d["b"] @ sol.value(x), atol=tol)


@pytest.mark.parametrize("solver", ["auto", *SOLVERS])
def test_infeasible_lp(solver: str) -> None:
    m = Model()
    x = m.add_variables("x", 2, cost=[1.0, 1.0])  # x >= 0
    m.add_constraints("neg", (x, np.ones((1, 2))), ub=-1.0)
    sol = m.solve(solver)
    assert sol.status is SolveStatus.INFEASIBLE
    assert not sol.ok
    assert np.isnan(sol.objective)
    assert np.isnan(sol.dual(m.con_blocks["neg"])).all()


@pytest.mark.parametrize("solver", SOLVERS)
def test_unbounded_lp(solver: str) -> None:
    m = Model()
    x = m.add_variables("x", 2, lb=[0.0, -np.inf], cost=[-1.0, 0.0])
    m.add_constraints("r", (x, np.array([[1.0, -1.0]])), ub=1.0)
    sol = m.solve(solver)
    assert sol.status is SolveStatus.UNBOUNDED
    assert np.isnan(sol.objective)


def test_limits_give_limit_statuses() -> None:
    rng = np.random.default_rng(5)
    n, k = 400, 200
    m = Model()
    x = m.add_variables("x", n, ub=10.0, cost=-rng.random(n))
    m.add_constraints("c", (x, sp.random_array((k, n), density=0.05, rng=rng)), ub=5.0)
    highs_it = m.solve("highs", options={"simplex_iteration_limit": 1, "presolve": "off"})
    assert highs_it.status is SolveStatus.ITERATION_LIMIT
    clar_it = m.solve("clarabel", options={"max_iter": 1})
    assert clar_it.status is SolveStatus.ITERATION_LIMIT
    # options are per solve: the live HiGHS instance gets its defaults back
    full = m.solve("highs")
    assert full.status is SolveStatus.OPTIMAL
    assert m.solve("clarabel").status is SolveStatus.OPTIMAL
    assert m.solve("clarabel").objective == pytest.approx(full.objective, rel=1e-6)


def test_objective_offset_and_empty_constraint_set() -> None:
    m = Model()
    x = m.add_variables("x", 3, lb=[1.0, -2.0, 0.0], ub=[4.0, 5.0, 1.0], cost=[1.0, -1.0, 0.0])
    m.add_objective_offset(7.5)
    for solver in SOLVERS:
        sol = m.solve(solver)
        assert sol.status is SolveStatus.OPTIMAL
        assert sol.objective == pytest.approx(1.0 - 5.0 + 7.5, abs=1e-6)
        np.testing.assert_allclose(sol.value(x)[:2], [1.0, 5.0], atol=1e-6)
        np.testing.assert_allclose(sol.reduced_cost(x), [1.0, -1.0, 0.0], atol=1e-6)
