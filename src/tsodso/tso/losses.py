"""Marginal-loss approximation of the DC market: loss factors around an operating point.

The lossless DC model prices no losses. The ISOs' remedy (PJM since 2007, ISO-NE, MISO;
Litvinov, Zheng, Rosenwald and Sotkiewicz, "Marginal loss modeling in LMP calculation",
IEEE Trans. Power Syst. 19(2), 2004) linearises the losses around a base dispatch:

* branch losses ``L_l = r_l f_l**2 / base`` MW (``r`` in per unit, flow ``f`` in MW);
* the marginal loss factor of bus ``i``, ``LF_i = dL/dP_i`` for an injection at ``i``
  withdrawn at the reference bus, is ``PTDF' (2 r f / base)`` (``LF_ref = 0``); the delivery
  factor is ``DF_i = 1 - LF_i``;
* the energy balance becomes ``sum_i DF_i P_i = L0 - sum_i LF_i P0_i`` (``P`` the net
  injections), and the losses are placed on the buses as fictitious nodal demand (half of
  each branch's losses at each end) so the flows carry them.

The LMP then splits, with ``lambda`` the price of the energy balance and ``pi`` the nodal
(congestion) duals, into ``energy = lambda`` (the reference bus price), ``loss =
lambda (DF_i - 1) = -lambda LF_i`` and ``congestion = pi_i``. The market iterates: solve,
recompute the factors at the new flows, solve again, until the factors settle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.sparse.linalg import splu

from tsodso.errors import TsodsoError
from tsodso.tso.dc_network import DcNetwork


@dataclass
class LossFactors:
    """Losses linearised around an operating point, one row per period.

    Attributes
    ----------
    factor : numpy.ndarray
        (T x N) marginal loss factors ``LF = dL/dP`` (MW of losses per MW injected at the
        bus and withdrawn at the reference bus); zero at the reference bus.
    offset : numpy.ndarray
        (T,) ``L0 - sum_i LF_i P0_i``, MW: the constant of the linearised losses.
    nodal_demand : numpy.ndarray
        (T x N) fictitious nodal demand, MW: half of every branch's losses at each end.
    losses : numpy.ndarray
        (T,) losses at the operating point, MW.
    """

    factor: np.ndarray
    offset: np.ndarray
    nodal_demand: np.ndarray
    losses: np.ndarray

    def damped(self, previous: LossFactors, weight: float, injections: np.ndarray
               ) -> LossFactors:
        """``weight`` x these factors + (1 - weight) x ``previous``, linearised at the same
        point (``injections``, T x N MW) so the offset stays consistent."""
        factor = weight * self.factor + (1.0 - weight) * previous.factor
        return LossFactors(factor=factor, offset=self.losses - (factor * injections).sum(axis=1),
                           nodal_demand=self.nodal_demand, losses=self.losses)

    @property
    def delivery(self) -> np.ndarray:
        """(T x N) delivery factors ``1 - LF``."""
        return 1.0 - self.factor


def branch_losses(net: DcNetwork, flows: np.ndarray) -> np.ndarray:
    """(T x M) losses of every branch, MW, for from-end flows ``flows`` (T x M, MW)."""
    return net.r_pu * flows**2 / net.base_mva


def loss_factors(net: DcNetwork, flows: np.ndarray, injections: np.ndarray) -> LossFactors:
    """Loss factors at an operating point.

    Parameters
    ----------
    net
        The DC network (one reference bus).
    flows
        (T x M) from-end branch flows, MW.
    injections
        (T x N) net injections (generation minus load, MW) at the operating point.
    """
    if len(net.ref) != 1:
        raise TsodsoError("marginal losses need exactly one reference bus (the grid has "
                          f"{len(net.ref)}: one per island)")
    keep = np.setdiff1d(np.arange(net.n_bus), net.ref)
    b_red = sp.csc_array(net.bbus.tocsc()[keep][:, keep])
    grad = 2.0 * net.r_pu * flows / net.base_mva  # dL/df per branch, (T x M)
    rhs = np.asarray(net.bf.tocsc()[:, keep].T @ grad.T)  # (N-1 x T)
    factor = np.zeros((flows.shape[0], net.n_bus))
    factor[:, keep] = splu(b_red).solve(rhs, trans="T").T  # PTDF' grad = B_red^-T Bf' grad
    per_branch = branch_losses(net, flows)
    losses = per_branch.sum(axis=1)
    nodal = np.zeros_like(factor)
    np.add.at(nodal.T, net.from_pos, 0.5 * per_branch.T)
    np.add.at(nodal.T, net.to_pos, 0.5 * per_branch.T)
    offset = losses - (factor * injections).sum(axis=1)
    return LossFactors(factor=factor, offset=offset, nodal_demand=nodal, losses=losses)
