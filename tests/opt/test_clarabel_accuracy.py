"""Clarabel answers short of its tolerances: accepted, polished or reported, never plain optimal
on Clarabel's reduced tolerances alone (``AlmostSolved``)."""

from __future__ import annotations

import numpy as np
import pytest

from tsodso.opt import Model, SolveStatus
from tsodso.opt import _clarabel as backend

K = 4
L_MAX = 1e-4  # squared current limit of a lightly rated line: u = l/2 ~ 5e-5 against v ~ 1
Q_FIX = 1e-3
V_MAX = 1.1


def rated_lines() -> tuple[Model, dict]:
    """max sum P  s.t.  l v >= P^2 + Q^2, l <= L_MAX, 0.9 <= v <= V_MAX, Q fixed: the
    rotated cones of a branch flow model with u << v. Optimum P = sqrt(L_MAX V_MAX - Q^2)."""
    m = Model("lines")
    p = m.add_variables("P", K, lb=-np.inf, cost=-1.0)
    q = m.add_variables("Q", K, lb=Q_FIX, ub=Q_FIX)
    v = m.add_variables("v", K, lb=0.9, ub=V_MAX)
    lv = m.add_variables("l", K, lb=0.0, ub=L_MAX)
    cone = m.add_rotated_soc("flow", (lv, 0.5), (v, 1.0), [(p, 1.0), (q, 1.0)])
    return m, {"P": p, "v": v, "l": lv, "cone": cone}


P_OPT = np.sqrt(L_MAX * V_MAX - Q_FIX**2)


def test_almost_solved_maps_to_feasible_not_optimal() -> None:
    assert backend.status_from_clarabel("AlmostSolved") is SolveStatus.FEASIBLE
    assert not SolveStatus.FEASIBLE.is_optimal


def test_almost_solved_meeting_the_normal_tolerances_is_optimal() -> None:
    m, h = rated_lines()
    sol = m.solve("clarabel", tol=1e-12)  # out of reach: Clarabel stops at AlmostSolved
    assert sol.raw_status == "AlmostSolved" and sol.attempts == ("AlmostSolved",)
    assert sol.status is SolveStatus.OPTIMAL and sol.ok and not sol.polished
    assert sol.objective == pytest.approx(-K * P_OPT, rel=1e-7)
    assert sol.primal_residual < 1e-8 and sol.dual_residual < 1e-8
    assert 0 <= sol.cost_error < 1e-5 and sol.gap >= 0


def test_polish_rebalances_rotated_cones_and_keeps_the_answer(monkeypatch) -> None:
    ref_model, ref = rated_lines()
    exact = ref_model.solve("clarabel", tol=1e-10)
    assert exact.raw_status == "Solved"
    # nothing short of Solved is accepted: the AlmostSolved answer is polished
    monkeypatch.setattr(backend, "_meets", lambda sol, tol: False)
    monkeypatch.setattr(backend, "COST_TOL", -1.0)
    m, h = rated_lines()
    sol = m.solve("clarabel", tol=1e-12)
    assert sol.attempts[0] == "AlmostSolved" and sol.polished
    assert sol.raw_status == "Solved" and sol.status is SolveStatus.OPTIMAL
    # polished to Clarabel's normal tolerances: 1e-8 absolute on an objective below 1
    assert sol.objective == pytest.approx(-K * P_OPT, abs=1e-7)
    np.testing.assert_allclose(sol.value(h["P"]), P_OPT, rtol=1e-6)
    # the multipliers are mapped back to the model's rows: those of the unpolished solve
    # (to the accuracy of a solve at 1e-8 on these large multipliers, ~50 per unit of l)
    np.testing.assert_allclose(sol.reduced_cost(h["l"]), exact.reduced_cost(ref["l"]),
                               rtol=5e-4, atol=1e-6)
    np.testing.assert_allclose(sol.reduced_cost(h["v"]), exact.reduced_cost(ref["v"]),
                               rtol=5e-4, atol=1e-6)
    np.testing.assert_allclose(sol.cone_dual(h["cone"]), exact.cone_dual(ref["cone"]),
                               rtol=5e-4, atol=1e-6)


def test_boost_maps_each_cone_onto_itself() -> None:
    m, _ = rated_lines()
    m.solve("clarabel", tol=1e-10)
    be = m._backends["clarabel"]
    rng = np.random.default_rng(3)
    s = rng.normal(size=be._a.shape[0])
    t_rows = be._rot
    s[t_rows] = np.abs(s[t_rows]) + 1e-3  # u and v of different sizes
    s[t_rows + 1] = -s[t_rows] + 1e-3
    boost, unboost = be._boosts(s)
    np.testing.assert_allclose((boost @ unboost).toarray(), np.eye(s.size), atol=1e-9)
    for y in (s, rng.normal(size=s.size)):
        by = boost @ y
        # t^2 - y0^2 (the cone's Lorentz form) is preserved; t keeps its sign
        before = y[t_rows] ** 2 - y[t_rows + 1] ** 2
        after = by[t_rows] ** 2 - by[t_rows + 1] ** 2
        np.testing.assert_allclose(after, before, rtol=1e-9, atol=1e-12)
    bs = boost @ s
    u, v = bs[t_rows] + bs[t_rows + 1], bs[t_rows] - bs[t_rows + 1]
    np.testing.assert_allclose(u, v, rtol=1e-6)  # rebalanced at s: u = v
    other = np.setdiff1d(np.arange(s.size), np.concatenate([t_rows, t_rows + 1]))
    np.testing.assert_array_equal(bs[other], s[other])


def test_what_no_polish_fixes_is_feasible_with_its_answer_and_accuracy(monkeypatch) -> None:
    monkeypatch.setattr(backend, "_meets", lambda sol, tol: False)
    monkeypatch.setattr(backend, "COST_TOL", -1.0)
    monkeypatch.setattr(backend, "POLISH", ())
    m, h = rated_lines()
    sol = m.solve("clarabel", tol=1e-12)
    assert sol.status is SolveStatus.FEASIBLE and not sol.ok
    assert sol.raw_status == "AlmostSolved" and sol.attempts == ("AlmostSolved",)
    # the answer is kept, with how far it may be from the optimum
    assert sol.objective == pytest.approx(-K * P_OPT, rel=1e-6)
    assert np.isfinite(sol.value(h["P"])).all() and np.isfinite(sol.reduced_cost(h["l"])).all()
    assert np.isfinite(sol.cost_error) and sol.cost_error >= sol.gap >= 0
    note = sol.accuracy_note("$")
    assert "clarabel ended AlmostSolved" in note and "primal residual" in note
    assert "duality gap" in note and "from the optimum" in note


def test_highs_solutions_carry_no_clarabel_accuracy() -> None:
    m = Model()
    x = m.add_variables("x", 1, lb=0.0, ub=1.0, cost=-1.0)
    sol = m.solve("highs")
    assert sol.ok and sol.value(x)[0] == pytest.approx(1.0)
    assert sol.attempts == () and not sol.polished and np.isnan(sol.cost_error)
