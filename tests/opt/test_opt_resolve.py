"""Re-solving after set_cost / set_bounds / set_rhs equals a fresh build, without rebuilding."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from tsodso.opt import Model, SolveStatus

SOLVERS = ["highs", "clarabel"]


def network_lp(data: dict) -> tuple[Model, dict]:
    """Transport-like LP: supplies s (bounded), flows f on arcs, demand rows per node."""
    m = Model("net")
    s = m.add_variables("s", data["n_nodes"], lb=data["s_lb"], ub=data["s_ub"], cost=data["c_s"])
    f = m.add_variables("f", data["n_arcs"], lb=-data["cap"], ub=data["cap"], cost=data["c_f"])
    bal = m.add_constraints(
        "bal", [(s, 1.0), (f, -data["inc"])], lb=data["demand"], ub=data["demand"]
    )
    lim = m.add_constraints("lim", (f, data["lim_a"]), lb=data["lim_lb"], ub=data["lim_ub"])
    return m, {"s": s, "f": f, "bal": bal, "lim": lim}


def make_data(seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    n_nodes = 30
    frm = np.arange(n_nodes)
    to = (frm + 1) % n_nodes
    extra = rng.integers(0, n_nodes, size=(20, 2))
    extra = extra[extra[:, 0] != extra[:, 1]]
    frm, to = np.concatenate([frm, extra[:, 0]]), np.concatenate([to, extra[:, 1]])
    n_arcs = frm.size
    inc = sp.csr_array(
        (
            np.concatenate([np.ones(n_arcs), -np.ones(n_arcs)]),
            (np.concatenate([frm, to]), np.concatenate([np.arange(n_arcs)] * 2)),
        ),
        shape=(n_nodes, n_arcs),
    )
    lim_a = sp.random_array((8, n_arcs), density=0.2, rng=rng, format="csr")
    return {
        "n_nodes": n_nodes,
        "n_arcs": n_arcs,
        "inc": inc,
        "s_lb": 0.0,
        "s_ub": rng.uniform(5, 20, n_nodes),
        "c_s": rng.uniform(10, 50, n_nodes),
        "cap": rng.uniform(2, 10, n_arcs),
        "c_f": rng.uniform(0.01, 0.1, n_arcs),
        "demand": rng.uniform(1, 8, n_nodes),
        "lim_a": lim_a,
        "lim_lb": -rng.uniform(5, 10, 8),
        "lim_ub": rng.uniform(5, 10, 8),
    }


def assert_same(a, b, h: dict, atol: float) -> None:
    assert a.status is SolveStatus.OPTIMAL and b.status is SolveStatus.OPTIMAL
    assert a.objective == pytest.approx(b.objective, abs=atol, rel=1e-8)
    # objectives are unique; the dual of the balance rows (nodal prices) is too here
    np.testing.assert_allclose(a.dual(h["bal"]), b.dual(h["bal"]), atol=atol * 100)


def _options(solver: str) -> dict:
    return {"tol": 1e-10} if solver == "clarabel" else {}


@pytest.mark.parametrize("solver", SOLVERS)
def test_resolve_after_updates_equals_fresh_build(solver: str) -> None:
    data = make_data()
    m, h = network_lp(data)
    first = m.solve(solver, **_options(solver))
    assert first.ok
    backend = m._backends[solver]
    live = backend._h if solver == "highs" else backend._solver

    rng = np.random.default_rng(1)
    new = dict(data)
    new["c_s"] = data["c_s"] * rng.uniform(0.5, 1.5, data["n_nodes"])
    new["demand"] = data["demand"] * 1.1
    new["s_ub"] = data["s_ub"] * 0.9
    new["lim_ub"] = data["lim_ub"] * 0.5
    m.set_cost(h["s"], new["c_s"])
    m.set_rhs(h["bal"], new["demand"], new["demand"])
    m.set_bounds(h["s"], ub=new["s_ub"])
    m.set_rhs(h["lim"], ub=new["lim_ub"])  # lb unchanged
    again = m.solve(solver, **_options(solver))

    # the same back end and live solver object were reused (no rebuild)
    assert m._backends[solver] is backend
    assert (backend._h if solver == "highs" else backend._solver) is live

    fresh_model, fh = network_lp(new)
    fresh = fresh_model.solve(solver, **_options(solver))
    assert_same(again, fresh, fh, atol=1e-6)
    assert abs(again.objective - first.objective) > 1.0  # the update really changed things


def test_highs_warm_start_uses_fewer_iterations() -> None:
    data = make_data(2)
    m, h = network_lp(data)
    m.solve("highs")
    c_new = data["c_s"] * np.random.default_rng(9).uniform(0.8, 1.2, data["n_nodes"])
    m.set_cost(h["s"], c_new)
    warm = m.solve("highs")
    cold_model, _ = network_lp({**data, "c_s": c_new})
    cold = cold_model.solve("highs", options={"presolve": "off"})
    assert warm.objective == pytest.approx(cold.objective, rel=1e-9)
    assert 0 < warm.iterations < cold.iterations / 2


def test_clarabel_structure_change_via_rhs_rebuilds_correctly() -> None:
    """Turning an equality into an inequality (and infinite into finite) changes Clarabel's
    cone structure; the back end must notice and re-assemble."""
    data = make_data(3)
    m, h = network_lp(data)
    assert m.solve("clarabel").ok
    m.set_rhs(h["bal"], lb=data["demand"], ub=np.inf)  # equality -> ">="
    m.set_rhs(h["lim"], lb=-np.inf)
    m.set_bounds(h["s"], ub=np.inf)
    got = m.solve("clarabel", tol=1e-10)
    new = {**data, "lim_lb": -np.inf, "s_ub": np.inf}
    fresh_model, fh = network_lp(new)
    fresh_model.set_rhs(fh["bal"], lb=data["demand"], ub=np.inf)
    ref = fresh_model.solve("highs")
    assert got.objective == pytest.approx(ref.objective, rel=1e-7)
    np.testing.assert_allclose(got.dual(h["bal"]), ref.dual(fh["bal"]), atol=1e-5)


@pytest.mark.parametrize("solver", SOLVERS)
def test_rhs_and_bound_kind_changes(solver: str) -> None:
    """Equality -> range, infinite -> finite and fixed -> free changes on a live model."""
    m = Model()
    x = m.add_variables("x", 2, lb=[-np.inf, 3.0], ub=[np.inf, 3.0], cost=[-1.0, -1.0])
    r = m.add_constraints("r", (x, np.array([[1.0, 0.0]])), lb=1.0, ub=1.0)
    s = m.add_constraints("s", (x, np.array([[1.0, 1.0]])), lb=-np.inf, ub=np.inf)
    sol = m.solve(solver)
    assert sol.objective == pytest.approx(-4.0, abs=1e-6)
    np.testing.assert_allclose(sol.reduced_cost(x), [0.0, -1.0], atol=1e-6)
    m.set_rhs(r, lb=0.0, ub=2.0)  # equality -> range: x0 = 2
    sol = m.solve(solver)
    assert sol.objective == pytest.approx(-5.0, abs=1e-6)
    np.testing.assert_allclose(sol.dual(r), [-1.0], atol=1e-6)
    m.set_rhs(s, ub=4.0)  # free row -> finite upper side: x0 + x1 <= 4 -> x0 = 1
    m.set_bounds(x, lb=[-np.inf, 0.0], ub=[np.inf, 10.0])  # fixed -> free-ish
    sol = m.solve(solver)
    assert sol.objective == pytest.approx(-4.0, abs=1e-6)
    np.testing.assert_allclose(sol.dual(s), [-1.0], atol=1e-6)
    m.set_rhs(s, ub=np.inf)  # and back to infinite: x0 = 2, x1 = 10
    sol = m.solve(solver)
    assert sol.objective == pytest.approx(-12.0, abs=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_structural_change_after_solve_is_picked_up(solver: str) -> None:
    m = Model()
    x = m.add_variables("x", 2, cost=[1.0, 2.0])
    m.add_constraints("d", (x, np.ones((1, 2))), lb=3.0, ub=3.0)
    assert m.solve(solver).objective == pytest.approx(3.0, abs=1e-6)
    y = m.add_variables("y", 1, ub=2.0, cost=0.5)  # cheaper unit, not yet in balance
    assert m.solve(solver).objective == pytest.approx(3.0, abs=1e-6)
    m.add_constraints("cap", [(x, np.array([[1.0, 0.0]])), (y, np.array([[1.0]]))], ub=1.0)
    sol = m.solve(solver)
    np.testing.assert_allclose(sol.value(x), [1.0, 2.0], atol=1e-6)
    assert sol.objective == pytest.approx(5.0, abs=1e-6)
    np.testing.assert_allclose(sol.value(y), [0.0], atol=1e-6)
    m.add_quadratic_cost(x, [2.0, 0.0])  # + x0^2 -> min x0^2 - x0 + 6 at x0 = 0.5
    sol = m.solve(solver)
    assert sol.objective == pytest.approx(5.75, abs=1e-6)
    np.testing.assert_allclose(sol.value(x), [0.5, 2.5], atol=1e-6)


@pytest.mark.parametrize("solver", SOLVERS)
def test_set_cost_shape_checked_and_highs_model_unchanged(solver: str) -> None:
    m = Model()
    x = m.add_variables("x", 3, ub=1.0, cost=[-1.0, -2.0, -3.0])
    base = m.solve(solver)
    with pytest.raises(ValueError):
        m.set_cost(x, [1.0, 2.0])
    with pytest.raises(ValueError, match="lb > ub"):
        m.set_bounds(x, lb=2.0)
    again = m.solve(solver)
    assert again.objective == pytest.approx(base.objective, abs=1e-6)
    m.set_cost(x, 1.0)
    assert m.solve(solver).objective == pytest.approx(0.0, abs=1e-6)


def test_set_quadratic_cost_equals_fresh_build():
    """Replacing a Hessian diagonal keeps the model and equals building it with the new one."""
    def build(q: float) -> tuple[Model, object]:
        m = Model("qp")
        x = m.add_variables("x", 3, lb=-10, ub=10, cost=[1.0, -2.0, 0.5])
        m.add_constraints("sum", (x, np.ones((1, 3))), lb=1.0, ub=1.0)
        m.add_quadratic_cost(x, q)
        return m, x

    model, x = build(1.0)
    model.solve("clarabel")
    model.set_quadratic_cost(x, [4.0, 4.0, 4.0])
    fresh, y = build(4.0)
    for solver in SOLVERS:
        a, b = model.solve(solver), fresh.solve(solver)
        np.testing.assert_allclose(a.value(x), b.value(y), atol=1e-7)
        assert a.objective == pytest.approx(b.objective, rel=1e-8)
    with pytest.raises(ValueError, match="convexity"):
        model.set_quadratic_cost(x, -1.0)


@pytest.mark.parametrize("solver", SOLVERS)
def test_free_solvers_then_resolve_equals_fresh_build(solver: str) -> None:
    """Freeing the solvers' state keeps the model: later changes and solves still hold."""
    data = make_data(3)
    model, h = network_lp(data)
    model.solve(solver, **_options(solver))
    model.free_solvers()
    if solver == "clarabel":
        assert model._backends["clarabel"]._solver is None  # noqa: SLF001 - the memory is gone
    else:
        assert "highs" not in model._backends  # noqa: SLF001
    model.set_rhs(h["bal"], data["demand"] * 1.1, data["demand"] * 1.1)
    fresh_data = dict(data, demand=data["demand"] * 1.1)
    fresh, fh = network_lp(fresh_data)
    assert_same(model.solve(solver, **_options(solver)), fresh.solve(solver, **_options(solver)),
                fh, atol=1e-6)
