"""``common``: one joint optimisation of transmission and all feeders, full information.

The TSO's DC-OPF and every feeder's SOC branch-flow OPF are assembled into a single conic
problem; each feeder's import ``P0`` is tied to an interface variable in the TSO's balance
at its interface bus. Its cost is the first-best: a lower bound for every other scheme.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import scipy.sparse as sp

from tsodso.actors import MessageBus
from tsodso.actors.tso import without_ders
from tsodso.coordination.outcome import Outcome, settle
from tsodso.coordination.protocol import Exchange
from tsodso.dso.dlmp import extract
from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions
from tsodso.errors import SolveError
from tsodso.model.system import System
from tsodso.opt import Model, SolveStatus
from tsodso.resources import check_problem, feeders_size, tso_size
from tsodso.rules.admission import der_control
from tsodso.tso import TsoMarket, TsoOptions
from tsodso.tso.offers import tso_view


def _check_joint_memory(system: System) -> None:
    """Refuse a joint problem (TSO and every feeder, all periods) too large for the memory
    available, before building it."""
    T, fids = system.n_periods, system.feeder_ids
    size = tso_size(system, T, interface_feeders=len(fids)) + feeders_size(system, T)
    check_problem(f"the joint problem of '{system.name}' ({len(fids)} feeders) over {T} "
                  "periods", size, "socp",
                  hint="use a scenario with fewer feeders or periods, or the admm scheme "
                       "(one feeder at a time)")


def build_joint(system: System, options: DsoOptions | None = None
                ) -> tuple[Model, TsoMarket, dict[str, DsoOpf], object]:
    """The joint model: TSO under ``tso/``, each feeder under ``<feeder_id>/``."""
    fids = system.feeder_ids
    _check_joint_memory(system)
    model = Model("common")
    view = tso_view(without_ders(system), system.rules)
    view.fixed_load = view.fixed_load.iloc[:, :0]  # feeders are modelled, not fixed loads
    tso = TsoMarket(system, TsoOptions(solver="clarabel"), view=view, model=model,
                    prefix="tso/", interface_feeders=fids)
    T, F = tso.T, len(fids)
    dopt = options or DsoOptions(ac_check=False)
    control = der_control(system)  # once for all feeders (admission reads every DER)
    ops = {f: DsoOpf(system, f, dopt, Boundary(price=np.zeros(T)), model=model, prefix=f"{f}/",
                     control=control.of(system, f))
           for f in fids}
    terms = [(tso.iface, 1.0)]
    for k, f in enumerate(fids):
        n = ops[f].tree.n
        pick = sp.csr_array((np.full(T, -1.0), (np.arange(T) * F + k, np.arange(T) * n)),
                            shape=(T * F, T * n))
        terms.append((ops[f].P, pick))
    coupling = model.add_constraints("coupling", terms, lb=0.0, ub=0.0)
    return model, tso, ops, coupling


def _fictitious_max(ops: dict[str, DsoOpf], sol: object) -> float:
    """Largest fictitious losses of the relaxation in any feeder and period, MW (0 when
    exact to solver accuracy)."""
    return max((float(op.fictitious_losses(sol).max(initial=0.0)) for op in ops.values()),
               default=0.0)


def _usable(sol: Any) -> bool:
    """An answer to settle: optimal, or ``feasible`` (Clarabel met only its reduced
    tolerances even after polishing; the outcome then says so, see :func:`_accuracy_note`)."""
    return sol.ok or sol.status is SolveStatus.FEASIBLE


def _accuracy_note(sol: Any, what: str) -> str:
    """The outcome's note on a joint solve that is not proven optimal."""
    return (f"{what} not solved to Clarabel's tolerances, so not proven optimal: "
            f"{sol.accuracy_note('$')}")


