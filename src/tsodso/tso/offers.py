"""What the TSO sees of the distribution side: fixed net load and DER offers at interface buses.

DERs reach the wholesale market only through aggregators that bid into it (``markets``
contains ``tso``) and only if the market rules admit them (minimum offer size, alone or
pooled per aggregator and interface bus). Admitted DERs are pooled per aggregator, interface
bus, kind and price into offers; the TSO never sees feeder buses. DERs that are not admitted
run on their own: PV and wind at their availability, EVs charging at full power from arrival
until their need is met, storage, demand response and DG idle. Their output is part of the
fixed net load at the interface bus, and each exclusion is reported with its reason.

Sign convention: offers inject (MW > 0); charging is consumption (MW < 0 for storage and EV
units when seen as injections).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tsodso.model.system import System
from tsodso.rules import MarketRules


@dataclass
class EnergyOffers:
    """Price-quantity offers (PV, wind, DG, demand response, bid steps), pooled.

    ``p_max`` and ``p_min`` are (periods x offers) MW; ``budget_mwh`` limits the energy over the
    horizon (demand response); ``members`` maps each offer to its DERs and their shares.
    """

    table: pd.DataFrame  # offer_id, aggregator_id, bus_id, kind, price_per_mwh, budget_mwh
    p_max: np.ndarray
    p_min: np.ndarray
    member_shares: pd.DataFrame | None = None  # periods x der_id: share of its offer


@dataclass
class StorageOffers:
    """Pooled storage: power (MW), energy (MWh), efficiencies, initial energy."""

    table: pd.DataFrame  # offer_id, aggregator_id, bus_id, p_charge_mw, p_discharge_mw,
    #                      e_min_mwh, e_max_mwh, e_init_mwh, e_end_mwh, eta_charge,
    #                      eta_discharge, cost


@dataclass
class EvOffers:
    """Pooled EV charging: charge power per period (0 when unplugged), need by departure,
    and the power pools may feed back per period (vehicle-to-grid; 0 for charge-only)."""

    table: pd.DataFrame  # offer_id, aggregator_id, bus_id, e_max_mwh, e_init_mwh, need_mwh,
    #                      departure (period index, exclusive), eta_discharge, cost_per_mwh
    p_charge: np.ndarray  # (periods x offers) MW
    p_discharge: np.ndarray | None = None  # (periods x offers) MW; None: no vehicle-to-grid


@dataclass
class TsoView:
    """Everything the TSO market needs from the distribution side."""

    fixed_load: pd.DataFrame  # periods x interface bus, MW (net of self-dispatched DERs)
    energy: EnergyOffers
    storage: StorageOffers
    ev: EvOffers
    members: pd.DataFrame  # der_id, offer_id, share (of the offer's capacity)
    excluded: pd.DataFrame  # der_id, aggregator_id, kind, bus_id, capacity_mw, reason
    der_output_fixed: pd.DataFrame = field(default_factory=pd.DataFrame)  # periods x der_id


def der_availability(system: System) -> np.ndarray:
    """(periods x DERs) upper injection limit, MW: ``p_max_mw`` times the DER's profile."""
    d = system.ders
    return system.profiles.multipliers(d.profile) * d.p_max_mw.to_numpy()


def feeder_load_by_bus(system: System) -> pd.DataFrame:
    """(periods x feeder buses) MW of inflexible feeder load, columns (feeder_id, bus_id)."""
    loads = system.feeder_loads
    p = system.profiles.multipliers(loads.profile) * loads.p_mw.to_numpy()
    cols = pd.MultiIndex.from_arrays([loads.feeder_id, loads.bus_id])
    frame = pd.DataFrame(p, columns=cols)
    return frame.T.groupby(level=[0, 1]).sum().T


def admission(system: System, rules: MarketRules) -> pd.Series:
    """Reason each DER is kept out of the TSO market ('' = admitted): see
    :func:`tsodso.rules.admission.tso_admission`."""
    from tsodso.rules.admission import tso_admission

    return tso_admission(system, rules)


def st_end_mwh(ders: pd.DataFrame) -> np.ndarray:
    """Each storage unit's lowest energy at the end of the horizon, MWh: ``soc_end`` times
    its capacity, or its initial energy where ``soc_end`` is NaN (or absent)."""
    end = ders.soc_end if "soc_end" in ders else pd.Series(np.nan, index=ders.index)
    return np.where(end.notna(), end * ders.energy_mwh, ders.soc_init * ders.energy_mwh)


