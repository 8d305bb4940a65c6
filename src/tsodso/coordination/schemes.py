"""The coordination schemes other than ``common`` (see :mod:`tsodso.coordination`).

Each is a protocol: the TSO and the DSOs own their models (:class:`TsoMarket`,
:class:`DsoOpf`) and exchange only messages (logged with their size). All end in
:func:`~tsodso.coordination.outcome.settle`.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import numpy as np
import pandas as pd

from tsodso.coordination.messages import MessageLog
from tsodso.coordination.outcome import Outcome, fixed_interface_view, settle
from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions, DsoResult
from tsodso.model.system import System
from tsodso.powerflow import FeederPowerFlow, der_injections
from tsodso.tso import TsoMarket, TsoOptions
from tsodso.tso.offers import der_availability, tso_view, uncontrolled_dispatch

DSO_OPTIONS = DsoOptions(ac_check=False)


def _interface_lmp(system: System, lmp: pd.DataFrame) -> dict[str, np.ndarray]:
    bus = system.feeders.set_index("feeder_id").interface_bus
    return {f: lmp[int(bus[f])].to_numpy() for f in system.feeder_ids}


def forecast_imports(system: System) -> pd.DataFrame:
    """Each feeder's import (periods x feeder_id, MW) when nobody dispatches its DERs: the
    DSO's forecast, from an AC power flow of loads and uncontrolled DER output."""
    base = uncontrolled_dispatch(system)
    out = {}
    for f in system.feeder_ids:
        ids = system.ders.der_id[system.ders.feeder_id == f]
        inj_p, _ = der_injections(system, f, base[ids])
        pf = FeederPowerFlow(system.feeder(f)).run_feeder_loads(inj_p, profiles=system.profiles)
        out[f] = pf.substation_p_mw.to_numpy()
    return pd.DataFrame(out)


def restrict_to_schedule(op: DsoOpf, schedule: pd.DataFrame) -> None:
    """Hold a feeder's DERs to a market schedule (periods x der_id, MW): generation-like DERs
    may only be curtailed below it and EV charging only reduced (unmet energy is priced at
    the value of lost load); storage stays free for the DSO to redispatch at its cost. The
    DSO corrects its feeder within that room, or sheds load at value of lost load."""
    T = op.T
    d = op.ders
    sched = schedule.reindex(columns=d.der_id).to_numpy()[:T]
    m = op.model
    if len(op.g_idx):
        lb, ub = op.pg_bounds
        new_ub = np.minimum(ub, np.maximum(sched[:, op.g_idx], 0.0).ravel())
        m.set_bounds(op.pg, lb=np.minimum(lb, new_ub), ub=new_ub)
    if len(op.v_idx):
        c = np.maximum(-sched[:, op.v_idx], 0).ravel()
        m.set_bounds(op.evc, lb=np.zeros_like(c), ub=c)


# ----------------------------------------------------------------------- tso_only
def run_tso_only(system: System) -> Outcome:
    """DERs bid through aggregators into the TSO market; DSOs are not consulted. Afterwards
    each DSO checks the schedules with AC power flow and corrects its feeder."""
    started = time.perf_counter()
    log = MessageLog()
    view = tso_view(system, system.rules)
    log.send("bid", "aggregators", "tso", view.energy.p_max)
    tso = TsoMarket(system, TsoOptions(), view=view).solve()
    schedule = tso.der_dispatch
    log.send("dispatch", "tso", "aggregators", schedule)
    lmp = _interface_lmp(system, tso.lmp)
    ops, market, final = {}, {}, {}
    for f in system.feeder_ids:
        op = DsoOpf(system, f, DSO_OPTIONS, Boundary(price=lmp[f]))
        ops[f] = op
        restrict_to_schedule(op, schedule)
        res = op.solve()
        market[f] = _as_scheduled(op, res, schedule)
        final[f] = res
        if res.shed_mw.to_numpy().sum() > 1e-6 or _curtailed(op, res, schedule) > 1e-6:
            log.send("curtailment_request", f"dso:{f}", "aggregators", res.der_p_mw)
    return settle("tso_only", system, ops, final, log, started, market_dispatch=market)


