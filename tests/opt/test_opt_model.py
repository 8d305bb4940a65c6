"""Model assembly, validation and status mapping."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import clarabel
import highspy
import numpy as np
import pytest
import scipy.sparse as sp

import tsodso.opt
from tsodso.opt import (
    ConBlock,
    Model,
    SolveStatus,
    VarBlock,
    status_from_clarabel,
    status_from_highs,
)


def test_blocks_know_their_ranges() -> None:
    m = Model()
    a = m.add_variables("a", 3)
    b = m.add_variables("b", 4, lb=-1.0, ub=[1, 2, 3, 4], cost=np.arange(4.0))
    assert isinstance(b, VarBlock)
    assert (a.start, a.stop, len(a)) == (0, 3, 3)
    assert (b.start, b.stop, len(b)) == (3, 7, 4)
    np.testing.assert_array_equal(b.index, [3, 4, 5, 6])
    assert m.num_vars == 7 and m.var_blocks == {"a": a, "b": b}
    c1 = m.add_constraints("c1", (a, 1.0), ub=1.0)
    c2 = m.add_constraints("c2", (b, np.ones((2, 4))), lb=0.0)
    assert isinstance(c2, ConBlock)
    assert (c1.start, len(c1), c2.start, len(c2)) == (0, 3, 3, 2)
    assert m.num_cons == 5
    lb, ub, cost, qd = m._columns()
    np.testing.assert_array_equal(lb, [0, 0, 0, -1, -1, -1, -1])
    np.testing.assert_array_equal(ub, [np.inf] * 3 + [1, 2, 3, 4])
    np.testing.assert_array_equal(cost, [0, 0, 0, 0, 1, 2, 3])
    np.testing.assert_array_equal(qd, 0.0)


def test_coefficient_forms_assemble_the_same_matrix() -> None:
    rng = np.random.default_rng(0)
    dense = rng.normal(size=(3, 3))
    diag = np.array([1.0, -2.0, 3.0])
    forms = {
        "sparse": [(sp.csr_array(dense),), (sp.dia_array(np.diag(diag)),)],
        "dense": [(dense,), (np.diag(diag),)],
        "mixed": [(sp.coo_matrix(dense),), (diag,)],
    }
    mats = []
    for (d_coef,), (g_coef,) in forms.values():
        m = Model()
        x = m.add_variables("x", 3)
        y = m.add_variables("y", 3)
        m.add_constraints("c", [(x, d_coef), (y, g_coef)], lb=0.0, ub=1.0)
        mats.append(m._linear_matrix().toarray())
    expected = np.hstack([dense, np.diag(diag)])
    for mat in mats:
        np.testing.assert_allclose(mat, expected)


def test_scalar_coefficient_and_duplicates_are_summed() -> None:
    m = Model()
    x = m.add_variables("x", 2)
    y = m.add_variables("y", 2)
    m.add_constraints("c", [(x, 2.0), (y, -1.0), (x, np.array([0.5, 0.25]))], ub=0.0)
    np.testing.assert_allclose(
        m._linear_matrix().toarray(), [[2.5, 0.0, -1.0, 0.0], [0.0, 2.25, 0.0, -1.0]]
    )
    # explicit zeros are dropped
    m.add_constraints("z", (x, np.zeros((1, 2))), ub=1.0)
    assert m._linear_matrix().nnz == 4


def test_infinite_bound_threshold_and_bound_validation() -> None:
    m = Model()
    x = m.add_variables("x", 2, lb=-1e30, ub=[1e25, 5.0])
    lb, ub, _, _ = m._columns()
    assert np.isneginf(lb).all() and np.isposinf(ub[0]) and ub[1] == 5.0
    with pytest.raises(ValueError, match="lb > ub"):
        m.add_variables("bad", 2, lb=[0.0, 3.0], ub=2.0)
    with pytest.raises(ValueError, match="NaN"):
        m.add_constraints("nan", (x, 1.0), ub=[1.0, np.nan])
    with pytest.raises(ValueError, match=r"\+inf"):
        m.add_variables("bad2", 1, lb=np.inf)
    with pytest.raises(ValueError, match="length 2"):
        m.add_variables("bad3", 2, cost=[1.0, 2.0, 3.0])


def test_term_validation_errors() -> None:
    m = Model()
    x = m.add_variables("x", 3)
    y = m.add_variables("y", 2)
    with pytest.raises(ValueError, match="columns"):
        m.add_constraints("c", (x, np.ones((2, 2))), ub=1.0)
    with pytest.raises(ValueError, match="disagree"):
        m.add_constraints("c", [(x, np.ones((3, 3))), (y, 1.0)], ub=1.0)
    with pytest.raises(ValueError, match="length"):
        m.add_constraints("c", (x, np.ones(2)), ub=1.0)
    with pytest.raises(ValueError, match="at least one"):
        m.add_constraints("c", [], ub=1.0)
    with pytest.raises(ValueError, match="length 3"):
        m.add_constraints("c", (x, 1.0), ub=[1.0, 2.0])
    other = Model().add_variables("x", 3)
    with pytest.raises(ValueError, match="another model"):
        m.add_constraints("c", (other, 1.0), ub=1.0)
    with pytest.raises(ValueError, match="non-finite"):
        m.add_constraints("c", (x, np.array([1.0, np.inf, 0.0])), ub=1.0)
    m.add_constraints("ok", (x, 1.0), ub=1.0)
    with pytest.raises(ValueError, match="duplicate"):
        m.add_constraints("ok", (x, 1.0), ub=1.0)
    with pytest.raises(ValueError, match="duplicate"):
        m.add_variables("x", 1)
    with pytest.raises(ValueError, match="unknown solver"):
        m.solve("gurobi")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="Clarabel setting"):
        m.solve("clarabel", options={"no_such_setting": 1})


def test_soc_rows_are_interleaved_per_cone() -> None:
    m = Model()
    t = m.add_variables("t", 2)
    x = m.add_variables("x", 4)
    sel0 = sp.csr_array(np.array([[1.0, 0, 0, 0], [0, 0, 1, 0]]))
    sel1 = sp.csr_array(np.array([[0, 1.0, 0, 0], [0, 0, 0, 1]]))
    cone = m.add_soc(
        "c", (t, 1.0), [(x, sel0), (x, sel1)], t_const=[1.0, 2.0], x_const=[[3.0, 4.0], [5.0, 6.0]]
    )
    assert (cone.k, cone.dim, len(cone), cone.rotated) == (2, 3, 6, False)
    s_mat, h, specs = m._soc_data()
    # cone i occupies rows 3i..3i+2 = (t_i, x_{2i}, x_{2i+1})
    expected = np.zeros((6, 6))
    expected[0, 0] = expected[3, 1] = 1.0
    expected[1, 2] = expected[2, 3] = expected[4, 4] = expected[5, 5] = 1.0
    np.testing.assert_array_equal(s_mat.toarray(), expected)
    np.testing.assert_array_equal(h, [1, 3, 4, 2, 5, 6])
    assert specs == [(2, 3)]
    rot = m.add_rotated_soc("r", (t, 1.0), (t, 2.0), [(x, sel0)])
    assert (rot.start, rot.k, rot.dim, rot.rotated) == (6, 2, 3, True)
    assert m.num_cones == 4


def test_highs_status_mapping() -> None:
    s = highspy.HighsModelStatus
    assert status_from_highs(s.kOptimal) is SolveStatus.OPTIMAL
    assert status_from_highs(s.kInfeasible) is SolveStatus.INFEASIBLE
    assert status_from_highs(s.kUnbounded) is SolveStatus.UNBOUNDED
    assert status_from_highs(s.kUnboundedOrInfeasible) is SolveStatus.INFEASIBLE_OR_UNBOUNDED
    assert status_from_highs(s.kIterationLimit) is SolveStatus.ITERATION_LIMIT
    assert status_from_highs(s.kTimeLimit) is SolveStatus.TIME_LIMIT
    assert status_from_highs(s.kSolveError) is SolveStatus.NUMERICAL
    assert status_from_highs(s.kLoadError) is SolveStatus.ERROR
    assert status_from_highs("kOptimal") is SolveStatus.OPTIMAL


def test_clarabel_status_mapping() -> None:
    s = clarabel.SolverStatus
    assert status_from_clarabel(s.Solved) is SolveStatus.OPTIMAL
    # only Clarabel's reduced tolerances met: not optimal (the back end decides from the
    # answer's residuals, see test_clarabel_accuracy.py)
    assert status_from_clarabel(s.AlmostSolved) is SolveStatus.FEASIBLE
    assert status_from_clarabel(s.PrimalInfeasible) is SolveStatus.INFEASIBLE
    assert status_from_clarabel(s.DualInfeasible) is SolveStatus.UNBOUNDED
    assert status_from_clarabel(s.MaxIterations) is SolveStatus.ITERATION_LIMIT
    assert status_from_clarabel(s.MaxTime) is SolveStatus.TIME_LIMIT
    assert status_from_clarabel(s.NumericalError) is SolveStatus.NUMERICAL
    assert status_from_clarabel(s.InsufficientProgress) is SolveStatus.NUMERICAL
    assert status_from_clarabel(s.Unsolved) is SolveStatus.ERROR
    assert SolveStatus.OPTIMAL == "optimal" and SolveStatus("infeasible").name == "INFEASIBLE"


def test_auto_picks_highs_without_cones_and_clarabel_with() -> None:
    m = Model()
    x = m.add_variables("x", 2, lb=-np.inf, cost=[1.0, 1.0])
    m.add_constraints("c", (x, 1.0), lb=[1.0, 2.0])
    sol = m.solve()
    assert sol.solver == "highs" and sol.objective == pytest.approx(3.0)
    t = m.add_variables("t", 1, ub=10.0)
    m.add_soc("s", (t, 1.0), [(x, np.array([[1.0, 0.0]]))])
    sol = m.solve()
    assert sol.solver == "clarabel" and sol.objective == pytest.approx(3.0, abs=1e-6)


SILENT_SCRIPT = """
import numpy as np
from tsodso.opt import Model
m = Model()
x = m.add_variables("x", 2, cost=[1.0, 1.0])
m.add_constraints("c", (x, np.ones((1, 2))), lb=1.0)
assert m.solve("highs").ok and m.solve("clarabel").ok
"""


def test_solves_print_nothing() -> None:
    # HiGHS prints its banner once per process, so check in a fresh interpreter.
    src = str(pathlib.Path(tsodso.opt.__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([src, os.environ.get("PYTHONPATH", "")])}
    res = subprocess.run(
        [sys.executable, "-c", SILENT_SCRIPT], env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout == "" and res.stderr == ""


def test_solution_accessors_check_block_kind() -> None:
    m = Model()
    x = m.add_variables("x", 2, cost=1.0)
    c = m.add_constraints("c", (x, 1.0), lb=1.0)
    sol = m.solve()
    np.testing.assert_allclose(sol.value(x), [1.0, 1.0])
    np.testing.assert_allclose(sol.dual(c), [1.0, 1.0])
    with pytest.raises(TypeError):
        sol.dual(x)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        sol.value(c)  # type: ignore[arg-type]
    bigger = Model()
    bigger.add_variables("a", 5)
    foreign = bigger.add_variables("b", 1)
    with pytest.raises(ValueError, match="does not belong"):
        sol.value(foreign)
