"""``admm``: distributed co-optimisation by consensus ADMM on the interface flows.

The TSO solves its DC-OPF with one interface variable ``w_f,t`` per feeder and period; each
DSO solves its own feeder OPF for its import ``p_f,t``; neither sees the other's grid. With
the scaled dual ``u`` and penalty ``rho`` ($/MW^2 per period)::

    w  <- argmin TSO cost + rho/2 ||w - p + u||^2            (TSO only)
    p_f <- argmin DSO_f cost + rho/2 ||w_f - p_f + u_f||^2    (each DSO, in parallel)
    u  <- u + w - p

until the primal residual ``||w - p||`` and dual residual ``rho ||p - p_prev||`` are small.
``rho * u`` converges to the interface price. ``rho`` adapts by residual balancing.
DSO subproblems run through an executor (in-process, or Dask workers); each worker keeps
the feeder models it has built, so iterations only change prices.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import pandas as pd

from tsodso.coordination.messages import MessageLog
from tsodso.coordination.outcome import Outcome, _without_ders, settle
from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions, DsoResult
from tsodso.errors import TsodsoError
from tsodso.model.system import System
from tsodso.parallel import Executor, InProcessExecutor
from tsodso.tso import TsoMarket, TsoOptions
from tsodso.tso.offers import tso_view

_MODELS: dict[tuple[str, str], tuple[DsoOpf, float]] = {}  # per process: built feeder models

ITER_OPTIONS = DsoOptions(decompose=False, ac_check=False, tighten=False)


def _dso_step(key: str, system: System, feeder_id: str, target: np.ndarray, rho: float
              ) -> np.ndarray:
    """One DSO update: min cost + rho/2 ||p - target||^2; returns the import p (MW)."""
    cached = _MODELS.get((key, feeder_id))
    if cached is None or cached[1] != rho:
        op = DsoOpf(system, feeder_id, ITER_OPTIONS, Boundary(price=np.zeros(system.n_periods)))
        diag = np.zeros((op.T, op.tree.n))
        diag[:, 0] = rho * op.dt
        op.model.add_quadratic_cost(op.P, diag.ravel())
        _MODELS[(key, feeder_id)] = cached = (op, rho)
    op = cached[0]
    op.set_price(-rho * target)  # linear part of rho/2 (p - target)^2, per MWh
    sol = op.model.solve("clarabel", tol=1e-9)
    return sol.value(op.P).reshape(op.T, op.tree.n)[:, 0]


def run_admm(system: System, rho: float = 20.0, max_iterations: int = 300,
             tol_mw: float = 1e-3, executor: Executor | None = None, **_: Any) -> Outcome:
    """Run consensus ADMM (see module docstring) and settle the agreed schedules."""
    started = time.perf_counter()
    log = MessageLog()
    ex = executor or InProcessExecutor()
    fids = system.feeder_ids
    F, T = len(fids), system.n_periods
    view = tso_view(_without_ders(system), system.rules)
    view.fixed_load = view.fixed_load.iloc[:, :0]

    def make_tso(penalty: float) -> TsoMarket:
        market = TsoMarket(system, TsoOptions(solver="clarabel"), view=view,
                           interface_feeders=fids)
        market.model.add_quadratic_cost(market.iface, np.full(T * F, penalty * market.dt))
        return market

    tso = make_tso(rho)
    dt = tso.dt
    key = uuid.uuid4().hex
    p = np.zeros((T, F))
    u = np.zeros((T, F))
    rows = []
    status = "not converged"
    k = 0
    for k in range(1, max_iterations + 1):
        tso.model.set_cost(tso.iface, (rho * dt * (u - p)).ravel())
        sol = tso.model.solve("clarabel", tol=1e-9)
        w = sol.value(tso.iface).reshape(T, F)
        targets = [log.send("price", "tso", f"dso:{f}", w[:, j] + u[:, j], k)
                   for j, f in enumerate(fids)]
        new = ex.map(_dso_step, [key] * F, [system] * F, fids, targets, [rho] * F)
        p_prev = p
        p = np.column_stack(new)
        for j, f in enumerate(fids):
            log.send("interface_schedule", f"dso:{f}", "tso", p[:, j], k)
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
            tso = make_tso(rho)
    for f in fids:
        _MODELS.pop((key, f), None)
    # the DSOs keep the agreed schedules; final solves give their DLMPs
    ops: dict[str, DsoOpf] = {}
    results: dict[str, DsoResult] = {}
    notes = []
    for j, f in enumerate(fids):
        ops[f] = DsoOpf(system, f, DsoOptions(ac_check=False), Boundary(schedule_mw=p[:, j]))
        try:
            results[f] = ops[f].solve()
        except TsodsoError:
            # the agreed schedule is feasible only to ADMM's tolerance: solve at the TSO's
            # last interface LMP instead
            bus = int(system.feeders.set_index("feeder_id").interface_bus[f])
            lmp = tso._extract(sol).lmp[bus].to_numpy()  # noqa: SLF001
            ops[f] = DsoOpf(system, f, DsoOptions(ac_check=False), Boundary(price=lmp))
            results[f] = ops[f].solve()
            notes.append(f"{f}: final dispatch at the consensus price (schedule numerically "
                         "infeasible)")
    residuals = pd.DataFrame(rows)
    notes += [] if status == "optimal" else [
        f"ADMM did not converge in {max_iterations} iterations (primal residual "
        f"{rows[-1]['primal_residual']:.3g} MW)"]
    return settle("admm", system, ops, results, log, started, iterations=k,
                  residuals=residuals, notes=notes, status=status)
