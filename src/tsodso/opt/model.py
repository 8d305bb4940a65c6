"""Vectorised, block-structured LP / QP / SOCP model.

The model is assembled from *named blocks*: ``add_variables`` creates a contiguous block of
columns, ``add_constraints`` a contiguous block of linear rows, ``add_soc`` /
``add_rotated_soc`` a block of second-order cones. Coefficients are given per block as
(sparse) matrices, so assembling a large model never loops over individual elements in
Python. Coefficient triplets are collected per block and turned into one CSC matrix at solve
time.

Problem form (always a **minimisation**)::

    min   cost' x + 0.5 * sum_j qdiag_j * x_j**2 + offset
    s.t.  row_lb <= A x <= row_ub
          col_lb <=   x <= col_ub
          ||A_i x + b_i||_2 <= c_i' x + d_i                       (second-order cones)

Bounds with magnitude ``>= 1e20`` are treated as infinite. To maximise, negate the costs.
See :mod:`tsodso.opt.solution` for the dual sign convention.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from tsodso.opt.blocks import ConBlock, ConeBlock, VarBlock

if TYPE_CHECKING:
    from tsodso.opt.solution import Solution

__all__ = ["INF_BOUND", "Coef", "Model", "Term", "Terms"]

INF_BOUND = 1e20
"""Bounds with ``abs(value) >= INF_BOUND`` are treated as infinite (as HiGHS does)."""

Coef: TypeAlias = "sp.sparray | sp.spmatrix | npt.ArrayLike"
"""Coefficient of a term: an ``(m, len(block))`` sparse matrix or 2-D array, a 1-D array
of length ``len(block)`` (diagonal, ``m = len(block)``) or a scalar (``scalar * I``)."""
Term: TypeAlias = "tuple[VarBlock, Coef]"
Terms: TypeAlias = "Term | Sequence[Term]"

SolverName = Literal["auto", "highs", "clarabel"]

_SQRT_HALF = math.sqrt(0.5)


class _Chunked:
    """Append-only 1-D array stored as chunks, concatenated lazily (and then cached)."""

    __slots__ = ("_chunks", "_dtype")

    def __init__(self, dtype: type) -> None:
        self._chunks: list[np.ndarray] = []
        self._dtype = dtype

    def append(self, values: np.ndarray) -> None:
        self._chunks.append(np.asarray(values, dtype=self._dtype))

    def array(self) -> np.ndarray:
        """The whole array (writes into it are persistent)."""
        if len(self._chunks) != 1:
            merged = (
                np.concatenate(self._chunks) if self._chunks else np.empty(0, dtype=self._dtype)
            )
            self._chunks = [merged]
        return self._chunks[0]


class _Triplets:
    """COO triplet store for a sparse matrix that grows by blocks of rows."""

    __slots__ = ("rows", "cols", "vals")

    def __init__(self) -> None:
        self.rows = _Chunked(np.int64)
        self.cols = _Chunked(np.int64)
        self.vals = _Chunked(np.float64)

    def append(self, rows: np.ndarray, cols: np.ndarray, vals: np.ndarray) -> None:
        self.rows.append(rows)
        self.cols.append(cols)
        self.vals.append(vals)

    def to_csc(self, shape: tuple[int, int]) -> sp.csc_array:
        mat = sp.coo_array(
            (self.vals.array(), (self.rows.array(), self.cols.array())), shape=shape
        ).tocsc()  # sums duplicate entries
        mat.eliminate_zeros()
        mat.sort_indices()
        return mat


def _as_vector(value: npt.ArrayLike, n: int, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.ndim > 1 or (arr.ndim == 1 and arr.shape[0] != n):
        raise ValueError(f"{what}: expected a scalar or an array of length {n}, got {arr.shape}")
    out = np.array(np.broadcast_to(arr, (n,)), dtype=np.float64)  # always a fresh copy
    if np.isnan(out).any():
        raise ValueError(f"{what}: NaN values")
    return out


def _as_bounds(
    lb: npt.ArrayLike, ub: npt.ArrayLike, n: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    lo = _as_vector(lb, n, f"{what} lb")
    hi = _as_vector(ub, n, f"{what} ub")
    lo[lo <= -INF_BOUND] = -np.inf
    hi[hi >= INF_BOUND] = np.inf
    if (lo == np.inf).any() or (hi == -np.inf).any():
        raise ValueError(f"{what}: lb = +inf or ub = -inf")
    if (lo > hi).any():
        bad = int(np.flatnonzero(lo > hi)[0])
        raise ValueError(f"{what}: lb > ub at position {bad} ({lo[bad]} > {hi[bad]})")
    return lo, hi


def _term_list(terms: Terms) -> list[Term]:
    if isinstance(terms, tuple) and len(terms) == 2 and isinstance(terms[0], VarBlock):
        return [terms]
    return list(terms)


class Model:
    """Block-structured LP / QP / SOCP model solved with HiGHS or Clarabel.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> m = Model()
    >>> g = m.add_variables("g", 2, lb=0.0, ub=[1.0, 3.0], cost=[1.0, 2.0])
    >>> bal = m.add_constraints("balance", [(g, np.ones((1, 2)))], lb=2.0, ub=2.0)
    >>> sol = m.solve()
    >>> sol.value(g), sol.dual(bal)
    (array([1., 1.]), array([2.]))
    """

    def __init__(self, name: str = "model") -> None:
        self.name = name
        self.var_blocks: dict[str, VarBlock] = {}
        self.con_blocks: dict[str, ConBlock] = {}
        self.cone_blocks: dict[str, ConeBlock] = {}
        self.objective_offset = 0.0
        self._n = 0
        self._m = 0
        self._n_soc_rows = 0
        self._col_lb = _Chunked(np.float64)
        self._col_ub = _Chunked(np.float64)
        self._col_cost = _Chunked(np.float64)
        self._qdiag = _Chunked(np.float64)
        self._row_lb = _Chunked(np.float64)
        self._row_ub = _Chunked(np.float64)
        self._a = _Triplets()
        # Second-order cones in standard form ``s = S x + h`` with ``s`` in SOC.
        self._s = _Triplets()
        self._soc_h = _Chunked(np.float64)
        self._cone_specs: list[tuple[int, int]] = []  # (k, dim) per cone block
        self._a_cache: sp.csc_array | None = None
        self._s_cache: sp.csc_array | None = None
        # Live back ends (dropped on every structural change).
        self._backends: dict[str, Any] = {}

    # ------------------------------------------------------------------ sizes
    @property
    def num_vars(self) -> int:
        """Number of variables (columns)."""
        return self._n

    @property
    def num_cons(self) -> int:
        """Number of linear rows."""
        return self._m

    @property
    def num_cones(self) -> int:
        """Number of second-order cones (over all cone blocks)."""
        return sum(k for k, _ in self._cone_specs)

    def __repr__(self) -> str:
        return (
            f"Model({self.name!r}, vars={self._n}, rows={self._m}, cones={self.num_cones}, "
            f"blocks={len(self.var_blocks)}/{len(self.con_blocks)}/{len(self.cone_blocks)})"
        )

    # ------------------------------------------------------------- structure
    def _structure_changed(self) -> None:
        self._a_cache = None
        self._s_cache = None
        self._backends.clear()

    def _check_name(self, registry: Mapping[str, Any], name: str) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError("block name must be a non-empty string")
        if name in registry:
            raise ValueError(f"duplicate block name {name!r}")

    def _check_block(self, block: Any, kind: type) -> None:
        if not isinstance(block, kind):
            raise TypeError(f"expected a {kind.__name__}, got {type(block).__name__}")
        if block._owner is not self:
            raise ValueError(f"block {block.name!r} belongs to another model")

    def add_variables(
        self,
        name: str,
        n: int,
        lb: npt.ArrayLike = 0.0,
        ub: npt.ArrayLike = np.inf,
        cost: npt.ArrayLike = 0.0,
    ) -> VarBlock:
        """Add a block of ``n`` continuous variables.

        Parameters
        ----------
        name
            Unique block name.
        n
            Number of variables.
        lb, ub
            Bounds, scalars or arrays of length ``n`` (``-inf``/``inf`` allowed).
            Note the default lower bound is ``0``.
        cost
            Linear objective coefficients, scalar or array of length ``n``.

        Returns
        -------
        VarBlock
        """
        self._check_name(self.var_blocks, name)
        n = int(n)
        if n < 0:
            raise ValueError("n must be >= 0")
        lo, hi = _as_bounds(lb, ub, n, f"variables {name!r}")
        c = _as_vector(cost, n, f"variables {name!r} cost")
        if not np.isfinite(c).all():
            raise ValueError(f"variables {name!r}: non-finite cost")
        block = VarBlock(name, self._n, n, self)
        self._col_lb.append(lo)
        self._col_ub.append(hi)
        self._col_cost.append(c)
        self._qdiag.append(np.zeros(n))
        self._n += n
        self.var_blocks[name] = block
        self._structure_changed()
        return block

    def _terms_coo(self, terms: Terms, what: str) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
        """Turn ``[(block, coef), ...]`` into ``(m, rows, global_cols, vals)``."""
        items = _term_list(terms)
        if not items:
            raise ValueError(f"{what}: at least one (block, coefficient) term is required")
        m: int | None = None
        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        vals: list[np.ndarray] = []
        for item in items:  # loop over blocks, never over elements
            if not (isinstance(item, tuple) and len(item) == 2):
                raise TypeError(f"{what}: terms must be (VarBlock, coefficient) pairs")
            block, coef = item
            self._check_block(block, VarBlock)
            nb = len(block)
            if sp.issparse(coef):
                coo = sp.coo_array(coef)
                mi, nc = coo.shape
                if nc != nb:
                    raise ValueError(
                        f"{what}: coefficient of block {block.name!r} has {nc} columns, "
                        f"expected {nb}"
                    )
                r, c, v = coo.row, coo.col, coo.data
            else:
                a = np.asarray(coef, dtype=np.float64)
                if a.ndim <= 1:  # diagonal
                    if a.ndim == 1 and a.shape[0] != nb:
                        raise ValueError(
                            f"{what}: diagonal coefficient of block {block.name!r} has length "
                            f"{a.shape[0]}, expected {nb}"
                        )
                    mi = nb
                    r = np.arange(nb)
                    c = r
                    v = np.broadcast_to(a, (nb,))
                elif a.ndim == 2:
                    mi, nc = a.shape
                    if nc != nb:
                        raise ValueError(
                            f"{what}: coefficient of block {block.name!r} has {nc} columns, "
                            f"expected {nb}"
                        )
                    r, c = np.nonzero(a)
                    v = a[r, c]
                else:
                    raise ValueError(f"{what}: coefficient must be at most 2-D")
            if m is None:
                m = int(mi)
            elif mi != m:
                raise ValueError(f"{what}: terms disagree on the number of rows ({mi} != {m})")
            v = np.asarray(v, dtype=np.float64)
            if not np.isfinite(v).all():
                raise ValueError(f"{what}: non-finite coefficient in block {block.name!r}")
            rows.append(np.asarray(r, dtype=np.int64))
            cols.append(np.asarray(c, dtype=np.int64) + block.start)
            vals.append(v)
        assert m is not None
        return m, np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)

    def add_constraints(
        self,
        name: str,
        terms: Terms,
        lb: npt.ArrayLike = -np.inf,
        ub: npt.ArrayLike = np.inf,
    ) -> ConBlock:
        """Add a block of ``m`` linear rows ``lb <= sum_b A_b x_b <= ub``.

        Parameters
        ----------
        name
            Unique block name.
        terms
            ``[(block, coef), ...]`` (or a single ``(block, coef)`` pair). ``coef`` is a
            sparse matrix or dense 2-D array of shape ``(m, len(block))``, a 1-D array of length
            ``len(block)`` (diagonal) or a scalar (``scalar * I``). All terms must agree on
            ``m``; repeated entries are summed.
        lb, ub
            Row bounds, scalars or arrays of length ``m``. ``lb == ub`` gives an equality.

        Returns
        -------
        ConBlock
        """
        self._check_name(self.con_blocks, name)
        m, r, c, v = self._terms_coo(terms, f"constraints {name!r}")
        lo, hi = _as_bounds(lb, ub, m, f"constraints {name!r}")
        block = ConBlock(name, self._m, m, self)
        self._a.append(r + self._m, c, v)
        self._row_lb.append(lo)
        self._row_ub.append(hi)
        self._m += m
        self.con_blocks[name] = block
        self._structure_changed()
        return block

    def add_quadratic_cost(self, block: VarBlock, diag: npt.ArrayLike) -> None:
        """Add a separable convex quadratic cost ``0.5 * sum(diag * x_block**2)``.

        Note the factor **0.5**: ``diag`` is the diagonal of the Hessian, so a cost of
        ``a * x**2`` needs ``diag = 2 * a``. Repeated calls accumulate.

        Parameters
        ----------
        block
            Variable block.
        diag
            Non-negative Hessian diagonal, scalar or array of length ``len(block)``.
        """
        self._check_block(block, VarBlock)
        d = _as_vector(diag, len(block), f"quadratic cost of {block.name!r}")
        if not np.isfinite(d).all() or (d < 0).any():
            raise ValueError("quadratic cost diagonal must be finite and >= 0 (convexity)")
        self._qdiag.array()[block.slice] += d
        self._structure_changed()

    def set_quadratic_cost(self, block: VarBlock, diag: npt.ArrayLike) -> None:
        """Replace the Hessian diagonal of ``block`` (see :meth:`add_quadratic_cost` for
        the factor 0.5). The assembled matrices are kept; live solvers are rebuilt from them
        at the next solve (no warm start), which is far cheaper than building the model
        again (ADMM changes its penalty this way)."""
        self._check_block(block, VarBlock)
        d = _as_vector(diag, len(block), f"quadratic cost of {block.name!r}")
        if not np.isfinite(d).all() or (d < 0).any():
            raise ValueError("quadratic cost diagonal must be finite and >= 0 (convexity)")
        self._qdiag.array()[block.slice] = d
        self._backends.clear()

    def add_objective_offset(self, value: float) -> None:
        """Add a constant to the objective (reported in ``Solution.objective``)."""
        self.objective_offset += float(value)

    def _expr_rows(
        self, terms: Terms, const: npt.ArrayLike, what: str
    ) -> tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        m, r, c, v = self._terms_coo(terms, what)
        return m, r, c, v, _as_vector(const, m, f"{what} constant")

    def _add_cone_block(
        self,
        name: str,
        comps: list[tuple[np.ndarray, np.ndarray, np.ndarray]],
        consts: np.ndarray,
        rotated: bool,
    ) -> ConeBlock:
        """Register ``k`` cones; ``comps[j]`` holds the COO rows (cone index) of component j."""
        k, dim = consts.shape
        if not np.isfinite(consts).all():
            raise ValueError(f"cones {name!r}: non-finite constants")
        base = self._n_soc_rows
        rows = np.concatenate([r * dim + (base + j) for j, (r, _, _) in enumerate(comps)])
        cols = np.concatenate([c for _, c, _ in comps])
        vals = np.concatenate([v for _, _, v in comps])
        self._s.append(rows, cols, vals)
        self._soc_h.append(consts.reshape(-1))
        self._cone_specs.append((k, dim))
        block = ConeBlock(name, base, k * dim, self, k=k, dim=dim, rotated=rotated)
        self._n_soc_rows += k * dim
        self.cone_blocks[name] = block
        self._structure_changed()
        return block

    def add_soc(
        self,
        name: str,
        t_term: Terms,
        x_terms: Sequence[Terms],
        t_const: npt.ArrayLike = 0.0,
        x_const: npt.ArrayLike = 0.0,
    ) -> ConeBlock:
        """Add ``k`` second-order cones ``||A_i x + b_i||_2 <= c_i' x + d_i``, i = 1..k.

        Parameters
        ----------
        name
            Unique cone block name.
        t_term
            Terms (as in :meth:`add_constraints`) with ``k`` rows: row ``i`` is ``c_i' x``.
        x_terms
            Sequence of ``p >= 1`` terms, each with ``k`` rows: entry ``j`` gives component
            ``j`` of ``A_i x`` for all cones at once.
        t_const
            ``d``, scalar or array of length ``k``.
        x_const
            ``b``, broadcastable to shape ``(k, p)`` (column ``j`` = constant of component j).

        Returns
        -------
        ConeBlock
            ``dim = 1 + p``. Only the Clarabel back end supports cones.
        """
        self._check_name(self.cone_blocks, name)
        what = f"cones {name!r}"
        x_list = list(x_terms)
        if not x_list:
            raise ValueError(f"{what}: need at least one x term")
        k, r, c, v, d = self._expr_rows(t_term, t_const, what)
        comps = [(r, c, v)]
        p = len(x_list)
        b = np.asarray(x_const, dtype=np.float64)
        try:
            b = np.broadcast_to(b, (k, p))
        except ValueError:
            raise ValueError(f"{what}: x_const not broadcastable to {(k, p)}") from None
        for j, xt in enumerate(x_list):
            kj, rj, cj, vj = self._terms_coo(xt, f"{what} component {j}")
            if kj != k:
                raise ValueError(f"{what}: component {j} has {kj} rows, expected {k}")
            comps.append((rj, cj, vj))
        consts = np.column_stack([d, b])
        return self._add_cone_block(name, comps, consts, rotated=False)

    def add_rotated_soc(
        self,
        name: str,
        u_term: Terms,
        v_term: Terms,
        w_terms: Sequence[Terms],
        u_const: npt.ArrayLike = 0.0,
        v_const: npt.ArrayLike = 0.0,
        w_const: npt.ArrayLike = 0.0,
    ) -> ConeBlock:
        """Add ``k`` rotated cones ``2 u_i v_i >= ||w_i||_2**2``, ``u_i, v_i >= 0``.

        ``u = U x + u_const``, ``v = V x + v_const``, ``w = W x + w_const``; the terms have
        ``k`` rows each, as in :meth:`add_soc`. Implemented as the standard cone
        ``||((u - v)/sqrt2, w)|| <= (u + v)/sqrt2``.

        A branch-flow relaxation ``l * v >= P**2 + Q**2`` is
        ``add_rotated_soc(name, (l, 0.5), (v, 1.0), [(P, 1.0), (Q, 1.0)])``.

        Returns
        -------
        ConeBlock
            ``rotated=True``, ``dim = 2 + p``.
        """
        self._check_name(self.cone_blocks, name)
        what = f"rotated cones {name!r}"
        w_list = list(w_terms)
        if not w_list:
            raise ValueError(f"{what}: need at least one w term")
        k, ru, cu, vu, u0 = self._expr_rows(u_term, u_const, f"{what} u")
        kv, rv, cv, vv, v0 = self._expr_rows(v_term, v_const, f"{what} v")
        if kv != k:
            raise ValueError(f"{what}: u has {k} rows but v has {kv}")
        p = len(w_list)
        try:
            w0 = np.broadcast_to(np.asarray(w_const, dtype=np.float64), (k, p))
        except ValueError:
            raise ValueError(f"{what}: w_const not broadcastable to {(k, p)}") from None
        s = _SQRT_HALF
        comps = [
            (np.concatenate([ru, rv]), np.concatenate([cu, cv]), s * np.concatenate([vu, vv])),
            (np.concatenate([ru, rv]), np.concatenate([cu, cv]), s * np.concatenate([vu, -vv])),
        ]
        for j, wt in enumerate(w_list):
            kj, rj, cj, vj = self._terms_coo(wt, f"{what} w component {j}")
            if kj != k:
                raise ValueError(f"{what}: w component {j} has {kj} rows, expected {k}")
            comps.append((rj, cj, vj))
        consts = np.column_stack([s * (u0 + v0), s * (u0 - v0), w0])
        return self._add_cone_block(name, comps, consts, rotated=True)

    # ------------------------------------------------------- value updates
    def set_cost(self, block: VarBlock, values: npt.ArrayLike) -> None:
        """Replace the linear costs of ``block`` (a live HiGHS model is updated in place)."""
        self._check_block(block, VarBlock)
        c = _as_vector(values, len(block), f"cost of {block.name!r}")
        if not np.isfinite(c).all():
            raise ValueError("non-finite cost")
        self._col_cost.array()[block.slice] = c
        for backend in self._backends.values():
            backend.cost_changed(block.start, c)

    def bounds(self, block: VarBlock) -> tuple[np.ndarray, np.ndarray]:
        """Copies of the current lower and upper bounds of ``block``."""
        self._check_block(block, VarBlock)
        return (self._col_lb.array()[block.slice].copy(),
                self._col_ub.array()[block.slice].copy())

    def set_bounds(
        self,
        block: VarBlock,
        lb: npt.ArrayLike | None = None,
        ub: npt.ArrayLike | None = None,
    ) -> None:
        """Replace the bounds of ``block`` (``None`` keeps the current side)."""
        self._check_block(block, VarBlock)
        lo_all, hi_all = self._col_lb.array(), self._col_ub.array()
        lo, hi = _as_bounds(
            lo_all[block.slice] if lb is None else lb,
            hi_all[block.slice] if ub is None else ub,
            len(block),
            f"bounds of {block.name!r}",
        )
        lo_all[block.slice] = lo
        hi_all[block.slice] = hi
        for backend in self._backends.values():
            backend.col_bounds_changed(block.start, lo, hi)

    def set_rhs(
        self,
        con: ConBlock,
        lb: npt.ArrayLike | None = None,
        ub: npt.ArrayLike | None = None,
    ) -> None:
        """Replace the row bounds of ``con`` (``None`` keeps the current side)."""
        self._check_block(con, ConBlock)
        lo_all, hi_all = self._row_lb.array(), self._row_ub.array()
        lo, hi = _as_bounds(
            lo_all[con.slice] if lb is None else lb,
            hi_all[con.slice] if ub is None else ub,
            len(con),
            f"rhs of {con.name!r}",
        )
        lo_all[con.slice] = lo
        hi_all[con.slice] = hi
        for backend in self._backends.values():
            backend.row_bounds_changed(con.start, lo, hi)

    # ---------------------------------------------- accessors for back ends
    def _columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(lb, ub, cost, qdiag)`` of all columns (internal arrays, do not modify)."""
        lb, ub = self._col_lb.array(), self._col_ub.array()
        return lb, ub, self._col_cost.array(), self._qdiag.array()

    def _rows(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lb, ub)`` of all linear rows (internal arrays, do not modify)."""
        return self._row_lb.array(), self._row_ub.array()

    def _linear_matrix(self) -> sp.csc_array:
        """The ``m x n`` constraint matrix in canonical CSC form (cached)."""
        if self._a_cache is None:
            self._a_cache = self._a.to_csc((self._m, self._n))
        return self._a_cache

    def _soc_data(self) -> tuple[sp.csc_array, np.ndarray, list[tuple[int, int]]]:
        """``(S, h, [(k, dim), ...])`` with cone rows ``S x + h`` in standard SOC form."""
        if self._s_cache is None:
            self._s_cache = self._s.to_csc((self._n_soc_rows, self._n))
        return self._s_cache, self._soc_h.array(), list(self._cone_specs)

    # ----------------------------------------------------------------- solve
    def free_solvers(self) -> None:
        """Drop the solvers' own state but keep the model and its assembled matrices.

        Clarabel keeps its KKT system, factorisation and iterates between solves (about
        2 kB per variable on a feeder OPF); HiGHS keeps its instance and basis. Many small
        models solved now and then (thousands of feeders in ADMM) can free them after each
        solve: the next solve starts the solver afresh, which costs its set-up and, for
        HiGHS, the warm start.
        """
        for key in list(self._backends):
            backend = self._backends[key]
            if hasattr(backend, "free_solver"):
                backend.free_solver()
            else:
                del self._backends[key]

    def solve(
        self,
        solver: SolverName = "auto",
        *,
        time_limit: float | None = None,
        tol: float | None = None,
        verbose: bool = False,
        options: Mapping[str, Any] | None = None,
        split: bool = False,
    ) -> Solution:
        """Solve the model.

        Parameters
        ----------
        solver
            ``"highs"`` (LP/QP), ``"clarabel"`` (LP/QP/SOCP) or ``"auto"`` (HiGHS unless the
            model has cones).
        time_limit
            Wall-clock limit in seconds (``None``: unlimited).
        tol
            Feasibility/optimality tolerance. HiGHS: primal/dual feasibility and IPM
            optimality tolerances; Clarabel: ``tol_feas``, ``tol_gap_abs``, ``tol_gap_rel``.
            ``None`` keeps the solver defaults.
        verbose
            Print the solver log.
        options
            Extra solver-specific options (HiGHS option names or Clarabel settings
            attributes), applied for this solve only.
        split
            HiGHS only: solve the independent parts of the model (connected components of
            its constraint matrix, e.g. the periods of a multi-period market without
            inter-temporal constraints) one after the other, parts with the same matrix and
            costs in one warm-started instance. Exact; faster when parts are many and large.
            A model with one part is solved whole.

        Returns
        -------
        Solution

        Notes
        -----
        The first solve with a back end assembles and passes the whole model. Later solves
        reuse it: changes made with :meth:`set_cost`, :meth:`set_bounds` and :meth:`set_rhs`
        are pushed into the live HiGHS instance (warm start from the previous basis); for
        Clarabel the assembled matrices are kept and only ``q``/``b`` are updated. Adding
        blocks or quadratic costs discards the live back ends.
        """
        t0 = time.perf_counter()
        if solver == "auto":
            solver = "clarabel" if self._n_soc_rows else "highs"
        key = solver
        if solver == "highs":
            if self._n_soc_rows:
                raise ValueError("HiGHS cannot solve models with second-order cones")
            if split:
                from tsodso.opt._highs_split import SplitHighsBackend as backend_cls
                key = "highs-split"
            else:
                from tsodso.opt._highs import HighsBackend as backend_cls
        elif solver == "clarabel":
            from tsodso.opt._clarabel import ClarabelBackend as backend_cls
        else:
            raise ValueError(f"unknown solver {solver!r}")
        backend = self._backends.get(key)
        if backend is None:
            backend = backend_cls(self)
            self._backends[key] = backend
        return backend.solve(
            t0=t0, time_limit=time_limit, tol=tol, verbose=verbose, options=dict(options or {})
        )
