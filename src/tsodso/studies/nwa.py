"""Non-wires alternatives: defer a feeder upgrade by buying DER flexibility year by year.

The feeder's load grows by ``growth`` a year. For each year ``y = 0 .. years - 1`` the
study day (the system's horizon) is run with the feeder's loads times ``(1 + growth)^y``:

**Need.** The DSO first uses what costs it nothing: inverters' reactive power as the grid
code asks, its tap changer and capacitor banks (where the data give them). The year the
feeder cannot stay within its line and transformer ratings with those alone, with every
DER at its uncontrolled output (PV and wind at their availability, EVs charging on arrival,
everything else idle: what happens when nobody buys flexibility), is the year the upgrade
is needed without flexibility, ``need_year``. For reference, ``peak_loading_pct`` is the
highest loading an AC power flow finds at unity power factor and the root at its set
point, without those tools.

**Flexibility.** The DSO's OPF (second-order-cone branch flow, the feeder's limits, the
free tools above) finds the least departure from that uncontrolled dispatch that keeps the
feeder within its ratings: every DER of the feeder may move (an NWA tender is open to all
of them); each MWh moved away from its uncontrolled output (PV curtailed, storage charged
or discharged, EV charging moved, demand reduced, DG run) counts, and the energy itself is
not priced (the DSO buys flexibility, not energy; inverters give reactive power as the
grid code asks, at no charge). The MW (largest total move in a period) and MWh (total
move) needed are those moves, and the day's flexibility cost is the MWh times the
flexibility price ``flexibility_price`` ($/MWh). Flexibility *covers* the year when the
OPF sheds no load; the first year it does not is ``cover_limit_year`` (the upgrade cannot
be deferred past it).

**Decision.** The upgrade costs ``upgrade_cost`` $ (capital, in the year it is built).
Deferring it by ``d`` years (``0 <= d <= cover_limit_year - need_year``) costs, in present
value at ``discount_rate``::

    PV(d) = upgrade_cost / (1 + r)^(need_year + d)
            + sum_{y = need_year}^{need_year + d - 1} days_per_year * flex_cost_day(y) / (1 + r)^y

where ``days_per_year`` is the number of days a year that look like the study day
(flexibility is bought on those). The *deferral value* is ``PV(0) - PV(d)``. Deferring the
first year pays while the flexibility price is below the **break-even price**::

    p* = upgrade_cost * r / ((1 + r) * days_per_year * flex_mwh_day(need_year))

(one year's deferral saves ``upgrade_cost * r / (1 + r)`` in that year's money; the
flexibility for it costs ``p * days_per_year * flex_mwh_day``); above it the upgrade wins.

**Remuneration.** Who decides matters. Under a total-expenditure incentive (``totex``),
capital and operating expenditure are remunerated alike, so the DSO chooses the deferral
that minimises ``PV(d)``. Under cost-plus (``cost_plus``), capital enters the regulated
asset base and earns the ``allowed_return`` on it while the DSO pays ``discount_rate`` for
it (straight-line depreciation over ``asset_life_years``), and flexibility is passed
through without a return: the DSO's profit from the upgrade built in year ``k`` is
``upgrade_cost * (allowed_return - r) * A / (1 + r)^k`` with ``A = sum_{t=1}^{L}
(1 - (t - 1) / L) / (1 + r)^t``, which falls with every year of deferral, so a DSO that
maximises its profit builds in ``need_year`` (with ``allowed_return > r``) whatever the
flexibility costs. Both choices and the cost of the cost-plus choice to consumers (its PV
above the least) are reported.

Units: MW, MWh, $, $/MWh; rates per year as fractions (0.03 = 3 %); years counted from the
study year (0).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from tsodso.dso.opf import DsoResult
from tsodso.errors import TsodsoError
from tsodso.model.system import System
from tsodso.options import require_choice, require_int, require_number

Remuneration = Literal["totex", "cost_plus"]
#: What the OPF pays per MWh moved, $/MWh: the moves are the least that keep the ratings
#: whatever the flexibility price (which only prices them afterwards).
MOVE_WEIGHT = 1.0
#: Loading above which an element counts as overloaded, % of its rating.
THERMAL_TOL_PCT = 0.1
#: Energy (moved, or shed) below which a day needs nothing, MWh: solver accuracy.
NEED_TOL_MWH = 1e-6


@dataclass(frozen=True)
class NwaOptions:
    """Inputs of a non-wires-alternative study (see the module docstring)."""

    growth: float
    years: int
    upgrade_cost: float
    discount_rate: float = 0.05
    flexibility_price: float = 0.0
    days_per_year: float = 365.0
    remuneration: Remuneration = "totex"
    allowed_return: float = 0.07
    asset_life_years: int = 40

    def __post_init__(self) -> None:
        w = "nwa."
        require_number(w + "growth", self.growth, -0.5, 1.0)
        require_number(w + "upgrade_cost", self.upgrade_cost, 0.0, low_open=True)
        require_number(w + "discount_rate", self.discount_rate, 0.0, 1.0, low_open=True)
        require_number(w + "flexibility_price", self.flexibility_price, 0.0)
        require_number(w + "days_per_year", self.days_per_year, 0.0, 366.0, low_open=True)
        require_number(w + "allowed_return", self.allowed_return, 0.0, 1.0)
        require_int(w + "years", self.years, 1, 100)
        require_int(w + "asset_life_years", self.asset_life_years, 1, 100)
        require_choice(w + "remuneration", self.remuneration, ("totex", "cost_plus"))


@dataclass
class NwaResult:
    """A non-wires-alternative study (see the module docstring).

    ``years`` has one row per year: ``year``, ``load_scale``, ``peak_loading_pct`` and
    ``overloaded_elements`` (AC power flow with DERs uncontrolled, no tools),
    ``needs_flexibility``, ``flex_mw``, ``flex_mwh_day``, ``flex_cost_day`` ($),
    ``covered`` (flexibility keeps the ratings without shedding), ``shed_mwh_day`` (NaN
    after the first year flexibility does not cover: the upgrade is built by then).
    ``deferrals`` has one row per possible deferral ``d``: ``pv_cost`` ($),
    ``deferral_value`` ($), ``dso_profit`` (cost-plus, $)."""

    feeder_id: str
    options: NwaOptions
    years: pd.DataFrame
    need_year: int | None
    cover_limit_year: int | None
    deferrals: pd.DataFrame
    chosen_deferral: int
    least_cost_deferral: int
    break_even_price: float | None
    #: the flexibility OPF's dispatch per year studied (until flexibility no longer covers)
    dispatch: dict[int, DsoResult] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def years_deferred(self) -> int:
        """Years the chosen decision defers the upgrade (under the options' remuneration)."""
        return self.chosen_deferral

    def summary(self) -> dict[str, Any]:
        """The decision in figures (JSON-ready)."""
        row = (self.deferrals.set_index("deferral").loc[self.chosen_deferral]
               if len(self.deferrals) else None)
        return {"feeder_id": self.feeder_id, "need_year": self.need_year,
                "cover_limit_year": self.cover_limit_year,
                "remuneration": self.options.remuneration,
                "years_deferred": self.chosen_deferral,
                "least_cost_deferral": self.least_cost_deferral,
                "break_even_price": self.break_even_price,
                "pv_cost": None if row is None else float(row.pv_cost),
                "deferral_value": None if row is None else float(row.deferral_value),
                "cost_of_the_choice": None if row is None else float(
                    row.pv_cost - self.deferrals.pv_cost.min())}


def grown(system: System, feeder_id: str, scale: float) -> System:
    """The system with the feeder's loads (P and Q) times ``scale``."""
    out = copy.copy(system)
    loads = system.feeder_loads.copy()
    rows = loads.feeder_id == feeder_id
    loads.loc[rows, ["p_mw", "q_mvar"]] *= scale
    out.feeder_loads = loads
    return out


def _peak_loading(system: System, feeder_id: str) -> tuple[float, list[str]]:
    """Highest line or substation loading (% of rating) of the feeder with its DERs
    uncontrolled (AC power flow), and the elements above their rating."""
    from tsodso.powerflow import FeederPowerFlow, der_injections
    from tsodso.tso.offers import uncontrolled_dispatch

    ids = system.ders.der_id[system.ders.feeder_id == feeder_id]
    base = uncontrolled_dispatch(system)
    inj_p, _ = der_injections(system, feeder_id, base[ids])
    flow = FeederPowerFlow(system.feeder(feeder_id)).run_feeder_loads(
        inj_p, profiles=system.profiles)
    lines = flow.loading_pct.max(axis=0)
    sub = flow.substation_loading_pct.max()
    over = [f"line {int(i)}" for i, v in lines.items() if v > 100 + THERMAL_TOL_PCT]
    if np.isfinite(sub) and sub > 100 + THERMAL_TOL_PCT:
        over.append("substation")
    peak = float(np.nanmax([lines.max() if len(lines) else 0.0,
                            sub if np.isfinite(sub) else 0.0]))
    return peak, over


@dataclass
class Flexibility:
    """The least moves of a feeder's DERs that keep its ratings (:func:`least_flexibility`).

    ``moved_mw``: MW each DER moved away from its uncontrolled output, per period (periods x
    der_id, >= 0); ``mw`` the largest total move in a period, ``mwh`` the total moved,
    ``shed_mwh`` the load shed (where the moves cannot keep the ratings), ``result`` the
    OPF's dispatch."""

    mw: float
    mwh: float
    shed_mwh: float
    moved_mw: pd.DataFrame
    result: DsoResult


def least_flexibility(system: System, feeder_id: str) -> Flexibility:
    """The least moves of the feeder's DERs that keep its ratings (module docstring)."""
    mw, mwh, shed, result, moved = _flexibility(system, feeder_id)
    return Flexibility(mw, mwh, shed, moved, result)


def _flexibility(system: System, feeder_id: str
                 ) -> tuple[float, float, float, DsoResult, pd.DataFrame]:
    """The least moves of the feeder's DERs that keep its ratings (module docstring): MW
    moved at most in a period, MWh moved, MWh of load shed, the OPF's result and the moves
    (periods x der_id, MW)."""
    from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions
    from tsodso.rules.admission import DerControl
    from tsodso.tso.offers import uncontrolled_dispatch

    d = system.ders[system.ders.feeder_id == feeder_id]
    control = DerControl(np.ones(len(d), dtype=bool), np.isfinite(d.s_max_mva.to_numpy(float)))
    T, dt = system.n_periods, system.profiles.period_hours
    op = DsoOpf(system, feeder_id, DsoOptions(ac_check=False, decompose=False),
                Boundary(price=np.zeros(T)), control=control)
    m = op.model
    ref = uncontrolled_dispatch(system)[list(op.ders.der_id)].to_numpy()[:T]
    # DER offers are not what the DSO pays here: only the moves are weighed
    for var in (op.pg, op.dis):
        if len(var):
            m.set_cost(var, np.zeros(len(var)))
    blocks = [(op.pg, ref[:, op.g_idx]), (op.ch, np.zeros((T, len(op.s_idx)))),
              (op.dis, np.zeros((T, len(op.s_idx)))),
              (op.evc, np.maximum(-ref[:, op.v_idx], 0.0))]
    if op.evd is not None:
        blocks.append((op.evd, np.zeros((T, len(op.v_idx)))))
        m.set_cost(op.evd, np.zeros(len(op.evd)))
    for k, (var, x0) in enumerate(blocks):
        if not len(var):
            continue
        # var = x0 + up - down, each MWh of up and down weighed alike
        n = len(var)
        up = m.add_variables(f"nwa_up_{k}", n, cost=np.full(n, MOVE_WEIGHT * dt))
        down = m.add_variables(f"nwa_down_{k}", n, cost=np.full(n, MOVE_WEIGHT * dt))
        m.add_constraints(f"nwa_move_{k}", [(var, 1.0), (up, -1.0), (down, 1.0)],
                          lb=x0.ravel(), ub=x0.ravel())
    result = op.solve()
    moved = np.abs(result.der_p_mw[list(op.ders.der_id)].to_numpy() - ref)
    shed = float(result.shed_mw.to_numpy().sum() * dt)
    return (float(moved.sum(axis=1).max()) if moved.size else 0.0, float(moved.sum() * dt),
            shed, result, pd.DataFrame(moved, columns=list(op.ders.der_id)))


def non_wires_alternative(system: System, feeder_id: str, options: NwaOptions) -> NwaResult:
    """The study of ``feeder_id`` in ``system`` (module docstring)."""
    if feeder_id not in system.feeder_ids:
        raise TsodsoError(f"nwa: unknown feeder {feeder_id!r}; feeders: "
                          f"{', '.join(system.feeder_ids)}")
    system = system.check().subset_feeders([feeder_id], grid=False)
    rows = []
    dispatch: dict[int, DsoResult] = {}
    need = cover_limit = None
    for y in range(options.years):
        scale = (1.0 + options.growth) ** y
        year = grown(system, feeder_id, scale)
        peak, over = _peak_loading(year, feeder_id)
        row: dict[str, Any] = {"year": y, "load_scale": scale, "peak_loading_pct": peak,
                               "overloaded_elements": ", ".join(over),
                               "needs_flexibility": False, "flex_mw": math.nan,
                               "flex_mwh_day": math.nan, "flex_cost_day": math.nan,
                               "covered": False, "shed_mwh_day": math.nan}
        if cover_limit is None:
            mw, mwh, shed, dispatch[y], _ = _flexibility(year, feeder_id)
            covered = shed <= NEED_TOL_MWH
            row.update(needs_flexibility=mwh > NEED_TOL_MWH or not covered, flex_mw=mw,
                       flex_mwh_day=mwh, flex_cost_day=mwh * options.flexibility_price,
                       covered=covered, shed_mwh_day=shed)
            if row["needs_flexibility"] and need is None:
                need = y
            if not covered:
                cover_limit = y
        rows.append(row)
    table = pd.DataFrame(rows)
    notes = [f"year {y}: the flexibility OPF ended '{r.status.value}' (not exact or not "
             "proven optimal): its MW and MWh are indicative" for y, r in dispatch.items()
             if not r.prices_valid]
    if need is None:
        notes.append(f"the feeder keeps its ratings for {options.years} year(s) with its free "
                     "tools: nothing to defer")
        return NwaResult(feeder_id, options, table, None, None,
                         pd.DataFrame(columns=["deferral", "pv_cost", "deferral_value",
                                               "dso_profit"]), 0, 0, None, dispatch, notes)
    limit = cover_limit if cover_limit is not None else options.years
    if cover_limit is None:
        notes.append(f"flexibility covers every year of the study: the deferral is cut at "
                     f"the study's end ({options.years} years)")
    r = options.discount_rate
    per_year = table.set_index("year")
    L = options.asset_life_years
    annuity = sum((1 - (t - 1) / L) / (1 + r) ** t for t in range(1, L + 1))
    deferrals = []
    for dd in range(limit - need + 1):
        build = need + dd
        capital = options.upgrade_cost / (1 + r) ** build
        flex = sum(options.days_per_year * per_year.flex_cost_day[y] / (1 + r) ** y
                   for y in range(need, build))
        profit = options.upgrade_cost * (options.allowed_return - r) * annuity / (1 + r) ** build
        deferrals.append({"deferral": dd, "pv_cost": capital + flex, "dso_profit": profit})
    frame = pd.DataFrame(deferrals)
    frame["deferral_value"] = frame.pv_cost.iloc[0] - frame.pv_cost
    least = int(frame.deferral[frame.pv_cost == frame.pv_cost.min()].iloc[0])
    if options.remuneration == "totex":
        chosen = least
    else:
        chosen = int(frame.deferral[frame.dso_profit == frame.dso_profit.max()].iloc[0])
    e0 = float(per_year.flex_mwh_day[need])
    break_even = (options.upgrade_cost * r / ((1 + r) * options.days_per_year * e0)
                  if per_year.covered[need] and e0 > 0 else None)
    return NwaResult(feeder_id, options, table, need, cover_limit, frame, chosen, least,
                     break_even, dispatch, notes)


__all__ = ["MOVE_WEIGHT", "Flexibility", "NwaOptions", "NwaResult", "grown",
           "least_flexibility", "non_wires_alternative"]
