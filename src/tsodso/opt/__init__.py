"""Small vectorised optimisation layer over HiGHS (LP/QP) and Clarabel (SOCP).

Build a :class:`Model` from named blocks of variables, linear rows and second-order cones,
then :meth:`Model.solve` it. All duals follow one convention for every back end: the
derivative of the optimal objective with respect to the constraint's right-hand side (the
active bound); see :mod:`tsodso.opt.solution`.
"""

from tsodso.opt.blocks import ConBlock, ConeBlock, VarBlock
from tsodso.opt.model import INF_BOUND, Coef, Model, Term, Terms
from tsodso.opt.solution import Solution
from tsodso.opt.status import SolveStatus, status_from_clarabel, status_from_highs

__all__ = [
    "INF_BOUND",
    "Coef",
    "ConBlock",
    "ConeBlock",
    "Model",
    "Solution",
    "SolveStatus",
    "Term",
    "Terms",
    "VarBlock",
    "status_from_clarabel",
    "status_from_highs",
]
