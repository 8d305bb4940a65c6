"""The :class:`Outcome` every coordination scheme returns, and how it is settled.

All schemes end the same way, so that they are compared on operation that respects both
grids: each DSO's final feeder dispatch (after any correction) fixes the power drawn at
every interface; the TSO then redispatches its generators around those interface flows
(``TsoMarket`` with the imports as fixed load). Costs are production costs, the same
functions the joint ``common`` problem minimises: transmission generators, DER offers,
priced load shedding and unmet EV energy.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsodso.actors.dso import Dso
from tsodso.actors.tso import Tso
from tsodso.coordination.protocol import Exchange
from tsodso.coordination.settlement import TSO_PRICE_SCHEMES, settle_money
from tsodso.dso.ac_check import dispatch_power_flow
from tsodso.dso.inputs import FeederInputs
from tsodso.dso.opf import DsoOpf, DsoResult
from tsodso.model.system import System
from tsodso.rules import admission
from tsodso.shortfalls import Shortfalls
from tsodso.tso import TsoResult
from tsodso.tso.offers import der_availability, der_offer_cost


@dataclass
class Outcome:
    """Result of one coordination scheme on one system (identical fields for all schemes).

    Costs in $ over the horizon; prices in $/MWh; energies in MWh; frames indexed by period.
    ``violations`` lists what an AC power flow of the market's dispatch finds beyond 1e-4 pu
    of a voltage limit or 0.1 % of a thermal rating (smaller excesses are solver tolerance).
    """

    scheme: str
    status: str
    total_cost: float
    tso_cost: float
    dso_costs: dict[str, float]
    der_revenues: dict[str, float]
    consumer_payments: float
    generator_revenues: float
    rents: dict[str, float]
    interface_lmp: pd.DataFrame
    dlmp: dict[str, pd.DataFrame]
    interface_schedules: pd.DataFrame
    violations: pd.DataFrame
    curtailed_mwh: float
    messages: pd.DataFrame
    iterations: int
    wall_s: float
    energy: dict[str, float]
    residuals: pd.DataFrame = field(default_factory=pd.DataFrame)
    notes: list[str] = field(default_factory=list)
    shortfalls: Shortfalls = field(default_factory=Shortfalls)
    #: reactive-power DLMPs per feeder, $/MVArh (periods x bus)
    dlmp_q: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: the parts of each feeder's DLMPs, P and Q: feeder -> "p:energy", "p:loss", ...,
    #: "q:voltage" -> (periods x bus), $/MWh or $/MVArh; the parts sum to the DLMP
    dlmp_components: dict[str, dict[str, pd.DataFrame]] = field(default_factory=dict)
    #: LMPs of every transmission bus in the settled redispatch, $/MWh (periods x bus_id)
    lmp: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: voltage magnitudes per feeder from the AC power flow whose violations are reported
    #: (the market dispatch), pu (periods x bus_id); NaN where it did not converge
    voltages: dict[str, pd.DataFrame] = field(default_factory=dict)
    #: final DER output, MW, injection positive (periods x der_id)
    der_dispatch: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: final DER reactive power, MVAr, injection positive (periods x der_id)
    der_reactive: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: settlement statements: party -> line item -> $ over the horizon, positive when the
    #: party receives money (see :mod:`tsodso.coordination.settlement`); they sum to zero
    statements: dict[str, dict[str, float]] = field(default_factory=dict)
    #: the same statements per period: one row per period, one column per (party, line), $
    statements_by_period: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: DERs a market's rules kept out: ``der_id``, ``aggregator_id``, ``kind``,
    #: ``feeder_id``, ``capacity_mw``, ``market`` ("tso" or "dso"), ``reason``,
    #: ``price_taker`` (no market admits it), one row per DER and market
    kept_out: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: what an AC power flow finds in the dispatch the feeders delivered (after any DSO
    #: correction; ``violations`` is of the market's schedule before it), same columns
    delivered_violations: pd.DataFrame = field(default_factory=pd.DataFrame)
    #: the voltage tools the DSOs had (:func:`dso_tools`): tap changers, capacitor banks,
    #: inverter reactive power and how it is paid
    dso_tools: dict[str, Any] = field(default_factory=dict)

    @property
    def plot(self) -> Any:
        """Charts of this outcome (``outcome.plot.dlmp(feeder_id)``, ...: see
        :class:`tsodso.report.plotting.OutcomePlots`; needs the plot extra)."""
        from tsodso.report.plotting import OutcomePlots

        return OutcomePlots(self)

    def violation_summary(self) -> dict[str, Any]:
        """Counts of the market dispatch's AC violations (bus x period for voltage, line or
        substation x period for thermal) and of feeder-periods whose AC power flow did not
        converge (``not_converged``: their violations are unknown, never counted as 0)."""
        v = self.violations
        failed = v[v.kind == "not_converged"] if len(v) else v
        v = v[v.kind != "not_converged"] if len(v) else v
        volt = v[v.element == "bus"] if len(v) else v
        worst = None
        if len(volt):
            dev = np.abs(volt.value - volt.limit)
            worst = float(volt.value.to_numpy()[int(np.argmax(dev.to_numpy()))])
        return {
            "voltage": int(len(volt)),
            "thermal": int(len(v[v.element.isin(["line", "substation"])])) if len(v) else 0,
            "worst_voltage_pu": worst,
            "not_converged": int(len(failed)),
            "periods": sorted({int(p) for p in v.period}) if len(v) else [],
        }

    def to_frame(self) -> pd.DataFrame:
        """One row of scalar results (join several schemes' rows for a comparison)."""
        row = {
            "scheme": self.scheme, "status": self.status, "total_cost": self.total_cost,
            "tso_cost": self.tso_cost, "dso_cost": sum(self.dso_costs.values()),
            "consumer_payments": self.consumer_payments,
            "der_revenues": sum(self.der_revenues.values()),
            "generator_revenues": self.generator_revenues,
            **{f"rent_{k}": v for k, v in self.rents.items()},
            "curtailed_mwh": self.curtailed_mwh, "iterations": self.iterations,
            "messages": int(self.messages["count"].sum()) if len(self.messages) else 0,
            "message_bytes": int(self.messages["bytes"].sum()) if len(self.messages) else 0,
            "wall_s": self.wall_s,
            **{f"violations_{k}": v for k, v in self.violation_summary().items()
               if k != "periods"},
            **{f"energy_{k}": v for k, v in self.energy.items()},
            "shed_mwh": self.shortfalls.shed_mwh, "spill_mwh": self.shortfalls.spill_mwh,
            "unmet_ev_mwh": self.shortfalls.unmet_ev_mwh,
            "reserve_shortfall_mwh": self.shortfalls.reserve_shortfall_mwh,
            "slack_cost": self.shortfalls.slack_cost,
            "soc_gap_max": self.shortfalls.soc_gap_max,
            "pf_not_converged": self.shortfalls.pf_not_converged,
        }
        return pd.DataFrame([row]).set_index("scheme")

    def to_parquet(self, folder: str | Path) -> Path:
        """Write every field of the outcome into ``folder/<scheme>`` (tables as Parquet, the
        rest as JSON: :func:`~tsodso.coordination.run_folder.write_outcome`, read back with
        ``read_outcome``) and its summary row as ``summary.parquet``."""
        from tsodso.coordination.run_folder import write_outcome

        path = write_outcome(self, Path(folder) / self.scheme)
        self.to_frame().to_parquet(path / "summary.parquet")
        return path

    def balance_residuals(self) -> dict[str, float]:
        """Energy in - (energy out + losses) and payments - (revenues + rents); both ~0."""
        e = self.energy
        energy = e["generation"] + e["der_injection"] + e["shed"] - (
            e["load"] + e["der_consumption"] + e["feeder_losses"])
        money = self.consumer_payments - (self.generator_revenues
                                          + sum(self.der_revenues.values())
                                          + sum(self.rents.values()))
        return {"energy_mwh": float(energy), "payments": float(money)}


def der_costs(system: System, result: DsoResult) -> float:
    """Production cost of a feeder's final dispatch: DER offers (positive output at their
    offer: :func:`~tsodso.tso.offers.der_offer_cost`), shed load, unmet EV energy and
    price-takers' spilled output at value of lost load, and tap changes, $."""
    dt = system.profiles.period_hours
    cost = der_offer_cost(system, result.der_p_mw).sum() * dt
    voll = system.rules.value_of_lost_load
    sf = result.shortfalls  # price-takers' output spilled, storage short of its target
    return float(cost + voll * (dt * result.shed_mw.to_numpy().sum() + result.ev_shortfall_mwh
                                + sf.spill_mwh + sf.unmet_storage_mwh) + result.tap_cost)


def settle(scheme: str, system: System, ops: Mapping[str, DsoOpf | FeederInputs | Dso],
           results: dict[str, DsoResult], ex: Exchange, started: float,
           iterations: int = 1, market_dispatch: dict[str, DsoResult] | None = None,
           residuals: pd.DataFrame | None = None, notes: list[str] | None = None,
           status: str = "optimal", tso_result: TsoResult | None = None,
           schedule_follows: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]] | None = None,
           priced_at_lmp: list[str] | None = None) -> Outcome:
    """Settle final feeder dispatches into an :class:`Outcome` (see module docstring).

    ``market_dispatch`` is what the market scheduled before any DSO correction; its AC
    power flow gives the reported violations (default: the final dispatch).

    ``schedule_follows`` names feeders held to an interface schedule that the scheme formed
    from the feeder's own demand (a forecast, a local clearing), with ``dS/dP_j`` and
    ``dS/dQ_j`` (periods x bus): one more MW of demand at bus ``j`` moves the schedule by
    ``dS/dP_j``, which the TSO serves at its interface LMP instead of the DSO at its internal
    price ``mu`` (the schedule's dual, not unique where nothing in the feeder can move). The
    published DLMPs are then the marginal cost of the whole scheme::

        DLMP_j = DLMP_j(held schedule) + (LMP_interface - mu) * dS/dP_j

    (the energy part moves by ``LMP - mu``, the rest into the loss part), and the same for Q.

    ``priced_at_lmp`` names feeders cleared against an interface price other than the one
    the settlement finds (``tso_only``, ``centralized``: the market's LMP, before the DSO's
    correction moved the imports) or whose schedule is the DSO's own clearing against a
    price (``local``): one more MW of demand is served as that clearing would serve it, so
    their published DLMPs are those of the feeder cleared against the settled interface LMP
    (same DER room); the dispatch settled is the scheme's own.

    The outcome's ``kept_out`` lists the DERs a market's rules kept out, with the reason
    (the TSO market's exclusions, and the DSO market's in schemes that have one; a DER no
    market admits is a price-taker).
    """
    dt = system.profiles.period_hours
    fids = list(results)
    parties = ops
    ops = {f: _feeder_data(system, f, ops[f]) for f in fids}
    T = len(next(iter(results.values())).interface_p_mw) if results else system.n_periods
    # the DSOs send their final imports; the TSO redispatches around what it received
    imports = pd.DataFrame(ex.interface_schedules(
        {f: results[f].interface_p_mw.to_numpy() for f in fids}, to_tso=True))
    tso = Tso.of(system)
    if tso_result is None:  # the TSO redispatches on its own part: it holds no feeder data
        tso_result = tso.redispatch(imports, periods=T)
    lmp = tso_result.lmp
    iface_lmp = pd.DataFrame(tso.interface_prices(lmp, fids), index=lmp.index)
    results = dict(results)
    for f, (sens_p, sens_q) in (schedule_follows or {}).items():
        results[f] = _repriced(results[f], iface_lmp[f].to_numpy(), sens_p, sens_q)
    for f in priced_at_lmp or []:
        held = parties[f]
        if not isinstance(held, Dso):
            raise TypeError(f"settle: feeder {f} is re-priced by its DSO party, got "
                            f"{type(held).__name__}")
        results[f] = _priced_view(held, f, results[f], iface_lmp[f].to_numpy())
    # costs
    tso_cost = float(tso_result.objective)
    dso_costs = {f: der_costs(system, results[f]) for f in fids}
    # violations of what the market scheduled, and of what the feeders delivered
    voltages: dict[str, pd.DataFrame] = {}
    violations = _ac_violations(ops, market_dispatch or results, voltages)
    delivered = (violations if market_dispatch is None
                 else _ac_violations(ops, {f: results[f] for f in fids}))
    # Energy
    g = system.grid
    lmp = tso_result.lmp
    loads = g.loads[g.loads.in_service & g.loads.bus_id.isin(lmp.columns)]
    tx = pd.DataFrame(0.0, index=lmp.index, columns=lmp.columns)
    tx_p = system.profiles.multipliers(loads.profile)[:T] * loads.p_mw.to_numpy()
    np.add.at(tx.to_numpy().T, tx.columns.get_indexer(loads.bus_id), tx_p.T)
    tx += g.buses.set_index("bus_id").gs_mw.reindex(lmp.columns).to_numpy()
    energy = {"generation": float(tso_result.dispatch.to_numpy().sum() * dt),
              "der_injection": 0.0, "der_consumption": 0.0,
              "load": float(tx.to_numpy().sum() * dt), "feeder_losses": 0.0,
              "shed": float((tso_result.shed - tso_result.spill).to_numpy().sum() * dt)}
    renewable = system.ders.kind.isin(["pv", "wind"]).to_numpy()
    der_rows = system.ders.groupby("feeder_id", sort=False).indices
    avail = der_availability(system)[:T]
    curtailed = 0.0
    feeder_load: dict[str, tuple[np.ndarray, int]] = {}
    feeder_q_load: dict[str, np.ndarray] = {}
    line_rents: dict[str, np.ndarray] = {}
    for f in fids:
        r, op = results[f], ops[f]
        dl = r.dlmp_p.to_numpy()
        order = np.argsort(op.tree.bus_ids, kind="stable")
        feeder_load[f] = (op.p_load[:, order], int(op.tree.bus_ids[0]))
        feeder_q_load[f] = op.q_load[:, order]
        energy["load"] += float(op.p_load.sum() * dt)
        energy["shed"] += float(r.shed_mw.to_numpy().sum() * dt)
        energy["feeder_losses"] += float(r.losses_mw.sum() * dt)
        energy["der_injection"] += float(np.maximum(r.der_p_mw.to_numpy(), 0).sum() * dt)
        energy["der_consumption"] += float(np.maximum(-r.der_p_mw.to_numpy(), 0).sum() * dt)
        tr = op.tree
        pos = r.dlmp_p.columns
        child = pos.get_indexer(tr.bus_ids[1:])
        parent = pos.get_indexer(tr.bus_ids[tr.parent[1:]])
        p_line = r.flow_p_mw[tr.line_ids[1:]].to_numpy()
        # line flows priced at both ends, with the model's own line losses (gap included)
        line_rents[f] = ((p_line - _line_losses(op, r)) * dl[:, child]
                         - p_line * dl[:, parent]).sum(axis=1) * dt
        rows = der_rows.get(f, np.zeros(0, dtype=int))
        ren = rows[renewable[rows]]
        ids = system.ders.der_id.to_numpy()[ren]
        curtailed += float((avail[:, ren] - r.der_p_mw[ids].to_numpy()).clip(min=0).sum() * dt)
    # Money: one statement per party (coordination.settlement), and its totals
    statements = settle_money(scheme, system, results, feeder_load, tso_result, tx,
                              market_dispatch=market_dispatch, line_rents=line_rents,
                              feeder_q_load=feeder_q_load)
    book = statements.lines
    ex.statements(book)  # each party receives its own
    payments = -sum(statements.total(p) for p in book if p.startswith("consumers:"))
    gen_rev = statements.total("generators")
    der_rev = {p.split(":", 1)[1]: statements.total(p) for p in book
               if p.startswith("aggregator:")}
    dso_lines = [b for p, b in book.items() if p.startswith("dso:")]
    rents = {"transmission": statements.total("tso"),
             "distribution": float(sum(v for b in dso_lines for k, v in b.items()
                                       if k != "interface rent")),
             "interface": float(sum(b.get("interface rent", 0.0) for b in dso_lines))}
    if market_dispatch is not None and len(delivered):
        notes = [*(notes or []), f"the delivered dispatch still violates distribution limits "
                 f"{len(delivered)} time(s) (feeder-period-element; see "
                 "delivered_violations)"]
    shortfalls = _outcome_shortfalls(tso_result, results, violations,
                                     checked_final=market_dispatch is None)
    if status == "optimal":
        status = shortfalls.status().value
    return Outcome(
        scheme=scheme, status=status, shortfalls=shortfalls,
        total_cost=tso_cost + sum(dso_costs.values()), tso_cost=tso_cost, dso_costs=dso_costs,
        der_revenues=der_rev, consumer_payments=payments, generator_revenues=gen_rev,
        rents=rents, interface_lmp=iface_lmp,
        dlmp={f: results[f].dlmp_p for f in fids},
        dlmp_q={f: results[f].dlmp_q for f in fids},
        dlmp_components={f: {**{f"p:{k}": v for k, v in results[f].dlmp_p_components.items()},
                             **{f"q:{k}": v for k, v in results[f].dlmp_q_components.items()}}
                         for f in fids},
        interface_schedules=imports,
        violations=violations, delivered_violations=delivered, curtailed_mwh=curtailed,
        messages=ex.summary(),
        iterations=iterations, wall_s=time.perf_counter() - started, energy=energy,
        residuals=residuals if residuals is not None else pd.DataFrame(),
        notes=list(notes or []), lmp=lmp, voltages=voltages, statements=book,
        statements_by_period=statements.period_frame(lmp.index),
        kept_out=admission.kept_out(system,
                                    distribution_market=scheme not in TSO_PRICE_SCHEMES),
        dso_tools=dso_tools(system, distribution_market=scheme not in TSO_PRICE_SCHEMES),
        der_dispatch=(pd.concat([results[f].der_p_mw for f in fids], axis=1)
                      if fids else pd.DataFrame()),
        der_reactive=(pd.concat([results[f].der_q_mvar for f in fids], axis=1)
                      if fids else pd.DataFrame()),
    )


