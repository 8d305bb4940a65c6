"""``admm``: distributed co-optimisation by consensus ADMM on the interface flows.

The TSO solves its DC-OPF with one interface variable ``w_f,t`` per feeder and period; each
DSO solves its own feeder OPF for its import ``p_f,t``; neither sees the other's grid. With
the scaled dual ``u`` and penalty ``rho`` ($/MW^2 per period)::

    w  <- argmin TSO cost + rho/2 ||w - p + u||^2            (TSO only)
    p_f <- argmin DSO_f cost + rho/2 ||w_f - p_f + u_f||^2    (each DSO, in parallel)
    u  <- u + w - p

until the primal residual ``||w - p||`` and dual residual ``rho ||p - p_prev||`` are small.
``rho * u`` converges to the interface price. ``rho`` adapts by residual balancing.
DSO subproblems run through an executor (in-process, or Dask workers): the feeders are
partitioned once, one chunk of feeders per worker (:meth:`Executor.partition`), and each
iteration sends one task per worker with its feeders' targets. A worker keeps the feeder
models it has built, so iterations only change prices; the models are dropped when the run
ends. The final solves at the agreed schedules (which give the DLMPs) run there too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pandas as pd

from tsodso.actors import MessageBus
from tsodso.actors.tso import tso_part
from tsodso.coordination.outcome import Outcome, settle
from tsodso.coordination.protocol import Exchange
from tsodso.dso.inputs import FeederInputs
from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions, DsoResult, feeders_only
from tsodso.errors import SolveError
from tsodso.model.system import System
from tsodso.parallel import Executor, InProcessExecutor, Partition
from tsodso.tso import TsoMarket, TsoOptions
from tsodso.tso.offers import tso_view

# per process, keyed by (run key, feeder id): the iteration models (with their rho and
# whether they keep their solver) and the models of the final solves
_MODELS: dict[tuple[str, str], tuple[DsoOpf, float, bool]] = {}
_FINAL: dict[tuple[str, str], DsoOpf] = {}
# Clarabel keeps its KKT system, factorisation and iterates between solves: measured 11 MB
# for a 33-bus feeder over 24 periods (5,166 variables), about 2.1 kB per variable. With
# ``keep_solvers=None`` a process keeps solvers while their estimate stays within the budget
# and frees the others' after every solve (measured at 1,000 feeders in process: the same
# time, 3.8 GB peak instead of 13.6 GB).
SOLVER_BYTES_PER_VARIABLE = 2.1e3
SOLVER_BUDGET_BYTES = 2e9
_KEPT_BYTES: dict[str, float] = {}  # per run key: estimated bytes of the solvers kept here

ITER_OPTIONS = DsoOptions(decompose=False, ac_check=False, tighten=False)
# Clarabel without iterative refinement: half the time per solve, same iterates to 1e-9
# (as in the DSO's own solves and in ``common``)
FAST = {"iterative_refinement_enable": False}
FINAL_OPTIONS = DsoOptions(ac_check=False)


def _keeps_solver(key: str, op: DsoOpf, keep_solvers: bool | None) -> bool:
    """Whether ``op`` keeps its Clarabel solver between iterations: as ``keep_solvers``
    says, or (None) while the solvers kept in this process for run ``key`` fit the budget."""
    if keep_solvers is not None:
        return keep_solvers
    need = op.model.num_vars * SOLVER_BYTES_PER_VARIABLE
    if _KEPT_BYTES.get(key, 0.0) + need > SOLVER_BUDGET_BYTES:
        return False
    _KEPT_BYTES[key] = _KEPT_BYTES.get(key, 0.0) + need
    return True


def _proximal(op: DsoOpf, rho: float) -> np.ndarray:
    """Hessian diagonal over the feeder's ``P`` variables of rho/2 (p - target)^2: rho per
    period on the root import (the iteration model has no other quadratic cost on ``P``:
    its boundary is a linear price)."""
    diag = np.zeros((op.T, op.tree.n))
    diag[:, 0] = rho * op.dt
    return diag.ravel()


def _dso_step(key: str, system: System, feeder_id: str, target: np.ndarray, rho: float,
              keep_solvers: bool | None = None) -> np.ndarray:
    """One DSO update: min cost + rho/2 ||p - target||^2 (rho in $/MW^2 per period, target
    in MW per period); returns the import p (MW per period). The model is built once per
    run ``key`` and kept in this process; a model that does not keep its Clarabel solver
    (:func:`_keeps_solver`) frees it after the solve."""
    cached = _MODELS.get((key, feeder_id))
    if cached is None:
        op = DsoOpf(system, feeder_id, ITER_OPTIONS, Boundary(price=np.zeros(system.n_periods)))
        op.model.add_quadratic_cost(op.P, _proximal(op, rho))
        cached = (op, rho, _keeps_solver(key, op, keep_solvers))
        _MODELS[(key, feeder_id)] = cached
    elif cached[1] != rho:  # new penalty: change the Hessian, keep the built model
        op = cached[0]
        op.model.set_quadratic_cost(op.P, _proximal(op, rho))
        _MODELS[(key, feeder_id)] = cached = (op, rho, cached[2])
    op = cached[0]
    op.set_price(-rho * target)  # linear part of rho/2 (p - target)^2, per MWh
    sol = _solve(op.model, f"DSO subproblem of feeder {feeder_id}")
    if not cached[2]:
        op.model.free_solvers()
    return sol.value(op.P).reshape(op.T, op.tree.n)[:, 0]


def _solve(model: Any, what: str) -> Any:
    """Clarabel without iterative refinement; if that stops short of optimal, again with
    Clarabel's defaults; a subproblem that still fails ends the run naming itself."""
    sol = model.solve("clarabel", tol=1e-9, options=FAST)
    if not sol.ok:
        sol = model.solve("clarabel", tol=1e-9)
    if not sol.ok:
        raise SolveError(f"admm: {what} ended '{sol.status.value}' ({sol.raw_status})",
                         sol.status.value)
    return sol


