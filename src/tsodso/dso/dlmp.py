"""DLMPs of the DSO OPF and their decomposition into energy, loss, congestion and voltage.

The DLMP at bus ``j`` is the balance dual: the cost of serving one more MW (MVAr) there. To
split it, write the network equations ``F(x, load) = 0`` of the state ``x = (P, Q, l, v)``
(branch flow equations, the relaxation's cone taken as the equality it is when exact) and
take the sensitivities ``S = dx/dload = J^-1 dF/dload`` at the solution. The KKT conditions
then give, exactly::

    DLMP_j = pi * dP0/dload_j                      energy (pi) + loss (pi * (dP0/dload_j - 1))
           + sum_k mu_v,k   * dv_k/dload_j         voltage (bound multipliers of v)
           + sum_c mu_c     * dg_c/dload_j         congestion (line currents, substation)

with ``pi`` the marginal price of power at the interface. The parts are computed, not
obtained as a remainder, so their sum matching the DLMP is a check of the whole model: the
residual is reported and is at solver tolerance when the relaxation is exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from tsodso.dso.opf import OCTAGON, DsoResult
from tsodso.shortfalls import Shortfalls

if TYPE_CHECKING:
    from tsodso.dso.opf import DsoOpf

COMPONENTS = ("energy", "loss", "congestion", "voltage")


def _jacobian(op: DsoOpf, P: np.ndarray, Q: np.ndarray, L: np.ndarray, V: np.ndarray
              ) -> sp.csc_array:
    """Jacobian of the branch flow equations at one period's state (see module doc)."""
    tr = op.tree
    n = tr.n
    nr = np.arange(1, n)
    par = tr.parent[nr]
    C = tr.children_matrix()
    eye = sp.identity(n, format="csr")
    b_sh = tr.b_half + C @ tr.b_half
    to_nr = lambda M: sp.csr_array(M)[:, nr]  # noqa: E731 - drop the root column
    sel = sp.csr_array((np.ones(n - 1), (np.arange(n - 1), nr)), shape=(n - 1, n))
    up = sp.csr_array((np.ones(n - 1), (np.arange(n - 1), par)), shape=(n - 1, n))
    zz = tr.r**2 + tr.x**2
    zero = lambda a, b: sp.csr_array((a, b))  # noqa: E731
    f1 = [eye - C, zero(n, n), to_nr(-sp.diags(tr.r)), zero(n, n - 1)]
    f2 = [zero(n, n), eye - C, to_nr(-sp.diags(tr.x)), to_nr(sp.diags(b_sh))]
    f3 = [sel @ sp.diags(2 * tr.r), sel @ sp.diags(2 * tr.x), sp.diags(-zz[nr]),
          to_nr(sel - up)]
    blocks = [f1, f2, f3]
    if op.soc:
        lv = sp.csr_array((L[nr], (np.arange(n - 1), par)), shape=(n - 1, n))
        f4 = [sel @ sp.diags(-2 * P), sel @ sp.diags(-2 * Q), sp.diags(V[par]), to_nr(lv)]
        blocks.append(f4)
    else:  # lossless: l is identically zero
        blocks = [[b[0], b[1], b[3]] for b in blocks]
    return sp.csc_array(sp.block_array(blocks))


def _jacobian_all(op: DsoOpf, P: np.ndarray, Q: np.ndarray, L: np.ndarray, V: np.ndarray,
                  sol_on: np.ndarray | None = None) -> sp.csc_array:
    """Block-diagonal Jacobian of all periods at once: the linear rows are the same in every
    period; only the relaxation rows (F4) depend on the state, and are filled vectorised."""
    T, n = P.shape
    zero = np.zeros(n)
    const = sp.csr_array(_jacobian(op, zero, zero, zero, zero))
    k = const.shape[0]
    J = sp.csr_array(sp.kron(sp.identity(T, format="csr"), const))
    if not op.soc:
        return sp.csc_array(J + _capacitor_terms(op, sol_on, k, 2 * n))
    tr = op.tree
    nr = np.arange(1, n)
    par = tr.parent[nr]
    base = (np.arange(T) * k)[:, None]
    row = base + (3 * n - 1) + np.arange(n - 1)  # F4 rows, (T x n-1)
    rows = [row, row, row]
    cols = [base + nr, base + n + nr, base + 2 * n + (nr - 1)]  # P_j, Q_j, l_j
    vals = [-2 * P[:, nr], -2 * Q[:, nr], V[:, par]]
    has = par > 0  # d/dv_parent = l_j where the parent is not the root
    rows.append(row[:, has])
    cols.append(base + 3 * n - 1 + (par[has] - 1))
    vals.append(L[:, nr][:, has])
    f4 = sp.csr_array((np.concatenate([v.ravel() for v in vals]),
                       (np.concatenate([r.ravel() for r in rows]),
                        np.concatenate([c.ravel() for c in cols]))), shape=J.shape)
    return sp.csc_array(J + f4 + _capacitor_terms(op, sol_on, k, 3 * n - 1))