def der_offer_cost(system: System, der_p_mw: pd.DataFrame) -> np.ndarray:
    """$ per hour (periods x DERs, columns of ``der_p_mw``) of the DERs' output under their
    offers: positive output at ``cost_per_mwh``, or for a DER with bid steps (``der_bids``)
    its steps filled cheapest first, each up to its share of the DER's availability
    (demand response: of the load at its bus), as the DSO OPF clears them."""
    by_id = system.ders.set_index("der_id")
    ids = list(der_p_mw.columns)
    out = np.maximum(der_p_mw.to_numpy(float), 0.0)
    cost = out * by_id.cost_per_mwh.reindex(ids).to_numpy(float)[None, :]
    bids = system.der_bids[system.der_bids.der_id.isin(ids)]
    if len(bids):
        T = len(der_p_mw)
        avail = pd.DataFrame(der_availability(system), columns=system.ders.der_id)[ids]
        load = feeder_load_by_bus(system)
        for der, steps in bids.sort_values("price_per_mwh").groupby("der_id", sort=False):
            j = ids.index(der)
            cap = avail[der].to_numpy()[:T]
            if by_id.at[der, "kind"] == "demand_response":  # no more than the load there
                at = load.get((by_id.at[der, "feeder_id"], by_id.at[der, "bus_id"]))
                cap = np.minimum(cap, 0.0 if at is None else at.to_numpy()[:T])
            share = (steps.quantity_mw / steps.quantity_mw.sum()).to_numpy(float)
            room = share[None, :] * cap[:, None]
            filled = np.minimum(np.clip(out[:, [j]] - np.cumsum(room, axis=1) + room, 0, None),
                                room)
            cost[:, j] = filled @ steps.price_per_mwh.to_numpy(float)
    return cost


def uncontrolled_ev_charging(system: System, ev: pd.DataFrame) -> np.ndarray:
    """(periods x EVs) MW drawn by EVs charging at full power from arrival until their need
    is met (the behaviour of an EV nobody dispatches)."""
    dt = system.profiles.period_hours
    t = np.arange(system.n_periods)[:, None]
    departure = np.where(ev.departure_period < 0, system.n_periods, ev.departure_period)
    plugged = (t >= ev.arrival_period.to_numpy()) & (t < departure)
    power = -ev.p_min_mw.to_numpy()
    e_init = ev.soc_init.to_numpy() * ev.energy_mwh.to_numpy()
    need = np.maximum(ev.energy_need_mwh.to_numpy() - e_init, 0) / ev.eta_charge.to_numpy()
    delivered_before = np.cumsum(plugged * power * dt, axis=0) - plugged * power * dt
    return plugged * np.clip(need - delivered_before, 0, power * dt) / dt


def uncontrolled_dispatch(system: System) -> pd.DataFrame:
    """(periods x der_id) DER output when nobody dispatches DERs: PV and wind at their
    availability, EVs charging on arrival, everything else idle (MW, injection positive)."""
    d = system.ders
    out = np.zeros((system.n_periods, len(d)))
    avail = der_availability(system)
    ren = d.kind.isin(["pv", "wind"]).to_numpy()
    out[:, ren] = avail[:, ren]
    ev = (d.kind == "ev").to_numpy()
    if ev.any():
        out[:, ev] = -uncontrolled_ev_charging(system, d[ev])
    return pd.DataFrame(out, columns=d.der_id.to_numpy())


