"""Reliability options for DG and storage in distribution planning.

A reliability option (Vázquez, Rivier and Pérez-Arriaga, "A market approach to long-term
security of supply", IEEE Trans. Power Systems 17(2), 2002; the capacity mechanisms of
Italy and of Ireland's I-SEM) is a call option the DSO buys, for the feeder's consumers,
from a provider of firm capacity ``q`` MW at a premium ($/MW-year): whenever the reference
price ``P`` exceeds the strike price ``K``, the provider pays back ``(P - K) q``; a provider
that is not available when called also pays a penalty per MWh it fails to deliver. The
consumers are hedged at ``K``; the provider keeps its revenue up to ``K`` and is paid the
premium for giving up what lies above.

The study (:func:`reliability_options`) asks it of a feeder whose load grows:

**Need.** In the target year (loads times ``(1 + growth)^year``), the least DER moves that
keep the feeder's line and transformer ratings (:func:`tsodso.studies.nwa.least_flexibility`):
the *scarcity periods* are those in which anything must move, the *firm capacity needed*
``q_need`` the largest move in one of them (MW), and the scarcity window ``h`` their hours.

**Offers.** Every DG and storage unit of the feeder offers its firm capacity: DG
``p_max_mw`` (available with probability ``availability``), storage the power it can hold
over the scarcity window, ``min(p_max_mw, (soc_max - soc_min) energy_mwh / h)``. Its
premium bid, $/MW-year, is what a competitive provider asks for the obligation (no more):

* the option value it gives away: per MW, ``days_per_year * sum_t (P_t - K)^+ dt`` over the
  study day, ``P_t`` the reference price, the DLMP at its bus in the target year (the
  DSO's OPF with the feeder's DERs dispatched at their offers against ``energy_price`` at
  the interface: where the ratings bind the DLMP carries the scarcity, up to the value of
  lost load where load is shed);
* the expected penalty for not being available when called (the periods with ``P_t >
  K``): ``(1 - availability) * penalty * called hours * days_per_year``;
* the cost of staying available, ``availability_cost`` ($/MW-year, a user's figure: none
  is in the data, default 0).

**Auction.** The DSO buys ``q_need`` MW at least premium (merit order of the bids,
pay-as-clear: every accepted provider is paid the marginal accepted bid; the last one
accepted in part), at no more than the upgrade's annual cost per MW (above that, building
is cheaper). The result lists the accepted and rejected offers, the clearing premium and
what is left uncovered.

**Planning cost**, $ per year, with and without the options: without, the upgrade's annual
capital cost ``upgrade_cost * CRF`` (capital recovery factor at ``discount_rate`` over
``asset_life_years``); with, the premiums paid (clearing premium times the firm capacity
bought) plus the upgrade's annual cost where the auction does not cover the need.

Units: MW, MWh, $, $/MWh, $/MW-year; rates per year as fractions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from tsodso.errors import TsodsoError
from tsodso.model.system import System
from tsodso.options import require_int, require_number

#: Kinds that can sell firm capacity.
FIRM_KINDS: tuple[str, ...] = ("dg", "storage")
#: MW a period must move to count as scarce (solver accuracy).
SCARCITY_TOL_MW = 1e-4
OFFER_COLUMNS = ("der_id", "kind", "bus_id", "firm_mw", "option_value", "penalty_risk",
                 "availability_cost", "premium_bid", "accepted_mw")


@dataclass(frozen=True)
class RoOptions:
    """Inputs of a reliability-option study (see the module docstring)."""

    growth: float
    year: int
    upgrade_cost: float
    strike_price: float = 300.0
    penalty: float = 1000.0
    availability: float = 0.95
    availability_cost: float = 0.0
    energy_price: float = 50.0
    days_per_year: float = 365.0
    discount_rate: float = 0.05
    asset_life_years: int = 40

    def __post_init__(self) -> None:
        w = "reliability_options."
        require_number(w + "growth", self.growth, -0.5, 1.0)
        require_number(w + "upgrade_cost", self.upgrade_cost, 0.0, low_open=True)
        for name in ("strike_price", "penalty", "availability_cost", "energy_price"):
            require_number(w + name, getattr(self, name), 0.0)
        require_number(w + "availability", self.availability, 0.0, 1.0)
        require_number(w + "days_per_year", self.days_per_year, 0.0, 366.0, low_open=True)
        require_number(w + "discount_rate", self.discount_rate, 0.0, 1.0, low_open=True)
        require_int(w + "year", self.year, 0, 100)
        require_int(w + "asset_life_years", self.asset_life_years, 1, 100)

    @property
    def annual_upgrade_cost(self) -> float:
        """The upgrade's capital cost per year: ``upgrade_cost`` times the capital recovery
        factor ``r / (1 - (1 + r)^-L)``, $/year."""
        r, n = self.discount_rate, self.asset_life_years
        return self.upgrade_cost * r / (1 - (1 + r) ** -n)


@dataclass
class RoResult:
    """A reliability-option study (see the module docstring). ``offers`` has
    :data:`OFFER_COLUMNS` (premiums in $/MW-year), in merit order."""

    feeder_id: str
    options: RoOptions
    need_mw: float
    scarcity_periods: list[int]
    window_hours: float
    offers: pd.DataFrame
    clearing_premium: float | None
    bought_mw: float
    uncovered_mw: float
    cost_without: float
    cost_with: float
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The study in figures (JSON-ready)."""
        return {"feeder_id": self.feeder_id, "year": self.options.year,
                "need_mw": self.need_mw, "scarcity_periods": self.scarcity_periods,
                "window_hours": self.window_hours, "clearing_premium": self.clearing_premium,
                "bought_mw": self.bought_mw, "uncovered_mw": self.uncovered_mw,
                "planning_cost_without": self.cost_without,
                "planning_cost_with": self.cost_with,
                "saving": self.cost_without - self.cost_with}


