"""Emergency curtailment requests: the TSO asks a DSO to change its feeder's import, or acts
on the DERs itself (issue #13, item 6a).

The TSO needs a feeder's import changed by ``amount_mw`` in a window of periods:

* ``"reduce_generation"``: a surplus of generation in transmission (e.g. at midday with high
  PV): the import must **rise** by the amount (less DER injection, more consumption);
* ``"reduce_load"``: a shortage: the import must **fall** by the amount (more DER output,
  less consumption, load shed as the last resort).

Two routes, compared on the same base operation (an :class:`Outcome`'s DER dispatch):

``via="dso"``
    The TSO measures the feeder's import (AC power flow of the base dispatch) and sends the
    DSO an :class:`~tsodso.actors.messages.InterfaceSchedule` over the window: the import it
    needs, a bound in the direction of the request (more is allowed, never needed: every
    move costs). The DSO re-solves its feeder's OPF (SOC branch flow: voltage and thermal
    limits, losses) from the base dispatch: DERs other than storage and EVs stay at their
    base output outside the window, storage and EVs stay at it before the window and may
    move after it (to restore their energy: the import change after the window is the
    *rebound*), inverters keep their base reactive power where their active power is held.
    It minimises the feeder's cost at the base interface price (imports, DER offers, load
    shed at the value of lost load) and pays ``10 x`` the value of lost load per MWh short
    of the request, so it falls short only where its network and DERs cannot do more. If it
    can deliver the whole request it sends the aggregators whose DERs it moves their orders
    (a :class:`~tsodso.actors.messages.CurtailmentRequest` capping PV, wind and DG output;
    an :class:`~tsodso.actors.messages.Activation` for storage, EVs, demand response and
    any raised output) and answers the TSO with an accepting
    :class:`~tsodso.actors.messages.Acknowledgement`. Otherwise it moves nothing, rejects
    the request naming what it can deliver (MW in every period of the window) and offers
    that import as an ``InterfaceSchedule`` reply.

``via="bypass"``
    The TSO acts on the DERs directly with what it sees (each DER's schedule, availability
    and power limits, no network model of the feeder and no states of charge), assuming a
    lossless feeder: for ``reduce_generation`` it lowers every injecting DER's output pro rata
    (then, if that is not enough, raises storage and EV charging pro rata to their limits);
    for ``reduce_load`` it raises every DER towards its upper limit (PV to its availability,
    demand response to its availability, storage to full discharge, EVs to no charging) pro
    rata to the headroom. Orders go straight to the aggregators (same message kinds).

Either way, the dispatch applied is what the aggregators received (base dispatch plus the
activations, capped by the curtailment requests) and an AC power flow of the feeder
(power-grid-model) checks it: the delivered change of the import (losses included) and the
violations beyond 1e-4 pu of a voltage limit or 0.1 % of a thermal rating (the tolerances of
:class:`~tsodso.coordination.outcome.Outcome`).

Units and signs: MW, MVAr, MWh, $, $/MWh; the feeder's import is positive when power flows
from transmission into the feeder; a DER's power is positive when it injects; periods are
0-based indices of the system's horizon.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tsodso.actors.bus import MessageBus, new_envelope
from tsodso.actors.dso import Dso
from tsodso.actors.messages import (
    Acknowledgement,
    Activation,
    CurtailmentRequest,
    InterfaceSchedule,
    Message,
    Party,
)
from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions, DsoResult
from tsodso.errors import TsodsoError
from tsodso.model.system import System
from tsodso.powerflow import FeederPowerFlow, PowerFlowResult, der_injections
from tsodso.tso.offers import der_availability, der_offer_cost

Direction = Literal["reduce_generation", "reduce_load"]
Route = Literal["dso", "bypass"]
DIRECTIONS: tuple[str, ...] = ("reduce_generation", "reduce_load")
ROUTES: tuple[str, ...] = ("dso", "bypass")

#: Kinds whose output a :class:`CurtailmentRequest` caps (other moves are activations).
CAPPED_KINDS: tuple[str, ...] = ("pv", "wind", "dg")
#: A DER counts as moved when its power changes by more than this, MW.
MOVE_TOL_MW = 1e-4
#: The request is met when the delivered change falls short by at most this, MW.
MET_TOL_MW = 1e-3
#: Shortfall (MW per period) the DSO's OPF may leave and still accept: solver accuracy.
ACCEPT_TOL_MW = 1e-4
#: Halvings of the search for what the DSO can deliver when it cannot deliver it all.
SEARCH_STEPS = 8
#: Excesses counted as violations (those of :class:`~tsodso.coordination.Outcome`).
VOLTAGE_TOL_PU = 1e-4
THERMAL_TOL_PCT = 0.1
#: What the DSO's OPF pays per MWh short of the request, in multiples of the value of lost
#: load (so it sheds load before it falls short, and falls short only where it must).
SHORTFALL_VOLL_MULTIPLE = 10.0


@dataclass
class EmergencyResult:
    """What one route did with one emergency request.

    Attributes
    ----------
    route : {"dso", "bypass"}
        Through the DSO or around it.
    feeder_id, direction : str
        The feeder and the request's direction.
    periods : range
        The window of the request (period indices).
    requested_mw : float
        The change of import asked for in every period of the window, MW (> 0).
    base_import_mw, import_mw : pandas.Series
        The feeder's import before and after the action, every period of the horizon, MW
        (AC power flow, losses included; + = into the feeder).
    delivered_mw : pandas.Series
        The change of import in the window in the direction asked, MW per period (+ =
        towards the request: a rise for ``reduce_generation``, a fall for ``reduce_load``).
    accepted : bool or None
        The DSO's answer (None for the bypass: nobody is asked).
    reason : str
        The DSO's reason (why it rejected, or what it did); for the bypass, what the TSO
        did.
    deliverable_mw : float
        The change the DSO can deliver in every period of the window, MW (its own model;
        equals ``requested_mw`` when it accepts); for the bypass, what the TSO ordered
        (lossless estimate).
    base_der_p_mw, der_p_mw : pandas.DataFrame
        The feeder's DERs' power before and as applied, MW (periods x der_id, + =
        injection).
    der_q_mvar : pandas.DataFrame
        Their reactive power as applied, MVAr (+ = injection).
    shed_mw : pandas.DataFrame
        Load shed by the DSO, MW (periods x bus_id; empty for the bypass).
    moved : pandas.DataFrame
        One row per DER whose power changed: ``der_id``, ``kind``, ``bus_id``,
        ``aggregator_id``, ``change_mwh`` (signed energy, + = more injection) and
        ``max_change_mw`` (largest absolute change).
    violations : pandas.DataFrame
        What the AC power flow of the applied dispatch finds (columns of
        :meth:`PowerFlowResult.violations`), beyond the tolerances.
    cost_usd : float
        Change of the feeder's cost against the base, $: imports valued at the interface
        price, DER offers (:func:`~tsodso.tso.offers.der_offer_cost`) and load shed at
        the value of lost load.
    curtailed_mwh, shed_mwh : float
        PV, wind and DG energy below the base output; load shed.
    messages : list of Message
        The messages of this request, as delivered, in the order sent.
    power_flow : PowerFlowResult
        The AC power flow of the applied dispatch.
    """

    route: str
    feeder_id: str
    direction: str
    periods: range
    requested_mw: float
    base_import_mw: pd.Series
    import_mw: pd.Series
    delivered_mw: pd.Series
    accepted: bool | None
    reason: str
    deliverable_mw: float
    base_der_p_mw: pd.DataFrame
    der_p_mw: pd.DataFrame
    der_q_mvar: pd.DataFrame
    shed_mw: pd.DataFrame
    moved: pd.DataFrame
    violations: pd.DataFrame
    cost_usd: float
    curtailed_mwh: float
    shed_mwh: float
    messages: list[Message] = field(default_factory=list)
    power_flow: PowerFlowResult | None = None

    @property
    def met(self) -> bool:
        """Whether the import moved by the amount asked in every period of the window
        (within :data:`MET_TOL_MW`)."""
        return bool((self.delivered_mw >= self.requested_mw - MET_TOL_MW).all())

    @property
    def rebound_mw(self) -> pd.Series:
        """Change of import outside the window (storage and EVs restoring their energy),
        MW per period (+ = more import)."""
        out = self.import_mw - self.base_import_mw
        return out.drop(index=list(self.periods))

    def violation_summary(self) -> dict[str, Any]:
        """Counts of voltage (bus x period) and thermal (line or substation x period)
        violations, the worst voltage (pu) and the worst loading (% of rating)."""
        v = self.violations
        volt = v[v.element == "bus"]
        therm = v[v.element.isin(["line", "substation"])]
        worst_v = None
        if len(volt):
            worst_v = float(volt.value.to_numpy()[int(np.argmax(
                np.abs(volt.value - volt.limit).to_numpy()))])
        return {"voltage": int(len(volt)), "thermal": int(len(therm)),
                "worst_voltage_pu": worst_v,
                "worst_loading_pct": float(therm.value.max()) if len(therm) else None,
                "not_converged": int((v.kind == "not_converged").sum())}

    def summary(self) -> dict[str, Any]:
        """One row of figures (join both routes' rows for a comparison)."""
        return {"route": self.route, "feeder_id": self.feeder_id,
                "direction": self.direction,
                "periods": f"{self.periods.start}-{self.periods.stop - 1}",
                "requested_mw": self.requested_mw,
                "delivered_min_mw": float(self.delivered_mw.min()),
                "delivered_max_mw": float(self.delivered_mw.max()),
                "met": self.met, "accepted": self.accepted,
                "deliverable_mw": self.deliverable_mw,
                **{f"violations_{k}": val for k, val in self.violation_summary().items()},
                "cost_usd": self.cost_usd, "curtailed_mwh": self.curtailed_mwh,
                "shed_mwh": self.shed_mwh, "ders_moved": int(len(self.moved)),
                "messages": len(self.messages)}


# --------------------------------------------------------------------------- input
def _where(name: str) -> str:
    return f"emergency_request.{name}"


def _check_periods(periods: Any, T: int) -> range:
    """The window as a range of period indices within the horizon (one period, a range
    or a sequence of consecutive periods)."""
    name = _where("periods")
    if isinstance(periods, numbers.Integral) and not isinstance(periods, bool):
        periods = [int(periods)]
    if isinstance(periods, range | Sequence | np.ndarray) and not isinstance(periods, str):
        values = list(periods)
    else:
        raise TsodsoError(f"{name}: expected a period index, a range or a sequence of "
                          f"period indices, got {periods!r}")
    if not values:
        raise TsodsoError(f"{name}: no period given")
    for p in values:
        if isinstance(p, bool) or not isinstance(p, numbers.Integral):
            raise TsodsoError(f"{name}: {p!r} is not a period index")
    ints = [int(p) for p in values]
    bad = [p for p in ints if not 0 <= p < T]
    if bad:
        raise TsodsoError(f"{name}: period {bad[0]} is outside the horizon (0 to {T - 1})")
    if ints != list(range(ints[0], ints[0] + len(ints))):
        raise TsodsoError(f"{name}: the window must be consecutive periods in order, got "
                          f"{ints}")
    return range(ints[0], ints[-1] + 1)


def _check_amount(amount_mw: Any) -> float:
    if (isinstance(amount_mw, bool) or not isinstance(amount_mw, numbers.Real)
            or not math.isfinite(amount_mw)):
        raise TsodsoError(f"{_where('amount_mw')}: must be a finite number of MW, got "
                          f"{amount_mw!r}")
    if amount_mw <= 0:
        raise TsodsoError(f"{_where('amount_mw')}: must be > 0 MW (the direction says "
                          f"which way), got {amount_mw!r}")
    return float(amount_mw)


def _base_dispatch(system: System, base: Any, ids: list[str], T: int
                   ) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray | None]:
    """The feeder's base DER power and reactive power (periods x der_id) and the base's
    interface price ($/MWh per period) when it has one."""
    from tsodso.coordination.outcome import Outcome

    price = None
    if isinstance(base, Outcome):
        p, q = base.der_dispatch, base.der_reactive
        fid = system.ders.feeder_id[system.ders.der_id == ids[0]].iloc[0] if ids else None
        if fid is not None and fid in base.interface_lmp.columns:
            price = base.interface_lmp[fid].to_numpy(float)[:T]
    elif isinstance(base, pd.DataFrame):
        p, q = base, None
    else:
        raise TsodsoError(f"{_where('base')}: expected an Outcome or a DER schedule "
                          f"(periods x der_id, MW), got {type(base).__name__}")
    missing = [d for d in ids if d not in p.columns]
    if missing:
        raise TsodsoError(f"{_where('base')}: the base dispatch lacks DER {missing[0]!r} "
                          "of the feeder")
    if len(p) < T:
        raise TsodsoError(f"{_where('base')}: {len(p)} periods, the horizon has {T}")
    p = p[ids].iloc[:T].astype(float).reset_index(drop=True)
    if not np.isfinite(p.to_numpy()).all():
        raise TsodsoError(f"{_where('base')}: the base dispatch holds values that are not "
                          "finite")
    if q is None or not len(q.columns) or any(d not in q.columns for d in ids):
        q = pd.DataFrame(0.0, index=p.index, columns=ids)
    else:
        q = q[ids].iloc[:T].astype(float).reset_index(drop=True)
    return p, q, price


