"""Which market admits which DER, and what each DER may do in a scheme.

Two markets: the TSO's wholesale market (:class:`~tsodso.rules.MarketRules`: minimum offer,
pooling per aggregator and interface bus) and the DSO's local market
(:class:`~tsodso.rules.local.LocalMarketRules`: minimum offer, pooling per aggregator and
feeder, the DER kinds that may offer energy and reactive power). A DER reaches the TSO
market only through an aggregator that bids into it (the aggregator's ``markets`` holds
``tso``); the DSO's market through an aggregator bidding there (``dso``) or, without an
aggregator, directly on its own size.

:func:`der_control` says, for a scheme, which DERs are dispatched and which give reactive
power: in a scheme without a distribution market only the TSO market's admissions count;
with one, a DER admitted by either market is dispatched (the TSO market's offers reach it
through the DSO, or both markets clear together). A DER no market admits is a price-taker.
Reactive power: under the grid code (``reactive_paid`` false) every inverter of a listed
kind supports voltage; where the DSO buys it, only the DERs its market admits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsodso.model.system import System
from tsodso.rules.local import LocalMarketRules
from tsodso.rules.presets import MarketRules

#: Columns of a kept-out table (one row per DER and market that did not admit it).
KEPT_OUT_COLUMNS = ["der_id", "aggregator_id", "kind", "feeder_id", "capacity_mw", "market",
                    "reason", "price_taker"]


def der_size_mw(ders: pd.DataFrame) -> pd.Series:
    """A DER's size for the minimum-offer rules: its largest injection or consumption, MW."""
    return np.maximum(ders.p_max_mw, -ders.p_min_mw)


def _bids_into(system: System, market: str) -> pd.Series:
    """Whether each DER's aggregator bids into ``market`` (``tso`` or ``dso``)."""
    d = system.ders
    markets = system.aggregators.set_index("aggregator_id").markets
    return d.aggregator_id.map(
        lambda a: market in [m.strip() for m in str(markets.get(a, "")).split(",")]
    ).astype(bool)


def _minimum(reason: pd.Series, size: pd.Series, groups: list[pd.Series], minimum: float,
             pooled_ok: bool, rules_name: str, among: np.ndarray | None = None) -> pd.Series:
    """Mark DERs (still admitted, and in ``among`` if given) below ``minimum`` MW, alone or
    pooled over ``groups``."""
    open_ = (reason == "").to_numpy() & (True if among is None else among)
    if pooled_ok:
        pooled = size.groupby(groups).transform("sum")
        small = open_ & (pooled < minimum - 1e-12)
        reason[small] = f"aggregated offer below the {minimum:g} MW minimum ({rules_name})"
    else:
        small = open_ & (size < minimum - 1e-12)
        reason[small] = (f"below the {minimum:g} MW minimum offer and aggregation is not "
                         f"allowed ({rules_name})")
    return reason


#: Why a DER without telemetry is in no market.
NO_TELEMETRY = ("no telemetry (behind the meter): no operator measures or instructs it in "
                "real time")


def _unseen(ders: pd.DataFrame) -> pd.Series:
    """Reasons so far: :data:`NO_TELEMETRY` for the DERs without telemetry, '' else."""
    reason = pd.Series("", index=ders.index, dtype=object)
    if "telemetry" in ders:
        reason[~ders.telemetry.astype(bool)] = NO_TELEMETRY
    return reason


def tso_admission(system: System, rules: MarketRules | None = None) -> pd.Series:
    """Reason each DER is kept out of the TSO market ('' = admitted)."""
    rules = rules or system.rules
    d = system.ders
    reason = _unseen(d)
    reason[(reason == "") & (d.aggregator_id == "")] = "no aggregator"
    reason[(reason == "") & ~_bids_into(system, "tso")] = \
        "aggregator does not bid into the TSO market"
    bus = d.feeder_id.map(system.feeders.set_index("feeder_id").interface_bus)
    return _minimum(reason, der_size_mw(d), [d.aggregator_id, bus], rules.min_offer_mw,
                    rules.aggregation_allowed, rules.name)