def clear_auction(offers: pd.DataFrame, need_mw: float, price_cap: float
                  ) -> tuple[pd.Series, float | None]:
    """Accept ``offers`` (``firm_mw``, ``premium_bid`` $/MW-year) cheapest first until
    ``need_mw`` is bought, none above ``price_cap``; the last accepted offer may be taken
    in part. Returns the MW accepted per offer (same index) and the clearing premium (the
    marginal accepted bid; None when nothing is bought)."""
    order = offers.sort_values(["premium_bid", "firm_mw"], ascending=[True, False],
                               kind="stable").index
    accepted = pd.Series(0.0, index=offers.index)
    left, price = need_mw, None
    for i in order:
        if left <= 1e-9 or offers.premium_bid[i] > price_cap:
            break
        take = min(float(offers.firm_mw[i]), left)
        if take <= 0:
            continue
        accepted[i] = take
        left -= take
        price = float(offers.premium_bid[i])
    return accepted, price


def reliability_options(system: System, feeder_id: str, options: RoOptions) -> RoResult:
    """The study of ``feeder_id`` in ``system`` (module docstring)."""
    from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions
    from tsodso.rules.admission import DerControl
    from tsodso.studies.nwa import grown, least_flexibility

    if feeder_id not in system.feeder_ids:
        raise TsodsoError(f"reliability_options: unknown feeder {feeder_id!r}; feeders: "
                          f"{', '.join(system.feeder_ids)}")
    base = system.check().subset_feeders([feeder_id], grid=False)
    year = grown(base, feeder_id, (1.0 + options.growth) ** options.year)
    dt = year.profiles.period_hours
    flex = least_flexibility(year, feeder_id)
    per_period = flex.moved_mw.sum(axis=1).to_numpy()
    scarce = [int(t) for t in np.flatnonzero(per_period > SCARCITY_TOL_MW)]
    need = float(per_period.max()) if len(per_period) else 0.0
    notes = []
    if not flex.result.prices_valid:
        notes.append(f"the flexibility OPF of year {options.year} ended "
                     f"'{flex.result.status.value}': the need is indicative")
    if flex.shed_mwh > 1e-6:
        notes.append(f"even every DER moving cannot keep the ratings in year {options.year} "
                     f"({flex.shed_mwh:.3f} MWh shed): options cannot replace the upgrade")
    window = len(scarce) * dt
    d = year.ders[year.ders.feeder_id == feeder_id]
    firm = d[d.kind.isin(FIRM_KINDS)]
    # the reference price: DLMPs of the market in the target year (DERs at their offers)
    control = DerControl(np.ones(len(d), dtype=bool), np.isfinite(d.s_max_mva.to_numpy(float)))
    market = DsoOpf(year, feeder_id, DsoOptions(ac_check=False),
                    Boundary(price=np.full(year.n_periods, options.energy_price)),
                    control=control).solve()
    dlmp = market.dlmp_p
    if not market.prices_valid:
        notes.append(f"the market OPF of year {options.year} ended '{market.status.value}': "
                     "its DLMPs, and the option values read from them, are indicative")
    rows = []
    for der in firm.itertuples(index=False):
        if der.kind == "dg":
            firm_mw = float(der.p_max_mw)
        else:
            usable = (der.soc_max - der.soc_min) * der.energy_mwh
            firm_mw = float(min(der.p_max_mw, usable / window)) if window > 0 else float(
                der.p_max_mw)
        price = dlmp[int(der.bus_id)].to_numpy()
        called = price > options.strike_price  # the periods the option is exercised
        option_value = float(options.days_per_year
                             * (price[called] - options.strike_price).sum() * dt)
        risk = ((1 - options.availability) * options.penalty * int(called.sum()) * dt
                * options.days_per_year)
        rows.append({"der_id": der.der_id, "kind": der.kind, "bus_id": int(der.bus_id),
                     "firm_mw": firm_mw, "option_value": option_value,
                     "penalty_risk": risk, "availability_cost": options.availability_cost,
                     "premium_bid": option_value + risk + options.availability_cost})
    offers = pd.DataFrame(rows, columns=list(OFFER_COLUMNS[:-1]))
    cap = options.annual_upgrade_cost / need if need > SCARCITY_TOL_MW else 0.0
    if need <= SCARCITY_TOL_MW:
        notes.append(f"the feeder keeps its ratings in year {options.year} without any DER "
                     "moving: nothing to buy")
        accepted, price = pd.Series(0.0, index=offers.index), None
    else:
        accepted, price = clear_auction(offers, need, cap)
    offers["accepted_mw"] = accepted
    offers = offers.sort_values(["premium_bid", "firm_mw"], ascending=[True, False],
                                kind="stable", ignore_index=True)
    bought = float(accepted.sum())
    uncovered = max(need - bought, 0.0) if need > SCARCITY_TOL_MW else 0.0
    without = options.annual_upgrade_cost if need > SCARCITY_TOL_MW else 0.0
    with_ro = (price or 0.0) * bought + (options.annual_upgrade_cost
                                         if uncovered > 1e-6 or flex.shed_mwh > 1e-6 else 0.0)
    if uncovered > 1e-6:
        notes.append(f"the auction covers {bought:.3f} of {need:.3f} MW (offers run out or "
                     "cost more than the upgrade): the upgrade is still built")
    return RoResult(feeder_id, options, need, scarce, window, offers, price, bought,
                    uncovered, without, with_ro, notes)


__all__ = ["FIRM_KINDS", "OFFER_COLUMNS", "RoOptions", "RoResult", "clear_auction",
           "reliability_options"]