# ------------------------------------------------------------------ power flow
def _flow(system: System, feeder_id: str, p: pd.DataFrame, q: pd.DataFrame,
          shed: pd.DataFrame | None = None, v_root: np.ndarray | None = None
          ) -> PowerFlowResult:
    """AC power flow of the feeder's loads (less shed load, at its power factor) and DER
    injections ``p``, ``q`` (periods x der_id)."""
    pf = FeederPowerFlow(system.feeder(feeder_id))
    load_p, load_q = pf.feeder_loads(system.profiles)
    load_p, load_q = load_p.reset_index(drop=True), load_q.reset_index(drop=True)
    if shed is not None and len(shed.columns):
        s = shed.reindex(columns=load_p.columns, fill_value=0.0).to_numpy()
        lp = load_p.to_numpy()
        ratio = np.divide(load_q.to_numpy(), lp, out=np.zeros_like(lp), where=lp > 0)
        load_p = load_p - s
        load_q = load_q - s * ratio
    inj_p, inj_q = der_injections(system, feeder_id, p, q)
    return pf.run(load_p, load_q, inj_p, inj_q, v_root_pu=v_root)


def _violations(flow: PowerFlowResult) -> pd.DataFrame:
    """The flow's violations beyond :data:`VOLTAGE_TOL_PU` and :data:`THERMAL_TOL_PCT`
    (and periods that did not converge)."""
    viol = flow.violations()
    excess = (viol.value - viol.limit).abs()
    keep = np.where(viol.element == "bus", excess > VOLTAGE_TOL_PU, excess > THERMAL_TOL_PCT)
    return viol[keep | (viol.kind == "not_converged").to_numpy()].reset_index(drop=True)