def tso_view(system: System, rules: MarketRules | None = None) -> TsoView:
    """Pool the DERs of ``system`` into TSO offers under ``rules`` (default: the system's)."""
    rules = rules or system.rules
    d = system.ders.reset_index(drop=True)
    T = system.n_periods
    interface = system.feeders.set_index("feeder_id").interface_bus
    d_bus = d.feeder_id.map(interface).to_numpy() if len(d) else np.zeros(0, dtype=int)
    avail = der_availability(system)
    reason = admission(system, rules) if len(d) else pd.Series(dtype=object)
    admitted = (reason == "").to_numpy()

    # fixed load at interface buses: feeder loads, minus self-dispatched renewables, plus
    # uncontrolled EV charging
    feeder = feeder_load_by_bus(system)
    fixed = feeder.T.groupby(feeder.columns.get_level_values(0).map(interface)).sum().T
    out_fixed = np.zeros((T, len(d)))
    renew = d.kind.isin(["pv", "wind"]).to_numpy() & ~admitted
    out_fixed[:, renew] = avail[:, renew]
    ev_self = (d.kind == "ev").to_numpy() & ~admitted
    if ev_self.any():
        out_fixed[:, ev_self] = -uncontrolled_ev_charging(system, d[ev_self])
    if len(d):
        net = pd.DataFrame(-out_fixed, columns=d_bus).T.groupby(level=0).sum().T
        fixed = fixed.add(net, fill_value=0.0)
    fixed.columns = fixed.columns.astype(np.int64)

    bids = system.der_bids
    members = []
    # --- energy offers: pv, wind, dg, demand response; bid steps replace cost_per_mwh
    energy_kinds = d.kind.isin(["pv", "wind", "dg", "demand_response"]).to_numpy() & admitted
    rows, pmax_cols, pmin_cols = [], [], []
    for i in np.flatnonzero(energy_kinds):
        der = d.iloc[i]
        cap = avail[:, i].copy()
        if der.kind == "demand_response" and rules.dr_export_ban:
            local = feeder.get((der.feeder_id, der.bus_id))
            cap = np.minimum(cap, 0.0 if local is None else local.to_numpy())
        steps = bids[bids.der_id == der.der_id].sort_values("step")
        if len(steps):
            total = steps.quantity_mw.sum()
            pieces = [(s.price_per_mwh, s.quantity_mw / total) for s in steps.itertuples()]
        else:
            pieces = [(der.cost_per_mwh, 1.0)]
        budget = der.energy_mwh if der.kind == "demand_response" and der.energy_mwh > 0 \
            else np.inf
        for price, frac in pieces:
            rows.append((der.der_id, der.aggregator_id, int(d_bus[i]), der.kind, float(price),
                         budget * frac))
            pmax_cols.append(cap * frac)
            pmin_cols.append(np.minimum(np.full(T, max(der.p_min_mw, 0.0)) * frac, cap * frac))
    energy_table = pd.DataFrame(rows, columns=["der_id", "aggregator_id", "bus_id", "kind",
                                               "price_per_mwh", "budget_mwh"])
    pmax = np.column_stack(pmax_cols) if pmax_cols else np.zeros((T, 0))
    pmin = np.column_stack(pmin_cols) if pmin_cols else np.zeros((T, 0))
    energy, emembers = _pool_energy(energy_table, pmax, pmin)
    members.append(emembers)

    # --- storage
    st = d[(d.kind == "storage").to_numpy() & admitted].copy()
    st["bus_id"] = d_bus[st.index] if len(st) else []
    st["p_charge_mw"] = -st.p_min_mw
    st["p_discharge_mw"] = 0.0 if rules.storage_as == "load" else st.p_max_mw
    st["e_min_mwh"] = st.soc_min * st.energy_mwh
    st["e_max_mwh"] = st.soc_max * st.energy_mwh
    st["e_init_mwh"] = st.soc_init * st.energy_mwh
    st["e_end_mwh"] = st_end_mwh(st)
    # units pool only with units at the same state of charge and limits (fractions): a pool's
    # schedule shared by capacity then keeps every member within its own limits and target
    # (fractions rounded to 1e-9: a fraction recomputed from MWh is not always exact)
    st["soc_end_pool"] = np.round(st.e_end_mwh / st.energy_mwh.where(st.energy_mwh > 0, 1.0),
                                  9)
    keys = ["aggregator_id", "bus_id", "eta_charge", "eta_discharge", "cost_per_mwh",
            "soc_init", "soc_min", "soc_max", "soc_end_pool"]
    storage, smembers = _pool(st, keys, ["p_charge_mw", "p_discharge_mw", "e_min_mwh",
                                         "e_max_mwh", "e_init_mwh", "e_end_mwh"], "storage",
                              "energy_mwh")
    members.append(smembers)

    # --- EV charging
    ev = d[(d.kind == "ev").to_numpy() & admitted].copy()
    ev["bus_id"] = d_bus[ev.index] if len(ev) else []
    ev["departure"] = np.where(ev.departure_period < 0, T, ev.departure_period)
    ev["p_charge_mw"] = -ev.p_min_mw
    ev["e_max_mwh"] = ev.soc_max * ev.energy_mwh
    ev["e_init_mwh"] = ev.soc_init * ev.energy_mwh
    ev["need_mwh"] = ev.energy_need_mwh
    ev["p_discharge_mw"] = ev.p_max_mw  # vehicle-to-grid (0: charge only)
    ev["need_share"] = np.round(ev.need_mwh / ev.e_max_mwh.where(ev.e_max_mwh > 0, 1.0), 9)
    keys = ["aggregator_id", "bus_id", "arrival_period", "departure", "eta_charge",
            "soc_init", "need_share"]
    if (ev.p_discharge_mw > 0).any():  # discharging EVs pool with their like only
        keys += ["eta_discharge", "cost_per_mwh"]
    evs, vmembers = _pool(ev, keys, ["p_charge_mw", "e_max_mwh", "e_init_mwh", "need_mwh",
                                     "p_discharge_mw"], "ev", "p_charge_mw")
    members.append(vmembers)
    t = np.arange(T)[:, None]
    plugged = (t >= evs.arrival_period.to_numpy()) & (t < evs.departure.to_numpy())
    back = plugged * evs.p_discharge_mw.to_numpy(float) if len(evs) else np.zeros((T, 0))
    ev_offers = EvOffers(evs, plugged * evs.p_charge_mw.to_numpy(),
                         back if (back > 0).any() else None)

    excluded = d.loc[~admitted, ["der_id", "aggregator_id", "kind", "feeder_id"]].copy()
    excluded["bus_id"] = d_bus[~admitted] if len(d) else []
    excluded["capacity_mw"] = np.maximum(d.p_max_mw, -d.p_min_mw)[~admitted]
    excluded["reason"] = reason[~admitted].to_numpy() if len(d) else []
    return TsoView(
        fixed_load=fixed,
        energy=energy,
        storage=StorageOffers(storage),
        ev=ev_offers,
        members=pd.concat([m for m in members if len(m)] or [members[0]], ignore_index=True),
        excluded=excluded.reset_index(drop=True),
        der_output_fixed=pd.DataFrame(out_fixed, columns=d.der_id),
    )