def _solve_joint(model: Model, ops: dict[str, DsoOpf], tighten: bool) -> tuple[Any, bool]:
    """Solve the joint model; tighten an inexact relaxation with a loss penalty of 0.1,
    then 1, then 10 $/MWh (as each DSO's OPF does). What remains inexact is reported by the
    outcome's status. Returns the solution and whether it was tightened.

    Clarabel often stops at ``AlmostSolved`` on this problem (the default scenario, seed
    2028: gap 2.9e-9 against the 1e-9 asked); the back end accepts such an answer only when
    it meets Clarabel's normal tolerances or its estimated cost error is negligible, and
    polishes it otherwise (:mod:`tsodso.opt._clarabel`); an answer still not accepted is
    ``feasible`` and reported by :func:`run_common`."""
    # iterative refinement off halves Clarabel's time on these problems (1.4 s instead of
    # 2.9 s on 10 feeders x 24 periods; objective equal to 1e-10), as for the DSO alone
    fast = {"iterative_refinement_enable": False}
    sol = model.solve("clarabel", tol=1e-9, options=fast)
    tightened = False
    penalty = DsoOptions().loss_penalty
    while _usable(sol) and tighten and penalty <= 10 and _fictitious_max(ops, sol) > 0:
        for op in ops.values():
            model.set_cost(op.L, np.tile(op.tree.r, op.T) * penalty * op.dt)
            op.applied_penalty = penalty
        sol = model.solve("clarabel", tol=1e-9, options=fast)
        tightened = True
        penalty *= 10
    if _usable(sol) and tightened and _fictitious_max(ops, sol) > 0:
        # what remains may be solver accuracy: once more with iterative refinement
        sol = model.solve("clarabel", tol=1e-9)
    return sol, tightened


def run_common(system: System, tighten: bool = True, bus: MessageBus | None = None
               ) -> Outcome:
    """Solve the joint problem and settle it (one party sees everything: no messages but
    the final interface schedules the settlement reads)."""
    started = time.perf_counter()
    ex = Exchange(system, "common", bus)
    model, tso, ops, coupling = build_joint(system)
    fids = list(ops)
    sol, tightened = _solve_joint(model, ops, tighten)
    unproven: list[str] = []  # notes on joint answers short of Clarabel's tolerances
    with_tools = [op for op in ops.values() if op.has_tools]
    if _usable(sol) and with_tools:
        if not sol.ok:  # the tools are held where an answer short of tolerance put them
            unproven.append(_accuracy_note(sol, "the joint problem with free voltage tools"))
        # the DSOs' tap changers and capacitor banks, free in the first solve, are held at
        # their positions (exact physics, fixed voltage control) and the market re-cleared
        for op in with_tools:
            op.fix_tools(sol)
        for op in ops.values():  # the penalty goes back to zero before the second solve
            model.set_cost(op.L, np.zeros(len(op.L)))
        sol, again = _solve_joint(model, ops, tighten)
        tightened = tightened or again
    if not _usable(sol):
        raise SolveError(f"common: joint problem ended '{sol.status.value}' ({sol.raw_status})",
                         sol.status.value)
    if not sol.ok:
        unproven.append(_accuracy_note(sol, "the joint problem"))
    price = sol.dual(coupling).reshape(tso.T, -1) / tso.dt  # interface price per feeder
    results = {}
    for k, (f, op) in enumerate(ops.items()):
        op.price_vec = price[:, k]
        results[f] = extract(op, sol, tightened)
    notes = ([f"relaxation tightened with a loss penalty of {ops[fids[0]].applied_penalty:g} "
              "$/MWh"] if tightened else []) + unproven
    # settle() redispatches the TSO around the joint solution's interface flows, which
    # reproduces the joint optimum's transmission part and its production cost
    outcome = settle("common", system, ops, results, ex, started, notes=notes)
    if unproven and outcome.status in (SolveStatus.OPTIMAL.value, SolveStatus.SHED.value):
        # its cost is known only to within the solver's accuracy, which the note gives
        outcome.status = SolveStatus.FEASIBLE.value
    return outcome
