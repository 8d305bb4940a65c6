"""Every scheme on the built-in scenarios (the comparison ``tsodso run`` prints)."""

from __future__ import annotations

import pytest

from tsodso.coordination import SCHEMES
from tsodso.io import load

REL = 1e-6


@pytest.fixture(scope="module", params=["default", "low-penetration"])
def outcomes(request, builtin_outcome):
    return request.param, {name: builtin_outcome(request.param, name) for name in SCHEMES}


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


def test_settlement_statements_balance_to_the_cent(outcomes):
    """Every scheme's statements (party -> line -> $, + received) sum to zero within half
    a cent, and their totals are the outcome's money flows."""
    _, out = outcomes
    for name, o in out.items():
        book = o.statements
        total = sum(v for lines in book.values() for v in lines.values())
        assert abs(total) < 0.005, (name, total)
        assert {"consumers:transmission", "generators", "tso"} <= set(book), name
        assert o.consumer_payments == pytest.approx(
            -sum(sum(b.values()) for p, b in book.items() if p.startswith("consumers:")))
        assert o.generator_revenues == pytest.approx(sum(book["generators"].values()))


def test_tso_only_pays_ders_the_tso_price_not_a_dlmp(outcomes):
    """Without a distribution market (tso_only, centralized) DERs and feeder consumers are
    settled at the interface LMP; with one (common) at the DLMPs of their buses."""
    import numpy as np

    scenario, out = outcomes
    if scenario != "default":
        pytest.skip("the default scenario has the congested feeders")

    system = load("default")
    ders = system.ders.set_index("der_id")
    dt = system.profiles.period_hours
    for name in ("tso_only", "common"):
        o = out[name]
        for agg in ("agg_case33bw@9", "agg_case69@4#1"):
            ids = ders.index[ders.aggregator_id == agg]
            p = o.der_dispatch[ids].to_numpy()
            feeder = ders.feeder_id[ids[0]]
            at_lmp = float((p * o.interface_lmp[feeder].to_numpy()[:, None]).sum() * dt)
            dlmp = o.dlmp[feeder]
            at_dlmp = float(sum((o.der_dispatch[i].to_numpy()
                                 * dlmp[int(ders.bus_id[i])].to_numpy()).sum()
                                for i in ids) * dt)
            energy = o.statements[f"aggregator:{agg}"]["energy"]
            expected = at_lmp if name == "tso_only" else at_dlmp
            assert energy == pytest.approx(expected, rel=1e-9, abs=1e-6), (name, agg)
            assert not np.isclose(at_lmp, at_dlmp, rtol=1e-3), (name, agg)  # it matters here
    # the initial-phase DSO curtailed scheduled DERs and compensated their margin
    comp = {p: b.get("curtailment compensation", 0.0)
            for p, b in out["tso_only"].statements.items()}
    assert sum(v for p, v in comp.items() if p.startswith("dso:")) < -1.0
    assert sum(v for p, v in comp.items() if p.startswith("aggregator:")) == pytest.approx(
        -sum(v for p, v in comp.items() if p.startswith("dso:")))
