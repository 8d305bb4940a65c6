"""DSO optimal power flow on one radial feeder: SOC branch flow (Clarabel) or LinDistFlow (LP).

Branch flow model (per period; ``P_j, Q_j`` flow into bus ``j`` from its parent ``i`` measured
at ``i``, ``l_j`` squared current, ``v_j`` squared voltage, all per unit on 1 MVA)::

    P_j - r_j l_j - sum_{k child of j} P_k + p_der_j + shed_j = p_load_j     (dual: DLMP_P)
    Q_j - x_j l_j - sum_{k child of j} Q_k + q_der_j + bsh_j v_j = q_load_j  (dual: DLMP_Q)
    v_j = v_i - 2 (r_j P_j + x_j Q_j) + (r_j^2 + x_j^2) l_j
    l_j v_i >= P_j^2 + Q_j^2                 (SOC relaxation of l_j v_i = P_j^2 + Q_j^2)
    l_j <= (S_j / V_nom)^2                   (line current within its ampacity)
    ||(P_0, Q_0)|| <= S_substation,  v_min^2 <= v_j <= v_max^2,  v_root fixed

At the root, ``P_0`` is the power bought from the TSO at the interface. LinDistFlow drops
``l`` (lossless), limits line apparent power instead of current and replaces the circles
by inscribed octagons, making an LP for HiGHS.

The objective is the interface cost (``price * P_0 * dt``, or a fixed schedule, or an
upstream bid curve) plus DER costs and priced load shedding. DLMPs are the balance duals
divided by ``dt``; :mod:`tsodso.dso.dlmp` decomposes them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tsodso.dso.inputs import FeederInputs
from tsodso.errors import Issue, SolveError, TsodsoError, ValidationError
from tsodso.model.schema import columns_as_lists
from tsodso.model.system import System
from tsodso.opt import Model, SolveStatus
from tsodso.opt.der_blocks import (
    EvNames,
    OfferNames,
    StorageNames,
    add_energy_offers,
    add_ev_charging,
    add_shedding,
    add_storage,
    ev_plugged,
    soften_storage_end,
)
from tsodso.opt.namespace import Namespace
from tsodso.resources import check_periods, check_problem, dso_size
from tsodso.rules.admission import DerControl, der_control
from tsodso.shortfalls import Shortfalls
from tsodso.tso.offers import der_availability, st_end_mwh, uncontrolled_ev_charging

OCTAGON = np.array([[np.cos(a), np.sin(a)] for a in np.arange(8) * np.pi / 4])
OCTAGON_SCALE = np.cos(np.pi / 8)  # faces at this distance put the vertices on the circle


@dataclass
class Boundary:
    """The upstream boundary as the TSO sees it (one of three forms).

    Attributes
    ----------
    price : array of float, optional
        Interface price per period, $/MWh (positive: the DSO pays for imports, is paid for
        exports).
    price_c2 : float
        Quadratic interface cost coefficient, $/MW^2h (MATPOWER-style slack cost).
    schedule_mw : array of float, optional
        Fixed interface import per period, MW.
    bid_steps : list of (quantity_mw, price), optional
        Upstream supply curve: import steps of increasing price; exports earn the first
        step's price.
    """

    price: np.ndarray | None = None
    price_c2: float = 0.0
    schedule_mw: np.ndarray | None = None
    bid_steps: list[tuple[float, float]] | None = None


@dataclass
class DsoOptions:
    """Options of the DSO OPF.

    Attributes
    ----------
    formulation : {"soc", "lindist"}
        Second-order-cone branch flow (Clarabel) or LinDistFlow (HiGHS LP).
    periods : int, optional
        Periods to solve (default: the system's horizon).
    tighten : bool
        When the SOC relaxation is inexact (it adds fictitious losses: see
        :meth:`DsoOpf.fictitious_losses`), re-solve with a penalty on resistive losses
        (``loss_penalty``, $/MWh, raised as needed) and report it (``DsoResult.tightened``).
        Inexactness appears when curtailing and "burning" power in fictitious losses cost
        the same (reverse flow from free PV, line limits binding) or burning is paid
        (negative prices); the penalty breaks that tie. Measured on the default scenario's
        69-bus feeder: the gap fell from 0.083 to 1.8e-4 for a 0.01 % change of the
        objective.
    gap_tol : float
        Fictitious losses (MW per period) still counted as exact, on top of 0.1 % of the
        period's losses (solver accuracy).
    decompose : bool
        Compute the DLMP components (one sparse solve per period).
    tol : float
        Clarabel's feasibility and gap tolerances (default 1e-9, tighter than its 1e-8, so
        DLMPs and their parts agree to about 1e-5 $/MWh).
    ac_check : bool
        Re-run an AC power flow on the dispatch and report the largest voltage and flow
        mismatch (``DsoResult.ac_check``).
    allow_shed : bool
        Allow load shedding at the value of lost load (off for hosting-capacity studies).
    """

    formulation: Literal["soc", "lindist"] = "soc"
    periods: int | None = None
    tighten: bool = True
    gap_tol: float = 1e-5
    loss_penalty: float = 0.1
    decompose: bool = True
    tol: float = 1e-9
    ac_check: bool = True
    allow_shed: bool = True

    def __post_init__(self) -> None:
        """Refuse invalid values (one :class:`TsodsoError` naming the option)."""
        from tsodso.options import require_bool, require_choice, require_number

        require_choice("DsoOptions.formulation", self.formulation, ("soc", "lindist"))
        check_periods(self.periods, name="DsoOptions.periods")
        for name in ("tighten", "decompose", "ac_check", "allow_shed"):
            require_bool(f"DsoOptions.{name}", getattr(self, name))
        require_number("DsoOptions.gap_tol", self.gap_tol, low=0.0)
        require_number("DsoOptions.loss_penalty", self.loss_penalty, low=0.0)
        require_number("DsoOptions.tol", self.tol, low=0.0, high=1.0, low_open=True)


@dataclass
class DsoResult:
    """Outcome of a DSO OPF (frames indexed by period; bus and line ids of the file)."""

    status: SolveStatus
    objective: float
    dlmp_p: pd.DataFrame
    dlmp_q: pd.DataFrame
    dlmp_p_components: dict[str, pd.DataFrame]
    dlmp_q_components: dict[str, pd.DataFrame]
    interface_p_mw: pd.Series
    interface_q_mvar: pd.Series
    losses_mw: pd.Series
    voltage_pu: pd.DataFrame
    flow_p_mw: pd.DataFrame
    flow_q_mvar: pd.DataFrame
    der_p_mw: pd.DataFrame
    der_q_mvar: pd.DataFrame
    storage_energy_mwh: pd.DataFrame
    shed_mw: pd.DataFrame
    soc_gap: pd.DataFrame
    tightened: bool
    interface_marginal_price: pd.Series
    ev_shortfall_mwh: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    ac_check: dict[str, float] = field(default_factory=dict)
    shortfalls: Shortfalls = field(default_factory=Shortfalls)
    #: dP0/dP_j and dP0/dQ_j (periods x bus): how the interface import moves with one more
    #: MW (MVAr) of demand at each bus, physics only (1 + marginal loss factor); None when
    #: the DLMPs were not decomposed
    interface_sensitivity_p: pd.DataFrame | None = None
    interface_sensitivity_q: pd.DataFrame | None = None
    #: root voltage per period as the tap changer set it, pu (None: held at v_root_pu)
    v_root_pu: pd.Series | None = None
    #: capacitor banks switched in (periods x bus_id of the banks): MVAr at 1.0 pu
    cap_mvar: pd.DataFrame | None = None
    #: cost of the tap changes, $ (in the objective)
    tap_cost: float = 0.0

    @property
    def prices_valid(self) -> bool:
        """DLMPs are prices only when the physics is exact and the optimum proven (status
        ``optimal`` or ``shed``; not ``inexact`` or ``feasible``)."""
        return self.status in (SolveStatus.OPTIMAL, SolveStatus.SHED)

    @property
    def soc_gap_max(self) -> float:
        return float(np.nanmax(self.soc_gap.to_numpy())) if self.soc_gap.size else 0.0

    def to_json(self) -> dict[str, Any]:
        cols = columns_as_lists
        valid = self.prices_valid
        return {
            "status": self.status.value,
            "objective": self.objective,
            # the DLMPs of an inexact solution are not prices: withheld (null)
            "dlmp_p": cols(self.dlmp_p) if valid else None,
            "dlmp_q": cols(self.dlmp_q) if valid else None,
            "dlmp_p_components": ({k: cols(v) for k, v in self.dlmp_p_components.items()}
                                  if valid else None),
            "dlmp_q_components": ({k: cols(v) for k, v in self.dlmp_q_components.items()}
                                  if valid else None),
            "shortfalls": self.shortfalls.to_json(),
            "shed_mwh": self.shortfalls.shed_mwh,
            "unmet_ev_mwh": self.shortfalls.unmet_ev_mwh,
            "interface_p_mw": [float(v) for v in self.interface_p_mw],
            "interface_q_mvar": [float(v) for v in self.interface_q_mvar],
            "losses_mw": [float(v) for v in self.losses_mw],
            "soc_gap_max": self.soc_gap_max,
            "tightened": self.tightened,
            "ac_check": self.ac_check,
            "timings": self.timings,
        }


def _kron(a: Any, periods: int) -> sp.csr_array:
    return sp.csr_array(sp.kron(sp.identity(periods, format="csr"), sp.csr_array(a)))


def _pick(n: int, rows: np.ndarray) -> sp.csr_array:
    return sp.csr_array((np.ones(len(rows)), (np.arange(len(rows)), rows)), shape=(len(rows), n))


class DsoOpf:
    """OPF of one feeder of a :class:`System`, built once and re-solvable.

    ``DsoOpf(system, "F1", boundary=Boundary(price=...)).solve()``. :meth:`set_price` and
    :meth:`set_schedule` change the boundary without rebuilding the model.
    ``extra_injection=(bus_id, shape, weight)`` adds ``h * shape_t`` MW at one bus with
    ``h >= 0`` rewarded at ``weight`` $ per MW (negative shape: a load); the hosting-capacity
    study maximises ``h`` this way.

    ``control`` says which of the feeder's DERs the DSO dispatches and which give reactive
    power (:func:`~tsodso.rules.admission.der_control`; default: those the markets of a
    scheme with a distribution market admit). The others are price-takers: their output is
    fixed at what it is when nobody dispatches them (PV and wind at their availability,
    EVs charging on arrival, the rest idle), at unity power factor. Energy offers are each
    DER's bid steps (``der_bids``), or its ``cost_per_mwh`` when it has none: the same offer
    the TSO market sees.
    """

    def __init__(self, system: System, feeder_id: str, options: DsoOptions | None = None,
                 boundary: Boundary | None = None, extra_injection: tuple | None = None,
                 model: Model | None = None, prefix: str = "",
                 control: DerControl | None = None):
        t0 = time.perf_counter()
        self.system = system
        # what the DSO may do with each DER (default: a scheme with a distribution market)
        self.control = control or der_control(system).of(system, feeder_id)
        self.options = options or DsoOptions()
        inputs = FeederInputs.of(system, feeder_id, self.options.periods)
        self.feeder, self.tree, self.T = inputs.feeder, inputs.tree, inputs.T
        if model is None:  # a joint model is checked as a whole by its builder
            check_problem(f"the OPF of feeder '{feeder_id}' over {self.T} periods",
                          dso_size(inputs.tree.n, len(inputs.ders), self.T),
                          "socp" if self.options.formulation == "soc" else "lp")
        self.ders = inputs.ders  # this feeder's DERs, numbered from 0
        self.p_load, self.q_load = inputs.p_load, inputs.q_load  # (T x n) MW, MVAr
        self.dt = float(system.profiles.period_hours)
        self.soc = self.options.formulation == "soc"
        if self.options.formulation not in ("soc", "lindist"):
            raise ValidationError([Issue("dso", "formulation", self.options.formulation,
                                         "use soc or lindist")])
        self.boundary = boundary or Boundary(price=np.full(self.T, 0.0))
        self.extra_injection = extra_injection
        self.applied_penalty = 0.0
        self.model = model or Model(f"dso:{self.tree.feeder_id}")
        self.prefix = prefix
        self._m = Namespace(self.model, prefix)
        self._build()
        self.timings = {"build_s": time.perf_counter() - t0}

    # ------------------------------------------------------------------- model
    def _build(self) -> None:
        tr, T, dt = self.tree, self.T, self.dt
        n = tr.n
        m = self._m
        tile = lambda a: np.tile(np.asarray(a, dtype=float), T)  # noqa: E731
        nonroot = np.arange(1, n)
        rules = self.system.rules

        self.P = m.add_variables("P", T * n, lb=-np.inf)
        self.Q = m.add_variables("Q", T * n, lb=-np.inf)
        l_ub = np.full(n, np.inf if self.soc else 0.0)
        l_ub[0] = 0.0
        self.L = m.add_variables("l", T * n, ub=tile(l_ub))
        vlo, vhi = tr.v_min**2, tr.v_max**2
        vlo[0] = vhi[0] = tr.v_root**2
        if tr.oltc is not None:  # the tap changer sets the root voltage within its band
            vlo[0], vhi[0] = tr.oltc.v_min**2, tr.oltc.v_max**2
        self._v_bounds = (tile(vlo), tile(vhi))
        self.V = m.add_variables("v", T * n, lb=self._v_bounds[0], ub=self._v_bounds[1])

        # ---- DERs of this feeder
        mask = (self.system.ders.feeder_id == tr.feeder_id).to_numpy()
        d = self.ders
        avail = der_availability(self.system)[: T, mask]
        dpos = tr.positions(d.bus_id) if len(d) else np.zeros(0, dtype=int)
        p_load, q_load = self.p_load, self.q_load
        gen_kind = d.kind.isin(["pv", "wind", "dg", "demand_response"]).to_numpy()
        cap = avail.copy()
        dr = (d.kind == "demand_response").to_numpy()
        if dr.any():  # curtailment cannot exceed the load at the DR's bus
            cap[:, dr] = np.minimum(cap[:, dr], p_load[:, dpos[dr]])
        g_idx = np.flatnonzero(gen_kind)
        self.g_idx = g_idx
        G = len(g_idx)
        energy_ctl = np.asarray(self.control.energy, dtype=bool)
        pmin = np.tile(np.maximum(d.p_min_mw.to_numpy()[g_idx], 0.0), (T, 1))
        pmin = np.minimum(pmin, cap[:, g_idx])
        pmax = cap[:, g_idx].copy()
        # price-takers: PV and wind at their availability, DG and demand response idle
        taker = ~energy_ctl[g_idx]
        renewable = d.kind.isin(["pv", "wind"]).to_numpy()[g_idx]
        pmin[:, taker] = np.where(renewable[taker], pmax[:, taker], 0.0)
        pmax[:, taker] = pmin[:, taker]
        self.pg_bounds = (pmin.ravel(), pmax.ravel())
        # ... which the DSO may still spill in an emergency, at the value of lost load
        self.spill_pos = np.flatnonzero(taker & renewable)  # positions among g_idx
        self.spill = m.add_variables(
            "spill", T * len(self.spill_pos), ub=pmax[:, self.spill_pos].ravel(),
            cost=np.full(T * len(self.spill_pos), rules.value_of_lost_load * dt))
        budget = d.energy_mwh.to_numpy()[g_idx]
        budget = np.where(dr[g_idx] & (budget > 0), budget, np.inf)  # DR energy, MWh
        steps = self._bid_steps(d.der_id.to_numpy()[g_idx])
        price = d.cost_per_mwh.to_numpy(float)[g_idx].copy()
        price[np.isin(np.arange(G), steps.offer)] = 0.0  # priced by its steps instead
        self.pg = add_energy_offers(
            m, OfferNames(power="der_p", budget="dr_budget"), T, dt, p_min_mw=pmin,
            p_max_mw=pmax, price_per_mwh=price, budget_mwh=budget).power
        self.bid_steps = None
        if len(steps):  # p = sum of its steps, each within its share of the availability
            K = len(steps)
            self.bid_steps = add_energy_offers(
                m, OfferNames(power="der_bid_steps", budget="der_bid_budget"), T, dt,
                p_min_mw=np.zeros((T, K)), p_max_mw=pmax[:, steps.offer] * steps.share.to_numpy(),
                price_per_mwh=steps.price_per_mwh.to_numpy(float)).power
            bidders = np.unique(steps.offer.to_numpy())
            row = np.searchsorted(bidders, steps.offer.to_numpy())
            onto = sp.csr_array((np.ones(K), (row, np.arange(K))), shape=(len(bidders), K))
            m.add_constraints("der_bid_sum", [(self.pg, _kron(_pick(G, bidders), T)),
                                              (self.bid_steps, -_kron(onto, T))],
                              lb=0.0, ub=0.0)
        # storage
        s_idx = np.flatnonzero((d.kind == "storage").to_numpy())
        self.s_idx = s_idx
        S = len(s_idx)
        st = d.iloc[s_idx]
        s_ctl = energy_ctl[s_idx]  # price-taker storage stays idle
        storage = add_storage(
            m, StorageNames(charge="st_ch", discharge="st_dis", energy="st_e",
                            balance="st_balance"), T, dt,
            p_charge_mw=-st.p_min_mw.to_numpy(float) * s_ctl,
            p_discharge_mw=st.p_max_mw.to_numpy(float) * s_ctl,
            cost_per_mwh=st.cost_per_mwh.to_numpy(float),
            e_min_mwh=(st.soc_min * st.energy_mwh).to_numpy(float),
            e_max_mwh=(st.soc_max * st.energy_mwh).to_numpy(float),
            e_init_mwh=(st.soc_init * st.energy_mwh).to_numpy(float),
            eta_charge=st.eta_charge.to_numpy(float),
            eta_discharge=st.eta_discharge.to_numpy(float), e_end_mwh=st_end_mwh(st))
        self.ch, self.dis, self.e = storage.charge, storage.discharge, storage.energy
        self._storage = storage
        self.st_short = None  # storage end-target shortfall (soften_storage_target)
        # EVs
        v_idx = np.flatnonzero((d.kind == "ev").to_numpy())
        self.v_idx = v_idx
        ev = d.iloc[v_idx]
        dep = np.where(ev.departure_period < 0, T, np.minimum(ev.departure_period, T))
        plugged = ev_plugged(T, ev.arrival_period.to_numpy(), dep)
        evs = add_ev_charging(
            m, EvNames(charge="ev_ch", energy="ev_e", shortfall="ev_short",
                       balance="ev_balance", need="ev_need"), T, dt,
            p_charge_mw=plugged * -ev.p_min_mw.to_numpy(),
            e_max_mwh=(ev.soc_max * ev.energy_mwh).to_numpy(float),
            e_init_mwh=(ev.soc_init * ev.energy_mwh).to_numpy(float),
            eta_charge=ev.eta_charge.to_numpy(float),
            need_mwh=ev.energy_need_mwh.to_numpy(float), departure_period=dep,
            shortfall_cost_per_mwh=rules.value_of_lost_load,
            # vehicle-to-grid where the EV can discharge (the system check refused it where
            # the rules do not allow it)
            p_discharge_mw=plugged * ev.p_max_mw.to_numpy(float),
            eta_discharge=ev.eta_discharge.to_numpy(float),
            discharge_cost_per_mwh=ev.cost_per_mwh.to_numpy(float))
        self.evc, self.eve, self.ev_short = evs.charge, evs.energy, evs.shortfall
        self.evd = evs.discharge  # None without vehicle-to-grid
        v_taker = ~energy_ctl[v_idx]
        if v_taker.any():  # price-taker EVs charge at full power from arrival, never back
            fixed = plugged * -ev.p_min_mw.to_numpy()
            fixed[:, v_taker] = uncontrolled_ev_charging(self.system, ev[v_taker])[:T]
            lo = np.where(v_taker[None, :], fixed, 0.0)
            m.set_bounds(self.evc, lb=lo.ravel(), ub=fixed.ravel())
            if self.evd is not None:
                back = plugged * ev.p_max_mw.to_numpy(float) * ~v_taker
                m.set_bounds(self.evd, ub=back.ravel())
        # reactive capability of inverters (pv, wind, dg, storage with s_max)
        smax = d.s_max_mva.to_numpy()
        q_idx = np.flatnonzero(np.isfinite(smax) & (gen_kind | (d.kind == "storage").to_numpy())
                               & np.asarray(self.control.reactive, dtype=bool))
        self.q_idx = q_idx
        K = len(q_idx)
        self.qd = m.add_variables("der_q", T * K, lb=-np.tile(smax[q_idx], T),
                                  ub=np.tile(smax[q_idx], T))
        if K:
            gcol = pd.Index(g_idx).get_indexer(q_idx)
            scol = pd.Index(s_idx).get_indexer(q_idx)
            pg_map = sp.csr_array((np.ones((gcol >= 0).sum()),
                                   (np.flatnonzero(gcol >= 0), gcol[gcol >= 0])), shape=(K, G))
            st_map = sp.csr_array((np.ones((scol >= 0).sum()),
                                   (np.flatnonzero(scol >= 0), scol[scol >= 0])), shape=(K, S))
            p_terms = [(self.pg, _kron(pg_map, T)), (self.dis, _kron(st_map, T)),
                       (self.ch, -_kron(st_map, T))]
            self._circle("inverter", p_terms, [(self.qd, 1.0)], np.tile(smax[q_idx], T))

        # ---- the DSO's voltage tools (tap changer, capacitor banks)
        self._build_tools(vlo, vhi)

        # ---- load shedding at value of lost load
        shed_ub = np.maximum(p_load, 0) if self.options.allow_shed else np.zeros_like(p_load)
        self.shed = add_shedding(m, "shed", T, n, dt, value_of_lost_load=rules.value_of_lost_load,
                                 ub_mw=shed_ub)

        # ---- an extra injection h * shape_t at one bus, h maximised (hosting capacity)
        extra_terms = []
        self.h = None
        if self.extra_injection is not None:
            bus, shape, weight = self.extra_injection
            self.h = m.add_variables("hosting", 1, cost=-weight)
            col = sp.csr_array((np.asarray(shape, dtype=float)[:T],
                                (np.arange(T) * n + tr.positions([bus])[0], np.zeros(T, int))),
                               shape=(T * n, 1))
            extra_terms.append((self.h, col))

        # ---- nodal balances
        C = tr.children_matrix()
        eye = sp.identity(n, format="csr")
        inc = lambda idx: sp.csr_array((np.ones(len(idx)), (dpos[idx], np.arange(len(idx)))),  # noqa: E731
                                       shape=(n, len(idx)))
        r_l = sp.diags(tr.r)
        x_l = sp.diags(tr.x)
        b_sh = tr.b_half + C @ tr.b_half
        pf_q = np.divide(q_load, p_load, out=np.zeros_like(q_load), where=p_load > 0)
        self.balance_p = m.add_constraints("balance_p", [
            (self.P, _kron(eye - C, T)), (self.L, -_kron(r_l, T)),
            (self.pg, _kron(inc(g_idx), T)), (self.dis, _kron(inc(s_idx), T)),
            (self.ch, -_kron(inc(s_idx), T)), (self.evc, -_kron(inc(v_idx), T)),
            *([(self.evd, _kron(inc(v_idx), T))] if self.evd is not None else []),
            (self.spill, -_kron(inc(g_idx[self.spill_pos]), T)),
            (self.shed, 1.0), *extra_terms], lb=p_load.ravel(), ub=p_load.ravel())
        self.balance_q = m.add_constraints("balance_q", [
            (self.Q, _kron(eye - C, T)), (self.L, -_kron(x_l, T)),
            (self.V, _kron(sp.diags(b_sh), T)),
            (self.qd, _kron(inc(q_idx), T)),
            (self.cap_q, _kron(self._cap_to_bus, T)),
            (self.shed, sp.diags(pf_q.ravel()))],  # shed load keeps its power factor
            lb=q_load.ravel(), ub=q_load.ravel())
        # ---- voltage drop along each line (non-root buses)
        sel = _pick(n, nonroot)
        up = sp.csr_array((np.ones(n - 1), (np.arange(n - 1), tr.parent[nonroot])),
                          shape=(n - 1, n))
        zz = tr.r**2 + tr.x**2
        self.vdrop = m.add_constraints("v_drop", [
            (self.V, _kron(sel - up, T)), (self.P, _kron(sel @ sp.diags(2 * tr.r), T)),
            (self.Q, _kron(sel @ sp.diags(2 * tr.x), T)), (self.L, -_kron(sel @ sp.diags(zz), T))],
            lb=0.0, ub=0.0)
        # ---- SOC relaxation l_j v_parent >= P_j^2 + Q_j^2
        if self.soc:
            self.relax = m.add_rotated_soc(
                "relaxation", (self.L, 0.5 * _kron(sel, T)), (self.V, _kron(up, T)),
                [(self.P, _kron(sel, T)), (self.Q, _kron(sel, T))])
        # ---- thermal limits. SOC: the line current, l_j <= (S_j / V_nom)^2 in pu, which is
        # the ampacity the AC power flow checks; LinDistFlow (no current): |S_j| <= S_j.
        rated = np.flatnonzero(np.isfinite(tr.s_max) & (np.arange(n) > 0))
        self.rated = rated
        self.line_send = None
        if self.soc:
            l_ub[rated] = tr.s_max[rated] ** 2
            m.set_bounds(self.L, ub=tile(l_ub))
        else:
            rsel = _pick(n, rated)
            self.line_send = self._circle("line_send", [(self.P, _kron(rsel, T))],
                                          [(self.Q, _kron(rsel, T))],
                                          np.tile(tr.s_max[rated], T))
        self.sub = None
        if np.isfinite(tr.s_sub):
            root = _pick(n, np.array([0]))
            self.sub = self._circle("substation", [(self.P, _kron(root, T))],
                                    [(self.Q, _kron(root, T))], np.full(T, tr.s_sub), split=True)
        # ---- boundary
        self._boundary_rows()

    def _build_tools(self, vlo: np.ndarray, vhi: np.ndarray) -> None:
        """Tap-change cost and switched capacitor banks.

        Tap changer: the root's squared voltage ``w0`` lies in the band (its bounds); each
        tap moved between periods costs ``tap_cost``, counted as ``|w0_t - w0_t-1| /
        (2 v_root tap)`` taps. Capacitor banks: one unit per step, with on-state ``u`` in
        [0, 1] and injection ``y = c u w`` (``c``: MVAr of the step at 1.0 pu, ``w`` the
        bus's squared voltage), written as its McCormick envelope over ``u`` in [0, 1] and
        ``w`` within the bus's limits: a convex relaxation while ``u`` is free, and exactly
        ``y = c w`` or ``y = 0`` once ``u`` is fixed at 1 or 0 (:meth:`fix_tools`)."""
        tr, T, n, m = self.tree, self.T, self.tree.n, self._m
        root = _pick(n, np.array([0]))
        self.tap_moves = None
        o = tr.oltc
        if o is not None and o.tap_cost > 0 and T > 1:
            per_w = o.tap_cost / (2 * tr.v_root * o.tap)  # $ per unit of w0 moved
            self.tap_moves = m.add_variables("tap_moves", 2 * (T - 1),
                                             cost=np.full(2 * (T - 1), per_w))
            diff = sp.csr_array(sp.eye(T - 1, T, k=1) - sp.eye(T - 1, T))
            m.add_constraints("tap_move", [
                (self.V, sp.csr_array(sp.kron(diff, root))),
                (self.tap_moves, sp.csr_array(sp.hstack([-sp.eye(T - 1), sp.eye(T - 1)])))],
                lb=0.0, ub=0.0)
        steps = np.asarray(tr.cap_steps, dtype=int) if len(tr.cap_steps) else np.zeros(n, int)
        at = np.repeat(np.arange(n), steps)  # bus position of each unit (one per step)
        c = np.repeat(tr.cap_step if len(tr.cap_step) else np.zeros(n), steps)
        U = len(at)
        self.cap_at, self.cap_c = at, c
        self._cap_to_bus = sp.csr_array((np.ones(U), (at, np.arange(U))), shape=(n, U))
        self.cap_on = m.add_variables("cap_on", T * U, lb=0.0, ub=1.0)
        self.cap_q = m.add_variables("cap_q", T * U, lb=-np.inf)
        if not U:
            return
        a, b = np.tile(vlo[at], T), np.tile(vhi[at], T)
        cc = np.tile(c, T)
        w = _kron(_pick(n, at), T)
        eye = sp.identity(T * U, format="csr")
        m.add_constraints("cap_low", [(self.cap_q, eye), (self.cap_on, -sp.diags(cc * a))],
                          lb=0.0)
        m.add_constraints("cap_high", [(self.cap_q, eye), (self.cap_on, -sp.diags(cc * b))],
                          ub=0.0)
        m.add_constraints("cap_w_low", [(self.cap_q, eye), (self.V, -sp.diags(cc) @ w),
                                        (self.cap_on, -sp.diags(cc * b))], lb=-cc * b)
        m.add_constraints("cap_w_high", [(self.cap_q, eye), (self.V, -sp.diags(cc) @ w),
                                         (self.cap_on, -sp.diags(cc * a))], ub=-cc * a)

    def soften_storage_target(self) -> None:
        """Let storage end short of its end-of-horizon target, each MWh short priced at the
        value of lost load and reported (``unmet_storage_mwh``): for a DSO that may only
        curtail a market schedule, whose curtailment can leave a unit unable to reach it
        (:func:`~tsodso.opt.der_blocks.soften_storage_end`)."""
        if not len(self.s_idx) or self.st_short is not None:
            return
        st = self.ders.iloc[self.s_idx]
        self.st_short = soften_storage_end(
            self._m, self._storage, "st_end", self.T,
            e_min_mwh=(st.soc_min * st.energy_mwh).to_numpy(float), e_end_mwh=st_end_mwh(st),
            shortfall_cost_per_mwh=self.system.rules.value_of_lost_load)

    @property
    def has_tools(self) -> bool:
        """Whether this feeder's DSO has a tap changer or capacitor banks."""
        return self.tree.has_tools

    def free_tools(self) -> None:
        """Let the tap changer and the capacitor banks move again (see :meth:`fix_tools`)."""
        self.model.set_bounds(self.V, lb=self._v_bounds[0], ub=self._v_bounds[1])
        k = len(self.cap_on)
        self.model.set_bounds(self.cap_on, lb=np.zeros(k), ub=np.ones(k))

    def fix_tools(self, sol: Any) -> None:
        """Hold the tools where ``sol`` put them, rounded to what they can do: the root
        voltage at the nearest tap position (continuous tap changers: where it is), each
        capacitor step in or out. The model then has exact physics again (the capacitor
        envelope is exact at 0 and 1) and fixed voltage control, as the DLMPs assume."""
        T, n = self.T, self.tree.n
        lb, ub = self._v_bounds[0].copy(), self._v_bounds[1].copy()
        o = self.tree.oltc
        if o is not None:
            v0 = np.sqrt(np.maximum(sol.value(self.V).reshape(T, n)[:, 0], 0.0))
            if o.discrete:
                taps = self.tree.tap_positions()
                v0 = taps[np.abs(v0[:, None] - taps[None, :]).argmin(axis=1)]
            v0 = np.clip(v0, o.v_min, o.v_max)
            lb[np.arange(T) * n] = ub[np.arange(T) * n] = v0**2
        self.model.set_bounds(self.V, lb=lb, ub=ub)
        if len(self.cap_on):
            on = np.round(np.clip(sol.value(self.cap_on), 0.0, 1.0))
            self.model.set_bounds(self.cap_on, lb=on, ub=on)

    def _bid_steps(self, der_ids: np.ndarray) -> pd.DataFrame:
        """The bid steps of ``der_ids`` (``der_bids``): ``offer`` (position in ``der_ids``),
        ``share`` of the DER's availability and ``price_per_mwh``, as the TSO market pools
        them (:func:`~tsodso.tso.offers.tso_view`)."""
        bids = self.system.der_bids
        bids = bids[bids.der_id.isin(der_ids)].sort_values(["der_id", "step"])
        if not len(bids):
            return pd.DataFrame({"offer": np.zeros(0, dtype=int), "share": np.zeros(0),
                                 "price_per_mwh": np.zeros(0)})
        total = bids.groupby("der_id").quantity_mw.transform("sum")
        return pd.DataFrame({"offer": pd.Index(der_ids).get_indexer(bids.der_id),
                             "share": (bids.quantity_mw / total).to_numpy(float),
                             "price_per_mwh": bids.price_per_mwh.to_numpy(float)})

    def _circle(self, name: str, p_terms: list, q_terms: list, radius: np.ndarray,
                split: bool = False) -> Any:
        """||(p, q)|| <= radius: a cone (SOC) or an inscribed octagon (LinDistFlow)."""
        m = self._m
        k = len(radius)
        if k == 0:
            return None
        if self.soc:
            zero = (p_terms[0][0], sp.csr_array((k, len(p_terms[0][0]))))
            return m.add_soc(name, zero, [p_terms, q_terms], t_const=radius)
        rows = []
        for a, b in OCTAGON:
            rows.append([(blk, a * c) for blk, c in p_terms] + [(blk, b * c) for blk, c in q_terms])
        terms = []
        for j in range(len(p_terms) + len(q_terms)):
            blk = (p_terms + q_terms)[j][0]
            terms.append((blk, sp.vstack([sp.csr_array(r[j][1] if not np.isscalar(r[j][1])
                                                       else r[j][1] * sp.identity(k))
                                          for r in rows])))
        return m.add_constraints(name, terms, ub=np.tile(radius * OCTAGON_SCALE, 8))

    def _boundary_rows(self) -> None:
        m, T, dt, n = self._m, self.T, self.dt, self.tree.n
        b = self.boundary
        root = _pick(n, np.array([0]))
        if not (np.isfinite(b.price_c2) and b.price_c2 >= 0):
            raise ValidationError([Issue("boundary", "price_c2", self.tree.feeder_id,
                                         f"must be finite and >= 0 (convex), got {b.price_c2}")])
        self.schedule_row = None
        self.steps = None
        self.price_vec = np.zeros(T)
        if b.schedule_mw is not None:
            sched = self._per_period(b.schedule_mw, "schedule_mw")
            self.schedule_row = m.add_constraints("schedule", [(self.P, _kron(root, T))],
                                                  lb=sched, ub=sched)
        elif b.bid_steps:
            qty = np.array([s[0] for s in b.bid_steps], dtype=float)
            prc = np.array([s[1] for s in b.bid_steps], dtype=float)
            if not (np.isfinite(qty).all() and np.isfinite(prc).all() and (qty >= 0).all()):
                raise ValidationError([Issue("boundary", "bid_steps", self.tree.feeder_id,
                                             "steps need finite prices and quantities >= 0")])
            K = len(qty)
            self.steps = m.add_variables("import_steps", T * K, ub=np.tile(qty, T),
                                         cost=np.tile(prc * dt, T))
            self.export = m.add_variables("export", T, cost=-prc[0] * dt)
            m.add_constraints("bid_curve", [(self.P, _kron(root, T)),
                                            (self.steps, -_kron(np.ones((1, K)), T)),
                                            (self.export, 1.0)], lb=0.0, ub=0.0)
        else:
            price = self._per_period(b.price if b.price is not None else 0.0, "price")
            self.price_vec = price.copy()
            cost = np.zeros((T, n))
            cost[:, 0] = price * dt
            m.set_cost(self.P, cost.ravel())
            if b.price_c2:
                diag = np.zeros((T, n))
                diag[:, 0] = 2 * b.price_c2 * dt
                m.add_quadratic_cost(self.P, diag.ravel())

    def _per_period(self, values: Any, field: str) -> np.ndarray:
        """A boundary series as T finite floats: one value (for every period) or exactly
        one per period; anything else is a :class:`ValidationError` naming the field."""
        fid = self.tree.feeder_id
        try:
            arr = np.atleast_1d(np.asarray(values, dtype=float))
        except (TypeError, ValueError):
            raise ValidationError([Issue("boundary", field, fid, "expected numbers")]) from None
        if arr.ndim != 1 or len(arr) not in (1, self.T):
            raise ValidationError([Issue("boundary", field, fid, f"expected 1 or {self.T} "
                                         f"values (one per period), got {arr.size}")])
        if not np.isfinite(arr).all():
            bad = int(np.flatnonzero(~np.isfinite(arr))[0])
            raise ValidationError([Issue("boundary", field, fid, f"period {bad}: value "
                                         f"{arr[bad]} is not finite")])
        return np.broadcast_to(arr, (self.T,)).copy()

    def set_price(self, price: np.ndarray) -> None:
        """New interface prices ($/MWh per period); the model is kept."""
        if self.schedule_row is not None or self.steps is not None:
            raise TsodsoError("set_price needs a price boundary")
        cost = np.zeros((self.T, self.tree.n))
        self.price_vec = self._per_period(price, "price")
        cost[:, 0] = self.price_vec * self.dt
        self.model.set_cost(self.P, cost.ravel())

    def set_schedule(self, schedule_mw: np.ndarray) -> None:
        """New fixed interface schedule (MW per period); the model is kept."""
        if self.schedule_row is None:
            raise TsodsoError("set_schedule needs a schedule boundary")
        s = self._per_period(schedule_mw, "schedule_mw")
        self.model.set_rhs(self.schedule_row, s, s)

    def interface_bid_curve(self, prices: list[float]) -> pd.DataFrame:
        """The feeder's aggregated interface bid curve: its optimal import (MW) for each
        flat interface price in ``prices`` ($/MWh), per period (rows: price, columns:
        period). Exports are negative. The price is flat over the horizon, so storage and EVs
        may shift energy between periods: the day's import falls with the price, a single
        period's need not. Needs a price boundary; the model is re-solved, not rebuilt, and
        the original prices are restored."""
        keep = self.price_vec.copy()
        rows = {}
        solver = "clarabel" if self.soc else "highs"
        for price in prices:
            self.set_price(np.full(self.T, float(price)))
            sol = self.model.solve(solver, tol=self.options.tol if self.soc else None)
            if not sol.ok:
                raise TsodsoError(f"interface bid curve of {self.tree.feeder_id}: price "
                                  f"{price}: solver status '{sol.status.value}'")
            rows[float(price)] = sol.value(self.P).reshape(self.T, self.tree.n)[:, 0]
        self.set_price(keep)
        frame = pd.DataFrame(rows).T
        frame.index.name = "price"
        frame.columns.name = "period"
        return frame

    # ------------------------------------------------------------------- solve
    def solve(self) -> DsoResult:
        """Solve; tighten an inexact relaxation; extract DLMPs and their parts.

        The result's status is ``inexact`` when the relaxation stays inexact after
        tightening or the AC check disagrees with the OPF, and ``feasible`` when the
        tightened (exact) dispatch's cost may be more than 0.1 % above the relaxation's
        bound (the optimum lies between them); its DLMPs are then not prices
        (``DsoResult.prices_valid``). The objective is the dispatch's true cost (without
        the tightening penalty).
        """
        t0 = time.perf_counter()
        tools_note = None
        if self.has_tools:  # the tools move freely first, then are held where they can be
            self.free_tools()
            sol, _, tightened, penalty_cost = self._optimise()
            if sol.ok:
                relaxed = float(sol.objective) - penalty_cost
                self.fix_tools(sol)
                sol, bound, tightened, penalty_cost = self._optimise()
                tools_note = (relaxed, float(sol.objective) - penalty_cost if sol.ok else 0.0)
        else:
            sol, bound, tightened, penalty_cost = self._optimise()
        t1 = time.perf_counter()
        if not sol.ok:
            raise SolveError(f"DSO OPF of feeder {self.tree.feeder_id}: solver status "
                             f"'{sol.status.value}' ({sol.raw_status})", sol.status.value)
        from tsodso.dso.dlmp import extract

        result = extract(self, sol, tightened)
        result.objective = float(sol.objective) - penalty_cost  # the true cost, not the penalty
        sf = result.shortfalls
        if tools_note is not None and tools_note[1] - tools_note[0] > 1e-6 * max(
                1.0, abs(tools_note[0])):
            sf.notes.append(f"{self.tree.feeder_id}: tap changer and capacitor steps held at "
                            f"their positions: {tools_note[1] - tools_note[0]:,.2f} $ above "
                            "the continuous setting")
        if tightened:
            sf.optimality_gap = max(result.objective - bound, 0.0)
            # tolerance: 0.1 % of the bound plus what the default tie-breaking penalty
            # (``loss_penalty``) itself adds on the losses
            loss_mwh = float(result.losses_mw.sum()) * self.dt
            sf.optimality_gap_tol = 1e-3 * abs(bound) + self.options.loss_penalty * loss_mwh
            if sf.unproven:
                sf.notes.append(f"{self.tree.feeder_id}: SOC relaxation tightened with a loss "
                                f"penalty of {self.applied_penalty:g} $/MWh (relaxation bound "
                                f"{bound:,.2f} $)")
        t2 = time.perf_counter()
        if self.options.ac_check:
            from tsodso.dso.ac_check import ac_check

            result.ac_check = ac_check(self, result)
            sf.pf_not_converged = int(result.ac_check["not_converged_periods"])
            v_err = result.ac_check["max_voltage_error_pu"]
            s_err = result.ac_check["max_flow_error_pct"]
            if self.soc:  # the SOC model claims exact AC physics: a mismatch is inexact
                sf.ac_voltage_error_pu, sf.ac_flow_error_pct = v_err, s_err
            else:  # LinDistFlow is an approximation by design: its error is reported
                n_viol = int(result.ac_check["violations"])
                sf.notes.append(f"LinDistFlow approximation: the AC power flow of the "
                                f"dispatch differs by {v_err:.3g} pu in voltage and "
                                f"{s_err:.3g} % in flow" + (
                                    f", and finds {n_viol} limit violation(s) (element x "
                                    "period) the approximation does not see"
                                    if n_viol else ""))
        result.status = sf.status(sol.status)
        result.timings = {**self.timings, "solve_s": t1 - t0, "extract_s": t2 - t1,
                          "ac_check_s": time.perf_counter() - t2}
        return result

    def _optimise(self) -> tuple[Any, float, bool, float]:
        """Solve the model as it stands and tighten an inexact relaxation: the solution,
        the relaxation's bound ($), whether it was tightened and the tightening penalty's
        share of the objective ($)."""
        solver = "clarabel" if (self.soc or self.boundary.price_c2) else "highs"
        tol = self.options.tol if solver == "clarabel" else None
        # measured on case33bw x 24: Clarabel's iterative refinement doubles the solve time
        # without improving the DLMPs (1.7e-6 $/MWh either way)
        opts = {"iterative_refinement_enable": False} if solver == "clarabel" else None
        sol = self.model.solve(solver, tol=tol, options=opts)
        if not sol.ok and opts:  # short of optimal without refinement: once more with it
            sol = self.model.solve(solver, tol=tol)
        bound = float(sol.objective) if sol.ok else float("nan")
        tightened, penalty_cost = False, 0.0
        if sol.ok and self.soc and self.options.tighten:
            sol, tightened, penalty_cost = self._tighten(sol, solver, tol, opts)
        return sol, bound, tightened, penalty_cost

    def _tighten(self, sol: Any, solver: str, tol: float | None, opts: dict | None
                 ) -> tuple[Any, bool, float]:
        """Re-solve with a penalty on resistive losses while the relaxation adds fictitious
        losses (:meth:`fictitious_losses`).

        The penalty starts at ``loss_penalty`` and grows tenfold (twice at most). Where the
        relaxed optimum has negative DLMPs (a negative interface price: consuming is paid,
        so the relaxation "burns" power in fictitious losses), the penalty must exceed the
        most negative DLMP for losses to cost anything: the second step is then 1.1 times
        that plus ``loss_penalty``. Returns the solution, whether it was tightened and the
        penalty's share of its objective ($)."""
        base = self.options.loss_penalty
        lam = sol.dual(self.balance_p) / self.dt
        negative = max(0.0, -float(np.nanmin(lam, initial=0.0)))
        second = 1.1 * negative + base if negative > 1e-3 else 10 * base
        tightened, penalty_cost = False, 0.0
        for penalty in (base, second, 10 * second):
            if not sol.ok or not self.fictitious_losses(sol).any():
                break
            extra = np.tile(self.tree.r, self.T) * penalty * self.dt
            self.model.set_cost(self.L, extra)
            sol = self.model.solve(solver, tol=tol, options=opts)
            self.model.set_cost(self.L, np.zeros(len(self.L)))
            self.applied_penalty = penalty
            penalty_cost = float(extra @ sol.value(self.L)) if sol.ok else 0.0
            tightened = True
        return sol, tightened, penalty_cost

    def fictitious_losses(self, sol: Any) -> np.ndarray:
        """Per period, the losses the relaxation adds beyond the physics, MW: the sum over
        lines of ``r (l v - P^2 - Q^2) / v``, counted only in periods where it exceeds
        interior-point accuracy (0.1 % of the period's losses plus ``gap_tol`` MW); 0
        elsewhere."""
        T, n = self.T, self.tree.n
        gap = np.maximum(self._gap(sol), 0.0)
        L = sol.value(self.L).reshape(T, n)
        V = sol.value(self.V).reshape(T, n)
        vp = np.maximum(V[:, np.maximum(self.tree.parent, 0)], 1e-9)
        fictitious = (self.tree.r * gap / vp).sum(axis=1)
        losses = (self.tree.r * L).sum(axis=1)
        tol = 1e-3 * np.abs(losses) + self.options.gap_tol
        return np.where(fictitious > tol, fictitious, 0.0)

    def _gap(self, sol: Any) -> np.ndarray:
        """(T x n) relaxation gap l v_parent - P^2 - Q^2 (pu^2, 0 at the root)."""
        T, n = self.T, self.tree.n
        P = sol.value(self.P).reshape(T, n)
        Q = sol.value(self.Q).reshape(T, n)
        L = sol.value(self.L).reshape(T, n)
        V = sol.value(self.V).reshape(T, n)
        vp = V[:, np.maximum(self.tree.parent, 0)]
        gap = L * vp - P**2 - Q**2
        gap[:, 0] = 0.0
        return gap


def solve_dso(system: System, feeder_id: str, boundary: Boundary | None = None,
              options: DsoOptions | None = None) -> DsoResult:
    """Build and solve the OPF of one feeder (see :class:`DsoOpf`), after validating the
    system (:meth:`System.check`)."""
    return DsoOpf(system.check(), feeder_id, options, boundary).solve()


def _solve_chunk(system: System, feeder_ids: list[str], boundaries: list[Boundary | None],
                 options: DsoOptions | None) -> list[DsoResult]:
    """Solve one chunk of feeders (one task per worker; progress is reported where a
    reporter listens, i.e. in process)."""
    from tsodso import progress

    out = []
    control = der_control(system)  # once for the chunk (admission reads every DER)
    with progress.task("feeder OPFs", total=len(feeder_ids)) as step:
        for f, b in zip(feeder_ids, boundaries, strict=True):
            out.append(DsoOpf(system, f, options, b, control=control.of(system, f)).solve())
            step(info=f)
    return out


def feeders_only(system: System, feeder_ids: list[str]) -> System:
    """The part of ``system`` that the DSO OPFs of ``feeder_ids`` read: those feeders, their
    DERs, profiles and rules, without the transmission grid."""
    return system.subset_feeders(feeder_ids, grid=False)


def solve_feeders(system: System, feeder_ids: list[str] | None = None,
                  boundaries: dict[str, Boundary] | None = None,
                  options: DsoOptions | None = None, executor: Any = None
                  ) -> dict[str, DsoResult]:
    """Solve many feeders' OPFs, through ``executor`` (in-process by default; see
    :mod:`tsodso.parallel`). Feeders are independent, so time grows linearly with their
    number and divides by the number of workers: each worker receives its share of the
    feeders (:func:`feeders_only`) once and returns their results in one batch."""
    from tsodso.parallel import InProcessExecutor

    ids = list(feeder_ids or system.feeder_ids)
    boundaries = boundaries or {}
    ex = executor or InProcessExecutor()
    with ex.partition(system, ids, feeders_only) as part:
        results = ex.map_chunks(part, _solve_chunk, [boundaries.get(f) for f in ids],
                                shared=(options,))
    return dict(zip(ids, results, strict=True))
