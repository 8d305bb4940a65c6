"""HiGHS back end (LP and diagonal QP)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import highspy
import numpy as np

from tsodso.opt.solution import Solution
from tsodso.opt.status import SolveStatus, status_from_highs

if TYPE_CHECKING:
    from tsodso.opt.model import Model

__all__ = ["HighsBackend"]

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


class HighsBackend:
    """Owns a live ``Highs`` instance holding the whole model."""

    name = "highs"

    def __init__(self, model: Model) -> None:
        self._model = model
        lb, ub, cost, qdiag = model._columns()
        row_lb, row_ub = model._rows()
        a = model._linear_matrix()
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
        self._h = h
        self._n, self._m = n, m
        self._defaults: dict[str, Any] = {}

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
    def _set_options(self, opts: dict[str, Any]) -> None:
        h = self._h
        # Restore everything a previous solve changed, then apply this solve's options.
        for key, default in self._defaults.items():
            if key not in opts:
                h.setOptionValue(key, default)
        for key, value in opts.items():
            if key not in self._defaults:
                self._defaults[key] = _get_option(h, key)
            _check(h.setOptionValue(key, value), f"setOptionValue({key!r})")

    def solve(
        self,
        *,
        t0: float,
        time_limit: float | None,
        tol: float | None,
        verbose: bool,
        options: dict[str, Any],
    ) -> Solution:
        opts: dict[str, Any] = {"output_flag": bool(verbose)}
        if time_limit is not None:
            opts["time_limit"] = float(time_limit)
        if tol is not None:
            opts.update(dict.fromkeys(_TOL_OPTIONS, float(tol)))
        opts.update(options)
        self._set_options(opts)
        h = self._h
        t1 = time.perf_counter()
        run_status = h.run()
        t2 = time.perf_counter()

        model_status = h.getModelStatus()
        status = status_from_highs(model_status)
        if status is SolveStatus.OPTIMAL and run_status == highspy.HighsStatus.kError:
            status = SolveStatus.ERROR
        info = h.getInfo()
        iterations = sum(
            max(0, int(getattr(info, key, 0)))
            for key in ("simplex_iteration_count", "ipm_iteration_count", "qp_iteration_count")
        )
        n, m = self._n, self._m
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
            objective = float(h.getObjectiveValue()) + self._model.objective_offset
        return Solution(
            status=status,
            objective=objective,
            x=x,
            row_dual=row_dual,
            col_dual=col_dual,
            soc_dual=np.empty(0),
            solver=self.name,
            raw_status=str(getattr(model_status, "name", model_status)),
            iterations=iterations,
            build_s=t1 - t0,
            solve_s=t2 - t1,
        )


def _check(status: Any, what: str) -> None:
    if status == highspy.HighsStatus.kError:
        raise RuntimeError(f"HiGHS {what} failed")