# --------------------------------------------------------------------- orders
def _orders(system: System, sender: Party, ids: list[str], base: pd.DataFrame,
            new: pd.DataFrame, avail: pd.DataFrame, dt: float, conversation: str
            ) -> list[Message]:
    """The orders that turn ``base`` into ``new`` (periods x der_id, MW), one
    :class:`CurtailmentRequest` (PV, wind and DG output lowered: cap = the new output there,
    the availability elsewhere) and one :class:`Activation` (every other change: delta MW,
    + = more injection) per aggregator, over the periods where anything moved."""
    delta = new.to_numpy() - base.to_numpy()
    moved_t = np.flatnonzero((np.abs(delta) > MOVE_TOL_MW).any(axis=1))
    if not len(moved_t):
        return []
    rows = range(int(moved_t[0]), int(moved_t[-1]) + 1)
    d = system.ders.set_index("der_id").loc[ids]
    capped_kind = d.kind.isin(CAPPED_KINDS).to_numpy()
    lowered = delta < -MOVE_TOL_MW
    raised_or_other = (np.abs(delta) > MOVE_TOL_MW) & ~(lowered & capped_kind[None, :])
    agg = d.aggregator_id.fillna("").astype(str).replace("", "(none)")
    msgs: list[Message] = []
    for a in dict.fromkeys(agg):
        mine = (agg == a).to_numpy()
        env = new_envelope(sender, Party.aggregator(a), periods=rows, period_hours=dt,
                           sim_time="emergency", conversation=conversation)
        cut = mine & capped_kind & lowered.any(axis=0)
        if cut.any():
            cap = np.where(lowered[:, cut], new.to_numpy()[:, cut], avail.to_numpy()[:, cut])
            msgs.append(CurtailmentRequest(env, der_ids=tuple(np.asarray(ids)[cut]),
                                           p_max_mw=cap[rows.start:rows.stop]))
        act = mine & raised_or_other.any(axis=0)
        if act.any():
            dl = np.where(raised_or_other[:, act], delta[:, act], 0.0)
            msgs.append(Activation(env, activation_id=f"emergency:{a}",
                                   resource_ids=tuple(np.asarray(ids)[act]),
                                   delta_mw=dl[rows.start:rows.stop]))
    return msgs


