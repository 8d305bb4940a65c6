"""The DSO party: it holds its feeders and the DERs on them, owns their OPF models and is the
only code that changes them.

A :class:`Dso` is built from its own view of the data (:meth:`Dso.of`: the system cut to
its feeders, without the transmission grid) and answers the messages a scheme sends it:
an interface price, an interface schedule, the market's DER schedule, or a request to
prequalify its DERs. What it returns is what it would send back (its import, its limits,
its dispatch): the scheme puts that into a message.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from tsodso.actors.bus import MessageBus
from tsodso.actors.messages import InterfaceSchedule
from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions, DsoResult, feeders_only
from tsodso.errors import SolveError, TsodsoError
from tsodso.model.system import System
from tsodso.powerflow import FeederPowerFlow, der_injections
from tsodso.rules.admission import der_control
from tsodso.tso.offers import uncontrolled_dispatch

#: Options of the DSO's operating OPF (the AC check runs once, in the settlement).
OPERATING = DsoOptions(ac_check=False)
#: Options of the models of consensus (ADMM) iterations: no prices, no tightening.
CONSENSUS = DsoOptions(decompose=False, ac_check=False, tighten=False)
# Clarabel without iterative refinement: half the time per solve, same iterates to 1e-9
# (as in the DSO's own solves and in ``common``)
FAST = {"iterative_refinement_enable": False}


def solve_subproblem(model: Any, what: str) -> Any:
    """Clarabel without iterative refinement; if that stops short of optimal, again with
    Clarabel's defaults; a subproblem that still fails ends the run naming itself."""
    sol = model.solve("clarabel", tol=1e-9, options=FAST)
    if not sol.ok:
        sol = model.solve("clarabel", tol=1e-9)
    if not sol.ok:
        raise SolveError(f"admm: {what} ended '{sol.status.value}' ({sol.raw_status})",
                         sol.status.value)
    return sol


