"""Reliability options for DG and storage: the auction clears in merit order at the
marginal premium, the premium bids are the option value given away plus the expected
penalty, and the planning cost with options is below the upgrade's where offers suffice."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from tsodso.cli import app
from tsodso.errors import TsodsoError
from tsodso.io.scenario import build_scenario
from tsodso.scenarios import scenario_path
from tsodso.studies import RoOptions, reliability_options
from tsodso.studies.reliability import clear_auction

runner = CliRunner()
FEEDER = "case33bw@9"
BASE = {"growth": 0.03, "year": 9, "upgrade_cost": 1e6, "availability_cost": 5000.0}


@pytest.fixture(scope="module")
def system():
    """low-penetration with storage at 30 %, demand response at 20 % and DG at 60 % of
    feeder peak (on 30 % of the load buses)."""
    r = yaml.safe_load(scenario_path("low-penetration").read_text())
    r["ders"]["storage"]["share"] = 0.3
    r["ders"]["demand_response"]["share"] = 0.2
    r["ders"]["dg"] = {"share": 0.6, "bus_fraction": 0.3, "cost_per_mwh": 60.0}
    return build_scenario(r)


@pytest.fixture(scope="module")
def study(system):
    return reliability_options(system, FEEDER, RoOptions(**BASE))


def test_the_auction_clears_in_merit_order_at_the_marginal_premium():
    offers = pd.DataFrame({"firm_mw": [1.0, 0.5, 2.0, 1.0],
                           "premium_bid": [300.0, 100.0, 200.0, 50.0]})
    accepted, price = clear_auction(offers, 2.0, price_cap=1000.0)
    assert accepted.tolist() == [0.0, 0.5, 0.5, 1.0] and price == 200.0
    accepted, price = clear_auction(offers, 2.0, price_cap=150.0)  # dearer than building
    assert accepted.tolist() == [0.0, 0.5, 0.0, 1.0] and price == 100.0
    accepted, price = clear_auction(offers, 0.0, price_cap=1000.0)
    assert accepted.sum() == 0.0 and price is None


def test_offers_need_and_planning_cost(system, study):
    assert study.need_mw > 0 and study.scarcity_periods
    offers = study.offers
    assert set(offers.kind) == {"dg", "storage"}
    d = system.ders.set_index("der_id")
    window = study.window_hours
    for o in offers.itertuples(index=False):
        der = d.loc[o.der_id]
        if o.kind == "storage":  # the power it can hold over the scarcity window
            usable = (der.soc_max - der.soc_min) * der.energy_mwh
            assert o.firm_mw == pytest.approx(min(der.p_max_mw, usable / window))
        else:
            assert o.firm_mw == pytest.approx(der.p_max_mw)
        # expected penalty for being unavailable when called (DLMP above the strike)
        assert o.penalty_risk >= 0
        assert o.premium_bid == pytest.approx(o.option_value + o.penalty_risk + 5000.0)
    # merit order; accepted up to the need; pay-as-clear at the marginal accepted bid
    assert offers.premium_bid.is_monotonic_increasing
    assert study.bought_mw == pytest.approx(min(study.need_mw, offers.firm_mw.sum()))
    taken = offers[offers.accepted_mw > 0]
    assert study.clearing_premium == taken.premium_bid.max()
    annual = 1e6 * 0.05 / (1 - 1.05 ** -40)
    assert study.cost_without == pytest.approx(annual)
    assert study.uncovered_mw < 1e-6  # enough DG and storage: no upgrade
    assert study.cost_with == pytest.approx(study.clearing_premium * study.bought_mw)
    assert study.cost_with < study.cost_without


def test_the_strike_price_sets_the_option_value(system, study):
    """A strike above every DLMP gives away nothing: the bids are the penalty risk alone;
    a lower strike gives away more."""
    high = reliability_options(system, FEEDER, RoOptions(**BASE, strike_price=1e6))
    assert (high.offers.option_value == 0).all()
    low = reliability_options(system, FEEDER, RoOptions(**BASE, strike_price=0.0))
    merged = low.offers.set_index("der_id").option_value.reindex(study.offers.der_id)
    assert (merged.to_numpy() >= study.offers.option_value.to_numpy() - 1e-9).all()
    assert (merged > 0).any()
    # with the strike at 0 every period with a positive price calls the option: the whole
    # day, each unit's expected penalty (1 - a) x penalty x 24 h x 365 days
    np.testing.assert_allclose(low.offers.penalty_risk, 0.05 * 1000 * 24 * 365)
    assert (high.offers.penalty_risk == 0).all()


def test_options_dearer_than_building_are_not_bought(system):
    dear = reliability_options(system, FEEDER, RoOptions(**{**BASE, "availability_cost": 1e9}))
    assert dear.bought_mw == 0 and dear.clearing_premium is None
    assert dear.cost_with == pytest.approx(dear.cost_without)
    assert any("still built" in n for n in dear.notes)


def test_bad_input_and_the_cli(system, tmp_path):
    with pytest.raises(TsodsoError, match="reliability_options.availability"):
        RoOptions(**BASE, availability=1.5)
    with pytest.raises(TsodsoError, match="unknown feeder"):
        reliability_options(system, "nowhere", RoOptions(**BASE))
    res = runner.invoke(app, ["reliability-options", FEEDER, "--upgrade-cost", "1e6",
                              "--year", "5", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert {"planning_cost_without", "planning_cost_with", "clearing_premium",
            "offers"} <= set(data)
    assert np.isfinite(data["planning_cost_without"])
