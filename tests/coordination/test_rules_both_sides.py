"""Participation rules on both sides: the TSO market's and the DSO's local market's, with
price-takers where no market admits a DER, and one offer per DER in both markets."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.coordination import run_scheme
from tsodso.dso.opf import Boundary, DsoOpf, DsoOptions
from tsodso.errors import ValidationError
from tsodso.io.scenario import build_scenario
from tsodso.rules import get_rules
from tsodso.rules.admission import der_control, dso_admission, kept_out, tso_admission
from tsodso.scenarios import scenario_path
from tsodso.tso.offers import der_availability, der_offer_cost

EU_NO_POOLING = {"preset": "eu", "aggregation_allowed": False}


def _recipe(rules):
    r = yaml.safe_load(scenario_path("default").read_text())
    r["feeders"] = [dict(r["feeders"][0], at=[9])]
    r["rules"] = rules
    return r


@pytest.fixture(scope="module")
def fleets():
    return {name: build_scenario(_recipe(rules))
            for name, rules in (("pjm", "pjm"), ("eu", EU_NO_POOLING))}


def test_the_same_fleet_is_admitted_differently_on_both_sides(fleets):
    """pjm (100 kW pooled; Con Edison's 50 kW load relief market without PV) against a
    European market of 2012-2017 (5 MW per unit; section 14a EnWG: single controllable
    consumption devices): different admitted sets in the TSO market and in the DSO's."""
    pjm, eu = fleets["pjm"], fleets["eu"]
    assert list(pjm.ders.der_id) == list(eu.ders.der_id)  # the same fleet
    tso = {k: set(s.ders.der_id[(tso_admission(s) == "").to_numpy()]) for k, s in fleets.items()}
    dso = {k: set(s.ders.der_id[(dso_admission(s) == "").to_numpy()]) for k, s in fleets.items()}
    assert tso["pjm"] == set(pjm.ders.der_id) and tso["eu"] != tso["pjm"]
    size = np.maximum(eu.ders.p_max_mw, -eu.ders.p_min_mw)
    assert tso["eu"] == set(eu.ders.der_id[size >= 5.0])  # 5 MW per unit, no pooling
    kinds = eu.ders.set_index("der_id").kind
    # REV's local market: no PV; small units pool to 50 kW per aggregator and feeder
    assert {kinds[d] for d in dso["pjm"]} == {"storage", "ev", "demand_response"}
    # section 14a EnWG: controllable consumption devices, one at a time, no minimum
    assert {kinds[d] for d in dso["eu"]} == {"storage", "ev", "demand_response"}
    pjm_small = build_scenario(dict(_recipe({"preset": "pjm", "local": {
        "aggregation_allowed": False}})))
    unpooled = set(pjm_small.ders.der_id[(dso_admission(pjm_small) == "").to_numpy()])
    assert unpooled < dso["pjm"] and unpooled == {
        d for d in dso["pjm"] if size[eu.ders.der_id == d].iloc[0] >= 0.05}


def test_price_takers_run_uncontrolled_in_a_dso_market_scheme(fleets):
    """A DER no market admits (eu: PV below 5 MW, and PV may not offer to the DSO) runs
    at its availability; the DSO spills it only at the value of lost load, and says so."""
    eu = fleets["eu"]
    control = der_control(eu)
    pv = (eu.ders.kind == "pv").to_numpy()
    assert not control.energy[pv].any() and control.energy[~pv].all()
    # grid-code reactive power (VDE-AR-N 4105): every PV inverter, admitted or not
    assert control.reactive[pv & np.isfinite(eu.ders.s_max_mva.to_numpy())].all()
    o = run_scheme(eu, "common")
    avail = pd.DataFrame(der_availability(eu), columns=eu.ders.der_id)
    ids = eu.ders.der_id[pv]
    spilled = (avail[ids] - o.der_dispatch[ids]).to_numpy()
    assert spilled.min() > -1e-6
    assert spilled.sum() * eu.profiles.period_hours == pytest.approx(
        o.shortfalls.spill_mwh, abs=1e-3)
    # under pjm the same PV is dispatched through the TSO market: never worse
    p = run_scheme(fleets["pjm"], "common")
    assert p.total_cost <= o.total_cost + 1e-6
    takers = kept_out(eu, distribution_market=True)
    assert set(takers.der_id[takers.price_taker]) == set(ids)


def test_run_reports_what_each_market_kept_out(tmp_path):
    """run --json: per scheme, the DERs and MW kept out of each market and why, and the
    price-takers; the printed comparison says it in a line per scheme."""
    runner = CliRunner()
    rows = {}
    for name, rules in (("pjm", "pjm"), ("eu", EU_NO_POOLING)):
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(_recipe(rules)))
        result = runner.invoke(app, ["run", str(path), "--scheme", "tso_only", "--scheme",
                                     "hierarchical", "--json"])
        assert result.exit_code == 0, result.output
        rows[name] = {k: v["kept_out"] for k, v in json.loads(result.stdout)["schemes"].items()}
        if name == "eu":
            text = runner.invoke(app, ["run", str(path), "--scheme", "hierarchical"]).output
            assert "DSO market:" in text and "TSO market:" in text
            assert "run as price-takers" in text
    assert rows["pjm"]["tso_only"]["ders"] == 0
    markets = {g["market"] for g in rows["pjm"]["hierarchical"]["by_reason"]}
    assert markets == {"dso"} and rows["pjm"]["hierarchical"]["price_takers"]["ders"] == 0
    eu = build_scenario(_recipe(EU_NO_POOLING))
    pv = eu.ders[eu.ders.kind == "pv"]
    h = rows["eu"]["hierarchical"]
    assert h["price_takers"]["ders"] == len(pv)
    assert h["price_takers"]["mw"] == pytest.approx(pv.p_max_mw.sum())
    assert {g["market"] for g in h["by_reason"]} == {"tso", "dso"}
    # no distribution market in tso_only: only the TSO market's exclusions
    assert {g["market"] for g in rows["eu"]["tso_only"]["by_reason"]} == {"tso"}


