"""Clarabel back end (LP, diagonal QP and second-order cones).

Clarabel solves ``min 0.5 x'Px + q'x  s.t.  A x + s = b, s in K``. The model is mapped to

====================  =========================  ======================  ==========
segment               rows of ``A``              ``b``                   cone
====================  =========================  ======================  ==========
equality rows         ``A_lin[eq]``              ``lb[eq]``              zero
fixed variables       ``I[fix]``                 ``col_lb[fix]``         zero
row upper sides       ``A_lin[up]``              ``ub[up]``              nonnegative
row lower sides       ``-A_lin[lo]``             ``-lb[lo]``             nonnegative
column upper bounds   ``I[cup]``                 ``col_ub[cup]``         nonnegative
column lower bounds   ``-I[clo]``                ``-col_lb[clo]``        nonnegative
cones                 ``-S``                     ``h``                   SOC
====================  =========================  ======================  ==========

With multipliers ``z`` the sensitivity of the optimum to ``b`` is ``-z``, which gives the
tsodso convention (d obj*/d rhs): ``-z`` for the ``A``/``I`` segments and ``+z`` for the
negated lower-side segments.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import clarabel
import numpy as np
import scipy.sparse as sp

from tsodso.opt.solution import Solution
from tsodso.opt.status import SolveStatus, status_from_clarabel

if TYPE_CHECKING:
    from tsodso.opt.model import Model

__all__ = ["ClarabelBackend"]

_SEGMENTS = ("eq", "fix", "up", "lo", "cup", "clo")


def _selector(idx: np.ndarray, n: int, sign: float) -> sp.csr_array:
    """Rows ``sign * e_idx'`` as a sparse ``len(idx) x n`` matrix."""
    k = idx.size
    return sp.csr_array((np.full(k, sign), idx, np.arange(k + 1, dtype=np.int64)), shape=(k, n))


