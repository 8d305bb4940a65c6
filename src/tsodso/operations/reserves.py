"""Reserves through distribution: procurement from DER aggregations around a day-ahead
schedule, real-time activation by messages, states of charge, and what the feeders see.

The TSO holds up and down reserve from DER aggregations (issue #13 items 4 and 5) around a
*base schedule*: the final DER dispatch of a coordination scheme's day-ahead
:class:`~tsodso.coordination.outcome.Outcome` (MW, injection positive). Three variants
differ in who checks the feeders:

``direct``
    The TSO procures and activates from each DER's headroom; no DSO is asked.
``prequalified``
    Each DSO first sends per-DER limits (:class:`~tsodso.actors.PrequalificationLimits`,
    from :func:`prequalify_around`: per period the largest simultaneous activation of its
    DERs around the schedule that its feeder carries, counted robustly so that any part
    of it is carried too); the TSO procures and activates only within them (a DER's up
    reserve at most ``upper - schedule``, its down reserve at most ``schedule - lower``).
    :meth:`Dso.prequalify <tsodso.actors.dso.Dso.prequalify>` (every DER at its limit at
    once, not around the schedule) is not used: on ``default`` the schedule lies outside
    its envelope (storage soaking up PV at the same bus), and activations within it
    overloaded lines by up to 75 %.
``common``
    Procurement and activation are cleared jointly with the feeder networks: one linear
    programme over all feeders per period whose feeder limits (bus voltages, line and
    substation loading) are the AC power flow's, linearised by finite differences around
    the operating point (power-grid-model, one batch per feeder) and re-linearised at the
    activated point until the AC power flow finds no violation (successive linear
    programming). Procurement asks that all procured reserve of a direction be
    deliverable at once.

**Headroom** (:func:`resource_book`, MW per period and DER): PV and wind up to their
availability, DG up to ``p_max_mw`` times its profile and down to ``max(p_min_mw, 0)``,
demand response (a load reduction, as an injection) up to its availability (and, under
the rules' export ban, the load at its bus) and down to 0, storage between ``p_min_mw``
and ``p_max_mw``, EVs between ``p_min_mw`` and ``p_max_mw`` while plugged in (0
otherwise). Storage and EVs are bounded also by energy: with the rest of the schedule
unchanged, an activation in period ``t`` moves the energy of every later period, which
must stay within ``[soc_min, soc_max] x energy_mwh``; an EV must still leave with its
departure energy (``energy_need_mwh``, or what its schedule gives if less). Only DERs the
TSO market admits (:func:`~tsodso.rules.admission.tso_admission`: an aggregator bidding
into the TSO market, the minimum offer alone or pooled) offer reserves.

**Prices.** A DER's activation price is what its own offer curve
(:func:`~tsodso.tso.offers.der_offer_cost`: ``cost_per_mwh``, or its bid steps) charges
for the extra output: up, ``(C(s + r) - C(s)) / r`` $/MWh paid by the TSO; down, the cost
it avoids, ``(C(s) - C(s - r)) / r`` $/MWh, paid back to the TSO. Consumption costs
nothing under these offers, so EV and storage charging more (or less) is priced at 0, and
the energy a storage unit gives up is not valued (no data prices it). Holding headroom
around a fixed schedule costs the DER nothing in this model, so the capacity price is
``capacity_price`` ($/MW per hour held, default 0, a user's assumption when set).
Procurement minimises, per period and direction, capacity price plus signed activation
price (up: price; down: minus the avoided cost) over the reserve held, with any part of
the requirement left unmet reported (``requirement_shortfall``) and priced at the rules'
``reserve_shortfall_penalty``.

**Activation.** An :class:`Imbalance` (MW per period; positive: the system is short, e.g.
a generator outage, and up reserve is activated; negative: long, down reserve) is covered
period by period in real time. The TSO calls the procured resources in merit order
(``direct``, ``prequalified``) or as the joint programme picks them (``common``); every
call is an :class:`~tsodso.actors.Activation` to the DER's aggregator (one resource, one
period, ``delta_mw`` positive for more injection) answered by an
:class:`~tsodso.actors.Acknowledgement`. The aggregator (:class:`AggregatorDesk`) tracks
its resources' states of charge and refuses, with a reason, a call that would take a
storage unit below its minimum energy (or above its maximum) in any later period, or an
EV below its departure energy; the TSO then calls the next resource. What no resource
covers is reported (``uncovered_mw``).

**Result** (:class:`ReserveResult`): procured reserve, activated MW per DER and period,
every call with its answer, energies (MWh at the start of each period, row ``T`` the end),
the feeders' AC power flow of schedule + activation and its violations (same tolerances
as :class:`~tsodso.coordination.outcome.Outcome`: 1e-4 pu, 0.1 % of a rating), those of
the schedule alone, and the costs.

Units: MW, MWh, $, $/MWh, pu; periods are those of the system (0-based).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from tsodso.actors import (
    Acknowledgement,
    Activation,
    MessageBus,
    Offer,
    Party,
    new_envelope,
)
from tsodso.errors import TsodsoError
from tsodso.model.system import System
from tsodso.powerflow import FeederPowerFlow, PowerFlowResult, der_injections
from tsodso.powerflow.result import NotConvergedError
from tsodso.rules.admission import tso_admission
from tsodso.tso.offers import der_availability, der_offer_cost, feeder_load_by_bus

if TYPE_CHECKING:
    from tsodso.coordination.outcome import Outcome

Variant = Literal["direct", "prequalified", "common"]
VARIANTS: tuple[str, ...] = ("direct", "prequalified", "common")
Direction = Literal["up", "down"]
TSO = Party.tso()
#: Tolerances of a counted violation (as the coordination outcome counts them).
VOLTAGE_TOL_PU = 1e-4
THERMAL_TOL_PCT = 0.1
#: Energy tolerance of an aggregator's acceptance test, MWh (solver and rounding noise).
ENERGY_TOL_MWH = 1e-9
#: Smallest call, MW: needs below it are treated as covered.
MIN_CALL_MW = 1e-6


# ------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ReserveRequirement:
    """Reserve the TSO procures from DER aggregations, MW per period (>= 0)."""

    up_mw: np.ndarray
    down_mw: np.ndarray

    def __post_init__(self) -> None:
        for name in ("up_mw", "down_mw"):
            v = np.asarray(getattr(self, name), dtype=float)
            if v.ndim != 1 or not np.isfinite(v).all() or (v < 0).any():
                raise TsodsoError(f"reserve requirement {name}: must be finite MW >= 0 per "
                                  "period")
            object.__setattr__(self, name, v)
        if len(self.up_mw) != len(self.down_mw):
            raise TsodsoError("reserve requirement: up_mw and down_mw must cover the same "
                              "periods")

    @classmethod
    def flat(cls, periods: int, up_mw: float, down_mw: float) -> ReserveRequirement:
        """The same MW up and down in every one of ``periods`` periods."""
        return cls(np.full(periods, float(up_mw)), np.full(periods, float(down_mw)))

    @classmethod
    def share_of_load(cls, system: System, up: float, down: float) -> ReserveRequirement:
        """A share (MW/MW) of each period's total load, transmission loads and feeder loads
        (the part of the system requirement the TSO procures from distribution)."""
        g = system.grid
        loads = g.loads[g.loads.in_service]
        total = (system.profiles.multipliers(loads.profile) * loads.p_mw.to_numpy()).sum(1)
        total = total + feeder_load_by_bus(system).to_numpy().sum(1)
        return cls(up * total, down * total)


@dataclass(frozen=True)
class Imbalance:
    """A real-time event: the system is short by ``mw`` (MW per period; negative: long).

    A generator outage of ``X`` MW in periods ``P`` is ``Imbalance.in_periods(T, P, X)``."""

    mw: np.ndarray
    description: str = "imbalance"

    def __post_init__(self) -> None:
        v = np.asarray(self.mw, dtype=float)
        if v.ndim != 1 or not np.isfinite(v).all():
            raise TsodsoError("imbalance: mw must be finite MW per period")
        object.__setattr__(self, "mw", v)

    @classmethod
    def in_periods(cls, periods: int, which: Sequence[int], mw: float,
                   description: str = "") -> Imbalance:
        """``mw`` MW short (negative: long) in the periods ``which``, 0 elsewhere."""
        v = np.zeros(periods)
        v[list(which)] = float(mw)
        return cls(v, description or f"{abs(mw):g} MW {'short' if mw > 0 else 'long'} in "
                                     f"periods {list(which)}")

    def __add__(self, other: Imbalance) -> Imbalance:
        return Imbalance(self.mw + other.mw, f"{self.description}; {other.description}")


# ------------------------------------------------------------ the resources
@dataclass
class ResourceBook:
    """The DERs that may give reserve, with what their aggregators know of them.

    Arrays are ``(T, N)`` per period and DER (MW, injection positive) or ``(T + 1, N)``
    per period boundary (MWh: row ``t`` is the energy at the start of period ``t``); NaN
    energy for DERs that hold none.

    Attributes
    ----------
    ids, kind, aggregator : numpy.ndarray of str
        DER id, kind (``storage`` and ``ev`` hold energy) and aggregator id.
    schedule : numpy.ndarray
        Base schedule, MW.
    p_lo, p_hi : numpy.ndarray
        Lowest and highest output the DER can give in each period, MW.
    energy : numpy.ndarray
        Energy along the schedule, MWh.
    e_floor, e_ceil : numpy.ndarray
        Energy the DER must keep between, MWh (``-inf``/``inf`` where nothing binds; an
        EV's floor at its departure is its departure energy).
    eta_charge, eta_discharge : numpy.ndarray
        Efficiencies (N): charging stores ``eta_charge`` of what is drawn, discharging
        takes ``1 / eta_discharge`` of what is injected.
    departure : numpy.ndarray of int
        Period an EV leaves (exclusive; ``T`` when it stays), -1 for other DERs.
    dt : float
        Period length, h.
    """

    ids: np.ndarray
    kind: np.ndarray
    aggregator: np.ndarray
    schedule: np.ndarray
    p_lo: np.ndarray
    p_hi: np.ndarray
    energy: np.ndarray
    e_floor: np.ndarray
    e_ceil: np.ndarray
    eta_charge: np.ndarray
    eta_discharge: np.ndarray
    departure: np.ndarray
    dt: float

    @property
    def T(self) -> int:  # noqa: N802
        """Periods."""
        return int(self.schedule.shape[0])

    def index(self, der_id: str) -> int:
        """Column of ``der_id``."""
        where = np.flatnonzero(self.ids == der_id)
        if not len(where):
            raise TsodsoError(f"reserves: unknown resource {der_id!r}")
        return int(where[0])

    def subset(self, mask: np.ndarray) -> ResourceBook:
        """The resources where ``mask`` is true."""
        return ResourceBook(
            self.ids[mask], self.kind[mask], self.aggregator[mask], self.schedule[:, mask],
            self.p_lo[:, mask], self.p_hi[:, mask], self.energy[:, mask],
            self.e_floor[:, mask], self.e_ceil[:, mask], self.eta_charge[mask],
            self.eta_discharge[mask], self.departure[mask], self.dt)

    def stored(self, p: np.ndarray, j: np.ndarray | int | slice = slice(None)) -> np.ndarray:
        """Energy stored per hour at output ``p`` (MW; columns ``j``): ``-p eta_charge``
        when charging, ``-p / eta_discharge`` when discharging, MWh/h."""
        eta_c, eta_d = self.eta_charge[j], self.eta_discharge[j]
        return np.where(p < 0, -p * eta_c, -p / eta_d)

    def output_for(self, stored: np.ndarray, j: np.ndarray | int | slice = slice(None)
                   ) -> np.ndarray:
        """Inverse of :meth:`stored`: the output (MW) that stores ``stored`` MWh/h."""
        eta_c, eta_d = self.eta_charge[j], self.eta_discharge[j]
        return np.where(stored > 0, -stored / eta_c, -stored * eta_d)

    def headroom(self) -> tuple[np.ndarray, np.ndarray]:
        """Up and down reserve each DER can give in each period alone, with the rest of the
        schedule unchanged, MW ``(T, N)`` (>= 0): power range, and for storage and EVs the
        energy every later period must keep."""
        up = np.maximum(self.p_hi - self.schedule, 0.0)
        down = np.maximum(self.schedule - self.p_lo, 0.0)
        holds = np.isfinite(self.energy[0])
        if holds.any():
            j = np.flatnonzero(holds)
            e = self.energy[:, j]
            # room below and above along every later boundary, MWh
            below = np.minimum.accumulate((e - self.e_floor[:, j])[::-1], axis=0)[::-1][1:]
            above = np.minimum.accumulate((self.e_ceil[:, j] - e)[::-1], axis=0)[::-1][1:]
            s = self.schedule[:, j]
            base = self.stored(s, j)
            p_up = self.output_for(base - np.maximum(below, 0.0) / self.dt, j)
            p_dn = self.output_for(base + np.maximum(above, 0.0) / self.dt, j)
            up[:, j] = np.minimum(up[:, j], np.maximum(p_up - s, 0.0))
            down[:, j] = np.minimum(down[:, j], np.maximum(s - p_dn, 0.0))
        return up, down


def resource_book(system: System, schedule: pd.DataFrame,
                  energy0: dict[str, float] | None = None) -> ResourceBook:
    """The DERs of ``system`` that the TSO market admits
    (:func:`~tsodso.rules.admission.tso_admission`), around ``schedule`` (periods x
    der_id, MW, injection positive; every admitted DER must be a column).

    ``energy0`` is the storage and EV energy at the start (MWh per der_id; default:
    ``soc_init x energy_mwh``). See the module docstring for the power and energy range of
    each kind."""
    d = system.ders.reset_index(drop=True)
    T, dt = system.n_periods, float(system.profiles.period_hours)
    admitted = (tso_admission(system) == "").to_numpy()
    d = d[admitted].reset_index(drop=True)
    ids = d.der_id.astype(str).to_numpy()
    missing = [i for i in ids if i not in schedule.columns]
    if missing:
        raise TsodsoError(f"reserves: the schedule misses DER {missing[0]!r}")
    s = schedule[ids].to_numpy(float)[:T]
    if len(s) != T:
        raise TsodsoError(f"reserves: the schedule has {len(s)} periods, the system {T}")
    avail = pd.DataFrame(der_availability(system), columns=system.ders.der_id.astype(str)
                         )[ids].to_numpy()
    kind = d.kind.astype(str).to_numpy()
    p_max, p_min = d.p_max_mw.to_numpy(float), d.p_min_mw.to_numpy(float)
    lo = np.zeros((T, len(d)))
    hi = np.zeros((T, len(d)))
    gen = np.isin(kind, ["pv", "wind", "dg"])
    hi[:, gen] = avail[:, gen]
    lo[:, gen] = np.maximum(p_min[gen], 0.0)
    dr = kind == "demand_response"
    hi[:, dr] = avail[:, dr]
    if system.rules.dr_export_ban and dr.any():
        load = feeder_load_by_bus(system)
        for j in np.flatnonzero(dr):
            at = load.get((d.feeder_id[j], d.bus_id[j]))
            hi[:, j] = np.minimum(hi[:, j], 0.0 if at is None else at.to_numpy()[:T])
    st = kind == "storage"
    hi[:, st], lo[:, st] = p_max[st], p_min[st]
    ev = kind == "ev"
    t = np.arange(T)[:, None]
    departure = np.where(d.departure_period.to_numpy(int) < 0, T,
                         d.departure_period.to_numpy(int))
    plugged = (t >= d.arrival_period.to_numpy(int)) & (t < departure)
    hi[:, ev] = np.where(plugged[:, ev], p_max[ev], 0.0)
    lo[:, ev] = np.where(plugged[:, ev], p_min[ev], 0.0)
    # never narrower than the schedule itself (the base is what was dispatched)
    lo, hi = np.minimum(lo, s), np.maximum(hi, s)
    holds = st | ev
    cap = d.energy_mwh.to_numpy(float)
    e0 = d.soc_init.to_numpy(float) * cap
    if energy0 is not None:
        e0 = np.array([energy0.get(i, v) for i, v in zip(ids, e0, strict=True)])
    eta_c, eta_d = d.eta_charge.to_numpy(float), d.eta_discharge.to_numpy(float)
    book = ResourceBook(ids, kind, d.aggregator_id.fillna("").astype(str).to_numpy(), s,
                        lo, hi, np.full((T + 1, len(d)), np.nan),
                        np.full((T + 1, len(d)), -np.inf), np.full((T + 1, len(d)), np.inf),
                        eta_c, eta_d, np.where(ev, departure, -1), dt)
    if holds.any():
        j = np.flatnonzero(holds)
        stored = book.stored(s[:, j], j) * dt
        book.energy[:, j] = e0[j] + np.vstack([np.zeros(len(j)), np.cumsum(stored, axis=0)])
        book.e_floor[:, j] = d.soc_min.to_numpy(float)[j] * cap[j]
        book.e_ceil[:, j] = d.soc_max.to_numpy(float)[j] * cap[j]
        need = d.energy_need_mwh.to_numpy(float)
        for k in np.flatnonzero(ev):
            dep = departure[k]
            keep = min(need[k], book.energy[dep, k])  # what the schedule gives, at most
            book.e_floor[dep, k] = max(book.e_floor[dep, k], keep)
            book.e_floor[dep + 1:, k] = -np.inf  # gone: nothing binds after departure
            book.e_ceil[dep + 1:, k] = np.inf
    return book


def activation_prices(system: System, book: ResourceBook, up_mw: np.ndarray,
                      down_mw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Activation prices ($/MWh, ``(T, N)``) of up reserve (paid by the TSO) and down
    reserve (the cost the DER avoids, paid back to the TSO) for reserves of ``up_mw`` and
    ``down_mw`` (MW): the average of the DER's offer curve over the reserve (see the module
    docstring); at zero reserve, the marginal price of a small step."""
    cols = list(book.ids)
    s = pd.DataFrame(book.schedule, columns=cols)
    eps = 1e-3
    r_up = np.where(up_mw > eps, up_mw, eps)
    r_dn = np.where(down_mw > eps, down_mw, eps)
    c0 = der_offer_cost(system, s)
    c_up = der_offer_cost(system, s + r_up)
    c_dn = der_offer_cost(system, s - r_dn)
    return (c_up - c0) / r_up, (c0 - c_dn) / r_dn


# --------------------------------------------------------------- aggregators
class AggregatorDesk:
    """An aggregator's real-time desk: it receives activations for its resources, checks
    each against what it can deliver, answers with an acknowledgement and keeps the
    resulting output and states of charge.

    Parameters
    ----------
    name : str
        Aggregator id (its party is ``aggregator:<name>``).
    book : ResourceBook
        Its resources only.
    """

    def __init__(self, name: str, book: ResourceBook) -> None:
        if len(book.ids) and set(book.aggregator) != {name}:
            raise TsodsoError(f"aggregator {name}: its book holds other aggregators' DERs")
        self.name = name
        self.party = Party.aggregator(name or "(none)")
        self.book = book
        #: accepted change of output, MW (T, N)
        self.delta = np.zeros_like(book.schedule)

    def energy(self) -> np.ndarray:
        """Energy along schedule + accepted activations, MWh ``(T + 1, N)`` (NaN where a
        DER holds none)."""
        b = self.book
        p = b.schedule + self.delta
        moved = (b.stored(p) - b.stored(b.schedule)) * b.dt
        return b.energy + np.vstack([np.zeros(len(b.ids)), np.cumsum(moved, axis=0)])

    def check(self, j: int, t: int, delta_mw: float) -> str:
        """Why resource ``j`` cannot change its output in period ``t`` by ``delta_mw`` on
        top of what it already delivers ('' if it can)."""
        b = self.book
        p = b.schedule[t, j] + self.delta[t, j] + delta_mw
        tol = 1e-9
        if p > b.p_hi[t, j] + tol:
            return (f"{b.ids[j]} can inject at most {b.p_hi[t, j]:.6g} MW in period {t} "
                    f"({p:.6g} MW asked)")
        if p < b.p_lo[t, j] - tol:
            return (f"{b.ids[j]} can inject no less than {b.p_lo[t, j]:.6g} MW in period "
                    f"{t} ({p:.6g} MW asked)")
        if not np.isfinite(b.energy[0, j]):
            return ""
        now = b.stored(np.array(b.schedule[t, j] + self.delta[t, j]), j)
        moved = (b.stored(np.array(p), j) - now) * b.dt
        after = self.energy()[t + 1:, j] + moved
        low = np.flatnonzero(after < b.e_floor[t + 1:, j] - ENERGY_TOL_MWH)
        if len(low):
            k = t + 1 + int(low[0])
            if b.kind[j] == "ev" and k == b.departure[j]:
                return (f"EV {b.ids[j]} would leave at period {k} with "
                        f"{after[low[0]]:.6g} MWh, below its departure energy "
                        f"{b.e_floor[k, j]:.6g} MWh")
            return (f"{b.kind[j]} {b.ids[j]} would hold {after[low[0]]:.6g} MWh at the "
                    f"start of period {k}, below its minimum {b.e_floor[k, j]:.6g} MWh")
        high = np.flatnonzero(after > b.e_ceil[t + 1:, j] + ENERGY_TOL_MWH)
        if len(high):
            k = t + 1 + int(high[0])
            return (f"{b.kind[j]} {b.ids[j]} would hold {after[high[0]]:.6g} MWh at the "
                    f"start of period {k}, above its maximum {b.e_ceil[k, j]:.6g} MWh")
        return ""

    def answer(self, msg: Activation) -> Acknowledgement:
        """Accept the activation (every resource, every period it names) or refuse it
        with the first reason found; an accepted one changes the desk's output."""
        periods = list(msg.envelope.periods)
        cols = []
        for r in msg.resource_ids:
            where = np.flatnonzero(self.book.ids == r)
            if not len(where):
                return MessageBus.reply(msg, Acknowledgement, accepted=False,
                                        reason=f"{r} is not a resource of {self.name}")
            cols.append(int(where[0]))
        delta = np.asarray(msg.delta_mw)
        if periods[-1] >= self.book.T:
            return MessageBus.reply(msg, Acknowledgement, accepted=False,
                                    reason=f"period {periods[-1]} is beyond the schedule")
        saved = self.delta.copy()
        for a, t in enumerate(periods):
            for b_, j in enumerate(cols):
                why = self.check(j, t, float(delta[a, b_]))
                if why:
                    self.delta = saved
                    return MessageBus.reply(msg, Acknowledgement, accepted=False,
                                            reason=why)
                self.delta[t, j] += float(delta[a, b_])
        return MessageBus.reply(msg, Acknowledgement, accepted=True)


def desks_of(book: ResourceBook) -> dict[str, AggregatorDesk]:
    """One desk per aggregator, each holding only its resources."""
    return {a: AggregatorDesk(a, book.subset(book.aggregator == a))
            for a in dict.fromkeys(book.aggregator)}


@dataclass
class Caller:
    """The TSO's side of real-time activation: sends one activation per call through the
    bus, takes the aggregator's answer and records it."""

    book: ResourceBook
    desks: dict[str, AggregatorDesk]
    bus: MessageBus
    rows: list[dict] = field(default_factory=list)

    def call(self, t: int, j: int, delta_mw: float) -> tuple[bool, str]:
        """Ask the aggregator of resource ``j`` to change its output in period ``t`` by
        ``delta_mw`` (MW, positive: more injection); returns (accepted, reason)."""
        b = self.book
        desk = self.desks[b.aggregator[j]]
        n = len([r for r in self.rows if r["period"] == t]) + 1
        env = new_envelope(TSO, desk.party, periods=range(t, t + 1), period_hours=b.dt,
                           sim_time=f"real_time:{t}")
        sent = self.bus.send(Activation(env, activation_id=f"act-{t}-{n}",
                                        resource_ids=(str(b.ids[j]),),
                                        delta_mw=np.array([[delta_mw]])))
        received = [m for m in self.bus.receive(desk.party, Activation)]
        answers = [self.bus.send(desk.answer(m)) for m in received]  # type: ignore[arg-type]
        ack = next(a for a in self.bus.receive(TSO, Acknowledgement)
                   if a.envelope.reply_to == sent.envelope.id)
        for other in answers:
            if other.envelope.reply_to != sent.envelope.id:
                raise TsodsoError("reserves: an acknowledgement answered another message")
        accepted, reason = bool(ack.accepted), str(ack.reason)  # type: ignore[attr-defined]
        self.rows.append({"period": t, "der_id": str(b.ids[j]),
                          "aggregator_id": str(b.aggregator[j]), "kind": str(b.kind[j]),
                          "delta_mw": float(delta_mw), "accepted": accepted,
                          "reason": reason, "activation": sent.envelope.id,
                          "acknowledgement": ack.envelope.id})
        return accepted, reason

    def delivered(self) -> np.ndarray:
        """Accepted change of output of every resource, MW ``(T, N)``."""
        out = np.zeros_like(self.book.schedule)
        for a, desk in self.desks.items():
            out[:, self.book.aggregator == a] = desk.delta
        return out

    def calls(self) -> pd.DataFrame:
        """Every call in order: period, der_id, aggregator_id, kind, delta_mw, accepted,
        reason, activation and acknowledgement message ids."""
        return pd.DataFrame(self.rows, columns=["period", "der_id", "aggregator_id", "kind",
                                                "delta_mw", "accepted", "reason",
                                                "activation", "acknowledgement"])


def activate_in_merit_order(book: ResourceBook, up_mw: np.ndarray, down_mw: np.ndarray,
                            up_price: np.ndarray, down_price: np.ndarray,
                            imbalance: np.ndarray, bus: MessageBus,
                            desks: dict[str, AggregatorDesk] | None = None
                            ) -> tuple[Caller, np.ndarray]:
    """Cover ``imbalance`` (MW per period; positive: short, up reserve) with the procured
    reserve ``up_mw`` / ``down_mw`` (MW ``(T, N)``) in merit order: up by ascending
    ``up_price``, down by descending ``down_price`` (the avoided cost the TSO is paid back),
    ties by resource id. Each resource is called for what remains of the need, at most its
    procured reserve; a refused call is followed by the next resource.

    Returns the caller (its calls and the desks' outputs) and the uncovered MW per period
    (positive: short left, negative: long left)."""
    caller = Caller(book, desks if desks is not None else desks_of(book), bus)
    uncovered = np.zeros(book.T)
    for t in np.flatnonzero(np.abs(imbalance) > MIN_CALL_MW):
        need = float(imbalance[t])
        sign = 1.0 if need > 0 else -1.0
        held = up_mw[t] if need > 0 else down_mw[t]
        key = up_price[t] if need > 0 else -down_price[t]
        order = sorted(np.flatnonzero(held > MIN_CALL_MW),
                       key=lambda j, key=key: (key[j], book.ids[j]))
        left = abs(need)
        for j in order:
            if left <= MIN_CALL_MW:
                break
            amount = min(left, float(held[j]))
            accepted, _ = caller.call(int(t), int(j), sign * amount)
            if accepted:
                left -= amount
        uncovered[t] = sign * max(left, 0.0) if left > MIN_CALL_MW else 0.0
    return caller, uncovered


# ------------------------------------------------------------- feeder physics
@dataclass
class FeederState:
    """One feeder's AC operating point data: its power flow model, loads and the
    injections of the DERs outside the book (MW / MVAr, periods x bus_id)."""

    feeder_id: str
    pf: FeederPowerFlow
    load_p: pd.DataFrame
    load_q: pd.DataFrame
    columns: np.ndarray  # book columns of this feeder's resources
    bus_of: np.ndarray  # bus id of each of those resources


def _violations(feeder_id: str, flow: PowerFlowResult) -> pd.DataFrame:
    """The AC power flow's violations beyond the outcome's tolerances (1e-4 pu of a
    voltage limit, 0.1 % of a rating), periods that did not converge kept."""
    viol = flow.violations()
    excess = (viol.value - viol.limit).abs()
    keep = np.where(viol.element == "bus", excess > VOLTAGE_TOL_PU, excess > THERMAL_TOL_PCT)
    viol = viol[keep | (viol.kind == "not_converged").to_numpy()].copy()
    viol.insert(0, "feeder_id", feeder_id)
    return viol.reset_index(drop=True)


def feeders_power_flow(system: System, p_mw: pd.DataFrame, q_mvar: pd.DataFrame | None = None
                       ) -> tuple[dict[str, PowerFlowResult], pd.DataFrame]:
    """AC power flow of every feeder with its loads and the DERs' output ``p_mw`` (and
    ``q_mvar``; periods x der_id, injection positive; DERs not listed give 0): the results
    per feeder and their violations (columns ``feeder_id, period, element, element_id,
    kind, value, limit``)."""
    d = system.ders
    flows, frames = {}, []
    for f in system.feeder_ids:
        ids = [i for i in d.der_id[d.feeder_id == f] if i in p_mw.columns]
        pf = FeederPowerFlow(system.feeder(f))
        load_p, load_q = pf.feeder_loads(system.profiles)
        idx = load_p.index
        q = None if q_mvar is None else q_mvar.reindex(columns=ids, fill_value=0.0
                                                       ).set_axis(idx)
        inj_p, inj_q = der_injections(system, f, p_mw[ids].set_axis(idx), q)
        flows[f] = pf.run(load_p, load_q, inj_p, inj_q)
        frames.append(_violations(f, flows[f]))
    viol = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return flows, viol


class FeederLimits:
    """The feeders' limits as linear constraints on the resources' output, from the AC
    power flow linearised around an operating point (finite differences of ``eps_mw`` at
    each bus with resources, one power-grid-model batch per feeder and period); all
    feeders, or only ``feeder_ids`` (a DSO's)."""

    def __init__(self, system: System, book: ResourceBook, other_p: pd.DataFrame,
                 other_q: pd.DataFrame, eps_mw: float = 1e-3,
                 feeder_ids: Sequence[str] | None = None) -> None:
        self.system, self.book, self.eps = system, book, eps_mw
        d = system.ders.set_index("der_id")
        self.feeders: list[FeederState] = []
        for f in (system.feeder_ids if feeder_ids is None else feeder_ids):
            pf = FeederPowerFlow(system.feeder(f))
            load_p, load_q = pf.feeder_loads(system.profiles)
            # DERs outside the book at their output: part of the load here
            ids = [i for i in system.ders.der_id[system.ders.feeder_id == f]]
            inj_p, inj_q = der_injections(system, f, other_p[ids].set_axis(load_p.index),
                                          other_q.reindex(columns=ids, fill_value=0.0)
                                          .set_axis(load_p.index))
            load_p = load_p.sub(inj_p.reindex(columns=load_p.columns, fill_value=0.0))
            load_q = load_q.sub(inj_q.reindex(columns=load_q.columns, fill_value=0.0))
            cols = np.flatnonzero(np.isin(book.ids, ids))
            self.feeders.append(FeederState(f, pf, load_p, load_q, cols,
                                            d.loc[book.ids[cols], "bus_id"].to_numpy(int)))

    def _inj(self, fs: FeederState, p: np.ndarray, t: int) -> np.ndarray:
        """Resource injections per bus of the feeder in period ``t`` (bus_ids order)."""
        out = np.zeros(len(fs.pf.bus_ids))
        np.add.at(out, fs.pf.bus_ids.get_indexer(fs.bus_of), p[t, fs.columns])
        return out

    def rows(self, p: np.ndarray, t: int, margin_pu: float, margin_pct: float
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
        """The feeders' limits in period ``t`` linearised around the resources' output
        ``p`` (MW ``(T, N)``): ``value + A x <= limit`` for a change ``x`` (MW, one per
        resource) of their output, with rows for the voltages (``v <= v_max - margin_pu``
        and ``-v <= -(v_min + margin_pu)``, pu), rated lines and the substation (loading
        ``<= 100 - margin_pct``, %). Returns ``A``, ``value``, ``limit`` and whether the
        AC power flow at ``p`` is within the limits (to the outcome's tolerances)."""
        N = len(self.book.ids)
        A_parts, v_parts, b_parts, ok = [], [], [], True
        for fs in self.feeders:
            buses = fs.pf.bus_ids
            base = self._inj(fs, p, t)
            with_bus = np.unique(fs.bus_of)
            pos = buses.get_indexer(with_bus)
            k = len(pos)
            inj = np.repeat(base[None, :], k + 1, axis=0)
            inj[np.arange(1, k + 1), pos] += self.eps
            lp = np.repeat(fs.load_p.to_numpy()[[t]], k + 1, axis=0)
            lq = np.repeat(fs.load_q.to_numpy()[[t]], k + 1, axis=0)
            res = fs.pf.run(lp, lq, inj)
            if not res.converged.all():
                raise NotConvergedError(f"reserves: the AC power flow of feeder "
                                        f"{fs.feeder_id} in period {t} did not converge "
                                        "at the operating point")
            vm = res.vm_pu.to_numpy()
            ld = res.loading_pct.to_numpy()
            sub = res.substation_loading_pct.to_numpy()
            rated = np.isfinite(fs.pf.rating_mva.reindex(res.loading_pct.columns).to_numpy())
            vals = np.column_stack([vm, -vm, ld[:, rated], sub[:, None]])
            vmin = fs.pf.v_min_limit.reindex(res.vm_pu.columns).to_numpy()
            vmax = fs.pf.v_max_limit.reindex(res.vm_pu.columns).to_numpy()
            lim = np.concatenate([vmax - margin_pu, -(vmin + margin_pu),
                                  np.full(int(rated.sum()) + 1, 100.0 - margin_pct)])
            raw = np.concatenate([vmax + VOLTAGE_TOL_PU, -(vmin - VOLTAGE_TOL_PU),
                                  np.full(int(rated.sum()) + 1, 100.0 + THERMAL_TOL_PCT)])
            ok = ok and bool((vals[0] <= raw).all())
            sens = (vals[1:] - vals[0]) / self.eps  # (bus with resources, row)
            A = np.zeros((vals.shape[1], N))
            col_bus = np.searchsorted(with_bus, fs.bus_of)
            A[:, fs.columns] = sens[col_bus].T
            A_parts.append(A)
            v_parts.append(vals[0])
            b_parts.append(lim)
        if not A_parts:
            return np.zeros((0, N)), np.zeros(0), np.zeros(0), ok
        return np.vstack(A_parts), np.concatenate(v_parts), np.concatenate(b_parts), ok


def _joint_lp(cost: np.ndarray, lo: np.ndarray, hi: np.ndarray, sign: float, need: float,
              A: np.ndarray, b: np.ndarray, x0: np.ndarray, penalty: float
              ) -> tuple[np.ndarray, float]:
    """min cost.x + penalty * short + 100 penalty * sum(excess)  s.t.
    sum(x) + short = need, lo <= x <= hi, A (sign * (x - x0)) <= b + excess,
    short, excess >= 0 (HiGHS). The excess (a limit broken, in its unit) keeps the
    programme feasible where the resources held cannot meet a limit; it is never cheaper
    than a shortfall, and the AC power flow after it reports what it let through. Returns
    x and the shortfall."""
    N, R = len(cost), len(A)
    c = np.concatenate([cost, [penalty], np.full(R, 100.0 * penalty)])
    A_ub = np.hstack([sign * A, np.zeros((R, 1)), -np.eye(R)]) if R else None
    b_ub = b + sign * (A @ x0) if R else None
    A_eq = np.concatenate([np.ones(N), [1.0], np.zeros(R)])[None, :]
    bounds = [*zip(lo, hi, strict=True), (0.0, None), *[(0.0, None)] * R]
    res = linprog(c, A_ub=A_ub, b_ub=b_ub, A_eq=A_eq, b_eq=[need], bounds=bounds,
                  method="highs")
    if res.status != 0:
        raise TsodsoError(f"reserves: the joint activation programme failed ({res.message})")
    x = np.clip(res.x[:N], lo, hi)
    return x, float(res.x[N])


# ------------------------------------------------------------------ result
@dataclass
class ReserveResult:
    """Reserve procurement and activation of one variant (see the module docstring).

    Frames are indexed by period (``T`` rows; ``energy_mwh`` has ``T + 1``: the start of
    each period and the end) with one column per DER of the book unless stated."""

    variant: str
    event: str
    #: procured reserve, MW (periods x der_id), up and down
    procured_up_mw: pd.DataFrame
    procured_down_mw: pd.DataFrame
    #: reserve requirement not procured, MW per period (columns up, down)
    requirement_shortfall: pd.DataFrame
    #: accepted change of output, MW (positive: more injection)
    activated_mw: pd.DataFrame
    #: every call: period, der_id, aggregator_id, kind, delta_mw, accepted, reason and the
    #: ids of the activation and its acknowledgement
    calls: pd.DataFrame
    #: imbalance left uncovered, MW per period (positive: short)
    uncovered_mw: pd.Series
    #: storage and EV energy along schedule + activation, MWh
    energy_mwh: pd.DataFrame
    #: violations of the AC power flow of schedule + activation, and of the schedule alone
    violations: pd.DataFrame
    base_violations: pd.DataFrame
    #: $: capacity (capacity price x reserve held x hours), activation (paid for up less
    #: paid back for down), requirement shortfall at the rules' reserve penalty
    costs: dict[str, float]
    #: messages by kind (count, bytes)
    messages: pd.DataFrame
    wall_s: float
    #: length of one period, h
    period_hours: float = 1.0
    notes: list[str] = field(default_factory=list)

    @property
    def refusals(self) -> pd.DataFrame:
        """The calls refused, with their reasons."""
        c = self.calls
        return c[~c.accepted.astype(bool)] if len(c) else c

    @property
    def new_violations(self) -> pd.DataFrame:
        """Violations of schedule + activation that the schedule alone does not have
        (same feeder, period, element, id and kind)."""
        key = ["feeder_id", "period", "element", "element_id", "kind"]
        v, base = self.violations, self.base_violations
        if not len(v) or not len(base):
            return v
        seen = set(map(tuple, base[key].astype(str).to_numpy()))
        return v[[tuple(r) not in seen for r in v[key].astype(str).to_numpy()]]

    def summary(self) -> dict[str, float | int | str]:
        """Scalar figures: violations (all, caused by the activation, voltage, thermal),
        MWh activated up and down, calls and refusals, uncovered MWh, costs."""
        dt = self.period_hours
        a = self.activated_mw.to_numpy()
        v = self.violations
        return {"variant": self.variant, "violations": int(len(v)),
                "new_violations": int(len(self.new_violations)),
                "voltage_violations": int((v.element == "bus").sum()) if len(v) else 0,
                "thermal_violations": int(v.element.isin(["line", "substation"]).sum())
                if len(v) else 0,
                "activated_up_mwh": float(np.maximum(a, 0).sum() * dt),
                "activated_down_mwh": float(np.maximum(-a, 0).sum() * dt),
                "calls": int(len(self.calls)), "refusals": int(len(self.refusals)),
                "uncovered_mwh": float(np.abs(self.uncovered_mw).sum() * dt),
                **{f"cost_{k}": v for k, v in self.costs.items()}}


# ------------------------------------------------------------------ the run
def base_schedule(outcome: Outcome) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A scheme's day-ahead result as the reserves' base: final DER output (MW) and
    reactive power (MVAr), periods x der_id."""
    return outcome.der_dispatch, outcome.der_reactive


def procure(system: System, book: ResourceBook, requirement: ReserveRequirement,
            variant: str, bus: MessageBus, limits: FeederLimits | None = None,
            capacity_price: float = 0.0, base_p: pd.DataFrame | None = None,
            base_q: pd.DataFrame | None = None,
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Procure ``requirement`` from the book's resources under ``variant``: returns the up
    and down reserve held (MW ``(T, N)``), the requirement left unmet (``(T, 2)``: up,
    down) and notes. The aggregators' offers travel as :class:`~tsodso.actors.Offer`
    messages (one per aggregator, interface bus and direction; one step per resource);
    under ``prequalified`` the DSOs' limits as
    :class:`~tsodso.actors.PrequalificationLimits` (:func:`prequalify_around` on the base
    output ``base_p`` and reactive power ``base_q``, one message per feeder); under
    ``common`` the feeders' ``limits``
    (:func:`feeder_limits`) are constraints of the procurement."""
    from tsodso.coordination.protocol import Exchange

    if variant not in VARIANTS:
        raise TsodsoError(f"reserves: unknown variant {variant!r}; variants: "
                          f"{', '.join(VARIANTS)}")
    T = book.T
    if len(requirement.up_mw) != T:
        raise TsodsoError(f"reserves: the requirement covers {len(requirement.up_mw)} "
                          f"periods, the system {T}")
    head_up, head_dn = book.headroom()
    notes: list[str] = []
    ex = Exchange(system, f"reserves:{variant}", bus)
    if variant == "prequalified":
        if base_p is None:
            raise TsodsoError("reserves: the prequalified variant needs the base schedule")
        for f in system.feeder_ids:
            upper, lower = ex.prequalification(f, *prequalify_around(system, book, [f],
                                                                       base_p, base_q))
            cols = np.flatnonzero(np.isin(book.ids, list(upper.columns)))
            ids = list(book.ids[cols])
            up_lim = np.maximum(upper[ids].to_numpy()[:T] - book.schedule[:, cols], 0.0)
            dn_lim = np.maximum(book.schedule[:, cols] - lower[ids].to_numpy()[:T], 0.0)
            head_up[:, cols] = np.minimum(head_up[:, cols], up_lim)
            head_dn[:, cols] = np.minimum(head_dn[:, cols], dn_lim)
    p_up, p_dn = activation_prices(system, book, head_up, head_dn)
    head_up, head_dn, p_up, p_dn = _offers(system, book, head_up, head_dn, p_up, p_dn, bus)
    up = np.zeros_like(head_up)
    dn = np.zeros_like(head_dn)
    short = np.zeros((T, 2))
    if variant in ("direct", "prequalified"):
        # one requirement per period and direction over independent offers: filling the
        # cheapest first is the least-cost procurement (a fractional knapsack)
        for t in range(T):
            for k, (held, head, key) in enumerate(((up, head_up, capacity_price + p_up),
                                                   (dn, head_dn, capacity_price - p_dn))):
                left = float((requirement.up_mw, requirement.down_mw)[k][t])
                for j in sorted(range(len(book.ids)), key=lambda j, t=t, key=key:
                                (key[t, j], book.ids[j])):
                    if left <= MIN_CALL_MW:
                        break
                    take = min(left, float(head[t, j]))
                    held[t, j] = take
                    left -= take
                short[t, k] = max(left, 0.0) if left > MIN_CALL_MW else 0.0
    else:
        if limits is None:
            raise TsodsoError("reserves: the common variant needs the feeders' limits")
        penalty = system.rules.reserve_shortfall_penalty
        for t in range(T):
            for k, sign in enumerate((1.0, -1.0)):
                need = float((requirement.up_mw, requirement.down_mw)[k][t])
                if need <= MIN_CALL_MW:
                    continue
                head = head_up[t] if sign > 0 else head_dn[t]
                cost = capacity_price + (p_up[t] if sign > 0 else -p_dn[t])
                x, gap = _deliverable(limits, book, t, sign, need, head, cost, penalty)
                (up if sign > 0 else dn)[t] = x
                short[t, k] = gap if gap > MIN_CALL_MW else 0.0
    ex.close()
    return up, dn, short, notes


def _offers(system: System, book: ResourceBook, head_up: np.ndarray, head_dn: np.ndarray,
            p_up: np.ndarray, p_dn: np.ndarray, bus: MessageBus
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Aggregators -> TSO: reserve offers, one message per aggregator, interface bus and
    direction with one step per resource (headroom MW, activation price $/MWh); returns
    headroom and prices as the TSO received them."""
    T, dt = book.T, book.dt
    iface = system.feeders.set_index("feeder_id").interface_bus
    feeder = system.ders.set_index("der_id").feeder_id
    bus_of = np.array([int(iface[feeder[i]]) for i in book.ids], dtype=int)
    msgs = []
    for a in dict.fromkeys(book.aggregator):
        for b in sorted(set(bus_of[book.aggregator == a])):
            cols = np.flatnonzero((book.aggregator == a) & (bus_of == b))
            for direction, head, price in (("up", head_up, p_up), ("down", head_dn, p_dn)):
                env = new_envelope(Party.aggregator(a or "(none)"), TSO, periods=T,
                                   period_hours=dt, sim_time="day_ahead:reserves")
                msgs.append(Offer(env, offer_id=f"reserve:{a}:{b}:{direction}", bus_id=b,
                                  direction=direction, price_per_mwh=price[:, cols],
                                  quantity_mw=head[:, cols],
                                  resource_ids=tuple(book.ids[cols])))
    bus.send_all(msgs)
    got_up, got_dn = np.zeros_like(head_up), np.zeros_like(head_dn)
    pr_up, pr_dn = np.zeros_like(p_up), np.zeros_like(p_dn)
    where = {r: j for j, r in enumerate(book.ids)}
    for m in bus.receive(TSO, Offer):
        cols = [where[r] for r in m.resource_ids]  # type: ignore[attr-defined]
        q, p = np.array(m.quantity_mw), np.array(m.price_per_mwh)  # type: ignore[attr-defined]
        if m.direction == "up":  # type: ignore[attr-defined]
            got_up[:, cols], pr_up[:, cols] = q, p
        else:
            got_dn[:, cols], pr_dn[:, cols] = q, p
    return got_up, got_dn, pr_up, pr_dn


def feeder_limits(system: System, book: ResourceBook, base_p: pd.DataFrame,
                  base_q: pd.DataFrame | None, feeder_ids: Sequence[str] | None = None
                  ) -> FeederLimits:
    """The feeders' linearised limits (:class:`FeederLimits`) with every DER outside the
    book (price-takers, DERs the TSO market keeps out) at its base output ``base_p`` and
    every DER's reactive power at ``base_q`` (periods x der_id, MW / MVAr)."""
    other = base_p.copy()
    other[list(book.ids)] = 0.0
    q = base_q if base_q is not None else base_p * 0.0
    return FeederLimits(system, book, other, q, feeder_ids=feeder_ids)


def prequalify_around(system: System, book: ResourceBook, feeder_ids: Sequence[str],
                      base_p: pd.DataFrame, base_q: pd.DataFrame | None
                      ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A DSO's prequalification of the resources on its feeders around the schedule: per
    period, the largest simultaneous up activation of all of them (every resource at or
    above its schedule, within its headroom) that keeps the feeders within limits, and the
    same down; returns the upper and lower output limits (periods x der_id, MW), schedule
    plus and minus those activations.

    The feeder's limits are the AC power flow's, linearised at the schedule
    (:class:`FeederLimits`) and counted robustly: each limit takes only the resources
    that push it towards its bound, so any activation of one direction between the
    schedule and these limits, not only all of them at once, keeps within limits to first
    order (an activation that raises one voltage lowers the current in a line for the same
    power: the all-at-once point alone would not vouch for a part of it); the AC power
    flow of the full activation is checked, margins doubled until it passes. Q is held at
    the schedule's."""
    limits = feeder_limits(system, book, base_p, base_q, feeder_ids=feeder_ids)
    head_up, head_dn = book.headroom()
    ders = system.ders
    mine = np.isin(book.ids, ders.der_id[ders.feeder_id.isin(list(feeder_ids))])
    upper, lower = book.schedule.copy(), book.schedule.copy()
    for t in range(book.T):
        for sign, head in ((1.0, head_up[t]), (-1.0, head_dn[t])):
            hi = np.where(mine, head, 0.0)
            total = float(hi.sum())
            if total <= MIN_CALL_MW:
                continue
            # max sum(x) = min shortfall of a need as large as all the headroom
            x, _ = _joint_activation(limits, book.schedule, t, sign, total,
                                     np.zeros_like(hi), hi, np.zeros_like(hi), 1.0,
                                     robust=True)
            (upper if sign > 0 else lower)[t] += sign * x
    cols = list(book.ids[mine])
    return (pd.DataFrame(upper[:, mine], columns=cols),
            pd.DataFrame(lower[:, mine], columns=cols))


def _deliverable(limits: FeederLimits, book: ResourceBook, t: int, sign: float,
                 need: float, head: np.ndarray, cost: np.ndarray, penalty: float,
                 rounds: int = 4) -> tuple[np.ndarray, float]:
    """Least-cost reserve ``x`` (MW per resource) in period ``t`` covering ``need`` whose
    simultaneous activation (``sign`` +1 up, -1 down) keeps the feeders within limits,
    re-linearised at the activated point until its AC power flow is within them."""
    return _joint_activation(limits, book.schedule, t, sign, need, np.zeros_like(head),
                             head, cost, penalty, rounds=rounds)


def _joint_activation(limits: FeederLimits, p0: np.ndarray, t: int, sign: float,
                      need: float, lo: np.ndarray, hi: np.ndarray, cost: np.ndarray,
                      penalty: float, start: np.ndarray | None = None, rounds: int = 4,
                      robust: bool = False) -> tuple[np.ndarray, float]:
    """Least-cost change ``x`` (MW per resource, in direction ``sign``, ``lo <= x <= hi``)
    of the output ``p0`` (MW ``(T, N)``) in period ``t`` covering ``need`` MW within the
    feeders' limits: linearised at ``p0 + sign * start`` (default ``p0``), then at each
    new point until the AC power flow there is within limits (margins of 5e-4 pu and
    0.5 %, doubled after each miss). A limit ``p0`` already breaks is held where ``p0``
    has it (never made worse). Returns ``x`` and the part of ``need`` left.

    ``robust``: every activation between ``p0`` and ``p0 + sign * x`` (any resource at
    any share of its ``x``) keeps the limits, to first order: each row counts only the
    resources that push it up (``max(A, 0)``, the box's worst case), linearised at ``p0``
    with margins doubled until the AC power flow at the full activation is within
    limits."""
    margin_pu, margin_pct = 5e-4, 0.5
    if robust:
        x = np.zeros(len(cost))
        gap = need
        for _ in range(rounds):
            A, value, limit, _ = limits.rows(p0, t, margin_pu, margin_pct)
            A = np.maximum(sign * A, 0.0) * sign  # worst case over the box
            x, gap = _joint_lp(cost, lo, hi, sign, need, A,
                               np.maximum(limit, value) - value, np.zeros(len(cost)),
                               penalty)
            p = p0.copy()
            p[t] += sign * x
            if limits.rows(p, t, margin_pu, margin_pct)[3]:
                return x, gap
            margin_pu, margin_pct = 2 * margin_pu, 2 * margin_pct
        return np.zeros(len(cost)), need  # nothing it can vouch for
    _, at_origin, _, _ = limits.rows(p0, t, margin_pu, margin_pct)
    x0 = np.zeros(len(cost)) if start is None else np.asarray(start, dtype=float)
    p = p0.copy()
    p[t] += sign * x0
    A, value, limit, _ = limits.rows(p, t, margin_pu, margin_pct)
    x, gap = x0, need
    for _ in range(rounds):
        cap = np.maximum(limit, at_origin)
        x, gap = _joint_lp(cost, lo, hi, sign, need, A, cap - value, x0, penalty)
        margin_pu, margin_pct = 2 * margin_pu, 2 * margin_pct
        for _ in range(8):  # a step the AC power flow cannot solve is halved
            p = p0.copy()
            p[t] += sign * x
            try:
                A, value, limit, ok = limits.rows(p, t, margin_pu, margin_pct)
                break
            except NotConvergedError:
                x = 0.5 * (x + x0)
                gap = need - float(x.sum())
        else:
            raise NotConvergedError(f"reserves: no activation near period {t}'s operating "
                                    "point has an AC power flow that converges")
        if ok:
            return x, gap
        x0 = x  # the next programme is linearised at this point
    return x, gap


def activate_jointly(book: ResourceBook, limits: FeederLimits, up_mw: np.ndarray,
                     down_mw: np.ndarray, up_price: np.ndarray, down_price: np.ndarray,
                     imbalance: np.ndarray, bus: MessageBus, penalty: float
                     ) -> tuple[Caller, np.ndarray]:
    """Cover ``imbalance`` as the joint programme clears it with the feeders' limits as
    constraints (``common``): each period, the least-cost activation of the procured
    reserve within the linearised limits (:class:`FeederLimits`); the resources it picks
    are called. A refused resource keeps what it accepted before and the programme is
    cleared again for the whole need (the next resources are called, and calls already
    accepted may be lowered by a further activation of opposite sign where the new mix
    needs it to keep the feeders within limits). Returns the caller and the uncovered MW
    per period (positive: short)."""
    caller = Caller(book, desks_of(book), bus)
    uncovered = np.zeros(book.T)
    for t in np.flatnonzero(np.abs(imbalance) > MIN_CALL_MW):
        t = int(t)
        sign = 1.0 if imbalance[t] > 0 else -1.0
        need = abs(float(imbalance[t]))
        hi = (up_mw[t] if sign > 0 else down_mw[t]).copy()
        cost = up_price[t] if sign > 0 else -down_price[t]
        origin = book.schedule + caller.delivered()  # this period untouched so far
        held = np.zeros(len(hi))  # accepted in this period, MW in the direction
        fixed = np.zeros(len(hi), dtype=bool)  # refused: held where they are
        x = held
        for _ in range(len(hi) + 1):
            lo = np.where(fixed, held, 0.0)
            top = np.where(fixed, held, hi)
            x, _ = _joint_activation(limits, origin, t, sign, need, lo, top, cost, penalty,
                                     start=held)
            change = x - held
            moves = np.flatnonzero(np.abs(change) > MIN_CALL_MW)
            refused = False
            # releases first (they make room), then the new calls in merit order
            for j in sorted(moves, key=lambda j: (change[j] > 0, cost[j], book.ids[j])):
                accepted, _ = caller.call(t, int(j), sign * float(change[j]))
                if accepted:
                    held[j] = x[j]
                else:
                    fixed[j] = True
                    refused = True
            if not refused:
                break
        left = need - float(held.sum())
        uncovered[t] = sign * left if left > MIN_CALL_MW else 0.0
    return caller, uncovered


def run_reserves(system: System, base: Outcome | tuple[pd.DataFrame, pd.DataFrame],
                 requirement: ReserveRequirement, event: Imbalance, variant: str,
                 bus: MessageBus | None = None, capacity_price: float = 0.0
                 ) -> ReserveResult:
    """Procure reserves around ``base`` (a scheme's day-ahead outcome, or its DER output
    and reactive power, periods x der_id) under ``variant``, cover ``event`` in real time
    and check the feeders by AC power flow (see the module docstring).

    ``bus`` carries the messages (a new in-memory one if omitted); ``capacity_price`` is
    the price of reserve held, $/MW per hour."""
    started = time.perf_counter()
    if variant not in VARIANTS:
        raise TsodsoError(f"reserves: unknown variant {variant!r}; variants: "
                          f"{', '.join(VARIANTS)}")
    base_p, base_q = base if isinstance(base, tuple) else base_schedule(base)
    T, dt = system.n_periods, float(system.profiles.period_hours)
    if len(event.mw) != T:
        raise TsodsoError(f"reserves: the event covers {len(event.mw)} periods, the system "
                          f"{T}")
    base_p = base_p.reindex(columns=system.ders.der_id, fill_value=0.0).iloc[:T]
    base_p = base_p.set_axis(pd.RangeIndex(T, name="period"))
    base_q = base_q.reindex(columns=system.ders.der_id, fill_value=0.0).iloc[:T].set_axis(
        base_p.index)
    owns = bus is None
    bus = bus if bus is not None else MessageBus(scheme=f"reserves:{variant}")
    bus.scheme = f"reserves:{variant}"
    book = resource_book(system, base_p)
    limits = feeder_limits(system, book, base_p, base_q) if variant == "common" else None
    up, dn, short, notes = procure(system, book, requirement, variant, bus, limits=limits,
                                   capacity_price=capacity_price, base_p=base_p,
                                   base_q=base_q)
    p_up, p_dn = activation_prices(system, book, up, dn)
    if variant == "common":
        assert limits is not None
        caller, uncovered = activate_jointly(book, limits, up, dn, p_up, p_dn, event.mw, bus,
                                             system.rules.value_of_lost_load)
    else:
        caller, uncovered = activate_in_merit_order(book, up, dn, p_up, p_dn, event.mw, bus)
    delta = caller.delivered()
    idx = base_p.index
    cols = pd.Index(book.ids, name="der_id")
    activated = pd.DataFrame(delta, index=idx, columns=cols)
    after = base_p.copy()
    after[list(book.ids)] = base_p[list(book.ids)].to_numpy() + delta
    _, base_viol = feeders_power_flow(system, base_p, base_q)
    _, viol = feeders_power_flow(system, after, base_q)
    energy = np.full((T + 1, len(book.ids)), np.nan)
    for a, desk in caller.desks.items():
        energy[:, book.aggregator == a] = desk.energy()
    holds = np.isfinite(energy[0])
    # what the TSO pays for up (at the activation price) less what it is paid back for down
    paid = np.where(delta > 0, delta * p_up, delta * p_dn)
    costs = {"capacity": float(capacity_price * (up + dn).sum() * dt),
             "activation": float(paid.sum() * dt),
             "requirement_shortfall": float(system.rules.reserve_shortfall_penalty
                                            * short.sum() * dt)}
    messages = bus.summary()
    result = ReserveResult(
        variant=variant, event=event.description,
        procured_up_mw=pd.DataFrame(up, index=idx, columns=cols),
        procured_down_mw=pd.DataFrame(dn, index=idx, columns=cols),
        requirement_shortfall=pd.DataFrame(short, index=idx, columns=["up", "down"]),
        activated_mw=activated, calls=caller.calls(),
        uncovered_mw=pd.Series(uncovered, index=idx, name="uncovered_mw"),
        energy_mwh=pd.DataFrame(energy[:, holds], index=pd.RangeIndex(T + 1, name="period"),
                                columns=cols[holds]),
        violations=viol, base_violations=base_viol, costs=costs, messages=messages,
        wall_s=time.perf_counter() - started, period_hours=dt, notes=notes)
    if owns:
        bus.close()
    return result


def compare_variants(system: System, base: Outcome | tuple[pd.DataFrame, pd.DataFrame],
                     requirement: ReserveRequirement, event: Imbalance,
                     variants: Sequence[str] = VARIANTS, **options: float
                     ) -> dict[str, ReserveResult]:
    """:func:`run_reserves` for each variant on the same base, requirement and event."""
    return {v: run_reserves(system, base, requirement, event, v, **options)  # type: ignore[arg-type]
            for v in variants}


__all__ = ["VARIANTS", "AggregatorDesk", "Caller", "FeederLimits", "Imbalance",
           "ReserveRequirement", "ReserveResult", "ResourceBook", "activate_in_merit_order",
           "activate_jointly", "activation_prices", "base_schedule", "compare_variants",
           "desks_of", "feeder_limits", "feeders_power_flow", "prequalify_around", "procure",
           "resource_book", "run_reserves"]