def _dso_steps(system: System, feeder_ids: list[str], targets: list[np.ndarray], key: str,
               rho: float, keep_solvers: bool | None = None) -> list[np.ndarray]:
    """:func:`_dso_step` for one chunk of feeders (one task per worker and iteration)."""
    return [_dso_step(key, system, f, t, rho, keep_solvers)
            for f, t in zip(feeder_ids, targets, strict=True)]


def _forget_models(system: System, feeder_ids: list[str], key: str) -> list[None]:
    """Drop this process's models of run ``key`` for ``feeder_ids`` (the run's last task)."""
    for f in feeder_ids:
        _MODELS.pop((key, f), None)
        _FINAL.pop((key, f), None)
    _KEPT_BYTES.pop(key, None)
    return [None] * len(feeder_ids)


@contextmanager
def _placed_feeders(ex: Executor, system: System, key: str) -> Iterator[Partition]:
    """The system's feeders partitioned over the executor's workers for run ``key``; on
    exit each worker drops the models it built and the chunks are released."""
    with ex.partition(system, system.feeder_ids, feeders_only) as part:
        try:
            yield part
        finally:
            ex.map_chunks(part, _forget_models, shared=(key,))


def _final_solves(system: System, feeder_ids: list[str], targets: list[np.ndarray],
                  key: str, rho: float) -> list[DsoResult]:
    """Each feeder's last ADMM subproblem, min cost + rho/2 ||p - target||^2 (``targets``
    in MW per period, ``rho`` in $/MW^2 per period), solved once more with prices
    extracted: its import is the DSO's last iterate and its root price, rho (p - target),
    is the consensus interface price (``-rho u``), so the DLMPs are those of the agreed
    operation, not the duals of a feeder held to a schedule it meets only to ADMM's
    tolerance. The solved models stay in this process under run ``key``."""
    out: list[DsoResult] = []
    for f, target in zip(feeder_ids, targets, strict=True):
        op = DsoOpf(system, f, FINAL_OPTIONS,
                    Boundary(price=-rho * np.asarray(target), price_c2=rho / 2))
        out.append(op.solve())
        op.model.free_solvers()  # settle reads the feeder's data, not its solver
        _FINAL[(key, f)] = op
    return out


