"""The coordination schemes other than ``common`` and ``admm`` (see
:mod:`tsodso.coordination`).

Each is a protocol between parties: the TSO clears its market (:class:`TsoMarket`), each
DSO party (:class:`~tsodso.actors.dso.Dso`, holding only its feeder) clears or corrects its
feeder, and everything one party learns from another arrives as a typed message through the
bus (:class:`~tsodso.coordination.protocol.Exchange`). All end in
:func:`~tsodso.coordination.outcome.settle`.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import pandas as pd

from tsodso import progress
from tsodso.actors import MessageBus, Party
from tsodso.actors.aggregator import Aggregator
from tsodso.actors.dso import Dso
from tsodso.actors.tso import Tso, fixed_interface_view
from tsodso.coordination.outcome import Outcome, settle
from tsodso.coordination.protocol import Exchange
from tsodso.dso.opf import DsoResult
from tsodso.errors import TsodsoError
from tsodso.model.system import System
from tsodso.tso import TsoMarket, TsoOptions
from tsodso.tso.offers import der_availability, tso_view


def dsos_of(system: System) -> dict[str, Dso]:
    """Feeder id -> the party of the DSO operating it (:attr:`System.dso_feeders`): one
    :class:`Dso` per DSO, holding only its feeders' part of ``system``."""
    out: dict[str, Dso] = {}
    for name, feeders in system.dso_feeders.items():
        party = Dso.of(system, feeders, name=name)
        out.update(dict.fromkeys(feeders, party))
    return out


def aggregators_of(system: System) -> list[Aggregator]:
    """One aggregator party per aggregator with DERs, each holding only its portfolio."""
    names = dict.fromkeys(str(a) for a in system.ders.aggregator_id.fillna("") if a)
    return [Aggregator.of(system, a) for a in names]


def _market_view(system: System, ex: Exchange, aggregators: list[Aggregator]) -> Any:
    """The TSO's view of the DER offers, with each offer's availability as its aggregator
    sent it (one availability schedule per aggregator)."""
    view = tso_view(system, system.rules)
    e = view.energy
    if len(e.table):
        e.p_max, e.p_min = ex.availability(aggregators, e.table, system.rules)
    return view


# ----------------------------------------------------------------------- tso_only
def run_tso_only(system: System, storage_redispatch: bool = False,
                 der_schedules_to_dso: bool = True,
                 bus: MessageBus | None = None) -> Outcome:
    """DERs bid through aggregators into the TSO market; DSOs are not consulted. Afterwards
    each DSO checks the schedules with AC power flow and corrects its feeder as the
    initial phase allows: it curtails DERs (storage included) below their schedule or sheds
    load, never moving storage to other periods (``storage_redispatch=True``: it may, as a
    DSO operating the storage itself), and tells the TSO what it changed.

    ``der_schedules_to_dso=False`` drops the TSO's schedule message: the DSOs never learn
    the DERs' schedules, cannot correct them, and the feeders run as the market scheduled
    (:meth:`Dso.run_unmanaged`; the outcome's ``delivered_violations`` shows what
    follows)."""
    return _tso_then_dsos("tso_only", system, bus=bus,
                          storage_redispatch=storage_redispatch,
                          der_schedules_to_dso=der_schedules_to_dso)


def _tso_then_dsos(scheme: str, system: System, bus: MessageBus | None = None,
                   ex: Exchange | None = None, started: float | None = None,
                   storage_redispatch: bool = False,
                   der_schedules_to_dso: bool = True) -> Outcome:
    """The TSO market clears the aggregators' offers; each DSO receives its DERs' schedule
    and the interface price, corrects its feeder (:meth:`Dso.correct`), asks aggregators
    to curtail and notifies the TSO of the changed schedules. Without the schedule message
    (``der_schedules_to_dso=False``) the DSOs cannot correct anything."""
    started = time.perf_counter() if started is None else started
    ex = ex or Exchange(system, scheme, bus)
    aggregators = {Party.aggregator(a.name): a for a in aggregators_of(system)}
    view = _market_view(system, ex, list(aggregators.values()))
    tso = TsoMarket(system, TsoOptions(), view=view).solve()
    # the DERs follow the market's schedule (their aggregators received it); the DSOs
    # know it only from the TSO's message
    schedule = (ex.der_schedules(system, tso.der_dispatch) if der_schedules_to_dso
                else tso.der_dispatch)
    lmp = ex.interface_prices(Tso.of(system).interface_prices(tso.lmp))
    dsos = dsos_of(system)
    agg = system.ders.set_index("der_id").aggregator_id
    market, final = {}, {}
    notes = [] if der_schedules_to_dso else [
        "the TSO's DER schedule message was dropped: the DSOs could not correct the "
        "schedules (see delivered_violations)"]
    for f in system.feeder_ids:
        ids = list(system.ders.der_id[system.ders.feeder_id == f])
        if not der_schedules_to_dso:
            res = dsos[f].run_unmanaged(f, schedule, lmp[f])
            market[f] = final[f] = res
            continue
        res = dsos[f].correct(f, schedule, lmp[f], storage_redispatch=storage_redispatch)
        market[f] = _as_scheduled(res, schedule[ids])
        final[f] = res
        shed = float(res.shed_mw.to_numpy().sum() * system.profiles.period_hours)
        cut = _curtailed(res, schedule) * system.profiles.period_hours
        if shed > 1e-6 or cut > 1e-6:
            for party, box in ex.curtailment(f, res.der_p_mw, agg).items():
                if party in aggregators:
                    aggregators[party].receive(box)
            T = len(res.der_p_mw)
            ex.schedule_change(f, schedule[ids].iloc[:T], res.der_p_mw,
                               reason=f"kept feeder {f} within its voltage and thermal "
                                      f"limits: {cut:.3f} MWh of DER schedules curtailed, "
                                      f"{shed:.3f} MWh of load shed")
    return settle(scheme, system, dsos, final, ex, started, market_dispatch=market,
                  priced_at_lmp=system.feeder_ids, notes=notes)


