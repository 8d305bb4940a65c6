"""Solver-independent solution container.

Dual convention
---------------
All multipliers are *sensitivities of the optimal objective* (minimisation, objective
offset included) and are identical in meaning for every back end:

* ``dual(con)[i]`` = d obj* / d rhs_i. For an equality row (``lb == ub == r``) it is the
  derivative with respect to ``r`` (both bounds moving together); for an inequality row it
  is the derivative with respect to whichever bound is active, i.e. ``<= 0`` when the
  upper bound is active, ``>= 0`` when the lower bound is active and ``0`` when the row is
  inactive. (For an interior-point back end inactive rows give values of the order of the
  solver tolerance rather than exact zeros.)
* ``reduced_cost(block)[j]`` is the same quantity for the variable bounds ``lb_j <= x_j <=
  ub_j``: d obj* / d (active bound of ``x_j``), zero for a variable strictly between its
  bounds.
* ``cone_dual(cone)`` is d obj* / d (constant terms of the cone), see
  :meth:`Solution.cone_dual`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from tsodso.opt.blocks import ConBlock, ConeBlock, VarBlock, _Block
from tsodso.opt.status import SolveStatus

__all__ = ["Solution"]

_SQRT_HALF = float(np.sqrt(0.5))


@dataclass(frozen=True, eq=False)
class Solution:
    """Result of :meth:`tsodso.opt.Model.solve`.

    Attributes
    ----------
    status : SolveStatus
        Normalised solve status.
    objective : float
        Optimal objective (including the constant offset); ``nan`` unless ``OPTIMAL`` or
        ``FEASIBLE``.
    x : numpy.ndarray
        Full primal vector. ``nan`` unless ``OPTIMAL`` or ``FEASIBLE`` (Clarabel's answer
        that met only its reduced tolerances: see ``cost_error``), except that HiGHS's last
        primal point is kept when HiGHS reports it primal feasible (e.g. at a limit or for
        an unbounded LP). Duals are ``nan`` unless ``OPTIMAL`` or ``FEASIBLE``.
    row_dual : numpy.ndarray
        Duals of all linear rows (d obj* / d rhs, see module docstring).
    col_dual : numpy.ndarray
        Reduced costs of all variables (d obj* / d active bound).
    soc_dual : numpy.ndarray
        d obj* / d constants of every (standard-form) second-order-cone row.
    solver : str
        ``"highs"`` or ``"clarabel"``.
    raw_status : str
        The back end's own status name (e.g. ``"kOptimal"``, ``"AlmostSolved"``).
    iterations : int
        Solver iteration count (simplex + IPM + QP iterations for HiGHS; for Clarabel over
        every solve in ``attempts``).
    build_s : float
        Wall time of the tsodso side of this call [s]: assembling the matrices (first solve)
        or the update vectors (re-solve); for HiGHS including ``passModel``/``passHessian``.
    solve_s : float
        Wall time of the solver [s]: ``Highs.run``; for Clarabel the ``DefaultSolver``
        construction (equilibration, KKT setup) or ``update`` plus ``solve``, and any
        polishing re-solve.
    primal_residual, dual_residual : float
        Clarabel: its relative primal and dual residuals at the answer (as in its log);
        ``nan`` for HiGHS.
    gap : float
        Clarabel: the absolute duality gap at the answer, |primal - dual objective| (in
        objective units); ``nan`` for HiGHS.
    cost_error : float
        Clarabel: first-order estimate of the distance of ``objective`` from the true optimum
        (the gap plus what the residuals are worth at the multipliers), in objective units;
        ``nan`` for HiGHS and when there is no answer. It is the reported gap of a
        :attr:`SolveStatus.FEASIBLE` answer (an estimate, not a bound: see
        :mod:`tsodso.opt._clarabel`).
    attempts : tuple of str
        Clarabel: the raw status of every solve this answer took (the first solve, then any
        polishing re-solve, see :mod:`tsodso.opt._clarabel`); ``raw_status`` is that of the
        solve whose answer is returned. Empty for HiGHS.
    """

    status: SolveStatus
    objective: float
    x: np.ndarray = field(repr=False)
    row_dual: np.ndarray = field(repr=False)
    col_dual: np.ndarray = field(repr=False)
    soc_dual: np.ndarray = field(repr=False)
    solver: str
    raw_status: str
    iterations: int
    build_s: float
    solve_s: float
    primal_residual: float = float("nan")
    dual_residual: float = float("nan")
    gap: float = float("nan")
    cost_error: float = float("nan")
    attempts: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """``True`` if the status is :attr:`SolveStatus.OPTIMAL`."""
        return self.status is SolveStatus.OPTIMAL

    @property
    def polished(self) -> bool:
        """Whether the answer took more than one solve (a Clarabel polish)."""
        return len(self.attempts) > 1

    def accuracy_note(self, unit: str = "") -> str:
        """How accurate a Clarabel answer is, in words: the solver's status at every solve,
        the residuals and duality gap of the answer, and how far its objective may be from
        the optimum (``cost_error``; ``unit`` is the objective's, e.g. ``"$"``)."""
        steps = " then ".join(self.attempts) if self.attempts else self.raw_status
        unit = f" {unit}" if unit else ""
        return (f"{self.solver} ended {steps} (primal residual {self.primal_residual:.1e}, "
                f"dual residual {self.dual_residual:.1e}, duality gap {self.gap:.3g}{unit}); "
                f"the objective {self.objective:,.2f}{unit} may be {self.cost_error:,.3g}{unit} "
                "from the optimum (first-order estimate)")

    def value(self, block: VarBlock) -> np.ndarray:
        """Primal values of ``block`` (a copy, shape ``(len(block),)``)."""
        return self.x[_checked(block, VarBlock, self.x.size)].copy()

    def reduced_cost(self, block: VarBlock) -> np.ndarray:
        """Reduced costs of ``block``: d obj* / d (active bound), shape ``(len(block),)``."""
        return self.col_dual[_checked(block, VarBlock, self.col_dual.size)].copy()

    def dual(self, con: ConBlock) -> np.ndarray:
        """Duals of a linear constraint block: d obj* / d rhs, shape ``(len(con),)``.

        For ``lb == ub == r`` this is d obj*/d r; for an inequality it is the derivative with
        respect to the active bound (``<= 0`` for an active upper bound, ``>= 0`` for an
        active lower bound, ``0`` if inactive).
        """
        return self.row_dual[_checked(con, ConBlock, self.row_dual.size)].copy()

    def cone_dual(self, cone: ConeBlock) -> np.ndarray:
        """Sensitivity of the optimal objective to the constant terms of a cone block.

        Returns
        -------
        numpy.ndarray
            For a cone from :meth:`~tsodso.opt.Model.add_soc` (``||A_i x + b_i|| <= c_i x +
            d_i``): shape ``(k, 1 + p)``; column 0 is d obj*/d d_i, columns ``1..p`` are
            d obj*/d b_i. For a rotated cone from :meth:`~tsodso.opt.Model.add_rotated_soc`:
            shape ``(k, 2 + p)`` with columns ``[u_const, v_const, w_const...]``.
        """
        g = self.soc_dual[_checked(cone, ConeBlock, self.soc_dual.size)]
        g = g.reshape(cone.k, cone.dim)
        if not cone.rotated:
            return g.copy()
        # Standard form of a rotated cone: t = (u + v)/sqrt2, y0 = (u - v)/sqrt2, y_w = w.
        out = np.empty_like(g)
        out[:, 0] = _SQRT_HALF * (g[:, 0] + g[:, 1])
        out[:, 1] = _SQRT_HALF * (g[:, 0] - g[:, 1])
        out[:, 2:] = g[:, 2:]
        return out


def _checked(block: _Block, kind: type[_Block], size: int) -> slice:
    if not isinstance(block, kind):
        raise TypeError(f"expected a {kind.__name__}, got {type(block).__name__}")
    if block.stop > size:
        raise ValueError(f"block {block.name!r} does not belong to the model of this solution")
    return block.slice
