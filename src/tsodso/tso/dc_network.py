"""DC network model of a transmission grid, as MATPOWER's ``makeBdc`` defines it.

Flows and injections are in MW and angles in radians: with ``b = base_mva / (x * tap)`` for
in-service branches, the from-end flow is ``Pf = Bf @ theta + pf_shift`` and the net injection
at the buses is ``Bbus @ theta + p_shift_bus`` (phase shifters enter through the ``*_shift``
terms). Bus shunt conductance ``gs_mw`` is a constant load, as in MATPOWER's DC model.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from tsodso.errors import Issue, ValidationError
from tsodso.model.network import TransmissionGrid


@dataclass
class DcNetwork:
    """Sparse DC matrices of the in-service part of a grid.

    Attributes
    ----------
    bus_ids : numpy.ndarray
        Case bus numbers of the modelled (non-isolated) buses, in model order.
    branch_ids : numpy.ndarray
        Ids of the in-service branches, in model order.
    bbus : scipy.sparse.csr_array
        Nodal susceptance matrix, MW/rad (n_bus x n_bus).
    bf : scipy.sparse.csr_array
        Branch flow matrix, MW/rad (n_branch x n_bus).
    pf_shift : numpy.ndarray
        From-end flow caused by phase shifters at zero angles, MW.
    pbus_shift : numpy.ndarray
        Net injection from phase shifters at zero angles, MW.
    ref : numpy.ndarray
        Model positions of the reference buses.
    ref_angle : numpy.ndarray
        Their voltage angles, rad.
    rate : numpy.ndarray
        Branch long-term ratings (rate A), MW (inf = unlimited).
    from_pos, to_pos : numpy.ndarray
        Model positions of branch end buses.
    r_pu : numpy.ndarray
        Branch series resistance, per unit on ``base_mva`` (for loss factors).
    base_mva : float
        System base, MVA.
    """

    bus_ids: np.ndarray
    branch_ids: np.ndarray
    bbus: sp.csr_array
    bf: sp.csr_array
    pf_shift: np.ndarray
    pbus_shift: np.ndarray
    ref: np.ndarray
    ref_angle: np.ndarray
    rate: np.ndarray
    from_pos: np.ndarray
    to_pos: np.ndarray
    r_pu: np.ndarray
    base_mva: float

    @property
    def n_bus(self) -> int:
        return len(self.bus_ids)

    @property
    def n_branch(self) -> int:
        return len(self.branch_ids)

    def positions(self, bus_ids: np.ndarray | pd.Series, what: str = "bus") -> np.ndarray:
        """Model positions of case bus numbers (raises naming the first unknown one)."""
        pos = pd.Index(self.bus_ids).get_indexer(np.asarray(bus_ids))
        if (pos < 0).any():
            bad = np.asarray(bus_ids)[pos < 0][0]
            raise ValidationError([Issue(what, "bus_id", str(bad),
                                         "bus is isolated or unknown in the DC model")])
        return pos

    def ptdf(self) -> np.ndarray:
        """Dense PTDF (MW of branch flow per MW injected at each bus, withdrawn at the
        reference bus). For checks and small systems; the market itself uses B-theta."""
        keep = np.setdiff1d(np.arange(self.n_bus), self.ref)
        b_red = self.bbus.tocsc()[keep][:, keep].toarray()
        out = np.zeros((self.n_branch, self.n_bus))
        out[:, keep] = self.bf.tocsc()[:, keep].toarray() @ np.linalg.inv(b_red)
        return out


def build_dc_network(grid: TransmissionGrid) -> DcNetwork:
    """Assemble the DC matrices of ``grid`` (in-service branches between live buses)."""
    buses = grid.buses[grid.buses.bus_type != 4]
    bus_ids = buses.bus_id.to_numpy()
    index = pd.Index(bus_ids)
    br = grid.branches[grid.branches.in_service]
    f = index.get_indexer(br.from_bus.to_numpy())
    t = index.get_indexer(br.to_bus.to_numpy())
    if (f < 0).any() or (t < 0).any():
        bad = br.branch_id.to_numpy()[(f < 0) | (t < 0)][0]
        raise ValidationError([Issue("branches", "in_service", str(bad),
                                     "in-service branch connects an isolated bus")])
    x = br.x_pu.to_numpy()
    if (x == 0).any():
        bad = br.branch_id.to_numpy()[x == 0][0]
        raise ValidationError([Issue("branches", "x_pu", str(bad),
                                     "zero reactance: the DC model needs x != 0")])
    b = grid.base_mva / (x * br.tap_ratio.to_numpy())
    n, m = len(bus_ids), len(br)
    rows = np.arange(m)
    cft = sp.csr_array((np.r_[np.ones(m), -np.ones(m)], (np.r_[rows, rows], np.r_[f, t])),
                       shape=(m, n))
    bf = sp.csr_array((np.r_[b, -b], (np.r_[rows, rows], np.r_[f, t])), shape=(m, n))
    bbus = (cft.T @ bf).tocsr()
    pf_shift = -b * np.deg2rad(br.shift_deg.to_numpy())
    pbus_shift = cft.T @ pf_shift
    ref = np.flatnonzero(buses.bus_type.to_numpy() == 3)
    if len(ref) == 0:
        raise ValidationError([Issue("buses", "bus_type", "", "no reference bus (bus_type 3)")])
    return DcNetwork(
        bus_ids=bus_ids, branch_ids=br.branch_id.to_numpy(), bbus=bbus, bf=bf,
        pf_shift=pf_shift, pbus_shift=np.asarray(pbus_shift), ref=ref,
        ref_angle=np.deg2rad(buses.va_deg.to_numpy()[ref]), rate=br.rate_a_mva.to_numpy(),
        from_pos=f, to_pos=t, r_pu=br.r_pu.to_numpy(dtype=float),
        base_mva=float(grid.base_mva),
    )