def _curtailed(res: DsoResult, schedule: pd.DataFrame) -> float:
    cols = res.der_p_mw.columns
    T = len(res.der_p_mw)
    return float((schedule.reindex(columns=cols, fill_value=0.0).iloc[:T].to_numpy()
                  - res.der_p_mw.to_numpy()).clip(min=0).sum())


def _as_scheduled(res: DsoResult, schedule: pd.DataFrame) -> DsoResult:
    """The DSO result with DER outputs replaced by the market schedule (no shed, no Q): what
    the feeder would have seen without correction."""
    out = copy.copy(res)
    T = len(res.der_p_mw)
    out.der_p_mw = schedule[res.der_p_mw.columns].iloc[:T].set_axis(res.der_p_mw.index)
    out.der_q_mvar = res.der_q_mvar * 0.0
    out.shed_mw = res.shed_mw * 0.0
    return out


# ------------------------------------------------------------------ centralized
def prequalify(system: System, feeder_id: str, margin: float = 0.9
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DSO prequalification of a feeder's DERs (see :meth:`Dso.prequalify`)."""
    return Dso.of(system, [feeder_id], name=feeder_id).prequalify(feeder_id, margin)


def run_centralized(system: System, margin: float = 0.9, forecast: System | None = None,
                    storage_redispatch: bool = False, der_schedules_to_dso: bool = True,
                    bus: MessageBus | None = None) -> Outcome:
    """The TSO clears DER bids within limits the DSOs prequalified; DSOs then check and
    correct as in ``tso_only`` (curtailment and shedding only, unless
    ``storage_redispatch``; nothing when ``der_schedules_to_dso=False`` drops the TSO's
    schedule message).

    ``margin`` derates feeder line ratings in the prequalification (see :func:`prequalify`).
    ``forecast`` is what the DSOs prequalify on, ahead of the market (default: the system
    itself, a perfect forecast); it must have the same feeders and DERs. The published
    DLMPs are the marginal cost of the operation that follows, with the prequalified limits
    held (they were sent before the market)."""
    started = time.perf_counter()
    ex = Exchange(system, "centralized", bus)
    ahead = system if forecast is None else forecast
    if forecast is not None and (forecast.feeder_ids != system.feeder_ids or list(
            forecast.ders.der_id) != list(system.ders.der_id)):
        raise TsodsoError("centralized: the forecast must have the system's feeders and DERs")
    capped = copy.deepcopy(system)
    for f, party in dsos_of(ahead).items():
        upper, lower = ex.prequalification(f, *party.prequalify(f, margin))
        _apply_limits(capped, upper, lower)
    # the caps only shape the market's offers; the DSOs correct and the settlement runs
    # on the capped DER data (same network, loads and costs)
    return _tso_then_dsos("centralized", capped, ex=ex, started=started,
                          storage_redispatch=storage_redispatch,
                          der_schedules_to_dso=der_schedules_to_dso)


def _apply_limits(system: System, upper: pd.DataFrame, lower: pd.DataFrame) -> None:
    """Cap generation-like DER offers with a per-period availability profile no higher than
    ``upper``; cap storage and EV power at the largest injection (consumption) the feeder
    carried for them in the prequalification OPFs. Residual conflicts are corrected after
    the market, as in ``tso_only``."""
    d = system.ders.set_index("der_id")
    avail = pd.DataFrame(der_availability(system), columns=system.ders.der_id)
    series = system.profiles.series.copy()
    caps = {}
    for der in upper.columns:
        kind = d.at[der, "kind"]
        if kind in ("pv", "wind", "dg", "demand_response"):
            pmax = d.at[der, "p_max_mw"]
            cap = np.minimum(avail[der].to_numpy(), np.maximum(upper[der].to_numpy(), 0))
            name = f"_prequalified:{der}"
            caps[name] = cap / pmax if pmax > 0 else np.zeros(len(cap))
            d.at[der, "profile"] = name
        elif kind in ("storage", "ev"):
            # power the feeder carried for this unit when all DERs pushed at once
            up = upper[der].to_numpy()
            down = lower[der].to_numpy()
            d.at[der, "p_max_mw"] = float(np.clip(up.min(), 0, d.at[der, "p_max_mw"]))
            charging = down[down < 0]
            d.at[der, "p_min_mw"] = float(np.clip(charging.max() if len(charging) else 0.0,
                                                  d.at[der, "p_min_mw"], 0))
    series = pd.concat([series, pd.DataFrame(caps, index=series.index)], axis=1)
    system.ders = d.reset_index()
    system.profiles.series = series


# ----------------------------------------------------------- shared_balancing
def run_shared_balancing(system: System, bus: MessageBus | None = None) -> Outcome:
    """The TSO fixes each interface schedule from the DSO's forecast (uncontrolled DERs,
    losses included); each DSO keeps it with its own resources."""
    started = time.perf_counter()
    ex = Exchange(system, "shared_balancing", bus)
    dsos = dsos_of(system)
    forecasts = ex.interface_schedules(
        {f: dsos[f].forecast_import(f) for f in system.feeder_ids}, to_tso=True)
    schedules = ex.interface_schedules(forecasts, to_tso=False)
    final = {f: dsos[f].keep_schedule(f, schedules[f]) for f in system.feeder_ids}
    # the schedule is the forecast of the feeder's own demand: it follows the demand
    follows = {f: dsos[f].forecast_sensitivity(f) for f in system.feeder_ids}
    return settle("shared_balancing", system, dsos, final, ex, started,
                  schedule_follows=follows)


# --------------------------------------------------------------- hierarchical
def run_hierarchical(system: System, max_iterations: int = 40, damping: float = 0.5,
                     tol_price: float = 0.01, tol_mw: float = 1e-3,
                     bus: MessageBus | None = None) -> Outcome:
    """Price passing: the TSO clears with feeders as fixed loads and sends interface LMPs
    down; DSOs dispatch their DERs against them and send their imports up; repeat (imports
    damped) until prices and quantities agree. ``max_iterations=1`` is the single pass the
    field describes (LMP -> DLMP once)."""
    started = time.perf_counter()
    ex = Exchange(system, "hierarchical", bus)
    fids = system.feeder_ids
    dsos = dsos_of(system)
    # the DSOs' forecasts start the iteration
    imports = pd.DataFrame(ex.interface_schedules(
        {f: dsos[f].forecast_import(f) for f in fids}, to_tso=True))
    tso = Tso.of(system)  # the TSO holds no feeder data here
    market = tso.market_on_imports(imports)
    rows = []
    prices_prev = None
    results: dict[str, DsoResult] = {}
    status = "not converged"
    k = 0
    with progress.task("hierarchical iterations", total=max_iterations) as step:
        for k in range(1, max_iterations + 1):
            cleared = market.solve()
            prices = ex.interface_prices(tso.interface_prices(cleared.lmp), k)
            results = {f: dsos[f].clear_at_price(f, prices[f]) for f in fids}
            new = pd.DataFrame(ex.interface_schedules(
                {f: results[f].interface_p_mw.to_numpy() for f in fids}, to_tso=True,
                iteration=k))
            gap_mw = float(np.abs(new.to_numpy() - imports.to_numpy()).max())
            gap_price = float("inf") if prices_prev is None else max(
                float(np.abs(prices[f] - prices_prev[f]).max()) for f in fids)
            rows.append({"iteration": k, "quantity_residual_mw": gap_mw,
                         "price_residual": gap_price})
            step(info=f"residuals {gap_mw:.2g} MW, {gap_price:.2g} $/MWh")
            prices_prev = prices
            if gap_mw < tol_mw and gap_price < tol_price:
                status = "optimal"
                break
            imports = imports + damping * (new - imports)
            market.set_interface_load(tso.imports_load(imports))
    notes = [] if status == "optimal" else [
        f"did not converge in {max_iterations} iterations (last residuals: "
        f"{rows[-1]['quantity_residual_mw']:.4g} MW, {rows[-1]['price_residual']:.4g} $/MWh)"]
    return settle("hierarchical", system, dsos, results, ex, started, iterations=k,
                  residuals=pd.DataFrame(rows), notes=notes, status=status,
                  priced_at_lmp=fids)


# ----------------------------------------------------------------------- local
def run_local(system: System, levels: tuple[float, ...] = (0.5, 0.8, 1.25, 2.0),
              bus: MessageBus | None = None) -> Outcome:
    """DSOs first clear local markets against a price forecast (their congestion and voltage
    needs come first), then offer what flexibility remains to the TSO as an interface bid
    curve; the TSO clears those bids and the DSOs keep the resulting interface schedules."""
    started = time.perf_counter()
    ex = Exchange(system, "local", bus)
    fids = system.feeder_ids
    dsos = dsos_of(system)
    tso = Tso.of(system)  # the TSO holds no feeder data here
    forecast = tso.market_on_imports(pd.DataFrame(ex.interface_schedules(
        {f: dsos[f].forecast_import(f) for f in fids}, to_tso=True))).solve()
    prices = ex.interface_prices(tso.interface_prices(forecast.lmp))
    base_import, steps = {}, {}
    for f in fids:
        base_import[f], curve = dsos[f].price_response(f, prices[f], levels)
        steps[f] = _offered_steps(ex, system, f, prices[f], base_import[f], curve)
    view = fixed_interface_view(tso.system, pd.DataFrame(base_import))
    view = _with_interface_bids(tso.system, view, steps)
    accepted = TsoMarket(tso.system, TsoOptions(), view=view).solve().offers
    schedules = {}
    for f in fids:
        cols = [c for c in accepted.columns if c.startswith(f"iface:{f}:")]
        schedules[f] = base_import[f] - accepted[cols].to_numpy().sum(axis=1)
    schedules = ex.interface_schedules(schedules, to_tso=False)
    final = {f: dsos[f].keep_schedule(f, schedules[f]) for f in fids}
    # the schedule starts from the DSO's own clearing against the interface price (its base
    # import), so one more MW of demand is served as that clearing serves it: the
    # published DLMPs are those of the feeder cleared against the settled interface LMP
    return settle("local", system, dsos, final, ex, started, priced_at_lmp=fids)


def _offered_steps(ex: Exchange, system: System, feeder_id: str, price: np.ndarray,
                   base: np.ndarray, curve: list[tuple[float, np.ndarray]]
                   ) -> list[tuple[str, float, np.ndarray, np.ndarray]]:
    """The feeder's interface response as offers sent to the TSO: above the forecast price,
    import reductions offered at that price; below it, import increases bid at that price.
    The offer price is the level times the feeder's mean forecast price over the horizon
    (one price per offer)."""
    steps = []
    prev_up = np.zeros_like(base)
    prev_dn = np.zeros_like(base)
    mean = float(np.mean(price))
    for level, q in sorted(curve):
        delta = base - q  # > 0: the feeder imports less at this price
        if level > 1:
            size = np.maximum(delta - prev_up, 0)
            prev_up = np.maximum(prev_up, delta)
            steps.append((f"iface:{feeder_id}:up{level:g}", level * mean, size,
                          np.zeros_like(size)))
        else:
            size = np.maximum(-delta - prev_dn, 0)
            prev_dn = np.maximum(prev_dn, -delta)
            steps.append((f"iface:{feeder_id}:dn{level:g}", level * mean,
                          np.zeros_like(size), size))
    interface = int(system.feeders.set_index("feeder_id").interface_bus[feeder_id])
    return ex.interface_offers(feeder_id, interface, steps)


def _with_interface_bids(system: System, view: Any,
                         steps: dict[str, list[tuple[str, float, np.ndarray, np.ndarray]]]
                         ) -> Any:
    """Turn each feeder's interface offers (as the TSO received them) into TSO energy
    offers at its interface bus: import reductions inject, import increases consume."""
    bus = system.feeders.set_index("feeder_id").interface_bus
    dso_of = system.dso_of()
    rows, pmax, pmin = [], [], []
    for f, offers in steps.items():
        for offer_id, price, up, down in offers:
            rows.append((offer_id, f"dso:{dso_of[f]}", int(bus[f]), "interface", price,
                         np.inf))
            pmax.append(up)
            pmin.append(-down)
    table = pd.DataFrame(rows, columns=["offer_id", "aggregator_id", "bus_id", "kind",
                                        "price_per_mwh", "budget_mwh"])
    view.energy.table = table
    view.energy.p_max = np.column_stack(pmax) if pmax else np.zeros((system.n_periods, 0))
    view.energy.p_min = np.column_stack(pmin) if pmin else np.zeros((system.n_periods, 0))
    view.members = pd.DataFrame(columns=["der_id", "offer_id", "share"])
    return view


__all__ = ["aggregators_of", "dsos_of", "prequalify",
           "run_centralized", "run_hierarchical", "run_local", "run_shared_balancing",
           "run_tso_only"]