def _apply(base: pd.DataFrame, received: list[Message]) -> pd.DataFrame:
    """The dispatch the aggregators run after ``received``: base plus activations, capped
    by curtailment requests (MW, periods x der_id)."""
    out = base.copy()
    for m in received:
        rows = list(m.envelope.periods)
        if isinstance(m, Activation):
            cols = list(m.resource_ids)
            out.loc[rows, cols] = out.loc[rows, cols].to_numpy() + np.array(m.delta_mw)
    for m in received:
        if isinstance(m, CurtailmentRequest):
            rows, cols = list(m.envelope.periods), list(m.der_ids)
            out.loc[rows, cols] = np.minimum(out.loc[rows, cols].to_numpy(),
                                             np.array(m.p_max_mw))
    return out


def _send(bus: MessageBus, msgs: list[Message], log: list[Message]) -> list[Message]:
    """Send ``msgs`` as one batch; record them in ``log``; return what the recipients took
    from their inboxes (in the order sent)."""
    if not msgs:
        return []
    delivered = bus.send_all(msgs)
    log.extend(delivered)
    taken: list[Message] = []
    for party in dict.fromkeys(m.envelope.recipient for m in delivered):
        taken.extend(bus.receive(party))
    order = {m.envelope.id: i for i, m in enumerate(delivered)}
    return sorted([m for m in taken if m.envelope.id in order],
                  key=lambda m: order[m.envelope.id])


