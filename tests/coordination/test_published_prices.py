"""Every DLMP a coordination scheme publishes is the marginal cost of that scheme.

For each of the seven schemes on the ``default`` scenario: add a small constant demand at
the far end of a feeder (active power at bus 33 of ``case33bw@9``, reactive power at bus 69
of ``case69@4#1``), re-run the whole scheme with it added and removed, and compare the
change of the scheme's total cost with the sum over periods of the published DLMP times
the demand change. The cost is convex in the demand where the scheme is an optimisation, so
a valid price lies between the left and right differences (it may sit on a kink, where
they differ); the bracket is widened only by 0.1 % for solver tolerance.

``centralized`` is perturbed with its prequalification held (the DSOs prequalify on their
forecast, ahead of the market): its prices are those of the operation that follows.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from tsodso.coordination import SCHEMES, run_scheme
from tsodso.io import load

DELTA = 0.001  # MW (MVAr) added at every period
CASES = [("case33bw@9", 33, "p"), ("case69@4#1", 69, "q")]


@pytest.fixture(scope="module")
def system():
    return load("default")


def _with_demand(system, feeder_id: str, bus: int, p_mw: float, q_mvar: float):
    s = copy.deepcopy(system)
    loads = s.feeder_loads
    row = loads[loads.feeder_id == feeder_id].iloc[:1].copy()
    row["load_id"] = int(loads[loads.feeder_id == feeder_id].load_id.max()) + 1
    row["bus_id"], row["p_mw"], row["q_mvar"], row["profile"] = bus, p_mw, q_mvar, ""
    s.feeder_loads = pd.concat([loads, row], ignore_index=True)
    return s


@pytest.mark.parametrize("scheme", list(SCHEMES))
def test_published_dlmps_are_the_schemes_marginal_cost(system, scheme):
    options = {"forecast": system} if scheme == "centralized" else {}
    base = run_scheme(system, scheme)
    assert base.status in ("optimal", "shed"), base.notes
    dt = system.profiles.period_hours
    for feeder_id, bus, which in CASES:
        prices = (base.dlmp if which == "p" else base.dlmp_q)[feeder_id][bus]
        predicted = float(prices.sum()) * DELTA * dt
        change = {}
        for sign in (1, -1):
            d = sign * DELTA
            p, q = (d, 0.0) if which == "p" else (0.0, d)
            perturbed = _with_demand(system, feeder_id, bus, p, q)
            change[sign] = sign * (run_scheme(perturbed, scheme, **options).total_cost
                                   - base.total_cost)
        low, high = sorted(change.values())
        tol = 1e-3 * abs(predicted) + 1e-6
        assert low - tol <= predicted <= high + tol, (
            f"{scheme}: {which.upper()} at {feeder_id} bus {bus}: published "
            f"{predicted:.6f} $, cost differences {change[-1]:.6f} (left) and "
            f"{change[1]:.6f} (right)")
        # a test that cannot fail is a defect: the price is not zero here
        assert abs(predicted) > 1e-4 * DELTA


def test_admm_publishes_the_joint_optimums_prices(system):
    """ADMM reaches the joint optimum, so its DLMPs are common's (to its tolerance)."""
    common = run_scheme(system, "common")
    admm = run_scheme(system, "admm")
    for f in system.feeder_ids:
        np.testing.assert_allclose(admm.dlmp[f].to_numpy(), common.dlmp[f].to_numpy(),
                                   atol=0.05)
