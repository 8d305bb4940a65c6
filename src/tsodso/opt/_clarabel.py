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

Accuracy
--------
An answer is ``OPTIMAL`` only when Clarabel ends ``Solved``, or ``AlmostSolved`` (it stalled
short of the requested tolerances) at a point that meets Clarabel's *normal* tolerances
(:data:`NORMAL_TOL`, its defaults: residuals and duality gap, measured exactly as Clarabel
does) or whose first-order cost error (:attr:`Solution.cost_error`: the gap plus what the
residuals are worth at the multipliers) is within :data:`COST_TOL` of the money at stake.
Otherwise (``AlmostSolved`` on the reduced tolerances only, ``InsufficientProgress``) the
model is re-solved ("polished", at most ``len(POLISH)`` times, until an answer is accepted)
with iterative refinement and every rotated cone rebalanced at the first answer (Clarabel
has no warm start: each is a full solve): a rotated cone ``2 u v >= ||w||^2``
whose ``u`` and ``v`` differ by orders of magnitude (a branch flow relaxation ``l v >= P^2 +
Q^2`` with the squared current ``l`` of a lightly rated line ~1e-4 pu against ``v`` ~1 pu)
is, in standard form, the difference of two nearly equal components, so a residual within
the reduced tolerances can let ``P^2 + Q^2`` exceed ``l v`` by tens of percent; with load
shedding at the value of lost load behind such a line the cost then comes out far below the
optimum. The polish applies the cone automorphism ``u -> a u, v -> v / a`` (a Lorentz boost
of the standard-form rows, ``a = sqrt(v / u)``), which leaves the problem unchanged and puts
``u`` and ``v`` on the same scale. What is still not accepted after the polish is
``FEASIBLE`` (from ``AlmostSolved``: the best answer's primal and duals are kept, with its
residuals, gap and cost error) or ``NUMERICAL``. ``raw_status`` is the status of the solve
whose answer is returned, ``attempts`` that of every solve, ``iterations`` their sum.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import clarabel
import numpy as np
import scipy.sparse as sp

from tsodso.opt.solution import Solution
from tsodso.opt.status import SolveStatus, status_from_clarabel

if TYPE_CHECKING:
    from tsodso.opt.model import Model

__all__ = ["COST_TOL", "NORMAL_TOL", "POLISH", "ClarabelBackend"]

_SEGMENTS = ("eq", "fix", "up", "lo", "cup", "clo")
_SQRT_HALF = float(np.sqrt(0.5))

#: Clarabel's default feasibility and gap tolerances: an answer that meets them is optimal
NORMAL_TOL = 1e-8
#: An AlmostSolved answer whose first-order cost error (:attr:`Solution.cost_error`) is
#: within this share of the money at stake (the largest of 1, its objective, the sum of
#: its cost terms' magnitudes and that of every constraint's right-hand side times its
#: multiplier) is optimal too. Measured on 95 AlmostSolved solves of the default scenario
#: (seeds 2026, 2028): accurate answers (true error within 1.2e-7 of that scale) show
#: 2.4e-6 at most, answers tens of $ off the optimum (a line over its rating behind load
#: shed at the value of lost load) 9e-5 at least; none between. The estimate was up to 20
#: times below the true error. Below 2.4e-6, re-solving answers that are already accurate
#: moves costs by ~1e-3 $ one way in one run and not in the next, which finite differences
#: of a scheme's cost (its published prices) cannot tell from a price.
COST_TOL = 1e-5
#: Settings of the successive polishing re-solves (each with iterative refinement and the
#: rotated cones rebalanced), until one is accepted. Measured on 95 AlmostSolved solves of
#: the default scenario's schemes at penetration 1 (seeds 2026, 2028), re-solved afresh:
#: each alone brings 20 to 52 of the 64 that fall short of the normal tolerances to them,
#: the four in turn all; the last (less static regularisation) alone solves the hardest (a
#: feeder OPF whose first answer was 51 $ below the optimum, a line 45 % over its rating).
POLISH: tuple[dict[str, Any], ...] = (
    {"equilibrate_max_iter": 50},
    {"max_step_fraction": 0.9},
    {"iterative_refinement_reltol": 1e-15, "iterative_refinement_abstol": 1e-15,
     "iterative_refinement_max_iter": 50},
    {"static_regularization_constant": 1e-10},
)
#: Raw statuses whose last point is polished when short of the normal tolerances
_POLISHED = ("AlmostSolved", "InsufficientProgress")
#: Rebalancing factors of the rotated cones are kept within [1 / _BOOST_MAX, _BOOST_MAX]
_BOOST_MAX = 1e3


