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

#: (feeder, far-end bus, which price, demand step MW or MVAr added at every period): the
#: reactive step is larger, as Q prices are small and the cost must move well above the
#: solvers' tolerance
CASES = [("case33bw@9", 33, "p", 0.001), ("case69@4#1", 69, "q", 0.003)]
#: Q prices of the schemes in which the DSO corrects a market schedule: 13 % above the
#: finite difference at this congested feeder end (the congestion part), known and open
Q_OPEN = {"tso_only", "local"}
#: Where the scheme's cost has a kink at the perturbed bus (the price is not unique): the
#: initial-phase DSO of tso_only only curtails, and at this feeder end curtailed PV absorbs
#: added demand at almost no cost (+0.08 $/MWh) while removed demand saves the interface
#: price (70 $/MWh). The published DLMP must lie between the two (checked); the sides'
#: agreement is not asked of it.
KINKED = {("tso_only", "p")}


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


def _params():
    for scheme in SCHEMES:
        for case in CASES:
            marks = ([pytest.mark.xfail(strict=True, reason="Q prices of a corrected market "
                                        "schedule at a congested feeder end")]
                     if case[2] == "q" and scheme in Q_OPEN else [])
            yield pytest.param(scheme, case, marks=marks, id=f"{scheme}-{case[2]}")


@pytest.mark.parametrize(("scheme", "case"), list(_params()))
def test_published_dlmps_are_the_schemes_marginal_cost(system, scheme, case, builtin_outcome):
    feeder_id, bus, which, delta = case
    options = {"forecast": system} if scheme == "centralized" else {}
    base = builtin_outcome("default", scheme)
    assert base.status in ("optimal", "shed"), base.notes
    dt = system.profiles.period_hours
    prices = (base.dlmp if which == "p" else base.dlmp_q)[feeder_id][bus]
    predicted = float(prices.sum()) * delta * dt
    change = {}
    for sign in (1, -1):
        d = sign * delta
        p, q = (d, 0.0) if which == "p" else (0.0, d)
        perturbed = _with_demand(system, feeder_id, bus, p, q)
        change[sign] = sign * (run_scheme(perturbed, scheme, **options).total_cost
                               - base.total_cost)
    low, high = sorted(change.values())
    tol = 1e-3 * abs(predicted) + 1e-6
    assert low - tol <= predicted <= high + tol, (
        f"{scheme}: {which.upper()} at {feeder_id} bus {bus}: published {predicted:.6f} $, "
        f"cost differences {change[-1]:.6f} (left) and {change[1]:.6f} (right)")
    # a test that cannot fail is a defect: the price is not zero here, and the two sides
    # agree to 5 % (no kink big enough to hide a wrong price)
    assert abs(predicted) > 1e-3 * delta
    if (scheme, which) not in KINKED:
        assert high - low <= 0.05 * abs(predicted), change


def test_admm_publishes_the_joint_optimums_prices(system, builtin_outcome):
    """ADMM reaches the joint optimum, so its DLMPs are common's (to its tolerance)."""
    common = builtin_outcome("default", "common")
    admm = builtin_outcome("default", "admm")
    for f in system.feeder_ids:
        np.testing.assert_allclose(admm.dlmp[f].to_numpy(), common.dlmp[f].to_numpy(),
                                   atol=0.05)


#: (feeder whose interface price is checked, transmission demand step MW at every period)
INTERFACE_CASE = ("case33bw@9", 0.01)


def _with_transmission_demand(system, bus: int, p_mw: float):
    s = copy.deepcopy(system)
    loads = s.grid.loads
    row = pd.DataFrame([{"load_id": int(loads.load_id.max()) + 1, "bus_id": bus,
                         "p_mw": p_mw, "q_mvar": 0.0, "in_service": True, "profile": ""}])
    s.grid.loads = pd.concat([loads, row], ignore_index=True)
    return s


def _interface_params():
    # tso_only's published LMP was 0.9 % off its finite difference while feeder OPFs
    # accepted Clarabel's "AlmostSolved" answers (a line 5 % over its rating); polished
    # answers agree to 1e-5 (tsodso.opt._clarabel)
    for scheme in SCHEMES:
        yield pytest.param(scheme, id=scheme)


@pytest.mark.parametrize("scheme", list(_interface_params()))
def test_published_interface_lmps_are_the_schemes_marginal_cost(system, scheme,
                                                                builtin_outcome):
    """The interface LMP a scheme publishes is the marginal cost of one more MW of
    transmission demand at that interface bus under the scheme (the whole scheme re-run
    with the demand added and removed)."""
    feeder_id, delta = INTERFACE_CASE
    options = {"forecast": system} if scheme == "centralized" else {}
    base = builtin_outcome("default", scheme)
    bus = int(system.feeders.set_index("feeder_id").interface_bus[feeder_id])
    predicted = float(base.interface_lmp[feeder_id].sum()) * delta * system.profiles.period_hours
    change = {}
    for sign in (1, -1):
        perturbed = _with_transmission_demand(system, bus, sign * delta)
        change[sign] = sign * (run_scheme(perturbed, scheme, **options).total_cost
                               - base.total_cost)
    low, high = sorted(change.values())
    tol = 1e-3 * abs(predicted) + 1e-6
    assert low - tol <= predicted <= high + tol, (
        f"{scheme}: interface LMP at bus {bus}: published {predicted:.6f} $, cost "
        f"differences {change[-1]:.6f} (left) and {change[1]:.6f} (right)")
    assert abs(predicted) > 1e-3 * delta
    assert high - low <= 0.05 * abs(predicted), change
