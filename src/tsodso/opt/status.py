"""Solver-independent solve status and mappings from the HiGHS / Clarabel statuses."""

from __future__ import annotations

from enum import Enum
from typing import Any

__all__ = ["SolveStatus", "status_from_clarabel", "status_from_highs"]


class SolveStatus(str, Enum):  # noqa: UP042 - a plain ``str`` mixin is the intended API
    """Normalised outcome of a solve, shared by every back end."""

    OPTIMAL = "optimal"
    INFEASIBLE = "infeasible"
    UNBOUNDED = "unbounded"
    INFEASIBLE_OR_UNBOUNDED = "infeasible_or_unbounded"
    ITERATION_LIMIT = "iteration_limit"
    TIME_LIMIT = "time_limit"
    NUMERICAL = "numerical"
    ERROR = "error"
    # Set by tsodso on a solved model whose answer is not all it claims to be:
    #: the relaxation (SOC branch flow) was not exact; the figures say by how much
    INEXACT = "inexact"
    #: the answer is feasible (its physics exact) but its optimality is not proven: its
    #: cost lies within a reported gap of the optimum. From a solver: Clarabel's
    #: ``AlmostSolved`` that no polish made acceptable, feasible and optimal only to its
    #: reduced tolerances (``Solution.cost_error`` estimates the gap)
    FEASIBLE = "feasible"
    #: solved, but the optimum sheds load, leaves EV energy unmet, spills or is short of
    #: reserves (all priced; the result's ``shortfalls`` says how much and at what cost)
    SHED = "shed"

    @property
    def is_optimal(self) -> bool:
        """``True`` only for :attr:`OPTIMAL`."""
        return self is SolveStatus.OPTIMAL


_HIGHS: dict[str, SolveStatus] = {
    "kOptimal": SolveStatus.OPTIMAL,
    # An empty model (no columns) is trivially solved.
    "kModelEmpty": SolveStatus.OPTIMAL,
    "kInfeasible": SolveStatus.INFEASIBLE,
    "kUnbounded": SolveStatus.UNBOUNDED,
    "kUnboundedOrInfeasible": SolveStatus.INFEASIBLE_OR_UNBOUNDED,
    "kIterationLimit": SolveStatus.ITERATION_LIMIT,
    "kTimeLimit": SolveStatus.TIME_LIMIT,
    "kSolveError": SolveStatus.NUMERICAL,
    "kUnknown": SolveStatus.NUMERICAL,
}

_CLARABEL: dict[str, SolveStatus] = {
    "Solved": SolveStatus.OPTIMAL,
    # "AlmostSolved" met only the reduced tolerances (``reduced_tol_*``: residuals up to
    # 1e-4, gap 5e-5), which can leave the cost far from the optimum: not optimal. The
    # Clarabel back end reports it optimal when its point meets the normal tolerances or
    # its estimated cost error is negligible, and polishes it otherwise
    # (tsodso.opt._clarabel). The infeasibility "Almost" statuses keep the exact status;
    # the raw name is kept on the Solution.
    "AlmostSolved": SolveStatus.FEASIBLE,
    "PrimalInfeasible": SolveStatus.INFEASIBLE,
    "AlmostPrimalInfeasible": SolveStatus.INFEASIBLE,
    "DualInfeasible": SolveStatus.UNBOUNDED,
    "AlmostDualInfeasible": SolveStatus.UNBOUNDED,
    "MaxIterations": SolveStatus.ITERATION_LIMIT,
    "MaxTime": SolveStatus.TIME_LIMIT,
    "NumericalError": SolveStatus.NUMERICAL,
    "InsufficientProgress": SolveStatus.NUMERICAL,
}


def _status_name(status: Any) -> str:
    name = getattr(status, "name", None)
    if isinstance(name, str):
        return name
    text = str(status)
    # "HighsModelStatus.kOptimal" -> "kOptimal"
    return text.rsplit(".", 1)[-1]


def status_from_highs(model_status: Any) -> SolveStatus:
    """Map a HiGHS model status to a :class:`SolveStatus`.

    Parameters
    ----------
    model_status
        A ``highspy.HighsModelStatus`` member or its name (e.g. ``"kOptimal"``).

    Returns
    -------
    SolveStatus
        The normalised status; statuses with no counterpart (load/model/presolve errors,
        interrupts, objective bound/target, memory limit, ...) map to ``ERROR``.
    """
    return _HIGHS.get(_status_name(model_status), SolveStatus.ERROR)


def status_from_clarabel(status: Any) -> SolveStatus:
    """Map a Clarabel ``SolverStatus`` to a :class:`SolveStatus`.

    Parameters
    ----------
    status
        A ``clarabel.SolverStatus`` member or its name (e.g. ``"Solved"``).

    Returns
    -------
    SolveStatus
        The normalised status. ``AlmostSolved`` (only Clarabel's reduced tolerances met)
        maps to ``FEASIBLE``, never ``OPTIMAL``: the back end decides from the answer's
        residuals and gap whether it is accurate enough to be optimal (see
        :mod:`tsodso.opt._clarabel`). ``AlmostPrimalInfeasible`` / ``AlmostDualInfeasible``
        map to ``INFEASIBLE`` / ``UNBOUNDED``; ``Unsolved`` and ``CallbackTerminated`` map to
        ``ERROR``.
    """
    return _CLARABEL.get(_status_name(status), SolveStatus.ERROR)
