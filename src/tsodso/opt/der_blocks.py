"""Builders of the DER blocks shared by the TSO market and the DSO OPF.

Both markets model the same resources with the same algebra: storage, EV charging, energy
offers with an energy budget and priced load shedding. Each builder here adds one resource
block to a :class:`~tsodso.opt.Model` (or a :class:`~tsodso.opt.namespace.Namespace` of one)
under the block names the caller passes in, and returns the handles.

Conventions, for every builder:

* ``T`` periods of ``dt`` hours each; ``K`` units (storage units, EVs, offers, buses).
* Variables are laid out **period-major**: the variable of unit ``k`` in period ``t`` is
  ``t * K + k`` within its block (``T * K`` variables), except for one-per-unit blocks
  (the EV shortfall).
* Power is in MW (a period's mean), energy in MWh, prices and costs in $/MWh. A power
  variable ``x`` held for a period costs ``price * dt * x``; the model minimises cost.
* Charging power, discharging power, offered power and shed load are all ``>= 0``; their
  direction (into or out of the grid) is the caller's balance rows' business: storage
  discharge and offers inject, storage and EV charging withdraw, shedding relieves load.
* A block over zero units is still created (size 0), so that its handle exists; its rows
  are not (the handle is ``None``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from tsodso.opt.blocks import ConBlock, VarBlock
from tsodso.opt.model import Model
from tsodso.opt.namespace import Namespace

__all__ = [
    "EvBlock",
    "EvNames",
    "OfferBlock",
    "OfferNames",
    "StorageBlock",
    "StorageNames",
    "add_energy_offers",
    "add_ev_charging",
    "add_shedding",
    "add_storage",
    "ev_plugged",
]

ModelLike = Model | Namespace
"""Where blocks are added: a model, or a namespace that prefixes the block names."""


# ------------------------------------------------------------------------- names
@dataclass(frozen=True)
class StorageNames:
    """Block names of a storage block (e.g. the TSO's ``st_charge``, the DSO's ``st_ch``)."""

    charge: str
    discharge: str
    energy: str
    balance: str


@dataclass(frozen=True)
class EvNames:
    """Block names of an EV charging block."""

    charge: str
    energy: str
    shortfall: str
    balance: str
    need: str
    discharge: str = "ev_discharge"


@dataclass(frozen=True)
class OfferNames:
    """Block names of energy offers: their power variables and their energy-budget rows."""

    power: str
    budget: str


# ------------------------------------------------------------------------ handles
@dataclass(frozen=True)
class StorageBlock:
    """Handles of a storage block (see :func:`add_storage`)."""

    charge: VarBlock
    """(T*K) charging power, MW, ``>= 0``."""
    discharge: VarBlock
    """(T*K) discharging power, MW, ``>= 0``."""
    energy: VarBlock
    """(T*K) stored energy at the end of each period, MWh."""
    balance: ConBlock | None
    """(T*K) energy balance rows; ``None`` without units."""


@dataclass(frozen=True)
class EvBlock:
    """Handles of an EV charging block (see :func:`add_ev_charging`)."""

    charge: VarBlock
    """(T*V) charging power drawn from the grid, MW, ``>= 0``."""
    energy: VarBlock
    """(T*V) energy in the battery at the end of each period, MWh."""
    shortfall: VarBlock
    """(V) energy missing at departure, MWh, ``>= 0`` (one per EV, not per period)."""
    balance: ConBlock | None
    """(T*V) energy balance rows; ``None`` without EVs."""
    need: ConBlock | None
    """(V) rows ``energy at departure + shortfall >= need``; ``None`` without EVs."""
    discharge: VarBlock | None = None
    """(T*V) power fed back to the grid (vehicle-to-grid), MW, ``>= 0``; ``None`` when no
    EV of the block may discharge."""


@dataclass(frozen=True)
class OfferBlock:
    """Handles of energy offers (see :func:`add_energy_offers`)."""

    power: VarBlock
    """(T*K) offered power dispatched, MW."""
    budget: ConBlock | None
    """One row per offer with an energy budget; ``None`` when no offer has one."""


# ----------------------------------------------------------------------- helpers
def _unit_count(values: npt.ArrayLike, what: str) -> int:
    """Number of units ``K`` given by a per-unit array."""
    shape = np.shape(values)
    if len(shape) != 1:
        raise ValueError(f"{what}: expected one value per unit (a 1-D array), got shape {shape}")
    return int(shape[0])


def _per_unit(values: npt.ArrayLike, k: int, what: str) -> np.ndarray:
    """``values`` as a float array of length ``k`` (one per unit)."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.shape != (k,):
        raise ValueError(f"{what}: expected one value per unit, shape ({k},), got {arr.shape}")
    return arr


