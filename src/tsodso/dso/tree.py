"""A radial feeder as an oriented tree in per unit (1 MVA base, nominal kV), for the OPF.

Every non-root bus ``j`` has exactly one parent line, so lines are indexed by their
downstream bus: ``parent[j]`` is the upstream bus and ``r[j], x[j]`` the line's impedance.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.sparse.csgraph import breadth_first_order

from tsodso.errors import Issue, ValidationError
from tsodso.model.network import Feeder

S_BASE_MVA = 1.0


@dataclass(frozen=True)
class Oltc:
    """A substation on-load tap changer: it sets the root voltage within ``[v_min, v_max]``
    pu, in steps of ``tap`` pu when ``discrete``; each tap moved costs ``tap_cost`` $."""

    v_min: float
    v_max: float
    tap: float
    discrete: bool
    tap_cost: float


@dataclass
class FeederTree:
    """Oriented radial feeder.

    Attributes
    ----------
    bus_ids : numpy.ndarray
        Case bus numbers in breadth-first order from the root (position 0).
    parent : numpy.ndarray
        Position of each bus's upstream bus (-1 for the root).
    line_ids : numpy.ndarray
        Id of the line feeding each bus (-1 for the root).
    r, x, b_half : numpy.ndarray
        Per-unit series resistance and reactance of the line feeding each bus, and half its
        shunt susceptance (0 for the root).
    s_max : numpy.ndarray
        Line rating in pu (MVA on 1 MVA; inf = unlimited), per bus.
    v_min, v_max : numpy.ndarray
        Voltage limits per bus, pu.
    v_root : float
        Root (substation secondary) voltage, pu.
    s_sub : float
        Substation transformer rating, pu.
    oltc : Oltc or None
        The substation's on-load tap changer (None: the root is held at ``v_root``).
    cap_step : numpy.ndarray
        Switched capacitor bank per bus: MVAr (pu) of one step at 1.0 pu voltage (0: none).
    cap_steps : numpy.ndarray
        Number of steps of each bank (int).
    """

    feeder_id: str
    bus_ids: np.ndarray
    parent: np.ndarray
    line_ids: np.ndarray
    r: np.ndarray
    x: np.ndarray
    b_half: np.ndarray
    s_max: np.ndarray
    v_min: np.ndarray
    v_max: np.ndarray
    v_root: float
    s_sub: float
    z_base: float
    oltc: Oltc | None = None
    cap_step: np.ndarray = field(default_factory=lambda: np.zeros(0))
    cap_steps: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))

    @property
    def has_tools(self) -> bool:
        """Whether the DSO has a tap changer or capacitor banks on this feeder."""
        return self.oltc is not None or bool((self.cap_step > 0).any())

    def tap_positions(self) -> np.ndarray:
        """The root voltages the tap changer can set, pu (``v_root + k * tap`` within
        its band), ascending."""
        o = self.oltc
        if o is None:
            return np.array([self.v_root])
        k_lo = np.ceil((o.v_min - self.v_root) / o.tap - 1e-9)
        k_hi = np.floor((o.v_max - self.v_root) / o.tap + 1e-9)
        return self.v_root + np.arange(k_lo, k_hi + 1) * o.tap

    @property
    def n(self) -> int:
        return len(self.bus_ids)

    def positions(self, bus_ids: np.ndarray | pd.Series) -> np.ndarray:
        pos = pd.Index(self.bus_ids).get_indexer(np.asarray(bus_ids))
        if (pos < 0).any():
            bad = np.asarray(bus_ids)[pos < 0][0]
            raise ValidationError([Issue("feeder_buses", "bus_id", f"{self.feeder_id}/{bad}",
                                         "unknown bus of the feeder")])
        return pos

    def children_matrix(self) -> sp.csr_array:
        """(n x n) matrix C with C[i, j] = 1 when bus j's parent is i."""
        j = np.arange(1, self.n)
        return sp.csr_array((np.ones(len(j)), (self.parent[j], j)), shape=(self.n, self.n))


def feeder_tree(feeder: Feeder) -> FeederTree:
    """Orient ``feeder`` from its root and convert it to per unit."""
    info = feeder.info
    buses = feeder.buses
    lines = feeder.lines[feeder.lines.in_service]
    ids = buses.bus_id.to_numpy()
    index = pd.Index(ids)
    f = index.get_indexer(lines.from_bus.to_numpy())
    t = index.get_indexer(lines.to_bus.to_numpy())
    n = len(ids)
    graph = sp.csr_array((np.ones(len(f)), (f, t)), shape=(n, n))
    root = index.get_loc(int(info["root_bus"]))
    order, pred = breadth_first_order(graph, root, directed=False)
    if len(order) != n or len(lines) != n - 1:
        raise ValidationError([Issue("feeders", "", str(info["feeder_id"]),
                                     "feeder is not a connected radial tree")])
    pos = np.empty(n, dtype=int)
    pos[order] = np.arange(n)
    parent = np.full(n, -1)
    parent[pos[order[1:]]] = pos[pred[order[1:]]]
    child_of_line = np.where(pred[t] == f, t, f)  # downstream end of each line
    at = pos[child_of_line]
    z_base = float(info["nominal_kv"]) ** 2 / S_BASE_MVA
    r = np.zeros(n)
    x = np.zeros(n)
    b_half = np.zeros(n)
    s_max = np.full(n, np.inf)
    line_ids = np.full(n, -1)
    r[at] = lines.r_ohm.to_numpy() / z_base
    x[at] = lines.x_ohm.to_numpy() / z_base
    b_half[at] = lines.b_us.to_numpy() * 1e-6 * z_base / 2
    s_max[at] = lines.rating_mva.to_numpy() / S_BASE_MVA
    line_ids[at] = lines.line_id.to_numpy()
    vmin = buses.v_min_pu.fillna(float(info["v_min_pu"])).to_numpy()
    vmax = buses.v_max_pu.fillna(float(info["v_max_pu"])).to_numpy()
    cap = buses.get("cap_mvar", pd.Series(0.0, index=buses.index)).to_numpy(float)
    steps = buses.get("cap_steps", pd.Series(1, index=buses.index)).to_numpy(int)
    oltc = _oltc(info)
    return FeederTree(
        feeder_id=str(info["feeder_id"]), bus_ids=ids[order], parent=parent,
        line_ids=line_ids, r=r, x=x, b_half=b_half, s_max=s_max, v_min=vmin[order],
        v_max=vmax[order], v_root=float(info["v_root_pu"]),
        s_sub=float(info["substation_mva"]) / S_BASE_MVA, z_base=z_base, oltc=oltc,
        cap_step=(cap / np.maximum(steps, 1))[order] / S_BASE_MVA,
        cap_steps=np.where(cap > 0, steps, 0)[order],
    )


def _oltc(info: pd.Series) -> Oltc | None:
    """The feeder's tap changer from its ``oltc_*`` fields (None when it has none)."""
    lo, hi = float(info.get("oltc_v_min_pu", np.nan)), float(info.get("oltc_v_max_pu", np.nan))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return None
    fid = str(info["feeder_id"])
    v_root = float(info["v_root_pu"])
    if not lo <= v_root <= hi:
        raise ValidationError([Issue("feeders", "oltc_v_min_pu", fid, f"the tap changer's band "
                                     f"[{lo}, {hi}] pu must contain v_root_pu {v_root}")])
    return Oltc(lo, hi, float(info.get("oltc_tap_pu", 0.00625)),
                bool(info.get("oltc_discrete", True)), float(info.get("oltc_tap_cost", 0.0)))