def _pool_energy(table: pd.DataFrame, pmax: np.ndarray, pmin: np.ndarray
                 ) -> tuple[EnergyOffers, pd.DataFrame]:
    """Sum DER offer pieces with the same aggregator, bus, kind and price into one offer."""
    cols = ["offer_id", "aggregator_id", "bus_id", "kind", "price_per_mwh", "budget_mwh"]
    if table.empty:
        return (EnergyOffers(pd.DataFrame(columns=cols), pmax, pmin),
                pd.DataFrame(columns=["der_id", "offer_id", "share"]))
    keys = ["aggregator_id", "bus_id", "kind", "price_per_mwh"]
    group = table.groupby(keys, sort=True).ngroup().to_numpy()
    n = group.max() + 1
    agg = np.zeros((pmax.shape[1], n))
    agg[np.arange(len(group)), group] = 1.0
    first = table.groupby(group).first()
    offers = first[["aggregator_id", "bus_id", "kind", "price_per_mwh"]].copy()
    offers["budget_mwh"] = table.groupby(group).budget_mwh.sum().to_numpy()
    offers.insert(0, "offer_id", [f"{a}@{b}/{k}/{p:g}" for a, b, k, p in
                                  offers[keys].itertuples(index=False)])
    pooled_max = pmax @ agg
    cap = pmax.max(axis=0) if len(pmax) else np.zeros(len(group))
    total = np.bincount(group, weights=cap, minlength=n)
    share = np.divide(cap, total[group], out=np.full(len(group), 0.0), where=total[group] > 0)
    members = pd.DataFrame({"der_id": table.der_id.to_numpy(),
                            "offer_id": offers.offer_id.to_numpy()[group], "share": share})
    # per period, an offer's dispatch is shared in proportion to what each member could give
    pooled_at = pooled_max[:, group]
    shares = np.divide(pmax, pooled_at, out=np.broadcast_to(share, pmax.shape).copy(),
                       where=pooled_at > 1e-12)
    return EnergyOffers(offers.reset_index(drop=True), pooled_max, pmin @ agg,
                        pd.DataFrame(shares, columns=table.der_id.to_numpy())), members


def _pool(frame: pd.DataFrame, keys: list[str], sums: list[str], kind: str, weight: str
          ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pool DER rows with equal ``keys``; ``sums`` add up, shares follow ``weight``."""
    if frame.empty:
        return (pd.DataFrame(columns=["offer_id", *keys, *sums]),
                pd.DataFrame(columns=["der_id", "offer_id", "share"]))
    grouped = frame.groupby(keys, sort=True)
    pooled = grouped[sums].sum().reset_index()
    pooled.insert(0, "offer_id", [f"{r.aggregator_id}@{r.bus_id}/{kind}{i}"
                                  for i, r in enumerate(pooled.itertuples())])
    gid = grouped.ngroup().to_numpy()
    w = frame[weight].to_numpy(dtype=float)
    total = np.bincount(gid, weights=w)
    members = pd.DataFrame({"der_id": frame.der_id.to_numpy(),
                            "offer_id": pooled.offer_id.to_numpy()[gid],
                            "share": np.divide(w, total[gid], out=np.zeros(len(w)),
                                               where=total[gid] > 0)})
    return pooled, members