def _ac_violations(ops: Mapping[str, DsoOpf | FeederInputs],
                   dispatch: Mapping[str, DsoResult],
                   voltages: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """What an AC power flow of each feeder's ``dispatch`` finds beyond 1e-4 pu of a
    voltage limit or 0.1 % of a rating (smaller excesses are solver tolerance), with the
    rows of periods whose power flow did not converge; ``voltages`` receives the voltage
    magnitudes per feeder."""
    frames = []
    for f in ops:
        flow = dispatch_power_flow(ops[f], dispatch[f])
        if voltages is not None:
            voltages[f] = flow.vm_pu
        viol = flow.violations()
        excess = (viol.value - viol.limit).abs()
        keep = np.where(viol.element == "bus", excess > 1e-4, excess > 0.1)
        viol = viol[keep | (viol.kind == "not_converged").to_numpy()]
        viol.insert(0, "feeder_id", f)
        frames.append(viol)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["feeder_id", "period", "element", "element_id", "kind", "value", "limit"])


def dso_tools(system: System, distribution_market: bool) -> dict[str, Any]:
    """The voltage tools the DSOs of ``system`` have in a scheme: ``feeders``,
    ``tap_changers`` (feeders with one), ``capacitor_banks`` and their ``capacitor_mvar``
    (at 1.0 pu), and ``inverter_reactive``: the DERs whose inverters give reactive power
    (``ders``, ``mva``) and on what terms (``"paid at the reactive DLMP"``, or ``"grid
    code (unpaid)"``)."""
    f = system.feeders
    band = f.get("oltc_v_min_pu", pd.Series(np.nan, index=f.index))
    buses = system.feeder_buses
    caps = buses.get("cap_mvar", pd.Series(0.0, index=buses.index))
    control = admission.der_control(system, distribution_market)
    d = system.ders
    q = control.reactive
    paid = distribution_market and system.rules.local.reactive_paid
    return {"feeders": int(len(f)), "tap_changers": int(np.isfinite(band).sum()),
            "capacitor_banks": int((caps > 0).sum()), "capacitor_mvar": float(caps.sum()),
            "inverter_reactive": {"ders": int(q.sum()),
                                  "mva": float(d.s_max_mva[q].replace(np.inf, 0.0).sum()),
                                  "terms": "paid at the reactive DLMP" if paid
                                  else "grid code (unpaid)"}}


