"""Multi-period DC-OPF market clearing of the TSO, with reserves, storage and DER offers.

Formulation (all periods at once; ``dt`` is the period length in hours)::

    min  sum_t dt * [ gen cost(p_t) + offer prices . q_t + VOLL * (shed_t + spill_t)
                      + penalty * reserve shortfall_t ]
    s.t. Cg p_t + Co q_t + Cs (dis_t - ch_t) - Ce ev_t + shed_t - spill_t - Bbus theta_t
             = load_t + gs + p_shift                                     (balance, dual = LMP)
         -rate <= Bf theta_t + pf_shift <= rate                          (branch limits)
         -ramp_down dt <= p_t - p_{t-1} <= ramp_up dt                   (ramping)
         e_t = e_{t-1} + eta_c ch_t dt - dis_t dt / eta_d,  e_T >= e_0    (storage)
         p_t + sum up-reserves <= pmax,  p_t - sum down-reserves >= pmin (headroom)
         sum reserves_k + shortfall_k >= requirement_k,t                (reserve, dual = price)

Prices are duals divided by ``dt`` (positive $/MWh). The LMP is decomposed as MATPOWER and
the ISOs do: energy = the LMP at the reference bus, congestion = the rest (equal to
``-PTDF' mu`` with ``mu`` the branch shadow prices), loss = 0 in the lossless DC model. With
``TsoOptions(losses=True)`` the market prices marginal losses by loss factors
(:mod:`tsodso.tso.losses`): the reference bus's balance row is replaced by one energy
balance weighted by delivery factors, and loss = ``-energy x loss factor``.
Load shedding and spill are explicit, priced at the rules' value of lost load, and reported.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tsodso.errors import SolveError, TsodsoError
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
    soften_storage_end,
)
from tsodso.opt.namespace import Namespace
from tsodso.resources import check_periods, check_problem, tso_size
from tsodso.rules import MarketRules
from tsodso.shortfalls import Shortfalls
from tsodso.tso.dc_network import DcNetwork, build_dc_network
from tsodso.tso.losses import LossFactors, branch_losses, loss_factors
from tsodso.tso.offers import TsoView, tso_view
from tsodso.tso.reserves import DEFAULT_PRODUCTS, ReserveProduct


@dataclass
class TsoOptions:
    """Options of the TSO market (small, explicit, defaults that match MATPOWER's DC OPF).

    Attributes
    ----------
    periods : int, optional
        Number of periods to clear (default: the system's horizon).
    reserves : bool
        Co-optimise the reserve ``products``.
    products : tuple of ReserveProduct
        Reserve products and their requirements.
    zonal_reserves : bool
        One requirement per load zone (bus ``zone``) instead of system-wide.
    ramping : bool
        Enforce generator ramp limits between periods.
    rules : MarketRules, optional
        Participation rules (default: the system's).
    solver : str
        ``auto`` (HiGHS for linear costs, Clarabel for quadratic ones), ``highs`` or
        ``clarabel``. Quadratic costs go to Clarabel because HiGHS 1.16's active-set QP
        solver cycled on MATPOWER's case9 (4 million iterations without progress).
    losses : bool
        Price marginal losses with loss factors (:mod:`tsodso.tso.losses`), iterating from
        the lossless dispatch until the factors change by less than ``loss_tol``.
    loss_iterations : int
        Most loss-factor updates (each one market solve). ISOs compute the factors once,
        at a base case (``loss_iterations=1``: at the lossless dispatch).
    loss_tol : float
        Largest change of any loss factor (MW/MW) that counts as settled.
    loss_damping : float
        Weight of the newly computed factors from the second update on (the rest is the
        previous factors): with linear costs the dispatch can jump between vertices as the
        factors move and undamped updates oscillate. A result whose factors did not
        settle says so in its ``notes``.
    """

    periods: int | None = None
    reserves: bool = False
    products: tuple[ReserveProduct, ...] = DEFAULT_PRODUCTS
    zonal_reserves: bool = False
    ramping: bool = True
    rules: MarketRules | None = None
    solver: str = "auto"
    losses: bool = False
    loss_iterations: int = 10
    loss_tol: float = 1e-4
    loss_damping: float = 0.5

    def __post_init__(self) -> None:
        """Refuse invalid values (one :class:`TsodsoError` naming the option)."""
        from tsodso.options import require_bool, require_choice, require_int, require_number

        check_periods(self.periods, name="TsoOptions.periods")
        for name in ("reserves", "zonal_reserves", "ramping", "losses"):
            require_bool(f"TsoOptions.{name}", getattr(self, name))
        if not isinstance(self.products, tuple | list) or not all(
                isinstance(p, ReserveProduct) for p in self.products):
            raise TsodsoError(f"TsoOptions.products must be a tuple of ReserveProduct, got "
                              f"{self.products!r}")
        if self.rules is not None and not isinstance(self.rules, MarketRules):
            raise TsodsoError(f"TsoOptions.rules must be MarketRules or None, got "
                              f"{type(self.rules).__name__}")
        require_choice("TsoOptions.solver", self.solver, ("auto", "highs", "clarabel"))
        require_int("TsoOptions.loss_iterations", self.loss_iterations, low=1)
        require_number("TsoOptions.loss_tol", self.loss_tol, low=0.0, low_open=True)
        require_number("TsoOptions.loss_damping", self.loss_damping, low=0.0, high=1.0,
                       low_open=True)


@dataclass
class TsoResult:
    """Outcome of a TSO clearing. Frames are indexed by period; columns are case ids."""

    status: SolveStatus
    objective: float
    lmp: pd.DataFrame
    lmp_energy: pd.DataFrame
    lmp_congestion: pd.DataFrame
    lmp_loss: pd.DataFrame
    dispatch: pd.DataFrame
    flows: pd.DataFrame
    branch_shadow_price: pd.DataFrame
    binding_branches: list[int]
    offers: pd.DataFrame
    der_dispatch: pd.DataFrame
    storage_energy: pd.DataFrame
    shed: pd.DataFrame
    spill: pd.DataFrame
    reserve_prices: pd.DataFrame
    reserve_awards: dict[str, pd.DataFrame]
    reserve_shortfall: pd.DataFrame
    excluded: pd.DataFrame
    interface_load: pd.DataFrame
    der_settlement: pd.DataFrame = field(default_factory=pd.DataFrame)
    losses_mw: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    loss_iterations: int = 0
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    shortfalls: Shortfalls = field(default_factory=Shortfalls)

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` form (bus and generator ids as strings)."""

        cols = columns_as_lists
        return {
            "status": self.status.value,
            "objective": self.objective,
            "lmp": cols(self.lmp),
            "lmp_energy": cols(self.lmp_energy),
            "lmp_congestion": cols(self.lmp_congestion),
            "lmp_loss": cols(self.lmp_loss),
            "dispatch": cols(self.dispatch),
            "binding_branches": self.binding_branches,
            "branch_shadow_price": {str(c): [float(v) for v in self.branch_shadow_price[c]]
                                    for c in self.binding_branches},
            "reserve_prices": cols(self.reserve_prices),
            "load_shed_mwh": self.shortfalls.shed_mwh,
            "spill_mwh": self.shortfalls.spill_mwh,
            "unmet_ev_mwh": self.shortfalls.unmet_ev_mwh,
            "reserve_shortfall_mwh": self.shortfalls.reserve_shortfall_mwh,
            "shortfalls": self.shortfalls.to_json(),
            "losses_mw": [float(v) for v in self.losses_mw],
            "notes": self.notes,
            "excluded_ders": self.excluded.to_dict(orient="records"),
            "timings": self.timings,
        }


def _kron(a: sp.sparray | np.ndarray, periods: int) -> sp.coo_array:
    """Block-diagonal repetition of ``a`` over the periods (variables are period-major),
    assembled directly as triplets (the model takes COO; no CSR round trip)."""
    coo = sp.coo_array(a)
    m, n = coo.shape
    shift = np.arange(periods)[:, None]
    return sp.coo_array((np.tile(coo.data, periods),
                         ((coo.row + m * shift).ravel(), (coo.col + n * shift).ravel())),
                        shape=(m * periods, n * periods))


def _select(n: int, idx: np.ndarray) -> sp.csr_array:
    """Rows of the n x n identity picked by ``idx``."""
    return sp.csr_array((np.ones(len(idx)), (np.arange(len(idx)), idx)), shape=(len(idx), n))


def _incidence(n_rows: int, pos: np.ndarray) -> sp.csr_array:
    """(n_rows x len(pos)) matrix with a one at (pos[j], j)."""
    return sp.csr_array((np.ones(len(pos)), (pos, np.arange(len(pos)))),
                        shape=(n_rows, len(pos)))


class TsoMarket:
    """A TSO market built once and re-solved as loads or prices change.

    ``TsoMarket(system).solve()`` clears the market; :meth:`set_interface_load` changes the
    fixed load at interface buses without rebuilding (the coordination schemes use it).
    """

    def __init__(self, system: System, options: TsoOptions | None = None,
                 view: TsoView | None = None, model: Model | None = None,
                 prefix: str = "", interface_feeders: list[str] | None = None,
                 losses: LossFactors | None = None):
        t0 = time.perf_counter()
        self.loss_model = losses
        self.system = system
        self.options = options or TsoOptions()
        self.rules = self.options.rules or system.rules
        self.T = check_periods(self.options.periods, system.n_periods,
                               f"system '{system.name}'", "TsoOptions.periods")
        if model is None:  # a joint model is checked as a whole by its builder
            self._check_memory(system, interface_feeders)
        self.dt = float(system.profiles.period_hours)
        self.net: DcNetwork = build_dc_network(system.grid)
        self.view = view or tso_view(system, self.rules)
        self._own_model = model is None
        self.model = model or Model("tso")
        self._m = Namespace(self.model, prefix)
        self.prefix = prefix
        self.interface_feeders = list(interface_feeders or [])
        self._build()
        self.timings = {"build_s": time.perf_counter() - t0}

    def _check_memory(self, system: System, interface_feeders: list[str] | None) -> None:
        """Refuse a market too large for the memory available (before building it)."""
        clarabel = self.options.solver == "clarabel" or (
            self.options.solver == "auto" and _quadratic_costs(system.grid.generators))
        products = len(self.options.products) if self.options.reserves else 0
        size = tso_size(system, self.T, products, len(interface_feeders or []))
        check_problem(f"the TSO market of '{system.name}' over {self.T} periods", size,
                      "qp" if clarabel else "lp")

    # ------------------------------------------------------------------ inputs
    def _bus_load(self) -> np.ndarray:
        """(T x N) fixed load at each bus, MW: transmission loads, shunts, interface loads."""
        g, net, T = self.system.grid, self.net, self.T
        loads = g.loads[g.loads.in_service & g.loads.bus_id.isin(net.bus_ids)]
        mult = self.system.profiles.multipliers(loads.profile)[:T]
        load = np.zeros((T, net.n_bus))
        pos = net.positions(loads.bus_id, "loads")
        np.add.at(load.T, pos, (mult * loads.p_mw.to_numpy()).T)
        iface = self.view.fixed_load.iloc[:T]
        if iface.shape[1]:
            np.add.at(load.T, net.positions(iface.columns.to_numpy(), "feeders"),
                      iface.to_numpy().T)
        return load

    # ------------------------------------------------------------------- model
    def _build(self) -> None:
        sysm, net, T, dt, rules = self.system, self.net, self.T, self.dt, self.rules
        N = net.n_bus
        m = self._m
        gens = sysm.grid.generators[sysm.grid.generators.in_service].reset_index(drop=True)
        self.gens = gens
        G = len(gens)
        gpos = net.positions(gens.bus_id, "generators")
        buses = sysm.grid.buses.set_index("bus_id").loc[net.bus_ids]

        # ---- generators
        tile = lambda v: np.tile(np.asarray(v, dtype=float), T)  # noqa: E731
        pwl = (gens.cost_model == "piecewise_linear").to_numpy()
        c1 = np.where(pwl, 0.0, gens.cost_c1.to_numpy())
        self.p = m.add_variables("p_gen", T * G, lb=tile(gens.pmin_mw), ub=tile(gens.pmax_mw),
                                 cost=tile(c1 * dt))
        c2 = np.where(pwl, 0.0, gens.cost_c2.to_numpy())
        self.quadratic = _quadratic_costs(gens)
        if self.quadratic:
            m.add_quadratic_cost(self.p, tile(2 * c2 * dt))
        m.add_objective_offset(float(np.where(pwl, 0.0, gens.cost_c0).sum()) * dt * T)
        if pwl.any():
            self._pwl_costs(gens, pwl)

        # ---- angles (reference buses fixed)
        lb = np.full(N, -np.inf)
        ub = np.full(N, np.inf)
        lb[net.ref] = ub[net.ref] = net.ref_angle
        self.theta = m.add_variables("theta", T * N, lb=tile(lb), ub=tile(ub))

        # ---- DER offers at interface buses
        v = self.view
        E = len(v.energy.table)
        self.q = add_energy_offers(
            m, OfferNames(power="offer", budget="offer_budget"), T, dt,
            p_min_mw=v.energy.p_min[:T], p_max_mw=v.energy.p_max[:T],
            price_per_mwh=v.energy.table.price_per_mwh.to_numpy(float),
            budget_mwh=v.energy.table.budget_mwh.to_numpy(float)).power
        st = v.storage.table
        S = len(st)
        storage = add_storage(
            m, StorageNames(charge="st_charge", discharge="st_discharge", energy="st_energy",
                            balance="st_balance"), T, dt,
            p_charge_mw=st.p_charge_mw.to_numpy(float),
            p_discharge_mw=st.p_discharge_mw.to_numpy(float),
            cost_per_mwh=st.cost_per_mwh.to_numpy(float),
            e_min_mwh=st.e_min_mwh.to_numpy(float), e_max_mwh=st.e_max_mwh.to_numpy(float),
            e_init_mwh=st.e_init_mwh.to_numpy(float),
            eta_charge=st.eta_charge.to_numpy(float),
            eta_discharge=st.eta_discharge.to_numpy(float),
            e_end_mwh=(st.e_end_mwh if "e_end_mwh" in st else st.e_init_mwh).to_numpy(float))
        self.ch, self.dis, self.e = storage.charge, storage.discharge, storage.energy
        self._storage = storage
        self.st_short = None  # storage end-target shortfall (soften_storage_target)
        ev = v.ev.table
        V = len(ev)
        evs = add_ev_charging(
            m, EvNames(charge="ev_charge", energy="ev_energy", shortfall="ev_shortfall",
                       balance="ev_balance", need="ev_need"), T, dt,
            p_charge_mw=v.ev.p_charge[:T], e_max_mwh=ev.e_max_mwh.to_numpy(float),
            e_init_mwh=ev.e_init_mwh.to_numpy(float), eta_charge=ev.eta_charge.to_numpy(float),
            need_mwh=ev.need_mwh.to_numpy(float), departure_period=ev.departure.to_numpy(int),
            shortfall_cost_per_mwh=rules.value_of_lost_load,
            # vehicle-to-grid pools (pooled with their like: same efficiency and cost)
            p_discharge_mw=None if v.ev.p_discharge is None else v.ev.p_discharge[:T],
            eta_discharge=(ev.eta_discharge.to_numpy(float) if "eta_discharge" in ev
                           else None),
            discharge_cost_per_mwh=(ev.cost_per_mwh.to_numpy(float) if "cost_per_mwh" in ev
                                    else None))
        self.evc, self.eve, self.ev_short = evs.charge, evs.energy, evs.shortfall
        self.evd = evs.discharge  # None without vehicle-to-grid

        # ---- slack: load shedding and spill at value of lost load
        load = self._bus_load()
        self.load = load
        # only where they can act (half the columns, half the simplex iterations on pegase):
        # shedding at buses with load or a feeder, spill at buses with must-run output
        iface_pos = net.positions(sysm.feeders.interface_bus.to_numpy(), "feeders") if len(
            sysm.feeders) else np.zeros(0, dtype=int)
        must_run = gpos[gens.pmin_mw.to_numpy() > 0]
        offer_min = np.asarray(net.positions(v.energy.table.bus_id.to_numpy(int), "offers")
                               if E else [], dtype=int)
        offer_min = offer_min[(v.energy.p_min[:T] > 0).any(axis=0)] if E else offer_min
        self.shed_pos = np.union1d(np.flatnonzero((load > 0).any(axis=0)), iface_pos)
        self.spill_pos = np.union1d(np.union1d(must_run, offer_min), iface_pos).astype(int)
        voll = rules.value_of_lost_load
        self.shed = add_shedding(m, "shed", T, len(self.shed_pos), dt, value_of_lost_load=voll,
                                 ub_mw=np.maximum(load[:, self.shed_pos], 0))
        self.spill = add_shedding(m, "spill", T, len(self.spill_pos), dt,
                                  value_of_lost_load=voll)

        # ---- nodal balance
        opos = net.positions(v.energy.table.bus_id.to_numpy(int), "offers") if E else []
        spos = net.positions(st.bus_id.to_numpy(int), "storage") if S else []
        vpos = net.positions(ev.bus_id.to_numpy(int), "ev") if V else []
        # ---- feeders modelled in the same problem (joint market): their imports, MW
        F = len(self.interface_feeders)
        self.iface = m.add_variables("interface", T * F, lb=-np.inf)
        fbus = sysm.feeders.set_index("feeder_id").interface_bus
        fpos = net.positions(fbus.loc[self.interface_feeders].to_numpy(), "feeders") if F \
            else np.zeros(0, dtype=int)
        terms = [
            (self.iface, -_kron(_incidence(N, fpos), T)),
            (self.p, _kron(_incidence(N, gpos), T)),
            (self.q, _kron(_incidence(N, np.asarray(opos, dtype=int)), T)),
            (self.dis, _kron(_incidence(N, np.asarray(spos, dtype=int)), T)),
            (self.ch, -_kron(_incidence(N, np.asarray(spos, dtype=int)), T)),
            (self.evc, -_kron(_incidence(N, np.asarray(vpos, dtype=int)), T)),
            *([(self.evd, _kron(_incidence(N, np.asarray(vpos, dtype=int)), T))]
              if self.evd is not None else []),
            (self.shed, _kron(_incidence(N, self.shed_pos), T)),
            (self.spill, -_kron(_incidence(N, self.spill_pos), T)),
        ]
        self._gs = buses.gs_mw.to_numpy()
        lb, ub = self._balance_bounds()
        self.balance = m.add_constraints("balance", [*terms, (self.theta, -_kron(net.bbus, T))],
                                         lb=lb, ub=ub)
        if self.loss_model is not None:
            # one energy balance per period weighted by delivery factors (dual = energy price)
            df = self.loss_model.delivery[:T]
            weigh = sp.csr_array((df.ravel(), (np.repeat(np.arange(T), N), np.arange(T * N))),
                                 shape=(T, T * N))
            rhs = self._energy_rhs()
            self.energy_balance = m.add_constraints(
                "energy_balance", [(var, weigh @ sp.csr_array(coef)) for var, coef in terms],
                lb=rhs, ub=rhs)

        # ---- branch limits (rated branches only)
        rated = np.flatnonzero(np.isfinite(net.rate))
        self.rated = rated
        bf = net.bf.tocsr()[rated]
        self.flow_limit = m.add_constraints(
            "branch_limit", [(self.theta, _kron(bf, T))],
            lb=tile(-net.rate[rated] - net.pf_shift[rated]),
            ub=tile(net.rate[rated] - net.pf_shift[rated]))

        # ---- ramping
        ramp_up = gens.ramp_up_mw_per_h.to_numpy() * dt
        ramp_dn = gens.ramp_down_mw_per_h.to_numpy() * dt
        limited = np.flatnonzero(np.isfinite(ramp_up) | np.isfinite(ramp_dn))
        if self.options.ramping and T > 1 and len(limited):
            diff = sp.csr_array(sp.eye(T - 1, T, k=1) - sp.eye(T - 1, T))
            m.add_constraints("ramp", [(self.p, sp.kron(diff, _select(G, limited)))],
                              lb=np.tile(-ramp_dn[limited], T - 1),
                              ub=np.tile(ramp_up[limited], T - 1))

        # ---- reserves
        self.reserve_vars: dict[str, tuple[Any, Any]] = {}
        self.reserve_req: dict[str, Any] = {}
        if self.options.reserves:
            self._reserves(gens, gpos, st, spos, load)

    def _pwl_costs(self, gens: pd.DataFrame, pwl: np.ndarray) -> None:
        """Epigraph of piecewise-linear costs: y >= c_k + s_k (p - p_k) for every segment."""
        m, T, dt = self._m, self.T, self.dt
        G = len(gens)
        ids = gens.gen_id.to_numpy()[pwl]
        gpos = np.flatnonzero(pwl)
        pts = self.system.grid.gen_cost_points.sort_values(["gen_id", "point"])
        pts = pts[pts.gen_id.isin(ids)]
        same = pts.gen_id.to_numpy()[1:] == pts.gen_id.to_numpy()[:-1]
        p0, p1 = pts.p_mw.to_numpy()[:-1][same], pts.p_mw.to_numpy()[1:][same]
        c0, c1 = pts.cost_per_h.to_numpy()[:-1][same], pts.cost_per_h.to_numpy()[1:][same]
        seg_gen = pts.gen_id.to_numpy()[:-1][same]
        slope = (c1 - c0) / (p1 - p0)
        col = pd.Index(ids).get_indexer(seg_gen)
        K = len(slope)
        self.y = m.add_variables("pwl_cost", T * len(ids), lb=-np.inf, cost=dt)
        y_sel = sp.csr_array((np.ones(K), (np.arange(K), col)), shape=(K, len(ids)))
        p_sel = sp.csr_array((-slope, (np.arange(K), gpos[col])), shape=(K, G))
        m.add_constraints("pwl_segments", [(self.y, _kron(y_sel, T)), (self.p, _kron(p_sel, T))],
                          lb=np.tile(c0 - slope * p0, T))

    def _reserves(self, gens: pd.DataFrame, gpos: np.ndarray, st: pd.DataFrame,
                  spos: Any, load: np.ndarray) -> None:
        m, T, dt, net = self._m, self.T, self.dt, self.net
        G, S = len(gens), len(st)
        zone_of_bus = self.system.grid.buses.set_index("bus_id").loc[net.bus_ids, "zone"]
        zone_of_bus = zone_of_bus.to_numpy() if self.options.zonal_reserves else np.zeros(
            net.n_bus, dtype=int)
        zones = np.unique(zone_of_bus)
        zidx = np.searchsorted(zones, zone_of_bus)
        Z = len(zones)
        zone_load = np.zeros((T, Z))
        np.add.at(zone_load.T, zidx, load.T)
        span = (gens.pmax_mw - gens.pmin_mw).to_numpy()
        up_terms_g, dn_terms_g, up_terms_s, dn_terms_s = [], [], [], []
        st_span = (st.p_charge_mw + st.p_discharge_mw).to_numpy(float) if S else np.zeros(0)
        for prod in self.options.products:
            cap = np.minimum(gens.ramp_up_mw_per_h.to_numpy() * prod.response_minutes / 60, span)
            rg = m.add_variables(f"res_{prod.name}_gen", T * G, ub=np.tile(cap, T))
            rs = m.add_variables(f"res_{prod.name}_st", T * S, ub=np.tile(st_span, T))
            short = m.add_variables(f"res_{prod.name}_short", T * Z,
                                    cost=self.rules.reserve_shortfall_penalty * dt)
            req = prod.share_of_load * zone_load
            zg = _incidence(Z, zidx[gpos])
            zs = _incidence(Z, zidx[np.asarray(spos, dtype=int)]) if S else sp.csr_array((Z, 0))
            self.reserve_req[prod.name] = m.add_constraints(
                f"res_{prod.name}_req", [(rg, _kron(zg, T)), (rs, _kron(zs, T)), (short, 1.0)],
                lb=req.ravel())
            self.reserve_vars[prod.name] = (rg, rs, short, zones)
            (up_terms_g if prod.direction == "up" else dn_terms_g).append((rg, 1.0))
            (up_terms_s if prod.direction == "up" else dn_terms_s).append((rs, 1.0))
        pmax = np.tile(gens.pmax_mw.to_numpy(), T)
        pmin = np.tile(gens.pmin_mw.to_numpy(), T)
        if up_terms_g:
            m.add_constraints("headroom", [(self.p, 1.0), *up_terms_g], ub=pmax)
        if dn_terms_g:
            m.add_constraints("footroom", [(self.p, 1.0), *[(r, -1.0) for r, _ in dn_terms_g]],
                              lb=pmin)
        if S and up_terms_s:
            m.add_constraints("st_headroom", [(self.dis, 1.0), (self.ch, -1.0), *up_terms_s],
                              ub=np.tile(st.p_discharge_mw.to_numpy(float), T))
        if S and dn_terms_s:
            m.add_constraints("st_footroom", [(self.dis, 1.0), (self.ch, -1.0),
                                              *[(r, -1.0) for r, _ in dn_terms_s]],
                              lb=np.tile(-st.p_charge_mw.to_numpy(float), T))

    def _balance_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Row bounds of the nodal balances: load + shunts + phase-shifter injections (+ the
        losses as nodal demand; the reference bus's row is free when losses are priced)."""
        rhs = self.load + self._gs + self.net.pbus_shift
        if self.loss_model is None:
            return rhs.ravel(), rhs.ravel()
        rhs = rhs + self.loss_model.nodal_demand[: self.T]
        lb, ub = rhs.copy(), rhs.copy()
        lb[:, self.net.ref], ub[:, self.net.ref] = -np.inf, np.inf
        return lb.ravel(), ub.ravel()

    def _energy_rhs(self) -> np.ndarray:
        """(T,) right-hand side of the loss-weighted energy balance, MW."""
        lm = self.loss_model
        assert lm is not None
        return ((lm.delivery[: self.T] * (self.load + self._gs)).sum(axis=1)
                + lm.offset[: self.T])

    # ------------------------------------------------------------------- reuse
    def set_interface_load(self, load: pd.DataFrame) -> None:
        """Replace the fixed load at interface buses ((periods x bus_id) MW) and keep the
        model: the next :meth:`solve` warm-starts."""
        self.view.fixed_load = load
        self.load = self._bus_load()
        self.model.set_rhs(self.balance, *self._balance_bounds())
        if self.loss_model is not None:
            rhs = self._energy_rhs()
            self.model.set_rhs(self.energy_balance, rhs, rhs)
        self.model.set_bounds(self.shed, ub=np.maximum(self.load[:, self.shed_pos], 0).ravel())

    # ------------------------------------------------------------------- solve
    def solve(self) -> TsoResult:
        """Clear the market and return prices, dispatch and reports (with
        ``options.losses``, iterating the loss factors: see :meth:`solve_with_losses`)."""
        if self.options.losses and self.loss_model is None:
            return self.solve_with_losses()
        try:
            return self._solve_once()
        except SolveError:
            if self.st_short is not None or not len(self.view.storage.table):
                raise
            # storage cannot reach its end-of-horizon target from where it starts (a
            # real-time window after forecast errors): let it end short, priced at the
            # value of lost load and reported, rather than fail
            self.soften_storage_target()
            return self._solve_once()

    def soften_storage_target(self) -> None:
        """Let storage offers end short of their end-of-horizon energy, each MWh short
        priced at the value of lost load and reported (``unmet_storage_mwh``; see
        :func:`~tsodso.opt.der_blocks.soften_storage_end`)."""
        st = self.view.storage.table
        if not len(st) or self.st_short is not None:
            return
        end = st.e_end_mwh if "e_end_mwh" in st else st.e_init_mwh
        self.st_short = soften_storage_end(
            self._m, self._storage, "st_end", self.T, e_min_mwh=st.e_min_mwh.to_numpy(float),
            e_end_mwh=end.to_numpy(float),
            shortfall_cost_per_mwh=self.rules.value_of_lost_load)

    def solve_with_losses(self) -> TsoResult:
        """Price marginal losses: solve lossless, compute loss factors at the flows, solve
        with them, and repeat until no factor changes by more than ``options.loss_tol``
        (or ``options.loss_iterations`` updates). Each update builds a market with the new
        factors (the constraint coefficients change)."""
        t0 = time.perf_counter()
        result = self._solve_once()
        spent = dict(result.timings)  # summed over the solves
        net, factors, notes = self.net, None, []
        nodal = np.zeros((self.T, net.n_bus))
        updates, change = 0, np.inf
        while updates < self.options.loss_iterations:
            flows = result.flows.to_numpy()
            inj = np.zeros((self.T, net.n_bus))  # into the network at each bus = Cft' f
            np.add.at(inj.T, net.from_pos, flows.T)
            np.add.at(inj.T, net.to_pos, -flows.T)
            new = loss_factors(net, flows, inj + nodal)
            if factors is not None:
                new = new.damped(factors, self.options.loss_damping, inj + nodal)
                change = float(np.abs(new.factor - factors.factor).max())
                if change <= self.options.loss_tol:
                    break
            factors, nodal = new, new.nodal_demand
            market = TsoMarket(self.system, self.options, view=self.view, losses=factors)
            result = market._solve_once()  # noqa: SLF001
            updates += 1
            for key, value in result.timings.items():
                spent[key] = spent.get(key, 0.0) + value
        else:
            if updates == 1:
                notes.append("loss factors from the lossless dispatch (one update, as ISOs "
                             "use a base case)")
            else:  # not settled: also a warning line of the result
                unsettled = (f"loss factors still changed after {updates} updates (largest "
                             f"change {change:.2g} > loss_tol {self.options.loss_tol:g}): the "
                             "dispatch moves between alternatives as the factors change")
                notes.append(unsettled)
                result.shortfalls.notes.append(unsettled)
        result.loss_iterations = updates
        result.notes += notes
        result.timings = {**spent, "total_s": time.perf_counter() - t0}
        return result

    def _solve_once(self) -> TsoResult:
        t0 = time.perf_counter()
        solver = self.options.solver
        if solver == "auto":
            solver = "clarabel" if self.quadratic else "highs"
        # Clarabel at its default tolerances: asking 1e-9 made case300 stop "AlmostSolved"
        # with LMPs 8.5e-3 off instead of 4.4e-5 (measured against MATPOWER)
        # periods without constraints linking them (ramps, storage, budgets) are independent
        # LPs: HiGHS solves them one after the other, each warm-started from the last
        # (on case2869_pegase x 24: 0.4 s instead of 8 s as one LP); the split is exact
        split = solver == "highs" and self.T > 1 and self._own_model
        sol = self.model.solve(solver, split=split)
        t1 = time.perf_counter()
        if not sol.ok:
            raise SolveError(f"TSO market: solver ended with status '{sol.status.value}' "
                             f"({sol.raw_status}); load shedding and spill are priced, so "
                             "this points to inconsistent limits (e.g. pmin above pmax)",
                             sol.status.value)
        result = self._extract(sol)
        result.timings = {**self.timings, "solve_s": t1 - t0,
                          "solver_s": float(sol.solve_s),
                          "extract_s": time.perf_counter() - t1}
        return result

    def _shortfalls(self, sol: Any, reserve_short: dict[str, np.ndarray]) -> Shortfalls:
        """Priced slack of the optimum: shed load, spill, unmet EV energy (at value of lost
        load) and reserve shortfall (at the reserve penalty), MWh and $."""
        dt, rules = self.dt, self.rules
        shed = float(np.maximum(sol.value(self.shed), 0.0).sum() * dt)
        spill = float(np.maximum(sol.value(self.spill), 0.0).sum() * dt)
        ev = float(np.maximum(sol.value(self.ev_short), 0.0).sum())
        short = float(sum(np.maximum(v, 0.0).sum() for v in reserve_short.values()) * dt)
        st = (float(np.maximum(sol.value(self.st_short), 0.0).sum())
              if self.st_short is not None else 0.0)
        return Shortfalls(
            shed_mwh=shed, spill_mwh=spill, unmet_ev_mwh=ev, reserve_shortfall_mwh=short,
            unmet_storage_mwh=st,
            slack_cost=rules.value_of_lost_load * (shed + spill + ev + st)
            + rules.reserve_shortfall_penalty * short)

    def _extract(self, sol: Any) -> TsoResult:
        net, T, dt, v = self.net, self.T, self.dt, self.view
        periods = pd.RangeIndex(T, name="period")

        def frame(values: np.ndarray, cols: Any) -> pd.DataFrame:
            return pd.DataFrame(np.asarray(values).reshape(T, -1), index=periods,
                                columns=pd.Index(cols))

        nodal = sol.dual(self.balance).reshape(T, -1) / dt
        if self.loss_model is None:
            lmp = frame(nodal, net.bus_ids)
            energy = lmp.iloc[:, net.ref[:1]].to_numpy() * np.ones((1, net.n_bus))
            loss = np.zeros((T, net.n_bus))
        else:  # nodal duals are congestion only (the reference row is free)
            lam = sol.dual(self.energy_balance)[:, None] / dt
            df = self.loss_model.delivery[:T]
            lmp = frame(nodal + lam * df, net.bus_ids)
            energy = lam * np.ones((1, net.n_bus))
            loss = lam * (df - 1.0)
        lmp_energy = frame(energy, net.bus_ids)
        congestion = frame(lmp.to_numpy() - energy - loss, net.bus_ids)
        gen_ids = self.system.grid.generators.gen_id.to_numpy()
        p = sol.value(self.p).reshape(T, -1)
        dispatch = frame(np.zeros((T, len(gen_ids))), gen_ids)
        dispatch.loc[:, self.gens.gen_id.to_numpy()] = p
        theta = sol.value(self.theta).reshape(T, -1)
        flows = frame((net.bf @ theta.T).T + net.pf_shift, net.branch_ids)
        mu = np.zeros((T, net.n_branch))
        mu[:, self.rated] = sol.dual(self.flow_limit).reshape(T, -1) / dt
        shadow = frame(mu, net.branch_ids)
        # binding: a non-zero shadow price (a branch merely at its limit in one of several
        # optimal dispatches of a degenerate LP is not reported)
        binding_mask = np.abs(mu) > 1e-6
        binding = [int(b) for b in net.branch_ids[binding_mask.any(axis=0)]]
        q = sol.value(self.q).reshape(T, -1)
        ch = sol.value(self.ch).reshape(T, -1)
        dis = sol.value(self.dis).reshape(T, -1)
        evc = sol.value(self.evc).reshape(T, -1)
        if self.evd is not None:  # vehicle-to-grid
            evc = evc - sol.value(self.evd).reshape(T, -1)
        parts = [(q, v.energy.table.offer_id), (dis - ch, v.storage.table.offer_id),
                 (-evc, v.ev.table.offer_id)]
        offers = pd.concat([frame(x, ids) for x, ids in parts if len(ids)] or
                           [pd.DataFrame(index=periods)], axis=1)
        der = self._disaggregate(offers)
        reserve_prices = {}
        awards = {}
        shortfall = {}
        for name, (rg, rs, short, zones) in self.reserve_vars.items():
            price = sol.dual(self.reserve_req[name]).reshape(T, -1) / dt
            for z, zone in enumerate(zones):
                label = name if len(zones) == 1 else f"{name}@zone{zone}"
                reserve_prices[label] = price[:, z]
                shortfall[label] = sol.value(short).reshape(T, -1)[:, z]
            parts = [frame(sol.value(rg), self.gens.gen_id)]
            if len(v.storage.table):
                parts.append(frame(sol.value(rs), v.storage.table.offer_id))
            awards[name] = pd.concat(parts, axis=1)
        excluded = v.excluded.copy()
        if len(excluded):
            excluded["value_lost"] = self._lost_value(excluded, lmp)
        settlement = self._settlement(der, lmp)
        shortfalls = self._shortfalls(sol, shortfall)
        return TsoResult(
            status=shortfalls.status(sol.status), shortfalls=shortfalls,
            objective=float(sol.objective), lmp=lmp, lmp_energy=lmp_energy,
            lmp_congestion=congestion, lmp_loss=frame(loss, net.bus_ids),
            dispatch=dispatch, flows=flows, branch_shadow_price=shadow,
            binding_branches=binding, offers=offers, der_dispatch=der,
            storage_energy=frame(sol.value(self.e), v.storage.table.offer_id),
            shed=frame(self._expand(sol.value(self.shed), self.shed_pos), net.bus_ids),
            spill=frame(self._expand(sol.value(self.spill), self.spill_pos), net.bus_ids),
            reserve_prices=pd.DataFrame(reserve_prices, index=periods),
            reserve_awards=awards, reserve_shortfall=pd.DataFrame(shortfall, index=periods),
            excluded=excluded, interface_load=v.fixed_load.iloc[:T],
            der_settlement=settlement,
            losses_mw=pd.Series(
                np.zeros(T) if self.loss_model is None else self._losses_at(flows.to_numpy()),
                index=periods, name="losses_mw"),
        )

    def _losses_at(self, flows: np.ndarray) -> np.ndarray:
        """(T,) losses, MW, of the cleared flows (quadratic in the flows)."""
        return branch_losses(self.net, flows).sum(axis=1)

    def _settlement(self, der: pd.DataFrame, lmp: pd.DataFrame) -> pd.DataFrame:
        """Energy payment of each market DER: at its interface LMP (nodal) or at its load
        zone's load-weighted average LMP (zonal, or nodal rules for DERs smaller than
        ``zonal_settlement_below_mw``, as ERCOT does under 10 MW)."""
        members = self.view.members
        if not len(members) or der.empty:
            return pd.DataFrame(columns=["der_id", "aggregator_id", "bus_id", "basis",
                                         "energy_mwh", "price", "revenue"])
        d = self.system.ders.set_index("der_id").loc[members.der_id.unique()]
        bus = d.feeder_id.map(self.system.feeders.set_index("feeder_id").interface_bus)
        zone = self.system.grid.buses.set_index("bus_id").zone
        load = pd.DataFrame(self.load, columns=lmp.columns, index=lmp.index)
        zonal = zonal_prices(self.system, lmp, load)
        is_zonal = pd.Series(settled_zonal(self.rules, np.maximum(d.p_max_mw, -d.p_min_mw)),
                             index=d.index)
        rows = []
        for der_id in d.index:
            p = der[der_id].to_numpy()
            price = (zonal[zone[bus[der_id]]] if is_zonal[der_id] else lmp[bus[der_id]])
            rows.append({"der_id": der_id, "aggregator_id": d.aggregator_id[der_id],
                         "bus_id": int(bus[der_id]),
                         "basis": "zonal" if is_zonal[der_id] else "nodal",
                         "energy_mwh": float(p.sum() * self.dt),
                         "price": float((price.to_numpy() * np.abs(p)).sum()
                                        / max(np.abs(p).sum(), 1e-12)),
                         "revenue": float((price.to_numpy() * p).sum() * self.dt)})
        return pd.DataFrame(rows)

    def _expand(self, values: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """(T x N) array from values defined at the bus positions ``pos`` only."""
        out = np.zeros((self.T, self.net.n_bus))
        out[:, pos] = np.asarray(values).reshape(self.T, len(pos))
        return out

    def _disaggregate(self, offers: pd.DataFrame) -> pd.DataFrame:
        """Each DER's MW: its pooled offer's dispatch times its share, or its own output."""
        members = self.view.members
        fixed = self.view.der_output_fixed.iloc[: self.T]
        out = fixed.copy()
        if len(members):
            share = np.broadcast_to(members.share.to_numpy(dtype=float),
                                    (self.T, len(members))).copy()
            per_period = self.view.energy.member_shares
            if per_period is not None and per_period.shape[1]:
                # energy offers: members in proportion to their availability each period
                cols = per_period.shape[1]
                share[:, :cols] = per_period.to_numpy()[: self.T]
            values = offers[members.offer_id.to_numpy()].to_numpy() * share
            add = pd.DataFrame(values, columns=members.der_id.to_numpy(), index=offers.index)
            add = add.T.groupby(level=0).sum().T
            out.loc[:, add.columns] = out[add.columns].to_numpy() + add.to_numpy()
        out.index = offers.index
        return out

    def _lost_value(self, excluded: pd.DataFrame, lmp: pd.DataFrame) -> np.ndarray:
        """Energy value an excluded DER could have earned: sum_t max(LMP - cost, 0) * cap * dt
        for injecting DERs (their capacity times the price spread), $ over the horizon."""
        ders = self.system.ders.set_index("der_id").loc[excluded.der_id]
        avail = (self.system.profiles.multipliers(ders.profile)[: self.T]
                 * ders.p_max_mw.to_numpy())
        price = lmp[excluded.bus_id.to_numpy()].to_numpy()
        margin = np.maximum(price - ders.cost_per_mwh.to_numpy(), 0)
        dispatchable = ~ders.kind.isin(["pv", "wind"]).to_numpy()  # renewables self-dispatch
        return (margin * avail * self.dt).sum(axis=0) * dispatchable


def zonal_prices(system: System, lmp: pd.DataFrame, load: pd.DataFrame
                 ) -> dict[Any, pd.Series]:
    """The zonal price of each load zone per period: the load-weighted average LMP of its
    buses ($/MWh; ``load`` is periods x bus_id, MW, negative load weighs nothing), the
    plain average where the zone has no load."""
    zone = system.grid.buses.set_index("bus_id").zone
    out = {}
    for z in zone.reindex(lmp.columns).dropna().unique():
        cols = [b for b in lmp.columns if zone.get(b) == z]
        w = load.reindex(columns=cols, fill_value=0.0).clip(lower=0)
        avg = (lmp[cols] * w).sum(axis=1) / w.sum(axis=1).where(w.sum(axis=1) > 0)
        out[z] = avg.fillna(lmp[cols].mean(axis=1))
    return out


def settled_zonal(rules: MarketRules, size_mw: Any) -> np.ndarray:
    """Whether each DER (its size, MW) is paid the zonal price under ``rules``: zonal
    settlement, or a resource smaller than ``zonal_settlement_below_mw`` (ERCOT)."""
    size = np.asarray(size_mw, dtype=float)
    return (rules.der_settlement == "zonal") | (size < rules.zonal_settlement_below_mw)


def _quadratic_costs(generators: pd.DataFrame) -> bool:
    """Whether any in-service generator has a quadratic (polynomial, c2 != 0) cost: the
    market is then a QP (Clarabel under ``solver="auto"``)."""
    g = generators
    return bool((g.in_service & (g.cost_model != "piecewise_linear") & (g.cost_c2 != 0)).any())


def clear_tso_market(system: System, options: TsoOptions | None = None) -> TsoResult:
    """Build and clear the TSO market for ``system`` (see :class:`TsoMarket`), after
    validating it (:meth:`System.check`: a system edited in Python is refused, not solved,
    when e.g. its ``period_hours`` is not > 0)."""
    return TsoMarket(system.check(), options).solve()