def _selector(idx: np.ndarray, n: int, sign: float) -> sp.csr_array:
    """Rows ``sign * e_idx'`` as a sparse ``len(idx) x n`` matrix."""
    k = idx.size
    return sp.csr_array((np.full(k, sign), idx, np.arange(k + 1, dtype=np.int64)), shape=(k, n))


@dataclass(frozen=True, eq=False)
class _Answer:
    """One Clarabel solve's answer, with ``z`` and ``s`` in the model's rows."""

    sol: Any
    raw: str
    x: np.ndarray
    z: np.ndarray
    s: np.ndarray
    cost_error: float
    accepted: bool
    rank: tuple[int, float]  # lower is better: (accepted 0 / AlmostSolved 1 / other 2, error)


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
        # rows (t, y0) of every rotated cone: t = (u + v)/sqrt2, y0 = (u - v)/sqrt2
        first_soc = a.shape[0] - model._n_soc_rows
        t_rows = [first_soc + blk.start + np.arange(blk.k) * blk.dim
                  for blk in model.cone_blocks.values() if blk.rotated]
        self._rot = np.concatenate(t_rows) if t_rows else np.zeros(0, dtype=np.int64)
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
        accept_tol = max(NORMAL_TOL, tol if tol is not None else NORMAL_TOL)
        best = self._answer(sol, np.asarray(sol.z, dtype=np.float64),
                            np.asarray(sol.s, dtype=np.float64), q, b, accept_tol)
        attempts = [best.raw]
        iterations = int(sol.iterations)
        if not best.accepted and best.raw in _POLISHED and np.isfinite(best.s).all():
            first_s = best.s
            for extra in POLISH:
                left = None if time_limit is None else time_limit - (time.perf_counter() - t1)
                if left is not None and left <= 0:
                    break
                z_s = self._polish(q, b, first_s, left, accept_tol, verbose,
                                   {**options, "iterative_refinement_enable": True, **extra})
                answer = self._answer(*z_s, q, b, accept_tol)
                attempts.append(answer.raw)
                iterations += int(answer.sol.iterations)
                if answer.rank < best.rank:
                    best = answer
                if best.accepted:
                    break
        sol = best.sol
        t2 = time.perf_counter()

        status = SolveStatus.OPTIMAL if best.accepted else status_from_clarabel(best.raw)
        model = self._model
        n, m = model.num_vars, model.num_cons
        n_soc = b.size - sum(self._sets[k].size for k in _SEGMENTS)
        if status in (SolveStatus.OPTIMAL, SolveStatus.FEASIBLE):
            x = best.x
            row_dual, col_dual, soc_dual = self._duals(best.z, n, m)
            objective = float(sol.obj_val) + model.objective_offset
            cost_error = best.cost_error
        else:
            x, col_dual = np.full(n, np.nan), np.full(n, np.nan)
            row_dual, soc_dual = np.full(m, np.nan), np.full(n_soc, np.nan)
            objective = cost_error = float("nan")
        return Solution(
            status=status,
            objective=objective,
            x=x,
            row_dual=row_dual,
            col_dual=col_dual,
            soc_dual=soc_dual,
            solver=self.name,
            raw_status=best.raw,
            iterations=iterations,
            build_s=t1 - t0,
            solve_s=t2 - t1,
            primal_residual=float(sol.r_prim),
            dual_residual=float(sol.r_dual),
            gap=abs(float(sol.obj_val) - float(sol.obj_val_dual)),
            cost_error=cost_error,
            attempts=tuple(attempts),
        )

    def _answer(self, sol: Any, z: np.ndarray, s: np.ndarray, q: np.ndarray, b: np.ndarray,
                tol: float) -> _Answer:
        """Clarabel's answer (``z`` and ``s`` in the model's rows), its cost error and
        whether it is accepted as optimal: ``Solved``, or ``AlmostSolved`` meeting the
        tolerance ``tol`` (Clarabel's test) or with a cost error within :data:`COST_TOL`."""
        raw = str(sol.status)
        x = np.asarray(sol.x, dtype=np.float64)
        usable = np.isfinite(x).all() and np.isfinite(z).all() and np.isfinite(s).all()
        cost_error = self._cost_error(sol, x, z, s, q, b) if usable else float("nan")
        # the money at stake: every cost term, every constraint at its multiplier (a feeder
        # held to a fixed import has an objective of a few $ but serves thousands of $ of
        # load at its DLMPs)
        with np.errstate(invalid="ignore", over="ignore"):
            scale = max(1.0, abs(float(sol.obj_val)),
                        float(np.abs(q * x).sum() + 0.5 * np.abs((self._p @ x) * x).sum()),
                        float(np.abs(b * z).sum()))
        share = cost_error / scale if np.isfinite(cost_error) and np.isfinite(scale) else np.inf
        accepted = raw == "Solved" or (raw == "AlmostSolved" and (
            _meets(sol, tol) or share <= COST_TOL))
        tier = 0 if accepted else 1 if raw == "AlmostSolved" else 2
        return _Answer(sol, raw, x, z, s, cost_error, accepted, (tier, share))

    def _polish(self, q: np.ndarray, b: np.ndarray, s_first: np.ndarray,
                time_limit: float | None, tol: float, verbose: bool,
                options: dict[str, Any]) -> tuple[Any, np.ndarray, np.ndarray]:
        """Re-solve with iterative refinement, the rotated cones rebalanced at ``s_first``
        (see the module docstring), to the tolerance ``tol``. Returns Clarabel's solution
        and its ``z`` and ``s`` mapped back to the model's rows."""
        boost, unboost = self._boosts(s_first)
        a = boost @ self._a
        a.sort_indices()
        settings = self._settings(time_limit, tol, verbose, options)
        sol = clarabel.DefaultSolver(self._p, q, a, boost @ b, self._cones, settings).solve()
        # B is symmetric: the multipliers of the rows B (b - A x) are z = B z'
        z = boost @ np.asarray(sol.z, dtype=np.float64)
        s_vec = unboost @ np.asarray(sol.s, dtype=np.float64)
        return sol, z, s_vec

    def _boosts(self, s: np.ndarray) -> tuple[sp.csc_array, sp.csr_array]:
        """The row transformation ``B`` that rebalances every rotated cone at the slack
        ``s`` (identity on every other row) and its inverse."""
        m = self._a.shape[0]
        t_rows = self._rot
        y_rows = t_rows + 1
        t, y = s[t_rows], s[y_rows]
        u, v = _SQRT_HALF * (t + y), _SQRT_HALF * (t - y)
        floor = np.maximum(1e-6 * np.abs(u + v), 1e-300)
        a = np.sqrt(np.maximum(v, floor) / np.maximum(u, floor))
        a = np.clip(np.nan_to_num(a, nan=1.0), 1.0 / _BOOST_MAX, _BOOST_MAX)
        ch, sh = 0.5 * (a + 1.0 / a), 0.5 * (a - 1.0 / a)
        diag = np.ones(m)
        diag[t_rows] = ch
        diag[y_rows] = ch
        rows = np.concatenate([np.arange(m), t_rows, y_rows])
        cols = np.concatenate([np.arange(m), y_rows, t_rows])

        def matrix(off: np.ndarray) -> sp.csr_array:
            vals = np.concatenate([diag, off, off])
            return sp.csr_array((vals, (rows, cols)), shape=(m, m))

        return matrix(sh).tocsc(), matrix(-sh)

    def _cost_error(self, sol: Any, x: np.ndarray, z: np.ndarray, s: np.ndarray,
                    q: np.ndarray, b: np.ndarray) -> float:
        """First-order estimate of the distance of the objective from the optimum: the
        duality gap, the multipliers times the primal residual (what the infeasibility of
        ``x`` is worth) and ``x`` times the dual residual, all in absolute value. Not a
        bound: near a nearly degenerate cone the true error can be larger (20 times on a
        feeder OPF stopped at InsufficientProgress)."""
        primal = b - self._a @ x - s
        dual = self._p @ x + q + self._a.T @ z  # P is diagonal (Model's quadratic costs)
        gap = abs(float(sol.obj_val) - float(sol.obj_val_dual))
        return float(gap + np.abs(z) @ np.abs(primal) + np.abs(x) @ np.abs(dual))

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


def _meets(sol: Any, tol: float) -> bool:
    """Whether Clarabel's answer meets its own "Solved" test at tolerance ``tol`` (feasibility,
    and absolute or relative duality gap, with Clarabel's normalisation)."""
    p, d = float(sol.obj_val), float(sol.obj_val_dual)
    res_p, res_d = float(sol.r_prim), float(sol.r_dual)
    if not all(np.isfinite(v) for v in (p, d, res_p, res_d)):
        return False
    gap = abs(p - d)
    rel = gap / max(1.0, min(abs(p), abs(d)))
    return (gap < tol or rel < tol) and res_p < tol and res_d < tol