def _repriced(result: DsoResult, lmp: np.ndarray, sens_p: pd.DataFrame,
              sens_q: pd.DataFrame) -> DsoResult:
    """``result`` with its DLMPs moved to the interface LMP ($/MWh per period) where its
    schedule follows its demand with sensitivities ``sens_p``, ``sens_q`` (see
    :func:`settle`)."""
    shift = lmp - result.interface_marginal_price.to_numpy()
    cols = result.dlmp_p.columns
    sp_ = sens_p.reindex(columns=cols).to_numpy()
    sq_ = sens_q.reindex(columns=cols).to_numpy()
    if not (np.isfinite(sp_).all() and np.isfinite(sq_).all()):
        raise ValueError("schedule sensitivities must cover every bus of the feeder")
    out = copy.copy(result)
    out.dlmp_p = result.dlmp_p + shift[:, None] * sp_
    out.dlmp_q = result.dlmp_q + shift[:, None] * sq_
    cp = dict(result.dlmp_p_components)
    cq = dict(result.dlmp_q_components)
    if cp:
        cp["energy"] = cp["energy"] + shift[:, None]
        cp["loss"] = cp["loss"] + shift[:, None] * (sp_ - 1.0)
        cq["loss"] = cq["loss"] + shift[:, None] * sq_
    out.dlmp_p_components, out.dlmp_q_components = cp, cq
    out.interface_marginal_price = pd.Series(lmp, index=result.interface_marginal_price.index)
    return out