def test_one_offer_per_der_serves_both_markets():
    """A DER with bid steps offers them to the DSO as to the TSO: the DSO OPF charges
    the steps (cheapest first), not the DER's cost_per_mwh."""
    r = _recipe("pjm")
    system = build_scenario(r)
    dg = system.ders[system.ders.kind == "demand_response"].iloc[0]
    opt = DsoOptions(ac_check=False, decompose=False)
    at_50 = Boundary(price=np.full(system.n_periods, 50.0))  # below the DR's 150 $/MWh
    base = DsoOpf(system, dg.feeder_id, opt, at_50).solve()
    # the DR unit offers in two steps far below its 150 $/MWh cost: it is used more
    system.der_bids = pd.DataFrame({"der_id": [dg.der_id] * 2, "step": [0, 1],
                                    "quantity_mw": [0.5, 0.5], "price_per_mwh": [1.0, 2.0]})
    bid = DsoOpf(system, dg.feeder_id, opt, at_50).solve()
    assert bid.der_p_mw[dg.der_id].sum() > base.der_p_mw[dg.der_id].sum() + 1e-3
    assert bid.objective < base.objective
    # the cost the outcome counts is the steps' cost, cheapest first: the 1 $/MWh step
    # covers half the unit, which is what the OPF used
    used = bid.der_p_mw[[dg.der_id]]
    assert used.to_numpy().max() == pytest.approx(0.5 * dg.p_max_mw, rel=1e-6)
    assert der_offer_cost(system, used).sum() == pytest.approx(used.to_numpy().sum(), rel=1e-6)
    on = used.to_numpy()[:, 0] > 1e-6  # periods where the whole unit is available
    more = used * 0 + np.where(on, 0.75 * dg.p_max_mw, 0.0)[:, None]  # into the 2 $ step
    assert der_offer_cost(system, more).sum() == pytest.approx(
        (0.5 * 1.0 + 0.25 * 2.0) * dg.p_max_mw * on.sum(), rel=1e-6)


def test_local_rules_are_checked_and_sourced():
    rules = get_rules("pjm")
    assert rules.local.min_offer_mw == 0.05
    assert any(s.startswith("min_offer_mw: Con Edison") for s in rules.local.sources)
    assert get_rules("eu").local.aggregation_allowed is False
    with pytest.raises(ValidationError, match="energy_kinds"):
        build_scenario(_recipe({"preset": "pjm", "local": {"energy_kinds": ["nuclear"]}}))
    with pytest.raises(ValidationError, match="no inverter"):
        build_scenario(_recipe({"preset": "pjm", "local": {"reactive_kinds": ["ev"]}}))
    with pytest.raises(ValidationError, match="rules.local"):
        build_scenario(_recipe({"preset": "pjm", "local": {"min_offer": 1}}))
    changed = build_scenario(_recipe({"preset": "pjm", "local": {"min_offer_mw": 1.0}}))
    assert "min_offer_mw: set in the scenario (1.0)" in changed.rules.local.sources


def test_bid_steps_without_a_size_are_refused():
    """Steps share a DER's availability by their sizes: steps summing to 0 MW are refused
    naming the DER, never divided by zero."""
    system = build_scenario(_recipe("pjm"))
    der = system.ders.der_id.iloc[0]
    system.der_bids = pd.DataFrame({"der_id": [der], "step": [0], "quantity_mw": [0.0],
                                    "price_per_mwh": [5.0]})
    with pytest.raises(ValidationError, match=f"der_bids.quantity_mw.*{der}.*sum to 0"):
        system.check()
