"""Who pays whom: the settlement statements of a coordination scheme's operation.

Every party gets a statement: line items in $ over the horizon, **positive when the party
receives money, negative when it pays**. The statements of one outcome sum to zero (to the
cent: tested), because every line is one side of a physical balance priced once:

``consumers:transmission``
    ``energy at the LMP``: transmission loads (and shunts) net of shed load pay their bus's
    LMP (negative).
``generators``
    ``energy at the LMP``: transmission generators are paid their bus's LMP.
``tso``
    ``congestion rent``: the flows times the LMP difference along each branch;
    ``zonal settlement difference`` where DERs are paid a zonal price but inject at an
    interface bus whose LMP differs (the market operator keeps or pays the difference).
``consumers:<dso>``
    ``energy``: feeder loads net of shed load pay the distribution price where a
    distribution market exists (their bus's DLMP), else the TSO's price at their interface
    bus (the interface LMP).
``aggregator:<id>``
    ``energy``: its DERs' net output paid the same price as the consumers beside them (DLMP,
    or the TSO's price: nodal or zonal as the market rules say); ``curtailment
    compensation`` where a DSO without a market curtailed its scheduled DERs (the margin
    lost: scheduled minus delivered energy times the price less the DER's offer cost, never
    negative).
``dso:<name>``
    With a distribution market: ``distribution rent`` (line flows priced at the DLMPs at
    both ends, losses included) and ``interface rent`` (the import priced at the root DLMP
    less the interface LMP the DSO pays). Without one: ``network losses`` (the feeder's
    import less its served load plus its DERs' output, bought at the interface price) and
    the ``curtailment compensation`` it pays.

Reactive power, where the DSO's market buys it (``rules.local.reactive_paid``, in a scheme
with a distribution market): ``aggregator:<id>`` ``reactive power`` (its DERs' MVAr times
the reactive DLMP at their bus: received when they inject where reactive power is worth
something), ``consumers:<dso>`` ``reactive energy`` (their served MVAr at the reactive DLMP,
paid) and ``dso:<name>`` ``reactive rent`` (the difference: what the feeder's lines and
shunts absorb or give, priced at the reactive DLMPs). Where the grid code asks for reactive
power (``reactive_paid`` false) or no distribution market exists, nobody is paid for it.

Schemes "without a distribution market" are those in which the DSO only corrects the TSO
market's schedule (``tso_only``, ``centralized``): the rules there settle DERs and
consumers at the TSO's price.

The market operator sends each party (the TSO, each DSO, each aggregator) its statement as
a :class:`~tsodso.actors.messages.SettlementStatement`; consumers and generators are settled
through their suppliers and are not parties of the exchange.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from tsodso.dso.opf import DsoResult
from tsodso.model.system import System
from tsodso.tso import TsoResult
from tsodso.tso.dc_network import build_dc_network
from tsodso.tso.market import settled_zonal, zonal_prices

#: Schemes whose DERs and feeder consumers are settled at the TSO's price (no
#: distribution market: the DSO only corrects the market's schedule).
TSO_PRICE_SCHEMES = ("tso_only", "centralized")


@dataclass
class Statements:
    """Settlement statements by party (see the module docstring): ``lines`` holds $ over
    the horizon, ``per_period`` the same amounts per period (party -> line -> array of
    ``$`` per period), where the amounts were given per period."""

    lines: dict[str, dict[str, float]] = field(default_factory=dict)
    per_period: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def add(self, party: str, line: str, value: float | np.ndarray) -> None:
        """Add ``value`` to ``party``'s ``line``: $ (positive: received), or an array of $
        per period (kept per period, and summed into the line)."""
        book = self.lines.setdefault(party, {})
        if isinstance(value, np.ndarray):
            periods = self.per_period.setdefault(party, {})
            held = periods.get(line)
            periods[line] = value.astype(float) if held is None else held + value
            value = float(value.sum())
        book[line] = book.get(line, 0.0) + float(value)

    def total(self, party: str) -> float:
        """What ``party`` received in all (negative: paid)."""
        return float(sum(self.lines.get(party, {}).values()))

    def imbalance(self) -> float:
        """Sum over every party and line: zero when the money balances."""
        return float(sum(sum(b.values()) for b in self.lines.values()))

    def frame(self) -> pd.DataFrame:
        """One row per party and line: ``party``, ``line``, ``amount`` ($, + received)."""
        rows = [{"party": p, "line": k, "amount": v}
                for p, book in self.lines.items() for k, v in book.items()]
        return pd.DataFrame(rows, columns=["party", "line", "amount"])

    def period_frame(self, index: pd.Index | None = None) -> pd.DataFrame:
        """The per-period amounts as a frame: one row per period (``index``, default
        0, 1, ...), one column per ``(party, line)``, $ (+ received)."""
        cols = {(p, k): v for p, book in self.per_period.items() for k, v in book.items()}
        frame = pd.DataFrame(cols)
        frame.columns = pd.MultiIndex.from_tuples(list(cols), names=["party", "line"])
        return frame if index is None else frame.set_axis(index[:len(frame)])


def settle_money(scheme: str, system: System, results: Mapping[str, DsoResult],
                 feeder_load: Mapping[str, tuple[np.ndarray, int]],
                 tso: TsoResult, transmission_load: pd.DataFrame,
                 market_dispatch: Mapping[str, DsoResult] | None = None,
                 line_rents: Mapping[str, np.ndarray] | None = None,
                 feeder_q_load: Mapping[str, np.ndarray] | None = None) -> Statements:
    """The statements of one settled operation.

    Parameters
    ----------
    results
        Each feeder's final dispatch (DLMPs, DER output, shed load, interface import).
    feeder_load
        Each feeder's load per period and bus (``(T x n)`` MW, columns in the order of its
        DLMP columns) and its root bus.
    tso
        The TSO's settled redispatch (LMPs, generator dispatch, flows, shed, spill).
    transmission_load
        Transmission loads and shunts per bus (periods x bus_id, MW).
    market_dispatch
        What the market scheduled before any DSO correction (TSO-price schemes: the
        basis of curtailment compensation).
    line_rents
        Each feeder's distribution rent (line flows at the DLMPs of both ends, losses
        included), $ per period, where a distribution market exists.
    feeder_q_load
        Each feeder's reactive load per period and bus (``(T x n)`` MVAr, columns as in
        ``feeder_load``), for the reactive settlement.
    """
    dt = system.profiles.period_hours
    lmp = tso.lmp
    out = Statements()
    # transmission
    served = transmission_load - tso.shed + tso.spill
    out.add("consumers:transmission", "energy at the LMP",
            -(served.to_numpy() * lmp.to_numpy()).sum(axis=1) * dt)
    gen_bus = system.grid.generators.set_index("gen_id").bus_id.reindex(tso.dispatch.columns)
    out.add("generators", "energy at the LMP",
            (tso.dispatch.to_numpy() * lmp[gen_bus.to_numpy()].to_numpy()).sum(axis=1) * dt)
    net = build_dc_network(system.grid)
    f_lmp = lmp[net.bus_ids[net.from_pos]].to_numpy()
    t_lmp = lmp[net.bus_ids[net.to_pos]].to_numpy()
    out.add("tso", "congestion rent",
            (tso.flows.to_numpy() * (t_lmp - f_lmp)).sum(axis=1) * dt)
    # distribution
    tso_price = scheme in TSO_PRICE_SCHEMES
    dso_of = system.dso_of()
    interface = system.feeders.set_index("feeder_id").interface_bus
    ders = system.ders.set_index("der_id")
    rules = system.rules
    # zonal prices weighted by the settled load at each bus, feeder imports included (as
    # the TSO market weighs them)
    if tso_price:
        settled_load = transmission_load.copy()
        for f, r in results.items():
            settled_load[int(interface[f])] += r.interface_p_mw.to_numpy()
        zonal = zonal_prices(system, lmp, settled_load)
    else:
        zonal = {}
    zone = system.grid.buses.set_index("bus_id").zone
    for f, r in results.items():
        dso = f"dso:{dso_of[f]}"
        consumers = f"consumers:{dso_of[f]}"
        p_load, root_bus = feeder_load[f]
        served_f = p_load - r.shed_mw.to_numpy()
        dl = r.dlmp_p.to_numpy()
        iface = lmp[int(interface[f])].to_numpy()
        price = dl if not tso_price else np.repeat(iface[:, None], dl.shape[1], axis=1)
        out.add(consumers, "energy", -(served_f * price).sum(axis=1) * dt)
        d = ders.loc[r.der_p_mw.columns]
        cols = r.dlmp_p.columns.get_indexer(d.bus_id.to_numpy())
        der_p = r.der_p_mw.to_numpy()
        if tso_price:
            size = np.maximum(d.p_max_mw.to_numpy(), -d.p_min_mw.to_numpy())
            is_zonal = settled_zonal(rules, size)
            z = zone.get(int(interface[f]))
            zprice = zonal[z].to_numpy() if z in zonal else iface
            der_price = np.where(is_zonal[None, :], zprice[:, None], iface[:, None])
            # the market operator keeps what a zonal price differs from the nodal one
            out.add("tso", "zonal settlement difference",
                    (der_p * (iface[:, None] - der_price)).sum(axis=1) * dt)
        else:
            der_price = dl[:, cols]
        _by_aggregator(out, d, der_p * der_price * dt, "energy")
        if tso_price:
            # the DSO buys the feeder's losses at the interface price: what the import
            # carries beyond the served load less the DERs' output
            imp = r.interface_p_mw.to_numpy()
            losses = imp - served_f.sum(axis=1) + der_p.sum(axis=1)
            out.add(dso, "network losses", -(losses * iface) * dt)
            sched = (market_dispatch or {}).get(f)
            if sched is not None and rules.curtailment_compensation == "lost_margin":
                planned = sched.der_p_mw.reindex(columns=r.der_p_mw.columns).to_numpy()
                cut = np.clip(planned - der_p, 0.0, None) * (planned > 0)
                margin = np.clip(der_price - d.cost_per_mwh.to_numpy()[None, :], 0.0, None)
                paid = cut * margin * dt
                _by_aggregator(out, d, paid, "curtailment compensation", skip_zero=True)
                out.add(dso, "curtailment compensation", -paid.sum(axis=1))
        else:
            out.add(dso, "distribution rent",
                    np.asarray((line_rents or {}).get(f, np.zeros(len(dl))), dtype=float))
            root = r.dlmp_p.columns.get_loc(int(root_bus))
            p0 = r.interface_p_mw.to_numpy()
            out.add(dso, "interface rent", p0 * (dl[:, root] - iface) * dt)
            if rules.local.reactive_paid and feeder_q_load is not None:
                _settle_reactive(out, r, d, cols, feeder_q_load[f], p_load, dso, consumers,
                                 dt)
    return out


def _settle_reactive(out: Statements, r: DsoResult, d: pd.DataFrame, cols: np.ndarray,
                     q_load: np.ndarray, p_load: np.ndarray, dso: str, consumers: str,
                     dt: float) -> None:
    """Reactive power at the reactive DLMPs: DERs paid for their MVAr, consumers charged
    for theirs (shed load keeps its power factor), the DSO keeping the difference."""
    dq = r.dlmp_q.to_numpy()
    shed_q = r.shed_mw.to_numpy() * np.divide(q_load, p_load, out=np.zeros_like(q_load),
                                              where=p_load > 0)
    consumed = -((q_load - shed_q) * dq).sum(axis=1) * dt
    revenue = r.der_q_mvar.to_numpy() * dq[:, cols] * dt
    out.add(consumers, "reactive energy", consumed)
    _by_aggregator(out, d, revenue, "reactive power")
    out.add(dso, "reactive rent", -consumed - revenue.sum(axis=1))


def _by_aggregator(out: Statements, d: pd.DataFrame, amounts: np.ndarray, line: str,
                   skip_zero: bool = False) -> None:
    """Add each DER's $ per period (``periods x DERs``, columns in the order of ``d``) to
    its aggregator's ``line`` (``aggregator:(none)`` for DERs without one)."""
    for a, cols in pd.Series(range(len(d))).groupby(
            d.aggregator_id.fillna("").to_numpy(), sort=False):
        v = amounts[:, cols.to_numpy()].sum(axis=1)
        if skip_zero and not v.any():
            continue
        out.add(f"aggregator:{a or '(none)'}", line, v)


__all__ = ["TSO_PRICE_SCHEMES", "Statements", "settle_money"]