class Dso:
    """One DSO and its feeders.

    Parameters
    ----------
    name : str
        The DSO's name (its party is ``dso:<name>``).
    system : System
        The DSO's view: its feeders, their DERs, profiles and rules, and no transmission
        tables (:meth:`of` builds it). A view holding transmission buses is refused.
    """

    def __repr__(self) -> str:
        return f"Dso({self.name!r}, feeders={self.feeder_ids})"

    def __init__(self, name: str, system: System) -> None:
        if len(system.grid.buses):
            raise TsodsoError(f"DSO {name}: its view must not hold the transmission grid "
                              "(build it with Dso.of)")
        self.name = name
        self.system = system
        self.feeder_ids = list(system.feeder_ids)
        self._models: dict[str, DsoOpf] = {}
        # consensus iterations: feeder -> (model, its penalty, whether it keeps its solver)
        # and the last target it answered (MW per period, penalty $/MW^2h)
        self._consensus: dict[str, tuple[DsoOpf, float, bool]] = {}
        self._last_target: dict[str, tuple[np.ndarray, float]] = {}
        #: feeders run at a schedule the DSO never received (:meth:`run_unmanaged`):
        #: their model has the limits lifted
        self.unmanaged: set[str] = set()

    @classmethod
    def of(cls, system: System, feeder_ids: list[str], name: str | None = None) -> Dso:
        """The DSO of ``feeder_ids``, holding only its part of ``system``."""
        return cls(name or ",".join(feeder_ids), feeders_only(system, feeder_ids))

    # ----------------------------------------------------------- what it sends
    def _uncontrolled(self, feeder_id: str) -> tuple[FeederPowerFlow, pd.DataFrame]:
        """The feeder's power flow and its DERs' uncontrolled injections per bus (periods
        x bus_id, MW)."""
        s = self.system
        base = uncontrolled_dispatch(s)
        ids = s.ders.der_id[s.ders.feeder_id == feeder_id]
        inj_p, _ = der_injections(s, feeder_id, base[ids])
        return FeederPowerFlow(s.feeder(feeder_id)), inj_p

    def forecast_import(self, feeder_id: str) -> np.ndarray:
        """The feeder's import (MW per period) when nobody dispatches its DERs: an AC power
        flow of its loads and the DERs' uncontrolled output."""
        pf, inj_p = self._uncontrolled(feeder_id)
        return pf.run_feeder_loads(inj_p, profiles=self.system.profiles
                                   ).substation_p_mw.to_numpy()

    def forecast_sensitivity(self, feeder_id: str, eps_mw: float = 1e-3
                             ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """How the forecast import (:meth:`forecast_import`) moves with one more MW (MVAr)
        of demand at each bus: ``dS/dP_j`` and ``dS/dQ_j`` (periods x bus_id, 1 plus the
        marginal loss factor at the forecast's operating point), by forward differences of
        ``eps_mw`` in one batch AC power flow (every period x bus perturbed at once)."""
        pf, inj_p = self._uncontrolled(feeder_id)
        load_p, load_q = pf.feeder_loads(self.system.profiles)
        buses = load_p.columns
        inj = inj_p.reindex(columns=buses, fill_value=0.0).to_numpy()
        T, n = load_p.shape
        p0 = pf.run(load_p, load_q, inj).substation_p_mw.to_numpy()
        out = []
        for which in ("p", "q"):
            lp = np.repeat(load_p.to_numpy()[:, None, :], n, axis=1)
            lq = np.repeat(load_q.to_numpy()[:, None, :], n, axis=1)
            bump = lp if which == "p" else lq
            bump[:, np.arange(n), np.arange(n)] += eps_mw  # (period, perturbed bus, bus)
            res = pf.run(lp.reshape(T * n, n), lq.reshape(T * n, n),
                         np.repeat(inj, n, axis=0))
            moved = res.substation_p_mw.to_numpy().reshape(T, n)
            out.append(pd.DataFrame((moved - p0[:, None]) / eps_mw, columns=buses))
        return out[0], out[1]

    def prequalify(self, feeder_id: str, margin: float = 0.9
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Per-DER upper and lower limits (periods x der_id, MW) that the feeder carries
        with every DER at its limit at once. Two LinDistFlow OPFs (energy limits of storage
        and EVs lifted, so only the network binds): one maximises all injections
        (generation, discharge) with nothing charging, one maximises all consumption
        (charging) with nothing generating. Voltages and flows are monotone in the
        injections there, so any dispatch between the two envelopes respects the grid (to
        LinDistFlow's approximation, so ratings are derated by ``margin`` to cover losses
        and the AC current; the AC check after the market reports any residue)."""
        system = copy.copy(self.system)
        system.feeder_lines = system.feeder_lines.assign(
            rating_mva=system.feeder_lines.rating_mva * margin)
        T = system.n_periods
        d = system.ders[system.ders.feeder_id == feeder_id]
        limits = []
        # no distribution market here: DERs the TSO market does not admit are price-takers
        control = der_control(system, distribution_market=False).of(system, feeder_id)
        for sign in (1.0, -1.0):
            op = DsoOpf(system, feeder_id, DsoOptions(formulation="lindist", ac_check=False,
                                                      decompose=False, allow_shed=False),
                        Boundary(price=np.zeros(T)), control=control)
            m = op.model
            lb, _ = op.pg_bounds
            if sign > 0:
                m.set_cost(op.pg, np.full(len(op.pg), -op.dt))
                m.set_cost(op.dis, np.full(len(op.dis), -op.dt))
                m.set_bounds(op.ch, ub=np.zeros(len(op.ch)))
                m.set_bounds(op.evc, ub=np.zeros(len(op.evc)))
                if op.evd is not None:
                    m.set_cost(op.evd, np.full(len(op.evd), -op.dt))
            else:
                m.set_bounds(op.pg, lb=np.zeros_like(lb), ub=np.minimum(lb, 0) * 0)
                m.set_bounds(op.dis, ub=np.zeros(len(op.dis)))
                m.set_cost(op.ch, np.full(len(op.ch), -op.dt))
                m.set_cost(op.evc, np.full(len(op.evc), -op.dt))
                if op.evd is not None:
                    m.set_bounds(op.evd, ub=np.zeros(len(op.evd)))
            m.set_bounds(op.spill, ub=np.zeros(len(op.spill)))
            inf = np.full(len(op.e), np.inf)
            m.set_bounds(op.e, lb=-inf, ub=inf)
            m.set_bounds(op.eve, lb=-np.full(len(op.eve), np.inf),
                         ub=np.full(len(op.eve), np.inf))
            m.set_cost(op.ev_short, np.zeros(len(op.ev_short)))
            res = op.solve()
            limits.append(res.der_p_mw[d.der_id])
        return limits[0], limits[1]

    # --------------------------------------------------------- what it clears
    def model(self, feeder_id: str) -> DsoOpf | None:
        """The feeder's operating model, if one was built (read only for others)."""
        return self._models.get(feeder_id)

    def clear_at_price(self, feeder_id: str, price: np.ndarray,
                       options: DsoOptions = OPERATING) -> DsoResult:
        """Dispatch the feeder against an interface price ($/MWh per period); the model is
        built once and re-priced on later calls with the same options."""
        op = self._models.get(feeder_id)
        if op is None or op.schedule_row is not None or op.options != options:
            op = DsoOpf(self.system, feeder_id, options, Boundary(price=price))
            self._models[feeder_id] = op
        else:
            op.set_price(price)
        return op.solve()

    def keep_schedule(self, feeder_id: str, schedule_mw: np.ndarray) -> DsoResult:
        """Dispatch the feeder to keep an interface schedule (import, MW per period) with
        its own resources, or shed load at value of lost load."""
        op = DsoOpf(self.system, feeder_id, OPERATING, Boundary(schedule_mw=schedule_mw))
        self._models[feeder_id] = op
        return op.solve()

    def correct(self, feeder_id: str, der_schedule: pd.DataFrame, price: np.ndarray,
                storage_redispatch: bool = False) -> DsoResult:
        """Correct the market's DER schedule (periods x der_id, MW) on the feeder, paying
        ``price`` ($/MWh per period) for imports. The DSO of the initial phase may only
        curtail: generation-like DERs below their schedule, EV charging below its schedule
        (unmet energy priced at the value of lost load), storage charging and discharging
        each below its schedule (never moved to other periods; where the curtailment leaves
        a unit unable to reach its end-of-day target, it ends short, the shortfall priced at
        the value of lost load and reported); or shed load at the value of lost load.
        ``storage_redispatch=True`` lets it redispatch storage freely at the storage's cost
        instead (a DSO that operates the storage itself)."""
        # no distribution market: inverters give reactive power as the grid code asks
        control = der_control(self.system, distribution_market=False).of(self.system,
                                                                         feeder_id)
        op = DsoOpf(self.system, feeder_id, OPERATING, Boundary(price=price), control=control)
        sched = der_schedule.reindex(columns=op.ders.der_id).to_numpy()[: op.T]
        if np.isnan(sched).any():
            raise TsodsoError(f"DSO {self.name}: the DER schedule of feeder {feeder_id} "
                              "misses DERs of the feeder")
        m = op.model
        if len(op.g_idx):
            _, ub = op.pg_bounds
            new_ub = np.minimum(ub, np.maximum(sched[:, op.g_idx], 0.0).ravel())
            # down to the DER's own minimum (a price-taker's output is no floor here)
            floor = np.tile(np.maximum(op.ders.p_min_mw.to_numpy(float)[op.g_idx], 0.0), op.T)
            m.set_bounds(op.pg, lb=np.minimum(floor, new_ub), ub=new_ub)
            if len(op.spill_pos):  # curtailing is free here: nothing left to spill
                m.set_bounds(op.spill, ub=np.zeros(len(op.spill)))
        if len(op.v_idx):
            c = np.maximum(-sched[:, op.v_idx], 0).ravel()
            m.set_bounds(op.evc, lb=np.zeros_like(c), ub=c)
            if op.evd is not None:  # vehicle-to-grid: curtailed below its schedule only
                m.set_bounds(op.evd, ub=np.maximum(sched[:, op.v_idx], 0).ravel())
        if len(op.s_idx) and not storage_redispatch:
            s_sched = sched[:, op.s_idx]
            m.set_bounds(op.ch, ub=np.maximum(-s_sched, 0).ravel())
            m.set_bounds(op.dis, ub=np.maximum(s_sched, 0).ravel())
        self._models[feeder_id] = op
        try:
            return op.solve()
        except SolveError:
            if not len(op.s_idx) or storage_redispatch or op.st_short is not None:
                raise
            # curtailing left a unit unable to reach its end-of-day target: let it end short,
            # priced at the value of lost load and reported, rather than fail
            op.soften_storage_target()
            return op.solve()

    def run_unmanaged(self, feeder_id: str, der_schedule: pd.DataFrame, price: np.ndarray
                      ) -> DsoResult:
        """The feeder when its DERs run at a market schedule (periods x der_id, MW) that
        the DSO never received: it cannot correct what it does not know, so nothing is
        curtailed or shed. The feeder's model holds every DER at the schedule with its
        voltage limits and ratings lifted (0.5-1.5 pu, unrated), which leaves the physics:
        the flows, losses and import the schedule causes, priced against ``price`` ($/MWh
        per period) at the interface. The AC power flow of the result shows the
        violations that follow."""
        system = copy.copy(self.system)
        system.feeders = system.feeders.assign(v_min_pu=0.5, v_max_pu=1.5,
                                               substation_mva=np.inf)
        system.feeder_buses = system.feeder_buses.assign(v_min_pu=np.nan, v_max_pu=np.nan)
        system.feeder_lines = system.feeder_lines.assign(rating_mva=np.inf)
        control = der_control(system, distribution_market=False).of(system, feeder_id)
        op = DsoOpf(system, feeder_id, DsoOptions(allow_shed=False, ac_check=False),
                    Boundary(price=price), control=control)
        sched = der_schedule.reindex(columns=op.ders.der_id).to_numpy()[: op.T]
        if np.isnan(sched).any():
            raise TsodsoError(f"DSO {self.name}: the DER schedule of feeder {feeder_id} "
                              "misses DERs of the feeder")
        m = op.model
        beyond = 0.0  # MW of the schedule the units could not follow, summed

        def hold(var: Any, values: np.ndarray) -> None:
            """Hold ``var`` at ``values`` as far as the unit can (its own power limits,
            e.g. a vehicle that is not plugged in)."""
            nonlocal beyond
            lo, hi = m.bounds(var)
            held = np.clip(values.ravel(), lo, hi)
            beyond += float(np.abs(held - values.ravel()).sum())
            m.set_bounds(var, lb=held, ub=held)

        if len(op.g_idx):
            hold(op.pg, sched[:, op.g_idx])
            if len(op.spill_pos):
                m.set_bounds(op.spill, ub=np.zeros(len(op.spill)))
        for var, values in ((op.ch, -sched[:, op.s_idx]), (op.dis, sched[:, op.s_idx])):
            if len(var):
                hold(var, np.maximum(values, 0.0))
        if len(op.evc):
            # a vehicle charges as scheduled until it is full: up to the schedule, as much
            # as it can (the incentive only orders the solve; costs are reported from the
            # dispatch)
            lo, hi = m.bounds(op.evc)
            m.set_bounds(op.evc, lb=np.zeros(len(op.evc)),
                         ub=np.clip(np.maximum(-sched[:, op.v_idx], 0.0).ravel(), lo, hi))
            m.set_cost(op.evc, np.full(len(op.evc),
                                         -self.system.rules.value_of_lost_load * op.dt))
        if op.evd is not None and len(op.evd):
            hold(op.evd, np.maximum(sched[:, op.v_idx], 0.0))
        # the energy the units hold is their aggregators' business (the market scheduled
        # it); the feeder's physics only sees their power
        if len(op.e):
            m.set_bounds(op.e, lb=np.full(len(op.e), -np.inf), ub=np.full(len(op.e), np.inf))
        self._models[feeder_id] = op
        self.unmanaged.add(feeder_id)
        result = op.solve()
        if beyond > 1e-6:
            result.shortfalls.notes.append(
                f"{feeder_id}: {beyond * op.dt:.4f} MWh of the market's schedule lies beyond "
                "its units' power limits; they delivered what they could")
        return result

    def price_response(self, feeder_id: str, price: np.ndarray, levels: tuple[float, ...]
                       ) -> tuple[np.ndarray, list[tuple[float, np.ndarray]]]:
        """The feeder's import (MW per period) cleared against ``price`` ($/MWh per
        period), and its import at each multiple ``levels`` of that price: the interface bid
        curve the DSO can offer."""
        options = DsoOptions(ac_check=False, decompose=False)
        op = DsoOpf(self.system, feeder_id, options, Boundary(price=price))
        base = op.solve().interface_p_mw.to_numpy()
        curve = []
        for level in levels:
            op.set_price(np.asarray(price) * level)
            curve.append((level, op.solve().interface_p_mw.to_numpy()))
        return base, curve

    def repriced(self, feeder_id: str, price: np.ndarray) -> DsoResult:
        """The feeder's operating model (same DER room) cleared against another interface
        price ($/MWh per period) — the prices of one more unit of demand there; a fresh
        price-cleared model where the feeder was held to a schedule. The model keeps its
        own price afterwards."""
        op = self._models.get(feeder_id)
        if op is None or op.schedule_row is not None or op.steps is not None:
            return DsoOpf(self.system, feeder_id, OPERATING, Boundary(price=price)).solve()
        keep = op.price_vec.copy()
        op.set_price(price)
        try:
            return op.solve()
        finally:
            op.set_price(keep)

    # --------------------------------------------- consensus (ADMM) iterations
    def consensus_step(self, target: InterfaceSchedule,
                       keeps_solver: Callable[[DsoOpf], bool] | None = None
                       ) -> InterfaceSchedule:
        """Answer a consensus target (an :class:`InterfaceSchedule` with a deviation
        penalty ``rho``): the feeder's import ``p`` (MW per period) minimising its cost +
        rho/2 ||p - target||^2 (per period, times the period length), sent back to the
        TSO as a reply. The feeder's model is built at the first target and kept: later
        targets only change its prices (and its Hessian when ``rho`` changes).
        ``keeps_solver(model)`` says whether a new model keeps its Clarabel solver between
        iterations (default: it does); one that does not frees it after every solve."""
        f, rho = target.feeder_id, target.deviation_penalty
        if f not in self.feeder_ids:
            raise TsodsoError(f"DSO {self.name}: a consensus target for feeder {f}, which "
                              "it does not operate")
        cached = self._consensus.get(f)
        if cached is None:
            op = DsoOpf(self.system, f, CONSENSUS, Boundary(price=np.zeros(self.system.n_periods)))
            op.model.add_quadratic_cost(op.P, _proximal(op, rho))
            cached = (op, rho, True if keeps_solver is None else keeps_solver(op))
        elif cached[1] != rho:  # new penalty: change the Hessian, keep the built model
            op = cached[0]
            op.model.set_quadratic_cost(op.P, _proximal(op, rho))
            cached = (op, rho, cached[2])
        self._consensus[f] = cached
        op = cached[0]
        op.set_price(-rho * target.p_mw)  # linear part of rho/2 (p - target)^2, per MWh
        sol = solve_subproblem(op.model, f"DSO subproblem of feeder {f}")
        if not cached[2]:
            op.model.free_solvers()
        self._last_target[f] = (np.array(target.p_mw), rho)
        p = sol.value(op.P).reshape(op.T, op.tree.n)[:, 0]
        return MessageBus.reply(target, InterfaceSchedule, feeder_id=f, p_mw=p)

    def consensus_prices(self, feeder_id: str) -> DsoResult:
        """The feeder's last consensus subproblem, min cost + rho/2 ||p - target||^2,
        solved once more with prices extracted: its import is the DSO's last answer and its
        root price, rho (p - target), the consensus interface price, so the DLMPs are
        those of the agreed operation, not the duals of a feeder held to a schedule it
        meets only to ADMM's tolerance. The solved model becomes the feeder's
        :meth:`model` (its solver freed)."""
        if feeder_id not in self._last_target:
            raise TsodsoError(f"DSO {self.name}: feeder {feeder_id} received no consensus "
                              "target")
        target, rho = self._last_target[feeder_id]
        op = DsoOpf(self.system, feeder_id, OPERATING,
                    Boundary(price=-rho * target, price_c2=rho / 2))
        result = op.solve()
        op.model.free_solvers()  # the settlement reads the feeder's data, not its solver
        self._models[feeder_id] = op
        return result

    def forget_consensus(self) -> None:
        """Drop the models of consensus iterations (the run is over)."""
        self._consensus.clear()
        self._last_target.clear()


def _proximal(op: DsoOpf, rho: float) -> np.ndarray:
    """Hessian diagonal over the feeder's ``P`` variables of rho/2 (p - target)^2: rho per
    period on the root import (the consensus model has no other quadratic cost on ``P``:
    its boundary is a linear price)."""
    diag = np.zeros((op.T, op.tree.n))
    diag[:, 0] = rho * op.dt
    return diag.ravel()
