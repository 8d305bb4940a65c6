"""``admm``: distributed co-optimisation by consensus ADMM on the interface flows.

The TSO solves its DC-OPF with one interface variable ``w_f,t`` per feeder and period; each
DSO solves its own feeder OPF for its import ``p_f,t``; neither sees the other's grid. With
the scaled dual ``u`` and penalty ``rho`` ($/MW^2 per period)::

    w  <- argmin TSO cost + rho/2 ||w - p + u||^2            (TSO only)
    p_f <- argmin DSO_f cost + rho/2 ||w_f - p_f + u_f||^2    (each DSO, in parallel)
    u  <- u + w - p

until the primal residual ``||w - p||`` and dual residual ``rho ||p - p_prev||`` are small.
``rho * u`` converges to the interface price. ``rho`` adapts by residual balancing.

The DSO parties (:class:`~tsodso.actors.dso.Dso`, one per DSO, holding its feeders) live
where the executor runs them: in this process, or on Dask workers, one chunk of DSOs per
worker (:meth:`Executor.partition`: their feeders are sent once). Each iteration the TSO's
targets go through the bus as typed messages (:class:`~tsodso.actors.InterfaceSchedule`
with the deviation penalty ``rho``), travel to the worker holding their recipient, and the
DSO parties' replies come back through the bus to the TSO: the log holds every message of
the protocol. A DSO party keeps the feeder models it has built, so iterations only change
prices; the parties are dropped when the run ends. Their final solves (which give the
DLMPs) run there too.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pandas as pd

from tsodso import progress
from tsodso.actors import InterfaceSchedule, Message, MessageBus, Party
from tsodso.actors.dso import Dso, solve_subproblem
from tsodso.actors.tso import Tso
from tsodso.coordination.outcome import Outcome, settle
from tsodso.coordination.protocol import TSO, Exchange
from tsodso.dso.inputs import FeederInputs
from tsodso.dso.opf import DsoOpf, DsoResult, feeders_only
from tsodso.model.system import System
from tsodso.parallel import Executor, InProcessExecutor, Partition

# The DSO parties living in this process, keyed by (run key, DSO name): built from their
# chunk of the system at the first message of a run, dropped when the run ends.
_PARTIES: dict[tuple[str, str], Dso] = {}
# Clarabel keeps its KKT system, factorisation and iterates between solves: measured 11 MB
# for a 33-bus feeder over 24 periods (5,166 variables), about 2.1 kB per variable. With
# ``keep_solvers=None`` a process keeps solvers while their estimate stays within the budget
# and frees the others' after every solve (measured at 1,000 feeders in process: the same
# time, 3.8 GB peak instead of 13.6 GB).
SOLVER_BYTES_PER_VARIABLE = 2.1e3
SOLVER_BUDGET_BYTES = 2e9
_KEPT_BYTES: dict[str, float] = {}  # per run key: estimated bytes of the solvers kept here


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


def _dso_chunk(system: System, dso_names: list[str]) -> System:
    """What the workers holding ``dso_names`` receive once: those DSOs' feeders (no
    transmission grid)."""
    by_dso = system.dso_feeders
    return feeders_only(system, [f for name in dso_names for f in by_dso[name]])


def _party(key: str, chunk: System, name: str) -> Dso:
    """DSO ``name`` of run ``key`` in this process, built from ``chunk`` at first use."""
    party = _PARTIES.get((key, name))
    if party is None:
        party = _PARTIES[(key, name)] = Dso.of(chunk, chunk.dso_feeders[name], name=name)
    return party


def _consensus_steps(chunk: System, dso_names: list[str], inboxes: list[list[Message]],
                     key: str, keep_solvers: bool | None) -> list[list[Message]]:
    """On the worker holding ``dso_names``: each DSO party answers the targets in its
    inbox (:meth:`Dso.consensus_step`); returns its replies (one task per worker and
    iteration)."""
    out = []
    for name, inbox in zip(dso_names, inboxes, strict=True):
        party = _party(key, chunk, name)
        keeps = lambda op: _keeps_solver(key, op, keep_solvers)  # noqa: E731
        out.append([party.consensus_step(m, keeps) for m in inbox
                    if isinstance(m, InterfaceSchedule)])
    return out


def _consensus_prices(chunk: System, dso_names: list[str], key: str
                      ) -> list[dict[str, DsoResult]]:
    """On the worker: each DSO's final dispatch and prices per feeder
    (:meth:`Dso.consensus_prices`)."""
    return [{f: party.consensus_prices(f) for f in party.feeder_ids}
            for party in (_party(key, chunk, name) for name in dso_names)]


def _forget_parties(chunk: System, dso_names: list[str], key: str) -> list[None]:
    """Drop this process's DSO parties of run ``key`` (the run's last task)."""
    for name in dso_names:
        party = _PARTIES.pop((key, name), None)
        if party is not None:
            party.forget_consensus()
    _KEPT_BYTES.pop(key, None)
    return [None] * len(dso_names)


@contextmanager
def _placed_dsos(ex: Executor, system: System, key: str) -> Iterator[Partition]:
    """The system's DSOs partitioned over the executor's workers for run ``key`` (their
    feeders sent once); on exit each worker drops its DSO parties and the chunks are
    released."""
    with ex.partition(system, list(system.dso_feeders), _dso_chunk) as part:
        try:
            yield part
        finally:
            ex.map_chunks(part, _forget_parties, shared=(key,))


def _final_dispatch(ex: Executor, part: Partition, system: System, key: str
                    ) -> tuple[dict[str, Dso | FeederInputs], dict[str, DsoResult]]:
    """The DSOs' final dispatch and prices (:func:`_consensus_prices`, run where the
    parties live): (what :func:`settle` reads of each feeder, results). That is the DSO
    party when it lives in this process, else the feeder's :class:`FeederInputs` (solver
    models do not pickle)."""
    solved = ex.map_chunks(part, _consensus_prices, shared=(key,))
    held: dict[str, Dso | FeederInputs] = {}
    results: dict[str, DsoResult] = {}
    for name, per_feeder in zip(part.keys, solved, strict=True):
        party = _PARTIES.get((key, name))
        for f, result in per_feeder.items():
            held[f] = party if party is not None else FeederInputs.of(system, f)
            results[f] = result
    return held, results


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
    # the TSO holds no feeder data: it learns the imports only
    tso = Tso.of(system).consensus_market(fids, rho)
    dt = tso.dt
    key = uuid.uuid4().hex
    p = np.zeros((T, F))
    u = np.zeros((T, F))
    rows = []
    status = "not converged"
    k = 0
    with (_placed_dsos(ex, system, key) as part,
          progress.task("admm iterations", total=max_iterations) as step):
        for k in range(1, max_iterations + 1):
            tso.model.set_cost(tso.iface, (rho * dt * (u - p)).ravel())
            sol = solve_subproblem(tso.model, "TSO subproblem")
            w = sol.value(tso.iface).reshape(T, F)
            # the TSO sends each DSO its interface targets w + u (MW per period) with rho,
            # the price of deviating from them; the messages travel to the DSO parties
            # (on the workers), whose replies come back through the bus to the TSO
            inboxes = msgs.consensus_targets({f: w[:, j] + u[:, j] for j, f in enumerate(fids)},
                                             rho, k)
            replies = ex.map_chunks(part, _consensus_steps,
                                    [inboxes.get(Party.dso(n), []) for n in part.keys],
                                    shared=(key, keep_solvers))
            got = {m.feeder_id: np.array(m.p_mw)  # type: ignore[attr-defined]
                   for m in msgs.post([m for r in replies for m in r])
                   if m.envelope.recipient == TSO}
            p_prev = p
            p = np.column_stack([got[f] for f in fids])
            u = u + w - p
            r = float(np.linalg.norm(w - p))
            s = float(rho * np.linalg.norm(p - p_prev))
            rows.append({"iteration": k, "primal_residual": r, "dual_residual": s, "rho": rho})
            step(info=f"residuals {r:.2g} MW primal, {s:.2g} dual")
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
        ops, results = _final_dispatch(ex, part, system, key)
    residuals = pd.DataFrame(rows)
    notes = [] if status == "optimal" else [
        f"ADMM did not converge in {max_iterations} iterations (primal residual "
        f"{rows[-1]['primal_residual']:.3g} MW)"]
    return settle("admm", system, ops, results, msgs, started, iterations=k,
                  residuals=residuals, notes=notes, status=status)
