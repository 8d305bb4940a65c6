"""Feeder faults: isolation, restoration by switching, microgrids and unserved energy.

A line of a feeder fails at period ``start`` and stays out for ``duration_periods`` periods
(the outage). What the DSO does, in this order, all taken as instantaneous at the start of
the outage (remote-controlled switches; the seconds to minutes of the first interruption
are not counted):

1. The feeder breaker trips; the DSO opens the faulted line (isolation) and recloses the
   breaker. The buses still connected to the substation (the *upstream* part) are fed as
   before; the buses beyond the faulted line are de-energised.
2. With ``switching``, it closes tie switches (normally-open lines of the feeder data, e.g.
   case33bw's five) to re-energise de-energised buses from the substation. A candidate
   closes up to ``FaultOptions.max_ties`` ties, each joining two parts the fault left apart,
   and opens, for each loop the closed ties make, one line of that loop, so the network
   stays radial (lines are opened before ties are closed, so no loop exists at any
   instant). Reconfiguration inside a part (a tie whose two ends the fault left connected)
   is not considered.
3. With ``microgrids``, every part still de-energised that holds a grid-forming unit (a
   storage unit with power and energy, or a dispatchable ``dg``; PV, wind, EVs and demand
   response alone cannot form an island) runs as an island: its largest grid-forming unit
   (by ``p_max_mw``, then the smallest der_id) is the island's root, holds its voltage at
   1.0 pu and balances it; nothing is imported (the root's active and reactive exchange is
   0); its storage energy is tracked over the outage periods. The rest stays unserved.

Every energised part (the substation's, each island) is solved with the DSO OPF
(:class:`tsodso.dso.opf.DsoOpf`, SOC branch flow) over the outage periods, with load
shedding allowed at the value of lost load (``system.rules.value_of_lost_load``) and the
feeder's voltage and thermal limits. Each candidate configuration is evaluated this way and
the one serving the most load is chosen (unserved energies within ``FaultOptions.tol_mwh``
count as equal; then the least load in islands, since an island has no reserve behind it;
then the fewest switching operations, the lowest operating cost, the order of
enumeration); candidates whose bound on the served load (every load of their
energised parts) cannot beat the best found are not solved. Results are deterministic.

During the outage the DSO operates every DER of the feeder (an emergency: the market's
admission rules do not apply), each inverter with an apparent-power rating gives reactive
power, storage may be emptied down to its minimum (its end-of-horizon target ``soc_end``
is waived) and EV charging needs are deferred past the outage (``energy_need_mwh`` set to
0: EV charging is not customer load here). States of charge at ``start`` are the system's
``soc_init`` (set them with :meth:`tsodso.model.System.with_energy`).

Units and signs
---------------
Power in MW (positive: consumption for loads, injection for DERs), energy in MWh, money in
$ (USD), prices in $/MWh, voltages in pu. *Unserved energy* is involuntary interruption:
the load of de-energised buses plus the load the OPF sheds, MWh; demand response's
voluntary reduction (paid at its offer) is reported apart and is not unserved. Its cost is
unserved energy times the value of lost load, $.

Customer groups
---------------
The data carry no customer classes, so a customer group is the load's profile name in
``feeder_loads.profile`` (``"flat"`` for loads without a profile): loads that share a
profile are the same kind of customer in the source data (e.g. SimBench's household,
commercial and agricultural series). Shed load at a bus is shared among the bus's loads in
proportion to their demand in that period.

Grid states (:class:`tsodso.actors.GridState`)
----------------------------------------------
Judged over a set of periods from the OPF's dispatch: ``"emergency"`` when some load is
unserved (more than ``tol_mwh``); otherwise ``"alert"`` when the feeder runs in an abnormal
configuration (the faulted line open, a tie closed, a line opened, a part islanded) or is
near a limit: a bus voltage within ``alert_margin_pu`` of its band, a line loaded above
``alert_loading`` of its rating (its current at the upstream end, ``|S| / V``, over the
rated current ``rating_mva`` at 1 pu, as the OPF and the AC power flow measure it) or the
substation above ``alert_loading`` of ``substation_mva``; otherwise ``"normal"``. The
state after the repair is judged on the normal configuration solved over the same outage
periods (the best information the study has about the periods that follow).

Messages (through a :class:`tsodso.actors.MessageBus` when one is given), DSO to TSO, one
conversation: a :class:`~tsodso.actors.FaultNotice` (element ``"feeder_line"``, id
``"<feeder_id>:<line_id>"``) and a ``GridState`` after isolation (emergency when load is
de-energised; periods of the outage; ``sim_time`` ``"fault"``), a ``GridState`` after
restoration (periods of the outage; ``"restored"``) and one after the repair (the period
after the outage; ``"repaired"``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd
from scipy.sparse import csr_array
from scipy.sparse.csgraph import breadth_first_order, connected_components

from tsodso.actors import (
    Envelope,
    FaultNotice,
    GridState,
    Message,
    MessageBus,
    Party,
    new_envelope,
)
from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions, DsoResult
from tsodso.errors import SolveError, TsodsoError
from tsodso.model.schema import conform
from tsodso.model.system import System
from tsodso.model.tables import FEEDERS
from tsodso.options import require_bool, require_int, require_number
from tsodso.rules.admission import DerControl

State = Literal["normal", "alert", "emergency"]

#: DER kinds that can form an island (hold voltage and frequency): storage and generators.
GRID_FORMING_KINDS: tuple[str, ...] = ("storage", "dg")

SECTION_COLUMNS = ("section", "means", "root_bus", "n_buses", "load_mwh", "served_mwh",
                   "unserved_mwh", "demand_response_mwh", "unserved_cost_usd")
GROUP_COLUMNS = ("section", "customer_group", "n_loads", "load_mwh", "unserved_mwh",
                 "unserved_cost_usd")
ACTION_COLUMNS = ("step", "action", "line_id", "from_bus", "to_bus", "reason")
CANDIDATE_COLUMNS = ("candidate", "closed", "opened", "n_operations", "bound_unserved_mwh",
                     "evaluated", "unserved_mwh", "cost_usd", "islanded_mwh", "chosen")


@dataclass(frozen=True)
class FaultOptions:
    """Options of a fault study (:func:`restore`).

    Attributes
    ----------
    price_per_mwh : float or sequence of float
        Interface price during the outage, $/MWh (positive: the DSO pays for imports): one
        value, or one per outage period (e.g. the TSO's LMP at the interface bus). It only
        steers the dispatch of what is served; unserved energy is priced at the value of
        lost load. Default 0: only that value and the DERs' own costs matter.
    max_ties : int
        Most tie switches one restoration closes (>= 1; more ties: more candidates).
    tol_mwh : float
        Unserved energies closer than this are equal when comparing candidates, and less
        than this is "every load served", MWh (> 0).
    alert_margin_pu : float
        A voltage closer than this to its band's edge puts the feeder on alert, pu (>= 0).
    alert_loading : float
        A line or substation loaded above this fraction of its rating puts the feeder on
        alert (in (0, 1]).
    """

    price_per_mwh: float | tuple[float, ...] = 0.0
    max_ties: int = 2
    tol_mwh: float = 1e-4
    alert_margin_pu: float = 0.01
    alert_loading: float = 0.9

    def __post_init__(self) -> None:
        price = self.price_per_mwh
        if isinstance(price, str) or not isinstance(price, Sequence | np.ndarray):
            require_number("FaultOptions.price_per_mwh", price)
        else:
            object.__setattr__(self, "price_per_mwh", tuple(
                require_number(f"FaultOptions.price_per_mwh[{k}]", v)
                for k, v in enumerate(price)))
            if not self.price_per_mwh:
                raise TsodsoError("FaultOptions.price_per_mwh: give one price or one per "
                                  "outage period, got none")
        require_int("FaultOptions.max_ties", self.max_ties, low=1)
        require_number("FaultOptions.tol_mwh", self.tol_mwh, low=0.0, low_open=True)
        require_number("FaultOptions.alert_margin_pu", self.alert_margin_pu, low=0.0)
        require_number("FaultOptions.alert_loading", self.alert_loading, low=0.0, high=1.0,
                       low_open=True)


@dataclass
class FaultResult:
    """What a fault cost and how the DSO restored service (see the module docstring).

    Attributes
    ----------
    feeder_id, line_id : str, int
        The faulted line.
    periods : range
        The outage periods (periods of the system).
    period_hours : float
        Length of one period, h.
    switching, microgrids : bool
        What the DSO was allowed to do.
    value_of_lost_load : float
        $/MWh of unserved energy.
    buses : pandas.DataFrame
        One row per feeder bus: ``bus_id``, ``section``, ``means`` (``substation``,
        ``tie_switch``, ``microgrid`` or ``none``), ``load_mwh``, ``unserved_mwh``.
    sections : pandas.DataFrame
        One row per section (:data:`SECTION_COLUMNS`): ``upstream`` (still fed from the
        substation through its normal path), ``tie`` (re-energised through tie switches),
        ``microgrid@B`` (island around the grid-forming unit at bus B), ``unserved@B``
        (de-energised part whose smallest bus is B); energies in MWh over the outage.
    groups : pandas.DataFrame
        Unserved energy per section and customer group (:data:`GROUP_COLUMNS`).
    unserved_mw : pandas.DataFrame
        Unserved load per period (index: system periods) and bus, MW.
    actions : pandas.DataFrame
        The switching actions in the order done (:data:`ACTION_COLUMNS`): ``action`` is
        ``"open"`` or ``"close"``.
    lines : pandas.DataFrame
        Every line of the feeder: ``line_id, from_bus, to_bus, normal`` (in service before
        the fault) and ``restored`` (in service during the outage, after the actions).
    candidates : pandas.DataFrame
        Every radial configuration considered (:data:`CANDIDATE_COLUMNS`): the tie line ids
        ``closed`` and line ids ``opened``, the bound on its unserved energy (MWh, its dead
        parts' load), whether it was solved; ``unserved_mwh``, ``cost_usd`` (the OPF
        objective: operating cost with shedding at the value of lost load) and
        ``islanded_mwh`` (load of its islands) are NaN when it was not solved.
    opf : dict of str to DsoResult
        The OPF of each energised part of the chosen configuration: ``"substation"`` and
        ``"microgrid@B"``; their frames are indexed by the outage's own periods
        ``0 .. duration-1`` (system period ``start + k``).
    roots : dict of str to int
        Root bus of each energised part (the substation's root, each island's grid-forming
        bus).
    normal : DsoResult
        The normal configuration (no fault) solved over the outage periods.
    state, state_after : {"normal", "alert", "emergency"}
        Grid state during the outage after restoration, and after the repair.
    messages : list of Message
        The messages to the TSO, in order (as delivered, with ids, when a bus was given).
    """

    feeder_id: str
    line_id: int
    periods: range
    period_hours: float
    switching: bool
    microgrids: bool
    value_of_lost_load: float
    buses: pd.DataFrame
    sections: pd.DataFrame
    groups: pd.DataFrame
    unserved_mw: pd.DataFrame
    actions: pd.DataFrame
    lines: pd.DataFrame
    candidates: pd.DataFrame
    opf: dict[str, DsoResult]
    roots: dict[str, int]
    normal: DsoResult
    state: State
    state_after: State
    messages: list[Message] = field(default_factory=list)

    @property
    def load_mwh(self) -> float:
        """Load of the whole feeder over the outage, MWh."""
        return float(self.sections.load_mwh.sum())

    @property
    def unserved_mwh(self) -> float:
        """Unserved energy over the outage, MWh."""
        return float(self.sections.unserved_mwh.sum())

    @property
    def unserved_cost_usd(self) -> float:
        """Unserved energy at the value of lost load, $."""
        return self.unserved_mwh * self.value_of_lost_load

    def unserved_by_group(self) -> pd.Series:
        """Unserved energy per customer group over all sections, MWh."""
        return self.groups.groupby("customer_group", sort=True).unserved_mwh.sum()

    def unserved_by_means(self) -> pd.DataFrame:
        """Load and unserved energy by how each section was served, MWh."""
        return self.sections.groupby("means", sort=True)[["load_mwh", "unserved_mwh"]].sum()


# ---------------------------------------------------------------------------- checking
def _check(system: System, feeder_id: object, line_id: object, start: object,
           duration: object) -> tuple[str, int, int, int]:
    if not isinstance(system, System):
        raise TsodsoError(f"system must be a System, got {type(system).__name__}")
    if not isinstance(feeder_id, str) or feeder_id not in system.feeder_ids:
        raise TsodsoError(f"feeder_id {feeder_id!r}: no such feeder; have "
                          f"{', '.join(system.feeder_ids) or 'none'}")
    lines = system.feeder_lines[system.feeder_lines.feeder_id == feeder_id]
    if isinstance(line_id, bool) or not isinstance(line_id, int | np.integer):
        raise TsodsoError(f"line_id must be an integer line id of feeder {feeder_id!r}, "
                          f"got {line_id!r}")
    match = lines[lines.line_id == int(line_id)]
    if match.empty:
        raise TsodsoError(f"line_id {line_id}: no such line in feeder {feeder_id!r}")
    if not bool(match.in_service.iloc[0]):
        raise TsodsoError(f"line_id {line_id} of feeder {feeder_id!r} is already out of "
                          "service (an open tie switch or a line switched out): only a line "
                          "in service can fail")
    T = system.n_periods
    for name, value, low in (("start", start, 0), ("duration_periods", duration, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
            raise TsodsoError(f"{name} must be an integer >= {low}, got {value!r}")
    if int(start) + int(duration) > T:
        raise TsodsoError(f"start {start} + duration_periods {duration} = "
                          f"{int(start) + int(duration)}: the outage must end within the "
                          f"horizon of {T} periods")
    return feeder_id, int(line_id), int(start), int(duration)


# ----------------------------------------------------------------------------- graphs
def _components(n: int, f: np.ndarray, t: np.ndarray) -> tuple[int, np.ndarray]:
    """Connected components of the graph on ``n`` nodes with edges ``f[k]-t[k]``."""
    graph = csr_array((np.ones(len(f)), (f, t)), shape=(n, n))
    count, labels = connected_components(graph, directed=False)
    return int(count), labels


@dataclass(frozen=True)
class _Candidate:
    closed: tuple[int, ...]  # tie line ids closed
    opened: tuple[int, ...]  # normally-closed line ids opened to keep the network radial
    in_service: frozenset[int]  # line ids in service

    @property
    def n_operations(self) -> int:
        return len(self.closed) + len(self.opened)


@dataclass(frozen=True)
class _Part:
    """An energised part of a configuration: its buses, lines, root and whether an island."""

    name: str
    buses: frozenset[int]
    lines: frozenset[int]
    root: int
    island: bool


class _Study:
    """The fault on one feeder over the outage window; caches the OPF of each part."""

    def __init__(self, system: System, feeder_id: str, line_id: int, start: int, stop: int,
                 options: FaultOptions) -> None:
        self.fid, self.line_id, self.options = feeder_id, line_id, options
        w = system.subset_feeders([feeder_id], grid=False).window(start, stop)
        ders = w.ders.copy()
        st = (ders.kind == "storage").to_numpy()
        ders.loc[st, "soc_end"] = ders.loc[st, "soc_min"]  # emergency: may empty to its min
        ders.loc[(ders.kind == "ev").to_numpy(), "energy_need_mwh"] = 0.0  # deferred
        self.system = replace(w, ders=ders)
        self.T = self.system.n_periods
        self.dt = float(self.system.profiles.period_hours)
        self.voll = float(self.system.rules.value_of_lost_load)
        feeder = self.system.feeder(feeder_id)
        self.feeder = feeder
        self.bus_ids = np.sort(feeder.buses.bus_id.to_numpy(np.int64))
        self.index = pd.Index(self.bus_ids)
        self.root = int(feeder.info["root_bus"])
        lines = feeder.lines.reset_index(drop=True)
        self.lines = lines
        self.f = self.index.get_indexer(lines.from_bus.to_numpy())
        self.t = self.index.get_indexer(lines.to_bus.to_numpy())
        self.line_pos = {int(lid): k for k, lid in enumerate(lines.line_id)}
        self.normal = frozenset(int(x) for x in lines.line_id[lines.in_service.to_numpy(bool)])
        self.ties = tuple(sorted(int(x) for x in lines.line_id[~lines.in_service.to_numpy(bool)]))
        # loads: per load and per bus (T x n, sorted bus order), MW
        loads = feeder.loads.reset_index(drop=True)
        self.loads = loads
        mult = self.system.profiles.multipliers(loads.profile)
        self.load_p = np.maximum(mult * loads.p_mw.to_numpy(float), 0.0)  # T x loads
        self.load_pos = self.index.get_indexer(loads.bus_id.to_numpy())
        self.bus_p = np.zeros((self.T, len(self.bus_ids)))
        np.add.at(self.bus_p.T, self.load_pos, self.load_p.T)
        d = self.system.ders
        gf = d[d.kind.isin(GRID_FORMING_KINDS).to_numpy()
               & (d.p_max_mw.to_numpy(float) > 0)
               & ((d.kind != "storage").to_numpy() | (d.energy_mwh.to_numpy(float) > 0))]
        self.grid_forming = gf.sort_values(["p_max_mw", "der_id"],
                                           ascending=[False, True], kind="stable")
        self._cache: dict[tuple[frozenset[int], int, bool], DsoResult] = {}

    # ------------------------------------------------------------------ topology
    def labels(self, in_service: frozenset[int]) -> np.ndarray:
        pos = np.array([self.line_pos[lid] for lid in sorted(in_service)], dtype=int)
        return _components(len(self.bus_ids), self.f[pos], self.t[pos])[1]

    def is_forest(self, in_service: frozenset[int]) -> bool:
        pos = np.array([self.line_pos[lid] for lid in sorted(in_service)], dtype=int)
        count, _ = _components(len(self.bus_ids), self.f[pos], self.t[pos])
        return len(pos) == len(self.bus_ids) - count

    def candidates(self, switching: bool) -> list[_Candidate]:
        """Radial configurations after isolating the faulted line (first: no switching)."""
        base = self.normal - {self.line_id}
        out = [_Candidate((), (), base)]
        if not switching:
            return out
        labels = self.labels(base)
        bridging = [lid for lid in self.ties
                    if labels[self.f[self.line_pos[lid]]] != labels[self.t[self.line_pos[lid]]]]
        seen = {base}
        for k in range(1, self.options.max_ties + 1):
            for closed in itertools.combinations(bridging, k):
                edges = base | set(closed)
                pos = [self.line_pos[lid] for lid in sorted(edges)]
                count, _ = _components(len(self.bus_ids), self.f[pos], self.t[pos])
                loops = len(pos) - (len(self.bus_ids) - count)
                if loops == 0:
                    options: list[tuple[int, ...]] = [()]
                else:  # open one line of each loop: lines on a loop are not bridges
                    on_loop = [lid for lid in sorted(base)
                               if self._components_without(edges, lid) == count]
                    options = list(itertools.combinations(on_loop, loops))
                for opened in options:
                    cfg = frozenset(edges - set(opened))
                    if cfg in seen or not self.is_forest(cfg):
                        continue
                    seen.add(cfg)
                    out.append(_Candidate(tuple(closed), tuple(opened), cfg))
        return out

    def _components_without(self, edges: set[int], lid: int) -> int:
        pos = [self.line_pos[x] for x in sorted(edges) if x != lid]
        return _components(len(self.bus_ids), self.f[pos], self.t[pos])[0]

    def parts(self, cand: _Candidate, microgrids: bool) -> tuple[list[_Part], list[np.ndarray]]:
        """The energised parts of a configuration and its dead components (bus positions)."""
        labels = self.labels(cand.in_service)
        root_label = labels[self.index.get_loc(self.root)]
        parts, dead = [], []
        gf_pos = self.index.get_indexer(self.grid_forming.bus_id.to_numpy())
        for label in np.unique(labels):
            members = np.flatnonzero(labels == label)
            buses = frozenset(int(b) for b in self.bus_ids[members])
            lines = frozenset(lid for lid in cand.in_service
                              if labels[self.f[self.line_pos[lid]]] == label)
            if label == root_label:
                parts.append(_Part("substation", buses, lines, self.root, False))
                continue
            formers = gf_pos[labels[gf_pos] == label] if len(gf_pos) else gf_pos
            if microgrids and len(formers):
                root = int(self.bus_ids[formers[0]])  # the largest grid-forming unit
                parts.append(_Part(f"microgrid@{root}", buses, lines, root, True))
            else:
                dead.append(members)
        return parts, dead

    def upstream_ends(self, part: _Part) -> pd.Series:
        """The upstream bus (towards the part's root) of each line of ``part``, by line id."""
        lids = sorted(part.lines)
        pos = np.array([self.line_pos[lid] for lid in lids], dtype=int)
        n = len(self.bus_ids)
        graph = csr_array((np.ones(len(pos)), (self.f[pos], self.t[pos])), shape=(n, n))
        _, pred = breadth_first_order(graph, self.index.get_loc(part.root), directed=False)
        f, t = self.f[pos], self.t[pos]
        return pd.Series(self.bus_ids[np.where(pred[t] == f, f, t)], index=lids)

    def bound_unserved(self, cand: _Candidate, microgrids: bool) -> float:
        """Unserved energy if every load of the energised parts were served, MWh."""
        _, dead = self.parts(cand, microgrids)
        return float(sum(self.bus_p[:, m].sum() for m in dead) * self.dt)

    # ----------------------------------------------------------------------- OPF
    def solve(self, part: _Part) -> DsoResult:
        key = (part.lines, part.root, part.island)
        if key not in self._cache:
            self._cache[key] = self._solve(part)
        return self._cache[key]

    def _solve(self, part: _Part) -> DsoResult:
        s, fid = self.system, f"{self.fid}|{part.name}"
        buses = list(part.buses)
        info = self.feeder.info.copy()
        info["feeder_id"], info["root_bus"] = fid, part.root
        if part.island:  # the grid-forming unit holds the voltage; no transformer, no taps
            info["v_root_pu"] = 1.0
            info["oltc_v_min_pu"] = info["oltc_v_max_pu"] = np.nan
        lines = self.lines[self.lines.line_id.isin(list(part.lines)).to_numpy()].copy()
        lines["in_service"] = True

        def rows(table: pd.DataFrame, column: str = "bus_id") -> pd.DataFrame:
            out = table[table[column].isin(buses).to_numpy()].copy()
            out["feeder_id"] = fid
            return out.reset_index(drop=True)

        ders = rows(s.ders[(s.ders.feeder_id == self.fid).to_numpy()])
        sub = replace(s, feeders=conform(pd.DataFrame([info]), FEEDERS)[0],
                      feeder_buses=rows(self.feeder.buses),
                      feeder_lines=lines.assign(feeder_id=fid).reset_index(drop=True),
                      feeder_loads=rows(self.feeder.loads), ders=ders,
                      der_bids=s.der_bids[s.der_bids.der_id.isin(ders.der_id)].reset_index(
                          drop=True), meta=dict(s.meta))
        control = DerControl(np.ones(len(ders), dtype=bool),
                             np.isfinite(ders.s_max_mva.to_numpy(float)))
        opts = DsoOptions(decompose=False, ac_check=False)
        if part.island:
            opf = DsoOpf(sub, fid, opts, Boundary(schedule_mw=np.zeros(self.T)),
                         control=control)
            # no import: the root's reactive exchange is 0 as well (the grid-forming unit's
            # own reactive power is its DER variable, within its rating)
            n = opf.tree.n
            lb = np.full(self.T * n, -np.inf)
            ub = np.full(self.T * n, np.inf)
            lb[::n] = ub[::n] = 0.0
            opf.model.set_bounds(opf.Q, lb=lb, ub=ub)
        else:
            price = np.broadcast_to(np.asarray(self.options.price_per_mwh, float), (self.T,))
            opf = DsoOpf(sub, fid, opts, Boundary(price=price.copy()), control=control)
        try:
            return opf.solve()
        except SolveError as err:
            raise TsodsoError(f"fault on line {self.line_id} of feeder {self.fid!r}: the OPF "
                              f"of {part.name} (buses {sorted(buses)}) failed: {err}") from None

    def evaluate(self, cand: _Candidate, microgrids: bool
                 ) -> tuple[float, float, float, list[_Part], dict[str, DsoResult], np.ndarray]:
        """Unserved energy (MWh), OPF cost ($), load of the islands (MWh), parts, their OPFs
        and the unserved load per period and bus (T x n, MW) of a configuration."""
        parts, dead = self.parts(cand, microgrids)
        unserved = np.zeros_like(self.bus_p)
        cost = islanded = 0.0
        results = {}
        for part in parts:
            res = self.solve(part)
            results[part.name] = res
            cost += res.objective
            if part.island:
                pos = self.index.get_indexer(sorted(part.buses))
                islanded += float(self.bus_p[:, pos].sum() * self.dt)
            cols = self.index.get_indexer(res.shed_mw.columns.to_numpy(np.int64))
            unserved[:, cols] = np.clip(res.shed_mw.to_numpy(), 0.0, self.bus_p[:, cols])
        for members in dead:
            unserved[:, members] = self.bus_p[:, members]
            cost += self.voll * self.bus_p[:, members].sum() * self.dt
        return float(unserved.sum() * self.dt), float(cost), islanded, parts, results, unserved

    # --------------------------------------------------------------------- state
    def judge(self, results: dict[str, DsoResult], parts: list[_Part], unserved_mwh: float,
              abnormal: str) -> tuple[State, str]:
        """Grid state and its reason (module docstring)."""
        o = self.options
        if unserved_mwh > o.tol_mwh:
            return "emergency", f"{unserved_mwh:.4g} MWh of load not served"
        notes = [abnormal] if abnormal else []
        fb = self.feeder.buses.set_index("bus_id")
        vmin = fb.v_min_pu.fillna(float(self.feeder.info["v_min_pu"]))
        vmax = fb.v_max_pu.fillna(float(self.feeder.info["v_max_pu"]))
        rating = self.lines.set_index("line_id").rating_mva
        for part in parts:
            res = results[part.name]
            v = res.voltage_pu
            lo = (v - vmin.loc[v.columns].to_numpy()).min().min()
            hi = (vmax.loc[v.columns].to_numpy() - v).min().min()
            if lo < o.alert_margin_pu or hi < o.alert_margin_pu:
                notes.append(f"{part.name}: a voltage within {o.alert_margin_pu:g} pu of its "
                             f"limit ({min(lo, hi):.4f} pu of margin)")
            s = np.hypot(res.flow_p_mw, res.flow_q_mvar)
            load = 0.0
            if s.size:  # current at the upstream end, |S| / V, over the rated current
                up = self.upstream_ends(part).loc[s.columns]
                current = s.to_numpy() / v[up.to_numpy()].to_numpy()
                load = float((current / rating.loc[s.columns].to_numpy()).max())
            if load > o.alert_loading:
                notes.append(f"{part.name}: a line loaded at {100 * load:.1f} % of its rating")
            sub_mva = float(self.feeder.info["substation_mva"])
            if not part.island and np.isfinite(sub_mva):
                sub = float(np.hypot(res.interface_p_mw, res.interface_q_mvar).max()) / sub_mva
                if sub > o.alert_loading:
                    notes.append(f"substation loaded at {100 * sub:.1f} % of its rating")
        if notes:
            return "alert", "; ".join(notes)
        return "normal", "every load served within limits with margin"


# ---------------------------------------------------------------------------- restore
def restore(system: System, feeder_id: str, line_id: int, start: int, duration_periods: int,
            switching: bool = True, microgrids: bool = True, bus: MessageBus | None = None,
            options: FaultOptions | None = None) -> FaultResult:
    """A fault on feeder line ``line_id`` from period ``start`` for ``duration_periods``
    periods: isolation, restoration by tie switches (``switching``), islands around
    grid-forming units (``microgrids``) and the energy left unserved (module docstring).

    Parameters
    ----------
    system : System
        The system; states of charge at ``start`` are its ``soc_init``.
    feeder_id : str
        The feeder.
    line_id : int
        The faulted line (in service before the fault).
    start, duration_periods : int
        First period of the outage and its length in periods (within the horizon).
    switching, microgrids : bool
        Whether the DSO may close tie switches and run islands.
    bus : MessageBus, optional
        Where the DSO's messages to the TSO go (logged); none are sent when omitted.
    options : FaultOptions, optional
        Prices, candidate limits and the thresholds of the grid states.

    Returns
    -------
    FaultResult

    Raises
    ------
    TsodsoError
        An unknown feeder or line, a line already out of service, a window outside the
        horizon (naming the field and the id), or an OPF that failed.
    """
    fid, lid, start, duration = _check(system, feeder_id, line_id, start, duration_periods)
    require_bool("switching", switching)
    require_bool("microgrids", microgrids)
    if bus is not None and not isinstance(bus, MessageBus):
        raise TsodsoError(f"bus must be a MessageBus, got {type(bus).__name__}")
    opts = options if options is not None else FaultOptions()
    if not isinstance(opts, FaultOptions):
        raise TsodsoError(f"options must be FaultOptions, got {type(opts).__name__}")
    n_prices = np.size(opts.price_per_mwh)
    if n_prices not in (1, duration):
        raise TsodsoError(f"FaultOptions.price_per_mwh: {n_prices} prices for an outage of "
                          f"{duration} period(s); give one price or one per period")
    stop = start + duration
    study = _Study(system, fid, lid, start, stop, opts)
    cands = study.candidates(switching)
    chosen, candidates = _choose(study, cands, microgrids)
    cand = cands[chosen]
    unserved_mwh, _, _, parts, results, unserved = study.evaluate(cand, microgrids)
    roots = {part.name: part.root for part in parts}
    dt, voll = study.dt, study.voll
    buses = _bus_table(study, cand, parts, results, unserved)
    sections = _sections(buses, roots, voll)
    groups = _groups(study, buses, unserved, voll)
    periods = pd.RangeIndex(start, stop, name="period")
    unserved_mw = pd.DataFrame(unserved, index=periods,
                               columns=pd.Index(study.bus_ids, name="bus_id"))
    actions = _actions(study, cand)
    restored = study.lines[["line_id", "from_bus", "to_bus"]].copy().reset_index(drop=True)
    restored["normal"] = study.lines.line_id.isin(list(study.normal)).to_numpy()
    restored["restored"] = study.lines.line_id.isin(list(cand.in_service)).to_numpy()

    # grid states
    abnormal = _abnormal(lid, cand, parts)
    state, reason = study.judge(results, parts, unserved_mwh, abnormal)
    normal_part = _Part("normal", frozenset(int(b) for b in study.bus_ids), study.normal,
                        study.root, False)
    normal = study.solve(normal_part)
    normal_u = float(np.clip(normal.shed_mw.to_numpy(), 0.0, None).sum() * dt)
    state_after, reason_after = study.judge({"normal": normal}, [normal_part], normal_u, "")

    messages = _messages(system, study, cand, start, duration, buses, state, reason,
                         state_after, reason_after, unserved_mwh, bus)
    return FaultResult(
        feeder_id=fid, line_id=lid, periods=range(start, stop), period_hours=dt,
        switching=switching, microgrids=microgrids, value_of_lost_load=voll, buses=buses,
        sections=sections, groups=groups, unserved_mw=unserved_mw, actions=actions,
        lines=restored, candidates=candidates, opf=results, roots=roots, normal=normal,
        state=state, state_after=state_after, messages=messages)


# --------------------------------------------------------------------------- reporting
def _choose(study: _Study, cands: list[_Candidate], microgrids: bool
            ) -> tuple[int, pd.DataFrame]:
    """The chosen candidate's position and the candidates table (module docstring):
    solved most promising first (lowest bound on unserved energy, fewest operations),
    stopping when no bound can beat the best found."""
    tol = study.options.tol_mwh
    bounds = [study.bound_unserved(c, microgrids) for c in cands]
    order = sorted(range(len(cands)), key=lambda i: (bounds[i], cands[i].n_operations, i))
    evaluated: dict[int, tuple[float, float, float]] = {}
    best = np.inf
    for i in order:
        if bounds[i] > best + tol:
            break
        u, cost, islanded, *_ = study.evaluate(cands[i], microgrids)
        evaluated[i] = (u, cost, islanded)
        best = min(best, u)
    # among those serving the most: the least load in islands (an island has no reserve
    # behind it), then the fewest operations, the lowest cost, the first enumerated
    chosen = min((i for i in evaluated if evaluated[i][0] <= best + tol),
                 key=lambda i: (round(evaluated[i][2] / tol), cands[i].n_operations,
                                evaluated[i][1], i))
    nan3 = (np.nan, np.nan, np.nan)
    table = pd.DataFrame(
        [(i, c.closed, c.opened, c.n_operations, bounds[i], i in evaluated,
          *evaluated.get(i, nan3), i == chosen)
         for i, c in enumerate(cands)], columns=list(CANDIDATE_COLUMNS))
    return chosen, table


def _bus_table(study: _Study, cand: _Candidate, parts: list[_Part],
               results: dict[str, DsoResult], unserved: np.ndarray) -> pd.DataFrame:
    """Section, means of supply, load, unserved energy and demand response per bus."""
    after_fault = study.labels(study.normal - {study.line_id})
    upstream = after_fault == after_fault[study.index.get_loc(study.root)]
    section = np.empty(len(study.bus_ids), dtype=object)
    means = np.empty(len(study.bus_ids), dtype=object)
    for part in parts:
        pos = study.index.get_indexer(sorted(part.buses))
        if part.island:
            section[pos], means[pos] = part.name, "microgrid"
        else:
            section[pos] = np.where(upstream[pos], "upstream", "tie")
            means[pos] = np.where(upstream[pos], "substation", "tie_switch")
    labels = study.labels(cand.in_service)
    for label in np.unique(labels[pd.isna(section)]):
        pos = np.flatnonzero(labels == label)
        section[pos], means[pos] = f"unserved@{int(study.bus_ids[pos].min())}", "none"
    buses = pd.DataFrame({"bus_id": study.bus_ids, "section": section, "means": means,
                          "load_mwh": study.bus_p.sum(axis=0) * study.dt,
                          "unserved_mwh": unserved.sum(axis=0) * study.dt})
    dr = _demand_response_mwh(study, results)
    buses["demand_response_mwh"] = buses.bus_id.map(dr).fillna(0.0).to_numpy()
    return buses


def _demand_response_mwh(study: _Study, results: dict[str, DsoResult]) -> pd.Series:
    """Voluntary reduction of demand response per bus over the outage, MWh."""
    d = study.system.ders.set_index("der_id")
    out = pd.Series(dtype=float)
    for res in results.values():
        ids = [c for c in res.der_p_mw.columns if d.at[c, "kind"] == "demand_response"]
        if ids:
            mwh = res.der_p_mw[ids].clip(lower=0.0).sum() * study.dt
            out = pd.concat([out, mwh.groupby(d.loc[ids, "bus_id"].to_numpy()).sum()])
    return out.groupby(level=0).sum() if len(out) else out


def _sections(buses: pd.DataFrame, roots: dict[str, int], voll: float) -> pd.DataFrame:
    g = buses.groupby("section", sort=False)
    out = pd.DataFrame({
        "section": list(g.groups),
        "means": g.means.first().to_numpy(),
        "n_buses": g.size().to_numpy(),
        "load_mwh": g.load_mwh.sum().to_numpy(),
        "unserved_mwh": g.unserved_mwh.sum().to_numpy(),
        "demand_response_mwh": g.demand_response_mwh.sum().to_numpy(),
    })
    root = {"substation": roots.get("substation", -1), "tie_switch": roots.get("substation", -1)}
    out["root_bus"] = [roots[s] if m == "microgrid" else root.get(m, -1)
                       for s, m in zip(out.section, out.means, strict=True)]
    out["served_mwh"] = out.load_mwh - out.unserved_mwh - out.demand_response_mwh
    out["unserved_cost_usd"] = out.unserved_mwh * voll
    rank = {"substation": 0, "tie_switch": 1, "microgrid": 2, "none": 3}
    out = out.sort_values(["means", "section"], key=lambda s: s.map(rank) if s.name == "means"
                          else s, kind="stable")
    return out[list(SECTION_COLUMNS)].reset_index(drop=True)


def _groups(study: _Study, buses: pd.DataFrame, unserved: np.ndarray, voll: float
            ) -> pd.DataFrame:
    """Unserved energy per section and customer group (load profile name)."""
    pos = study.load_pos
    bus_p = study.bus_p[:, pos]
    share = np.divide(study.load_p, bus_p, out=np.zeros_like(study.load_p), where=bus_p > 0)
    per_load = (unserved[:, pos] * share).sum(axis=0) * study.dt
    loads = pd.DataFrame({
        "section": buses.section.to_numpy()[pos],
        "customer_group": study.loads.profile.astype(str).replace("", "flat").to_numpy(),
        "load_mwh": study.load_p.sum(axis=0) * study.dt,
        "unserved_mwh": per_load})
    out = loads.groupby(["section", "customer_group"], sort=True).agg(
        n_loads=("load_mwh", "size"), load_mwh=("load_mwh", "sum"),
        unserved_mwh=("unserved_mwh", "sum")).reset_index()
    out["unserved_cost_usd"] = out.unserved_mwh * voll
    return out[list(GROUP_COLUMNS)]


def _actions(study: _Study, cand: _Candidate) -> pd.DataFrame:
    """Open the faulted line, open the lines that keep the network radial, close ties."""
    lines = study.lines.set_index("line_id")
    steps = [("open", study.line_id, "isolate the faulted line")]
    steps += [("open", lid, "keep the network radial") for lid in cand.opened]
    steps += [("close", lid, "tie switch: re-energise from the substation")
              for lid in cand.closed]
    return pd.DataFrame(
        [(k, a, lid, int(lines.at[lid, "from_bus"]), int(lines.at[lid, "to_bus"]), why)
         for k, (a, lid, why) in enumerate(steps)], columns=list(ACTION_COLUMNS))


def _abnormal(line_id: int, cand: _Candidate, parts: Sequence[_Part]) -> str:
    notes = [f"line {line_id} open (faulted)"]
    if cand.closed:
        notes.append("tie(s) " + ", ".join(map(str, cand.closed)) + " closed")
    if cand.opened:
        notes.append("line(s) " + ", ".join(map(str, cand.opened)) + " opened")
    islands = [p.name for p in parts if p.island]
    if islands:
        notes.append("islanded: " + ", ".join(islands))
    return "abnormal configuration: " + ", ".join(notes)


def _messages(system: System, study: _Study, cand: _Candidate, start: int, duration: int,
              buses: pd.DataFrame, state: State, reason: str, state_after: State,
              reason_after: str, unserved_mwh: float, bus: MessageBus | None
              ) -> list[Message]:
    """FaultNotice and GridStates of the DSO to the TSO, sent when ``bus`` is given."""
    fid, lid = study.fid, study.line_id
    dso, tso = Party.dso(system.dso_of()[fid]), Party.tso()
    line = study.lines.set_index("line_id").loc[lid]
    after = study.labels(study.normal - {lid})
    down = after != after[study.index.get_loc(study.root)]
    lost_mw = float(study.bus_p[:, down].sum(axis=1).max()) if down.any() else 0.0
    outage = range(start, start + duration)

    def env(periods: range, when: str, conversation: str | None) -> Envelope:
        return new_envelope(dso, tso, periods=periods, period_hours=study.dt, sim_time=when,
                            conversation=conversation)

    notice = FaultNotice(env(outage, "fault", None), element="feeder_line",
                         element_id=f"{fid}:{lid}",
                         description=f"line {lid} ({int(line.from_bus)}-{int(line.to_bus)}) "
                                     f"faulted at period {start} for {duration} period(s); "
                                     f"protection tripped the feeder breaker, the line was "
                                     f"isolated; {int(down.sum())} bus(es) de-energised "
                                     f"(peak load {lost_mw:.4g} MW)")
    sent: list[Message] = []
    conversation: str | None = None
    if bus is not None:
        sent.append(bus.send(notice))
        conversation = sent[0].envelope.conversation
    else:
        sent.append(notice)
    isolated: State = "emergency" if lost_mw > 0 else "alert"
    first = GridState(env(outage, "fault", conversation), feeder_id=fid, state=isolated,
                      reason=f"line {lid} faulted and isolated: {int(down.sum())} bus(es) "
                             f"de-energised")
    means = buses[buses.means != "substation"].groupby("means").size().to_dict()
    restored = GridState(env(outage, "restored", conversation), feeder_id=fid, state=state,
                         reason=f"{reason}; after {len(cand.closed)} tie(s) closed and "
                                f"{len(cand.opened)} line(s) opened; buses by means: "
                                f"{means or 'none'}; unserved {unserved_mwh:.4g} MWh")
    repaired = GridState(env(range(start + duration, start + duration + 1), "repaired",
                             conversation), feeder_id=fid, state=state_after,
                         reason=f"line {lid} repaired, normal configuration restored: "
                                f"{reason_after}")
    rest = [first, restored, repaired]
    sent += bus.send_all(rest) if bus is not None else rest
    return sent


__all__ = ["ACTION_COLUMNS", "CANDIDATE_COLUMNS", "GRID_FORMING_KINDS", "GROUP_COLUMNS",
           "SECTION_COLUMNS", "FaultOptions", "FaultResult", "restore"]