class ClarabelBackend:
    """Keeps the assembled ``P, A, cones`` and re-solves with updated ``q``/``b``."""

    name = "clarabel"

    def __init__(self, model: Model) -> None:
        self._model = model
        self._solver: Any = None
        self._settings_key: Any = None
        self._assemble(self._index_sets())

    # ------------------------------------------------------------- assembly
    def _index_sets(self) -> dict[str, np.ndarray]:
        lb, ub, _, _ = self._model._columns()
        rlb, rub = self._model._rows()
        row_eq = rlb == rub
        col_fix = lb == ub
        return {
            "eq": np.flatnonzero(row_eq),
            "fix": np.flatnonzero(col_fix),
            "up": np.flatnonzero(np.isfinite(rub) & ~row_eq),
            "lo": np.flatnonzero(np.isfinite(rlb) & ~row_eq),
            "cup": np.flatnonzero(np.isfinite(ub) & ~col_fix),
            "clo": np.flatnonzero(np.isfinite(lb) & ~col_fix),
        }

    def _assemble(self, sets: dict[str, np.ndarray]) -> None:
        model = self._model
        _, _, _, qdiag = model._columns()
        a_lin = model._linear_matrix().tocsr()
        s_mat, _, cone_specs = model._soc_data()
        n = model.num_vars
        blocks = [
            a_lin[sets["eq"]],
            _selector(sets["fix"], n, 1.0),
            a_lin[sets["up"]],
            -a_lin[sets["lo"]],
            _selector(sets["cup"], n, 1.0),
            _selector(sets["clo"], n, -1.0),
            -s_mat.tocsr(),
        ]
        a = sp.vstack(blocks, format="csc")
        a.sort_indices()
        nz = np.flatnonzero(qdiag)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(qdiag != 0, out=indptr[1:])
        p = sp.csc_array((qdiag[nz], nz, indptr), shape=(n, n))
        n_zero = sets["eq"].size + sets["fix"].size
        n_nonneg = sum(sets[key].size for key in ("up", "lo", "cup", "clo"))
        cones: list[Any] = []
        if n_zero:
            cones.append(clarabel.ZeroConeT(n_zero))
        if n_nonneg:
            cones.append(clarabel.NonnegativeConeT(n_nonneg))
        for k, dim in cone_specs:
            cones.extend([clarabel.SecondOrderConeT(dim)] * k)
        self._sets = sets
        self._a, self._p, self._cones = a, p, cones
        self._solver = None

    def _vectors(self) -> tuple[np.ndarray, np.ndarray]:
        lb, ub, cost, _ = self._model._columns()
        rlb, rub = self._model._rows()
        _, h, _ = self._model._soc_data()
        s = self._sets
        b = np.concatenate(
            [
                rlb[s["eq"]],
                lb[s["fix"]],
                rub[s["up"]],
                -rlb[s["lo"]],
                ub[s["cup"]],
                -lb[s["clo"]],
                h,
            ]
        )
        return np.array(cost, dtype=np.float64), b

    # ---------------------------------------------------- model change hooks
    # q and b are recomputed from the model at every solve, nothing to do here.
    def cost_changed(self, start: int, values: np.ndarray) -> None:
        pass

    def col_bounds_changed(self, start: int, lb: np.ndarray, ub: np.ndarray) -> None:
        pass

    def row_bounds_changed(self, start: int, lb: np.ndarray, ub: np.ndarray) -> None:
        pass

    def free_solver(self) -> None:
        """Drop the Clarabel solver (KKT factorisation, iterates); keep ``P``, ``A``, cones."""
        self._solver = None
        self._settings_key = None

    # ----------------------------------------------------------------- solve
    @staticmethod
    def _settings(
        time_limit: float | None, tol: float | None, verbose: bool, options: dict[str, Any]
    ) -> Any:
        st = clarabel.DefaultSettings()
        st.verbose = bool(verbose)
        if time_limit is not None:
            st.time_limit = float(time_limit)
        if tol is not None:
            st.tol_feas = st.tol_gap_abs = st.tol_gap_rel = float(tol)
        for key, value in options.items():
            if not hasattr(st, key):
                raise ValueError(f"unknown Clarabel setting {key!r}")
            setattr(st, key, value)
        return st

    def solve(
        self,
        *,
        t0: float,
        time_limit: float | None,
        tol: float | None,
        verbose: bool,
        options: dict[str, Any],
    ) -> Solution:
        sets = self._index_sets()
        if any(not np.array_equal(sets[key], self._sets[key]) for key in _SEGMENTS):
            # A bound switched between finite/infinite or equality/inequality: new structure.
            self._assemble(sets)
        q, b = self._vectors()
        key = (time_limit, tol, bool(verbose), repr(sorted(options.items())))
        t1 = time.perf_counter()  # Clarabel's own setup (constructor / update) is solve time
        solver = self._solver
        if solver is not None and key == self._settings_key and solver.is_data_update_allowed():
            solver.update(q=q, b=b)
        else:
            settings = self._settings(time_limit, tol, verbose, options)
            solver = clarabel.DefaultSolver(self._p, q, self._a, b, self._cones, settings)
            self._solver, self._settings_key = solver, key
        sol = solver.solve()
        t2 = time.perf_counter()

        status = status_from_clarabel(sol.status)
        model = self._model
        n, m = model.num_vars, model.num_cons
        n_soc = b.size - sum(self._sets[k].size for k in _SEGMENTS)
        if status is SolveStatus.OPTIMAL:
            x = np.asarray(sol.x, dtype=np.float64)
            z = np.asarray(sol.z, dtype=np.float64)
            row_dual, col_dual, soc_dual = self._duals(z, n, m)
            objective = float(sol.obj_val) + model.objective_offset
        else:
            x, col_dual = np.full(n, np.nan), np.full(n, np.nan)
            row_dual, soc_dual = np.full(m, np.nan), np.full(n_soc, np.nan)
            objective = float("nan")
        return Solution(
            status=status,
            objective=objective,
            x=x,
            row_dual=row_dual,
            col_dual=col_dual,
            soc_dual=soc_dual,
            solver=self.name,
            raw_status=str(sol.status),
            iterations=int(sol.iterations),
            build_s=t1 - t0,
            solve_s=t2 - t1,
        )

    def _duals(self, z: np.ndarray, n: int, m: int) -> tuple[np.ndarray, ...]:
        s = self._sets
        parts: dict[str, np.ndarray] = {}
        offset = 0
        for key in _SEGMENTS:
            size = s[key].size
            parts[key] = z[offset : offset + size]
            offset += size
        row_dual = np.zeros(m)
        row_dual[s["eq"]] = -parts["eq"]
        row_dual[s["up"]] = -parts["up"]
        row_dual[s["lo"]] += parts["lo"]  # "up" and "lo" index sets are each duplicate-free
        col_dual = np.zeros(n)
        col_dual[s["fix"]] = -parts["fix"]
        col_dual[s["cup"]] = -parts["cup"]
        col_dual[s["clo"]] += parts["clo"]
        soc_dual = -z[offset:]
        return row_dual, col_dual, soc_dual
