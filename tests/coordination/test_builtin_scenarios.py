"""Every scheme on the built-in scenarios (the comparison ``tsodso run`` prints)."""

from __future__ import annotations

import pytest

from tsodso.coordination import SCHEMES, run_scheme
from tsodso.io import load

REL = 1e-6


@pytest.fixture(scope="module", params=["default", "low-penetration"])
def outcomes(request):
    system = load(request.param)
    return request.param, {name: run_scheme(system, name) for name in SCHEMES}


def test_common_costs_no_more_than_any_scheme(outcomes):
    _, out = outcomes
    best = out["common"].total_cost
    for name, o in out.items():
        assert o.total_cost >= best * (1 - REL), name
        res = o.balance_residuals()
        assert abs(res["energy_mwh"]) < 1e-5, name


def test_violations_and_the_smartnet_finding(outcomes):
    scenario, out = outcomes
    tso_only = out["tso_only"]
    v = tso_only.violation_summary()
    if scenario == "default":  # high DER penetration: the TSO's dispatch breaks feeders
        assert v["thermal"] + v["voltage"] > 0
        for name in ("centralized", "local", "common"):
            w = out[name].violation_summary()
            assert w["thermal"] + w["voltage"] == 0, name
    else:  # initial phase: TSO-centric coordination is enough
        assert v["thermal"] + v["voltage"] == 0
        assert tso_only.total_cost <= out["common"].total_cost * 1.01
    assert out["admm"].total_cost == pytest.approx(out["common"].total_cost, rel=1e-3)
