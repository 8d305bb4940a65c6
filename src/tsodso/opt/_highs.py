"""HiGHS back end (LP and diagonal QP)."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import highspy
import numpy as np

from tsodso.opt.solution import Solution
from tsodso.opt.status import SolveStatus, status_from_highs

if TYPE_CHECKING:
    from tsodso.opt.model import Model

__all__ = ["HighsBackend", "HighsInstance", "RunResult", "solve_options"]

_TOL_OPTIONS = (
    "primal_feasibility_tolerance",
    "dual_feasibility_tolerance",
    "ipm_optimality_tolerance",
)
_FEASIBLE = 2  # kSolutionStatusFeasible


def _new_highs() -> Any:
    """A HiGHS instance with logging switched off before anything is logged.

    ``highspy.Highs()`` enables callbacks in its constructor, which prints the version banner
    even before ``output_flag`` can be cleared; the core class does not.
    """
    core = getattr(highspy, "_Highs", None)
    h = core() if core is not None else highspy.Highs()
    h.setOptionValue("output_flag", False)
    return h


def _get_option(h: Any, name: str) -> Any:
    value = h.getOptionValue(name)
    if isinstance(value, tuple):  # core class returns (status, value)
        value = value[1]
    return value


def _i32(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.int32)


def _f64(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float64)


class HighsInstance:
    """One live ``Highs`` object holding an LP/QP given as arrays (a whole model or a part).

    Keeps the options a solve changed so the next solve starts from the defaults again, and
    the simplex basis between solves (warm start after cost, bound or rhs changes).
    """

    def __init__(self, a: Any, cost: np.ndarray, lb: np.ndarray, ub: np.ndarray,
                 row_lb: np.ndarray, row_ub: np.ndarray, qdiag: np.ndarray) -> None:
        m, n = a.shape
        if max(a.nnz, n + 1) >= 2**31:
            raise ValueError("model too large for 32-bit HiGHS indices")
        h = _new_highs()
        status = h.passModel(
            n,
            m,
            a.nnz,
            int(highspy.MatrixFormat.kColwise),
            int(highspy.ObjSense.kMinimize),
            0.0,  # the objective offset is added by tsodso
            _f64(cost),
            _f64(lb),
            _f64(ub),
            _f64(row_lb),
            _f64(row_ub),
            _i32(a.indptr),
            _i32(a.indices),
            _f64(a.data),
            np.zeros(n, dtype=np.int32),  # all continuous
        )
        _check(status, "passModel")
        nz = np.flatnonzero(qdiag)
        if nz.size:
            start = np.zeros(n + 1, dtype=np.int32)
            np.cumsum(qdiag != 0, out=start[1:])
            status = h.passHessian(
                n,
                nz.size,
                int(highspy.HessianFormat.kTriangular),
                start,
                _i32(nz),
                _f64(qdiag[nz]),
            )
            _check(status, "passHessian")
        self.h = h
        self.n, self.m = n, m
        self._defaults: dict[str, Any] = {}
        self._data = [_f64(v).copy() for v in (cost, lb, ub, row_lb, row_ub)]

    def update(self, cost: np.ndarray, lb: np.ndarray, ub: np.ndarray, row_lb: np.ndarray,
               row_ub: np.ndarray) -> None:
        """Give the instance new costs and bounds, passing HiGHS only the entries that
        differ from what it holds (the basis stays: the next run warm-starts)."""
        h = self.h
        old_cost, old_lb, old_ub, old_rlb, old_rub = self._data
        idx = _i32(np.flatnonzero(cost != old_cost))
        if idx.size:
            _check(h.changeColsCost(idx.size, idx, _f64(cost[idx])), "changeColsCost")
        idx = _i32(np.flatnonzero((lb != old_lb) | (ub != old_ub)))
        if idx.size:
            _check(h.changeColsBounds(idx.size, idx, _f64(lb[idx]), _f64(ub[idx])),
                   "changeColsBounds")
        idx = _i32(np.flatnonzero((row_lb != old_rlb) | (row_ub != old_rub)))
        if idx.size:
            _check(h.changeRowsBounds(idx.size, idx, _f64(row_lb[idx]), _f64(row_ub[idx])),
                   "changeRowsBounds")
        self._data = [cost, lb, ub, row_lb, row_ub]

    def set_options(self, opts: dict[str, Any]) -> None:
        """Restore everything a previous solve changed, then apply ``opts``."""
        h = self.h
        for key, default in self._defaults.items():
            if key not in opts:
                h.setOptionValue(key, default)
        for key, value in opts.items():
            if key not in self._defaults:
                self._defaults[key] = _get_option(h, key)
            _check(h.setOptionValue(key, value), f"setOptionValue({key!r})")

    def run(self) -> RunResult:
        """Solve; the primal point if feasible, duals if optimal (``nan`` otherwise)."""
        h = self.h
        t1 = time.perf_counter()
        run_status = h.run()
        solve_s = time.perf_counter() - t1
        model_status = h.getModelStatus()
        status = status_from_highs(model_status)
        if status is SolveStatus.OPTIMAL and run_status == highspy.HighsStatus.kError:
            status = SolveStatus.ERROR
        info = h.getInfo()
        iterations = sum(
            max(0, int(getattr(info, key, 0)))
            for key in ("simplex_iteration_count", "ipm_iteration_count", "qp_iteration_count")
        )
        n, m = self.n, self.m
        x, col_dual, row_dual = np.full(n, np.nan), np.full(n, np.nan), np.full(m, np.nan)
        objective = float("nan")
        if status is SolveStatus.OPTIMAL or info.primal_solution_status == _FEASIBLE:
            sol = h.getSolution()
            if sol.value_valid or not n:
                x = np.asarray(sol.col_value, dtype=np.float64).reshape(n)
            if status is SolveStatus.OPTIMAL and (sol.dual_valid or not n):
                col_dual = np.asarray(sol.col_dual, dtype=np.float64).reshape(n)
                row_dual = np.asarray(sol.row_dual, dtype=np.float64).reshape(m)
        if status is SolveStatus.OPTIMAL:
            objective = float(h.getObjectiveValue())
        return RunResult(status, str(getattr(model_status, "name", model_status)), objective,
                         x, col_dual, row_dual, iterations, solve_s)


@dataclass
class RunResult:
    """What one ``Highs.run`` gave (objective without tsodso's constant offset)."""

    status: SolveStatus
    raw_status: str
    objective: float
    x: np.ndarray
    col_dual: np.ndarray
    row_dual: np.ndarray
    iterations: int
    solve_s: float


def solve_options(time_limit: float | None, tol: float | None, verbose: bool,
                  options: dict[str, Any]) -> dict[str, Any]:
    """HiGHS options of one solve from tsodso's arguments."""
    opts: dict[str, Any] = {"output_flag": bool(verbose)}
    if time_limit is not None:
        opts["time_limit"] = float(time_limit)
    if tol is not None:
        opts.update(dict.fromkeys(_TOL_OPTIONS, float(tol)))
    opts.update(options)
    return opts


class HighsBackend:
    """Owns a live ``Highs`` instance holding the whole model."""

    name = "highs"

    def __init__(self, model: Model) -> None:
        self._model = model
        lb, ub, cost, qdiag = model._columns()
        row_lb, row_ub = model._rows()
        self._inst = HighsInstance(model._linear_matrix(), cost, lb, ub, row_lb, row_ub, qdiag)
        self._h = self._inst.h

    # ---------------------------------------------------------- live updates
    def cost_changed(self, start: int, values: np.ndarray) -> None:
        idx = np.arange(start, start + values.size, dtype=np.int32)
        _check(self._h.changeColsCost(idx.size, idx, _f64(values)), "changeColsCost")

    def col_bounds_changed(self, start: int, lb: np.ndarray, ub: np.ndarray) -> None:
        idx = np.arange(start, start + lb.size, dtype=np.int32)
        _check(self._h.changeColsBounds(idx.size, idx, _f64(lb), _f64(ub)), "changeColsBounds")

    def row_bounds_changed(self, start: int, lb: np.ndarray, ub: np.ndarray) -> None:
        idx = np.arange(start, start + lb.size, dtype=np.int32)
        _check(self._h.changeRowsBounds(idx.size, idx, _f64(lb), _f64(ub)), "changeRowsBounds")

    # ----------------------------------------------------------------- solve
    def solve(
        self,
        *,
        t0: float,
        time_limit: float | None,
        tol: float | None,
        verbose: bool,
        options: dict[str, Any],
    ) -> Solution:
        self._inst.set_options(solve_options(time_limit, tol, verbose, options))
        build_s = time.perf_counter() - t0
        r = self._inst.run()
        return Solution(
            status=r.status,
            objective=r.objective + self._model.objective_offset,
            x=r.x,
            row_dual=r.row_dual,
            col_dual=r.col_dual,
            soc_dual=np.empty(0),
            solver=self.name,
            raw_status=r.raw_status,
            iterations=r.iterations,
            build_s=build_s,
            solve_s=r.solve_s,
        )


def _check(status: Any, what: str) -> None:
    if status == highspy.HighsStatus.kError:
        raise RuntimeError(f"HiGHS {what} failed")