def dso_admission(system: System, local: LocalMarketRules | None = None) -> pd.Series:
    """Reason each DER is kept out of its DSO's local market ('' = admitted).

    A DER without an aggregator may contract with its DSO directly (as under section 14a
    EnWG or a DSO's flexibility tender for one site): it must then reach the minimum on
    its own. An aggregator's DERs need the aggregator to bid into the DSO market."""
    local = local or system.rules.local
    d = system.ders
    direct = (d.aggregator_id == "").to_numpy()
    reason = _unseen(d)
    reason[(reason == "").to_numpy() & ~direct & ~_bids_into(system, "dso").to_numpy()] = \
        "aggregator does not bid into the DSO market"
    kind_out = (reason == "") & ~d.kind.isin(local.energy_kinds)
    reason[kind_out] = d.kind[kind_out].map(
        lambda k: f"{k} may not offer energy in the DSO market ({system.rules.name})")
    name = f"{system.rules.name} local"
    size = der_size_mw(d)
    # an aggregator's DERs pool (where allowed); a DER bidding directly is judged alone
    reason = _minimum(reason, size, [d.aggregator_id, d.feeder_id], local.min_offer_mw,
                      local.aggregation_allowed, name, among=~direct)
    alone = (reason == "").to_numpy() & direct & (size < local.min_offer_mw - 1e-12)
    reason[alone] = (f"below the {local.min_offer_mw:g} MW minimum offer of a DER bidding "
                     f"without an aggregator ({name})")
    return reason


@dataclass(frozen=True)
class DerControl:
    """What the operator may do with each DER of ``system.ders`` (same order).

    Attributes
    ----------
    energy : array of bool
        Dispatched (its output is a decision); ``False``: a price-taker, running as nobody
        dispatched it.
    reactive : array of bool
        Its inverter's reactive power is a decision (within ``s_max_mva``); ``False``:
        unity power factor.
    """

    energy: np.ndarray
    reactive: np.ndarray

    def of(self, system: System, feeder_id: str) -> DerControl:
        """The part for the DERs of one feeder (in their order in ``system.ders``)."""
        mask = (system.ders.feeder_id == feeder_id).to_numpy()
        return DerControl(self.energy[mask], self.reactive[mask])


def der_control(system: System, distribution_market: bool = True) -> DerControl:
    """Which DERs are dispatched and which give reactive power in a scheme with
    (``distribution_market``) or without a DSO market (see the module docstring). Without
    one, reactive power is the grid code's (every inverter of a listed kind) and dispatch
    follows the TSO market (the DSO's corrections act on the market's schedule)."""
    d = system.ders
    local = system.rules.local
    tso_in = (tso_admission(system) == "").to_numpy()
    if distribution_market:
        dso_in = (dso_admission(system) == "").to_numpy()
        energy = tso_in | dso_in
    else:
        dso_in = np.zeros(len(d), dtype=bool)
        energy = tso_in
    inverter = d.kind.isin(local.reactive_kinds).to_numpy() & np.isfinite(
        d.s_max_mva.to_numpy(float))
    paid = distribution_market and local.reactive_paid  # bought: from admitted DERs only
    reactive = inverter & dso_in if paid else inverter
    return DerControl(energy, reactive)


def kept_out(system: System, distribution_market: bool) -> pd.DataFrame:
    """The DERs a market's rules kept out (:data:`KEPT_OUT_COLUMNS`): one row per DER and
    market (``tso``; ``dso`` where a distribution market exists) with the reason;
    ``price_taker`` is true for DERs no market admits."""
    d = system.ders
    markets = {"tso": tso_admission(system)}
    if distribution_market:
        markets["dso"] = dso_admission(system)
    taker = np.logical_and.reduce([(r != "").to_numpy() for r in markets.values()]) \
        if len(d) else np.zeros(0, dtype=bool)
    frames = []
    for market, reason in markets.items():
        out = (reason != "").to_numpy()
        rows = d.loc[out, ["der_id", "aggregator_id", "kind", "feeder_id"]].copy()
        rows["capacity_mw"] = der_size_mw(d)[out].to_numpy(float)
        rows["market"] = market
        rows["reason"] = reason[out].to_numpy()
        rows["price_taker"] = taker[out]
        frames.append(rows)
    if not frames:
        return pd.DataFrame(columns=KEPT_OUT_COLUMNS)
    return pd.concat(frames, ignore_index=True).reindex(columns=KEPT_OUT_COLUMNS)


__all__ = ["KEPT_OUT_COLUMNS", "DerControl", "der_control", "der_size_mw", "dso_admission",
           "kept_out", "tso_admission"]