def _capacitor_terms(op: DsoOpf, on: np.ndarray | None, k: int, iv: int) -> sp.csr_array:
    """The switched-in capacitors' d(injection)/dv in the reactive balances (F2 rows): a
    shunt susceptance at their non-root buses, per period (``on``: T x units)."""
    T, n = op.T, op.tree.n
    if on is None or not len(op.cap_at):
        return sp.csr_array((T * k, T * k))
    b = np.zeros((T, n))
    np.add.at(b.T, op.cap_at, (on * op.cap_c[None, :]).T)
    t, j = np.nonzero(b[:, 1:])
    j = j + 1
    return sp.csr_array((b[t, j], (t * k + n + j, t * k + iv + (j - 1))), shape=(T * k, T * k))


def extract(op: DsoOpf, sol: Any, tightened: bool) -> DsoResult:
    """Read a solved :class:`DsoOpf` into a :class:`DsoResult` (with decomposed DLMPs)."""
    tr, T, dt, n = op.tree, op.T, op.dt, op.tree.n
    periods = pd.RangeIndex(T, name="period")
    order = np.argsort(tr.bus_ids, kind="stable")
    bus_cols = tr.bus_ids[order]

    def by_bus(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(np.asarray(a).reshape(T, n)[:, order], index=periods,
                            columns=pd.Index(bus_cols, name="bus"))

    P = sol.value(op.P).reshape(T, n)
    Q = sol.value(op.Q).reshape(T, n)
    L = sol.value(op.L).reshape(T, n)
    V = sol.value(op.V).reshape(T, n)
    lam_p = sol.dual(op.balance_p).reshape(T, n)
    lam_q = sol.dual(op.balance_q).reshape(T, n)
    comps_p = {k: np.zeros((T, n)) for k in COMPONENTS}
    comps_q = {k: np.zeros((T, n)) for k in COMPONENTS}
    pi = _interface_price(op, sol, P[:, 0])
    sens = None
    if op.options.decompose:
        sens = _decompose(op, sol, P, Q, L, V, pi, comps_p, comps_q, tightened)
    nr = np.arange(1, n)
    line_order = np.argsort(tr.line_ids[nr], kind="stable")
    line_cols = pd.Index(tr.line_ids[nr][line_order], name="line")

    def by_line(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(a[:, nr][:, line_order], index=periods, columns=line_cols)

    gap = op._gap(sol)  # noqa: SLF001
    d = op.ders
    der_p = np.zeros((T, len(d)))
    der_q = np.zeros((T, len(d)))
    der_p[:, op.g_idx] = sol.value(op.pg).reshape(T, -1)
    spill_mwh = 0.0
    if len(op.spill_pos):  # price-takers' output spilled in an emergency
        spill = np.maximum(sol.value(op.spill).reshape(T, -1), 0.0)
        der_p[:, op.g_idx[op.spill_pos]] -= spill
        spill_mwh = float(spill.sum() * dt)
    S = len(op.s_idx)
    if S:
        der_p[:, op.s_idx] = (sol.value(op.dis) - sol.value(op.ch)).reshape(T, S)
    if len(op.v_idx):
        der_p[:, op.v_idx] = -sol.value(op.evc).reshape(T, -1)
        if op.evd is not None:  # vehicle-to-grid
            der_p[:, op.v_idx] += sol.value(op.evd).reshape(T, -1)
    if len(op.q_idx):
        der_q[:, op.q_idx] = sol.value(op.qd).reshape(T, -1)
    shed_mwh = float(np.maximum(sol.value(op.shed), 0.0).sum() * dt)
    ev_short = max(float(sol.value(op.ev_short).sum()), 0.0) if len(op.v_idx) else 0.0
    st_short = (max(float(sol.value(op.st_short).sum()), 0.0) if op.st_short is not None
                else 0.0)
    shortfalls = Shortfalls(
        shed_mwh=shed_mwh, unmet_ev_mwh=ev_short, spill_mwh=spill_mwh,
        unmet_storage_mwh=st_short,
        slack_cost=op.system.rules.value_of_lost_load * (shed_mwh + ev_short + spill_mwh
                                                         + st_short),
        soc_gap_max=float(np.nanmax(gap[:, 1:], initial=0.0)) if op.soc else 0.0,
        fictitious_loss_mw=(float(op.fictitious_losses(sol).max(initial=0.0))
                            if op.soc else 0.0))
    tools = {}
    if tr.oltc is not None:
        tools["v_root_pu"] = pd.Series(np.sqrt(np.maximum(V[:, 0], 0.0)), index=periods)
    if op.tap_moves is not None:
        per_w = tr.oltc.tap_cost / (2 * tr.v_root * tr.oltc.tap)
        tools["tap_cost"] = float(per_w * np.maximum(sol.value(op.tap_moves), 0).sum())
    if len(op.cap_at):
        on = sol.value(op.cap_on).reshape(T, -1) * op.cap_c[None, :]  # MVAr at 1.0 pu
        banks = np.unique(op.cap_at)
        per_bus = np.zeros((T, n))
        np.add.at(per_bus.T, op.cap_at, on.T)
        tools["cap_mvar"] = pd.DataFrame(per_bus[:, banks], index=periods,
                                         columns=pd.Index(tr.bus_ids[banks], name="bus"))
    return DsoResult(
        **tools,
        status=shortfalls.status(sol.status),
        objective=float(sol.objective),
        dlmp_p=by_bus(lam_p / dt),
        dlmp_q=by_bus(lam_q / dt),
        dlmp_p_components={k: by_bus(v) for k, v in comps_p.items()},
        dlmp_q_components={k: by_bus(v) for k, v in comps_q.items()},
        interface_p_mw=pd.Series(P[:, 0], index=periods),
        interface_q_mvar=pd.Series(Q[:, 0], index=periods),
        losses_mw=pd.Series((L * tr.r).sum(axis=1), index=periods),
        voltage_pu=by_bus(np.sqrt(np.maximum(V, 0))),
        flow_p_mw=by_line(P),
        flow_q_mvar=by_line(Q),
        der_p_mw=pd.DataFrame(der_p, index=periods, columns=d.der_id.to_numpy()),
        der_q_mvar=pd.DataFrame(der_q, index=periods, columns=d.der_id.to_numpy()),
        storage_energy_mwh=pd.DataFrame(sol.value(op.e).reshape(T, S), index=periods,
                                        columns=d.der_id.to_numpy()[op.s_idx]),
        shed_mw=by_bus(sol.value(op.shed)),
        soc_gap=by_line(gap) if op.soc else by_line(np.zeros((T, n))),
        tightened=tightened,
        interface_marginal_price=pd.Series(pi, index=periods),
        ev_shortfall_mwh=ev_short,
        shortfalls=shortfalls,
        interface_sensitivity_p=None if sens is None else by_bus(sens[:, :n]),
        interface_sensitivity_q=None if sens is None else by_bus(sens[:, n:]),
    )


def _interface_price(op: DsoOpf, sol: Any, p0: np.ndarray) -> np.ndarray:
    """Marginal price of interface power per period, $/MWh."""
    if op.schedule_row is not None:
        return -sol.dual(op.schedule_row) / op.dt
    if op.steps is not None:
        rows = op.model.con_blocks[f"{op.prefix}bid_curve"]
        return -sol.dual(rows) / op.dt
    return op.price_vec + 2 * op.boundary.price_c2 * p0


def _cone_mu(sol: Any, cone: Any, T: int) -> np.ndarray:
    """Multiplier per unit of apparent power of circle constraints ||s|| <= S (>= 0)."""
    return np.maximum(-sol.cone_dual(cone)[:, 0], 0.0).reshape(T, -1)


def _decompose(op: DsoOpf, sol: Any, P: np.ndarray, Q: np.ndarray, L: np.ndarray,
               V: np.ndarray, pi: np.ndarray, cp: dict[str, np.ndarray],
               cq: dict[str, np.ndarray], tightened: bool) -> np.ndarray:
    """Fill the components ``cp`` and ``cq``; return the physical sensitivity of the
    interface import to each bus's demand, ``dP0/dP_j`` then ``dP0/dQ_j`` (T x 2n, tree
    order): 1 plus the marginal loss factor."""
    tr, T, dt, n = op.tree, op.T, op.dt, op.tree.n
    nr = np.arange(1, n)
    z_v = sol.reduced_cost(op.V).reshape(T, n)[:, nr]  # d obj / d bound of v (non-root)
    rated = op.rated
    if op.soc:
        z_l = sol.reduced_cost(op.L).reshape(T, n)[:, nr]  # current (ampacity) limits
        mu_send = None
        mu_sub = _cone_mu(sol, op.sub, T) if op.sub is not None else None
    else:
        def rows(block: Any) -> np.ndarray | None:
            if block is None:
                return None
            return np.maximum(-sol.dual(block), 0.0).reshape(8, T, -1)

        mu_send, mu_sub = rows(op.line_send), rows(op.sub)
    k = 4 * n - 2 if op.soc else 3 * n - 1
    ip, iq = 0, n  # state offsets of P and Q
    il = 2 * n if op.soc else None  # l of non-root buses (SOC only)
    iv = 3 * n - 1 if op.soc else 2 * n  # v of non-root buses
    grads = np.zeros((T, k, 4))
    for t in range(T):
        # component(j) = g' S_j = g' J^-1 e_j = (J^-T g)_j: one solve per gradient g
        g = grads[t]  # columns: dP0 (loss), voltage, congestion, loss penalty
        g[ip, 0] = 1.0
        if tightened and op.soc:  # the tightening penalty is a cost on resistive losses
            g[il:il + n - 1, 3] = op.applied_penalty * tr.r[1:]
        g[iv:iv + n - 1, 1] = -z_v[t] / dt
        if op.soc:
            g[il:il + n - 1, 2] = -z_l[t] / dt
        elif mu_send is not None:
            for a, (ca, cb) in enumerate(OCTAGON):
                np.add.at(g[:, 2], ip + rated, ca * mu_send[a, t] / dt)
                np.add.at(g[:, 2], iq + rated, cb * mu_send[a, t] / dt)
        if mu_sub is not None and op.soc:
            mag = np.hypot(P[t, 0], Q[t, 0])
            if mag > 1e-12:
                g[ip, 2] += mu_sub[t, 0] * P[t, 0] / mag / dt
                g[iq, 2] += mu_sub[t, 0] * Q[t, 0] / mag / dt
        elif mu_sub is not None:
            for a, (ca, cb) in enumerate(OCTAGON):
                g[ip, 2] += ca * mu_sub[a, t, 0] / dt
                g[iq, 2] += cb * mu_sub[a, t, 0] / dt
    on = sol.value(op.cap_on).reshape(T, -1) if len(op.cap_at) else None
    ys = splu(_jacobian_all(op, P, Q, L, V, on).T.tocsc()).solve(grads.reshape(T * k, 4))
    ys = ys.reshape(T, k, 4)
    at = np.r_[np.arange(n), n + np.arange(n)]  # rows of F1 (P) and F2 (Q)
    sens = ys[:, at, 0]
    for t in range(T):
        y = ys[t]
        energy = np.r_[np.full(n, pi[t]), np.zeros(n)]
        loss = pi[t] * y[at, 0] - energy + y[at, 3]
        voltage = y[at, 1]
        cong = y[at, 2]
        for name, part in (("energy", energy), ("loss", loss), ("congestion", cong),
                           ("voltage", voltage)):
            cp[name][t], cq[name][t] = part[:n], part[n:]
    return sens