def _curtailed(op: DsoOpf, res: DsoResult, schedule: pd.DataFrame) -> float:
    cols = res.der_p_mw.columns
    return float((schedule[cols].iloc[: op.T].to_numpy() - res.der_p_mw.to_numpy())
                 .clip(min=0).sum())


def _as_scheduled(op: DsoOpf, res: DsoResult, schedule: pd.DataFrame) -> DsoResult:
    """The DSO result with DER outputs replaced by the market schedule (no shed, no Q): what
    the feeder would have seen without correction."""
    out = copy.copy(res)
    out.der_p_mw = schedule[res.der_p_mw.columns].iloc[: op.T].set_axis(res.der_p_mw.index)
    out.der_q_mvar = res.der_q_mvar * 0.0
    out.shed_mw = res.shed_mw * 0.0
    return out


# ------------------------------------------------------------------ centralized
def prequalify(system: System, feeder_id: str, margin: float = 0.9
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """DSO prequalification: per-DER upper and lower limits (periods x der_id, MW) that the
    feeder carries with every DER at its limit at once. Two LinDistFlow OPFs (energy limits
    of storage and EVs lifted, so only the network binds): one maximises all injections
    (generation, discharge) with nothing charging, one maximises all consumption
    (charging) with nothing generating. Voltages and flows are monotone in the injections
    there, so any dispatch between the two envelopes respects the grid (to LinDistFlow's
    approximation, so ratings are derated by ``margin`` to cover losses and the AC
    current; the AC check after the market reports any residue)."""
    T = system.n_periods
    system = copy.copy(system)
    system.feeder_lines = system.feeder_lines.assign(
        rating_mva=system.feeder_lines.rating_mva * margin)
    d = system.ders[system.ders.feeder_id == feeder_id]
    limits = []
    for sign in (1.0, -1.0):
        op = DsoOpf(system, feeder_id, DsoOptions(formulation="lindist", ac_check=False,
                                                  decompose=False, allow_shed=False),
                    Boundary(price=np.zeros(T)))
        m = op.model
        lb, ub = op.pg_bounds
        if sign > 0:
            m.set_cost(op.pg, np.full(len(op.pg), -op.dt))
            m.set_cost(op.dis, np.full(len(op.dis), -op.dt))
            m.set_bounds(op.ch, ub=np.zeros(len(op.ch)))
            m.set_bounds(op.evc, ub=np.zeros(len(op.evc)))
        else:
            m.set_bounds(op.pg, lb=np.zeros_like(lb), ub=np.minimum(lb, 0) * 0)
            m.set_bounds(op.dis, ub=np.zeros(len(op.dis)))
            m.set_cost(op.ch, np.full(len(op.ch), -op.dt))
            m.set_cost(op.evc, np.full(len(op.evc), -op.dt))
        inf = np.full(len(op.e), np.inf)
        m.set_bounds(op.e, lb=-inf, ub=inf)
        m.set_bounds(op.eve, lb=-np.full(len(op.eve), np.inf), ub=np.full(len(op.eve), np.inf))
        m.set_cost(op.ev_short, np.zeros(len(op.ev_short)))
        res = op.solve()
        limits.append(res.der_p_mw[d.der_id])
    return limits[0], limits[1]


def run_centralized(system: System) -> Outcome:
    """The TSO clears DER bids within limits the DSOs prequalified; DSOs then check and
    correct as in ``tso_only``."""
    started = time.perf_counter()
    log = MessageLog()
    capped = copy.deepcopy(system)
    for f in system.feeder_ids:
        upper, lower = prequalify(system, f)
        log.send("prequalification_limit", f"dso:{f}", "tso", {"up": upper, "down": lower})
        _apply_limits(capped, upper, lower)
    result = run_tso_only(capped)
    # settle against the original system (the caps only shaped the market's offers)
    result.scheme = "centralized"
    result.messages = _merge_logs(log, result.messages)
    result.wall_s = time.perf_counter() - started
    return result


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


def _merge_logs(log: MessageLog, summary: pd.DataFrame) -> pd.DataFrame:
    both = pd.concat([log.summary(), summary])
    return both.groupby(level=0).sum()


# ----------------------------------------------------------- shared_balancing
def run_shared_balancing(system: System) -> Outcome:
    """The TSO fixes each interface schedule from the DSO's forecast (uncontrolled DERs,
    losses included); each DSO keeps it with its own resources."""
    started = time.perf_counter()
    log = MessageLog()
    ops, final = {}, {}
    schedules = forecast_imports(system)
    for f in system.feeder_ids:
        log.send("availability_schedule", f"dso:{f}", "tso", schedules[f])
    for f in system.feeder_ids:
        sched = log.send("interface_schedule", "tso", f"dso:{f}", schedules[f].to_numpy())
        op = DsoOpf(system, f, DSO_OPTIONS, Boundary(schedule_mw=sched))
        ops[f] = op
        final[f] = op.solve()
    return settle("shared_balancing", system, ops, final, log, started)


# --------------------------------------------------------------- hierarchical
def run_hierarchical(system: System, max_iterations: int = 40, damping: float = 0.5,
                     tol_price: float = 0.01, tol_mw: float = 1e-3) -> Outcome:
    """Price passing: the TSO clears with feeders as fixed loads and sends interface LMPs
    down; DSOs dispatch their DERs against them and send their imports up; repeat (imports
    damped) until prices and quantities agree."""
    started = time.perf_counter()
    log = MessageLog()
    T = system.n_periods
    fids = system.feeder_ids
    imports = forecast_imports(system)  # the DSOs' forecasts start the iteration
    market = TsoMarket(system, TsoOptions(), view=fixed_interface_view(system, imports))
    ops = {f: DsoOpf(system, f, DSO_OPTIONS, Boundary(price=np.zeros(T))) for f in fids}
    rows = []
    prices_prev = None
    results: dict[str, DsoResult] = {}
    status = "not converged"
    k = 0
    for k in range(1, max_iterations + 1):
        tso = market.solve()
        prices = _interface_lmp(system, tso.lmp)
        for f in fids:
            ops[f].set_price(log.send("price", "tso", f"dso:{f}", prices[f], k))
            results[f] = ops[f].solve()
        new = pd.DataFrame({f: results[f].interface_p_mw.to_numpy() for f in fids})
        for f in fids:
            log.send("interface_schedule", f"dso:{f}", "tso", new[f], k)
        gap_mw = float(np.abs(new.to_numpy() - imports.to_numpy()).max())
        gap_price = float("inf") if prices_prev is None else max(
            float(np.abs(prices[f] - prices_prev[f]).max()) for f in fids)
        rows.append({"iteration": k, "quantity_residual_mw": gap_mw,
                     "price_residual": gap_price})
        prices_prev = prices
        if gap_mw < tol_mw and gap_price < tol_price:
            status = "optimal"
            break
        imports = imports + damping * (new - imports)
        market.set_interface_load(fixed_interface_view(system, imports).fixed_load)
    notes = [] if status == "optimal" else [
        f"did not converge in {max_iterations} iterations (last residuals: "
        f"{rows[-1]['quantity_residual_mw']:.4g} MW, {rows[-1]['price_residual']:.4g} $/MWh)"]
    return settle("hierarchical", system, ops, results, log, started, iterations=k,
                  residuals=pd.DataFrame(rows), notes=notes, status=status)


# ----------------------------------------------------------------------- local
def run_local(system: System, levels: tuple[float, ...] = (0.5, 0.8, 1.25, 2.0)) -> Outcome:
    """DSOs first clear local markets against a price forecast (their congestion and voltage
    needs come first), then offer what flexibility remains to the TSO as an interface bid
    curve; the TSO clears those bids and the DSOs keep the resulting interface schedules."""
    started = time.perf_counter()
    log = MessageLog()
    fids = system.feeder_ids
    forecast = run_tso_forecast(system)
    prices = _interface_lmp(system, forecast.lmp)
    base_import, steps = {}, {}
    for f in fids:
        op = DsoOpf(system, f, DsoOptions(ac_check=False, decompose=False),
                    Boundary(price=log.send("price", "tso", f"dso:{f}", prices[f])))
        base = op.solve().interface_p_mw.to_numpy()
        base_import[f] = base
        curve = []
        for level in levels:  # the feeder's interface response to other prices
            op.set_price(prices[f] * level)
            curve.append((level, op.solve().interface_p_mw.to_numpy()))
        steps[f] = curve
        log.send("bid", f"dso:{f}", "tso", {str(lv): q for lv, q in curve})
    view = fixed_interface_view(system, pd.DataFrame(base_import))
    view = _with_interface_bids(system, view, prices, base_import, steps)
    tso = TsoMarket(system, TsoOptions(), view=view).solve()
    accepted = tso.offers
    ops, final = {}, {}
    for f in fids:
        cols = [c for c in accepted.columns if c.startswith(f"iface:{f}:")]
        sched = base_import[f] - accepted[cols].to_numpy().sum(axis=1)
        log.send("interface_schedule", "tso", f"dso:{f}", sched)
        op = DsoOpf(system, f, DSO_OPTIONS, Boundary(schedule_mw=sched))
        ops[f] = op
        final[f] = op.solve()
    return settle("local", system, ops, final, log, started)


def run_tso_forecast(system: System) -> Any:
    """TSO clearing with feeders at their uncontrolled forecast (for price forecasts)."""
    view = fixed_interface_view(system, forecast_imports(system))
    return TsoMarket(system, TsoOptions(), view=view).solve()


def _with_interface_bids(system: System, view: Any, prices: dict[str, np.ndarray],
                         base: dict[str, np.ndarray], steps: dict[str, list]) -> Any:
    """Turn each feeder's interface response into TSO energy offers at its interface bus:
    above the forecast price, import reductions offered at that price; below it, import
    increases bid at that price (negative injections)."""
    bus = system.feeders.set_index("feeder_id").interface_bus
    rows, pmax, pmin = [], [], []
    for f, curve in steps.items():
        prev_up = np.zeros_like(base[f])
        prev_dn = np.zeros_like(base[f])
        for level, q in sorted(curve):
            delta = base[f] - q  # > 0: the feeder imports less at this price
            if level > 1:
                size = np.maximum(delta - prev_up, 0)
                prev_up = np.maximum(prev_up, delta)
                rows.append((f"iface:{f}:up{level:g}", f"dso:{f}", int(bus[f]), "interface",
                             level, np.inf))
                pmax.append(size)
                pmin.append(np.zeros_like(size))
            else:
                size = np.maximum(-delta - prev_dn, 0)
                prev_dn = np.maximum(prev_dn, -delta)
                rows.append((f"iface:{f}:dn{level:g}", f"dso:{f}", int(bus[f]), "interface",
                             level, np.inf))
                pmax.append(np.zeros_like(size))
                pmin.append(-size)
    table = pd.DataFrame(rows, columns=["offer_id", "aggregator_id", "bus_id", "kind",
                                        "price_level", "budget_mwh"])
    # the offer price is the level times the feeder's forecast price, per period: use the
    # mean over the horizon for the TSO's single price per offer
    table["price_per_mwh"] = [lvl * float(np.mean(prices[oid.split(":")[1]]))
                              for oid, lvl in zip(table.offer_id, table.price_level,
                                                  strict=True)]
    view.energy.table = table.drop(columns="price_level")
    view.energy.p_max = np.column_stack(pmax) if pmax else np.zeros((system.n_periods, 0))
    view.energy.p_min = np.column_stack(pmin) if pmin else np.zeros((system.n_periods, 0))
    view.members = pd.DataFrame(columns=["der_id", "offer_id", "share"])
    return view


__all__ = ["prequalify", "restrict_to_schedule", "run_centralized", "run_hierarchical",
           "run_local", "run_shared_balancing", "run_tso_only", "forecast_imports"]
