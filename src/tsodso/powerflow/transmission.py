"""AC power flow of the (meshed) transmission grid, solved by pandapower.

The grid tables are handed to pandapower as a MATPOWER-format case (``from_ppc``) and solved
with its Newton-Raphson ``runpp``. Two details keep the result identical to MATPOWER's
``runpf`` (tests: case9 ... case300 within 1e-9 pu):

* every bus gets the same base voltage (1 kV). Per-unit results do not depend on it, and it
  keeps each transformer's tap on its *from* side as in MATPOWER (pandapower puts taps on the
  high-voltage side) and stops branches between voltage levels from becoming ``impedance``
  elements, which drop the line charging;
* the charging ``b_pu`` of transformers (branches with an off-nominal ratio or a phase shift)
  is moved to bus shunts: ``b/2 / tap**2`` at the from bus and ``b/2`` at the to bus, exactly
  MATPOWER's branch model (pandapower would turn it into inductive magnetising current). The
  reported branch flows add the charging back, so they are MATPOWER's ``PF, QF, PT, QT``.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from tsodso.errors import Issue, TsodsoError, ValidationError
from tsodso.model.network import TransmissionGrid
from tsodso.powerflow.result import VIOLATION_COLUMNS

UNIFORM_KV = 1.0


@dataclass
class TransmissionPowerFlowResult:
    """One AC power flow of the transmission grid (MW, MVAr, pu, degrees).

    ``vm_pu``/``va_deg`` are indexed by ``bus_id`` (NaN for isolated buses); branch series
    by ``branch_id`` (``p_from_mw`` etc. are the power entering the branch at each end,
    including line charging; 0 for out-of-service branches); ``gen_p_mw``/``gen_q_mvar``
    by ``gen_id`` (0 for generators out of service). ``loading_pct`` is
    ``100 * max(|S_from|, |S_to|) / rate_a_mva`` (NaN if unlimited). ``p_loss_mw`` is the
    sum of ``p_from + p_to``; ``q_loss_mvar`` the series reactive losses (like MATPOWER's
    ``get_losses``: charging excluded).
    """

    converged: bool
    vm_pu: pd.Series
    va_deg: pd.Series
    p_from_mw: pd.Series
    q_from_mvar: pd.Series
    p_to_mw: pd.Series
    q_to_mvar: pd.Series
    loading_pct: pd.Series
    gen_p_mw: pd.Series
    gen_q_mvar: pd.Series
    p_loss_mw: float
    q_loss_mvar: float
    v_min_limit: pd.Series
    v_max_limit: pd.Series
    message: str = ""

    def violations(self, max_loading_pct: float = 100.0, tol: float = 0.0) -> pd.DataFrame:
        """Buses outside their ``vmin_pu``..``vmax_pu`` and branches above
        ``max_loading_pct`` of rate A; same columns as
        :meth:`tsodso.powerflow.PowerFlowResult.violations` (period 0)."""
        vm = self.vm_pu
        rows = []
        for mask, kind, limit in ((vm < self.v_min_limit - tol, "undervoltage", self.v_min_limit),
                                  (vm > self.v_max_limit + tol, "overvoltage", self.v_max_limit)):
            rows.append(pd.DataFrame({"element": "bus", "element_id": vm.index[mask],
                                      "kind": kind, "value": vm[mask].to_numpy(),
                                      "limit": limit[mask].to_numpy()}))
        over = self.loading_pct > max_loading_pct + tol
        rows.append(pd.DataFrame({"element": "branch", "element_id": self.loading_pct.index[over],
                                  "kind": "overload", "value": self.loading_pct[over].to_numpy(),
                                  "limit": float(max_loading_pct)}))
        table = pd.concat(rows, ignore_index=True)
        table.insert(0, "period", 0)
        if len(table):
            table = table.sort_values(["element", "element_id"], key=_element_order,
                                      kind="stable")
        return table[list(VIOLATION_COLUMNS)].reset_index(drop=True)

    def check(self) -> TransmissionPowerFlowResult:
        """Return self, or raise :class:`~tsodso.powerflow.NotConvergedError`."""
        if not self.converged:
            from tsodso.powerflow.result import NotConvergedError

            raise NotConvergedError(f"transmission power flow did not converge: {self.message}")
        return self


def _element_order(col: pd.Series) -> pd.Series:
    if col.name == "element":
        return col.map({"bus": 0, "branch": 1})
    return col


def transmission_power_flow(
    grid: TransmissionGrid,
    pg_mw: pd.Series | None = None,
    bus_p_mw: pd.Series | None = None,
    bus_q_mvar: pd.Series | None = None,
    enforce_q_limits: bool = False,
    tolerance_mva: float = 1e-9,
    max_iteration: int = 30,
) -> TransmissionPowerFlowResult:
    """AC power flow of the grid with generator set points and optional extra demand.

    Parameters
    ----------
    grid : TransmissionGrid
        The grid; loads, shunts, taps and voltage set points as in its tables.
    pg_mw : pandas.Series, optional
        Active power set points by ``gen_id`` (e.g. one period of a market dispatch),
        replacing ``pg_mw`` of the listed generators. The reference bus's generators pick
        up the balance (losses and any mismatch).
    bus_p_mw, bus_q_mvar : pandas.Series, optional
        Extra demand by ``bus_id`` (positive = consumption), added to the grid's loads: for
        example the power feeders draw at their interface buses.
    enforce_q_limits : bool
        Let pandapower turn generators at their Q limits into PQ buses (off by default, as
        MATPOWER's ``runpf``).

    Returns
    -------
    TransmissionPowerFlowResult
        ``converged`` False (with NaN results) if Newton-Raphson does not converge.
    """
    import pandapower as pp
    from pandapower.converter.pypower import from_ppc

    ppc, trafo_b, branch_pos = _ppc(grid, pg_mw, bus_p_mw, bus_q_mvar)
    logging.getLogger("pandapower").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net = from_ppc(ppc, f_hz=50)
        try:
            pp.runpp(net, algorithm="nr", init="dc", calculate_voltage_angles=True,
                     tolerance_mva=tolerance_mva, max_iteration=max_iteration,
                     enforce_q_lims=enforce_q_limits, numba=False)
            converged, message = True, ""
        except pp.LoadflowNotConverged as err:
            converged, message = False, str(err)
    return _collect(grid, net, ppc, trafo_b, branch_pos, converged, message)


def _ppc(grid: TransmissionGrid, pg_mw: pd.Series | None, bus_p_mw: pd.Series | None,
         bus_q_mvar: pd.Series | None) -> tuple[dict, np.ndarray, tuple[np.ndarray, np.ndarray]]:
    b, g, br = grid.buses, grid.generators, grid.branches
    index = pd.Index(b.bus_id.to_numpy(dtype=np.int64))
    n = len(index)
    if n == 0:
        raise ValidationError([Issue("buses", "", grid.name, "grid has no buses")])
    issues: list[Issue] = []

    def positions(ids: pd.Series | np.ndarray, table: str, column: str) -> np.ndarray:
        pos = index.get_indexer(np.asarray(ids))
        for bad in np.asarray(ids)[pos < 0][:10]:
            issues.append(Issue(table, column, str(bad), "unknown bus"))
        return pos

    loads = grid.loads[grid.loads.in_service]
    load_pos = positions(loads.bus_id, "loads", "bus_id")
    positions(g.bus_id, "generators", "bus_id")
    f = positions(br.from_bus, "branches", "from_bus")
    t = positions(br.to_bus, "branches", "to_bus")
    extra = {}
    for name, series in (("bus_p_mw", bus_p_mw), ("bus_q_mvar", bus_q_mvar)):
        values = np.zeros(n)
        if series is not None:
            pos = positions(series.index, name, "bus_id")
            data = series.to_numpy(dtype=float)
            for bus in series.index[~np.isfinite(data)][:10]:
                issues.append(Issue(name, "bus_id", str(bus), "value is NaN or infinite"))
            np.add.at(values, pos[pos >= 0], data[pos >= 0])
        extra[name] = values
    pg = g.pg_mw.to_numpy(dtype=float).copy()
    if pg_mw is not None:
        gpos = pd.Index(g.gen_id).get_indexer(pg_mw.index)
        for gid in pg_mw.index[gpos < 0][:10]:
            issues.append(Issue("pg_mw", "gen_id", str(gid), "unknown generator"))
        data = pg_mw.to_numpy(dtype=float)
        for gid in pg_mw.index[~np.isfinite(data)][:10]:
            issues.append(Issue("pg_mw", "gen_id", str(gid), "value is NaN or infinite"))
        pg[gpos[gpos >= 0]] = data[gpos >= 0]
    if issues:
        raise ValidationError(issues)

    bus = np.zeros((n, 13))
    bus[:, 0] = index
    bus[:, 1] = b.bus_type
    np.add.at(bus[:, 2], load_pos, loads.p_mw.to_numpy(dtype=float))
    np.add.at(bus[:, 3], load_pos, loads.q_mvar.to_numpy(dtype=float))
    bus[:, 2] += extra["bus_p_mw"]
    bus[:, 3] += extra["bus_q_mvar"]
    bus[:, 4] = b.gs_mw
    bus[:, 5] = b.bs_mvar
    bus[:, 6] = b.area
    bus[:, 7] = b.vm_pu
    bus[:, 8] = b.va_deg
    bus[:, 9] = UNIFORM_KV
    bus[:, 10] = b.zone
    bus[:, 11] = b.vmax_pu
    bus[:, 12] = b.vmin_pu

    gen = np.zeros((len(g), 21))
    gen[:, 0] = g.bus_id
    gen[:, 1] = pg
    gen[:, 2] = g.qg_mvar
    gen[:, 3] = np.clip(g.qmax_mvar, -1e9, 1e9)
    gen[:, 4] = np.clip(g.qmin_mvar, -1e9, 1e9)
    gen[:, 5] = g.vg_pu
    gen[:, 6] = g.mbase_mva
    gen[:, 7] = g.in_service
    gen[:, 8] = np.clip(g.pmax_mw, -1e9, 1e9)
    gen[:, 9] = np.clip(g.pmin_mw, -1e9, 1e9)

    tap = br.tap_ratio.to_numpy(dtype=float)
    shift = br.shift_deg.to_numpy(dtype=float)
    is_trafo = (tap != 1.0) | (shift != 0.0)
    b_pu = br.b_pu.to_numpy(dtype=float)
    trafo_b = np.where(is_trafo, b_pu, 0.0)
    live = br.in_service.to_numpy(dtype=bool)
    moved = live & is_trafo
    np.add.at(bus[:, 5], f[moved], trafo_b[moved] / 2 / tap[moved] ** 2 * grid.base_mva)
    np.add.at(bus[:, 5], t[moved], trafo_b[moved] / 2 * grid.base_mva)

    branch = np.zeros((len(br), 13))
    branch[:, 0] = br.from_bus
    branch[:, 1] = br.to_bus
    branch[:, 2] = br.r_pu
    branch[:, 3] = br.x_pu
    branch[:, 4] = np.where(is_trafo, 0.0, b_pu)
    for k, col in enumerate(("rate_a_mva", "rate_b_mva", "rate_c_mva")):
        rate = br[col].to_numpy(dtype=float)
        branch[:, 5 + k] = np.where(np.isfinite(rate), rate, 0.0)
    branch[:, 8] = np.where(is_trafo, tap, 0.0)
    branch[:, 9] = shift
    branch[:, 10] = live
    branch[:, 11] = br.angmin_deg
    branch[:, 12] = br.angmax_deg
    ppc = {"version": "2", "baseMVA": float(grid.base_mva), "bus": bus, "gen": gen,
           "branch": branch}
    return ppc, trafo_b, (f, t)


def _collect(grid: TransmissionGrid, net, ppc: dict, trafo_b: np.ndarray,  # noqa: ANN001
             branch_pos: tuple[np.ndarray, np.ndarray], converged: bool,
             message: str) -> TransmissionPowerFlowResult:
    b, g, br = grid.buses, grid.generators, grid.branches
    bus_ids = pd.Index(b.bus_id.to_numpy(dtype=np.int64), name="bus_id")
    branch_ids = pd.Index(br.branch_id.to_numpy(dtype=np.int64), name="branch_id")
    gen_ids = pd.Index(g.gen_id.to_numpy(dtype=np.int64), name="gen_id")
    v_lo = pd.Series(b.vmin_pu.to_numpy(dtype=float), index=bus_ids, name="vmin_pu")
    v_hi = pd.Series(b.vmax_pu.to_numpy(dtype=float), index=bus_ids, name="vmax_pu")
    lookups = getattr(net, "_from_ppc_lookups", None)
    if lookups is None:  # pragma: no cover - guards against a pandapower API change
        raise TsodsoError("pandapower's from_ppc no longer records its element lookups; "
                          "the transmission power flow needs a compatible pandapower")
    n_br, n_gen = len(br), len(g)
    if not converged:
        nan_b, nan_br, nan_g = (np.full(k, np.nan) for k in (len(b), n_br, n_gen))
        return TransmissionPowerFlowResult(
            False, pd.Series(nan_b, bus_ids), pd.Series(nan_b, bus_ids),
            *(pd.Series(nan_br, branch_ids) for _ in range(5)),
            pd.Series(nan_g, gen_ids), pd.Series(nan_g, gen_ids), np.nan, np.nan, v_lo, v_hi,
            message)
    vm = net.res_bus.vm_pu.reindex(bus_ids).to_numpy(dtype=float)
    va = net.res_bus.va_degree.reindex(bus_ids).to_numpy(dtype=float)

    flows = np.zeros((n_br, 4))
    look = lookups["branch"]
    columns = {"line": ("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar"),
               "trafo": ("p_hv_mw", "q_hv_mvar", "p_lv_mw", "q_lv_mvar"),
               "impedance": ("p_from_mw", "q_from_mvar", "p_to_mw", "q_to_mvar")}
    for kind, cols in columns.items():
        rows = np.flatnonzero((look.element_type == kind).to_numpy())
        if len(rows):
            res = net[f"res_{kind}"].loc[look.element.to_numpy()[rows].astype(np.int64)]
            flows[rows] = res[list(cols)].to_numpy(dtype=float)
    flows = np.nan_to_num(flows)
    f, t = branch_pos
    tap = ppc["branch"][:, 8]
    tap = np.where(tap == 0, 1.0, tap)
    live = ppc["branch"][:, 10] > 0
    charge = np.where(live, trafo_b / 2 * grid.base_mva, 0.0)
    flows[:, 1] -= charge / tap**2 * vm[f] ** 2
    flows[:, 3] -= charge * vm[t] ** 2
    s_max = np.maximum(np.hypot(flows[:, 0], flows[:, 1]), np.hypot(flows[:, 2], flows[:, 3]))
    rate = br.rate_a_mva.to_numpy(dtype=float)
    loading = np.where(np.isfinite(rate), 100 * s_max / rate, np.nan)

    gen_pq = np.zeros((n_gen, 2))
    look = lookups["gen"]
    for kind in ("gen", "ext_grid", "sgen"):
        rows = np.flatnonzero((look.element_type == kind).to_numpy())
        if len(rows):
            res = net[f"res_{kind}"].loc[look.element.to_numpy()[rows].astype(np.int64)]
            gen_pq[rows] = res[["p_mw", "q_mvar"]].to_numpy(dtype=float)
    gen_pq = np.nan_to_num(gen_pq) * g.in_service.to_numpy(dtype=bool)[:, None]

    # series losses |I|^2 z, like MATPOWER's get_losses (charging excluded)
    vf = vm[f] * np.exp(1j * np.radians(va[f]))
    vt = vm[t] * np.exp(1j * np.radians(va[t]))
    z = ppc["branch"][:, 2] + 1j * ppc["branch"][:, 3]
    ratio = tap * np.exp(1j * np.radians(ppc["branch"][:, 9]))
    with np.errstate(divide="ignore", invalid="ignore"):
        series = np.where(live, np.abs(vf / ratio - vt) ** 2 / np.conj(z), 0.0)
    loss = np.nan_to_num(series) * grid.base_mva

    def s(values: np.ndarray, idx: pd.Index, name: str) -> pd.Series:
        return pd.Series(values, index=idx, name=name)

    return TransmissionPowerFlowResult(
        True, s(vm, bus_ids, "vm_pu"), s(va, bus_ids, "va_deg"),
        s(flows[:, 0], branch_ids, "p_from_mw"), s(flows[:, 1], branch_ids, "q_from_mvar"),
        s(flows[:, 2], branch_ids, "p_to_mw"), s(flows[:, 3], branch_ids, "q_to_mvar"),
        s(loading, branch_ids, "loading_pct"),
        s(gen_pq[:, 0], gen_ids, "gen_p_mw"), s(gen_pq[:, 1], gen_ids, "gen_q_mvar"),
        float(flows[:, 0].sum() + flows[:, 2].sum()), float(loss.imag.sum()), v_lo, v_hi)
