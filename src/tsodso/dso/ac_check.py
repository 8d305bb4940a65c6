"""Check a DSO dispatch with an AC power flow (power-grid-model) on the same feeder."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from tsodso.powerflow import FeederPowerFlow, PowerFlowResult

#: Smallest flow (MVA) that unrated lines' errors are measured against: 1 kVA. Below it a
#: solver's 1e-8 MVA noise on an idle feeder (all load shed) would read as a % error.
UNRATED_FLOW_FLOOR_MVA = 1e-3

if TYPE_CHECKING:
    from tsodso.dso.inputs import FeederInputs
    from tsodso.dso.opf import DsoOpf, DsoResult


def dispatch_power_flow(op: DsoOpf | FeederInputs, result: DsoResult) -> PowerFlowResult:
    """AC power flow of the OPF's dispatch: loads (less shed load), DER P and Q, the root
    voltage its tap changer set and the capacitor steps switched in."""
    tr = op.tree
    bus_order = np.argsort(tr.bus_ids, kind="stable")
    ids = tr.bus_ids[bus_order]
    shed = result.shed_mw.to_numpy()
    load_p = op.p_load[:, bus_order] - shed
    pf_q = np.divide(op.q_load, op.p_load, out=np.zeros_like(op.q_load), where=op.p_load > 0)
    load_q = op.q_load[:, bus_order] - shed * pf_q[:, bus_order]
    d = op.ders
    pos = pd.Index(ids).get_indexer(d.bus_id.to_numpy())
    to_bus = np.zeros((len(d), len(ids)))
    to_bus[np.arange(len(d)), pos] = 1.0
    inj_p = result.der_p_mw.to_numpy() @ to_bus
    inj_q = result.der_q_mvar.to_numpy() @ to_bus
    frame = lambda a: pd.DataFrame(a, index=result.dlmp_p.index, columns=ids)  # noqa: E731
    pf = FeederPowerFlow(op.feeder)
    # the DSO's tools as the dispatch set them: tap changer and capacitor banks
    v_root = None if result.v_root_pu is None else result.v_root_pu.to_numpy()
    caps = None
    if result.cap_mvar is not None:
        caps = result.cap_mvar.set_axis(result.dlmp_p.index)
    return pf.run(frame(load_p), frame(load_q), frame(inj_p), frame(inj_q), v_root_pu=v_root,
                  cap_mvar=caps)


def ac_check(op: DsoOpf, result: DsoResult) -> dict[str, float]:
    """Largest voltage (pu) and flow (% of rating, or where unrated of the largest flow, at
    least :data:`UNRATED_FLOW_FLOOR_MVA`) differences between the OPF and an AC power flow
    of its dispatch, and the violations the AC power flow finds."""
    pf = dispatch_power_flow(op, result)
    v_err = _nanmax(np.abs(pf.vm_pu[result.voltage_pu.columns].to_numpy()
                           - result.voltage_pu.to_numpy()))
    lines = op.feeder.lines.set_index("line_id")
    cols = result.flow_p_mw.columns
    tr = op.tree
    # the OPF measures each line's flow at its upstream end
    parent_bus = pd.Series(tr.bus_ids[tr.parent[1:]], index=tr.line_ids[1:]).loc[cols]
    at_from = (lines.loc[cols, "from_bus"].to_numpy() == parent_bus.to_numpy())
    p_pf = np.where(at_from, pf.p_from_mw[cols].to_numpy(), pf.p_to_mw[cols].to_numpy())
    q_pf = np.where(at_from, pf.q_from_mvar[cols].to_numpy(), pf.q_to_mvar[cols].to_numpy())
    s_err = np.hypot(p_pf - result.flow_p_mw.to_numpy(), q_pf - result.flow_q_mvar.to_numpy())
    rating = lines.loc[cols, "rating_mva"].to_numpy()
    scale = np.where(np.isfinite(rating), rating, max(_nanmax(np.hypot(p_pf, q_pf)),
                                                             UNRATED_FLOW_FLOOR_MVA))
    violations = pf.violations(tol=1e-4)
    # periods whose power flow did not converge hold NaN: counted, never read as "no error"
    return {
        "max_voltage_error_pu": v_err,
        "max_flow_error_pct": _nanmax(100 * s_err / scale),
        "violations": int(len(violations)),
        "converged": bool(pf.converged.all()),
        "not_converged_periods": int((~pf.converged.to_numpy()).sum()),
    }


def _nanmax(values: np.ndarray) -> float:
    """Largest value over the periods that converged; NaN (unknown, never 0) when none
    did."""
    return float(np.nanmax(values)) if np.isfinite(values).any() else float("nan")
