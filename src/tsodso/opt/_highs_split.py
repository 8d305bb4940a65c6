"""HiGHS back end that solves the independent parts of a model one after the other.

A multi-period market without anything linking its periods (no ramps, storage or energy
budgets) is a block-diagonal LP: one block per period. Solved as one LP, the simplex works
on all blocks at once; solved block by block, each solve is small, and blocks with the same
matrix and costs (the same network in every period) share one HiGHS instance, so each
solve starts from the previous block's optimal basis (dual simplex warm start after the
loads change).

The parts are the connected components of the bipartite graph of rows and columns of the
constraint matrix, so splitting is exact: the objective is the sum of the parts' objectives
and every primal value and dual is the one of its own part. Components much smaller than
the largest one, and variables without rows, are solved together as one extra part.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from tsodso.opt._highs import HighsBackend, HighsInstance, solve_options
from tsodso.opt.solution import Solution
from tsodso.opt.status import SolveStatus

if TYPE_CHECKING:
    from tsodso.opt.model import Model

__all__ = ["SplitHighsBackend", "independent_parts"]

_SMALL = 0.1  # components under this fraction of the largest are merged into one part


def independent_parts(a: sp.csc_array) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                np.ndarray]:
    """Order rows and columns of ``a`` by independent part.

    Returns
    -------
    col_order, row_order : numpy.ndarray
        Permutations that make ``a[row_order][:, col_order]`` block diagonal.
    col_bounds, row_bounds : numpy.ndarray
        Part ``k`` holds the permuted columns ``col_bounds[k]:col_bounds[k + 1]`` and rows
        ``row_bounds[k]:row_bounds[k + 1]``. Parts keep the order of their first column,
        so the periods of a period-major model stay in time order.
    """
    m, n = a.shape
    # the bipartite graph without copying: column j's edges are its row indices (+ n);
    # rows get no out-edges (weak connectivity ignores direction)
    indptr = np.concatenate([a.indptr, np.full(m, a.indptr[-1], dtype=a.indptr.dtype)])
    graph = sp.csr_array((np.ones(a.nnz), a.indices + n, indptr), shape=(n + m, n + m))
    _, labels = connected_components(graph, directed=True, connection="weak")
    size = np.bincount(labels)
    has_rows = np.bincount(labels[n:], minlength=len(size)) > 0
    small = (size < _SMALL * size.max()) | ~has_rows
    labels = np.where(small[labels], -1, labels)  # all small components form one part
    uniq, first = np.unique(labels[:n] if n else labels, return_index=True)
    rank = np.full(labels.max() + 2, len(uniq), dtype=np.int64)  # index -1 -> last slot
    rank[uniq] = np.argsort(np.argsort(first))  # part order = order of first column
    part = rank[labels]
    n_parts = int(part.max()) + 1
    col_order = np.argsort(part[:n], kind="stable")
    row_order = np.argsort(part[n:], kind="stable")
    col_bounds = np.searchsorted(part[:n][col_order], np.arange(n_parts + 1))
    row_bounds = np.searchsorted(part[n:][row_order], np.arange(n_parts + 1))
    return col_order, row_order, col_bounds, row_bounds


class _Part:
    """Columns and rows (global indices) of one part, and the instance that solves it."""

    __slots__ = ("cols", "rows", "instance")

    def __init__(self, cols: np.ndarray, rows: np.ndarray, instance: HighsInstance):
        self.cols = cols
        self.rows = rows
        self.instance = instance


class SplitHighsBackend:
    """Solves each independent part of the model with HiGHS (see module docstring).

    A model with one part is handed to :class:`HighsBackend` unchanged.
    """

    name = "highs"

    def __init__(self, model: Model) -> None:
        self._model = model
        self._whole: HighsBackend | None = None
        a = model._linear_matrix()
        if a.shape[0] == 0:  # no rows: nothing to gain
            self._whole = HighsBackend(model)
            self.parts = []
            return
        col_order, row_order, cb, rb = independent_parts(a)
        if len(cb) <= 2 or (len(cb) == 3 and rb[1] == rb[2]):  # one part (+ row-less columns)
            self._whole = HighsBackend(model)
            self.parts: list[_Part] = []
            return
        lb, ub, cost, qdiag = model._columns()
        row_lb, row_ub = model._rows()
        p = sp.csc_array(a[row_order][:, col_order])
        templates: list[tuple[tuple[Any, ...], HighsInstance]] = []
        self.parts = []
        for k in range(len(cb) - 1):
            c0, c1, r0, r1 = cb[k], cb[k + 1], rb[k], rb[k + 1]
            s, e = p.indptr[c0], p.indptr[c1]
            block = sp.csc_array((p.data[s:e], p.indices[s:e] - r0, p.indptr[c0:c1 + 1] - s),
                                 shape=(r1 - r0, c1 - c0))
            cols, rows = col_order[c0:c1], row_order[r0:r1]
            key = (block, cost[cols], qdiag[cols])
            inst = next((i for t, i in templates if _same(t, key)), None)
            if inst is None:
                inst = HighsInstance(block, cost[cols], lb[cols], ub[cols], row_lb[rows],
                                     row_ub[rows], qdiag[cols])
                templates.append((key, inst))
            self.parts.append(_Part(cols, rows, inst))
        self.n_instances = len(templates)

    # -------------------------------------------- live updates (read at solve time)
    def cost_changed(self, start: int, values: np.ndarray) -> None:
        if self._whole is not None:
            self._whole.cost_changed(start, values)

    def col_bounds_changed(self, start: int, lb: np.ndarray, ub: np.ndarray) -> None:
        if self._whole is not None:
            self._whole.col_bounds_changed(start, lb, ub)

    def row_bounds_changed(self, start: int, lb: np.ndarray, ub: np.ndarray) -> None:
        if self._whole is not None:
            self._whole.row_bounds_changed(start, lb, ub)

    # ----------------------------------------------------------------- solve
    def solve(self, *, t0: float, time_limit: float | None, tol: float | None,
              verbose: bool, options: dict[str, Any]) -> Solution:
        if self._whole is not None:
            return self._whole.solve(t0=t0, time_limit=time_limit, tol=tol, verbose=verbose,
                                     options=options)
        model = self._model
        lb, ub, cost, _ = model._columns()
        row_lb, row_ub = model._rows()
        n, m = model.num_vars, model.num_cons
        x, col_dual, row_dual = np.full(n, np.nan), np.full(n, np.nan), np.full(m, np.nan)
        opts = solve_options(time_limit, tol, verbose, options)
        status, raw = SolveStatus.OPTIMAL, []
        objective, iterations, solve_s = model.objective_offset, 0, 0.0
        configured: set[int] = set()
        for part in self.parts:
            inst, cols, rows = part.instance, part.cols, part.rows
            if id(inst) not in configured:
                inst.set_options(opts)
                configured.add(id(inst))
            inst.update(cost[cols], lb[cols], ub[cols], row_lb[rows], row_ub[rows])
            r = inst.run()
            solve_s += r.solve_s
            iterations += r.iterations
            x[cols], col_dual[cols], row_dual[rows] = r.x, r.col_dual, r.row_dual
            objective += r.objective
            raw.append(r.raw_status)
            if r.status is not SolveStatus.OPTIMAL and status is SolveStatus.OPTIMAL:
                status = r.status
        if status is not SolveStatus.OPTIMAL:
            objective = float("nan")
            col_dual[:] = row_dual[:] = np.nan
        return Solution(
            status=status, objective=float(objective), x=x, row_dual=row_dual,
            col_dual=col_dual, soc_dual=np.empty(0), solver=self.name,
            raw_status=",".join(sorted(set(raw))), iterations=iterations,
            build_s=time.perf_counter() - t0 - solve_s, solve_s=solve_s)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Same matrix (canonical CSC), costs and Hessian diagonal."""
    ma, mb = a[0], b[0]
    return (ma.shape == mb.shape and ma.nnz == mb.nnz
            and np.array_equal(ma.indptr, mb.indptr) and np.array_equal(ma.indices, mb.indices)
            and np.array_equal(ma.data, mb.data)
            and all(np.array_equal(u, v) for u, v in zip(a[1:], b[1:], strict=True)))