# -------------------------------------------------------------- the DSO's side
def _upper_limits(system: System, ids: list[str], avail: pd.DataFrame, T: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Each DER's power range as its owner declares it (periods x DERs, MW): PV, wind, DG
    and demand response between their minimum and their availability, storage between
    full charge and full discharge, EVs between full charge while plugged and their
    discharge (vehicle-to-grid) limit."""
    d = system.ders.set_index("der_id").loc[ids]
    hi = avail[ids].to_numpy().copy()
    lo = np.tile(np.maximum(d.p_min_mw.to_numpy(float), 0.0), (T, 1))
    lo = np.minimum(lo, hi)
    st = (d.kind == "storage").to_numpy()
    hi[:, st] = d.p_max_mw.to_numpy(float)[st]
    lo[:, st] = d.p_min_mw.to_numpy(float)[st]
    ev = (d.kind == "ev").to_numpy()
    if ev.any():
        t = np.arange(T)[:, None]
        dep = np.where(d.departure_period < 0, T, d.departure_period).astype(int)
        plugged = (t >= d.arrival_period.to_numpy(int)[None, :]) & (t < dep[None, :])
        hi[:, ev] = (plugged * d.p_max_mw.to_numpy(float)[None, :])[:, ev]
        lo[:, ev] = (plugged * d.p_min_mw.to_numpy(float)[None, :])[:, ev]
    return lo, hi


def _dso_redispatch(system: System, feeder_id: str, base_p: pd.DataFrame,
                    base_q: pd.DataFrame, price: np.ndarray, window: range, target: np.ndarray,
                    direction: str) -> tuple[DsoResult, np.ndarray]:
    """The DSO's feeder OPF from the base dispatch with the import held to ``target`` in
    the window (a bound in the request's direction, each MW short priced at
    :data:`SHORTFALL_VOLL_MULTIPLE` x the value of lost load) on the DSO's view
    ``system``; returns its result and the shortfall per window period (MW)."""
    T = system.n_periods
    op = DsoOpf(system, feeder_id, DsoOptions(ac_check=False, decompose=False),
                Boundary(price=price))
    m = op.model
    ids = list(op.ders.der_id)
    bp = base_p[ids].to_numpy()
    bq = base_q[ids].to_numpy()
    inside = np.zeros(T, dtype=bool)
    inside[window.start:window.stop] = True
    before = np.arange(T) < window.start
    # generation-like DERs (PV, wind, DG, demand response): base output outside the window
    if len(op.g_idx):
        lb, ub = (a.reshape(T, -1) for a in op.pg_bounds)
        held = np.clip(bp[:, op.g_idx], lb, ub)
        m.set_bounds(op.pg, lb=np.where(inside[:, None], lb, held).ravel(),
                     ub=np.where(inside[:, None], ub, held).ravel())
        if len(op.spill_pos):  # price-takers: spill only in the window
            pos = op.g_idx[op.spill_pos]
            spill = np.maximum(ub[:, op.spill_pos] - bp[:, pos], 0.0)
            m.set_bounds(op.spill, lb=np.where(inside[:, None], 0.0, spill).ravel(),
                         ub=np.where(inside[:, None], ub[:, op.spill_pos], spill).ravel())
    # storage and EVs: base power before the window, free from it on; inverters keep their
    # base reactive power where their active power is held (each value clipped to the
    # DER's rating, so solver noise in the base cannot make the hold infeasible)
    d = op.ders
    p_up, p_down = d.p_max_mw.to_numpy(float), -d.p_min_mw.to_numpy(float)
    holds = []
    for idx, up, down in ((op.s_idx, op.dis, op.ch), (op.v_idx, op.evd, op.evc)):
        if not len(idx):
            continue
        b = bp[:, idx]
        holds.append((up, np.clip(b, 0.0, p_up[idx]), np.tile(before[:, None], (1, len(idx)))))
        holds.append((down, np.clip(-b, 0.0, p_down[idx]),
                      np.tile(before[:, None], (1, len(idx)))))
    if len(op.q_idx):
        smax = d.s_max_mva.to_numpy(float)[op.q_idx]
        storage = (d.kind.to_numpy()[op.q_idx] == "storage")[None, :]
        held_q = np.where(storage, before[:, None], ~inside[:, None])
        holds.append((op.qd, np.clip(bq[:, op.q_idx], -smax, smax), held_q))
    for k, (block, value, mask) in enumerate(holds):
        if block is None or not mask.any():
            continue
        at = np.flatnonzero(mask.ravel())
        sel = sp.csr_array((np.ones(len(at)), (np.arange(len(at)), at)),
                           shape=(len(at), len(block)))
        v = value.ravel()[at]
        m.add_constraints(f"emergency_hold_{k}", [(block, sel)], lb=v, ub=v)
    # the import in the window, and what falling short of it costs
    n, W = op.tree.n, len(window)
    pick = sp.csr_array((np.ones(W), (np.arange(W), np.asarray(window) * n)), shape=(W, T * n))
    voll = system.rules.value_of_lost_load
    short = m.add_variables("emergency_shortfall", W,
                            cost=np.full(W, SHORTFALL_VOLL_MULTIPLE * voll * op.dt))
    if direction == "reduce_generation":  # P0 + short >= target
        m.add_constraints("emergency_import", [(op.P, pick), (short, 1.0)], lb=target,
                          ub=np.full(W, np.inf))
    else:  # P0 - short <= target
        m.add_constraints("emergency_import", [(op.P, pick), (short, -1.0)],
                          lb=np.full(W, -np.inf), ub=target)
    result = op.solve()
    # the shortfall is what the solved import misses of the target
    p0 = result.interface_p_mw.to_numpy()[window.start:window.stop]
    gap = target - p0 if direction == "reduce_generation" else p0 - target
    return result, np.maximum(gap, 0.0)


@dataclass
class _Plan:
    """A DSO dispatch for one target and its AC check (see :func:`_dso_plan`)."""

    result: DsoResult
    shortfall: np.ndarray
    delivered: np.ndarray
    ok: bool
    why: str


def _dso_plan(system: System, view: System, feeder_id: str, base_p: pd.DataFrame,
              base_q: pd.DataFrame, base_import: pd.Series, price: np.ndarray, window: range,
              target: np.ndarray, amount: float, direction: str) -> _Plan:
    """The DSO's OPF for ``target`` (import in the window, MW) checked by an AC power flow
    of its dispatch, as the DSO checks a plan before it commits to it: ``ok`` when the OPF
    falls short by no more than :data:`ACCEPT_TOL_MW`, the AC import moves by ``amount``
    (within :data:`MET_TOL_MW`) and no limit is violated in the periods it changes."""
    result, short = _dso_redispatch(view, feeder_id, base_p, base_q, price, window, target,
                                    direction)
    ids = list(base_p.columns)
    p = result.der_p_mw[ids].reset_index(drop=True)
    flow = _flow(system, feeder_id, p, result.der_q_mvar[ids].reset_index(drop=True),
                 result.shed_mw.reset_index(drop=True),
                 None if result.v_root_pu is None else result.v_root_pu.to_numpy())
    sign = 1.0 if direction == "reduce_generation" else -1.0
    w = slice(window.start, window.stop)
    delivered = sign * (flow.substation_p_mw.to_numpy()[w] - base_import.to_numpy()[w])
    changed = set(window) | set(np.flatnonzero(
        (np.abs(p.to_numpy() - base_p.to_numpy()) > MOVE_TOL_MW).any(axis=1)).tolist())
    viol = _violations(flow)
    viol = viol[viol.period.isin(changed)]
    why = []
    if short.max() > ACCEPT_TOL_MW:
        why.append(f"its OPF falls {float(short.max()):.3f} MW short")
    if delivered.min() < amount - MET_TOL_MW:
        why.append(f"the AC power flow of its plan moves the import by "
                   f"{float(delivered.min()):.3f} MW only")
    if len(viol):
        why.append(f"its plan would violate {len(viol)} limit(s)")
    return _Plan(result, short, delivered, not why, "; ".join(why))


# ---------------------------------------------------------------- the bypass
def _bypass_dispatch(system: System, ids: list[str], base: pd.DataFrame, avail: pd.DataFrame,
                     window: range, amount_mw: float, direction: str) -> pd.DataFrame:
    """The TSO's pro-rata orders without a network model (see the module docstring); the
    DERs' new power (periods x der_id, MW)."""
    T = len(base)
    lo, hi = _upper_limits(system, ids, avail, T)
    d = system.ders.set_index("der_id").loc[ids]
    if (d.kind == "demand_response").any():  # demand response: no more than its site load
        from tsodso.tso.offers import feeder_load_by_bus

        load = feeder_load_by_bus(system)
        dr = np.flatnonzero((d.kind == "demand_response").to_numpy())
        for j in dr:
            at = load.get((d.feeder_id.iloc[j], d.bus_id.iloc[j]))
            site = np.zeros(T) if at is None else at.to_numpy()[:T]
            hi[:, j] = np.minimum(hi[:, j], site)
    p = base.to_numpy().copy()
    for t in window:
        row = p[t]
        if direction == "reduce_generation":
            inj = np.maximum(row, 0.0)
            cut = min(1.0, amount_mw / inj.sum()) if inj.sum() > 0 else 0.0
            row = row - cut * inj
            rest = amount_mw - cut * inj.sum()
            if rest > 1e-9:  # more consumption: storage and EVs charging harder
                room = np.maximum(row - lo[t], 0.0)
                room[~d.kind.isin(["storage", "ev"]).to_numpy()] = 0.0
                if room.sum() > 0:
                    row = row - min(1.0, rest / room.sum()) * room
        else:
            room = np.maximum(hi[t] - row, 0.0)
            if room.sum() > 0:
                row = row + min(1.0, amount_mw / room.sum()) * room
        p[t] = row
    return pd.DataFrame(p, index=base.index, columns=ids)


# ------------------------------------------------------------------ the request
def emergency_request(system: System, base: Any, feeder_id: str, periods: Any,
                      amount_mw: float, direction: Direction, via: Route = "dso",
                      bus: MessageBus | None = None, price: Any = None) -> EmergencyResult:
    """The TSO needs ``feeder_id``'s import changed by ``amount_mw`` in ``periods``.

    Parameters
    ----------
    system : System
        The whole system (each party reads only its part: the DSO its feeder, the TSO in
        the bypass the DERs' schedules and limits).
    base : Outcome or pandas.DataFrame
        The operation the emergency starts from: a scheme's :class:`Outcome` (its DER
        dispatch and reactive power, and its interface LMPs as the price) or a DER
        schedule (periods x der_id, MW, + = injection; reactive power 0).
    feeder_id : str
        The feeder.
    periods : int, range or sequence of int
        The window: consecutive period indices within the horizon.
    amount_mw : float
        The change of import needed in every period of the window, MW (> 0).
    direction : {"reduce_generation", "reduce_load"}
        ``reduce_generation``: the import must rise (a surplus in transmission);
        ``reduce_load``: it must fall (a shortage).
    via : {"dso", "bypass"}
        Through the DSO (it chooses the DERs within its feeder's limits) or around it (the
        TSO acts on the DERs pro rata; see the module docstring).
    bus : MessageBus, optional
        Where the messages go (and are logged); a new bus with an in-memory log if
        omitted. Its ``scheme`` is set to ``"emergency_<via>"``.
    price : array of float, optional
        Interface price, $/MWh per period, that values the import change in ``cost_usd``
        and in the DSO's choice (default: the base outcome's interface LMP of the feeder,
        or 0 with a DER schedule as the base).

    Returns
    -------
    EmergencyResult

    Raises
    ------
    TsodsoError
        Bad input, naming the field (``emergency_request.feeder_id``, ``.periods``,
        ``.amount_mw``, ``.direction``, ``.via``, ``.base``, ``.price``, ``.bus``).
    """
    if not isinstance(system, System):
        raise TsodsoError(f"{_where('system')}: expected a System, got "
                          f"{type(system).__name__}")
    if feeder_id not in system.feeder_ids:
        raise TsodsoError(f"{_where('feeder_id')}: unknown feeder {feeder_id!r}; feeders: "
                          f"{', '.join(system.feeder_ids) or 'none'}")
    T = system.n_periods
    window = _check_periods(periods, T)
    amount = _check_amount(amount_mw)
    if direction not in DIRECTIONS:
        raise TsodsoError(f"{_where('direction')}: must be one of {', '.join(DIRECTIONS)}, "
                          f"got {direction!r}")
    if via not in ROUTES:
        raise TsodsoError(f"{_where('via')}: must be one of {', '.join(ROUTES)}, got {via!r}")
    if bus is not None and not isinstance(bus, MessageBus):
        raise TsodsoError(f"{_where('bus')}: expected a MessageBus (or None), got "
                          f"{type(bus).__name__}")
    ids = [str(i) for i in system.ders.der_id[system.ders.feeder_id == feeder_id]]
    base_p, base_q, base_price = _base_dispatch(system, base, ids, T)
    if price is None:
        price = base_price if base_price is not None else np.zeros(T)
    try:
        price = np.broadcast_to(np.asarray(price, dtype=float), (T,)).copy()
    except (TypeError, ValueError):
        raise TsodsoError(f"{_where('price')}: expected one number or one per period "
                          f"({T}), $/MWh") from None
    if not np.isfinite(price).all():
        raise TsodsoError(f"{_where('price')}: values must be finite ($/MWh)")

    own_bus = bus is None
    bus = MessageBus(scheme=f"emergency_{via}") if own_bus else bus
    bus.scheme = f"emergency_{via}"
    try:
        return _run(system, feeder_id, window, amount, direction, via, bus, ids, base_p,
                    base_q, price)
    finally:
        if own_bus:
            bus.close()


def _run(system: System, feeder_id: str, window: range, amount: float, direction: str,
         via: str, bus: MessageBus, ids: list[str], base_p: pd.DataFrame,
         base_q: pd.DataFrame, price: np.ndarray) -> EmergencyResult:
    T, dt = system.n_periods, float(system.profiles.period_hours)
    sign = 1.0 if direction == "reduce_generation" else -1.0
    avail = pd.DataFrame(der_availability(system), columns=system.ders.der_id)[ids]
    avail = avail.iloc[:T].reset_index(drop=True)
    # the import the TSO measures at the substation: AC power flow of the base dispatch
    base_flow = _flow(system, feeder_id, base_p, base_q)
    base_import = base_flow.substation_p_mw.reset_index(drop=True)
    w = slice(window.start, window.stop)
    target = base_import.to_numpy()[w] + sign * amount
    tso = Party.tso()
    dso_party = Party.dso(system.dso_of()[feeder_id])
    log: list[Message] = []
    shed = pd.DataFrame()
    new_q = base_q
    v_root = None
    accepted: bool | None
    if via == "dso":
        request = InterfaceSchedule(
            new_envelope(tso, dso_party, periods=window, period_hours=dt,
                         sim_time="emergency"), feeder_id=feeder_id, p_mw=target)
        got = _send(bus, [request], log)[0]
        assert isinstance(got, InterfaceSchedule)
        sent = log[0]
        conversation = sent.envelope.conversation or sent.envelope.id
        view = Dso.of(system, [feeder_id], name=dso_party.name).system
        target = np.array(got.p_mw)
        plan = _dso_plan(system, view, feeder_id, base_p, base_q, base_import, price, window,
                         target, amount, direction)
        deliverable = amount
        if not plan.ok:  # the largest part it can deliver, by bisection
            lo, hi = 0.0, max(amount - float(plan.shortfall.max()), 0.0)
            for _ in range(SEARCH_STEPS):
                mid = 0.5 * (lo + hi)
                trial = _dso_plan(system, view, feeder_id, base_p, base_q, base_import, price,
                                  window, target - sign * (amount - mid), mid, direction)
                lo, hi = (mid, hi) if trial.ok else (lo, mid)
            deliverable = lo
        result = plan.result
        if plan.ok:
            accepted = True
            new_p = result.der_p_mw[ids].reset_index(drop=True)
            orders = _orders(system, dso_party, ids, base_p, new_p, avail, dt, conversation)
            applied = _apply(base_p, _send(bus, orders, log))
            new_q = result.der_q_mvar[ids].reset_index(drop=True)
            shed = result.shed_mw.reset_index(drop=True).clip(lower=0.0)
            v_root = None if result.v_root_pu is None else result.v_root_pu.to_numpy()
            moved = int(((applied - base_p).abs() > MOVE_TOL_MW).any().sum())
            reason = (f"feeder {feeder_id} imports {amount:g} MW "
                      f"{'more' if sign > 0 else 'less'} in periods {window.start}-"
                      f"{window.stop - 1}: {moved} DER(s) moved"
                      + (f", {float(shed.to_numpy().sum()) * dt:.3f} MWh of load shed"
                         if shed.to_numpy().sum() > MOVE_TOL_MW else ""))
            reply = bus.reply(sent, Acknowledgement, accepted=True, reason=reason)
            _send(bus, [reply], log)
        else:
            accepted = False
            reason = (f"cannot move the import of feeder {feeder_id} by {amount:g} MW in "
                      f"every period {window.start}-{window.stop - 1} within its voltage "
                      f"and thermal limits and its DERs' limits ({plan.why}): it can deliver "
                      f"{max(deliverable, 0.0):.3f} MW; nothing moved")
            offer = base_import.to_numpy()[w] + sign * max(deliverable, 0.0)
            _send(bus, [bus.reply(sent, Acknowledgement, accepted=False, reason=reason),
                        bus.reply(sent, InterfaceSchedule, feeder_id=feeder_id,
                                  p_mw=offer)], log)
            applied = base_p.copy()
    else:
        accepted = None
        new_p = _bypass_dispatch(system, ids, base_p, avail, window, amount, direction)
        ordered = float(np.min(sign * -(new_p - base_p).to_numpy()[w].sum(axis=1)))
        deliverable = ordered
        orders = _orders(system, tso, ids, base_p, new_p, avail, dt, conversation="")
        applied = _apply(base_p, _send(bus, orders, log))
        reason = (f"the TSO ordered {len(orders)} message(s) to aggregators pro rata: "
                  f"{ordered:.3f} MW of DER power in every period of the window "
                  "(lossless estimate)")
    flow = _flow(system, feeder_id, applied, new_q, shed if len(shed.columns) else None,
                 v_root)
    new_import = flow.substation_p_mw.reset_index(drop=True)
    delivered = sign * (new_import - base_import).iloc[w]
    # figures
    cost_import = float((price * (new_import - base_import).to_numpy()).sum() * dt)
    cost_ders = float((der_offer_cost(system, applied) - der_offer_cost(system, base_p)
                       ).sum() * dt)
    shed_mwh = float(shed.to_numpy().sum() * dt) if len(shed.columns) else 0.0
    voll = system.rules.value_of_lost_load
    kinds = system.ders.set_index("der_id").loc[ids]
    capped = kinds.kind.isin(CAPPED_KINDS).to_numpy()
    change = applied.to_numpy() - base_p.to_numpy()
    curtailed = float(np.maximum(-change[:, capped], 0.0).sum() * dt)
    moved_cols = np.abs(change).max(axis=0) > MOVE_TOL_MW
    moved = pd.DataFrame({
        "der_id": np.asarray(ids)[moved_cols],
        "kind": kinds.kind.to_numpy()[moved_cols],
        "bus_id": kinds.bus_id.to_numpy()[moved_cols],
        "aggregator_id": kinds.aggregator_id.to_numpy()[moved_cols],
        "change_mwh": change[:, moved_cols].sum(axis=0) * dt,
        "max_change_mw": np.abs(change[:, moved_cols]).max(axis=0),
    })
    return EmergencyResult(
        route=via, feeder_id=feeder_id, direction=direction, periods=window,
        requested_mw=amount, base_import_mw=base_import, import_mw=new_import,
        delivered_mw=delivered, accepted=accepted, reason=reason,
        deliverable_mw=deliverable, base_der_p_mw=base_p, der_p_mw=applied,
        der_q_mvar=new_q, shed_mw=shed, moved=moved, violations=_violations(flow),
        cost_usd=cost_import + cost_ders + voll * shed_mwh, curtailed_mwh=curtailed,
        shed_mwh=shed_mwh, messages=log, power_flow=flow)


__all__ = ["DIRECTIONS", "ROUTES", "EmergencyResult", "emergency_request"]