def _feeder_data(system: System, feeder_id: str, held: DsoOpf | FeederInputs | Dso
                 ) -> DsoOpf | FeederInputs:
    """What the settlement reads of a feeder (its data, not its solver): the model a DSO
    party operated it with, else (or where the model had the limits lifted) the feeder's
    inputs."""
    if isinstance(held, Dso):
        model = None if feeder_id in held.unmanaged else held.model(feeder_id)
        return model or FeederInputs.of(held.system, feeder_id)
    return held


def _priced_view(held: Dso, feeder_id: str, result: DsoResult, lmp: np.ndarray
                 ) -> DsoResult:
    """``result`` with the DLMPs (and their parts) of the feeder cleared by its DSO party
    against the interface price ``lmp`` ($/MWh per period), same DER room
    (:meth:`Dso.repriced`)."""
    view = held.repriced(feeder_id, lmp)
    out = copy.copy(result)
    out.dlmp_p, out.dlmp_q = view.dlmp_p, view.dlmp_q
    out.dlmp_p_components = view.dlmp_p_components
    out.dlmp_q_components = view.dlmp_q_components
    out.interface_marginal_price = view.interface_marginal_price
    return out


def _outcome_shortfalls(tso: TsoResult, results: dict[str, DsoResult],
                        violations: pd.DataFrame, checked_final: bool) -> Shortfalls:
    """Everything the settled operation cost besides production: the TSO redispatch's and
    every feeder's slack, the largest SOC gap, and AC power flows that did not converge.

    ``checked_final``: the violations are those of the final dispatch (no DSO correction
    after the market), so a power flow that did not converge leaves the final operation
    unverified; otherwise it concerns the market dispatch and is reported as a warning."""
    total = Shortfalls() + tso.shortfalls  # a copy: the TSO result keeps its own
    for r in results.values():
        total = total + r.shortfalls
    withheld = [f for f, r in results.items() if not r.prices_valid]
    if withheld:
        total.notes.append(f"DLMPs of {', '.join(withheld)} are not prices (their result is "
                           "not exact): payments settled at them are indicative only")
    failed = int((violations.kind == "not_converged").sum()) if len(violations) else 0
    if failed and checked_final:
        total.pf_not_converged += failed
    elif failed:
        total.notes.append(f"AC power flow of the market dispatch did not converge in "
                           f"{failed} feeder-period(s): its violations there are unknown "
                           "(likely voltage collapse)")
    return total


def _line_losses(op: DsoOpf | FeederInputs, r: DsoResult) -> np.ndarray:
    """(T x lines) resistive loss of each line, MW, in the order of ``tree.line_ids[1:]``:
    ``r l`` with the model's own squared current ``l = (P^2 + Q^2 + gap) / v_parent`` (the
    relaxation gap included, so that these are the losses the feeder's power balance
    carries; per unit on 1 MVA, so MW)."""
    tr = op.tree
    lines = tr.line_ids[1:]
    P = r.flow_p_mw[lines].to_numpy()
    Q = r.flow_q_mvar[lines].to_numpy()
    gap = r.soc_gap[lines].to_numpy()
    vm = r.voltage_pu[tr.bus_ids[tr.parent[1:]]].to_numpy()
    return tr.r[1:] * (P**2 + Q**2 + gap) / np.maximum(vm**2, 1e-9)