def _final_dispatch(ex: Executor, part: Partition, system: System,
                    targets: list[np.ndarray], key: str, rho: float
                    ) -> tuple[dict[str, DsoOpf | FeederInputs], dict[str, DsoResult]]:
    """The DSOs' final dispatch and prices (:func:`_final_solves`, run on the workers):
    (what :func:`settle` reads of each feeder, results). What settle reads is the feeder's
    model when the solve ran in this process, else its :class:`FeederInputs` (solver
    models do not pickle)."""
    solved = ex.map_chunks(part, _final_solves, targets, shared=(key, rho))
    ops: dict[str, DsoOpf | FeederInputs] = {}
    results: dict[str, DsoResult] = {}
    for f, result in zip(part.keys, solved, strict=True):
        ops[f] = _FINAL.pop((key, f), None) or FeederInputs.of(system, f)
        results[f] = result
    return ops, results


def run_admm(system: System, rho: float = 20.0, max_iterations: int = 300,
             tol_mw: float = 1e-3, executor: Executor | None = None,
             keep_solvers: bool | None = None, bus: MessageBus | None = None) -> Outcome:
    """Run consensus ADMM (see module docstring) and settle the agreed schedules.

    ``rho`` is the initial penalty ($/MW^2 per period), ``tol_mw`` the residual tolerance
    per interface and period (MW). ``keep_solvers``: whether each feeder keeps its Clarabel
    solver between iterations (a 33-bus feeder over 24 periods: 11 MB kept, under 1 MB
    freed; a freed solver is set up again at every solve, about 10 % more time per solve
    with few feeders and none measured with 1,000). ``None`` (default): each process keeps
    solvers within ``SOLVER_BUDGET_BYTES`` (2 GB) and frees the rest."""
    started = time.perf_counter()
    msgs = Exchange(system, "admm", bus)
    ex = executor or InProcessExecutor()
    fids = system.feeder_ids
    F, T = len(fids), system.n_periods
    tso_system = tso_part(system)  # the TSO holds no feeder data: it learns imports only
    view = tso_view(tso_system, system.rules)
    view.fixed_load = view.fixed_load.iloc[:, :0]

    tso = TsoMarket(tso_system, TsoOptions(solver="clarabel"), view=view,
                    interface_feeders=fids)
    tso.model.add_quadratic_cost(tso.iface, np.full(T * F, rho * tso.dt))
    dt = tso.dt
    key = uuid.uuid4().hex
    p = np.zeros((T, F))
    u = np.zeros((T, F))
    rows = []
    status = "not converged"
    k = 0
    targets: list[np.ndarray] = []
    step_rho = rho
    with _placed_feeders(ex, system, key) as part:
        for k in range(1, max_iterations + 1):
            tso.model.set_cost(tso.iface, (rho * dt * (u - p)).ravel())
            sol = _solve(tso.model, "TSO subproblem")
            w = sol.value(tso.iface).reshape(T, F)
            # the TSO sends each DSO its interface target w + u (MW per period): with rho,
            # the DSO's price for deviating from it
            sent = msgs.interface_schedules({f: w[:, j] + u[:, j] for j, f in enumerate(fids)},
                                            to_tso=False, iteration=k)
            targets = [sent[f] for f in fids]
            p_prev = p
            step_rho = rho
            p = np.column_stack(ex.map_chunks(part, _dso_steps, targets,
                                             shared=(key, rho, keep_solvers)))
            got = msgs.interface_schedules({f: p[:, j] for j, f in enumerate(fids)},
                                           to_tso=True, iteration=k)
            p = np.column_stack([got[f] for f in fids])
            u = u + w - p
            r = float(np.linalg.norm(w - p))
            s = float(rho * np.linalg.norm(p - p_prev))
            rows.append({"iteration": k, "primal_residual": r, "dual_residual": s, "rho": rho})
            scale = np.sqrt(T * F)
            if r < tol_mw * scale and s < tol_mw * scale * max(rho, 1.0):
                status = "optimal"
                break
            if r > 10 * s or s > 10 * r:  # residual balancing: rescale rho (and u with it)
                factor = 2.0 if r > 10 * s else 0.5
                u = u / factor
                rho *= factor
                tso.model.set_quadratic_cost(tso.iface, np.full(T * F, rho * dt))
        # the last subproblems once more, with prices: the consensus DLMPs
        ops, results = _final_dispatch(ex, part, system, targets, key, step_rho)
    residuals = pd.DataFrame(rows)
    notes = [] if status == "optimal" else [
        f"ADMM did not converge in {max_iterations} iterations (primal residual "
        f"{rows[-1]['primal_residual']:.3g} MW)"]
    return settle("admm", system, ops, results, msgs, started, iterations=k,
                  residuals=residuals, notes=notes, status=status)