def _per_period(values: npt.ArrayLike, t: int, k: int, what: str) -> np.ndarray:
    """``values`` as a float (T x K) array (one row per period); scalars are broadcast."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        return np.full((t, k), float(arr))
    if arr.shape != (t, k):
        raise ValueError(f"{what}: expected shape ({t}, {k}) (periods x units), got "
                         f"{arr.shape}")
    return arr


def _check_horizon(periods: int, dt: float) -> None:
    if periods < 1:
        raise ValueError(f"periods must be >= 1, got {periods}")
    if not (np.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a period length in hours > 0, got {dt}")


def _difference(periods: int, k: int) -> sp.csr_array:
    """(T*K x T*K) matrix of ``x_t - x_{t-1}`` per unit (``x_{-1}`` = 0), period-major."""
    lag = sp.eye(periods, k=-1, format="csr")
    return sp.csr_array(sp.identity(periods * k, format="csr")
                        - sp.kron(lag, sp.identity(k, format="csr"), format="csr"))


# ---------------------------------------------------------------------- builders
def add_storage(
    model: ModelLike,
    names: StorageNames,
    periods: int,
    dt: float,
    *,
    p_charge_mw: npt.ArrayLike,
    p_discharge_mw: npt.ArrayLike,
    cost_per_mwh: npt.ArrayLike,
    e_min_mwh: npt.ArrayLike,
    e_max_mwh: npt.ArrayLike,
    e_init_mwh: npt.ArrayLike,
    eta_charge: npt.ArrayLike,
    eta_discharge: npt.ArrayLike,
    e_end_mwh: npt.ArrayLike | None = None,
) -> StorageBlock:
    """Add ``K`` storage units over ``periods`` periods.

    Variables (period-major, ``t * K + k``)::

        0 <= ch_t  <= p_charge_mw          charging power, MW (drawn from the grid)
        0 <= dis_t <= p_discharge_mw       discharging power, MW (injected), costs
                                           cost_per_mwh * dt per MW
        e_min <= e_t <= e_max              energy at the end of period t, MWh; in the last
                                           period e_{T-1} >= max(e_min, e_end) (e_end
                                           defaults to e_init: the day ends with at least
                                           the energy it started with)

    Rows (equalities, one per unit and period)::

        e_t - e_{t-1} - dt * eta_charge * ch_t + dt / eta_discharge * dis_t = 0
        e_0           - dt * eta_charge * ch_0 + dt / eta_discharge * dis_0 = e_init

    Parameters
    ----------
    model
        Model or namespace to add to.
    names
        Block names (``charge``, ``discharge``, ``energy``, ``balance``).
    periods, dt
        Number of periods ``T`` and their length, hours.
    p_charge_mw, p_discharge_mw
        (K,) charging and discharging power limits, MW (``>= 0``).
    cost_per_mwh
        (K,) cost of discharged energy, $/MWh.
    e_min_mwh, e_max_mwh, e_init_mwh
        (K,) energy limits and the initial energy, MWh.
    eta_charge, eta_discharge
        (K,) charging and discharging efficiencies (``> 0``).
    e_end_mwh
        (K,) lowest energy at the end of the horizon, MWh (NaN or None: ``e_init``), e.g.
        the day's target when a real-time window ends where the day ends.

    Returns
    -------
    StorageBlock
    """
    _check_horizon(periods, dt)
    T = periods
    k = _unit_count(p_charge_mw, "p_charge_mw")
    pch = _per_unit(p_charge_mw, k, "p_charge_mw")
    pdis = _per_unit(p_discharge_mw, k, "p_discharge_mw")
    cost = _per_unit(cost_per_mwh, k, "cost_per_mwh")
    e_min = _per_unit(e_min_mwh, k, "e_min_mwh")
    e_max = _per_unit(e_max_mwh, k, "e_max_mwh")
    e_init = _per_unit(e_init_mwh, k, "e_init_mwh")
    eta_c = _per_unit(eta_charge, k, "eta_charge")
    eta_d = _per_unit(eta_discharge, k, "eta_discharge")
    if not (eta_d > 0).all():
        raise ValueError("eta_discharge must be > 0")

    charge = model.add_variables(names.charge, T * k, ub=np.tile(pch, T))
    discharge = model.add_variables(names.discharge, T * k, ub=np.tile(pdis, T),
                                    cost=np.tile(cost * dt, T))
    e_end = e_init if e_end_mwh is None else _per_unit(e_end_mwh, k, "e_end_mwh")
    e_end = np.where(np.isnan(e_end), e_init, e_end)
    e_lb = np.tile(e_min, (T, 1))
    if k:
        e_lb[-1] = np.maximum(e_lb[-1], e_end)  # end >= the target (default: start)
    energy = model.add_variables(names.energy, T * k, lb=e_lb.ravel(), ub=np.tile(e_max, T))
    balance = None
    if k:
        rhs = np.zeros((T, k))
        rhs[0] = e_init
        balance = model.add_constraints(names.balance, [
            (energy, _difference(T, k)),
            (charge, -dt * np.tile(eta_c, T)),
            (discharge, dt / np.tile(eta_d, T)),
        ], lb=rhs.ravel(), ub=rhs.ravel())
    return StorageBlock(charge=charge, discharge=discharge, energy=energy, balance=balance)


def soften_storage_end(
    model: ModelLike,
    storage: StorageBlock,
    name: str,
    periods: int,
    *,
    e_min_mwh: npt.ArrayLike,
    e_end_mwh: npt.ArrayLike,
    shortfall_cost_per_mwh: float,
) -> VarBlock:
    """Turn the end-of-horizon floor of ``K`` storage units (added by :func:`add_storage`)
    into a priced target: the last period's energy keeps only ``e_min``, and a shortfall
    variable ``0 <= s <= target - e_min`` (``target = max(e_end, e_min)``, MWh, costing
    ``shortfall_cost_per_mwh`` $ per MWh) completes it::

        e_{T-1} + s >= target

    For units that cannot reach their target from where they start (a real-time window
    after forecast errors, a curtailed schedule). Returns the shortfall variables."""
    T = periods
    k = _unit_count(e_min_mwh, "e_min_mwh")
    e_min = _per_unit(e_min_mwh, k, "e_min_mwh")
    target = np.maximum(_per_unit(e_end_mwh, k, "e_end_mwh"), e_min)
    model.set_bounds(storage.energy, lb=np.tile(e_min, T))
    short = model.add_variables(f"{name}_short", k, ub=target - e_min,
                                cost=np.full(k, float(shortfall_cost_per_mwh)))
    last = sp.csr_array((np.ones(k), (np.arange(k), (T - 1) * k + np.arange(k))),
                        shape=(k, T * k))
    model.add_constraints(f"{name}_target", [(storage.energy, last), (short, 1.0)],
                          lb=target)
    return short


def ev_plugged(periods: int, arrival_period: npt.ArrayLike,
               departure_period: npt.ArrayLike) -> np.ndarray:
    """(T x V) bool: EV ``v`` is plugged in during period ``t``, i.e.
    ``arrival_period <= t < departure_period`` (departure exclusive, 0-based periods)."""
    t = np.arange(periods)[:, None]
    return (t >= np.asarray(arrival_period)) & (t < np.asarray(departure_period))


def add_ev_charging(
    model: ModelLike,
    names: EvNames,
    periods: int,
    dt: float,
    *,
    p_charge_mw: npt.ArrayLike,
    e_max_mwh: npt.ArrayLike,
    e_init_mwh: npt.ArrayLike,
    eta_charge: npt.ArrayLike,
    need_mwh: npt.ArrayLike,
    departure_period: npt.ArrayLike,
    shortfall_cost_per_mwh: float,
    p_discharge_mw: npt.ArrayLike | None = None,
    eta_discharge: npt.ArrayLike | None = None,
    discharge_cost_per_mwh: npt.ArrayLike | None = None,
) -> EvBlock:
    """Add ``V`` EVs (or pools of EVs) that charge while plugged in and, where
    ``p_discharge_mw`` allows, feed power back (vehicle-to-grid).

    Variables::

        0 <= evc_t <= p_charge_mw[t]       (T*V) charging power, MW (0 when not plugged)
        0 <= eve_t <= e_max                (T*V) energy at the end of period t, MWh
        0 <= short                         (V) energy missing at departure, MWh, costs
                                           shortfall_cost_per_mwh per MWh (the value of
                                           lost load; not multiplied by dt)

    Rows::

        eve_t - eve_{t-1} - dt * eta_charge * evc_t + dt / eta_discharge * evd_t = 0
                                                          (t > 0)      ev balance, T*V
        eve_0 - dt * eta_charge * evc_0 + dt / eta_discharge * evd_0 = e_init
        eve[dep - 1] + short >= need_mwh                               need, V

    and, with ``p_discharge_mw``, ``0 <= evd_t <= p_discharge_mw[t]`` (T*V) costing
    ``discharge_cost_per_mwh * dt`` per MW (battery wear), a block only created when some
    EV may discharge (so models without vehicle-to-grid are unchanged).

    with ``dep = min(departure_period, T)``: the need applies to the energy at the end of
    the last period plugged in (or of the horizon, for EVs that leave after it).

    Parameters
    ----------
    model
        Model or namespace to add to.
    names
        Block names (``charge``, ``energy``, ``shortfall``, ``balance``, ``need``).
    periods, dt
        Number of periods ``T`` and their length, hours.
    p_charge_mw
        (T x V) charging power limit per period, MW (0 in periods the EV is not plugged
        in: see :func:`ev_plugged`).
    e_max_mwh, e_init_mwh
        (V,) battery energy limit and initial energy, MWh.
    eta_charge
        (V,) charging efficiency (energy stored per energy drawn).
    need_mwh
        (V,) energy required in the battery at departure, MWh.
    departure_period
        (V,) first period the EV is gone (exclusive, ``>= 1``); later than ``T``
        means after the horizon.
    shortfall_cost_per_mwh
        Cost of each MWh missing at departure, $/MWh.
    p_discharge_mw
        (T x V) vehicle-to-grid power limit per period, MW (0 when not plugged in or not
        allowed); None: no EV discharges.
    eta_discharge
        (V,) discharging efficiency (energy delivered per energy taken out); default 1.
    discharge_cost_per_mwh
        (V,) cost of each MWh fed back, $/MWh; default 0.

    Returns
    -------
    EvBlock
    """
    _check_horizon(periods, dt)
    T = periods
    pmax = np.asarray(p_charge_mw, dtype=np.float64)
    if pmax.ndim != 2 or pmax.shape[0] != T:
        raise ValueError(f"p_charge_mw: expected shape ({T}, V) (periods x EVs), got "
                         f"{pmax.shape}")
    v = pmax.shape[1]
    e_max = _per_unit(e_max_mwh, v, "e_max_mwh")
    e_init = _per_unit(e_init_mwh, v, "e_init_mwh")
    eta = _per_unit(eta_charge, v, "eta_charge")
    need = _per_unit(need_mwh, v, "need_mwh")
    dep = np.asarray(departure_period).astype(np.int64)
    if dep.shape != (v,):
        raise ValueError(f"departure_period: expected shape ({v},), got {dep.shape}")
    if (dep < 1).any():
        raise ValueError("departure_period must be >= 1 (the first period the EV is gone)")
    dep = np.minimum(dep, T)

    dmax = None
    if p_discharge_mw is not None:
        dmax = np.asarray(p_discharge_mw, dtype=np.float64)
        if dmax.shape != pmax.shape:
            raise ValueError(f"p_discharge_mw: expected shape {pmax.shape}, got {dmax.shape}")
        if not (dmax > 0).any():
            dmax = None
    charge = model.add_variables(names.charge, T * v, ub=pmax.ravel())
    energy = model.add_variables(names.energy, T * v, ub=np.tile(e_max, T))
    shortfall = model.add_variables(names.shortfall, v,
                                    cost=np.full(v, float(shortfall_cost_per_mwh)))
    discharge = None
    terms = []
    if dmax is not None:
        eta_d = (np.ones(v) if eta_discharge is None
                 else _per_unit(eta_discharge, v, "eta_discharge"))
        cost_d = (np.zeros(v) if discharge_cost_per_mwh is None
                  else _per_unit(discharge_cost_per_mwh, v, "discharge_cost_per_mwh"))
        discharge = model.add_variables(names.discharge, T * v, ub=dmax.ravel(),
                                        cost=np.tile(cost_d * dt, T))
        terms.append((discharge, dt / np.tile(eta_d, T)))
    balance = need_rows = None
    if v:
        rhs = np.zeros((T, v))
        rhs[0] = e_init
        balance = model.add_constraints(names.balance, [
            (energy, _difference(T, v)),
            (charge, -dt * np.tile(eta, T)),
            *terms,
        ], lb=rhs.ravel(), ub=rhs.ravel())
        pick = sp.csr_array((np.ones(v), (np.arange(v), (dep - 1) * v + np.arange(v))),
                            shape=(v, T * v))
        need_rows = model.add_constraints(names.need, [(energy, pick), (shortfall, 1.0)],
                                          lb=need)
    return EvBlock(charge=charge, energy=energy, shortfall=shortfall, balance=balance,
                   need=need_rows, discharge=discharge)


def add_energy_offers(
    model: ModelLike,
    names: OfferNames,
    periods: int,
    dt: float,
    *,
    p_min_mw: npt.ArrayLike,
    p_max_mw: npt.ArrayLike,
    price_per_mwh: npt.ArrayLike,
    budget_mwh: npt.ArrayLike | None = None,
) -> OfferBlock:
    """Add ``K`` energy offers (DER output or demand curtailment), with energy budgets.

    Variables (period-major)::

        p_min_mw[t] <= q_t <= p_max_mw[t]     (T*K) dispatched power, MW, costs
                                              price_per_mwh * dt per MW

    Rows, one per offer ``k`` with a finite budget (in the order of the offers)::

        sum_t dt * q_t[k] <= budget_mwh[k]    energy over the horizon, MWh

    Parameters
    ----------
    model
        Model or namespace to add to.
    names
        Block names (``power``, ``budget``).
    periods, dt
        Number of periods ``T`` and their length, hours.
    p_min_mw, p_max_mw
        (T x K) power limits per period, MW.
    price_per_mwh
        (K,) offer price, $/MWh.
    budget_mwh
        (K,) energy budget over the horizon, MWh; ``inf`` (or NaN) for none. ``None``: no
        offer has one.

    Returns
    -------
    OfferBlock
    """
    _check_horizon(periods, dt)
    T = periods
    k = _unit_count(price_per_mwh, "price_per_mwh")
    price = _per_unit(price_per_mwh, k, "price_per_mwh")
    lo = _per_period(p_min_mw, T, k, "p_min_mw")
    hi = _per_period(p_max_mw, T, k, "p_max_mw")
    power = model.add_variables(names.power, T * k, lb=lo.ravel(), ub=hi.ravel(),
                                cost=np.tile(price * dt, T))
    budget = None
    if budget_mwh is not None:
        b = _per_unit(budget_mwh, k, "budget_mwh")
        limited = np.flatnonzero(np.isfinite(b))
        if len(limited):
            pick = sp.csr_array((np.ones(len(limited)), (np.arange(len(limited)), limited)),
                                shape=(len(limited), k))
            rows = sp.kron(np.full((1, T), dt), pick)
            budget = model.add_constraints(names.budget, [(power, rows)], ub=b[limited])
    return OfferBlock(power=power, budget=budget)


def add_shedding(
    model: ModelLike,
    name: str,
    periods: int,
    units: int,
    dt: float,
    *,
    value_of_lost_load: float,
    ub_mw: npt.ArrayLike = np.inf,
) -> VarBlock:
    """Add (T*K) load-shedding variables (period-major), priced at the value of lost load.

    ``0 <= shed_t[k] <= ub_mw[t, k]`` MW, each costing ``value_of_lost_load * dt`` per MW
    ($/MWh times hours). The same slack with ``ub_mw = inf`` serves as spill (power dumped
    at the value of lost load).

    Parameters
    ----------
    model
        Model or namespace to add to.
    name
        Block name.
    periods, units
        ``T`` and ``K`` (buses or loads that can shed).
    dt
        Period length, hours.
    value_of_lost_load
        $/MWh.
    ub_mw
        (T x K) most load shed per period, MW (the load); scalar for all.

    Returns
    -------
    VarBlock
    """
    _check_horizon(periods, dt)
    ub = _per_period(ub_mw, periods, units, "ub_mw")
    return model.add_variables(name, periods * units, ub=ub.ravel(),
                               cost=value_of_lost_load * dt)
